//! The kernel's domain types: the append-only event ledger and the queue of
//! session runs with leases (SPEC, "The kernel ledger and session queue").
//! No database in sight: the store (`backend/kernel_store.rs`) writes and
//! reads them, and `docs/kernel.md` says what the store guarantees.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{StorageError, StorageResult};

/// Who caused a kernel event: a kind (as upstream names them) and an id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KernelActor {
    /// What sort of actor.
    pub kind: KernelActorKind,
    /// Which one (required, not blank).
    pub id: String,
}

impl KernelActor {
    /// An actor of `kind` named `id`.
    pub fn new(kind: KernelActorKind, id: impl Into<String>) -> Self {
        KernelActor {
            kind,
            id: id.into(),
        }
    }
}

/// The kinds of kernel actor, stored as upstream's snake_case names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelActorKind {
    /// A person operating Handshake.
    Operator,
    /// The runtime itself.
    #[default]
    System,
    /// The broker that queues and hands out session runs.
    SessionBroker,
    /// A model adapter running a session.
    ModelAdapter,
    /// The tool gate.
    Toolgate,
    /// The validation runner.
    ValidationRunner,
    /// The promotion gate.
    PromotionGate,
}

impl KernelActorKind {
    /// Every kind, in declaration order.
    pub const ALL: [KernelActorKind; 7] = [
        KernelActorKind::Operator,
        KernelActorKind::System,
        KernelActorKind::SessionBroker,
        KernelActorKind::ModelAdapter,
        KernelActorKind::Toolgate,
        KernelActorKind::ValidationRunner,
        KernelActorKind::PromotionGate,
    ];

    /// The stored name (`session_broker`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            KernelActorKind::Operator => "operator",
            KernelActorKind::System => "system",
            KernelActorKind::SessionBroker => "session_broker",
            KernelActorKind::ModelAdapter => "model_adapter",
            KernelActorKind::Toolgate => "toolgate",
            KernelActorKind::ValidationRunner => "validation_runner",
            KernelActorKind::PromotionGate => "promotion_gate",
        }
    }
}

impl fmt::Display for KernelActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KernelActorKind {
    type Err = StorageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KernelActorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StorageError::Serialization(format!("unknown kernel actor kind {s:?}")))
    }
}

/// An event to append to the ledger. Every `String` field is required (not
/// blank after trimming); `Default` gives blank fields, which
/// validation refuses, so callers write `..Default::default()` after the
/// fields they set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewKernelEvent {
    /// The event schema's version (for example `"1"`).
    pub event_version: String,
    /// The kernel task run the event belongs to.
    pub kernel_task_run_id: String,
    /// The session run the event belongs to.
    pub session_run_id: String,
    /// The kind of aggregate the event is about (`"session_run"`, ...).
    pub aggregate_type: String,
    /// Which aggregate.
    pub aggregate_id: String,
    /// One event per key: appending the same key again returns the stored
    /// event (same content) or fails with `Conflict` (other content).
    pub idempotency_key: String,
    /// SCREAMING_SNAKE text (`SESSION_QUEUED`, ...).
    pub event_type: String,
    /// Who caused the event.
    pub actor: KernelActor,
    /// The event that caused this one, if any (not blank when given).
    pub causation_id: Option<String>,
    /// The correlation that groups related events, if any (not blank when
    /// given).
    pub correlation_id: Option<String>,
    /// The component that wrote the event.
    pub source_component: String,
    /// The event's data, any JSON.
    pub payload: Value,
}

