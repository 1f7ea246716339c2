//! Feature `tracing`, through a capturing subscriber, on both backends: a
//! script calls every `Storage` method through `AsyncStorage` inside a
//! caller's span; each call yields exactly one span named after its method,
//! with the database attributes, under the caller's span (across the
//! blocking pool), with a DEBUG event per statement under it. Canary
//! strings planted in ids, text, JSON and the URL's password appear in no
//! captured output. A slow-call threshold gives a WARN with the same fields.
#![cfg(all(feature = "tracing", feature = "tokio"))]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use handshake_storage::conformance::TestTarget;
use handshake_storage::*;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Instrument, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

const CANARY: &str = "zq9canary";

/// A captured span or event.
#[derive(Clone, Debug, Default)]
struct Captured {
    serial: u64,
    name: String,
    level: String,
    fields: BTreeMap<String, String>,
    parent: Option<u64>,
    is_event: bool,
}

fn captured() -> &'static Mutex<Vec<Captured>> {
    static CAPTURED: OnceLock<Mutex<Vec<Captured>>> = OnceLock::new();
    CAPTURED.get_or_init(Mutex::default)
}

/// A span's serial number: the registry reuses span ids.
struct Serial(u64);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
}

struct Capture;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let serial = NEXT.fetch_add(1, Ordering::SeqCst);
        let span = ctx.span(id).expect("a new span");
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Serial>().map(|s| s.0));
        span.extensions_mut().insert(Serial(serial));
        let mut record = Captured {
            serial,
            name: attrs.metadata().name().into(),
            level: attrs.metadata().level().to_string(),
            parent,
            ..Captured::default()
        };
        attrs.record(&mut Fields(&mut record.fields));
        captured().lock().unwrap().push(record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(serial) = ctx
            .span(id)
            .and_then(|s| s.extensions().get::<Serial>().map(|s| s.0))
        else {
            return;
        };
        let mut all = captured().lock().unwrap();
        if let Some(record) = all.iter_mut().find(|r| r.serial == serial && !r.is_event) {
            values.record(&mut Fields(&mut record.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let parent = ctx
            .event_span(event)
            .and_then(|s| s.extensions().get::<Serial>().map(|s| s.0));
        let mut record = Captured {
            name: event.metadata().name().into(),
            level: event.metadata().level().to_string(),
            parent,
            is_event: true,
            ..Captured::default()
        };
        event.record(&mut Fields(&mut record.fields));
        captured().lock().unwrap().push(record);
    }
}

/// The subscriber is process-wide (calls run on the blocking pool's
/// threads), so each test finds its own records by its root span.
fn install() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        tracing_subscriber::registry()
            .with(Capture)
            .try_init()
            .expect("install the capturing subscriber");
    });
}

/// The records under the root span with this serial, and the root.
fn descendants_of(root: u64) -> Vec<Captured> {
    let all = captured().lock().unwrap().clone();
    let spans: BTreeMap<u64, Option<u64>> = all
        .iter()
        .filter(|r| !r.is_event)
        .map(|r| (r.serial, r.parent))
        .collect();
    let under = |mut at: Option<u64>| {
        while let Some(serial) = at {
            if serial == root {
                return true;
            }
            at = spans.get(&serial).copied().flatten();
        }
        false
    };
    all.into_iter().filter(|r| under(r.parent)).collect()
}

/// `url` with its password (or a new one) set to the canary.
fn with_canary_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    let user = userinfo.split(':').next().unwrap_or_default();
    format!("{scheme}://{user}:{CANARY}-password@{host}")
}

