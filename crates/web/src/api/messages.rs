//! Stored messages: the record with its processing outcome, the raw bytes, attachments
//! and inline images; for admins the failed and ignored ones and reprocessing (promise
//! 5: what fails is kept, visible and can be reprocessed). An agent reads only the mail
//! of tickets in their mailboxes (`auth::scope`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::{EntryAttachment, ProcessRecord, ProcessStatus, RawMessage, RawStatus, TicketEntry};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Actor, Admin};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::{self, ApiPath, ApiQuery};
use crate::{AppState, auth, download};

/// Where a message stands in processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingStatus {
    Pending,
    Processed,
    Ignored,
    Failed,
}

impl From<ProcessStatus> for ProcessingStatus {
    fn from(status: ProcessStatus) -> ProcessingStatus {
        match status {
            ProcessStatus::Pending => ProcessingStatus::Pending,
            ProcessStatus::Processed => ProcessingStatus::Processed,
            ProcessStatus::Ignored => ProcessingStatus::Ignored,
            ProcessStatus::Failed => ProcessingStatus::Failed,
        }
    }
}

/// What processing decided.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessingView {
    pub status: ProcessingStatus,
    /// One sentence; empty while pending.
    pub reason: String,
    /// The ticket the message went to.
    pub ticket_number: Option<i64>,
    /// One line per processing step.
    pub log: Vec<String>,
    pub processed_at: Option<i64>,
}

/// A stored message. Times are ms since the epoch.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub id: i64,
    pub mailbox_id: i64,
    /// The server's UIDL.
    pub uid: Option<String>,
    pub message_id: Option<String>,
    pub sha256: String,
    /// Octets stored.
    pub size: u64,
    /// The size the server announced.
    pub server_size: Option<u64>,
    /// False when the message was over the size limit and only its headers were kept.
    pub complete: bool,
    pub received_at: i64,
    pub processing: ProcessingView,
    pub raw_url: String,
}

async fn view(state: &AppState, raw: &RawMessage, record: ProcessRecord) -> ApiResult<MessageView> {
    let ticket_number = match record.ticket_id {
        Some(id) => state.store().ticket_by_id(id).await?.map(|t| t.number),
        None => None,
    };
    Ok(MessageView {
        id: raw.id,
        mailbox_id: raw.mailbox_id,
        uid: raw.uid.clone(),
        message_id: raw.message_id.clone(),
        sha256: raw.sha256.clone(),
        size: raw.size,
        server_size: raw.server_size,
        complete: raw.status == RawStatus::Stored,
        received_at: raw.received_at,
        processing: ProcessingView {
            status: record.status.into(),
            reason: record.reason,
            ticket_number,
            log: record.log,
            processed_at: record.processed_at,
        },
        raw_url: format!("/api/v1/messages/{}/raw", raw.id),
    })
}

/// The stored message, if the caller may read it (see [`auth::scope::message`]): for
/// anyone else it is as missing as one that never existed.
async fn find(state: &AppState, actor: &Actor, id: i64) -> ApiResult<RawMessage> {
    auth::scope::message(state, actor, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no stored message #{id}")))
}

/// The message list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Which messages (default: failed).
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<ProcessingStatus>)]
    status: Option<ProcessStatus>,
    /// Only messages of this mailbox (its id).
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<i64>)]
    mailbox: Option<i64>,
    /// At most this many, newest first: 1 to 500 (default 100).
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Messages, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    pub items: Vec<MessageView>,
}

/// Lists stored messages by processing status: the failed and ignored ones for an
/// admin to look at (admin only).
#[utoipa::path(
    get, path = "/api/v1/messages", tag = "messages",
    params(MessageQuery),
    responses(
        (status = 200, description = "Messages, newest first", body = MessageList),
        (status = 400, description = "A filter is not valid", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<MessageQuery>,
) -> ApiResult<Json<MessageList>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    let status = query.status.unwrap_or(ProcessStatus::Failed);
    let rows = state
        .store()
        .raw_messages_with_status(Some(status), query.mailbox, limit)
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    for (raw, record) in rows {
        items.push(view(&state, &raw, record).await?);
    }
    Ok(Json(MessageList { items }))
}

/// One stored message with its processing outcome and log.
#[utoipa::path(
    get, path = "/api/v1/messages/{id}", tag = "messages",
    params(("id" = i64, Path, description = "The stored message's id")),
    responses(
        (status = 200, description = "The message", body = MessageView),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<MessageView>> {
    let raw = find(&state, &actor, id).await?;
    let record = state
        .store()
        .processing_record(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no stored message #{id}")))?;
    Ok(Json(view(&state, &raw, record).await?))
}

/// The message exactly as it was downloaded (message/rfc822, as a download).
#[utoipa::path(
    get, path = "/api/v1/messages/{id}/raw", tag = "messages",
    params(("id" = i64, Path, description = "The stored message's id")),
    responses(
        (status = 200, description = "The raw message", content_type = "message/rfc822", body = Vec<u8>),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
    )
)]
pub async fn raw(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    let raw = find(&state, &actor, id).await?;
    let blob = state.store().blobs().open_blob(&raw.sha256).await?;
    Ok(download::attachment(
        blob,
        "message/rfc822",
        &format!("message-{id}.eml"),
    ))
}

