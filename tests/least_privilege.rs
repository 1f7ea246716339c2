//! Least privilege on PostgreSQL: the owner migrates, the application runs
//! as a role with only the grants of `grant_application_role`, opened with
//! `run_migrations(false)`. Each test makes its own schema (the conformance
//! harness, migrated by the admin role: the owner) and its own login role
//! (`ScratchRole`, dropped afterwards). The whole conformance suite as such
//! a role is `tests/conformance.rs` (`postgres_least_privilege::`).
#![cfg(feature = "postgres")]

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;

use diesel::connection::{set_default_instrumentation, Instrumentation, InstrumentationEvent};
use handshake_storage::conformance::fixtures::{human, new_block, new_doc, ws_ref};
use handshake_storage::conformance::{Harness, ScratchRole, TestTarget, CASES, OWNER_ONLY};
#[cfg(feature = "sqlite")]
use handshake_storage::copy::{copy_store, verify_stores, CopyOptions};
use handshake_storage::*;

/// The newest migration this build has.
const NEWEST: &str = "20261204000001";

fn admin_url() -> String {
    TestTarget::standard_postgres_url()
}

/// A fresh schema, migrated by the admin role (its owner).
fn owner_store() -> Harness {
    TestTarget::standard("postgres")
        .harness()
        .expect("a fresh PostgreSQL schema")
}

/// A fresh schema and a store on it running as a least-privilege role.
fn application_store() -> Harness {
    TestTarget::PostgresLeastPrivilege {
        admin_url: admin_url(),
        replica_urls: Vec::new(),
    }
    .harness()
    .expect("a least-privilege store")
}

fn migrations_off() -> StorageConfig {
    StorageConfig::default().run_migrations(false)
}

/// The password a URL carries (`scheme://user:password@...`).
fn password_of(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("a URL");
    parsed.password().expect("a password").to_string()
}

#[track_caller]
fn assert_one_line(err: &StorageError) {
    let text = err.to_string();
    assert!(!text.contains('\n'), "not one line: {text}");
}

/// Writes of every kind the API has, and reads back.
fn exercise(store: &dyn Storage) {
    let ws = store
        .create_workspace(&human(), NewWorkspace { name: "lp".into() })
        .expect("create_workspace");
    let doc = store
        .create_document(&human(), new_doc(&ws.id, "doc"))
        .expect("create_document");
    let block = store
        .create_block(&human(), new_block(&doc.id, 1, None))
        .expect("create_block");
    store
        .update_block(
            &human(),
            &block.id,
            BlockUpdate {
                raw_content: Some("edited".into()),
                ..Default::default()
            },
        )
        .expect("update_block");
    let job = store
        .create_ai_job(handshake_storage::conformance::fixtures::new_job(
            JobKind::DocEdit,
            vec![ws_ref(&ws.id)],
        ))
        .expect("create_ai_job (its trigger writes the refs)");
    let listed = store
        .list_ai_jobs(AiJobListFilter {
            wsid: Some(ws.id.clone()),
            ..Default::default()
        })
        .expect("list_ai_jobs by workspace");
    assert_eq!(listed, vec![job]);
    store
        .append_kernel_event(NewKernelEvent {
            event_version: "1".into(),
            kernel_task_run_id: "KTR-1".into(),
            session_run_id: "SR-1".into(),
            aggregate_type: "session".into(),
            aggregate_id: "SR-1".into(),
            idempotency_key: "lp-1".into(),
            event_type: "SESSION_QUEUED".into(),
            actor: KernelActor {
                kind: KernelActorKind::System,
                id: "lp".into(),
            },
            source_component: "least_privilege".into(),
            payload: serde_json::json!({"k": 1}),
            ..Default::default()
        })
        .expect("append_kernel_event");
    store
        .delete_workspace(&human(), &ws.id)
        .expect("delete_workspace");
    assert!(store.list_workspaces().expect("list").is_empty());
}

