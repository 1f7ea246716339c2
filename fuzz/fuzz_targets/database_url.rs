//! Database URLs: classifying any text gives a backend or a `Validation`
//! error, never a panic; a password put into a URL (in the user part or a
//! `password=` parameter) never survives `redact_url` or `scrub_secrets`.
#![no_main]

use handshake_storage::fuzzing::{classify_database_url, scrub_secrets};
use handshake_storage::{redact_url, StorageError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match classify_database_url(text) {
        Ok(_) | Err(StorageError::Validation(_)) => {}
        Err(other) => panic!("classifying {text:?} gave {other:?}"),
    }
    let _ = redact_url(text);

    // The first line is a password, the rest the URL's host and path.
    let (password, rest) = text.split_once('\n').unwrap_or((text, "db.example/app"));
    // `?` or `#` in the host part would move the password out of the query.
    let rest: String = rest.chars().filter(|c| !matches!(c, '?' | '#')).collect();
    let encoded: String = url::form_urlencoded::byte_serialize(password.as_bytes()).collect();
    let forms: [&dyn Fn(&str) -> String; 3] = [
        &|pw| format!("postgres://alice:{pw}@{rest}"),
        &|pw| format!("postgres://alice@{rest}?sslmode=require&password={pw}"),
        // A host the URL parser refuses: redaction falls back to text cuts.
        &|pw| format!("postgresql://alice:{pw}@[{rest}"),
    ];
    for form in forms {
        let with = form(&encoded);
        // The same URL with a one-letter password: what it shows after
        // redaction is the URL's own text, not a leak.
        let neutral = form("Q");
        let redacted = redact_url(&with);
        let message =
            format!("could not connect to {with}: password {password} ({encoded}) refused");
        let scrubbed = scrub_secrets(&message, &with);
        let neutral_scrubbed = scrub_secrets(
            &format!("could not connect to {neutral}: password Q (Q) refused"),
            &neutral,
        );
        for secret in [password, encoded.as_str()] {
            // Short secrets may occur by chance in any text.
            if secret.chars().count() < 4 {
                continue;
            }
            if !redact_url(&neutral).contains(secret) {
                assert!(
                    !redacted.contains(secret),
                    "redact_url({with:?}) = {redacted:?} keeps {secret:?}"
                );
            }
            if !neutral_scrubbed.contains(secret) {
                assert!(
                    !scrubbed.contains(secret),
                    "scrub_secrets({message:?}, {with:?}) = {scrubbed:?} keeps {secret:?}"
                );
            }
        }
    }
});
