//! A small notes service: axum over `AsyncStorage`, the way the Handshake
//! backend uses the store.
//!
//! ```sh
//! DATABASE_URL=sqlite://data/notes.db cargo run --example notes_service --features tokio
//! curl -s -XPOST localhost:3000/workspaces -H 'content-type: application/json' -d '{"name":"Notes"}'
//! ```
//!
//! `DATABASE_URL` names the database (unset: `sqlite://data/handshake.db`);
//! `NOTES_ADDR` the address to listen on (default `127.0.0.1:3000`).
//!
//! | request | answer |
//! |---|---|
//! | `POST /workspaces` `{"name"}` | 201, the workspace |
//! | `POST /workspaces/{id}/documents` `{"title"}` | 201, the document |
//! | `GET /documents/{id}` | the document |
//! | `PUT /documents/{id}/blocks` `[{"id"?, "kind", "raw_content", "derived_content"?}]` | the blocks, in order |
//! | `GET /documents/{id}/blocks` | the blocks, in order |
//! | `POST /workspaces/{id}/ai-jobs` `{"status_reason"?}` | 201, a queued job referring to the workspace |
//! | `GET /ai-jobs?status=&wsid=&limit=` | the jobs, newest first |
//!
//! Writes are made as the human named by the `x-actor` header; with
//! `x-actor-kind: ai` they are an AI's, which the store's guard refuses
//! unless `x-job-id` and `x-workflow-id` name the job and workflow.
//!
//! Errors are JSON, `{"error": {"kind": "NotFound", "message": "..."}}`, with
//! the status of their kind: Validation 422, NotFound 404, Conflict 409,
//! Guard 403, Database 503, anything else 500.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use handshake_storage::*;
use serde::Deserialize;
use serde_json::{json, Value};

/// The service's routes over `store`.
pub fn router(store: AsyncStorage) -> Router {
    Router::new()
        .route("/workspaces", post(create_workspace))
        .route("/workspaces/{id}/documents", post(create_document))
        .route("/workspaces/{id}/ai-jobs", post(create_ai_job))
        .route("/documents/{id}", get(get_document))
        .route(
            "/documents/{id}/blocks",
            get(get_blocks).put(replace_blocks),
        )
        .route("/ai-jobs", get(list_ai_jobs))
        .with_state(store)
}

/// Serves the routes on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, store: AsyncStorage) -> std::io::Result<()> {
    axum::serve(listener, router(store)).await
}

/// A storage error (or a request the service refuses) as a JSON answer.
pub struct ApiError(StorageError);

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        ApiError(err)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError(StorageError::Validation(rejection.body_text()))
    }
}

/// The HTTP status for an error kind.
pub fn status_of(err: &StorageError) -> StatusCode {
    match err.kind() {
        ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Guard => StatusCode::FORBIDDEN,
        ErrorKind::Database => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        // Server-side failures are logged in full and answered briefly.
        let message = if status.is_server_error() {
            eprintln!("notes_service: {}", self.0);
            "the storage is unavailable; try again".to_string()
        } else {
            self.0.to_string()
        };
        let body = json!({ "error": { "kind": self.0.kind().as_str(), "message": message } });
        (status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Who is writing, from the request's headers.
fn writer(headers: &HeaderMap) -> ApiResult<WriteContext> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let uuid = |name: &str| -> ApiResult<Option<uuid::Uuid>> {
        header(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError(StorageError::Validation(format!("{name} is not a UUID")))
                })
            })
            .transpose()
    };
    Ok(match header("x-actor-kind").as_deref() {
        Some("ai") => {
            WriteContext::ai(header("x-actor"), uuid("x-job-id")?, uuid("x-workflow-id")?)
        }
        _ => WriteContext::human(header("x-actor")),
    })
}

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

async fn create_workspace(
    State(store): State<AsyncStorage>,
    headers: HeaderMap,
    body: Result<Json<NameBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let Json(body) = body?;
    let ws = store
        .create_workspace(&writer(&headers)?, NewWorkspace { name: body.name })
        .await?;
    Ok((StatusCode::CREATED, Json(ws)))
}

