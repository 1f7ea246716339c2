"""Where a SQLite `create_ai_job` spends its time, at the SQL level.

Takes a database migrated by this build (`hsk-storage migrate`), and for
each variant of its schema (the trigger that fills ai_job_entity_refs
dropped, the three ai_jobs list indexes dropped, both, the indexes
ascending, a larger WAL checkpoint interval) inserts jobs one per
transaction, as `create_ai_job` does (WAL, synchronous=NORMAL, foreign
keys on, statements cached), in interleaved rounds. Prints the median
time per insert of each variant. Python's sqlite3 module links the
system's SQLite, not the bundled one: compare variants with each other,
not with the store.

    DATABASE_URL=sqlite:///tmp/jobs.db hsk-storage migrate
    python3 benches/probes/sqlite_job_write.py /tmp/jobs.db
"""

import datetime
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid

JOBS, WARMUP = 3000, 200
ROUNDS = int(os.environ.get("HSK_PROBE_ROUNDS", "5"))
METRICS = json.dumps({k: 0 for k in (
    "duration_ms total_tokens input_tokens output_tokens tokens_planner "
    "tokens_executor entities_read entities_written validators_run_count").split()})
INSERT = (
    "INSERT INTO ai_jobs (id, trace_id, workflow_run_id, job_kind, status, status_reason, "
    "error_message, protocol_id, profile_id, capability_profile_id, access_mode, safety_mode, "
    "planned_operations, metrics, job_inputs, job_outputs, pinned, created_at, updated_at, "
    "entity_refs) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
LIST_INDEXES = ["ai_jobs_created_idx", "ai_jobs_status_created_idx", "ai_jobs_kind_created_idx"]
NO_TRIGGER = ["DROP TRIGGER ai_jobs_index_entity_refs"]
NO_LIST_INDEXES = [f"DROP INDEX {name}" for name in LIST_INDEXES]
ASCENDING = NO_LIST_INDEXES + [
    "DROP INDEX ai_job_entity_refs_entity_created_idx",
    "CREATE INDEX ai_jobs_created_idx ON ai_jobs (created_at, id)",
    "CREATE INDEX ai_jobs_status_created_idx ON ai_jobs (status, created_at, id)",
    "CREATE INDEX ai_jobs_kind_created_idx ON ai_jobs (job_kind, created_at, id)",
    "CREATE INDEX ai_job_entity_refs_entity_created_idx "
    "ON ai_job_entity_refs (entity_kind, entity_id, created_at, job_id)",
]
REFS_WITHOUT_ROWID = [
    "DROP TRIGGER ai_jobs_index_entity_refs",
    "ALTER TABLE ai_job_entity_refs RENAME TO old_refs",
    "DROP INDEX ai_job_entity_refs_entity_created_idx",
    "CREATE TABLE ai_job_entity_refs (job_id TEXT NOT NULL REFERENCES ai_jobs (id) ON DELETE CASCADE, "
    "position BIGINT NOT NULL, entity_id TEXT NOT NULL, entity_kind TEXT NOT NULL, "
    "created_at TEXT NOT NULL, PRIMARY KEY (job_id, position)) WITHOUT ROWID",
    "DROP TABLE old_refs",
    "CREATE INDEX ai_job_entity_refs_entity_created_idx "
    "ON ai_job_entity_refs (entity_kind, entity_id, created_at DESC, job_id DESC)",
    "CREATE TRIGGER ai_jobs_index_entity_refs AFTER INSERT ON ai_jobs BEGIN "
    "INSERT INTO ai_job_entity_refs (job_id, position, entity_id, entity_kind, created_at) "
    "SELECT NEW.id, key, value ->> '$.entity_id', value ->> '$.entity_kind', NEW.created_at "
    "FROM json_each(NEW.entity_refs); END",
]
VARIANTS = {
    "as migrated": [],
    "no refs trigger": NO_TRIGGER,
    "no list indexes": NO_LIST_INDEXES,
    "neither": NO_TRIGGER + NO_LIST_INDEXES,
    "indexes ascending": ASCENDING,
    "wal_autocheckpoint=10000": ["PRAGMA wal_autocheckpoint=10000"],
    "refs WITHOUT ROWID": REFS_WITHOUT_ROWID,
}


def job():
    at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    refs = json.dumps([{"entity_id": str(uuid.uuid4()), "entity_kind": "workspace"}])
    return (str(uuid.uuid4()), str(uuid.uuid4()), None, "doc_edit", "queued", "queued", None,
            "hsk.doc_edit@1", "profile", "capability", "analysis_only", "normal", "[]", METRICS,
            '{"a":1}', None, 0, at, at, refs)


def per_insert_us(migrated, work, statements):
    path = os.path.join(work, "variant.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    shutil.copy(migrated, path)
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    for statement in statements:
        conn.execute(statement)
    rows = [job() for _ in range(JOBS)]
    for row in rows[:WARMUP]:
        conn.execute(INSERT, row)
    start = time.perf_counter()
    for row in rows[WARMUP:]:
        conn.execute(INSERT, row)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / (JOBS - WARMUP) * 1e6


def main():
    migrated = sys.argv[1]
    times = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(ROUNDS):
            for name, statements in VARIANTS.items():
                times[name].append(per_insert_us(migrated, work, statements))
    print(f"SQLite {sqlite3.sqlite_version}, {JOBS - WARMUP} inserts per run, {ROUNDS} rounds")
    for name, runs in times.items():
        runs.sort()
        print(f"{name:26s} median {runs[len(runs) // 2]:7.1f} us   runs "
              + " ".join(f"{r:.1f}" for r in runs))


if __name__ == "__main__":
    main()
