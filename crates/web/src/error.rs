//! The one error type of the API, and its JSON form.
//!
//! Every failure answers `{"error": {"code": "...", "message": "..."}}`. The code is
//! stable (clients branch on it); the message is one sentence for a person. Internal
//! failures log their detail and answer a generic sentence, so nothing from the database
//! or the disk (paths, SQL) reaches a client.

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::StoreError;
use utoipa::ToSchema;

/// A failed request: the status, a stable code and a sentence.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds, for `Retry-After` (429, 503).
    retry_after: Option<u64>,
    /// The request field a validation error is about.
    field: Option<&'static str>,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: unauthorized, forbidden, not_found, bad_request,
    /// invalid_json, validation, payload_too_large, unsupported_media_type,
    /// method_not_allowed, conflict, rate_limited, timeout, unavailable, internal.
    pub code: String,
    /// One sentence for a person.
    pub message: String,
    /// The request field the error is about (validation errors and conflicts), when
    /// there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            field: None,
        }
    }

    /// The same error, about this request field.
    pub fn about(mut self, field: &'static str) -> ApiError {
        self.field = Some(field);
        self
    }

    /// The request field the error is about.
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// The sentence for a person.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in or send an API token (Authorization: Bearer pd_...) to use this",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn admin_only() -> ApiError {
        ApiError::forbidden("only an admin can do this")
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// Well-formed input that breaks a rule (a short password, an unknown status).
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn rate_limited(retry_after_secs: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many failed sign-in attempts; wait a while and try again",
            )
        }
    }

    /// The same error, telling the client to come back after this many seconds.
    pub(crate) fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A failure that is ours, not the caller's: the detail goes to the log only.
    pub fn internal(detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete this request; the details are in its log",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The JSON form, for layers that build responses outside a handler.
    pub(crate) fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.map(str::to_string),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        // The store's sentences are written for admins and carry no secrets; the ones a
        // caller can act on are passed through, the rest are internal.
        match &error {
            StoreError::MailboxExists(_) | StoreError::UserExists(_) => {
                ApiError::conflict(error.to_string())
            }
            StoreError::MailboxNotFound(_)
            | StoreError::UserNotFound(_)
            | StoreError::TicketNotFound(_)
            | StoreError::RawMessageNotFound(_)
            | StoreError::RunNotFound(_) => ApiError::not_found(error.to_string()),
            StoreError::Parse { .. } | StoreError::TooLarge { .. } => {
                ApiError::validation(error.to_string())
            }
            StoreError::AssigneeUnavailable(_) => {
                ApiError::validation(error.to_string()).about("assignee")
            }
            StoreError::MergeIntoItself(_) | StoreError::MergedAlready { .. } => {
                ApiError::conflict(error.to_string()).about("into")
            }
            StoreError::SearchTooLong { field, .. } => {
                let field = if *field == "search" { "q" } else { field };
                ApiError::validation(error.to_string()).about(field)
            }
            _ => ApiError::internal(&error),
        }
    }
}

impl From<admin::AdminError> for ApiError {
    fn from(error: admin::AdminError) -> ApiError {
        use admin::AdminError as E;
        let field = error.field().map(admin::Field::name);
        if let E::Store(store) = error {
            return ApiError::from(store);
        }
        let api = match &error {
            E::Invalid { .. } | E::SecretRequired { .. } => ApiError::validation(error.to_string()),
            E::MailboxNameTaken(_) | E::EmailTaken(_) | E::LastAdmin => {
                ApiError::conflict(error.to_string())
            }
            E::MailboxNotFound(_)
            | E::UserNotFound(_)
            | E::TokenNotFound(_)
            | E::SetAsideNotFound { .. } => ApiError::not_found(error.to_string()),
            E::SchedulerNotRunning => ApiError::unavailable(error.to_string()),
            // The provider said no, or the mailbox cannot be connected that way: the
            // admin changes settings or tries again.
            E::Connect(_) => ApiError::conflict(error.to_string()),
            E::Hashing(_) | E::Store(_) => ApiError::internal(&error),
        };
        match field {
            Some(field) => api.about(field),
            None => api,
        }
    }
}

impl From<outgoing::ReplyError> for ApiError {
    /// A refused reply: nothing was queued. The sentence is the reply rules' own.
    fn from(error: outgoing::ReplyError) -> ApiError {
        use outgoing::ReplyError as E;
        let message = error.to_string();
        match error {
            E::TicketNotFound(_) => ApiError::not_found(message),
            E::TicketClosed(_) | E::SendingNotSetUp { .. } => ApiError::conflict(message),
            E::Empty => ApiError::validation(message).about("body"),
            E::CcAddress { .. } => ApiError::validation(message).about("cc"),
            E::AttachmentInvalid { .. } => ApiError::validation(message).about("attachments"),
            E::AttachmentsTooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
                    .about("attachments")
            }
            // The ticket's own data (its requester) or the mailbox's sending address
            // cannot be written as mail: the caller can do nothing in this request, but
            // it is not our failure either.
            E::RequesterAddress { .. } | E::Compose(_) => ApiError::validation(message),
            E::Store(store) => ApiError::from(store),
        }
    }
}

/// `Result` of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Middleware: an error response without a body (axum's 404 and 405, the timeout's
/// 408, ...) on a JSON route gets the JSON error form, so clients parse one shape.
/// Responses that have a content type are left alone.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let json = wants_json(request.uri().path());
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !json
        || !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let error = bare_error(status, &method);
    let (mut parts, _empty) = response.into_parts();
    let body = serde_json::to_vec(&error.body()).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The routes that answer JSON (the HTML pages, later, answer HTML).
pub(crate) fn wants_json(path: &str) -> bool {
    path.starts_with("/api/")
        || path == "/api"
        || path == "/healthz"
        || path == "/metrics"
        || path.starts_with("/messages/")
}

fn bare_error(status: StatusCode, method: &Method) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found("there is no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            format!("this route does not accept {method}; the Allow header lists what it does"),
        ),
        StatusCode::REQUEST_TIMEOUT => ApiError::new(
            status,
            "timeout",
            "the request took too long and was stopped",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => crate::input::payload_too_large(),
        StatusCode::UNAUTHORIZED => ApiError::unauthorized(),
        StatusCode::FORBIDDEN => ApiError::forbidden("this request is not allowed"),
        status if status.is_server_error() => ApiError::new(
            status,
            "internal",
            "the server could not complete this request; the details are in its log",
        ),
        status => ApiError::new(
            status,
            "bad_request",
            status
                .canonical_reason()
                .unwrap_or("the request was refused")
                .to_lowercase(),
        ),
    }
}