/// Reprocessing was queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reprocessing {
    pub id: i64,
    pub status: ProcessingStatus,
}

/// Sets a message back to pending; the processor takes it up again (admin only).
#[utoipa::path(
    post, path = "/api/v1/messages/{id}/reprocess", tag = "messages",
    params(("id" = i64, Path, description = "The stored message's id")),
    responses(
        (status = 202, description = "Queued for processing", body = Reprocessing),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
    )
)]
pub async fn reprocess(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<Reprocessing>)> {
    if !state.store().reset_processing(id).await? {
        return Err(ApiError::not_found(format!(
            "there is no stored message #{id}"
        )));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Reprocessing {
            id,
            status: ProcessingStatus::Pending,
        }),
    ))
}

/// The ticket entry made from a stored message, if it was made into one.
async fn entry_of(state: &AppState, actor: &Actor, raw_message_id: i64) -> ApiResult<TicketEntry> {
    find(state, actor, raw_message_id).await?;
    let none = || {
        ApiError::not_found(format!(
            "message #{raw_message_id} is not on a ticket, so it has no attachments to serve"
        ))
    };
    // Read directly, not through the processing record: a reprocess request resets the
    // record, and the entry (with its attachments) stays until the processor replaces it.
    auth::scope::entry(state, actor, raw_message_id)
        .await?
        .ok_or_else(none)
}

/// Downloads one attachment of a message (always as a download; risky types as
/// application/octet-stream).
#[utoipa::path(
    get, path = "/api/v1/messages/{id}/attachments/{index}", tag = "messages",
    params(
        ("id" = i64, Path, description = "The stored message's id"),
        ("index" = u32, Path, minimum = 0, maximum = 2147483647, description = "The attachment's index in the entry's list"),
    ),
    responses(
        (status = 200, description = "The attachment", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "The id or index is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 404, description = "No such message or attachment", body = ErrorBody),
    )
)]
pub async fn attachment(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((id, index)): ApiPath<(i64, u32)>,
) -> ApiResult<Response> {
    let entry = entry_of(&state, &actor, id).await?;
    let attachment = entry.attachments.get(index as usize).ok_or_else(|| {
        ApiError::not_found(format!("message #{id} has no attachment number {index}"))
    })?;
    let bytes = read(&state, attachment).await?;
    let filename =
        download::safe_filename(attachment.name.as_deref(), &format!("attachment-{index}"));
    Ok(download::attachment(
        bytes,
        download::download_type(&attachment.content_type),
        &filename,
    ))
}

/// An attachment's stored bytes, opened to stream.
async fn read(state: &AppState, attachment: &EntryAttachment) -> ApiResult<store::BlobReader> {
    Ok(state.store().blobs().open_blob(&attachment.sha256).await?)
}

/// An inline image of a message, by Content-ID: what `cid:` references in sanitized
/// HTML point at. Images only; anything else is 404.
#[utoipa::path(
    get, path = "/messages/{id}/cid/{content_id}", tag = "messages",
    params(
        ("id" = i64, Path, description = "The stored message's id"),
        ("content_id" = String, Path, description = "The image's Content-ID, without angle brackets"),
    ),
    responses(
        (status = 200, description = "The image", content_type = "image/png", body = Vec<u8>),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 404, description = "No such message or image", body = ErrorBody),
    )
)]
pub async fn cid(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((id, content_id)): ApiPath<(i64, String)>,
) -> ApiResult<Response> {
    let wanted = bare_content_id(&content_id);
    let entry = entry_of(&state, &actor, id).await?;
    let not_found = || ApiError::not_found(format!("message #{id} has no inline image {wanted:?}"));
    let (index, attachment) = entry
        .attachments
        .iter()
        .enumerate()
        .find(|(_, a)| a.content_id.as_deref().map(bare_content_id) == Some(wanted))
        .ok_or_else(not_found)?;
    let content_type =
        download::inline_image_type(&attachment.content_type).ok_or_else(not_found)?;
    let bytes = read(&state, attachment).await?;
    let filename = download::safe_filename(attachment.name.as_deref(), &format!("image-{index}"));
    Ok(download::inline_image(bytes, content_type, &filename))
}

/// A Content-ID without the angle brackets it may be written with.
fn bare_content_id(id: &str) -> &str {
    let id = id.trim();
    id.strip_prefix('<')
        .and_then(|id| id.strip_suffix('>'))
        .unwrap_or(id)
}

/// Where inline images are served (the processor writes this path into the HTML).
pub const CID_PATH: &str = "/messages/{id}/cid/{content_id}";

/// The inline-image route, at the site's root where the processor's `cid:` rewrites
/// point, behind the same authentication as the API.
pub(crate) fn root_router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(CID_PATH, get(cid))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::actor::authenticate,
        ))
}
