//! Concurrency through one store: parallel writers lose nothing, and
//! racing `replace_blocks` leave one whole set.

#[allow(unused_imports)]
use super::*;

pub(super) const THREADS: usize = 8;
pub(super) const WRITES_PER_THREAD: usize = 25;

/// One writer's share: blocks `t{thread}-{i}` created then updated, and one
/// job per write taken to `Completed`. Every call must succeed.
pub(super) fn concurrent_writer(store: &dyn Storage, doc: &str, thread: usize) -> Vec<Uuid> {
    (0..WRITES_PER_THREAD)
        .map(|i| {
            let id = format!("t{thread}-{i:02}");
            let seq = (thread * WRITES_PER_THREAD + i) as i64;
            store
                .create_block(&human(), new_block(doc, seq, Some(&id)))
                .unwrap_or_else(|e| panic!("create_block {id}: {e}"));
            let update = BlockUpdate {
                raw_content: Some(format!("updated {id}")),
                ..BlockUpdate::default()
            };
            store
                .update_block(&ai_ctx(), &id, update)
                .unwrap_or_else(|e| panic!("update_block {id}: {e}"));
            let job = store
                .create_ai_job(new_job(JobKind::DocEdit, vec![ws_ref(&id)]))
                .unwrap_or_else(|e| panic!("create_ai_job {id}: {e}"));
            store
                .update_ai_job_status(status_update(job.job_id, JobState::Completed))
                .unwrap_or_else(|e| panic!("update_ai_job_status {id}: {e}"));
            job.job_id
        })
        .collect()
}

/// Writers on several threads at once lose no write and mix no rows.
pub fn concurrent_writers_lose_nothing(h: &Harness) {
    let doc = seed_document(h);
    let store = h.shared_store();
    let mut written: Vec<Uuid> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = std::sync::Arc::clone(&store);
                let doc = doc.id.clone();
                scope.spawn(move || concurrent_writer(&*store, &doc, t))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("writer thread panicked"))
            .collect()
    });
    let blocks = blocks_of(h, &doc.id);
    assert_eq!(
        blocks.len(),
        THREADS * WRITES_PER_THREAD,
        "every block present"
    );
    for (n, block) in blocks.iter().enumerate() {
        let (t, i) = (n / WRITES_PER_THREAD, n % WRITES_PER_THREAD);
        assert_eq!(block.id, format!("t{t}-{i:02}"));
        assert_eq!(
            block.raw_content,
            format!("updated {}", block.id),
            "update kept"
        );
        assert_eq!(block.provenance.actor_kind, WriteActorKind::Ai);
    }
    let jobs = all_jobs(h);
    assert!(
        jobs.iter().all(|j| j.state == JobState::Completed),
        "every job completed"
    );
    let mut listed = job_ids(&jobs);
    listed.sort();
    written.sort();
    assert_eq!(listed, written, "every job present once");
}

/// Two `replace_blocks` of one document racing: the document ends with
/// exactly one of the two sets, never a mix or a union.
pub fn concurrent_replace_blocks_last_writer_wins_whole(h: &Harness) {
    let doc = seed_document(h);
    let store = h.shared_store();
    let set = |tag: &str| -> Vec<NewBlock> {
        (0..50)
            .map(|i| new_block(&doc.id, i, Some(&format!("{tag}-{i:02}"))))
            .collect()
    };
    for round in 0..5 {
        let tags = [format!("a{round}"), format!("b{round}")];
        std::thread::scope(|scope| {
            for tag in &tags {
                let (store, doc, items) = (&store, &doc.id, set(tag));
                scope.spawn(move || {
                    store
                        .replace_blocks(&human(), doc, items)
                        .expect("concurrent replace")
                });
            }
        });
        let ids: Vec<String> = blocks_of(h, &doc.id).into_iter().map(|b| b.id).collect();
        let whole =
            |tag: &str| -> Vec<String> { (0..50).map(|i| format!("{tag}-{i:02}")).collect() };
        assert!(
            ids == whole(&tags[0]) || ids == whole(&tags[1]),
            "round {round}: a mix of both replaces: {ids:?}"
        );
    }
}
