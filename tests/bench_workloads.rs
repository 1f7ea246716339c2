//! Every benchmark workload and its raw-SQL baseline runs, at tiny sizes,
//! on each backend: the benches and `hsk-storage bench` cannot rot
//! unnoticed between benchmark runs. (Each workload checks the row counts
//! it reads back, so a baseline that does less work fails here.)

use handshake_storage::bench::{run_all, workload_count, Sizes};
use handshake_storage::conformance::TestTarget;

fn tiny() -> Sizes {
    Sizes {
        blocks: 25,
        nodes: 10,
        edges: 20,
        // 1,000 jobs give the 50 stalled runs the scale group expects.
        jobs: vec![1_000],
        threads: vec![1, 3],
        ops_per_thread: 2,
    }
}

fn run_every_workload(target: TestTarget) {
    let sizes = tiny();
    let figures = run_all(&target, &sizes, 1, |_| {}).expect("every workload runs");
    assert_eq!(figures.len(), workload_count(&sizes));
    for figure in &figures {
        assert!(
            figure.ratio().is_finite() && figure.ratio() > 0.0,
            "{figure:?}"
        );
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_every_bench_workload_runs() {
    run_every_workload(TestTarget::standard("sqlite"));
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_every_bench_workload_runs() {
    run_every_workload(TestTarget::standard("postgres"));
}
