//! The conformance suite: one list of cases, each a plain function over a
//! [`Harness`] (a fresh, migrated store plus a few maintenance hooks), and a
//! macro that stamps out one `#[test]` per case for a backend.
//!
//! ```text
//! // tests/conformance.rs
//! handshake_storage::conformance_tests!(sqlite);   // temp SQLite file per test
//! handshake_storage::conformance_tests!(postgres); // throwaway schema per test
//! // or against your own deployment:
//! handshake_storage::conformance_tests!(staging, handshake_storage::conformance::TestTarget::from_url("postgres://...").unwrap());
//! ```
//!
//! The same list drives `hsk-storage check`. Every case gets its own
//! database: a SQLite file in a temporary directory, or a PostgreSQL schema
//! created for it and dropped afterwards, so cases run in parallel.

pub mod cases;
pub mod fixtures;
mod target;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use target::{Harness, ScratchRole, TestTarget, POSTGRES_URL_HELP};

use crate::backend::ColumnInfo;

/// One conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// The function's name, also the test's name.
    pub name: &'static str,
    /// The case itself; it panics to fail.
    pub run: fn(&Harness),
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish()
    }
}

/// Every case, in the order they are declared.
pub static CASES: &[Case] = crate::__hsk_cases!(list);

/// The cases that need the role that owns the schema, each with why: on
/// [`TestTarget::PostgresLeastPrivilege`], whose store runs as a role with
/// only the grants of [`grant_application_role`](crate::grant_application_role),
/// they must be refused there (and only there), for want of a privilege.
/// Each reverts or replays migrations, which is DDL: the application role
/// may not run it, by design (it cannot change the schema or drop a
/// table). Everything else in the suite passes as that role.
pub static OWNER_ONLY: &[(&str, &str)] = &[
    (
        "migrations_revert_all_then_up_again",
        "reverts every migration (DROP TABLE) and migrates up again",
    ),
    (
        "migrations_entity_refs_revert_and_reapply_with_jobs",
        "reverts and re-applies the entity_refs migration (ALTER TABLE, triggers)",
    ),
    (
        "jobs_wsid_filter_finds_jobs_created_after_migration",
        "reverts and re-applies the entity_refs migration (ALTER TABLE, triggers)",
    ),
    (
        "contract_migration_version_is_newest_applied",
        "reverts migrations to watch the version change, then migrates up",
    ),
    (
        "contract_migrations_replay_keeps_schema_and_data",
        "replays every migration's DDL on a populated schema",
    ),
];

/// A column as the live database reports it (for the schema parity case).
pub type Column = ColumnInfo;

/// Runs one case on a fresh database of `target`; panics (fails the test) on
/// any failure, including when the database cannot be prepared. A case the
/// target may not run ([`TestTarget::skips`]: it needs the schema's owner)
/// runs too, and must be refused for want of a privilege: it fails if the
/// case passes (the role could change the schema) or fails for any other
/// reason.
pub fn run_case(target: &TestTarget, case: &Case) {
    let harness = target.harness().unwrap_or_else(|err| {
        panic!(
            "could not prepare a fresh {} database for this case: {err}",
            target.backend()
        )
    });
    let Some(why) = target.skips(case.name) else {
        (case.run)(&harness);
        return;
    };
    let message = match catch_unwind(AssertUnwindSafe(|| (case.run)(&harness))) {
        Ok(()) => panic!(
            "{} passed on {}, whose role should be refused it ({why}): the role can change the schema",
            case.name,
            target.describe()
        ),
        Err(payload) => panic_text(&*payload),
    };
    assert!(
        message.contains("permission denied") || message.contains("must be owner"),
        "{} on {} failed, but not for want of a privilege ({why}): {message}",
        case.name,
        target.describe()
    );
}

/// A panic's message (`"panic"` when its payload is not text).
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    match payload.downcast_ref::<&str>() {
        Some(s) => (*s).to_string(),
        None => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "panic".into()),
    }
}

/// The outcome of one case in [`run_suite`].
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    /// The case's name.
    pub name: &'static str,
    /// How long it ran, preparing its database included.
    pub elapsed: Duration,
    /// `None` when the case passed (or, where the target may not run it,
    /// was refused for want of a privilege), else what failed.
    pub failure: Option<String>,
    /// Why the target may not run the case ([`TestTarget::skips`]), if so.
    pub skipped: Option<&'static str>,
}

/// Runs every case against `target`, each on a fresh database, calling
/// `report` after each. Panics inside cases are caught and reported.
pub fn run_suite(target: &TestTarget, mut report: impl FnMut(&CaseOutcome)) -> Vec<CaseOutcome> {
    let messages: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&messages);
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = panic_text(info.payload());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut m) = sink.lock() {
            m.push(format!("{text}{place}"));
        }
    }));
    let mut outcomes = Vec::with_capacity(CASES.len());
    for case in CASES {
        if let Ok(mut m) = messages.lock() {
            m.clear();
        }
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| run_case(target, case)));
        let failure = result.err().map(|_| {
            messages
                .lock()
                .map(|m| m.join("; "))
                .unwrap_or_else(|_| "panic".into())
        });
        let outcome = CaseOutcome {
            name: case.name,
            elapsed: start.elapsed(),
            failure,
            skipped: target.skips(case.name),
        };
        report(&outcome);
        outcomes.push(outcome);
    }
    std::panic::set_hook(previous_hook);
    outcomes
}

/// Stamps out one `#[test]` per conformance case in a module named after the
/// backend. `conformance_tests!(sqlite)` and `conformance_tests!(postgres)`
/// pick the standard targets (PostgreSQL reads `POSTGRES_TEST_URL` or
/// `DATABASE_URL` and fails, never skips, when neither is set);
/// `conformance_tests!(name, target_expr)` runs against any [`TestTarget`].
#[macro_export]
macro_rules! conformance_tests {
    ($backend:ident) => {
        $crate::conformance_tests!(
            $backend,
            $crate::conformance::TestTarget::standard(stringify!($backend))
        );
    };
    ($module:ident, $target:expr) => {
        $crate::__hsk_cases!(tests $module, $target);
    };
}

/// Expands the case list (`area: [case, ...]` groups) for `CASES`, for
/// `conformance_tests!`, or into the `pub use` lines that make each listed
/// case `conformance::cases::<name>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __hsk_emit {
    (reexport ; $($area:ident : [$($case:ident),* $(,)?]),* $(,)?) => {
        $(pub use self::$area::{$($case),*};)*
    };
    (list ; $($area:ident : [$($case:ident),* $(,)?]),* $(,)?) => {
        &[$($($crate::conformance::Case {
            name: stringify!($case),
            run: $crate::conformance::cases::$case,
        },)*)*]
    };
    (tests $module:ident, $target:expr ; $($area:ident : [$($case:ident),* $(,)?]),* $(,)?) => {
        mod $module {
            $($(
                #[test]
                fn $case() {
                    $crate::conformance::run_case(
                        &$target,
                        &$crate::conformance::Case {
                            name: stringify!($case),
                            run: $crate::conformance::cases::$case,
                        },
                    );
                }
            )*)*
        }
    };
}