/// An event as the ledger holds it: what was appended, plus the fields the
/// store assigns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelEvent {
    /// `KE-<uuid v7>`, assigned by the store.
    pub event_id: String,
    /// Position in the ledger, assigned by the database: ascending in
    /// commit order, never reused, starting at 1.
    pub event_sequence: i64,
    /// See [`NewKernelEvent::event_version`].
    pub event_version: String,
    /// See [`NewKernelEvent::kernel_task_run_id`].
    pub kernel_task_run_id: String,
    /// See [`NewKernelEvent::session_run_id`].
    pub session_run_id: String,
    /// See [`NewKernelEvent::aggregate_type`].
    pub aggregate_type: String,
    /// See [`NewKernelEvent::aggregate_id`].
    pub aggregate_id: String,
    /// See [`NewKernelEvent::idempotency_key`].
    pub idempotency_key: String,
    /// See [`NewKernelEvent::event_type`].
    pub event_type: String,
    /// See [`NewKernelEvent::actor`].
    pub actor: KernelActor,
    /// See [`NewKernelEvent::causation_id`].
    pub causation_id: Option<String>,
    /// See [`NewKernelEvent::correlation_id`].
    pub correlation_id: Option<String>,
    /// See [`NewKernelEvent::source_component`].
    pub source_component: String,
    /// See [`NewKernelEvent::payload`].
    pub payload: Value,
    /// SHA-256, lowercase hex, of the payload's canonical JSON
    /// ([`canonical_json`]).
    pub payload_hash: String,
    /// When the store appended it.
    pub created_at: DateTime<Utc>,
}

/// `value` as canonical JSON: object keys sorted bytewise, no whitespace,
/// strings and numbers as serde_json writes them. Equal values give equal
/// text whatever order their keys were built in.
pub fn canonical_json(value: &Value) -> String {
    fn write(out: &mut String, value: &Value) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, item)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(out, item);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(out, item);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(&mut out, value);
    out
}

/// SHA-256, lowercase hex, of [`canonical_json`] of `payload`.
pub fn payload_hash(payload: &Value) -> String {
    Sha256::digest(canonical_json(payload).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The states of a session run, stored as upstream's SCREAMING_SNAKE names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionRunState {
    /// Waiting for a claim.
    Queued,
    /// Held by a worker's claim (a lease), not started yet.
    Claimed,
    /// Started by the worker holding the claim.
    Running,
    /// Finished well.
    Completed,
    /// Finished badly; may be retried or dead-lettered.
    Failed,
    /// Given up on purpose.
    Cancelled,
    /// Held back by backpressure; back to `Queued` later.
    BackpressureDelayed,
    /// To be claimed again once `available_at` passes.
    RetryScheduled,
    /// Given up after failures.
    DeadLettered,
}

impl SessionRunState {
    /// Every state, in declaration order.
    pub const ALL: [SessionRunState; 9] = [
        SessionRunState::Queued,
        SessionRunState::Claimed,
        SessionRunState::Running,
        SessionRunState::Completed,
        SessionRunState::Failed,
        SessionRunState::Cancelled,
        SessionRunState::BackpressureDelayed,
        SessionRunState::RetryScheduled,
        SessionRunState::DeadLettered,
    ];

    /// The stored name (`QUEUED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SessionRunState::Queued => "QUEUED",
            SessionRunState::Claimed => "CLAIMED",
            SessionRunState::Running => "RUNNING",
            SessionRunState::Completed => "COMPLETED",
            SessionRunState::Failed => "FAILED",
            SessionRunState::Cancelled => "CANCELLED",
            SessionRunState::BackpressureDelayed => "BACKPRESSURE_DELAYED",
            SessionRunState::RetryScheduled => "RETRY_SCHEDULED",
            SessionRunState::DeadLettered => "DEAD_LETTERED",
        }
    }

    /// Whether upstream's transition table allows `self -> to` (its 17
    /// legal moves).
    pub fn can_move_to(self, to: SessionRunState) -> bool {
        use SessionRunState::*;
        matches!(
            (self, to),
            (Queued, Claimed | Cancelled | BackpressureDelayed)
                | (Claimed, Running | Cancelled | RetryScheduled)
                | (Running, Completed | Failed | Cancelled)
                | (Failed, RetryScheduled | DeadLettered)
                | (BackpressureDelayed, Queued | Cancelled | DeadLettered)
                | (RetryScheduled, Queued | Claimed | DeadLettered)
        )
    }

    /// Whether a claim holds the run in this state (`Claimed`, `Running`).
    pub fn is_held(self) -> bool {
        matches!(self, SessionRunState::Claimed | SessionRunState::Running)
    }

    /// The ledger event type the `_and_record_event` methods append on
    /// reaching this state (`SESSION_QUEUED`, `SESSION_STARTED` for
    /// `Running`, ...).
    pub fn event_type(self) -> &'static str {
        match self {
            SessionRunState::Queued => "SESSION_QUEUED",
            SessionRunState::Claimed => "SESSION_CLAIMED",
            SessionRunState::Running => "SESSION_STARTED",
            SessionRunState::Completed => "SESSION_COMPLETED",
            SessionRunState::Failed => "SESSION_FAILED",
            SessionRunState::Cancelled => "SESSION_CANCELLED",
            SessionRunState::BackpressureDelayed => "SESSION_BACKPRESSURE_DELAYED",
            SessionRunState::RetryScheduled => "SESSION_RETRY_SCHEDULED",
            SessionRunState::DeadLettered => "SESSION_DEAD_LETTERED",
        }
    }
}

