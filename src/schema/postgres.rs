// @generated automatically by Diesel CLI.

diesel::table! {
    ai_job_entity_refs (job_id, position) {
        job_id -> Uuid,
        position -> Int8,
        entity_id -> Text,
        entity_kind -> Text,
        created_at -> Timestamptz,
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
    kernel_events (event_sequence) {
        event_sequence -> Int8,
        event_id -> Text,
        event_version -> Text,
        kernel_task_run_id -> Text,
        session_run_id -> Text,
        aggregate_type -> Text,
        aggregate_id -> Text,
        idempotency_key -> Text,
        event_type -> Text,
        actor_kind -> Text,
        actor_id -> Text,
        causation_id -> Nullable<Text>,
        correlation_id -> Nullable<Text>,
        source_component -> Text,
        payload -> Jsonb,
        payload_hash -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    kernel_session_claims (session_run_id, attempt) {
        session_run_id -> Text,
        attempt -> Int8,
        claimed_by -> Text,
        claimed_at -> Timestamptz,
        lease_expires_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    kernel_session_runs (session_run_id) {
        session_run_id -> Text,
        kernel_task_run_id -> Text,
        adapter_id -> Text,
        state -> Text,
        claimed_by -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        attempt_count -> Int8,
        available_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
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
diesel::joinable!(kernel_session_claims -> kernel_session_runs (session_run_id));
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
    kernel_events,
    kernel_session_claims,
    kernel_session_runs,
    workflow_node_executions,
    workflow_runs,
    workspaces,
);
