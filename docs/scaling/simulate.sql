-- The measured half of docs/scaling.md: this schema at 10^6 AI jobs, with
-- the query plans of the hot paths and per-workspace row counts, to show
-- which calls stay inside one workspace (single-shard under Citus) and
-- which read across workspaces (fan out).
--
--   psql "$POSTGRES_TEST_URL" -v ON_ERROR_STOP=1 -f docs/scaling/simulate.sql > docs/scaling/simulation.txt
--
-- Works in a throwaway schema that it drops at the end. The queries are
-- the ones the store sends (see src/backend/store.rs), with literals.
\set QUIET on
\pset pager off
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS hsk_scaling_sim CASCADE;
CREATE SCHEMA hsk_scaling_sim;
SET search_path = hsk_scaling_sim;
\ir ../../migrations_postgres/2026-11-24-000001_create_content/up.sql
\ir ../../migrations_postgres/2026-11-24-000002_create_jobs/up.sql
\ir ../../migrations_postgres/2026-11-24-000003_entity_refs_column/up.sql
SELECT setseed(0.42) AS seeded \gset

-- 200 workspaces, 10 documents and 2 canvases each, 50 blocks per
-- document, 20 nodes and 19 edges per canvas.
INSERT INTO workspaces
SELECT 'ws-' || w, 'workspace ' || w, now() - w * interval '1 minute', now(), 'HUMAN', 'sim', NULL, NULL, gen_random_uuid()
FROM generate_series(1, 200) w;
INSERT INTO documents
SELECT 'doc-' || w || '-' || d, 'ws-' || w, 'doc', now(), now(), 'HUMAN', 'sim', NULL, NULL, gen_random_uuid()
FROM generate_series(1, 200) w, generate_series(1, 10) d;
INSERT INTO blocks
SELECT 'blk-' || w || '-' || d || '-' || b, 'doc-' || w || '-' || d, 'paragraph', b, 'text', 'text', '{}', NULL, true,
       now(), now(), 'HUMAN', 'sim', NULL, NULL, gen_random_uuid()
FROM generate_series(1, 200) w, generate_series(1, 10) d, generate_series(1, 50) b;
INSERT INTO canvases
SELECT 'cv-' || w || '-' || c, 'ws-' || w, 'canvas', now(), now(), 'HUMAN', 'sim', NULL, NULL, gen_random_uuid()
FROM generate_series(1, 200) w, generate_series(1, 2) c;
INSERT INTO canvas_nodes
SELECT 'nd-' || w || '-' || c || '-' || n, 'cv-' || w || '-' || c, 'note', n, n, '{}', now(), now(), 'HUMAN', 'sim', NULL, NULL, gen_random_uuid()
FROM generate_series(1, 200) w, generate_series(1, 2) c, generate_series(1, 20) n;
INSERT INTO canvas_edges
SELECT 'ed-' || w || '-' || c || '-' || n, 'cv-' || w || '-' || c, 'nd-' || w || '-' || c || '-' || n,
       'nd-' || w || '-' || c || '-' || (n + 1), 'link', now(), now(), 'HUMAN', 'sim', NULL, NULL, gen_random_uuid()
FROM generate_series(1, 200) w, generate_series(1, 2) c, generate_series(1, 19) n;

-- 10^6 jobs, each referring to one workspace (Zipf-like: workspace k gets
-- about twice the jobs of workspace 2k), over the last 30 days; the
-- trigger fills ai_job_entity_refs as it does for the store.
INSERT INTO ai_jobs (id, trace_id, workflow_run_id, job_kind, status, status_reason, error_message,
                     protocol_id, profile_id, capability_profile_id, access_mode, safety_mode,
                     planned_operations, metrics, job_inputs, job_outputs, pinned, created_at, updated_at,
                     entity_refs)
SELECT gen_random_uuid(), gen_random_uuid(), NULL, 'doc_edit',
       (ARRAY['queued', 'running', 'completed', 'failed'])[1 + (j % 4)], 'sim', NULL,
       'p', 'p', 'c', 'analysis_only', 'normal', '[]', '{}', NULL, NULL, false,
       now() - random() * interval '30 days', now(),
       jsonb_build_array(jsonb_build_object('entity_kind', 'workspace',
                                            'entity_id', 'ws-' || (1 + floor(200 * power(random(), 2)))::int))
FROM generate_series(1, 1000000) j;
-- A workflow run for every 10th job, half of them running.
INSERT INTO workflow_runs
SELECT gen_random_uuid(), id, CASE WHEN random() < 0.5 THEN 'running' ELSE 'completed' END, NULL,
       now() - random() * interval '2 hours', created_at, now()
