//! The performance issue's memory target: the peak heap of `get_blocks`
//! stays within 2x the heap size of the blocks it returns, on every
//! backend. Its own test binary, because it installs a counting global
//! allocator.
//!
//! The allocator counts every thread of the process, so the backends are
//! measured one after the other in ONE test: two tests would run in
//! parallel and each would count the other's allocations (it failed that
//! way about one run in four). Each backend's store is dropped, pool and
//! all, before the next one is measured.

use handshake_storage::bench;
use handshake_storage::conformance::TestTarget;

#[global_allocator]
static ALLOCATOR: bench::CountingAllocator = bench::CountingAllocator;

/// The backends this build has, in the order they are measured.
const BACKENDS: &[&str] = &[
    #[cfg(feature = "sqlite")]
    "sqlite",
    #[cfg(feature = "postgres")]
    "postgres",
];

#[test]
fn get_blocks_peak_heap_within_twice_the_data_on_each_backend() {
    assert!(!BACKENDS.is_empty(), "no backend feature enabled");
    for backend in BACKENDS {
        let figure = {
            let harness = TestTarget::standard(backend)
                .harness()
                .unwrap_or_else(|err| panic!("a fresh {backend} database: {err}"));
            bench::get_blocks_memory(harness.store(), 20_000)
                .unwrap_or_else(|err| panic!("{backend} memory figure: {err}"))
        };
        eprintln!(
            "{backend}: get_blocks of 20,000 blocks peaked at {} bytes for {} bytes ({:.2}x)",
            figure.peak,
            figure.data,
            figure.ratio()
        );
        assert!(
            figure.ratio() <= 2.0,
            "{backend}: get_blocks of 20,000 blocks peaked at {} bytes for {} bytes of blocks ({:.2}x)",
            figure.peak,
            figure.data,
            figure.ratio()
        );
    }
}
