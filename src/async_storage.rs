//! Feature `tokio`: [`AsyncStorage`], the store for async callers. Every
//! `Storage` method becomes an `async fn` of the same name and arguments
//! that runs the call on tokio's blocking pool (point reads on the caller's
//! worker, in `block_in_place`: [`AsyncDispatch`]), with the three things that
//! wrapping calls by hand gets wrong done once: a cap on calls in flight,
//! panics turned into errors, and the caller's `tracing` span carried over.
//! The methods are generated from the one method list in `calls.rs`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::calls::storage_methods;
use crate::config::{DatabaseUrl, StorageConfig};
use crate::error::{StorageError, StorageResult};
use crate::kernel::*;
use crate::schema_info::SchemaFingerprint;
use crate::storage::Storage;
use crate::types::*;

/// A store for async code: a cheap-to-clone handle over an
/// `Arc<dyn Storage>` whose every method is an `async fn` running the
/// synchronous call on tokio's blocking pool (`spawn_blocking`), or, for a
/// point read with a slot free on a multi-thread runtime, on the caller's
/// own worker thread in `block_in_place` ([`AsyncDispatch`]). Call it
/// from inside a tokio runtime; an `acquire_timeout` needs the runtime's
/// timer (`#[tokio::main]` has it).
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// #[tokio::main]
/// async fn main() -> handshake_storage::StorageResult<()> {
///     use handshake_storage::*;
///
///     // A file or a server in a real service: `sqlite://data/handshake.db`.
///     let store = AsyncStorage::open("sqlite::memory:", &StorageConfig::default()).await?;
///     let me = WriteContext::human(None);
///     let ws = store.create_workspace(&me, NewWorkspace { name: "Notes".into() }).await?;
///     assert_eq!(store.get_workspace(&ws.id).await?.map(|w| w.name).as_deref(), Some("Notes"));
///
///     // Handles are cheap clones over one store: hand one to each task.
///     let other = store.clone();
///     let task = tokio::spawn(async move { other.list_workspaces().await });
///     assert_eq!(task.await.expect("task")?.len(), 1);
///     Ok(())
/// }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
///
/// **Calls in flight are capped** (by default at the connection pool's
/// size): a burst of callers waits in a queue, as futures, instead of
/// parking hundreds of blocking threads in the pool's checkout; at most
/// that many blocking threads work the queue, each taking the next call
/// as it ends one. With
/// [`with_acquire_timeout`](Self::with_acquire_timeout), a caller that gets
/// no slot in time fails with a `Database` error saying the store is busy.
///
/// **A panic** inside a call comes back as a `Database` error; the caller's
/// task does not panic.
///
/// **Tracing**: the span current where the method is awaited is the parent
/// of the call's span (feature `tracing`) and of everything logged inside
/// the call.
///
/// **One runtime**: the blocking threads working a handle's queue belong
/// to the runtime of the call that started them. To use one store from
/// several runtimes, give each its own handle over the same store
/// (`AsyncStorage::new(Arc::clone(&store), n)`).
///
/// **Cancellation** (dropping the future, e.g. by `tokio::time::timeout` or
/// `select!`):
/// - dropped while its call waits in the queue for a blocking thread:
///   nothing happens, the database is not touched (the call is skipped
///   when its turn comes);
/// - dropped once the call has begun: the call runs to its end on its
///   blocking thread (a blocking call cannot be stopped); its transaction
///   is committed whole or rolled back whole, its connection goes back to
///   the pool healthy, its slot is freed when it ends, and its result is
///   discarded. Whether a cut write happened is learnt by reading.
#[derive(Clone)]
pub struct AsyncStorage {
    store: Arc<dyn Storage>,
    slots: Arc<Slots>,
    max_in_flight: usize,
    acquire_timeout: Option<Duration>,
    dispatch: AsyncDispatch,
}

