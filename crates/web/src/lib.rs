//! popdesk's web service: the HTML UI, the JSON API under `/api/v1`, sign-in and API
//! tokens, the OpenAPI document, `/metrics` and `/healthz`.
//!
//! The binary builds an [`AppState`] from the store (and the scheduler, when it runs
//! one), calls [`app`] and serves the router. Everything under `/api/v1` needs a session
//! cookie or an API token except the few routes that let someone get one; the HTML UI
//! lives under `/` beside it, on the same sessions.
//!
//! - [`auth`]: passwords, sessions, API tokens, the sign-in limit, who is calling.
//! - [`api`]: one file per resource (tickets, messages, mailboxes, users, tokens, ...).
//! - [`openapi`]: the OpenAPI document, checked against the routes by a test.
//! - [`ops`]: `/metrics` and `/healthz`.
//! - [`ui`]: the HTML pages (askama templates in `templates/`, htmx and the stylesheet
//!   in `assets/`), built on the API's handlers.

pub mod api;
pub mod auth;
pub mod client_address;
mod download;
pub mod edge;
mod error;
mod headers;
mod input;
pub mod openapi;
pub mod ops;
mod public_url;
mod time_zone;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use intake::schedule::SchedulerHandle;
use intake::{Clock, HealthBoard, SessionOptions, SystemClock};
use metrics_exporter_prometheus::PrometheusHandle;
use store::Store;
use tokio::sync::OnceCell;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use auth::password::{
    MIN_PASSWORD_CHARS, PasswordCost, PasswordError, check_password, hash_password,
    hash_password_with, verify_password,
};
pub use auth::rate_limit::SignInLimit;
pub use auth::session::SESSION_COOKIE;
pub use auth::setup_code::{SETUP_CODE_FILE, SetupCode};
pub use client_address::{TrustedProxy, TrustedProxyError};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use ops::install_metrics_recorder;
pub use public_url::{PublicUrl, PublicUrlError};
pub use time_zone::{TimeZoneName, UnknownTimeZone};

/// Settings of the web service; [`WebConfig::default`] suits a local install.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Mark the session cookie `Secure` (only sent over https). Turn on whenever users
    /// reach popdesk through https, directly or behind a proxy.
    pub secure_cookies: bool,
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// A session unused this long ends (a browser left signed in on a shared desk);
    /// exact to a minute.
    pub session_idle_timeout: Duration,
    /// The largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Serve `/metrics` without credentials (for a Prometheus on a trusted network).
    pub metrics_public: bool,
    /// A request that takes longer is answered 408. Testing a mailbox connection is the
    /// slowest route, bounded by the POP3 client's own timeouts.
    pub request_timeout: Duration,
    /// Origins (`https://desk.example.com`) whose cross-site requests are trusted anyway,
    /// for a UI served from another host. Same-origin requests need no entry.
    pub trusted_origins: Vec<String>,
    /// Failed sign-ins allowed per address and per client network.
    pub sign_in_limit: SignInLimit,
    /// The argon2id cost of passwords set through the API (keep the default in
    /// production; `popdesk user add` hashes at the default too).
    pub password_cost: PasswordCost,
    /// How many password checks run at once (each holds about 19 MiB); 0 means one per
    /// core. More wait a moment, then get 429.
    pub password_checks_at_once: usize,
    /// Proxies whose `X-Forwarded-For` names the client (for the sign-in limit). Empty:
    /// the socket's peer is the client and the header is ignored.
    pub trusted_proxies: Vec<TrustedProxy>,
    /// The address admins open popdesk at. OAuth2 providers send the browser back to
    /// `{public_url}/oauth/callback`; without it "Connect" (authorization code) cannot
    /// work, and the mailbox page says so.
    pub public_url: Option<PublicUrl>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            secure_cookies: false,
            session_ttl: Duration::from_secs(7 * 24 * 60 * 60),
            session_idle_timeout: Duration::from_secs(12 * 60 * 60),
            max_body_bytes: 1024 * 1024,
            metrics_public: false,
            request_timeout: Duration::from_secs(60),
            trusted_origins: Vec::new(),
            sign_in_limit: SignInLimit::default(),
            password_cost: PasswordCost::default(),
            password_checks_at_once: 0,
            trusted_proxies: Vec::new(),
            public_url: None,
        }
    }
}

