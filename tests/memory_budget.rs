//! The performance issue's memory target: the peak heap of `get_blocks`
//! stays within 2x the heap size of the blocks it returns, on every
//! backend. Its own test binary, because it installs a counting global
//! allocator.

use handshake_storage::bench;
use handshake_storage::conformance::TestTarget;

#[global_allocator]
static ALLOCATOR: bench::CountingAllocator = bench::CountingAllocator;

fn within_twice_the_data(target: TestTarget) {
    let harness = target.harness().expect("a fresh database");
    let figure = bench::get_blocks_memory(harness.store(), 20_000).expect("memory figure");
    assert!(
        figure.ratio() <= 2.0,
        "get_blocks of 20,000 blocks peaked at {} bytes for {} bytes of blocks ({:.2}x)",
        figure.peak,
        figure.data,
        figure.ratio()
    );
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_get_blocks_peak_heap_within_twice_the_data() {
    within_twice_the_data(TestTarget::standard("sqlite"));
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_get_blocks_peak_heap_within_twice_the_data() {
    within_twice_the_data(TestTarget::standard("postgres"));
}
