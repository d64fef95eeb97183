//! Operations: `/healthz` for load balancers and `/metrics` for Prometheus.
//!
//! `/healthz` checks the database and, when the binary gave the state a
//! [`HealthBoard`](intake::HealthBoard) ([`AppState::with_health`]), the background
//! parts (scheduler, processor): a part that died and waits for its restart makes it 503
//! with the part named, although the web itself still answers.
//!
//! The binary installs the Prometheus recorder once ([`install_metrics_recorder`]);
//! fetch runs (intake) and requests (here) record through the `metrics` facade. Gauges
//! that the database knows best (the processing backlog, each mailbox's last success)
//! are read at scrape time, so they are right straight after a restart.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use utoipa::ToSchema;

use intake::HealthBoard;

use crate::AppState;
use crate::auth::actor::identify;
use crate::error::{ApiError, ApiResult, ErrorBody};

/// Histogram buckets (seconds) for every `*_duration_seconds` series: from a fast API
/// request to a long fetch.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// How long `/healthz` waits for the database.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder as the process's global `metrics` recorder, once,
/// and returns its handle (for [`AppState::with_metrics`](crate::AppState::with_metrics)).
/// Later calls return the same handle, so tests and the binary may all call it.
pub fn install_metrics_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let recorder = match builder.set_buckets_for_metric(
                Matcher::Suffix("_duration_seconds".to_string()),
                DURATION_BUCKETS,
            ) {
                Ok(builder) => builder.build_recorder(),
                // Only for an empty bucket list, which the constant is not.
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "another metrics recorder was installed first; /metrics will not show what is recorded through it"
                );
            }
            handle
        })
        .clone()
}

/// `/healthz`'s answer, e.g. `{"status":"degraded","database":"ok","scheduler":"restarting","processor":"ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// "ok"; "degraded" when a background part is down; "unavailable" when the
    /// database does not answer.
    pub status: String,
    /// "ok" or "unreachable".
    pub database: String,
    /// One key per background part the process runs (`scheduler`, `processor`): "ok",
    /// "restarting" (it ended unexpectedly and is started again shortly) or "stopped"
    /// (shutting down). Absent in a process that runs no background parts.
    #[serde(flatten)]
    pub parts: BTreeMap<String, String>,
}

/// The process is up, the database answers and every background part runs (200), or
/// not (503, naming what is down). Public.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Up, database reachable, background parts running", body = Health),
        (status = 503, description = "The database does not answer, or a background part is down", body = Health),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let database = tokio::time::timeout(HEALTH_TIMEOUT, state.store().ping()).await;
    let database_ok = match database {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: the database does not answer");
            false
        }
        Err(_) => {
            tracing::warn!("health check: the database did not answer in time");
            false
        }
    };
    // Only the word: the cause of a restart (a panic message) is for the log, and this
    // route is public.
    let parts = state
        .health()
        .map(HealthBoard::snapshot)
        .unwrap_or_default();
    let parts_ok = parts.iter().all(|(_, part)| part.is_running());
    let (status, word) = match (database_ok, parts_ok) {
        (true, true) => (StatusCode::OK, "ok"),
        (true, false) => (StatusCode::SERVICE_UNAVAILABLE, "degraded"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    let health = Health {
        status: word.to_string(),
        database: if database_ok { "ok" } else { "unreachable" }.to_string(),
        parts: parts
            .into_iter()
            .map(|(name, part)| (name.to_string(), part.as_str().to_string()))
            .collect(),
    };
    let mut response = (status, Json(health)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Prometheus text. Needs a session or a token unless `metrics_public` is set.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 503, description = "Metrics are not enabled in this process", body = ErrorBody),
    )
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if !state.config().metrics_public && identify(&state, &headers).await?.is_none() {
        return Err(ApiError::unauthorized());
    }
    let handle = state
        .metrics_handle()
        .ok_or_else(|| ApiError::unavailable("metrics are not enabled in this popdesk process"))?;
    record_store_gauges(&state).await?;
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// The gauges the database knows: messages waiting for processing, and when each
/// mailbox last fetched successfully.
async fn record_store_gauges(state: &AppState) -> ApiResult<()> {
    let store = state.store();
    let backlog = store.count_pending_raw_messages().await?;
    metrics::gauge!("popdesk_processing_backlog").set(backlog as f64);
    let mailboxes = store.mailboxes().await?;
    for (mailbox_id, finished_at) in store.last_success_by_mailbox().await? {
        // Removed mailboxes keep their runs' ids but have no name to label them with.
        let Some(mailbox) = mailboxes.iter().find(|m| m.id == mailbox_id) else {
            continue;
        };
        metrics::gauge!(
            "popdesk_mailbox_last_success_timestamp_seconds",
            "mailbox" => mailbox.settings.name.clone()
        )
        .set(finished_at as f64 / 1000.0);
    }
    Ok(())
}

/// Middleware: counts requests by route and status and times them. The route is the
/// matched pattern (`/api/v1/tickets/{number}`), never the raw path, so the number of
/// series stays bounded.
pub(crate) async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "popdesk_http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "popdesk_http_request_duration_seconds",
        "method" => method,
        "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// The `method` label: the standard methods by name, anything else `other`. hyper
/// accepts any token as a method, so the raw name would let anyone create series
/// without end.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}
