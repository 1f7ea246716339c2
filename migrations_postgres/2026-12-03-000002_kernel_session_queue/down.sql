-- squawk-ignore-file ban-drop-table
-- Exempt (squawk, CI): a down migration exists for `diesel migration redo`
-- in development; dropping what its up.sql created is its purpose.
-- Diesel runs each migration in its own transaction, so SET LOCAL bounds
-- only this one.
SET LOCAL lock_timeout = '10s';
SET LOCAL statement_timeout = '15min';

DROP TABLE IF EXISTS kernel_session_claims;
DROP TABLE IF EXISTS kernel_session_runs;