#[test]
fn grant_gives_the_role_what_the_store_needs_and_is_idempotent() {
    let owner = owner_store();
    let role = ScratchRole::create(&admin_url(), owner.url()).expect("a scratch role");
    let report = grant_application_role(owner.url(), role.name()).expect("grant");
    assert_eq!(report.role, role.name());
    assert!(report.schema.starts_with("hsk_test_"), "{report:?}");
    assert_eq!(report.tables.len(), 13, "{report:?}");
    for table in [
        "workspaces",
        "blocks",
        "ai_jobs",
        "ai_job_entity_refs",
        "kernel_events",
    ] {
        assert!(
            report.tables.iter().any(|t| t == table),
            "{table}: {report:?}"
        );
    }
    assert_eq!(report.read_only_tables, vec!["__diesel_schema_migrations"]);
    assert!(report.sequences.is_empty(), "{report:?}");
    assert_eq!(report.functions.len(), 1, "{report:?}");
    assert!(
        report.functions[0].ends_with(".ai_jobs_index_entity_refs()"),
        "{report:?}"
    );
    assert_eq!(report.statements.len(), 4, "{report:?}");
    assert!(report.statements[0].starts_with("GRANT USAGE ON SCHEMA \""));
    assert!(report
        .statements
        .iter()
        .all(|s| s.ends_with(&format!("TO \"{}\"", role.name()))));
    // Again: the same grants, nothing new.
    assert_eq!(
        grant_application_role(owner.url(), role.name()).unwrap(),
        report
    );

    let store = open_with_config(role.url(), &migrations_off()).expect("open as the role");
    exercise(&*store);
    // Migrations on, nothing pending: no DDL either, so it opens too.
    let store = open(role.url()).expect("open as the role, migrations on");
    store.run_migrations().expect("nothing to run");
    assert_eq!(
        store
            .migration_status()
            .unwrap()
            .applied
            .last()
            .map(String::as_str),
        Some(NEWEST)
    );
}

#[test]
fn grant_refuses_bad_names_unknown_roles_sqlite_and_a_role_that_does_not_own_the_tables() {
    let owner = owner_store();
    for bad in ["", "public", "pg_monitor", "a\0b", "current_user"] {
        let err = grant_application_role(owner.url(), bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation, "{bad:?}: {err}");
    }
    let err = grant_application_role(owner.url(), "hsk_no_such_role_x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("hsk_no_such_role_x"), "{err}");
    // A name that would break out of an unquoted statement is only ever a
    // (missing) role's name.
    let hostile = "x\"; DROP TABLE blocks; --";
    let err = grant_application_role(owner.url(), hostile).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        owner.store().get_blocks("none").is_ok(),
        "blocks is still there"
    );

    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("s.db").display());
    let err = grant_application_role(&sqlite, "app").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
    assert!(err.to_string().contains("SQLite has no roles"), "{err}");

    // The application role itself may not hand out grants.
    let role = ScratchRole::create(&admin_url(), owner.url()).unwrap();
    grant_application_role(owner.url(), role.name()).unwrap();
    let other = ScratchRole::create(&admin_url(), owner.url()).unwrap();
    let err = grant_application_role(role.url(), other.name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
    assert!(err.to_string().contains("does not own table"), "{err}");
    assert!(!err.to_string().contains(&password_of(role.url())), "{err}");
}

#[test]
fn the_application_role_cannot_change_the_schema() {
    let h = application_store();
    for (sql, says) in [
        ("DROP TABLE blocks", "must be owner of table blocks"),
        ("TRUNCATE blocks", "permission denied for table blocks"),
        (
            "ALTER TABLE ai_jobs DISABLE TRIGGER ai_jobs_index_entity_refs",
            "must be owner of table ai_jobs",
        ),
        (
            "CREATE TABLE intruder (i int)",
            "permission denied for schema",
        ),
        (
            "CREATE INDEX intruder ON blocks (id)",
            "must be owner of table blocks",
        ),
        (
            "DELETE FROM __diesel_schema_migrations",
            "permission denied",
        ),
    ] {
        let err = h.execute_sql(sql).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database, "{sql}: {err}");
        assert!(err.to_string().contains(says), "{sql}: {err}");
        assert_one_line(&err);
    }
    exercise(h.store());
    assert_eq!(
        h.store().schema_fingerprint().unwrap().to_file_text(),
        schema_info::committed_fingerprint(Backend::Postgres)
    );
}

#[test]
fn a_role_without_the_grants_gets_a_database_error_naming_the_privilege() {
    let owner = owner_store();
    let role = ScratchRole::create(&admin_url(), owner.url()).unwrap();
    let password = password_of(role.url());
    // No USAGE on the schema: its tables are out of sight, and the open
    // says why, with migrations off and on.
    for config in [migrations_off(), StorageConfig::default()] {
        let err = open_with_config(role.url(), &config)
            .err()
            .expect("refused");
        assert_eq!(err.kind(), ErrorKind::Database, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("permission denied for schema hsk_test_"),
            "{text}"
        );
        assert!(text.contains(role.name()), "{text}");
        assert!(!text.contains(&password), "{text}");
        assert_one_line(&err);
    }
    // USAGE only: the version table is refused by name.
    owner
        .execute_sql(&format!(
            "DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO {}', current_schema()); END $$",
            role.name()
        ))
        .unwrap();
    let err = open_with_config(role.url(), &migrations_off())
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Database, "{err}");
    assert!(
        err.to_string()
            .contains("permission denied for table __diesel_schema_migrations"),
        "{err}"
    );
    // It may read the version, but not the rows: each call says which table.
    owner
        .execute_sql(&format!(
            "GRANT SELECT ON __diesel_schema_migrations TO {}",
            role.name()
        ))
        .unwrap();
    let store = open_with_config(role.url(), &migrations_off()).expect("the check passes");
    let err = store.list_workspaces().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Database, "{err}");
    assert!(
        err.to_string()
            .contains("permission denied for table workspaces"),
        "{err}"
    );
    let err = store
        .create_workspace(&human(), NewWorkspace { name: "x".into() })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Database, "{err}");
    assert!(
        err.to_string()
            .contains("permission denied for table workspaces"),
        "{err}"
    );
    assert!(!err.to_string().contains(&password), "{err}");
    assert!(owner.store().list_workspaces().unwrap().is_empty());
}

