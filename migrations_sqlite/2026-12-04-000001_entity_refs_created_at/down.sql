-- ai_job_entity_refs as migration 2026-11-24-000003 left it: rebuilt
-- without created_at, with its (entity_kind, entity_id, job_id) index and
-- the trigger that fills it.

CREATE TEMP TABLE hsk_m6_refs AS
    SELECT job_id, position, entity_id, entity_kind FROM ai_job_entity_refs;

DROP TABLE ai_job_entity_refs;

CREATE TABLE ai_job_entity_refs (
    job_id TEXT NOT NULL REFERENCES ai_jobs (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    entity_id TEXT NOT NULL,
    entity_kind TEXT NOT NULL,
    PRIMARY KEY (job_id, position)
);

INSERT INTO ai_job_entity_refs (job_id, position, entity_id, entity_kind)
SELECT job_id, position, entity_id, entity_kind FROM hsk_m6_refs;

DROP TABLE hsk_m6_refs;

CREATE INDEX ai_job_entity_refs_entity_idx ON ai_job_entity_refs (entity_kind, entity_id, job_id);

DROP TRIGGER IF EXISTS ai_jobs_index_entity_refs;
CREATE TRIGGER ai_jobs_index_entity_refs
AFTER INSERT ON ai_jobs
BEGIN
    INSERT INTO ai_job_entity_refs (job_id, position, entity_id, entity_kind)
    SELECT NEW.id, key, value ->> '$.entity_id', value ->> '$.entity_kind'
    FROM json_each(NEW.entity_refs);
END;
