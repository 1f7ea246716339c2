//! The `options=` parameter of a PostgreSQL URL hands command-line
//! switches to the server session. A URL must not choose who the session
//! acts as or which schemas it resolves names in: `role` and
//! `session_authorization` are refused in every spelling the server reads
//! (`-c name=value`, `-cname=value`, `--name=value`, flags run together,
//! upper case, `-` for `_`, any white space), and so is a
//! `search_path` that is anything but one plain schema name (several
//! schemas, `$user`, `pg_temp`, `pg_catalog`, quoted names): one plain
//! name is how a tenant's or a test's schema is chosen, and cannot put a
//! schema ahead of `pg_catalog`.
//!
//! The server splits `options` at white space as its C library's
//! `isspace` sees it, which for a byte above 127 depends on the server's
//! locale, and takes a backslash as an escape (`\ ` joins two words):
//! `options` must therefore be ASCII, without backslashes, and its words
//! are then exactly the server's. The same check applies to
//! `PGOPTIONS`, which libpq sends when the URL gives no `options`
//! ([`check_environment`]). The `fuzz/` target `pg_options` compares this
//! check with a model of how the server reads the switches.

/// Settings a URL may never make.
const REFUSED: [&str; 2] = ["role", "session_authorization"];

/// `Err` with a reason (naming the setting, never quoting the URL) when
/// `options` sets one of the settings above.
pub(super) fn check(options: &str) -> Result<(), String> {
    if !options.is_ascii() {
        return Err("`options` must be ASCII (the server splits other bytes by its locale)".into());
    }
    // The server takes `\x` as `x`, so an escaped space joins words and a
    // value may hold a space: without backslashes its words are exactly
    // the ones split at (ASCII) white space here.
    if options.contains('\\') {
        return Err(
            "`options` may not contain a backslash: give each setting as its own \
                    `-c name=value`, and use the URL's own parameters (application_name, ...) \
                    for values with spaces"
                .into(),
        );
    }
    // Each word as a whole (`name=value` after a bare `-c`, `--name=value`,
    // `-Fcname=value`), then each setting as getopt hands it to `-c` or
    // `--` (a switch cluster may hold `=` or any other byte before them).
    let words: Vec<&str> = options.split_whitespace().collect();
    for token in words.iter().copied().chain(switch_arguments(&words)) {
        // The server reads `-` as `_` in the name only, and folds the
        // name's case; a value's unquoted names are folded too.
        let (key, value) = token.split_once('=').unwrap_or((token, ""));
        let key = key.to_ascii_lowercase().replace('-', "_");
        let value = value.to_ascii_lowercase();
        let (key, value) = (key.as_str(), value.as_str());
        for name in REFUSED {
            if names(key, name) {
                return Err(format!(
                    "`options` may not set {name}: connect as the role the store should use"
                ));
            }
        }
        if names(key, "search_path") && !plain_schema(value) {
            return Err(
                "`options` may set search_path only to one plain schema name \
                        (lower-case letters, digits, `_`; not pg_*)"
                    .into(),
            );
        }
    }
    Ok(())
}

/// The server's switches that take an argument (`process_postgres_switches`:
/// "B:bC:c:D:d:EeFf:h:ijk:lN:nOPp:r:S:sTt:v:W:-:").
const WITH_ARGUMENT: &[u8] = b"BCcDdfhkNprStvW-";

/// What getopt hands to each switch that takes an argument: in a word
/// starting with `-`, every byte up to the first such switch is a switch
/// of its own (known or not), and the argument is the rest of the word,
/// or the next word when the rest is empty. A superset of what the server
/// passes to `-c` and `--` (it stops at `--` and at errors; this does not).
fn switch_arguments<'a>(words: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let Some(switches) = word.strip_prefix('-') else {
            continue;
        };
        if let Some(at) = switches.bytes().position(|b| WITH_ARGUMENT.contains(&b)) {
            let rest = &switches[at + 1..];
            if !rest.is_empty() {
                out.push(rest);
            } else if let Some(next) = words.get(i + 1) {
                out.push(next);
            }
        }
    }
    out
}

