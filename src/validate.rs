//! Input checks shared by every backend, run before a value reaches the
//! database, so that what one backend would accept and another refuse (a
//! NUL byte, NaN, a year PostgreSQL and SQLite text disagree on) is refused
//! the same way everywhere, with `Validation`.

use chrono::{DateTime, Datelike, SubsecRound, Utc};
use serde_json::Value;

use crate::error::{StorageError, StorageResult};

/// Deepest JSON nesting accepted; serde_json refuses to parse deeper
/// documents, so anything deeper could be written but never read back.
pub(crate) const MAX_JSON_DEPTH: usize = 100;

/// Now, at the microsecond precision every backend keeps.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A caller's timestamp: years 1..=9999 (what both backends hold and what
/// sorts correctly as text), truncated to microseconds.
pub(crate) fn timestamp(field: &str, at: DateTime<Utc>) -> StorageResult<DateTime<Utc>> {
    if !(1..=9999).contains(&at.year()) {
        return Err(StorageError::validation(format!(
            "{field} {at} is outside the years 1 to 9999"
        )));
    }
    Ok(at.trunc_subsecs(6))
}

/// Any text: no NUL byte (PostgreSQL cannot store one).
pub(crate) fn text(field: &str, value: &str) -> StorageResult<()> {
    if value.contains('\0') {
        return Err(StorageError::validation(format!(
            "{field} contains a NUL byte"
        )));
    }
    Ok(())
}

/// Text that must say something: not empty or only white space.
pub(crate) fn non_blank(field: &str, value: &str) -> StorageResult<()> {
    if value.trim().is_empty() {
        return Err(StorageError::validation(format!(
            "{field} must not be empty"
        )));
    }
    text(field, value)
}

/// An id given by the caller.
pub(crate) fn id(field: &str, value: &str) -> StorageResult<()> {
    if value.is_empty() {
        return Err(StorageError::validation(format!(
            "{field} must not be empty"
        )));
    }
    text(field, value)
}

/// An id used to look a row up: any text without a NUL byte (an empty or
/// unknown id simply finds nothing).
pub(crate) fn key(field: &str, value: &str) -> StorageResult<()> {
    text(field, value)
}

/// A caller's id, or a fresh UUID v4 when none is given.
pub(crate) fn id_or_new(field: &str, value: Option<&str>) -> StorageResult<String> {
    match value {
        Some(v) => id(field, v).map(|()| v.to_string()),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

/// A coordinate: finite (SQLite would turn NaN into NULL), and `-0.0`
/// stored as `0.0` (SQLite's REAL drops the sign of zero, PostgreSQL keeps
/// it; one answer for both).
pub(crate) fn coordinate(field: &str, value: f64) -> StorageResult<f64> {
    if !value.is_finite() {
        return Err(StorageError::validation(format!(
            "{field} must be a finite number, got {value}"
        )));
    }
    Ok(if value == 0.0 { 0.0 } else { value })
}

/// JSON: no NUL byte in any string or key, nesting at most
/// [`MAX_JSON_DEPTH`]. Walks iteratively so hostile depth cannot overflow
/// the stack.
pub(crate) fn json(field: &str, value: &Value) -> StorageResult<()> {
    let mut stack = vec![(value, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::String(s) => text(field, s)?,
            Value::Array(items) => {
                check_depth(field, depth)?;
                stack.extend(items.iter().map(|i| (i, depth + 1)));
            }
            Value::Object(map) => {
                check_depth(field, depth)?;
                for (k, item) in map {
                    text(field, k)?;
                    stack.push((item, depth + 1));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    Ok(())
}

fn check_depth(field: &str, depth: usize) -> StorageResult<()> {
    if depth > MAX_JSON_DEPTH {
        return Err(StorageError::validation(format!(
            "{field} is nested deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_rules() {
        assert!(json("d", &json!({"a": [1, "x", {"b": null}]})).is_ok());
        assert!(json("d", &json!({"a\u{0}": 1})).is_err());
        assert!(json("d", &json!(["x\u{0}y"])).is_err());
        let mut deep = json!(1);
        for _ in 0..10_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(json("d", &deep).is_err());
        // Drop iteratively: a recursive drop of 10k levels is fine, but be safe.
        let mut v = deep;
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap_or(Value::Null);
        }
    }
}
