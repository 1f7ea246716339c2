DROP TRIGGER ai_jobs_index_entity_refs;
ALTER TABLE ai_jobs DROP COLUMN entity_refs;
