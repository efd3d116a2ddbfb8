//! The `/api/v1` handlers: thin readers of the store and writers through [`Control`].
//! Every answer is JSON; every refusal is `{"error": ..., "field": ...}` with the
//! status that says why (400 a bad field, 404 nothing by that id, 409 not now, 413 too
//! big, 500 the store failed).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::ApiState;
use crate::control::ApprovalError;
use crate::model::{Condition, Notice, Placement};
use crate::store::{Evacuation, JournalEntry, NoticeRecord, Pause};

/// A refused call.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<&'static str>,
}

impl ApiError {
    fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: Some(field),
        }
    }

    fn status(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
        }
    }
}

/// What a refused call answers.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// What is wrong.
    pub error: String,
    /// The request's field at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            field: self.field.map(str::to_owned),
        };
        (self.status, Json(body)).into_response()
    }
}

/// The store failed: the caller learns that much, the log the rest.
impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> ApiError {
        tracing::error!("API: {error:#}");
        ApiError::status(StatusCode::INTERNAL_SERVER_ERROR, "the state store failed")
    }
}

impl From<ApprovalError> for ApiError {
    fn from(error: ApprovalError) -> ApiError {
        ApiError::status(StatusCode::NOT_FOUND, error.to_string())
    }
}

/// A JSON body, or the refusal that says what is wrong with it: 413 over the size
/// limit, 415 without `Content-Type: application/json`, else 400 with serde's path to
/// the bad field (`deadline: invalid type: integer ...`).
fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match body {
        Ok(Json(value)) => Ok(value),
        Err(rejection) => {
            let status = match rejection.status() {
                s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
                _ => StatusCode::BAD_REQUEST,
            };
            Err(ApiError::status(status, rejection.body_text()))
        }
    }
}

type Answer<T> = Result<Json<T>, ApiError>;

/// One provider as the API shows it.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderView {
    /// Its name.
    pub name: String,
    /// Its vendor.
    pub vendor: String,
    /// Its account at the vendor, if named.
    pub account: Option<String>,
    /// Its last derived condition (`None` before the first round).
    pub condition: Option<Condition>,
    /// When that condition was derived.
    pub since: Option<Timestamp>,
}

pub(super) async fn providers(State(state): State<Arc<ApiState>>) -> Answer<Vec<ProviderView>> {
    let conditions = state.store.conditions()?;
    Ok(Json(
        state
            .config
            .providers
            .iter()
            .map(|p| {
                let record = conditions.get(&p.name);
                ProviderView {
                    name: p.name.clone(),
                    vendor: p.vendor.clone(),
                    account: p.account.clone(),
                    condition: record.map(|r| r.condition.clone()),
                    since: record.map(|r| r.at),
                }
            })
            .collect(),
    ))
}

/// One workload as the API shows it.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadView {
    /// Its name.
    pub name: String,
    /// Where it runs, if placed.
    pub placement: Option<Placement>,
    /// The watch over its live copy: the last health check, since when it has been
    /// unhealthy, the replacements made.
    pub copy: Option<crate::watch::CopyWatch>,
    /// Its data, when it has a `data:` block: primary, standby, the standby's lag and
    /// since when the dataset has been unprotected.
    pub data: Option<crate::dataset::DatasetState>,
}

pub(super) async fn workloads(State(state): State<Arc<ApiState>>) -> Answer<Vec<WorkloadView>> {
    let mut placements = state.store.placements()?;
    let mut watches = state.store.copy_watches()?;
    let mut datasets = state.store.datasets()?;
    Ok(Json(
        state
            .config
            .workloads
            .iter()
            .map(|w| WorkloadView {
                name: w.name.clone(),
                placement: placements.remove(&w.name),
                copy: watches.remove(&w.name),
                data: datasets.remove(&w.name),
            })
            .collect(),
    ))
}

/// The evacuations: the one waiting for approval, and every one run, newest first.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvacuationsView {
    /// What waits for `approve` (mode `confirm`).
    pub pending: Option<crate::control::Pending>,
    /// The kill switch, when thrown.
    pub paused: Option<Pause>,
    /// When the moves with a deadline start, and whether the deadline is at risk.
    #[serde(default)]
    pub scheduled: Vec<crate::deadline::Schedule>,
    /// Every evacuation, newest first.
    pub evacuations: Vec<Evacuation>,
}

pub(super) async fn evacuations(State(state): State<Arc<ApiState>>) -> Answer<EvacuationsView> {
    let mut evacuations = state.store.evacuations()?;
    evacuations.reverse();
    Ok(Json(EvacuationsView {
        pending: state.control.approvals().pending().cloned(),
        paused: state.control.paused(),
        scheduled: state.control.schedules(),
        evacuations,
    }))
}

