//! Handshake's job contract: which `job_kind`, `profile_id` and
//! `protocol_id` go together. `create_ai_job` checks it before anything is
//! written; a job that does not fit is a `Validation` error naming the rule.

use crate::error::{StorageError, StorageResult};
use crate::types::JobKind;

/// The profile and the protocol of a micro-task execution, and only of one.
pub const MICRO_TASK_EXECUTOR_V1: &str = "micro_task_executor_v1";
/// The protocols a media download may run under.
pub const MEDIA_DOWNLOADER_PROTOCOLS: [&str; 3] = [
    "hsk.media_downloader.batch.v0",
    "hsk.media_downloader.control.v0",
    "hsk.media_downloader.cookie_import.v0",
];
/// The protocol of a loom preview, and only of one.
pub const LOOM_PREVIEW_PROTOCOL: &str = "hsk.loom.preview_generate@v1";

/// Checks that `kind`, `profile_id` and `protocol_id` fit together.
pub(crate) fn check(kind: JobKind, profile_id: &str, protocol_id: &str) -> StorageResult<()> {
    let refuse = |rule: String| Err(StorageError::validation(format!("job contract: {rule}")));
    let micro_task = kind == JobKind::MicroTaskExecution;
    if micro_task && (profile_id != MICRO_TASK_EXECUTOR_V1 || protocol_id != MICRO_TASK_EXECUTOR_V1)
    {
        return refuse(format!(
            "a {kind} job needs profile_id and protocol_id {MICRO_TASK_EXECUTOR_V1:?}, \
             got {profile_id:?} and {protocol_id:?}"
        ));
    }
    if !micro_task
        && (profile_id == MICRO_TASK_EXECUTOR_V1 || protocol_id == MICRO_TASK_EXECUTOR_V1)
    {
        return refuse(format!(
            "profile or protocol {MICRO_TASK_EXECUTOR_V1:?} needs job_kind {}, got {kind}",
            JobKind::MicroTaskExecution
        ));
    }
    if kind == JobKind::MediaDownloader && !MEDIA_DOWNLOADER_PROTOCOLS.contains(&protocol_id) {
        return refuse(format!(
            "a {kind} job needs one of the protocols {MEDIA_DOWNLOADER_PROTOCOLS:?}, \
             got {protocol_id:?}"
        ));
    }
    let loom = kind == JobKind::LoomPreviewGenerate;
    if loom != (protocol_id == LOOM_PREVIEW_PROTOCOL) {
        return refuse(format!(
            "job_kind {} and protocol {LOOM_PREVIEW_PROTOCOL:?} go only together, \
             got {kind} with {protocol_id:?}",
            JobKind::LoomPreviewGenerate
        ));
    }
    Ok(())
}
