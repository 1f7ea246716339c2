// @generated automatically by Diesel CLI.

diesel::table! {
    ai_job_entity_refs (job_id, position) {
        job_id -> Text,
        position -> BigInt,
        entity_id -> Text,
        entity_kind -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    ai_jobs (id) {
        id -> Text,
        trace_id -> Text,
        workflow_run_id -> Nullable<Text>,
        job_kind -> Text,
        status -> Text,
        status_reason -> Text,
        error_message -> Nullable<Text>,
        protocol_id -> Text,
        profile_id -> Text,
        capability_profile_id -> Text,
        access_mode -> Text,
        safety_mode -> Text,
        planned_operations -> Text,
        metrics -> Text,
        job_inputs -> Nullable<Text>,
        job_outputs -> Nullable<Text>,
        pinned -> Bool,
        created_at -> Text,
        updated_at -> Text,
        entity_refs -> Text,
    }
}

diesel::table! {
    blocks (id) {
        id -> Text,
        document_id -> Text,
        kind -> Text,
        sequence -> BigInt,
        raw_content -> Text,
        display_content -> Text,
        derived_content -> Text,
        sensitivity -> Nullable<Text>,
        exportable -> Nullable<Bool>,
        created_at -> Text,
        updated_at -> Text,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Text>,
        last_workflow_id -> Nullable<Text>,
        edit_event_id -> Text,
    }
}

diesel::table! {
    canvas_edges (id) {
        id -> Text,
        canvas_id -> Text,
        from_node_id -> Text,
        to_node_id -> Text,
        kind -> Text,
        created_at -> Text,
        updated_at -> Text,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Text>,
        last_workflow_id -> Nullable<Text>,
        edit_event_id -> Text,
    }
}

diesel::table! {
    canvas_nodes (id) {
        id -> Text,
        canvas_id -> Text,
        kind -> Text,
        position_x -> Double,
        position_y -> Double,
        data -> Text,
        created_at -> Text,
        updated_at -> Text,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Text>,
        last_workflow_id -> Nullable<Text>,
        edit_event_id -> Text,
    }
}

diesel::table! {
    canvases (id) {
        id -> Text,
        workspace_id -> Text,
        title -> Text,
        created_at -> Text,
        updated_at -> Text,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Text>,
        last_workflow_id -> Nullable<Text>,
        edit_event_id -> Text,
    }
}

diesel::table! {
    documents (id) {
        id -> Text,
        workspace_id -> Text,
        title -> Text,
        created_at -> Text,
        updated_at -> Text,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Text>,
        last_workflow_id -> Nullable<Text>,
        edit_event_id -> Text,
    }
}

diesel::table! {
    kernel_events (event_sequence) {
        event_sequence -> BigInt,
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
        payload -> Text,
        payload_hash -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    kernel_session_claims (session_run_id, attempt) {
        session_run_id -> Text,
        attempt -> BigInt,
        claimed_by -> Text,
        claimed_at -> Text,
        lease_expires_at -> Text,
        ended_at -> Nullable<Text>,
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
        lease_expires_at -> Nullable<Text>,
        attempt_count -> BigInt,
        available_at -> Text,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    workflow_node_executions (id) {
        id -> Text,
        workflow_run_id -> Text,
        node_id -> Text,
        node_type -> Text,
        status -> Text,
        sequence -> BigInt,
        input_payload -> Nullable<Text>,
        output_payload -> Nullable<Text>,
        error_message -> Nullable<Text>,
        started_at -> Text,
        finished_at -> Nullable<Text>,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    workflow_runs (id) {
        id -> Text,
        job_id -> Text,
        status -> Text,
        error_message -> Nullable<Text>,
        last_heartbeat -> Text,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    workspaces (id) {
        id -> Text,
        name -> Text,
        created_at -> Text,
        updated_at -> Text,
        last_actor_kind -> Text,
        last_actor_id -> Nullable<Text>,
        last_job_id -> Nullable<Text>,
        last_workflow_id -> Nullable<Text>,
        edit_event_id -> Text,
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
