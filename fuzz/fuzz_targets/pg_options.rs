//! A PostgreSQL URL's `options=`: whatever the store accepts, the server
//! must not read as setting `role` or `session_authorization`, nor
//! `search_path` to anything but one plain schema name.
//!
//! The oracle reads the options the way the server does, written here
//! from PostgreSQL's source and independently of the crate's check:
//! `pg_split_opts` (split at C `isspace`, a backslash takes the next byte
//! as it is), then `getopt` over the backend's switches (clustered flags,
//! an argument in the same word or the next one, `--` ends the switches,
//! words that are not switches skipped as glibc's permutation does), then
//! `ParseLongOption` for `-c` and `--` (`-` becomes `_` in the name; names
//! compare ASCII case-insensitively). It collects every setting the server
//! would try, even where it would fail the connection later: a superset.
//!
//! Two forms per input: the input as the `options` value (percent-encoded
//! into a URL), and the input as a URL's whole query string, where keys
//! are percent-decoded and `options` may come more than once.
#![no_main]

use handshake_storage::fuzzing::classify_database_url;
use libfuzzer_sys::fuzz_target;

/// C's `isspace` in the "C" locale.
const SPACE: [u8; 6] = [b' ', b'\t', b'\n', 0x0b, 0x0c, b'\r'];
/// The backend's switches that take an argument
/// (`process_postgres_switches`: "B:bC:c:D:d:EeFf:h:ijk:lN:nOPp:r:S:sTt:v:W:-:").
const WITH_ARGUMENT: &[u8] = b"BCcDdfhkNprStvW-";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let as_value = format!("postgres://h/db?options={}", encode(text.as_bytes()));
    if classify_database_url(&as_value).is_ok() {
        assert_safe(text.as_bytes(), &as_value);
    }
    if text.contains(['#', '?']) || text.contains(char::is_whitespace) {
        return;
    }
    let as_query = format!("postgres://h/db?{text}");
    if classify_database_url(&as_query).is_ok() {
        for pair in text.split('&') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            if decode(key).as_deref() == Some(b"options".as_slice()) {
                let value = decode(value).expect("the store accepted it, so it decodes");
                assert_safe(&value, &as_query);
            }
        }
    }
});

/// Panics when the server would read `options` as one of the settings the
/// store promises to refuse.
fn assert_safe(options: &[u8], url: &str) {
    for (name, value) in settings(&split_opts(options)) {
        let Some(value) = value else { continue };
        assert!(
            name != "role" && name != "session_authorization",
            "{url:?} was accepted, and the server sets {name}"
        );
        if name == "search_path" {
            assert!(
                plain_schema(&value),
                "{url:?} was accepted, and the server sets search_path to {:?}",
                String::from_utf8_lossy(&value)
            );
        }
    }
}

/// `pg_split_opts`.
fn split_opts(options: &[u8]) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut i = 0;
    while i < options.len() {
        while i < options.len() && SPACE.contains(&options[i]) {
            i += 1;
        }
        if i == options.len() {
            break;
        }
        let mut word = Vec::new();
        let mut escaped = false;
        while i < options.len() {
            let byte = options[i];
            if SPACE.contains(&byte) && !escaped {
                break;
            }
            if !escaped && byte == b'\\' {
                escaped = true;
            } else {
                escaped = false;
                word.push(byte);
            }
            i += 1;
        }
        words.push(word);
    }
    words
}

/// Every `(name, value)` that `getopt` hands to `-c` or `--`.
fn settings(argv: &[Vec<u8>]) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let word = &argv[i];
        i += 1;
        if word.as_slice() == b"--" {
            break;
        }
        if word.len() < 2 || word[0] != b'-' {
            continue;
        }
        let mut j = 1;
        while j < word.len() {
            let switch = word[j];
            j += 1;
            if !WITH_ARGUMENT.contains(&switch) {
                continue;
            }
            let argument = if j < word.len() {
                Some(word[j..].to_vec())
            } else if i < argv.len() {
                i += 1;
                Some(argv[i - 1].clone())
            } else {
                None
            };
            if let (b'c' | b'-', Some(argument)) = (switch, argument) {
                out.push(parse_long_option(&argument));
            }
            break;
        }
    }
    out
}

/// `ParseLongOption`, and the name as GUC lookup compares it.
fn parse_long_option(argument: &[u8]) -> (String, Option<Vec<u8>>) {
    let (name, value) = match argument.iter().position(|&b| b == b'=') {
        Some(at) => (&argument[..at], Some(argument[at + 1..].to_vec())),
        None => (argument, None),
    };
    let name: String = name
        .iter()
        .map(|&b| {
            if b == b'-' {
                '_'
            } else {
                b.to_ascii_lowercase() as char
            }
        })
        .collect();
    (name, value)
}

/// One unquoted schema name, not one of the server's own, as the server
/// reads a list element (surrounding white space dropped, folded to lower
/// case).
fn plain_schema(value: &[u8]) -> bool {
    let start = value.iter().position(|b| !SPACE.contains(b));
    let end = value.iter().rposition(|b| !SPACE.contains(b));
    let name: Vec<u8> = match (start, end) {
        (Some(start), Some(end)) => value[start..=end].to_ascii_lowercase(),
        _ => return false,
    };
    (name[0].is_ascii_lowercase() || name[0] == b'_')
        && name
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        && !name.starts_with(b"pg_")
}

/// Every byte as `%XX`.
fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// libpq's `%XX` decoding (`+` stays `+`); `None` on a bad escape.
fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}
