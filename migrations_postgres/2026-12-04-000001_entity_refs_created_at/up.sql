-- squawk-ignore-file require-concurrent-index-creation, require-concurrent-index-deletion, ban-drop-default, prefer-robust-stmts
-- Exempt (squawk, CI): CREATE INDEX CONCURRENTLY cannot run in the
-- transaction Diesel runs each migration in, and the backfill below
-- already rewrites every row of ai_job_entity_refs under its row locks in
-- that transaction, so the table's writers (create_ai_job, through the
-- trigger) wait for this migration whatever the index build does.
-- ai_job_entity_refs holds one row per ref of a job, so the build costs
-- about what the backfill costs (docs/performance.md, "The workspace
-- filter"). The placeholder default is dropped once the backfill is done:
-- only the trigger (and the copier, with the trigger off) writes this
-- table, always with the column. DROP DEFAULT has no IF EXISTS form, and
-- needs none: Diesel runs this file in one transaction, and on a replay
-- the column has no default to drop, which is no error.
-- The workspace filter of list_ai_jobs, read in list order: each indexed
-- ref carries its job's created_at (which never changes, nor do the refs),
-- and (entity_kind, entity_id, created_at DESC, job_id DESC) lets a page of
-- a workspace's jobs read about as many index entries as it returns, where
-- (entity_kind, entity_id, job_id) made it fetch and sort every job of the
-- workspace. The new index serves every lookup the old one did, so the old
-- one goes. The trigger fills the column from the job.
-- Replay-safe (Handshake CX-DBP-022): IF [NOT] EXISTS, a backfill that only
-- touches rows still holding the placeholder default, CREATE OR REPLACE,
-- and the trigger dropped if present before it is created.

-- A lock wait fails the migration instead of queueing every reader and
-- writer behind it; SET LOCAL lasts until Diesel commits this migration.
SET LOCAL lock_timeout = '10s';
SET LOCAL statement_timeout = '15min';

-- A constant default adds the column without rewriting the table; the
-- backfill replaces it and the default is dropped again.
ALTER TABLE ai_job_entity_refs
    ADD COLUMN IF NOT EXISTS created_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity';

UPDATE ai_job_entity_refs
SET created_at = ai_jobs.created_at
FROM ai_jobs
WHERE ai_jobs.id = ai_job_entity_refs.job_id
  AND ai_job_entity_refs.created_at = '-infinity';

ALTER TABLE ai_job_entity_refs ALTER COLUMN created_at DROP DEFAULT;

CREATE OR REPLACE FUNCTION ai_jobs_index_entity_refs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ai_job_entity_refs (job_id, position, entity_id, entity_kind, created_at)
    SELECT NEW.id, e.ordinality - 1, e.value ->> 'entity_id', e.value ->> 'entity_kind', NEW.created_at
    FROM jsonb_array_elements(NEW.entity_refs) WITH ORDINALITY AS e (value, ordinality);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS ai_jobs_index_entity_refs ON ai_jobs;
CREATE TRIGGER ai_jobs_index_entity_refs
    AFTER INSERT ON ai_jobs
    FOR EACH ROW EXECUTE FUNCTION ai_jobs_index_entity_refs();

CREATE INDEX IF NOT EXISTS ai_job_entity_refs_entity_created_idx
    ON ai_job_entity_refs (entity_kind, entity_id, created_at DESC, job_id DESC);
DROP INDEX IF EXISTS ai_job_entity_refs_entity_idx;