/// The check of [`check`] for `PGOPTIONS`, which libpq sends in place of
/// a URL's `options` when the URL has none (`url_has_options`).
#[cfg(feature = "postgres")]
pub(super) fn check_environment(url_has_options: bool) -> Result<(), String> {
    if url_has_options {
        return Ok(());
    }
    match std::env::var("PGOPTIONS") {
        Ok(options) => check(&options).map_err(|reason| {
            format!("PGOPTIONS (libpq sends it when the URL has no `options`): {reason}")
        }),
        Err(std::env::VarError::NotPresent) => Ok(()),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err("PGOPTIONS (libpq sends it when the URL has no `options`) is not UTF-8".into())
        }
    }
}

/// Whether `key` (a token's part before `=`, with `-` as `_`) sets
/// `name`: `name` itself (the word after a bare `-c`), or a switch word
/// ending in `-c` or `--` before it, whatever switches run together in
/// front (`--name`, `-Fcname`, `-F-name`: getopt reads every character
/// up to the first that takes an argument as a switch, and `-` takes one).
fn names(key: &str, name: &str) -> bool {
    let Some(prefix) = key.strip_suffix(name) else {
        return false;
    };
    prefix.is_empty()
        || (prefix.starts_with('_') && (prefix.ends_with('c') || prefix.ends_with('_')))
}

/// One unquoted schema name that is not one of the server's own.
fn plain_schema(value: &str) -> bool {
    let mut chars = value.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !value.starts_with("pg_")
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn refuses_role_and_session_authorization_in_every_spelling() {
        for options in [
            "-c role=x",
            "-crole=x",
            "--role=x",
            "-c ROLE=x",
            "-c session_authorization=postgres",
            "-c session-authorization=postgres",
            "--session-authorization=postgres",
            "-c\\ role=x",
            "-Fcrole=x",
            "-c statement_timeout=5 -c role=x",
            "-c role",
            // Every white space the server splits at, escaped or not.
            "-c\trole=x",
            "-c\x0brole=x",
            "-c\x0crole=x",
            "-c\rrole=x",
            "-c\nrole=x",
            "-c  role=x",
            "-c\\ \\ role=x",
            "-c statement_timeout=5\\ -c\\ role=x",
            "-c\\role=x",
            "-crole\\=x",
            "--\\role=x",
            "-c r\\ole=x",
            "--ROLE=x",
            "-c Role=x",
            "--session_Authorization=x",
            "-eFc role=x",
            "-c role=x=y",
            // Switches run together before `--` (found by the fuzz
            // target), known or not.
            "-F-role=x",
            "-\x08gl-role=l",
            "-Fe--role=x",
            "-\x08=gl-role=l",
            "-=-role=x",
            "-x=y-c role=x",
            // Bytes a server's locale may take for white space.
            "-c application_name=a\u{a0}-crole=x",
            "-c application_name=\u{85}--role=x",
        ] {
            assert!(check(options).is_err(), "{options}");
        }
    }

    #[test]
    fn search_path_is_one_plain_schema_or_refused() {
        for options in [
            "-csearch_path=a,b",
            "-c search_path=public,pg_catalog",
            "--search_path=pg_temp",
            "--search-path=\"$user\"",
            "-c search_path=a,\\ b",
            "-c search_path=",
            "-c SEARCH_PATH=a,b",
            "-c\tsearch_path=pg_catalog",
            "-c search_path=tenant\\,pg_temp",
            "-c search-path=tenant,\\\"$user\"",
            "-Fcsearch_path=PG_TEMP",
            "-c search_path=t\u{e9}nant",
            // A `-` in the value stays a `-` (found by the fuzz target).
            "-c search_path=te-c",
            "-F-search_path=a,b",
            "-c search_path=tenant\\ ",
            "-c search_path=Trolet7\\ ;",
        ] {
            assert!(check(options).is_err(), "{options}");
        }
        for options in [
            "-csearch_path=hsk_scratch_1_ab",
            "-c search_path=tenant7",
            "-c search_path=Tenant7",
            "-c statement_timeout=5000",
            "-c application_name=rolex",
            "-c myrole=x",
            "",
        ] {
            assert!(check(options).is_ok(), "{options}");
        }
    }
}
