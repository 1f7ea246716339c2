//! The conformance cases, one file per area. Each case is a plain
//! function over a [`Harness`] that panics on failure; it starts from a
//! fresh, migrated, empty database of the backend under test, so cases are
//! independent and run in parallel. Cases assert what `SPEC.md` ("Behaviour
//! that must be identical on every backend") and the [`Storage`] docs
//! promise, never backend details. Test data comes from
//! [`fixtures`](crate::conformance::fixtures); helpers shared by several
//! areas are in `support.rs`.
//!
//! The list of every case is the `__hsk_cases!` macro below: `CASES`,
//! `conformance_tests!` and the re-exports `cases::<name>` all expand from
//! it. The area modules are private and a case is `pub` only so the list
//! can re-export it, so a case function left out of the list is dead code,
//! and `deny(dead_code)` makes that a build error.
//!
//! To add an area: a file here starting with `use super::*;`, a `mod` line
//! below, and an `area: [case, ...],` entry in the list.
#![deny(dead_code)]

mod ai_jobs;
mod blocks;
mod canvases;
mod cascades;
mod concurrency;
mod contract;
mod errors;
mod guard;
mod health;
mod hostile_input;
mod hostile_rows;
mod kernel;
mod ordering;
mod retention;
mod roundtrip;
mod support;
mod workflows;
mod workspaces_documents;

// What every area file sees through `use super::*`: the crate's API, the
// test-data builders, the shared helpers, and each other's helpers.
#[allow(unused_imports)]
use self::{
    ai_jobs::*, blocks::*, canvases::*, cascades::*, concurrency::*, contract::*, errors::*,
    guard::*, health::*, hostile_input::*, hostile_rows::*, kernel::*, ordering::*, retention::*,
    roundtrip::*, support::*, workflows::*, workspaces_documents::*,
};
#[allow(unused_imports)]
use std::{collections::BTreeSet, fmt::Debug};

#[allow(unused_imports)]
use chrono::{DateTime, Duration, TimeZone, Utc};
#[allow(unused_imports)]
use serde_json::{json, Value};
#[allow(unused_imports)]
use uuid::Uuid;

#[allow(unused_imports)]
use crate::conformance::fixtures::*;
#[allow(unused_imports)]
use crate::conformance::{Column, Harness};
#[allow(unused_imports)]
use crate::*;

crate::__hsk_cases!(reexport);