impl fmt::Display for SessionRunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SessionRunState {
    type Err = StorageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionRunState::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StorageError::Serialization(format!("unknown session run state {s:?}")))
    }
}

/// A session run to enqueue, or as enqueued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRun {
    /// `SR-<uuid v7>` from [`SessionRun::queued`], or the caller's id.
    pub session_run_id: String,
    /// The kernel task run it belongs to.
    pub kernel_task_run_id: String,
    /// The model adapter that should run it.
    pub adapter_id: String,
    /// Its state (`Queued` to enqueue).
    pub state: SessionRunState,
    /// When it was enqueued (the database's clock once stored).
    pub created_at: DateTime<Utc>,
    /// When it last changed (the database's clock once stored).
    pub updated_at: DateTime<Utc>,
}

impl SessionRun {
    /// A new queued run with a fresh `SR-<uuid v7>` id.
    pub fn queued(kernel_task_run_id: impl Into<String>, adapter_id: impl Into<String>) -> Self {
        let now = crate::validate::now();
        SessionRun {
            session_run_id: format!("SR-{}", crate::ids::new_uuid()),
            kernel_task_run_id: kernel_task_run_id.into(),
            adapter_id: adapter_id.into(),
            state: SessionRunState::Queued,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A session run with its claim: who holds it, until when, and which
/// attempt this is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelSessionLease {
    /// The run.
    pub session_run_id: String,
    /// Its kernel task run.
    pub kernel_task_run_id: String,
    /// Its adapter.
    pub adapter_id: String,
    /// Its state.
    pub state: SessionRunState,
    /// The worker of the latest claim (kept after the claim ends).
    pub claimed_by: Option<String>,
    /// When the current claim's lease ends (the database's clock); `None`
    /// while no claim holds the run.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Claims so far; the latest claim's fence has this attempt number.
    pub attempt_count: i64,
    /// From when the run may be claimed: the enqueue time, `now + delay`
    /// after a delay, or the lease's end while a claim holds it.
    pub available_at: DateTime<Utc>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl KernelSessionLease {
    /// The fence of the claim that holds the run, while one does
    /// (`Claimed` or `Running`).
    pub fn fence(&self) -> Option<LeaseFence> {
        match (&self.claimed_by, self.state.is_held()) {
            (Some(claimed_by), true) => Some(LeaseFence {
                session_run_id: self.session_run_id.clone(),
                claimed_by: claimed_by.clone(),
                attempt: self.attempt_count,
            }),
            _ => None,
        }
    }
}

/// Names one claim of one run. A fence that is not the run's current
/// claim is refused with `Conflict`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseFence {
    /// The run.
    pub session_run_id: String,
    /// The worker that claimed it.
    pub claimed_by: String,
    /// The claim's attempt number (1 for the first claim).
    pub attempt: i64,
}

/// A state change of a session run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRunUpdate {
    /// The state to move to.
    pub state: SessionRunState,
    /// The claim making the change; when given it must be the current one.
    pub fence: Option<LeaseFence>,
    /// For `RetryScheduled` and `BackpressureDelayed`: how long from now
    /// (the database's clock) until the run is available again.
    pub delay: Option<Duration>,
}

impl SessionRunUpdate {
    /// A move to `state`, unfenced, without delay.
    pub fn to(state: SessionRunState) -> Self {
        SessionRunUpdate {
            state,
            fence: None,
            delay: None,
        }
    }

