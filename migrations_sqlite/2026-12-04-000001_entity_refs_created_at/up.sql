-- The workspace filter of list_ai_jobs, read in list order: each indexed
-- ref carries its job's created_at (which never changes, nor do the refs),
-- and (entity_kind, entity_id, created_at DESC, job_id DESC) lets a page of
-- a workspace's jobs read about as many index entries as it returns, where
-- (entity_kind, entity_id, job_id) made it fetch and sort every job of the
-- workspace. The new index serves every lookup the old one did, so the old
-- one goes. The trigger fills the column from the job.
--
-- Replay-safe (Handshake CX-DBP-022). SQLite has no ADD COLUMN IF NOT
-- EXISTS, so instead of altering ai_job_entity_refs this rebuilds it with
-- the column, whether or not it has it already: its rows are kept aside in
-- a temporary table, the table is dropped (nothing references it) and
-- created again, and the rows go back with their job's created_at.

CREATE TEMP TABLE hsk_m6_refs AS
    SELECT job_id, position, entity_id, entity_kind FROM ai_job_entity_refs;

DROP TABLE ai_job_entity_refs;

CREATE TABLE ai_job_entity_refs (
    job_id TEXT NOT NULL REFERENCES ai_jobs (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    entity_id TEXT NOT NULL,
    entity_kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (job_id, position)
);

INSERT INTO ai_job_entity_refs (job_id, position, entity_id, entity_kind, created_at)
SELECT r.job_id, r.position, r.entity_id, r.entity_kind, j.created_at
FROM hsk_m6_refs r JOIN ai_jobs j ON j.id = r.job_id;

DROP TABLE hsk_m6_refs;

CREATE INDEX ai_job_entity_refs_entity_created_idx
    ON ai_job_entity_refs (entity_kind, entity_id, created_at DESC, job_id DESC);

DROP TRIGGER IF EXISTS ai_jobs_index_entity_refs;
CREATE TRIGGER ai_jobs_index_entity_refs
AFTER INSERT ON ai_jobs
BEGIN
    INSERT INTO ai_job_entity_refs (job_id, position, entity_id, entity_kind, created_at)
    SELECT NEW.id, key, value ->> '$.entity_id', value ->> '$.entity_kind', NEW.created_at
    FROM json_each(NEW.entity_refs);
END;
