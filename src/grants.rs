//! Least privilege on PostgreSQL: the report of
//! [`grant_application_role`](crate::grant_application_role) and the rules
//! for the role name it is given. The owner migrates; the application runs
//! as a role that may only read and write rows, opened with
//! `StorageConfig::run_migrations(false)`. The grants themselves are SQL,
//! in the backend (`backend/postgres/grant.rs`); nothing here touches a
//! database.

use serde::{Deserialize, Serialize};

use crate::error::{StorageError, StorageResult};

/// What [`grant_application_role`](crate::grant_application_role) granted,
/// and the statements it ran (in order, in one transaction).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantReport {
    /// The role that received the grants.
    pub role: String,
    /// The schema of the store (`USAGE` on it).
    pub schema: String,
    /// The store's tables (`SELECT`, `INSERT`, `UPDATE`, `DELETE` on each).
    pub tables: Vec<String>,
    /// Tables the role may only read: Diesel's bookkeeping table, which
    /// the check at open reads.
    pub read_only_tables: Vec<String>,
    /// Sequences owned by the store's tables (`USAGE`); none today.
    pub sequences: Vec<String>,
    /// Functions the store's triggers call (`EXECUTE`), with their
    /// argument types.
    pub functions: Vec<String>,
    /// The `GRANT` statements run, as sent.
    pub statements: Vec<String>,
}

/// Refuses a role name that cannot name an ordinary login role: empty,
/// longer than PostgreSQL's 63 bytes, holding a NUL or a control
/// character, one of the names the server reserves (`public`, `none`,
/// `current_user`, `current_role`, `session_user`) or starting with `pg_`
/// (the server's own roles). Anything else is allowed, since it is always
/// sent quoted ([`quote_ident`]).
pub(crate) fn check_role_name(role: &str) -> StorageResult<()> {
    let bad = |why: &str| {
        Err(StorageError::validation(format!(
            "bad role name {role:?}: {why}"
        )))
    };
    if role.is_empty() {
        return bad("it is empty");
    }
    if role.len() > 63 {
        return bad("PostgreSQL role names are at most 63 bytes");
    }
    if role.chars().any(char::is_control) {
        return bad("it holds a control character");
    }
    let lower = role.to_ascii_lowercase();
    if [
        "public",
        "none",
        "current_user",
        "current_role",
        "session_user",
    ]
    .contains(&lower.as_str())
    {
        return bad("the server reserves this name");
    }
    if lower.starts_with("pg_") {
        return bad("names starting with pg_ are the server's own roles");
    }
    Ok(())
}

/// `name` as a quoted SQL identifier: in double quotes, each `"` doubled.
/// The only way a name reaches a statement's text.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_checked_and_quoted() {
        for ok in [
            "app",
            "App Role",
            "x\"; DROP TABLE ai_jobs; --",
            "ünï",
            "a-b.c@d",
        ] {
            check_role_name(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            "",
            "public",
            "PUBLIC",
            "none",
            "current_user",
            "session_user",
            "current_role",
            "pg_read_all_data",
            "a\0b",
            "a\nb",
            &"x".repeat(64),
        ] {
            assert!(
                matches!(check_role_name(bad), Err(StorageError::Validation(_))),
                "{bad:?} accepted"
            );
        }
        assert_eq!(quote_ident("app"), "\"app\"");
        assert_eq!(
            quote_ident("x\"; DROP TABLE t; --"),
            "\"x\"\"; DROP TABLE t; --\""
        );
    }
}
