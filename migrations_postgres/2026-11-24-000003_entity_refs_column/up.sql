-- Entity refs as a column of ai_jobs, so a job is written and read in one
-- statement. ai_job_entity_refs stays as the index behind the workspace
-- filter; a trigger fills it from the column. Refs never change after the
-- job is created, so AFTER INSERT is the only trigger needed, and deleting a
-- job already cascades.
-- Replay-safe (Handshake CX-DBP-022): IF NOT EXISTS, a backfill that only
-- touches rows still holding the default, CREATE OR REPLACE, and the trigger
-- dropped if present before it is created.

-- ai_jobs may hold rows: this migration passes squawk with no exemption.
-- A lock wait fails the migration instead of queueing every reader and
-- writer behind it; SET LOCAL lasts until Diesel commits this migration.
SET LOCAL lock_timeout = '10s';
SET LOCAL statement_timeout = '15min';

ALTER TABLE ai_jobs ADD COLUMN IF NOT EXISTS entity_refs JSONB NOT NULL DEFAULT '[]';

UPDATE ai_jobs
SET entity_refs = r.refs
FROM (
    SELECT job_id,
           jsonb_agg(jsonb_build_object('entity_id', entity_id, 'entity_kind', entity_kind)
                     ORDER BY position) AS refs
    FROM ai_job_entity_refs
    GROUP BY job_id
) AS r
WHERE ai_jobs.id = r.job_id AND ai_jobs.entity_refs = '[]'::jsonb;

CREATE OR REPLACE FUNCTION ai_jobs_index_entity_refs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ai_job_entity_refs (job_id, position, entity_id, entity_kind)
    SELECT NEW.id, e.ordinality - 1, e.value ->> 'entity_id', e.value ->> 'entity_kind'
    FROM jsonb_array_elements(NEW.entity_refs) WITH ORDINALITY AS e (value, ordinality);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS ai_jobs_index_entity_refs ON ai_jobs;
CREATE TRIGGER ai_jobs_index_entity_refs
    AFTER INSERT ON ai_jobs
    FOR EACH ROW EXECUTE FUNCTION ai_jobs_index_entity_refs();