#[test]
fn migrations_off_refuses_an_out_of_date_schema_in_one_line() {
    let owner = owner_store();
    let role = ScratchRole::create(&admin_url(), owner.url()).unwrap();
    grant_application_role(owner.url(), role.name()).unwrap();
    owner.revert_last_migration().unwrap();
    for url in [owner.url(), role.url()] {
        let err = open_with_config(url, &migrations_off())
            .err()
            .expect("refused");
        assert_eq!(err.kind(), ErrorKind::Migration, "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "migration error: schema at version 20261203000002, this build expects \
                 {NEWEST}; run `hsk-storage migrate` as the owner"
            )
        );
    }
    // The maintenance open reads it at any version, and the owner migrates.
    let store = open_for_maintenance(owner.url(), &StorageConfig::default()).unwrap();
    assert_eq!(store.migration_status().unwrap().pending, vec![NEWEST]);
    let as_role = open_for_maintenance(role.url(), &StorageConfig::default()).unwrap();
    assert_eq!(as_role.migration_status().unwrap().pending, vec![NEWEST]);
    let err = as_role.run_migrations().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Migration, "{err}");
    assert!(err.to_string().contains("permission denied"), "{err}");
    store.run_migrations().unwrap();
    // The new tables need the grants again.
    grant_application_role(owner.url(), role.name()).unwrap();
    exercise(&*open_with_config(role.url(), &migrations_off()).expect("current again"));
}

#[test]
fn migrations_off_refuses_an_empty_a_newer_or_a_foreign_schema() {
    // Nothing applied.
    let owner = owner_store();
    owner.revert_all_migrations().unwrap();
    let err = open_with_config(owner.url(), &migrations_off())
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Migration, "{err}");
    assert!(
        err.to_string().contains(&format!(
            "schema at version none (no migration applied), this build expects {NEWEST}"
        )),
        "{err}"
    );
    // Nothing created either: no DDL with migrations off.
    assert!(owner.columns().unwrap().is_empty());

    // Migrated by a newer build.
    let owner = owner_store();
    owner
        .execute_sql("INSERT INTO __diesel_schema_migrations (version) VALUES ('20991231000000')")
        .unwrap();
    let err = open_with_config(owner.url(), &migrations_off())
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Migration, "{err}");
    assert!(
        err.to_string().contains(&format!(
            "schema at version 20991231000000, this build expects {NEWEST} (migrated by a newer build"
        )),
        "{err}"
    );

    // The right version, a schema changed by hand.
    let owner = owner_store();
    owner
        .execute_sql("CREATE INDEX by_hand ON blocks (raw_content)")
        .unwrap();
    let err = open_with_config(owner.url(), &migrations_off())
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Migration, "{err}");
    let committed = schema_info::committed_hash(Backend::Postgres).unwrap();
    assert!(
        err.to_string()
            .contains(&format!("schema at version {NEWEST} has fingerprint "))
            && err
                .to_string()
                .contains(&format!("this build expects {committed}")),
        "{err}"
    );
    assert_one_line(&err);
}

// ---------------------------------------------------------------------------
// No DDL with migrations off, statement by statement

fn statements() -> &'static Mutex<Vec<(ThreadId, String)>> {
    static SENT: OnceLock<Mutex<Vec<(ThreadId, String)>>> = OnceLock::new();
    SENT.get_or_init(Mutex::default)
}

/// Records every statement every connection of this process sends, with
/// the thread that sent it.
struct Recorder;

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            statements()
                .lock()
                .unwrap()
                .push((std::thread::current().id(), query.to_string()));
        }
    }
}

fn is_ddl(sql: &str) -> bool {
    let head = sql.trim_start().to_ascii_uppercase();
    [
        "CREATE", "ALTER", "DROP", "TRUNCATE", "GRANT", "REVOKE", "COMMENT",
    ]
    .iter()
    .any(|k| head.starts_with(k))
}

