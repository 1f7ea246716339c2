//! handshake-storage through `AsyncStorage` against sqlx 0.8, the library a
//! Handshake developer would otherwise use: the same schema (migrated by
//! the store, on twin databases so neither side's writes slow the other),
//! the same SQL (`handshake_storage::bench::sql`), pools of eight on both
//! sides, sqlx's SQLite connections set up as the store's (WAL,
//! the store's default `synchronous`, FULL; busy timeout, foreign keys) and
//! no checkout query on either side. Point ops one at a time and 16 tasks at once;
//! bulk ops of 10,000 blocks. Ratios are sqlx's time over the store's
//! (above 1: the store is faster), from interleaved rounds in one run.
//!
//! `cd bench-sqlx && POSTGRES_TEST_URL=... cargo bench`;
//! `HSK_BENCH_GROUPS=point,bulk` picks groups.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use handshake_storage::conformance::{fixtures, TestTarget};
use handshake_storage::*;

#[allow(dead_code)]
#[path = "../../benches/common/mod.rs"]
mod common;
use common::{compare, on_worker, runtime, seed, targets, wanted, Variant};

mod sqlite {
    use super::*;
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    pub type Db = sqlx::Sqlite;
    pub type Time = String;
    pub type Id = String;
    pub type Json = String;
    pub const MAX_BINDS: usize = 32_766;

    /// The store's SQLite timestamp text.
    pub fn time(at: chrono::DateTime<chrono::Utc>) -> Time {
        at.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
    }

    pub fn uuid_arg(id: uuid::Uuid) -> Id {
        id.to_string()
    }

    pub fn json(value: serde_json::Value) -> Json {
        value.to_string()
    }

    pub fn sql(text: &str) -> String {
        text.to_string()
    }

    /// Set up as the store's connections are, with the store's default
    /// `synchronous` (FULL).
    pub async fn connect(url: &str) -> sqlx::Pool<Db> {
        use handshake_storage::StorageConfig;
        let options = SqliteConnectOptions::from_str(url)
            .expect("a SQLite URL")
            .busy_timeout(Duration::from_secs(10))
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(
                match StorageConfig::default().sqlite_synchronous.pragma_value() {
                    1 => SqliteSynchronous::Normal,
                    2 => SqliteSynchronous::Full,
                    _ => SqliteSynchronous::Extra,
                },
            )
            .foreign_keys(true);
        SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .expect("a sqlx SQLite pool")
    }

    include!("sqlx/side.rs");
}

mod postgres {
    use sqlx::postgres::PgPoolOptions;

    pub type Db = sqlx::Postgres;
    pub type Time = chrono::DateTime<chrono::Utc>;
    pub type Id = uuid::Uuid;
    pub type Json = serde_json::Value;
    pub const MAX_BINDS: usize = 65_535;

    pub fn time(at: chrono::DateTime<chrono::Utc>) -> Time {
        at
    }

    pub fn uuid_arg(id: uuid::Uuid) -> Id {
        id
    }

    pub fn json(value: serde_json::Value) -> Json {
        value
    }

    /// `?` placeholders as `$1`, `$2`, ... (our SQL has no `?` in literals).
    pub fn sql(text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 16);
        let mut n = 0;
        for c in text.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    pub async fn connect(url: &str) -> sqlx::Pool<Db> {
        PgPoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect(url)
            .await
            .expect("a sqlx PostgreSQL pool")
    }

    include!("sqlx/side.rs");
}

/// The two sides of one backend: the store (behind `AsyncStorage`) on one
/// database, sqlx on its twin.
enum SqlxSide {
    Sqlite(sqlite::Side),
    Postgres(postgres::Side),
}

macro_rules! on_side {
    ($side:expr, $s:ident => $body:expr) => {
        match $side {
            SqlxSide::Sqlite($s) => $body,
            SqlxSide::Postgres($s) => $body,
        }
    };
}