FROM ai_jobs TABLESAMPLE BERNOULLI (10) REPEATABLE (7);
ANALYZE;
\set QUIET off

\echo '== rows'
SELECT 'workspaces' AS t, count(*) FROM workspaces UNION ALL
SELECT 'documents', count(*) FROM documents UNION ALL
SELECT 'blocks', count(*) FROM blocks UNION ALL
SELECT 'canvas_nodes', count(*) FROM canvas_nodes UNION ALL
SELECT 'ai_jobs', count(*) FROM ai_jobs UNION ALL
SELECT 'ai_job_entity_refs', count(*) FROM ai_job_entity_refs UNION ALL
SELECT 'workflow_runs', count(*) FROM workflow_runs;

\echo '== jobs per workspace (the distribution column candidate): min, median, p99, max'
SELECT min(n), percentile_disc(0.5) WITHIN GROUP (ORDER BY n) AS median,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY n) AS p99, max(n)
FROM (SELECT entity_id, count(*) AS n FROM ai_job_entity_refs
      WHERE entity_kind = 'workspace' GROUP BY entity_id) per_ws;

\echo '== blocks per workspace: min, max'
SELECT min(n), max(n) FROM (SELECT d.workspace_id, count(*) AS n
                            FROM blocks b JOIN documents d ON d.id = b.document_id
                            GROUP BY d.workspace_id) per_ws;

\echo '== workspaces each hot path reads rows of (1 = single-shard when distributed by workspace)'
SELECT 'get_blocks(doc-7-3)' AS call, count(DISTINCT d.workspace_id) AS workspaces, count(*) AS rows
FROM blocks b JOIN documents d ON d.id = b.document_id WHERE b.document_id = 'doc-7-3'
UNION ALL
SELECT 'get_canvas_with_graph(cv-7-1) nodes', count(DISTINCT c.workspace_id), count(*)
FROM canvas_nodes n JOIN canvases c ON c.id = n.canvas_id WHERE n.canvas_id = 'cv-7-1'
UNION ALL
SELECT 'list_documents(ws-7)', count(DISTINCT workspace_id), count(*) FROM documents WHERE workspace_id = 'ws-7'
UNION ALL
SELECT 'list_ai_jobs(wsid=ws-7, limit 50)', count(DISTINCT r.entity_id), count(*)
FROM (SELECT j.id FROM ai_jobs j
      WHERE j.id IN (SELECT job_id FROM ai_job_entity_refs WHERE entity_kind = 'workspace' AND entity_id = 'ws-7')
      ORDER BY j.created_at DESC, j.id DESC LIMIT 50) page
JOIN ai_job_entity_refs r ON r.job_id = page.id
UNION ALL
SELECT 'list_ai_jobs(no filter, limit 50)', count(DISTINCT r.entity_id), count(*)
FROM (SELECT id FROM ai_jobs ORDER BY created_at DESC, id DESC LIMIT 50) page
JOIN ai_job_entity_refs r ON r.job_id = page.id
UNION ALL
SELECT 'find_stalled_workflows(600)', count(DISTINCT r.entity_id), count(*)
FROM workflow_runs w JOIN ai_job_entity_refs r ON r.job_id = w.job_id
WHERE w.status = 'running' AND w.last_heartbeat < now() - interval '600 seconds';

\echo '== plans of the hot paths at 10^6 jobs'
\echo '-- get_block'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT * FROM blocks WHERE id = 'blk-7-3-10';
\echo '-- get_blocks'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT * FROM blocks WHERE document_id = 'doc-7-3' ORDER BY sequence, id;
\echo '-- list_documents'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT * FROM documents WHERE workspace_id = 'ws-7' ORDER BY created_at, id;
\echo '-- get_ai_job'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT * FROM ai_jobs WHERE id = (SELECT id FROM ai_jobs LIMIT 1);
\echo '-- list_ai_jobs, wsid filter, limit 50'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT * FROM ai_jobs
WHERE id IN (SELECT job_id FROM ai_job_entity_refs WHERE entity_kind = 'workspace' AND entity_id = 'ws-7')
ORDER BY created_at DESC, id DESC LIMIT 50;
\echo '-- list_ai_jobs, no filter, limit 50'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT * FROM ai_jobs ORDER BY created_at DESC, id DESC LIMIT 50;
\echo '-- find_stalled_workflows(600)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT * FROM workflow_runs WHERE status = 'running' AND last_heartbeat < now() - interval '600 seconds'
ORDER BY last_heartbeat, id;

DROP SCHEMA hsk_scaling_sim CASCADE;
