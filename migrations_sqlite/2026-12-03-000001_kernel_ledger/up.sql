-- The kernel's append-only event ledger (docs/kernel.md).
-- event_sequence is given by the store inside its write transaction (one
-- past the largest committed; SQLite has one writer at a time), so sequence
-- order is commit order and a tailing reader never skips an event.
-- Replay-safe (Handshake CX-DBP-022): every statement is a no-op on a
-- database that already has its effect.

CREATE TABLE IF NOT EXISTS kernel_events (
    event_sequence BIGINT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL,
    event_version TEXT NOT NULL,
    kernel_task_run_id TEXT NOT NULL,
    session_run_id TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    event_type TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    causation_id TEXT,
    correlation_id TEXT,
    source_component TEXT NOT NULL,
    payload TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS kernel_events_event_id_idx ON kernel_events (event_id);
CREATE UNIQUE INDEX IF NOT EXISTS kernel_events_idempotency_key_idx ON kernel_events (idempotency_key);
CREATE INDEX IF NOT EXISTS kernel_events_session_idx ON kernel_events (session_run_id, event_sequence);
CREATE INDEX IF NOT EXISTS kernel_events_aggregate_idx ON kernel_events (aggregate_type, aggregate_id, event_sequence);
