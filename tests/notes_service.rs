//! The example service (`examples/notes_service.rs`) on 127.0.0.1, port 0,
//! against SQLite and PostgreSQL, driven over real HTTP: workspaces,
//! documents, blocks replaced and read back, AI jobs listed, and each error
//! kind's status and JSON body.
#![cfg(feature = "tokio")]

#[allow(dead_code)] // its `main` is the example's, not the test's
#[path = "../examples/notes_service.rs"]
mod notes_service;

use handshake_storage::conformance::TestTarget;
use handshake_storage::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Service {
    base: String,
    http: reqwest::Client,
}

impl Service {
    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("the service answers");
        let status = response.status();
        let body = response.json::<Value>().await.expect("a JSON body");
        (status, body)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.http.put(format!("{}{path}", self.base)).json(&body))
            .await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }
}

#[track_caller]
fn assert_error(answer: &(StatusCode, Value), status: StatusCode, kind: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["kind"], kind, "{}", answer.1);
    assert!(answer.1["error"]["message"].is_string(), "{}", answer.1);
}

fn blocks(texts: &[(&str, &str)]) -> Value {
    Value::Array(
        texts
            .iter()
            .map(|(id, text)| json!({ "id": id, "kind": "paragraph", "raw_content": text }))
            .collect(),
    )
}

fn contents(answer: &Value) -> Vec<(String, String)> {
    answer
        .as_array()
        .expect("a list of blocks")
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap().to_string(),
                b["raw_content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn drive_the_service(target: TestTarget) {
    let harness = target.harness().expect("a fresh database");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = AsyncStorage::open(harness.url(), &StorageConfig::default())
            .await
            .expect("open");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(notes_service::serve(listener, store));
        let svc = Service {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        };

        let (status, ws) = svc.post("/workspaces", json!({ "name": "Notes" })).await;
        assert_eq!(status, StatusCode::CREATED, "{ws}");
        assert_eq!(ws["name"], "Notes");
        let ws_id = ws["id"].as_str().unwrap().to_string();
        let (status, doc) = svc
            .post(
                &format!("/workspaces/{ws_id}/documents"),
                json!({ "title": "Plan" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{doc}");
        let doc_id = doc["id"].as_str().unwrap().to_string();
        let (status, read) = svc.get(&format!("/documents/{doc_id}")).await;
        assert_eq!((status, &read["title"]), (StatusCode::OK, &json!("Plan")));

        // Replace the blocks, read them back, replace them again.
        let first = [("a", "first"), ("b", "second"), ("c", "third")];
        let (status, put) = svc
            .put(&format!("/documents/{doc_id}/blocks"), blocks(&first))
            .await;
        assert_eq!(status, StatusCode::OK, "{put}");
        let (status, got) = svc.get(&format!("/documents/{doc_id}/blocks")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(contents(&got), contents(&put));
        assert_eq!(
            contents(&got),
            first.map(|(i, t)| (i.to_string(), t.to_string()))
        );
        let second = [("d", "only one now")];
        svc.put(&format!("/documents/{doc_id}/blocks"), blocks(&second))
            .await;
        let (_, got) = svc.get(&format!("/documents/{doc_id}/blocks")).await;
        assert_eq!(
            contents(&got),
            [("d".to_string(), "only one now".to_string())]
        );

        // AI jobs, created and listed.
        for reason in ["one", "two"] {
            let (status, job) = svc
                .post(
                    &format!("/workspaces/{ws_id}/ai-jobs"),
                    json!({ "status_reason": reason }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{job}");
        }
        let (status, jobs) = svc
            .get(&format!("/ai-jobs?wsid={ws_id}&status=queued&limit=10"))
            .await;
        assert_eq!(status, StatusCode::OK, "{jobs}");
        let reasons: Vec<&str> = jobs
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["status_reason"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, ["two", "one"], "newest first");
        let (_, none) = svc.get("/ai-jobs?wsid=elsewhere").await;
        assert_eq!(none, json!([]));

        // Every error kind the service can meet, as status and JSON.
        assert_error(
            &svc.get("/documents/no-such-doc/blocks").await,
            StatusCode::NOT_FOUND,
            "NotFound",
        );
        assert_error(
            &svc.put(
                &format!("/documents/{doc_id}/blocks"),
                blocks(&[("x", "nul \u{0} byte")]),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation",
        );
        assert_error(
            &svc.put(
                &format!("/documents/{doc_id}/blocks"),
                json!({ "not": "a list" }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation",
        );
        assert_error(
            &svc.get("/ai-jobs?status=sleeping").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation",
        );
        assert_error(
            &svc.put(
                &format!("/documents/{doc_id}/blocks"),
                blocks(&[("dup", "1"), ("dup", "2")]),
            )
            .await,
            StatusCode::CONFLICT,
            "Conflict",
        );
        let ai_write = svc
            .send(
                svc.http
                    .post(format!("{}/workspaces", svc.base))
                    .header("x-actor-kind", "ai")
                    .json(&json!({ "name": "silent edit" })),
            )
            .await;
        assert_error(&ai_write, StatusCode::FORBIDDEN, "Guard");
        assert!(
            ai_write.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("HSK-403-SILENT-EDIT"),
            "{}",
            ai_write.1
        );
        // Nothing was written by the refused requests.
        let (_, got) = svc.get(&format!("/documents/{doc_id}/blocks")).await;
        assert_eq!(
            contents(&got),
            [("d".to_string(), "only one now".to_string())]
        );

        server.abort();
    });
}

#[test]
fn every_error_kind_has_its_status() {
    use axum::http::StatusCode as S;
    let cases = [
        (
            StorageError::Validation("v".into()),
            S::UNPROCESSABLE_ENTITY,
        ),
        (StorageError::NotFound("n".into()), S::NOT_FOUND),
        (StorageError::Conflict("c".into()), S::CONFLICT),
        (StorageError::Guard("g".into()), S::FORBIDDEN),
        (StorageError::Database("d".into()), S::SERVICE_UNAVAILABLE),
        (
            StorageError::Serialization("s".into()),
            S::INTERNAL_SERVER_ERROR,
        ),
        (
            StorageError::Migration("m".into()),
            S::INTERNAL_SERVER_ERROR,
        ),
    ];
    for (err, status) in cases {
        assert_eq!(notes_service::status_of(&err), status, "{err}");
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_service_over_http() {
    drive_the_service(TestTarget::standard("sqlite"));
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_service_over_http() {
    drive_the_service(TestTarget::standard("postgres"));
}
