//! The mutation guard: no silent AI edits. Pure logic, shared by every
//! backend; the store calls it before it opens a transaction.

use crate::error::{StorageError, StorageResult};
use crate::types::{MutationMetadata, WriteActorKind, WriteContext};
use crate::validate;

/// The code in a refusal's message.
pub const SILENT_EDIT: &str = "HSK-403-SILENT-EDIT";

/// Accepts or refuses a write and returns what an accepted one records.
pub(crate) fn validate_write(
    ctx: &WriteContext,
    resource_id: &str,
) -> StorageResult<MutationMetadata> {
    if ctx.actor_kind == WriteActorKind::Ai && (ctx.job_id.is_none() || ctx.workflow_id.is_none()) {
        return Err(StorageError::Guard(format!(
            "{SILENT_EDIT}: an AI write to {resource_id:?} must name both its job_id and its workflow_id"
        )));
    }
    if let Some(actor) = &ctx.actor_id {
        validate::text("actor_id", actor)?;
    }
    Ok(MutationMetadata {
        actor_kind: ctx.actor_kind,
        actor_id: ctx.actor_id.clone(),
        job_id: ctx.job_id,
        workflow_id: ctx.workflow_id,
        edit_event_id: crate::ids::new_uuid(),
        resource_id: resource_id.to_string(),
        timestamp: validate::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ai_needs_job_and_workflow() {
        let err = validate_write(
            &WriteContext::ai(None, Some(uuid::Uuid::new_v4()), None),
            "x",
        )
        .unwrap_err();
        assert!(matches!(err, StorageError::Guard(ref m) if m.contains(SILENT_EDIT)));
        let ok = validate_write(
            &WriteContext::ai(None, Some(uuid::Uuid::new_v4()), Some(uuid::Uuid::new_v4())),
            "x",
        )
        .unwrap();
        assert!(!ok.edit_event_id.is_nil());
    }
}
