//! The enum string parsers (what a row's text becomes) and `StorageConfig`
//! validation: any input is accepted exactly when it should be.
#![no_main]

use std::time::Duration;

use handshake_storage::fuzzing::validate_config;
use handshake_storage::*;
use libfuzzer_sys::fuzz_target;

/// `text` parses to a variant exactly when it is one of that variant's
/// stored strings (its own or a legacy one, such as `term_exec`); anything
/// else is a `Serialization` error.
macro_rules! check_enum {
    ($text:expr, $($ty:ty),+) => {$(
        match $text.parse::<$ty>() {
            Ok(v) => assert!(v.stored_forms().contains(&$text), "{v:?} from {:?}", $text),
            Err(StorageError::Serialization(_)) => {
                assert!(<$ty>::ALL.iter().all(|v| !v.stored_forms().contains(&$text)))
            }
            Err(other) => panic!("parsing {:?} gave {other:?}", $text),
        }
    )+};
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_enum!(
            text,
            JobState,
            JobKind,
            AccessMode,
            SafetyMode,
            OperationType,
            WriteActorKind
        );
    }
    if data.len() >= 20 {
        let pool_size = u32::from_le_bytes(data[..4].try_into().unwrap());
        let micros = |b: &[u8]| Duration::from_micros(u64::from_le_bytes(b.try_into().unwrap()));
        let config = StorageConfig::default()
            .pool_size(pool_size)
            .connection_timeout(micros(&data[4..12]))
            .sqlite_busy_timeout(micros(&data[12..20]))
            .run_migrations(data.len() % 2 == 0);
        let in_range =
            |d: Duration| (Duration::from_millis(1)..=Duration::from_secs(86_400)).contains(&d);
        let valid = (1..=1024).contains(&config.pool_size)
            && in_range(config.connection_timeout)
            && in_range(config.sqlite_busy_timeout);
        match validate_config(&config) {
            Ok(()) => assert!(valid, "{config:?} accepted"),
            Err(StorageError::Validation(_)) => assert!(!valid, "{config:?} refused"),
            Err(other) => panic!("{config:?} gave {other:?}"),
        }
    }
});