    /// Made by the claim `fence` names.
    pub fn fenced(mut self, fence: LeaseFence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Available again `delay` from now.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

/// One claim of a session run, as the claim history keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaim {
    /// The run.
    pub session_run_id: String,
    /// The claim's attempt number (its fence).
    pub attempt: i64,
    /// The worker.
    pub claimed_by: String,
    /// When the claim was taken (the database's clock).
    pub claimed_at: DateTime<Utc>,
    /// When its lease ended or ends (renewals move it).
    pub lease_expires_at: DateTime<Utc>,
    /// When the claim ended; `None` while it holds the run.
    pub ended_at: Option<DateTime<Utc>>,
    /// The state the claim ended the run in; `None` with `ended_at` set
    /// when its lease expired and another claim took the run over.
    pub outcome: Option<SessionRunState>,
}

/// Checks a new event before the store sees it.
pub(crate) fn validate_new_event(event: &NewKernelEvent) -> StorageResult<()> {
    use crate::validate;
    for (field, value) in [
        ("event_version", &event.event_version),
        ("kernel_task_run_id", &event.kernel_task_run_id),
        ("session_run_id", &event.session_run_id),
        ("aggregate_type", &event.aggregate_type),
        ("aggregate_id", &event.aggregate_id),
        ("idempotency_key", &event.idempotency_key),
        ("event_type", &event.event_type),
        ("actor.id", &event.actor.id),
        ("source_component", &event.source_component),
    ] {
        validate::non_blank(field, value)?;
        validate::indexed_text(field, value)?;
    }
    for (field, value) in [
        ("causation_id", &event.causation_id),
        ("correlation_id", &event.correlation_id),
    ] {
        if let Some(v) = value {
            validate::non_blank(field, v)?;
            validate::indexed_text(field, v)?;
        }
    }
    let screaming = event
        .event_type
        .starts_with(|c: char| c.is_ascii_uppercase())
        && event
            .event_type
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !screaming {
        return Err(StorageError::validation(format!(
            "event_type {:?} is not SCREAMING_SNAKE text (A-Z, 0-9 and _, starting with a letter)",
            event.event_type
        )));
    }
    validate::json("payload", &event.payload)
}

/// The fields in which a stored event differs from a new one with the same
/// idempotency key (the payload compared by its hash).
pub(crate) fn differing_fields(stored: &KernelEvent, new: &NewKernelEvent) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut check = |field: &'static str, same: bool| {
        if !same {
            fields.push(field);
        }
    };
    check("event_version", stored.event_version == new.event_version);
    check(
        "kernel_task_run_id",
        stored.kernel_task_run_id == new.kernel_task_run_id,
    );
    check(
        "session_run_id",
        stored.session_run_id == new.session_run_id,
    );
    check(
        "aggregate_type",
        stored.aggregate_type == new.aggregate_type,
    );
    check("aggregate_id", stored.aggregate_id == new.aggregate_id);
    check("event_type", stored.event_type == new.event_type);
    check("actor.kind", stored.actor.kind == new.actor.kind);
    check("actor.id", stored.actor.id == new.actor.id);
    check("causation_id", stored.causation_id == new.causation_id);
    check(
        "correlation_id",
        stored.correlation_id == new.correlation_id,
    );
    check(
        "source_component",
        stored.source_component == new.source_component,
    );
    check("payload", stored.payload_hash == payload_hash(&new.payload));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let a: Value =
            serde_json::from_str(r#"{"b": [1, {"z": null, "a": "x"}], "a": 1.5}"#).expect("json");
        assert_eq!(
            canonical_json(&a),
            r#"{"a":1.5,"b":[1,{"a":"x","z":null}]}"#
        );
        let b: Value =
            serde_json::from_str(r#"{"a": 1.5, "b": [1, {"a": "x", "z": null}]}"#).expect("json");
        assert_eq!(payload_hash(&a), payload_hash(&b));
        assert_ne!(
            payload_hash(&json!({"a": 1})),
            payload_hash(&json!({"a": 1.0}))
        );
        assert_eq!(
            payload_hash(&json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn seventeen_legal_moves() {
        let legal = SessionRunState::ALL
            .iter()
            .flat_map(|a| SessionRunState::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_move_to(*b))
            .count();
        assert_eq!(legal, 17);
    }
}