/// Room in a reply's request body beside its attachments: the text, the Cc addresses,
/// the JSON or multipart framing.
const REPLY_TEXT_ROOM: usize = 2 * 1024 * 1024;

/// What every request handler shares: the store, the scheduler (when one runs), the
/// settings. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    store: Store,
    /// The rules of administering mailboxes, users and tokens.
    admin: admin::Administration,
    config: Arc<WebConfig>,
    scheduler: Option<SchedulerHandle>,
    metrics: Option<PrometheusHandle>,
    health: Option<HealthBoard>,
    clock: Arc<dyn Clock>,
    sign_in: Arc<auth::rate_limit::SignInLimiter>,
    password_checks: Arc<auth::password::PasswordChecks>,
    cross_site: Arc<auth::csrf::CrossSiteLayer>,
    /// Replies by email: the reply rules and the outbox sender's wake-up.
    outgoing: Option<outgoing::Outgoing>,
    /// A hash to verify against when an address has no account, so an unknown address
    /// costs the same time as a wrong password and does not reveal itself.
    dummy_hash: Arc<OnceCell<String>>,
    /// The code the first admin's setup needs; random per process.
    setup_code: Arc<SetupCode>,
}

impl AppState {
    /// State without a scheduler ("fetch now" answers 503) and without metrics
    /// (`/metrics` answers 503); add them with the `with_` methods.
    pub fn new(store: Store, config: WebConfig) -> AppState {
        let sign_in = auth::rate_limit::SignInLimiter::new(config.sign_in_limit, store.clone());
        let cross_site = auth::csrf::layer(&config.trusted_origins);
        let password_checks = auth::password::PasswordChecks::new(config.password_checks_at_once);
        let admin =
            admin::Administration::new(store.clone()).with_password_cost(config.password_cost);
        AppState {
            store,
            admin,
            config: Arc::new(config),
            scheduler: None,
            metrics: None,
            health: None,
            outgoing: None,
            clock: Arc::new(SystemClock),
            sign_in: Arc::new(sign_in),
            password_checks: Arc::new(password_checks),
            cross_site: Arc::new(cross_site),
            dummy_hash: Arc::new(OnceCell::new()),
            setup_code: Arc::new(SetupCode::random()),
        }
    }

    /// The one-time code that creating the first admin needs (a random one per state):
    /// `popdesk serve` logs it and writes it to the data folder while no user exists.
    pub fn setup_code(&self) -> &SetupCode {
        &self.setup_code
    }

    /// Outgoing mail: replies are queued through it and its sender woken.
    pub fn with_outgoing(mut self, outgoing: outgoing::Outgoing) -> AppState {
        self.outgoing = Some(outgoing);
        self
    }

    /// The running scheduler: "fetch now", schedule status, reload after mailbox changes.
    pub fn with_scheduler(mut self, scheduler: SchedulerHandle) -> AppState {
        self.admin = self.admin.with_scheduler(scheduler.clone());
        self.scheduler = Some(scheduler);
        self
    }

    /// The Prometheus recorder's handle, rendered at `/metrics` (see
    /// [`install_metrics_recorder`]).
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> AppState {
        self.metrics = Some(handle);
        self
    }

    /// The background parts' health (scheduler, processor), reported by `/healthz`.
    /// Without it `/healthz` checks only the database.
    pub fn with_health(mut self, health: HealthBoard) -> AppState {
        self.health = Some(health);
        self
    }

