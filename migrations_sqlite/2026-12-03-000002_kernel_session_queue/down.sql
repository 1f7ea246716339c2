DROP TABLE IF EXISTS kernel_session_claims;
DROP TABLE IF EXISTS kernel_session_runs;
