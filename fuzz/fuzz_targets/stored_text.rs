//! What the stores write as text: SQLite timestamp text and JSON text. Any
//! input parses or fails cleanly; whatever is written reads back equal.
#![no_main]

use chrono::DateTime;
use handshake_storage::fuzzing::{
    parse_sqlite_time, sqlite_time_text, stored_json_text, validate_json, validate_timestamp,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 12 {
        let secs = i64::from_le_bytes(data[..8].try_into().unwrap());
        let nanos = u32::from_le_bytes(data[8..12].try_into().unwrap()) % 1_000_000_000;
        if let Some(at) = DateTime::from_timestamp(secs, nanos) {
            round_trip_time(at);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(at) = parse_sqlite_time(text) {
        round_trip_time(at);
    }
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        let _ = validate_json(&value);
        let stored = stored_json_text(&value).expect("a parsed JSON value can be written");
        let back: Value = serde_json::from_str(&stored).expect("written JSON reads back");
        assert_eq!(back, value, "{text:?} was stored as {stored:?}");
    }
});

/// A timestamp the store accepts is stored as text that reads back equal.
fn round_trip_time(at: DateTime<chrono::Utc>) {
    let Ok(at) = validate_timestamp(at) else {
        return;
    };
    let stored = sqlite_time_text(&at);
    assert_eq!(parse_sqlite_time(&stored), Ok(at), "stored as {stored:?}");
}
