DROP TABLE workflow_node_executions;
DROP TABLE workflow_runs;
DROP TABLE ai_job_entity_refs;
DROP TABLE ai_jobs;