    /// Another clock (tests: session expiry, sign-in limits).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> AppState {
        self.admin = self.admin.with_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// POP3 timeouts and pipelining for "test connection".
    pub fn with_session_options(mut self, options: SessionOptions) -> AppState {
        self.admin = self.admin.with_session_options(options);
        self
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn admin(&self) -> &admin::Administration {
        &self.admin
    }

    pub(crate) fn config(&self) -> &WebConfig {
        &self.config
    }

    /// Outgoing mail, when this process answers customers (`popdesk serve` sets it).
    pub(crate) fn outgoing(&self) -> Option<&outgoing::Outgoing> {
        self.outgoing.as_ref()
    }

    /// The largest attachments of one reply together, as the reply rules count them.
    pub(crate) fn max_reply_attachments(&self) -> u64 {
        self.outgoing.as_ref().map_or(
            outgoing::replies::DEFAULT_MAX_ATTACHMENTS_BYTES,
            |outgoing| outgoing.replies.config().max_attachments_bytes,
        )
    }

    /// The body a reply may have: its attachments in base64 (a third larger than the
    /// files, as the JSON API carries them; a multipart form is smaller) and room for
    /// the text. A reply whose attachments are over the limit still gets through this,
    /// so the reply rules refuse it with their own sentence rather than a bare 413.
    pub(crate) fn reply_body_limit(&self) -> usize {
        let attachments = usize::try_from(self.max_reply_attachments()).unwrap_or(usize::MAX);
        attachments
            .saturating_div(3)
            .saturating_mul(4)
            .saturating_add(REPLY_TEXT_ROOM)
            .max(self.config.max_body_bytes)
    }

    pub(crate) fn scheduler(&self) -> Option<&SchedulerHandle> {
        self.scheduler.as_ref()
    }

    pub(crate) fn sign_in_limiter(&self) -> &auth::rate_limit::SignInLimiter {
        &self.sign_in
    }

    pub(crate) fn password_checks(&self) -> &auth::password::PasswordChecks {
        &self.password_checks
    }

    pub(crate) fn cross_site(&self) -> &auth::csrf::CrossSiteLayer {
        &self.cross_site
    }

    /// The hash an unknown address is checked against (made once, on first use).
    pub(crate) async fn dummy_hash(&self) -> Result<&str, ApiError> {
        self.dummy_hash
            .get_or_try_init(|| async {
                let secret = auth::secret::new_secret()?;
                auth::password::hash_blocking(secret, self.config.password_cost).await
            })
            .await
            .map(String::as_str)
    }

    pub(crate) fn password_cost(&self) -> PasswordCost {
        self.config.password_cost
    }

    pub(crate) fn health(&self) -> Option<&HealthBoard> {
        self.health.as_ref()
    }

    pub(crate) fn metrics_handle(&self) -> Option<&PrometheusHandle> {
        self.metrics.as_ref()
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// The whole web service: the HTML pages (see [`ui`]), `/api/v1/...`,
/// `/messages/{id}/cid/{content_id}` (inline images of sanitized mail), `/metrics`,
/// `/healthz`. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// so sign-in limits see the client's address.
pub fn app(state: AppState) -> Router {
    let config = state.config.clone();
    let router = Router::new()
        .nest("/api/v1", api::router(&state))
        .merge(api::messages::root_router(&state))
        .merge(ui::router(&state))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        // Inside the timeout: it reads bodies, and a slow body must still be stopped.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            edge::refuse_bad_text,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client_address::find_client,
        ))
        .layer(axum::middleware::from_fn(ops::record_request));
    headers::with_security_headers(router)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The span of one request: method, path and request id. Not the query string (a
/// ticket search may hold a customer's name) and no headers (cookies, tokens).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}

/// The client's address, when the server was served with connect info: the peer, or
/// the address a trusted proxy forwarded (see [`client_address`]).
pub(crate) fn client_ip(request: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
    request
        .extensions
        .get::<client_address::ClientAddress>()
        .map(|client| client.0)
}
