-- squawk-ignore-file ban-drop-column, ban-drop-function
-- Exempt (squawk, CI): a down migration exists for `diesel migration redo`
-- in development; dropping what its up.sql created is its purpose.
-- Diesel runs each migration in its own transaction, so SET LOCAL bounds
-- only this one.
SET LOCAL lock_timeout = '10s';
SET LOCAL statement_timeout = '15min';

DROP TRIGGER IF EXISTS ai_jobs_index_entity_refs ON ai_jobs;
DROP FUNCTION IF EXISTS ai_jobs_index_entity_refs();
ALTER TABLE ai_jobs DROP COLUMN IF EXISTS entity_refs;
