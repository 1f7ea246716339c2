-- squawk-ignore-file ban-drop-column, require-concurrent-index-creation, require-concurrent-index-deletion
-- Exempt (squawk, CI): a down migration exists for `diesel migration redo`
-- in development; dropping what its up.sql created and building the index
-- it dropped is its purpose, in Diesel's transaction.
SET LOCAL lock_timeout = '10s';
SET LOCAL statement_timeout = '15min';

CREATE INDEX IF NOT EXISTS ai_job_entity_refs_entity_idx
    ON ai_job_entity_refs (entity_kind, entity_id, job_id);
DROP INDEX IF EXISTS ai_job_entity_refs_entity_created_idx;

-- The trigger function as migration 2026-11-24-000003 left it.
CREATE OR REPLACE FUNCTION ai_jobs_index_entity_refs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ai_job_entity_refs (job_id, position, entity_id, entity_kind)
    SELECT NEW.id, e.ordinality - 1, e.value ->> 'entity_id', e.value ->> 'entity_kind'
    FROM jsonb_array_elements(NEW.entity_refs) WITH ORDINALITY AS e (value, ordinality);
    RETURN NULL;
END;
$$;

ALTER TABLE ai_job_entity_refs DROP COLUMN IF EXISTS created_at;
