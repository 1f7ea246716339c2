-- Content: workspaces, documents, blocks, canvases and their graphs.
-- SQLite compares text bytewise (BINARY), so ordering by id needs no collation.
-- Every content row records who last wrote it (last_actor_*, last_job_id,
-- last_workflow_id, edit_event_id).
-- Replay-safe (Handshake CX-DBP-022): every statement is a no-op on a
-- database that already has its effect.

CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_actor_kind TEXT NOT NULL,
    last_actor_id TEXT,
    last_job_id TEXT,
    last_workflow_id TEXT,
    edit_event_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS workspaces_created_idx ON workspaces (created_at, id);

CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_actor_kind TEXT NOT NULL,
    last_actor_id TEXT,
    last_job_id TEXT,
    last_workflow_id TEXT,
    edit_event_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_workspace_idx ON documents (workspace_id, created_at, id);

CREATE TABLE IF NOT EXISTS blocks (
    id TEXT PRIMARY KEY NOT NULL,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    raw_content TEXT NOT NULL,
    display_content TEXT NOT NULL,
    derived_content TEXT NOT NULL,
    sensitivity TEXT,
    exportable BOOLEAN,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_actor_kind TEXT NOT NULL,
    last_actor_id TEXT,
    last_job_id TEXT,
    last_workflow_id TEXT,
    edit_event_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_document_sequence_idx ON blocks (document_id, sequence, id);

CREATE TABLE IF NOT EXISTS canvases (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_actor_kind TEXT NOT NULL,
    last_actor_id TEXT,
    last_job_id TEXT,
    last_workflow_id TEXT,
    edit_event_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS canvases_workspace_idx ON canvases (workspace_id, created_at, id);

CREATE TABLE IF NOT EXISTS canvas_nodes (
    id TEXT PRIMARY KEY NOT NULL,
    canvas_id TEXT NOT NULL REFERENCES canvases (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    position_x DOUBLE NOT NULL,
    position_y DOUBLE NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_actor_kind TEXT NOT NULL,
    last_actor_id TEXT,
    last_job_id TEXT,
    last_workflow_id TEXT,
    edit_event_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS canvas_nodes_canvas_idx ON canvas_nodes (canvas_id, id);

CREATE TABLE IF NOT EXISTS canvas_edges (
    id TEXT PRIMARY KEY NOT NULL,
    canvas_id TEXT NOT NULL REFERENCES canvases (id) ON DELETE CASCADE,
    from_node_id TEXT NOT NULL REFERENCES canvas_nodes (id) ON DELETE CASCADE,
    to_node_id TEXT NOT NULL REFERENCES canvas_nodes (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_actor_kind TEXT NOT NULL,
    last_actor_id TEXT,
    last_job_id TEXT,
    last_workflow_id TEXT,
    edit_event_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS canvas_edges_canvas_idx ON canvas_edges (canvas_id, id);
CREATE INDEX IF NOT EXISTS canvas_edges_from_idx ON canvas_edges (from_node_id);
CREATE INDEX IF NOT EXISTS canvas_edges_to_idx ON canvas_edges (to_node_id);