#[derive(Deserialize)]
struct TitleBody {
    title: String,
}

async fn create_document(
    State(store): State<AsyncStorage>,
    Path(workspace_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<TitleBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let Json(body) = body?;
    let doc = store
        .create_document(
            &writer(&headers)?,
            NewDocument {
                workspace_id,
                title: body.title,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(doc)))
}

async fn get_document(
    State(store): State<AsyncStorage>,
    Path(id): Path<String>,
) -> ApiResult<Json<Document>> {
    Ok(Json(store.get_document(&id).await?))
}

#[derive(Deserialize)]
struct BlockBody {
    id: Option<String>,
    kind: String,
    raw_content: String,
    derived_content: Option<Value>,
}

async fn replace_blocks(
    State(store): State<AsyncStorage>,
    Path(document_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Vec<BlockBody>>, JsonRejection>,
) -> ApiResult<Json<Vec<Block>>> {
    let Json(body) = body?;
    let blocks = body
        .into_iter()
        .enumerate()
        .map(|(sequence, b)| NewBlock {
            id: b.id,
            document_id: document_id.clone(),
            kind: b.kind,
            sequence: sequence as i64,
            raw_content: b.raw_content,
            derived_content: b.derived_content,
            ..NewBlock::default()
        })
        .collect();
    let ctx = writer(&headers)?;
    Ok(Json(
        store.replace_blocks(&ctx, &document_id, blocks).await?,
    ))
}

async fn get_blocks(
    State(store): State<AsyncStorage>,
    Path(document_id): Path<String>,
) -> ApiResult<Json<Vec<Block>>> {
    // An unknown document is a 404, not an empty list.
    store.get_document(&document_id).await?;
    Ok(Json(store.get_blocks(&document_id).await?))
}

#[derive(Deserialize, Default)]
struct JobBody {
    status_reason: Option<String>,
}

async fn create_ai_job(
    State(store): State<AsyncStorage>,
    Path(workspace_id): Path<String>,
    body: Result<Json<JobBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<AiJob>)> {
    let Json(body) = body?;
    store
        .get_workspace(&workspace_id)
        .await?
        .ok_or_else(|| ApiError(StorageError::NotFound(format!("workspace {workspace_id}"))))?;
    let job = store
        .create_ai_job(NewAiJob {
            entity_refs: vec![EntityRef {
                entity_id: workspace_id,
                entity_kind: "workspace".into(),
            }],
            status_reason: body.status_reason.unwrap_or_else(|| "queued".into()),
            ..NewAiJob::default()
        })
        .await?;
    Ok((StatusCode::CREATED, Json(job)))
}

async fn list_ai_jobs(
    State(store): State<AsyncStorage>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<AiJob>>> {
    let invalid = |what: &str, value: &str| {
        ApiError(StorageError::Validation(format!(
            "invalid {what} {value:?}"
        )))
    };
    let status = query
        .get("status")
        .map(|s| s.parse::<JobState>().map_err(|_| invalid("status", s)))
        .transpose()?;
    let limit = query
        .get("limit")
        .map(|s| s.parse::<u32>().map_err(|_| invalid("limit", s)))
        .transpose()?;
    let filter = AiJobListFilter {
        status,
        wsid: query.get("wsid").cloned(),
        limit,
        ..AiJobListFilter::default()
    };
    Ok(Json(store.list_ai_jobs(filter).await?))
}

#[tokio::main]
async fn main() {
    let url = database_url_from_env();
    let addr: SocketAddr = std::env::var("NOTES_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()
        .unwrap_or_else(|e| exit(&format!("NOTES_ADDR: {e}")));
    let store = AsyncStorage::open(&url, &StorageConfig::default())
        .await
        .unwrap_or_else(|e| exit(&e.to_string()));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| exit(&format!("cannot listen on {addr}: {e}")));
    eprintln!(
        "notes_service: {} database {}, listening on http://{addr}",
        store.backend(),
        redact_url(&url)
    );
    if let Err(e) = serve(listener, store).await {
        exit(&format!("server error: {e}"));
    }
}

fn exit(message: &str) -> ! {
    eprintln!("notes_service: {message}");
    std::process::exit(1)
}
