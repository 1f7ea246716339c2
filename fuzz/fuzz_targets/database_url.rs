//! Database URLs: classifying any text gives a backend or a `Validation`
//! error, never a panic; a password put into a URL (in the user part or a
//! `password=` parameter, with one host or several) never survives
//! `redact_url` or `scrub_secrets`; a URL without a password is never
//! shown with one. A path in `sslrootcert`, `sslcert` or `sslkey` (spaces,
//! quotes, `%`, new lines: any text) reaches libpq as it was written and
//! is shown by `redact_url`, next to a password that never is.
#![no_main]

use handshake_storage::fuzzing::{classify_database_url, libpq_url, scrub_secrets};
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
    let redacted = redact_url(text);
    // A password as the text shows it, or as the `url` crate reads it
    // (special schemes such as `ws:` need no `//`: `ws:u:p@h` has one).
    let has_password = text.split_once("://").is_some_and(|(_, rest)| {
        rest.rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    }) || url::Url::parse(text).is_ok_and(|url| url.password().is_some());
    if !has_password && !text.contains("***") {
        assert!(
            !redacted.contains(":***@"),
            "redact_url({text:?}) = {redacted:?} invents a password"
        );
    }

    tls_paths_reach_libpq(text);

    // The first line is a password, the rest the URL's host and path.
    let (password, rest) = text.split_once('\n').unwrap_or((text, "db.example/app"));
    // `?` or `#` in the host part would move the password out of the query.
    let rest: String = rest.chars().filter(|c| !matches!(c, '?' | '#')).collect();
    let encoded: String = url::form_urlencoded::byte_serialize(password.as_bytes()).collect();
    let forms: [&dyn Fn(&str) -> String; 5] = [
        &|pw| format!("postgres://alice:{pw}@{rest}"),
        &|pw| format!("postgres://alice@{rest}?sslmode=require&password={pw}"),
        // Several hosts, in the authority and as parameters.
        &|pw| format!("postgres://alice:{pw}@db0:5432,{rest}?target_session_attrs=read-write"),
        &|pw| format!("postgresql://alice@/app?host=db0&host={rest}&port=5432&password={pw}"),
        // A host the URL parser refuses: redaction falls back to text cuts.
        &|pw| format!("postgresql://alice:{pw}@[{rest}"),
    ];
    for form in forms {
        let with = form(&encoded);
        // The same URL with a one-letter password: what it shows after
        // redaction is the URL's own text, not a leak.
        let neutral = form("Q");
        let masked = form("***");
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
            // A secret that the URL shows even with its password masked
            // (in the host text, or spanning the mask) is not a leak.
            // Redaction shows that text as written or percent-encoded,
            // depending on which parser took the URL, so the neutral URL's
            // redaction above does not always show it the same way.
            if masked.contains(secret) {
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

/// `text` as the path of every TLS file parameter, next to a password.
fn tls_paths_reach_libpq(path: &str) {
    const PASSWORD: &str = "Fuzz-Tls-Secret";
    let encoded = encode(path);
    let url = format!(
        "postgres://alice@db.example/app?password={PASSWORD}&sslmode=verify-full\
         &sslrootcert={encoded}&sslcert={encoded}&sslkey={encoded}"
    );
    let given = match libpq_url(&url) {
        Ok(given) => given,
        // Only a path that is no UTF-8 once decoded, or holds NUL, may be
        // refused; the input is UTF-8, so that is a NUL.
        Err(StorageError::Validation(_)) if path.contains('\0') => return,
        Err(other) => panic!("{url:?} refused: {other}"),
    };
    for key in ["sslrootcert", "sslcert", "sslkey"] {
        assert_eq!(
            param(&given, key).as_deref(),
            Some(path),
            "libpq gets another {key} from {url:?}: {given:?}"
        );
    }
    let redacted = redact_url(&url);
    assert!(!redacted.contains(PASSWORD), "{redacted:?}");
    assert_eq!(
        param(&redacted, "sslrootcert").as_deref(),
        Some(path),
        "{redacted:?}"
    );
}

/// Every byte but the unreserved ones as `%XX`.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The last value of query parameter `key`, decoded as libpq decodes it
/// (`%XX` only).
fn param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == key)
        .last()
        .map(|(_, v)| {
            let bytes = v.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) if bytes[i] == b'%' => {
                        out.push(byte);
                        i += 3;
                    }
                    _ => {
                        out.push(bytes[i]);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        })
}
