-- Entity refs as a column of ai_jobs, so a job is written and read in one
-- statement. ai_job_entity_refs stays as the index behind the workspace
-- filter; a trigger fills it from the column. Refs never change after the
-- job is created, so AFTER INSERT is the only trigger needed, and deleting a
-- job already cascades.
--
-- Replay-safe (Handshake CX-DBP-022). SQLite has no ADD COLUMN IF NOT
-- EXISTS, so instead of altering ai_jobs this rebuilds the job tables with
-- the column, whether or not they have it already: their rows are kept aside
-- in temporary tables, the tables are dropped children first (so no ON
-- DELETE CASCADE fires) and created again, and the rows go back. Each job's
-- refs come from ai_job_entity_refs, which the trigger keeps equal to the
-- column, so a second run writes back what it found; the trigger refills
-- ai_job_entity_refs as the jobs go back in.

CREATE TEMP TABLE hsk_m3_jobs AS SELECT * FROM ai_jobs;
CREATE TEMP TABLE hsk_m3_refs AS SELECT * FROM ai_job_entity_refs;
CREATE TEMP TABLE hsk_m3_runs AS SELECT * FROM workflow_runs;
CREATE TEMP TABLE hsk_m3_executions AS SELECT * FROM workflow_node_executions;

DROP TABLE workflow_node_executions;
DROP TABLE workflow_runs;
DROP TABLE ai_job_entity_refs;
DROP TABLE ai_jobs;

CREATE TABLE ai_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    trace_id TEXT NOT NULL,
    workflow_run_id TEXT,
    job_kind TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT NOT NULL,
    error_message TEXT,
    protocol_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    capability_profile_id TEXT NOT NULL,
    access_mode TEXT NOT NULL,
    safety_mode TEXT NOT NULL,
    planned_operations TEXT NOT NULL,
    metrics TEXT NOT NULL,
    job_inputs TEXT,
    job_outputs TEXT,
    pinned BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    entity_refs TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX ai_jobs_created_idx ON ai_jobs (created_at DESC, id DESC);
CREATE INDEX ai_jobs_status_created_idx ON ai_jobs (status, created_at DESC, id DESC);
CREATE INDEX ai_jobs_kind_created_idx ON ai_jobs (job_kind, created_at DESC, id DESC);

CREATE TABLE ai_job_entity_refs (
    job_id TEXT NOT NULL REFERENCES ai_jobs (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    entity_id TEXT NOT NULL,
    entity_kind TEXT NOT NULL,
    PRIMARY KEY (job_id, position)
);
CREATE INDEX ai_job_entity_refs_entity_idx ON ai_job_entity_refs (entity_kind, entity_id, job_id);

CREATE TABLE workflow_runs (
    id TEXT PRIMARY KEY NOT NULL,
    job_id TEXT NOT NULL REFERENCES ai_jobs (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    error_message TEXT,
    last_heartbeat TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX workflow_runs_job_idx ON workflow_runs (job_id);
CREATE INDEX workflow_runs_status_heartbeat_idx ON workflow_runs (status, last_heartbeat, id);

CREATE TABLE workflow_node_executions (
    id TEXT PRIMARY KEY NOT NULL,
    workflow_run_id TEXT NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    node_type TEXT NOT NULL,
    status TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    input_payload TEXT,
    output_payload TEXT,
    error_message TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX workflow_node_executions_run_idx ON workflow_node_executions (workflow_run_id, sequence, id);

CREATE TRIGGER ai_jobs_index_entity_refs
AFTER INSERT ON ai_jobs
BEGIN
    INSERT INTO ai_job_entity_refs (job_id, position, entity_id, entity_kind)
    SELECT NEW.id, key, value ->> '$.entity_id', value ->> '$.entity_kind'
    FROM json_each(NEW.entity_refs);
END;

INSERT INTO ai_jobs (id, trace_id, workflow_run_id, job_kind, status, status_reason, error_message, protocol_id, profile_id, capability_profile_id, access_mode, safety_mode, planned_operations, metrics, job_inputs, job_outputs, pinned, created_at, updated_at, entity_refs)
SELECT j.id, j.trace_id, j.workflow_run_id, j.job_kind, j.status, j.status_reason, j.error_message, j.protocol_id, j.profile_id, j.capability_profile_id, j.access_mode, j.safety_mode, j.planned_operations, j.metrics, j.job_inputs, j.job_outputs, j.pinned, j.created_at, j.updated_at,
       COALESCE((
           SELECT json_group_array(json_object('entity_id', r.entity_id, 'entity_kind', r.entity_kind)
                                   ORDER BY r.position)
           FROM hsk_m3_refs r
           WHERE r.job_id = j.id
       ), '[]')
FROM hsk_m3_jobs j;
INSERT INTO workflow_runs (id, job_id, status, error_message, last_heartbeat, created_at, updated_at)
SELECT id, job_id, status, error_message, last_heartbeat, created_at, updated_at FROM hsk_m3_runs;
INSERT INTO workflow_node_executions (id, workflow_run_id, node_id, node_type, status, sequence, input_payload, output_payload, error_message, started_at, finished_at, created_at, updated_at)
SELECT id, workflow_run_id, node_id, node_type, status, sequence, input_payload, output_payload, error_message, started_at, finished_at, created_at, updated_at FROM hsk_m3_executions;

DROP TABLE hsk_m3_jobs;
DROP TABLE hsk_m3_refs;
DROP TABLE hsk_m3_runs;
DROP TABLE hsk_m3_executions;