/// The list of every case, by area; `CASES`, `conformance_tests!` and the
/// re-exports above expand from it.
#[doc(hidden)]
#[macro_export]
macro_rules! __hsk_cases {
    ($($mode:tt)*) => {
        $crate::__hsk_emit! { $($mode)* ;
            health: [
                health_backend_and_ping,
                migrations_status_all_applied,
                migrations_rerun_is_noop,
                migrations_revert_all_then_up_again,
                migrations_entity_refs_revert_and_reapply_with_jobs,
                jobs_wsid_filter_finds_jobs_created_after_migration,
                schema_parity_columns_and_nullability,
                reopen_sees_same_data,
            ],
            workspaces_documents: [
                workspace_create_get_list_ordered,
                workspace_get_missing_is_none,
                workspace_delete_missing_is_not_found,
                workspace_blank_name_is_validation,
                document_create_get_list_ordered,
                document_get_missing_is_not_found,
                document_missing_workspace_is_validation,
                document_blank_title_is_validation,
                document_delete_removes_blocks,
            ],
            blocks: [
                block_create_defaults,
                block_create_keeps_given_values,
                block_get_blocks_ordered_by_sequence_then_id,
                block_update_changes_fields_and_provenance,
                block_update_missing_is_not_found,
                block_delete_and_delete_missing,
                block_duplicate_id_is_conflict,
                block_missing_document_is_validation,
                replace_blocks_replaces_all,
                replace_blocks_duplicate_id_changes_nothing,
                replace_blocks_invalid_item_changes_nothing,
                replace_blocks_missing_document_is_not_found,
                replace_blocks_bulk_spans_statement_chunks,
                canvas_update_graph_bulk_spans_statement_chunks,
                canvas_update_graph_bulk_failure_in_last_rows_changes_nothing,
            ],
            canvases: [
                canvas_create_list_and_get_graph,
                canvas_update_graph_replaces_graph,
                canvas_update_graph_dangling_edge_changes_nothing,
                canvas_update_graph_duplicate_node_changes_nothing,
                canvas_get_missing_is_not_found,
                canvas_delete_removes_graph,
                canvas_blank_title_and_missing_workspace_are_validation,
            ],
            cascades: [
                cascade_delete_workspace_removes_everything,
                cascade_delete_run_removes_executions,
            ],
            guard: [
                guard_refuses_silent_ai_edits_and_writes_nothing,
                guard_records_ai_provenance,
                guard_validate_write_metadata,
                provenance_human_and_system_writes,
            ],
            ai_jobs: [
                ai_job_create_and_get_with_defaults,
                ai_job_get_missing_is_not_found,
                ai_job_update_status,
                ai_job_set_outputs_and_pinned,
                ai_job_missing_targets_are_not_found,
                ai_job_list_filters,
                ai_job_list_wsid_lists_each_job_once_in_order,
                ai_job_list_order_and_cursor_paging,
                ai_job_date_filters_are_typed,
            ],
            workflows: [
                workflow_run_lifecycle,
                workflow_missing_parents_are_validation,
                workflow_node_executions_ordered_by_sequence,
                workflow_node_execution_status_sets_finished_at,
                workflow_stalled_detection,
            ],
            retention: [
                prune_respects_state_cutoff_and_pinned,
                prune_keeps_min_versions,
                prune_dry_run_changes_nothing,
                prune_cascades_runs_and_executions,
            ],
            roundtrip: [
                roundtrip_f64_positions,
                roundtrip_i64_sequence_extremes,
                roundtrip_json_shapes,
                roundtrip_large_unicode_text,
                roundtrip_timestamps_microseconds,
            ],
            errors: [
                error_nul_byte_in_text_is_validation,
                error_nul_byte_in_id_arguments_is_validation,
                error_nul_byte_in_json_is_validation,
                error_json_too_deep_is_validation,
                error_non_finite_position_is_validation,
                error_timestamp_out_of_range_is_validation,
                error_corrupt_enum_in_row_is_serialization,
            ],
            hostile_input: [
                hostile_ten_mib_text_roundtrips_everywhere,
                hostile_ids_over_1_kib_are_validation,
                hostile_json_nested_100000_levels_is_validation,
            ],
            hostile_rows: [
                hostile_deep_json_in_row_is_serialization,
                hostile_json_numbers_beyond_64_bits_in_row,
                hostile_metacharacter_ids_match_only_themselves,
                hostile_empty_and_blank_ids,
                hostile_corrupt_enum_in_every_column_is_serialization,
                hostile_extreme_thresholds_cutoffs_and_filters,
            ],
            ordering: [
                ordering_text_ids_are_bytewise,
            ],
            concurrency: [
                concurrent_writers_lose_nothing,
                concurrent_replace_blocks_last_writer_wins_whole,
            ],
            contract: [
                contract_job_kinds_model_run_media_downloader_loom_preview,
                contract_job_kind_legacy_term_exec_reads_as_terminal_exec,
                contract_job_micro_task_kind_needs_its_profile_and_protocol,
                contract_job_micro_task_profile_or_protocol_needs_its_kind,
                contract_job_media_downloader_needs_a_media_protocol,
                contract_job_loom_preview_kind_needs_its_protocol,
                contract_job_loom_preview_protocol_needs_its_kind,
                contract_node_execution_stalled_sets_finished_at,
                contract_node_execution_none_error_message_keeps_stored,
                contract_ai_job_none_error_message_keeps_stored,
                contract_prune_min_versions_counts_recent_jobs,
                contract_new_ids_are_v7_and_v4_ids_keep_working,
                contract_schema_fingerprint_matches_committed,
                contract_migration_version_is_newest_applied,
                contract_migrations_replay_keeps_schema_and_data,
            ],
            kernel: [
                kernel_append_assigns_id_sequence_hash_and_time,
                kernel_append_invalid_events_are_validation,
                kernel_append_same_key_same_content_returns_stored,
                kernel_append_same_key_other_content_is_conflict,
                kernel_append_batch_is_all_or_nothing,
                kernel_append_pair_links_causation_all_or_nothing,
                kernel_lists_by_session_and_aggregate_in_sequence_order,
                kernel_tail_pages_every_event_once_in_order,
                kernel_events_roundtrip_payloads_and_text,
                kernel_concurrent_first_appends_of_one_key_write_one_row,
                kernel_queue_enqueue_validates_and_refuses_duplicates,
                kernel_queue_claim_named_run,
                kernel_queue_legal_and_illegal_moves,
                kernel_queue_claim_next_oldest_first_and_by_adapter,
                kernel_queue_expired_lease_is_reclaimed_and_old_fence_refused,
                kernel_queue_renew_extends_the_current_claim_only,
                kernel_queue_delay_pushes_available_at,
                kernel_queue_claim_history_records_every_claim,
                kernel_queue_record_event_variants_write_state_and_event_together,
            ],
        }
    };
}
