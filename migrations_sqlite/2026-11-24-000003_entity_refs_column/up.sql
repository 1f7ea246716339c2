-- Entity refs as a column of ai_jobs, so a job is written and read in one
-- statement. ai_job_entity_refs stays as the index behind the workspace
-- filter; a trigger fills it from the column. Refs never change after the
-- job is created, so AFTER INSERT is the only trigger needed, and deleting a
-- job already cascades.

ALTER TABLE ai_jobs ADD COLUMN entity_refs TEXT NOT NULL DEFAULT '[]';

UPDATE ai_jobs
SET entity_refs = (
    SELECT json_group_array(json_object('entity_id', entity_id, 'entity_kind', entity_kind)
                            ORDER BY position)
    FROM ai_job_entity_refs
    WHERE ai_job_entity_refs.job_id = ai_jobs.id
)
WHERE EXISTS (SELECT 1 FROM ai_job_entity_refs WHERE ai_job_entity_refs.job_id = ai_jobs.id);

CREATE TRIGGER ai_jobs_index_entity_refs
AFTER INSERT ON ai_jobs
BEGIN
    INSERT INTO ai_job_entity_refs (job_id, position, entity_id, entity_kind)
    SELECT NEW.id, key, value ->> '$.entity_id', value ->> '$.entity_kind'
    FROM json_each(NEW.entity_refs);
END;