fn run_backend(c: &mut Criterion, target: &TestTarget, summary: &mut Vec<String>) {
    let backend = target.backend().to_string();
    let rt = runtime();
    let store_db = target.harness().expect("the store's database");
    let sqlx_db = target.harness().expect("sqlx's database");
    let store = AsyncStorage::new(store_db.shared_store(), 8);
    let (store_doc, store_ids) = seed(store_db.store(), 64);
    let (sqlx_doc, sqlx_ids) = seed(sqlx_db.store(), 64);
    let url = sqlx_db.url().to_string();
    let sqlx = rt.block_on(async {
        match target.backend() {
            Backend::Sqlite => SqlxSide::Sqlite(sqlite::Side::open(&url).await),
            _ => SqlxSide::Postgres(postgres::Side::open(&url).await),
        }
    });
    // The sqlx pool reads what the store wrote: same database, same schema.
    rt.block_on(async { on_side!(&sqlx, s => s.get_block(&sqlx_ids[0]).await) });
    let (store, sqlx) = (Arc::new(store), Arc::new(sqlx));
    let rt = &rt;

    type Op<'a> = Box<
        dyn Fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>
            + Send
            + Sync
            + 'a,
    >;
    // One call at a time from a task on a worker thread, as a service's
    // request handler makes them.
    let sequential = |op: Op<'static>| -> Box<dyn FnMut(u64) -> Duration + '_> {
        let op = Arc::new(op);
        Box::new(move |iters| {
            let op = Arc::clone(&op);
            on_worker(rt, async move {
                let start = Instant::now();
                for k in 0..iters {
                    op(k).await;
                }
                start.elapsed()
            })
        })
    };
    // `get_block` through a second handle on the same store with every
    // call on the blocking pool (the dispatch before point reads ran
    // inline), as a baseline in the same run.
    let pooled = Arc::new((*store).clone().with_dispatch(AsyncDispatch::BlockingPool));
    // Every call inline (writes too), for the point writes.
    let inline = Arc::new((*store).clone().with_dispatch(AsyncDispatch::Inline));

    if wanted("point") {
        const OPS: [&str; 3] = ["create_block", "get_block", "update_block"];
        // The store's side of a point op, through any handle on the store.
        let ours = |op: &'static str, store: &Arc<AsyncStorage>| -> Op<'static> {
            let (store, doc, ids) = (Arc::clone(store), store_doc.clone(), store_ids.clone());
            Box::new(move |k| {
                let (store, doc, id) = (
                    Arc::clone(&store),
                    doc.clone(),
                    ids[k as usize % ids.len()].clone(),
                );
                Box::pin(async move {
                    let ctx = WriteContext::human(Some("bench".into()));
                    match op {
                        "create_block" => {
                            let block = fixtures::ordinary_block(&doc, 1_000 + k as i64);
                            store.create_block(&ctx, block).await.map(drop)
                        }
                        "get_block" => store.get_block(&id).await.map(drop),
                        _ => {
                            let update = BlockUpdate {
                                raw_content: Some(format!("update {k}")),
                                ..BlockUpdate::default()
                            };
                            store.update_block(&ctx, &id, update).await.map(drop)
                        }
                    }
                    .unwrap();
                })
            })
        };
        let theirs = |op: &'static str| -> Op<'static> {
            let (sqlx, doc, ids) = (Arc::clone(&sqlx), sqlx_doc.clone(), sqlx_ids.clone());
            Box::new(move |k| {
                let (sqlx, doc, id) = (
                    Arc::clone(&sqlx),
                    doc.clone(),
                    ids[k as usize % ids.len()].clone(),
                );
                Box::pin(async move {
                    match op {
                        "create_block" => {
                            let block = fixtures::ordinary_block(&doc, 1_000 + k as i64);
                            on_side!(&*sqlx, s => s.create_block(&block).await)
                        }
                        "get_block" => on_side!(&*sqlx, s => s.get_block(&id).await),
                        _ => {
                            on_side!(&*sqlx, s => s.update_block(&id, &format!("update {k}")).await)
                        }
                    }
                })
            })
        };
        for op in OPS {
            let mut variants: Vec<Variant<'_>> = vec![
                ("handshake_storage", sequential(ours(op, &store))),
                ("sqlx", sequential(theirs(op))),
            ];
            if op == "get_block" {
                // The floor of any dispatch: the synchronous call made on the
                // worker thread itself (blocking it, which a service must not do).
                let (sync_store, ids) = (Arc::clone(store.store()), store_ids.clone());
                variants.push((
                    "hs_sync_call_floor",
                    sequential(Box::new(move |k| {
                        let (store, id) =
                            (Arc::clone(&sync_store), ids[k as usize % ids.len()].clone());
                        Box::pin(async move {
                            store.get_block(&id).unwrap();
                        })
                    })),
                ));
                variants.push(("hs_blocking_pool", sequential(ours(op, &pooled))));
            } else {
                variants.push(("hs_inline_writes", sequential(ours(op, &inline))));
            }
            compare(c, &backend, &format!("point/{op}"), 1, variants, summary);
        }
    }

    if wanted("concurrent") {
        const TASKS: u64 = 16;
        const CALLS: u64 = 16;
        let concurrent = |sqlx_side: bool,
                          store: Arc<AsyncStorage>|
         -> Box<dyn FnMut(u64) -> Duration + '_> {
            let sqlx = Arc::clone(&sqlx);
            let (store_ids, sqlx_ids) = (Arc::new(store_ids.clone()), Arc::new(sqlx_ids.clone()));
            Box::new(move |iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let mut tasks = tokio::task::JoinSet::new();
                        for t in 0..TASKS {
                            let (store, sqlx) = (Arc::clone(&store), Arc::clone(&sqlx));
                            let (store_ids, sqlx_ids) =
                                (Arc::clone(&store_ids), Arc::clone(&sqlx_ids));
                            tasks.spawn(async move {
                                for k in 0..CALLS {
                                    let n = ((t * CALLS + k) % 64) as usize;
                                    if sqlx_side {
                                        on_side!(&*sqlx, s => s.get_block(&sqlx_ids[n]).await);
                                    } else {
                                        store.get_block(&store_ids[n]).await.unwrap();
                                    }
                                }
                            });
                        }
                        while let Some(done) = tasks.join_next().await {
                            done.unwrap();
                        }
                    }
                    start.elapsed()
                })
            })
        };
        compare(
            c,
            &backend,
            "concurrent/get_block_16_tasks",
            TASKS * CALLS,
            vec![
                ("handshake_storage", concurrent(false, Arc::clone(&store))),
                ("sqlx", concurrent(true, Arc::clone(&store))),
                ("hs_blocking_pool", concurrent(false, Arc::clone(&pooled))),
            ],
            summary,
        );
    }

    if wanted("bulk") {
        const BLOCKS: usize = 10_000;
        let ctx = WriteContext::human(Some("bench".into()));
        let blocks = |doc: &str| -> Vec<NewBlock> {
            (0..BLOCKS as i64)
                .map(|k| fixtures::ordinary_block(doc, k))
                .collect()
        };
        let (ours_blocks, their_blocks) = (blocks(&store_doc), blocks(&sqlx_doc));
        let replace_ours = {
            let (store, doc, ctx) = (Arc::clone(&store), store_doc.clone(), ctx.clone());
            Box::new(move |_k: u64| {
                let (store, doc, ctx, blocks) = (
                    Arc::clone(&store),
                    doc.clone(),
                    ctx.clone(),
                    ours_blocks.clone(),
                );
                Box::pin(async move {
                    store.replace_blocks(&ctx, &doc, blocks).await.unwrap();
                })
                    as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            }) as Op<'static>
        };
        let replace_theirs = {
            let (sqlx, doc) = (Arc::clone(&sqlx), sqlx_doc.clone());
            Box::new(move |_k: u64| {
                let (sqlx, doc, blocks) = (Arc::clone(&sqlx), doc.clone(), their_blocks.clone());
                Box::pin(
                    async move { on_side!(&*sqlx, s => s.replace_blocks(&doc, &blocks).await) },
                ) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            }) as Op<'static>
        };
        compare(
            c,
            &backend,
            &format!("bulk/replace_blocks_{BLOCKS}"),
            1,
            vec![
                ("handshake_storage", sequential(replace_ours)),
                ("sqlx", sequential(replace_theirs)),
            ],
            summary,
        );
        let get_ours = {
            let (store, doc) = (Arc::clone(&store), store_doc.clone());
            Box::new(move |_k: u64| {
                let (store, doc) = (Arc::clone(&store), doc.clone());
                Box::pin(async move {
                    assert_eq!(store.get_blocks(&doc).await.unwrap().len(), BLOCKS);
                })
                    as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            }) as Op<'static>
        };
        let get_theirs = {
            let (sqlx, doc) = (Arc::clone(&sqlx), sqlx_doc.clone());
            Box::new(move |_k: u64| {
                let (sqlx, doc) = (Arc::clone(&sqlx), doc.clone());
                Box::pin(async move {
                    assert_eq!(on_side!(&*sqlx, s => s.get_blocks(&doc).await), BLOCKS);
                })
                    as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            }) as Op<'static>
        };
        compare(
            c,
            &backend,
            &format!("bulk/get_blocks_{BLOCKS}"),
            1,
            vec![
                ("handshake_storage", sequential(get_ours)),
                ("sqlx", sequential(get_theirs)),
            ],
            summary,
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut summary = Vec::new();
    for target in targets() {
        run_backend(&mut c, &target, &mut summary);
    }
    c.final_summary();
    println!("\nsummary (median per call; ratio: time over handshake_storage's, so sqlx above 1 means the store is faster):");
    for line in summary {
        println!("{line}");
    }
}