/// Where an [`AsyncStorage`] runs a call.
///
/// A call on the blocking pool pays two thread hand-offs (the caller's task
/// to a blocking thread, and the result back), 15-45 µs on a small machine,
/// which is more than a point read takes on SQLite and a third of one on
/// PostgreSQL over loopback. A point read can instead run on the calling
/// task's own worker thread inside [`tokio::task::block_in_place`], which
/// first hands the worker's other tasks to another thread, so the runtime
/// keeps running them while the call blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AsyncDispatch {
    /// Point reads (`get_workspace`, `get_document`, `get_block`,
    /// `get_canvas_with_graph`, `get_ai_job`: one row, or one canvas with
    /// its graph) run on the caller's thread inside `block_in_place` when a
    /// slot is free at once (no call waiting in the queue, fewer than
    /// `max_in_flight` at work) and the runtime is multi-threaded; every
    /// other call, and a point read that finds no free slot or a
    /// current-thread runtime, goes to the blocking pool. The cap on calls
    /// in flight counts both. While an inline read runs, other futures of
    /// the same task (in a `select!` or `join!`) wait for it, and a
    /// `timeout` around it can fire only when it ends.
    #[default]
    InlinePointReads,
    /// Every call, as `InlinePointReads` runs point reads: for a service
    /// whose calls are all short (no bulk writes, no long lists), which
    /// then saves the hand-offs on writes too.
    Inline,
    /// Every call on the blocking pool.
    BlockingPool,
}

/// A call as queued: it checks its own progress and runs, and gives back
/// what sends its result to its future (`None` if it never began).
type Job = Box<dyn FnOnce() -> Option<Deliver> + Send>;

/// Sends a call's result to its future; run once the call's slot is free.
type Deliver = Box<dyn FnOnce() + Send>;

/// The calls waiting for a blocking thread, and the blocking threads at
/// work (at most `max_in_flight`). A thread that ends a call takes the
/// next one from the queue itself, so under load a call goes from its
/// future to a thread through one queue, with no trip back through the
/// runtime between calls.
#[derive(Default)]
struct Slots {
    state: std::sync::Mutex<SlotState>,
    /// Calls begun and not yet ended.
    running: std::sync::atomic::AtomicUsize,
    /// Set once `block_in_place` refused to run here: calls stop trying it.
    no_inline: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct SlotState {
    queue: std::collections::VecDeque<Job>,
    workers: usize,
}

impl Slots {
    fn state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        // Jobs run outside the lock and catch their panics: nothing can
        // leave the state half-changed.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a blocking thread for the queue, already counted in
    /// `workers`.
    fn start_worker(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let worker = Worker {
            slots: Arc::clone(self),
            counted: true,
        };
        runtime.spawn_blocking(move || Slots::work(worker));
    }

    /// A blocking thread's work: calls from the queue until it is empty.
    /// A call's result is sent only after the thread took the next call or
    /// gave its slot back, so a caller that hears of its result finds the
    /// slot free (its next point read can run inline).
    fn work(mut worker: Worker) {
        let mut next = worker.next();
        while let Some(job) = next {
            // A job catches its call's panics; this catches the rest, so the
            // thread stays at work.
            let deliver = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                .ok()
                .flatten();
            next = worker.next();
            if let Some(deliver) = deliver {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(deliver));
            }
        }
    }
}

/// A blocking thread counted in `workers`, made before it is spawned: one
/// that never runs (its runtime shut down first, or no thread could be
/// made) is uncounted as it is dropped, so the next call starts another.
struct Worker {
    slots: Arc<Slots>,
    counted: bool,
}

impl Worker {
    /// The next call from the queue, or `None` with the slot given back.
    fn next(&mut self) -> Option<Job> {
        let mut state = self.slots.state();
        let job = state.queue.pop_front();
        if job.is_none() {
            state.workers -= 1;
            self.counted = false;
        }
        job
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.counted {
            self.slots.state().workers -= 1;
        }
    }
}