#[test]
fn migrations_off_issues_no_ddl() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        set_default_instrumentation(|| Some(Box::new(Recorder))).expect("install the recorder");
    });
    let owner = owner_store();
    let me = std::thread::current().id();
    let mine = || -> Vec<String> {
        statements()
            .lock()
            .unwrap()
            .iter()
            .filter(|(thread, _)| *thread == me)
            .map(|(_, sql)| sql.clone())
            .collect()
    };
    let before = mine().len();
    let store: Arc<dyn Storage> =
        open_with_config(owner.url(), &migrations_off().pool_size(1)).expect("open");
    exercise(&*store);
    store.migration_status().unwrap();
    store.schema_fingerprint().unwrap();
    store.run_migrations().unwrap();
    let sent = mine().split_off(before);
    assert!(
        sent.iter()
            .any(|s| s.contains("__diesel_schema_migrations")),
        "the recorder sees the store's statements: {sent:#?}"
    );
    let ddl: Vec<&String> = sent.iter().filter(|s| is_ddl(s)).collect();
    assert!(ddl.is_empty(), "DDL with migrations off: {ddl:#?}");
}

// ---------------------------------------------------------------------------
// Copy and the conformance list

/// Copy out of a least-privilege store: the source is only read.
#[cfg(feature = "sqlite")]
#[test]
fn copy_out_of_a_least_privilege_store() {
    let source = application_store();
    let ws = source
        .store()
        .create_workspace(&human(), NewWorkspace { name: "out".into() })
        .unwrap();
    let doc = source
        .store()
        .create_document(&human(), new_doc(&ws.id, "d"))
        .unwrap();
    source
        .store()
        .replace_blocks(
            &human(),
            &doc.id,
            (0..150).map(|i| new_block(&doc.id, i, None)).collect(),
        )
        .unwrap();
    source
        .store()
        .create_ai_job(handshake_storage::conformance::fixtures::new_job(
            JobKind::DocEdit,
            vec![ws_ref(&ws.id)],
        ))
        .unwrap();
    let target = TestTarget::standard("sqlite").harness().unwrap();
    let report = copy_store(source.url(), target.url(), &CopyOptions::default()).unwrap();
    assert!(report.verify.identical, "{report:?}");
    assert!(verify_stores(source.url(), target.url()).unwrap().identical);
    // And into another PostgreSQL schema, owned by the copier.
    let owned = owner_store();
    let report = copy_store(source.url(), owned.url(), &CopyOptions::default()).unwrap();
    assert!(report.verify.identical, "{report:?}");
}

/// Copy into a least-privilege store is owner-only: the copier keeps its
/// checkpoint in a table it creates in the target. The error says so, in
/// one line; the target is left empty; the owner's copy then works.
#[cfg(feature = "sqlite")]
#[test]
fn copy_into_a_least_privilege_store_is_owner_only() {
    let source = TestTarget::standard("sqlite").harness().unwrap();
    source
        .store()
        .create_workspace(&human(), NewWorkspace { name: "in".into() })
        .unwrap();
    let target = application_store();
    let err = copy_store(source.url(), target.url(), &CopyOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Database, "{err}");
    let text = err.to_string();
    assert!(text.contains("permission denied for schema"), "{text}");
    assert!(
        text.contains("copy into this database as its owner"),
        "{text}"
    );
    assert!(!text.contains(&password_of(target.url())), "{text}");
    assert_one_line(&err);
    assert!(target.store().list_workspaces().unwrap().is_empty());
    let report = copy_store(source.url(), target.owner_url(), &CopyOptions::default()).unwrap();
    assert!(report.verify.identical, "{report:?}");
    assert_eq!(target.store().list_workspaces().unwrap().len(), 1);
}

#[test]
fn owner_only_names_real_cases_each_with_a_reason() {
    assert!(OWNER_ONLY.len() <= 5, "keep the owner-only list minimal");
    for (name, why) in OWNER_ONLY {
        assert!(CASES.iter().any(|c| c.name == *name), "{name} is no case");
        assert!(!why.is_empty(), "{name} has no reason");
    }
    let target = TestTarget::PostgresLeastPrivilege {
        admin_url: "postgres://u@127.0.0.1/x".into(),
        replica_urls: Vec::new(),
    };
    assert!(target.skips(OWNER_ONLY[0].0).is_some());
    assert!(target.skips("health_backend_and_ping").is_none());
    assert!(TestTarget::Postgres {
        admin_url: "postgres://u@127.0.0.1/x".into()
    }
    .skips(OWNER_ONLY[0].0)
    .is_none());
}