pub(super) async fn approve(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Answer<crate::control::Pending> {
    let pending = state.control.approve(&id)?;
    tracing::info!(evacuation = %id, "approved through the API");
    Ok(Json(pending))
}

pub(super) async fn reject(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Answer<crate::control::Pending> {
    let pending = state.control.reject(&id)?;
    tracing::info!(evacuation = %id, "rejected through the API");
    Ok(Json(pending))
}

pub(super) async fn notices(State(state): State<Arc<ApiState>>) -> Answer<Vec<NoticeRecord>> {
    Ok(Json(state.store.notices(true)?))
}

/// `POST /api/v1/notices`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeRequest {
    /// A vendor, `vendor/account` or provider of the config.
    pub target: String,
    /// RFC 3339; absent means now (a fence).
    #[serde(default)]
    pub deadline: Option<String>,
    /// Who gave notice and why.
    pub reason: String,
}

/// Checks a notice request against the config: the pure part of raising one, shared by
/// the API and the command line (which words its errors the same way).
pub fn notice_from(
    config: &crate::config::Config,
    request: &NoticeRequest,
) -> Result<Notice, (&'static str, String)> {
    let scope = config.resolve_scope(&request.target).ok_or_else(|| {
        (
            "target",
            format!(
                "{:?} is no vendor, vendor/account or provider of this config",
                request.target
            ),
        )
    })?;
    let deadline = request
        .deadline
        .as_deref()
        .map(|text| {
            text.parse::<Timestamp>().map_err(|e| {
                (
                    "deadline",
                    format!("{text:?} is not an RFC 3339 time such as 2026-12-03T18:00:00Z: {e}"),
                )
            })
        })
        .transpose()?;
    if request.reason.trim().is_empty() {
        return Err(("reason", "say who gave notice and why".into()));
    }
    Ok(Notice {
        scope,
        deadline,
        reason: request.reason.clone(),
    })
}

pub(super) async fn raise_notice(
    State(state): State<Arc<ApiState>>,
    request: Result<Json<NoticeRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<NoticeRecord>), ApiError> {
    let request = body(request)?;
    let notice = notice_from(&state.config, &request).map_err(|(f, m)| ApiError::bad(f, m))?;
    let raised = Timestamp::now();
    let id = state.store.add_notice(&notice, raised)?;
    tracing::warn!(notice = id, target = %notice.scope, deadline = ?notice.deadline, reason = %notice.reason, "notice raised through the API");
    state.control.wake();
    Ok((
        StatusCode::CREATED,
        Json(NoticeRecord {
            id,
            notice,
            raised,
            cleared: None,
        }),
    ))
}

pub(super) async fn clear_notice(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if !state.store.notices(true)?.iter().any(|n| n.id == id) {
        return Err(ApiError::status(
            StatusCode::NOT_FOUND,
            format!("no notice {id} is in force"),
        ));
    }
    state.store.clear_notice(id, Timestamp::now())?;
    tracing::info!(notice = id, "notice cleared through the API");
    state.control.wake();
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/pause`.
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why, shown on every surface while paused.
    #[serde(default)]
    pub reason: String,
}

pub(super) async fn pause(
    State(state): State<Arc<ApiState>>,
    request: Result<Json<PauseRequest>, JsonRejection>,
) -> Answer<Pause> {
    let request = body(request)?;
    let reason = if request.reason.trim().is_empty() {
        "paused through the API".to_owned()
    } else {
        request.reason
    };
    let pause = state.control.pause(&reason, Timestamp::now())?;
    tracing::warn!(reason = %pause.reason, "paused: no step starts until resume");
    Ok(Json(pause))
}

/// What `POST /api/v1/resume` answers.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Resumed {
    /// Whether the kill switch was thrown until now.
    pub was_paused: bool,
}

pub(super) async fn resume(State(state): State<Arc<ApiState>>) -> Answer<Resumed> {
    let was_paused = state.control.resume()?;
    if was_paused {
        tracing::warn!("resumed through the API");
    }
    Ok(Json(Resumed { was_paused }))
}

/// The OpenAPI document, built once.
pub(super) async fn openapi() -> Json<serde_json::Value> {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Json(
        DOCUMENT
            .get_or_init(|| super::openapi::document(env!("CARGO_PKG_VERSION")))
            .clone(),
    )
}

/// `GET /api/v1/events?after=ID&limit=N`: journal lines after `after`.
#[derive(Debug, Deserialize)]
pub(super) struct EventsQuery {
    #[serde(default)]
    after: i64,
    limit: Option<u32>,
}

/// One page of the event feed; ask again with `after: next` for more.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventsPage {
    /// The journal lines, oldest first.
    pub events: Vec<JournalEntry>,
    /// The `after` of the next page.
    pub next: i64,
}

pub(super) async fn events(
    State(state): State<Arc<ApiState>>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer<EventsPage> {
    let Query(query) = query.map_err(|e| ApiError::bad("after", e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad("limit", "from 1 to 1000"));
    }
    let events = state.store.events(query.after, limit)?;
    let next = events.last().map_or(query.after, |e| e.id);
    Ok(Json(EventsPage { events, next }))
}
