-- The kernel's queue of session runs with leases, and the history of every
-- claim (docs/kernel.md). available_at is when a run may next be claimed:
-- the enqueue time, the end of a delay, or the end of the lease while a
-- claim holds it, so one partial index serves claim-next for runs waiting
-- and for claims whose lease expired.
-- Replay-safe (Handshake CX-DBP-022): every statement is a no-op on a
-- database that already has its effect.

CREATE TABLE IF NOT EXISTS kernel_session_runs (
    session_run_id TEXT PRIMARY KEY NOT NULL,
    kernel_task_run_id TEXT NOT NULL,
    adapter_id TEXT NOT NULL,
    state TEXT NOT NULL,
    claimed_by TEXT,
    lease_expires_at TEXT,
    attempt_count BIGINT NOT NULL,
    available_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kernel_session_runs_claimable_idx ON kernel_session_runs (available_at, session_run_id)
    WHERE state IN ('QUEUED', 'RETRY_SCHEDULED', 'CLAIMED', 'RUNNING');
CREATE INDEX IF NOT EXISTS kernel_session_runs_adapter_claimable_idx ON kernel_session_runs (adapter_id, available_at, session_run_id)
    WHERE state IN ('QUEUED', 'RETRY_SCHEDULED', 'CLAIMED', 'RUNNING');

CREATE TABLE IF NOT EXISTS kernel_session_claims (
    session_run_id TEXT NOT NULL REFERENCES kernel_session_runs (session_run_id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    lease_expires_at TEXT NOT NULL,
    ended_at TEXT,
    outcome TEXT,
    PRIMARY KEY (session_run_id, attempt)
);
