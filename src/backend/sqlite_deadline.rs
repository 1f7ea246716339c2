//! `StorageConfig::statement_timeout` on SQLite: a progress handler that
//! interrupts a statement once it has run past its deadline.
//!
//! Diesel's `SqliteConnection` gives no access to its `sqlite3` handle, so
//! the handler is installed the way SQLite offers for that: an automatic
//! extension (`sqlite3_auto_extension`), which SQLite calls with the handle
//! of every connection opened afterwards in this process. It is registered
//! once, when the first store with a statement timeout opens. The handler
//! only reads a deadline that this thread set: a connection whose store
//! has no timeout never sets one, so its statements are never stopped.
//!
//! The deadline is per statement, like PostgreSQL's `statement_timeout`:
//! a connection of a bounded store carries [`Deadlines`] as its Diesel
//! instrumentation, which sets the deadline when a statement starts
//! (Diesel's `StartQuery` event, sent before the statement's first step)
//! and clears it when the statement ends (`FinishQuery`). Diesel runs a
//! connection's statements on the thread that holds it, so a thread-local
//! deadline is the statement's own. While a statement waits for a lock
//! SQLite runs no instructions and calls no progress handler: lock waits
//! are bounded by the busy timeout (`lock_timeout`) instead.
//!
//! An interrupted statement fails with SQLite's "interrupted"
//! (`SQLITE_INTERRUPT`), which `backend::from_diesel` names as the
//! statement timeout; SQLite rolls back the transaction it was in, and
//! the connection serves the next call.

use std::cell::Cell;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use libsqlite3_sys as ffi;

use crate::error::{StorageError, StorageResult};

/// Virtual-machine instructions between two looks at the clock: about a
/// few microseconds of work, so a statement overruns its deadline by
/// little, and the clock is read rarely enough to cost nothing measurable.
const INSTRUCTIONS_PER_CHECK: c_int = 1_000;

thread_local! {
    /// When the statement this thread is running must stop, if it must.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// SQLite's progress handler: nonzero stops the running statement.
unsafe extern "C" fn past_deadline(_: *mut c_void) -> c_int {
    // `try_with`: a statement run while this thread's locals are being
    // destroyed is simply not bounded.
    DEADLINE
        .try_with(|deadline| deadline.get())
        .ok()
        .flatten()
        .is_some_and(|deadline| Instant::now() >= deadline)
        .into()
}

/// The automatic extension: called by SQLite for each connection opened.
unsafe extern "C" fn install(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: SQLite hands a valid, open connection to its automatic
    // extensions; the handler is a plain function that touches nothing of
    // the connection.
    unsafe {
        ffi::sqlite3_progress_handler(
            db,
            INSTRUCTIONS_PER_CHECK,
            Some(past_deadline),
            std::ptr::null_mut(),
        )
    };
    ffi::SQLITE_OK
}

/// Registers the handler for every SQLite connection opened from now on
/// (once per process).
pub(super) fn register() -> StorageResult<()> {
    static REGISTERED: OnceLock<c_int> = OnceLock::new();
    // SAFETY: `install` has the signature SQLite calls automatic
    // extensions with, and lives as long as the process.
    let rc = *REGISTERED.get_or_init(|| unsafe { ffi::sqlite3_auto_extension(Some(install)) });
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(StorageError::Database(format!(
            "cannot install SQLite's progress handler for statement_timeout \
             (sqlite3_auto_extension returned {rc})"
        )))
    }
}

/// A bounded connection's instrumentation: sets this thread's deadline
/// while each statement runs, and passes every event on.
pub(super) struct Deadlines {
    limit: Duration,
    next: Option<Box<dyn Instrumentation>>,
}

impl Deadlines {
    pub(super) fn new(limit: Duration, next: Option<Box<dyn Instrumentation>>) -> Self {
        Self { limit, next }
    }
}

impl Instrumentation for Deadlines {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match &event {
            InstrumentationEvent::StartQuery { .. } => {
                DEADLINE.set(Instant::now().checked_add(self.limit));
            }
            InstrumentationEvent::FinishQuery { .. } => DEADLINE.set(None),
            _ => {}
        }
        if let Some(next) = &mut self.next {
            next.on_connection_event(event);
        }
    }
}