/// A slot held by a call running on its caller's thread. Taken only when
/// no call waits in the queue, so an inline call never overtakes a queued
/// one; given back as the call ends, or handed to a new blocking thread if
/// calls queued up meanwhile (they saw every slot taken and started none).
struct InlineSlot<'a> {
    slots: &'a Arc<Slots>,
    runtime: tokio::runtime::Handle,
}

impl<'a> InlineSlot<'a> {
    fn take(
        slots: &'a Arc<Slots>,
        max_in_flight: usize,
        runtime: tokio::runtime::Handle,
    ) -> Option<Self> {
        let mut state = slots.state();
        if !state.queue.is_empty() || state.workers >= max_in_flight {
            return None;
        }
        state.workers += 1;
        Some(InlineSlot { slots, runtime })
    }
}

impl Drop for InlineSlot<'_> {
    fn drop(&mut self) {
        let mut state = self.slots.state();
        if state.queue.is_empty() {
            state.workers -= 1;
        } else {
            drop(state);
            self.slots.start_worker(&self.runtime);
        }
    }
}

impl std::fmt::Debug for AsyncStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncStorage")
            .field("backend", &self.store.backend())
            .field("max_in_flight", &self.max_in_flight)
            .field("in_flight", &self.in_flight())
            .field("acquire_timeout", &self.acquire_timeout)
            .field("dispatch", &self.dispatch)
            .finish()
    }
}

