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

/// The heartbeat before which a running workflow counts as stalled, or
/// `None` when `threshold_secs` reaches back before year 1 (nothing is that
/// old).
pub(crate) fn stalled_cutoff(threshold_secs: u64) -> Option<DateTime<Utc>> {
    i64::try_from(threshold_secs)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .and_then(|threshold| now().checked_sub_signed(threshold))
        .and_then(|cutoff| timestamp("cutoff", cutoff).ok())
}

/// Longest id or reference accepted, in bytes. Ids are indexed, and a
/// PostgreSQL btree entry holds at most 2,704 bytes (SQLite has no such
/// limit): two ids and a number must fit in one entry.
pub(crate) const MAX_ID_BYTES: usize = 1024;

/// An id given by the caller: not empty, at most [`MAX_ID_BYTES`].
pub(crate) fn id(field: &str, value: &str) -> StorageResult<()> {
    if value.is_empty() {
        return Err(StorageError::validation(format!(
            "{field} must not be empty"
        )));
    }
    indexed_text(field, value)
}

/// Text stored in an indexed column (an entity ref): at most
/// [`MAX_ID_BYTES`], no NUL byte; may be empty.
pub(crate) fn indexed_text(field: &str, value: &str) -> StorageResult<()> {
    if value.len() > MAX_ID_BYTES {
        return Err(StorageError::validation(format!(
            "{field} is {} bytes long, more than the {MAX_ID_BYTES} an id may have",
            value.len()
        )));
    }
    text(field, value)
}

/// An id used to look a row up: any text without a NUL byte (an empty or
/// unknown id simply finds nothing).
pub(crate) fn key(field: &str, value: &str) -> StorageResult<()> {
    text(field, value)
}

/// A caller's id, or a fresh UUID v7 when none is given.
pub(crate) fn id_or_new(field: &str, value: Option<&str>) -> StorageResult<String> {
    match value {
        Some(v) => id(field, v).map(|()| v.to_string()),
        None => Ok(crate::ids::new_uuid().to_string()),
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

/// Refuses any of `values` nested deeper than [`MAX_JSON_DEPTH`], before
/// anything else looks at the input, and then takes every one of them
/// apart iteratively: serde_json's recursive `Drop` overflows a thread's
/// stack on a few thousand levels, so a refused input must never be
/// dropped whole.
pub(crate) fn shallow_json<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a mut Option<Value>>,
) -> StorageResult<()> {
    let mut values: Vec<&mut Option<Value>> = values.into_iter().collect();
    let too_deep = values
        .iter()
        .filter_map(|v| v.as_ref())
        .any(|v| depth_exceeds(v, MAX_JSON_DEPTH));
    if !too_deep {
        return Ok(());
    }
    for value in values.iter_mut().filter_map(|v| v.take()) {
        dismantle(value);
    }
    Err(StorageError::validation(format!(
        "{field} is nested deeper than {MAX_JSON_DEPTH} levels"
    )))
}

/// Whether `value` nests arrays and objects more than `limit` deep.
fn depth_exceeds(value: &Value, limit: usize) -> bool {
    let mut stack = vec![(value, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        let is_container = matches!(v, Value::Array(_) | Value::Object(_));
        if is_container && depth > limit {
            return true;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|c| (c, depth + 1))),
            _ => {}
        }
    }
    false
}

/// Drops `value` without recursion, however deep it is.
pub(crate) fn dismantle(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
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
        dismantle(deep);
    }

    #[test]
    fn shallow_json_takes_deep_values_apart() {
        // 20,000 nested arrays overflow a test thread's stack when dropped
        // recursively; refusing them must not.
        let deep = (0..20_000).fold(json!(1), |inner, _| Value::Array(vec![inner]));
        let mut values = [Some(json!({"fine": [1]})), Some(deep), None];
        assert!(shallow_json("d", values.iter_mut()).is_err());
        assert!(values.iter().all(Option::is_none));
        let mut fine = [Some((0..MAX_JSON_DEPTH).fold(json!(1), |i, _| json!([i])))];
        assert!(shallow_json("d", fine.iter_mut()).is_ok());
        assert!(fine[0].is_some());
    }

    #[test]
    fn ids_are_bounded() {
        assert!(id("id", &"x".repeat(MAX_ID_BYTES)).is_ok());
        assert!(id("id", &"x".repeat(MAX_ID_BYTES + 1)).is_err());
        assert!(indexed_text("ref", "").is_ok());
        assert!(indexed_text("ref", &"é".repeat(MAX_ID_BYTES / 2 + 1)).is_err());
    }
}
