// @generated automatically by Diesel CLI.

diesel::table! {
    ai_job_entity_refs (job_id, position) {
        job_id -> Uuid,
        position -> Int8,
        entity_id -> Text,
        entity_kind -> Text,
    }
}

diesel::table! {
    ai_jobs (id) {
        id -> Uuid,
        trace_id -> Uuid,
        workflow_run_id -> Nullable<Uuid>,
        job_kind -> Text,
        status -> Text,
        status_reason -> Text,
        error_message -> Nullable<Text>,
        protocol_id -> Text,
        profile_id -> Text,
        capability_profile_id -> Text,
        access_mode -> Text,
        safety_mode -> Text,
        planned_operations -> Jsonb,
        metrics -> Jsonb,
        job_inputs -> Nullable<Jsonb>,
        job_outputs -> Nullable<Jsonb>,
        pinned -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        entity_refs -> Jsonb,
    }
}

diesel::table! {
    blocks (id) {
        id -> Text,
        document_id -> Text,
        kind -> Text,
        sequence -> Int8,
        raw_content -> Text,
        display_content -> Text,
        derived_content -> Jsonb,
        sensitivity -> Nullable<Text>,
        exportable -> Nullable<Bool>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Uuid>,
        last_workflow_id -> Nullable<Uuid>,
        edit_event_id -> Uuid,
    }
}

diesel::table! {
    canvas_edges (id) {
        id -> Text,
        canvas_id -> Text,
        from_node_id -> Text,
        to_node_id -> Text,
        kind -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Uuid>,
        last_workflow_id -> Nullable<Uuid>,
        edit_event_id -> Uuid,
    }
}

diesel::table! {
    canvas_nodes (id) {
        id -> Text,
        canvas_id -> Text,
        kind -> Text,
        position_x -> Float8,
        position_y -> Float8,
        data -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Uuid>,
        last_workflow_id -> Nullable<Uuid>,
        edit_event_id -> Uuid,
    }
}

diesel::table! {
    canvases (id) {
        id -> Text,
        workspace_id -> Text,
        title -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Uuid>,
        last_workflow_id -> Nullable<Uuid>,
        edit_event_id -> Uuid,
    }
}

diesel::table! {
    documents (id) {
        id -> Text,
        workspace_id -> Text,
        title -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Uuid>,
        last_workflow_id -> Nullable<Uuid>,
        edit_event_id -> Uuid,
    }
}

diesel::table! {
    workflow_node_executions (id) {
        id -> Uuid,
        workflow_run_id -> Uuid,
        node_id -> Text,
        node_type -> Text,
        status -> Text,
        sequence -> Int8,
        input_payload -> Nullable<Jsonb>,
        output_payload -> Nullable<Jsonb>,
        error_message -> Nullable<Text>,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workflow_runs (id) {
        id -> Uuid,
        job_id -> Uuid,
        status -> Text,
        error_message -> Nullable<Text>,
        last_heartbeat -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workspaces (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Uuid>,
        last_workflow_id -> Nullable<Uuid>,
        edit_event_id -> Uuid,
    }
}

diesel::joinable!(ai_job_entity_refs -> ai_jobs (job_id));
diesel::joinable!(blocks -> documents (document_id));
diesel::joinable!(canvas_edges -> canvases (canvas_id));
diesel::joinable!(canvas_nodes -> canvases (canvas_id));
diesel::joinable!(canvases -> workspaces (workspace_id));
diesel::joinable!(documents -> workspaces (workspace_id));
diesel::joinable!(workflow_node_executions -> workflow_runs (workflow_run_id));
diesel::joinable!(workflow_runs -> ai_jobs (job_id));

diesel::allow_tables_to_appear_in_same_query!(
    ai_job_entity_refs,
    ai_jobs,
    blocks,
    canvas_edges,
    canvas_nodes,
    canvases,
    documents,
    workflow_node_executions,
    workflow_runs,
    workspaces,
);