/// Calls every `Storage` method once (and one failing call), returning the
/// methods called in order.
async fn script(store: &AsyncStorage) -> Vec<&'static str> {
    let mut called = Vec::new();
    let ctx = WriteContext::human(Some(format!("{CANARY}-actor")));
    let c = |name: &'static str, called: &mut Vec<&'static str>| called.push(name);

    store.ping().await.unwrap();
    c("ping", &mut called);
    store.run_migrations().await.unwrap();
    c("run_migrations", &mut called);
    store.migration_status().await.unwrap();
    c("migration_status", &mut called);

    let ws = store
        .create_workspace(
            &ctx,
            NewWorkspace {
                name: format!("{CANARY}-workspace"),
            },
        )
        .await
        .unwrap();
    c("create_workspace", &mut called);
    store.list_workspaces().await.unwrap();
    c("list_workspaces", &mut called);
    store.get_workspace(&ws.id).await.unwrap();
    c("get_workspace", &mut called);

    let doc = store
        .create_document(
            &ctx,
            NewDocument {
                workspace_id: ws.id.clone(),
                title: format!("{CANARY}-title"),
            },
        )
        .await
        .unwrap();
    c("create_document", &mut called);
    store.list_documents(&ws.id).await.unwrap();
    c("list_documents", &mut called);
    store.get_document(&doc.id).await.unwrap();
    c("get_document", &mut called);

    let block = store
        .create_block(
            &ctx,
            NewBlock {
                id: Some(format!("{CANARY}-block-id")),
                document_id: doc.id.clone(),
                kind: "paragraph".into(),
                raw_content: format!("{CANARY}-text"),
                derived_content: Some(json!({ "secret": format!("{CANARY}-json") })),
                ..NewBlock::default()
            },
        )
        .await
        .unwrap();
    c("create_block", &mut called);
    store.get_block(&block.id).await.unwrap();
    c("get_block", &mut called);
    store
        .update_block(
            &ctx,
            &block.id,
            BlockUpdate {
                raw_content: Some(format!("{CANARY}-updated")),
                ..BlockUpdate::default()
            },
        )
        .await
        .unwrap();
    c("update_block", &mut called);
    let replaced = store
        .replace_blocks(
            &ctx,
            &doc.id,
            (0..3)
                .map(|k| NewBlock {
                    id: Some(format!("{CANARY}-replaced-{k}")),
                    document_id: doc.id.clone(),
                    kind: "paragraph".into(),
                    sequence: k,
                    raw_content: format!("{CANARY}-replaced text {k}"),
                    ..NewBlock::default()
                })
                .collect(),
        )
        .await
        .unwrap();
    c("replace_blocks", &mut called);
    assert_eq!(store.get_blocks(&doc.id).await.unwrap().len(), 3);
    c("get_blocks", &mut called);
    store.delete_block(&ctx, &replaced[0].id).await.unwrap();
    c("delete_block", &mut called);
    let missing = store.get_block(&format!("{CANARY}-missing")).await;
    assert!(matches!(missing, Err(StorageError::NotFound(_))));
    c("get_block", &mut called);

    let canvas = store
        .create_canvas(
            &ctx,
            NewCanvas {
                workspace_id: ws.id.clone(),
                title: format!("{CANARY}-canvas"),
            },
        )
        .await
        .unwrap();
    c("create_canvas", &mut called);
    store.list_canvases(&ws.id).await.unwrap();
    c("list_canvases", &mut called);
    store
        .update_canvas_graph(
            &ctx,
            &canvas.id,
            vec![
                NewCanvasNode {
                    id: Some(format!("{CANARY}-node-a")),
                    kind: "note".into(),
                    data: Some(json!([format!("{CANARY}-node-json")])),
                    ..NewCanvasNode::default()
                },
                NewCanvasNode {
                    id: Some(format!("{CANARY}-node-b")),
                    kind: "note".into(),
                    ..NewCanvasNode::default()
                },
            ],
            vec![NewCanvasEdge {
                id: Some(format!("{CANARY}-edge")),
                from_node_id: format!("{CANARY}-node-a"),
                to_node_id: format!("{CANARY}-node-b"),
                kind: "link".into(),
            }],
        )
        .await
        .unwrap();
    c("update_canvas_graph", &mut called);
    store.get_canvas_with_graph(&canvas.id).await.unwrap();
    c("get_canvas_with_graph", &mut called);
    store.delete_canvas(&ctx, &canvas.id).await.unwrap();
    c("delete_canvas", &mut called);

    let job = store
        .create_ai_job(NewAiJob {
            entity_refs: vec![EntityRef {
                entity_id: format!("{CANARY}-entity"),
                entity_kind: "workspace".into(),
            }],
            status_reason: format!("{CANARY}-reason"),
            job_inputs: Some(json!({ "prompt": format!("{CANARY}-prompt") })),
            ..NewAiJob::default()
        })
        .await
        .unwrap();
    c("create_ai_job", &mut called);
    store.get_ai_job(job.job_id).await.unwrap();
    c("get_ai_job", &mut called);
    store
        .list_ai_jobs(AiJobListFilter {
            wsid: Some(format!("{CANARY}-entity")),
            ..AiJobListFilter::default()
        })
        .await
        .unwrap();
    c("list_ai_jobs", &mut called);
    store
        .update_ai_job_status(JobStatusUpdate {
            job_id: job.job_id,
            state: JobState::Running,
            error_message: Some(format!("{CANARY}-error")),
            status_reason: format!("{CANARY}-status"),
            metrics: None,
            workflow_run_id: None,
            trace_id: None,
            job_outputs: None,
        })
        .await
        .unwrap();
    c("update_ai_job_status", &mut called);
    store
        .set_job_outputs(
            job.job_id,
            Some(json!({ "out": format!("{CANARY}-output") })),
        )
        .await
        .unwrap();
    c("set_job_outputs", &mut called);
    store.set_job_pinned(job.job_id, true).await.unwrap();
    c("set_job_pinned", &mut called);

    let run = store
        .create_workflow_run(job.job_id, JobState::Running, None)
        .await
        .unwrap();
    c("create_workflow_run", &mut called);
    store
        .heartbeat_workflow(run.id, chrono::Utc::now())
        .await
        .unwrap();
    c("heartbeat_workflow", &mut called);
    let exec = store
        .create_workflow_node_execution(NewNodeExecution {
            workflow_run_id: run.id,
            node_id: format!("{CANARY}-node"),
            node_type: "llm".into(),
            status: JobState::Running,
            sequence: 1,
            input_payload: Some(json!({ "in": format!("{CANARY}-payload") })),
            started_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    c("create_workflow_node_execution", &mut called);
    store
        .update_workflow_node_execution_status(
            exec.id,
            JobState::Failed,
            Some(json!(format!("{CANARY}-node-output"))),
            Some(format!("{CANARY}-node-error")),
        )
        .await
        .unwrap();
    c("update_workflow_node_execution_status", &mut called);
    store.list_workflow_node_executions(run.id).await.unwrap();
    c("list_workflow_node_executions", &mut called);
    store
        .update_workflow_run_status(
            run.id,
            JobState::Failed,
            Some(format!("{CANARY}-run-error")),
        )
        .await
        .unwrap();
    c("update_workflow_run_status", &mut called);
    store.find_stalled_workflows(60).await.unwrap();
    c("find_stalled_workflows", &mut called);

    let ai = WriteContext::ai(Some(format!("{CANARY}-ai")), None, None);
    let refused = store
        .validate_write_with_guard(&ai, &format!("{CANARY}-resource"))
        .await;
    assert!(matches!(refused, Err(StorageError::Guard(_))));
    c("validate_write_with_guard", &mut called);
    store
        .prune_ai_jobs(chrono::Utc::now(), 0, true)
        .await
        .unwrap();
    c("prune_ai_jobs", &mut called);

    let event = store
        .append_kernel_event(NewKernelEvent {
            event_version: "1".into(),
            kernel_task_run_id: "KTR-traced".into(),
            session_run_id: "SR-traced".into(),
            aggregate_type: "session_run".into(),
            aggregate_id: "SR-traced".into(),
            idempotency_key: format!("{CANARY}-key"),
            event_type: "TRACED".into(),
            actor: KernelActor::new(KernelActorKind::System, "tracer"),
            source_component: "tracing test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    c("append_kernel_event", &mut called);
    let tail = store.list_kernel_events_after(0, 10).await.unwrap();
    assert_eq!(tail, vec![event]);
    c("list_kernel_events_after", &mut called);
    store
        .enqueue_kernel_session_run(SessionRun::queued("KTR-traced", "adapter"))
        .await
        .unwrap();
    c("enqueue_kernel_session_run", &mut called);
    let lease = store
        .claim_next_kernel_session_run(
            "worker",
            std::time::Duration::from_secs(60),
            Some("adapter"),
        )
        .await
        .unwrap()
        .expect("the run");
    c("claim_next_kernel_session_run", &mut called);
    let fence = lease.fence().expect("fence");
    store
        .renew_kernel_session_lease(&fence, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    c("renew_kernel_session_lease", &mut called);
    store
        .update_kernel_session_run_state(
            &lease.session_run_id,
            SessionRunUpdate::to(SessionRunState::Running).fenced(fence),
        )
        .await
        .unwrap();
    c("update_kernel_session_run_state", &mut called);
    let claims = store
        .list_kernel_session_claims(&lease.session_run_id)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    c("list_kernel_session_claims", &mut called);

    store.delete_document(&ctx, &doc.id).await.unwrap();
    c("delete_document", &mut called);
    store.delete_workspace(&ctx, &ws.id).await.unwrap();
    c("delete_workspace", &mut called);
    called
}

fn spans_events_and_no_secrets(target: TestTarget) {
    install();
    let harness = target.harness().expect("a fresh database");
    let backend = harness.backend();
    let url = with_canary_password(harness.url());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let root = tracing::info_span!("caller", backend = ?backend);
    let root_serial = {
        let all = captured().lock().unwrap();
        all.iter()
            .rev()
            .find(|r| {
                r.name == "caller" && r.fields.get("backend") == Some(&format!("{backend:?}"))
            })
            .map(|r| r.serial)
            .expect("the caller's span was captured")
    };
    let called = runtime.block_on(
        async {
            let config = StorageConfig::default().slow_call_threshold(None);
            let store = AsyncStorage::open(&url, &config).await.expect("open");
            script(&store).await
        }
        .instrument(root.clone()),
    );
    drop(root);
    let records = descendants_of(root_serial);

    // Exactly one span per call, named after its method, child of the caller.
    let spans: Vec<&Captured> = records.iter().filter(|r| !r.is_event).collect();
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let mut expected = called.clone();
    names.sort_unstable();
    expected.sort_unstable();
    assert_eq!(names, expected, "one span per call");
    let (system, namespace) = match backend {
        Backend::Sqlite => ("sqlite", "store.db"),
        Backend::Postgres => ("postgresql", "handshake_test"),
    };
    for span in &spans {
        assert_eq!(
            span.parent,
            Some(root_serial),
            "{} is a child of the caller's span",
            span.name
        );
        assert_eq!(span.level, "INFO");
        let field = |k: &str| span.fields.get(k).map(String::as_str);
        assert_eq!(field("db.system.name"), Some(system), "{span:?}");
        assert_eq!(field("db.operation.name"), Some(span.name.as_str()));
        if backend == Backend::Postgres {
            assert_eq!(field("db.namespace"), Some(namespace), "{span:?}");
        } else {
            assert!(
                field("db.namespace").is_some_and(|n| !n.contains('/')),
                "{span:?}"
            );
        }
        let admin = [
            "ping",
            "run_migrations",
            "migration_status",
            "validate_write_with_guard",
        ];
        if !admin.contains(&span.name.as_str()) {
            assert!(field("db.collection.name").is_some(), "{span:?}");
            let failed = field("error.type").is_some();
            let rows = field("db.response.returned_rows").or(field("db.response.affected_rows"));
            assert!(failed || rows.is_some(), "rows recorded: {span:?}");
        }
        // Every call that reached the database sent statements, each a
        // DEBUG event under the call's span.
        let statements: Vec<&Captured> = records
            .iter()
            .filter(|r| r.is_event && r.parent == Some(span.serial))
            .collect();
        if span.name != "validate_write_with_guard" {
            assert!(!statements.is_empty(), "statement events of {}", span.name);
        }
        for statement in statements {
            assert_eq!(statement.level, "DEBUG");
            let sql = &statement.fields["db.query.text"];
            assert!(!sql.contains("binds"), "{sql}");
            assert!(sql.len() <= 2048 + 4, "{} bytes", sql.len());
        }
    }
    let field_of = |method: &str, key: &str| -> Vec<Option<String>> {
        spans
            .iter()
            .filter(|s| s.name == method)
            .map(|s| s.fields.get(key).cloned())
            .collect()
    };
    assert_eq!(
        field_of("get_block", "error.type"),
        [None, Some("NotFound".to_string())],
        "the failed call's error kind"
    );
    assert_eq!(
        field_of("get_blocks", "db.response.returned_rows"),
        [Some("3".into())]
    );
    assert_eq!(
        field_of("replace_blocks", "db.response.affected_rows"),
        [Some("3".into())]
    );
    assert_eq!(
        field_of("get_blocks", "db.collection.name"),
        [Some("blocks".into())]
    );
    assert_eq!(
        field_of("validate_write_with_guard", "error.type"),
        [Some("Guard".into())]
    );

    // No canary anywhere in anything captured, from any test.
    for record in captured().lock().unwrap().iter() {
        let text = format!("{record:?}");
        assert!(
            !text.contains(CANARY),
            "a secret reached the subscriber: {text}"
        );
    }
}

fn slow_calls_warn_with_the_same_fields(target: TestTarget) {
    install();
    let harness = target.harness().expect("a fresh database");
    let config = StorageConfig::default().slow_call_threshold(Some(Duration::ZERO));
    let store = open_with_config(harness.url(), &config).unwrap();
    let root = tracing::info_span!("slow_caller", backend = ?harness.backend());
    let root_serial = captured()
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|r| {
            r.name == "slow_caller"
                && r.fields.get("backend") == Some(&format!("{:?}", harness.backend()))
        })
        .map(|r| r.serial)
        .unwrap();
    root.in_scope(|| store.list_workspaces().unwrap());
    let records = descendants_of(root_serial);
    let span = records
        .iter()
        .find(|r| !r.is_event && r.name == "list_workspaces")
        .expect("the call's span");
    let warn = records
        .iter()
        .find(|r| r.is_event && r.level == "WARN")
        .expect("a WARN for the slow call");
    assert_eq!(warn.parent, Some(span.serial));
    for key in [
        "db.system.name",
        "db.namespace",
        "db.operation.name",
        "db.collection.name",
    ] {
        assert_eq!(warn.fields.get(key), span.fields.get(key), "{key}");
    }
    assert!(warn.fields.contains_key("duration_ms"));
    assert_eq!(
        warn.fields.get("db.response.rows").map(String::as_str),
        Some("0")
    );
    assert!(Level::WARN.to_string() == warn.level);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    #[test]
    fn spans_events_and_no_secrets() {
        super::spans_events_and_no_secrets(super::TestTarget::standard("sqlite"));
    }

    #[test]
    fn slow_calls_warn_with_the_same_fields() {
        super::slow_calls_warn_with_the_same_fields(super::TestTarget::standard("sqlite"));
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    #[test]
    fn spans_events_and_no_secrets() {
        super::spans_events_and_no_secrets(super::TestTarget::standard("postgres"));
    }

    #[test]
    fn slow_calls_warn_with_the_same_fields() {
        super::slow_calls_warn_with_the_same_fields(super::TestTarget::standard("postgres"));
    }
}