/// A call's progress, shared by its future and its blocking closure, so
/// that exactly one of "the future was dropped" and "the call began" wins.
/// Counts a call as running while it lives.
struct Running<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Running<'a> {
    fn start(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Running(count)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

const PENDING: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

/// Marks its call abandoned when the future is dropped before the call
/// began.
struct AbandonOnDrop(Arc<AtomicU8>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        let _ = self
            .0
            .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl AsyncStorage {
    /// Opens the store `url` names (as [`crate::open_with_config`], on a
    /// blocking thread), with calls in flight capped at the pool's size.
    pub async fn open(url: &str, config: &StorageConfig) -> StorageResult<Self> {
        let max_in_flight = match DatabaseUrl::parse(url)? {
            // An in-memory SQLite database has a pool of one.
            DatabaseUrl::SqliteMemory => 1,
            _ => config.pool_size as usize,
        };
        let (url, config) = (url.to_owned(), config.clone());
        let store = join(
            "open",
            spawn_blocking(move || crate::open_with_config(&url, &config))?.await,
        )??;
        Ok(Self::new(store, max_in_flight))
    }

    /// `store` with at most `max_in_flight` calls in flight (at least 1).
    pub fn new(store: Arc<dyn Storage>, max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        AsyncStorage {
            store,
            slots: Arc::default(),
            max_in_flight,
            acquire_timeout: None,
            dispatch: AsyncDispatch::default(),
        }
    }

    /// Where calls run (default [`AsyncDispatch::InlinePointReads`]). Clones
    /// made before this keep their own setting but share the slots.
    pub fn with_dispatch(mut self, dispatch: AsyncDispatch) -> Self {
        self.dispatch = dispatch;
        self
    }

    /// Where calls run.
    pub fn dispatch(&self) -> AsyncDispatch {
        self.dispatch
    }

    /// How long a call waits for a free slot before it fails with a
    /// `Database` error saying the store is busy (`None`: as long as it
    /// takes). Clones made before this keep their own setting but share
    /// the slots.
    pub fn with_acquire_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The synchronous store underneath.
    pub fn store(&self) -> &Arc<dyn Storage> {
        &self.store
    }

    /// Which database this store runs on (no I/O, so not async).
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// The most calls that run at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Calls running now (holding a slot).
    pub fn in_flight(&self) -> usize {
        self.slots.running.load(Ordering::SeqCst)
    }

    /// Queues `job`, and starts a blocking thread for the queue unless
    /// `max_in_flight` are at work already.
    fn submit(&self, job: Job) -> StorageResult<()> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            StorageError::Database("AsyncStorage was called outside a tokio runtime".into())
        })?;
        let mut state = self.slots.state();
        state.queue.push_back(job);
        if state.workers < self.max_in_flight {
            state.workers += 1;
            drop(state);
            self.slots.start_worker(&runtime);
        }
        Ok(())
    }

    /// Runs `call` on this thread inside `block_in_place`, if a slot is
    /// free at once and the runtime can block in place; otherwise gives
    /// `call` back.
    fn run_inline<T, F>(&self, method: &'static str, call: F) -> Result<StorageResult<T>, F>
    where
        F: FnOnce(&dyn Storage) -> StorageResult<T>,
    {
        use tokio::runtime::{Handle, RuntimeFlavor};
        if self.slots.no_inline.load(Ordering::Relaxed) {
            return Err(call);
        }
        let Ok(runtime) = Handle::try_current() else {
            return Err(call);
        };
        if runtime.runtime_flavor() != RuntimeFlavor::MultiThread {
            return Err(call);
        }
        let Some(_slot) = InlineSlot::take(&self.slots, self.max_in_flight, runtime) else {
            return Err(call);
        };
        let mut call = Some(call);
        let store = &*self.store;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tokio::task::block_in_place(|| {
                call.take().map(|call| {
                    let _running = Running::start(&self.slots.running);
                    call(store)
                })
            })
        }));
        match (outcome, call) {
            (Ok(Some(outcome)), _) => Ok(outcome),
            // Not reached: `block_in_place` runs its closure once.
            (Ok(None), _) => Ok(Err(StorageError::Database(format!("{method} did not run")))),
            // block_in_place refused before running it: a multi-thread
            // runtime's handle entered from inside a current-thread runtime.
            // This handle stops trying.
            (Err(_), Some(call)) => {
                self.slots.no_inline.store(true, Ordering::Relaxed);
                Err(call)
            }
            // The panic's message went to the panic hook, and may hold
            // values that do not belong in an error.
            (Err(_), None) => Ok(Err(StorageError::Database(format!(
                "{method} panicked inside the store"
            )))),
        }
    }

    async fn run<T, F>(&self, method: &'static str, point_read: bool, call: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Storage) -> StorageResult<T> + Send + 'static,
    {
        // Before the first await: a future dropped unpolled does nothing,
        // and one polled runs its inline call whole within that poll.
        let inline = match self.dispatch {
            AsyncDispatch::InlinePointReads => point_read,
            AsyncDispatch::Inline => true,
            AsyncDispatch::BlockingPool => false,
        };
        let call = if inline {
            match self.run_inline(method, call) {
                Ok(outcome) => return outcome,
                Err(call) => call,
            }
        } else {
            call
        };
        let progress = Arc::new(AtomicU8::new(PENDING));
        let _abandon = AbandonOnDrop(Arc::clone(&progress));
        let (send, mut result) = tokio::sync::oneshot::channel();
        let store = Arc::clone(&self.store);
        let slots = Arc::clone(&self.slots);
        #[cfg(feature = "tracing")]
        let parent = tracing::Span::current();
        let started = Arc::clone(&progress);
        self.submit(Box::new(move || {
            if started
                .compare_exchange(PENDING, STARTED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return None; // abandoned before it began
            }
            let outcome = {
                // Ended (slot freed) before the future hears of it.
                let _running = Running::start(&slots.running);
                #[cfg(feature = "tracing")]
                let _entered = parent.enter();
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(&*store)))
                    .unwrap_or_else(|_| {
                        // The panic's message went to the panic hook, and may
                        // hold values that do not belong in an error.
                        Err(StorageError::Database(format!(
                            "{method} panicked inside the store"
                        )))
                    })
            };
            Some(Box::new(move || {
                let _ = send.send(outcome);
            }) as Deliver)
        }))?;
        let outcome = match self.acquire_timeout {
            None => (&mut result).await,
            Some(limit) => match tokio::time::timeout(limit, &mut result).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    if progress
                        .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return Err(StorageError::Database(format!(
                            "the store is busy: {method} got no call slot within {limit:?} \
                             ({} calls in flight)",
                            self.max_in_flight
                        )));
                    }
                    // It began just now: it runs to its end, so wait for it.
                    (&mut result).await
                }
            },
        };
        outcome.unwrap_or_else(|_| {
            Err(StorageError::Database(format!(
                "{method} was cancelled: the tokio runtime is shutting down"
            )))
        })
    }
}

fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> StorageResult<tokio::task::JoinHandle<T>> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        StorageError::Database("AsyncStorage was called outside a tokio runtime".into())
    })?;
    Ok(runtime.spawn_blocking(f))
}

/// A blocking task's outcome; a panic or a runtime shutting down becomes a
/// `Database` error (the panic's message went to the panic hook already,
/// and may hold values that do not belong in an error).
fn join<T>(method: &str, joined: Result<T, tokio::task::JoinError>) -> StorageResult<T> {
    joined.map_err(|e| {
        StorageError::Database(if e.is_panic() {
            format!("{method} panicked inside the store")
        } else {
            format!("{method} was cancelled: the tokio runtime is shutting down")
        })
    })
}

/// A point read: a `Read` call named `get_*` whose result is not a list
/// (one row, or one canvas with its graph).
const fn is_point_read(kind: crate::calls::CallKind, name: &str, ret: &str) -> bool {
    const fn starts_with(text: &[u8], prefix: &[u8]) -> bool {
        if text.len() < prefix.len() {
            return false;
        }
        let mut k = 0;
        while k < prefix.len() {
            if text[k] != prefix[k] {
                return false;
            }
            k += 1;
        }
        true
    }
    matches!(kind, crate::calls::CallKind::Read)
        && starts_with(name.as_bytes(), b"get_")
        && !starts_with(ret.as_bytes(), b"Vec")
}

macro_rules! async_methods {
    ($(
        $kind:ident $table:literal $name:ident
        ($($r:ident : &$rt:ty),* ; $($o:ident : $ot:ty),* $(; $($s:ident : Option<&str>),*)?) -> $ret:ty;
    )*) => {
        impl AsyncStorage {
            $(
                #[doc = concat!("[`Storage::", stringify!($name), "`], on the blocking pool or inline as [`AsyncDispatch`] says.")]
                pub async fn $name(&self, $($r: &$rt,)* $($o: $ot,)* $($($s: Option<&str>),*)?) -> StorageResult<$ret> {
                    $(let $r = $r.to_owned();)*
                    $($(let $s = $s.map(str::to_owned);)*)?
                    const POINT_READ: bool = is_point_read(crate::calls::CallKind::$kind, stringify!($name), stringify!($ret));
                    self.run(stringify!($name), POINT_READ, move |store| store.$name($(&$r,)* $($o,)* $($($s.as_deref()),*)?))
                        .await
                }
            )*
        }
    };
}
storage_methods!(async_methods);

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! point_reads {
        ($(
            $kind:ident $table:literal $name:ident
            ($($r:ident : &$rt:ty),* ; $($o:ident : $ot:ty),* $(; $($s:ident : Option<&str>),*)?) -> $ret:ty;
        )*) => {
            [$((stringify!($name), is_point_read(crate::calls::CallKind::$kind, stringify!($name), stringify!($ret)))),*]
                .into_iter()
                .filter(|(_, point)| *point)
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
        };
    }

    /// The calls `AsyncDispatch::InlinePointReads` runs inline are the ones
    /// its documentation names.
    #[test]
    fn the_point_reads_are_the_documented_ones() {
        let names: Vec<&str> = storage_methods!(point_reads);
        assert_eq!(
            names,
            [
                "get_workspace",
                "get_document",
                "get_block",
                "get_canvas_with_graph",
                "get_ai_job"
            ]
        );
    }
}
