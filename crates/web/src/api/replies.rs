//! Answering the customer: a reply to a ticket, the outbox it waits in, "Send again" for
//! a failed one, and its attachments. Agents and admins alike: whoever works a ticket
//! may answer it and send a refused answer again once the cause is fixed.
//!
//! An adapter over [`outgoing::Replies`]: the request becomes a [`ReplyRequest`], the
//! rules' refusal ([`outgoing::ReplyError`]) one status and sentence (mapped once, in
//! `error.rs`). A reply is committed to the outbox before any SMTP (promise 8); the
//! sender is then woken so it goes out at once rather than at its next tick.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use outgoing::compose::Attachment;
use outgoing::{QueuedReply, ReplyRequest};
use serde::{Deserialize, Serialize};
use store::{EntryAttachment, OutboxKind, OutboxMessage, OutboxState, TicketStatus};
use utoipa::{IntoParams, ToSchema};

use crate::api::tickets::Status;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::{self, ApiJson, ApiPath, ApiQuery};
use crate::{AppState, auth, download};

/// Rows of the outbox list when the caller does not say.
const DEFAULT_OUTBOX_LIMIT: u32 = 50;
/// The most rows the outbox list gives at once.
const MAX_OUTBOX_LIMIT: u32 = 500;

/// A file sent with a reply.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyAttachmentUpload {
    /// The file name the customer sees.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    /// Its media type (default application/octet-stream).
    pub content_type: Option<String>,
    /// The file's bytes in base64 (RFC 4648, padding required; line breaks allowed).
    #[schema(content_encoding = "base64")]
    pub data: String,
}

/// An answer to the customer by email, from the ticket's mailbox.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReply {
    /// What the agent writes, plain text. The customer's last message is quoted below it.
    #[serde(default)]
    pub body: String,
    /// Further addresses to copy.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Also copy whoever the customer's last message went to (To and Cc), except
    /// popdesk's own addresses.
    #[serde(default)]
    pub reply_all: bool,
    /// The ticket's status once the reply is queued (default pending: waiting for the
    /// customer).
    pub status: Option<Status>,
    /// Files to send with it; together at most the server's limit (25 MB by default).
    #[serde(default)]
    pub attachments: Vec<ReplyAttachmentUpload>,
}

/// What kind of outgoing message it is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutgoingKindView {
    /// An agent's answer.
    Reply,
    /// The automatic "we got your message" of a new ticket.
    Acknowledgement,
    /// Mail to an agent about the ticket (their notification preferences).
    Notification,
}

/// Where an outgoing message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutgoingState {
    /// Waiting to be sent: the first try, or again after a temporary failure.
    Queued,
    /// The mail server accepted it.
    Sent,
    /// Refused for good, or temporary failures outlasted the retry time; "Send again"
    /// (POST /api/v1/outbox/{id}/retry) queues it once more.
    Failed,
}

impl From<OutboxState> for OutgoingState {
    fn from(state: OutboxState) -> OutgoingState {
        match state {
            OutboxState::Queued => OutgoingState::Queued,
            OutboxState::Sent => OutgoingState::Sent,
            OutboxState::Failed => OutgoingState::Failed,
        }
    }
}

/// A file sent with a reply; the bytes are at `download_url`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplyAttachmentView {
    /// Its place in the reply's attachment list, as used in `download_url`.
    pub index: usize,
    pub name: Option<String>,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub download_url: String,
}

/// An outgoing message (a reply or an acknowledgement) and how sending it went. Times
/// are milliseconds since the Unix epoch.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplyView {
    pub id: i64,
    pub ticket_number: i64,
    pub kind: OutgoingKindView,
    pub state: OutgoingState,
    /// Sending attempts so far.
    pub attempts: u32,
    /// The mail server's (or the network's) words at the last failed attempt.
    pub last_error: Option<String>,
    /// While queued: when the sender tries it next.
    pub next_attempt_at: Option<i64>,
    pub queued_at: i64,
    pub sent_at: Option<i64>,
    pub failed_at: Option<i64>,
    /// Its Message-ID without angle brackets, fixed when it was queued: a resend is the
    /// identical message.
    pub message_id: String,
    /// The address it is sent from.
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    /// What the agent wrote (without the quoted customer text the mail carries).
    pub body: String,
    pub attachments: Vec<ReplyAttachmentView>,
    /// The user's id while the user exists; null for an API token or popdesk itself.
    pub author_id: Option<i64>,
    pub author: String,
}

impl From<&OutboxMessage> for ReplyView {
    fn from(message: &OutboxMessage) -> ReplyView {
        ReplyView {
            id: message.id,
            ticket_number: message.ticket_number,
            kind: match message.kind {
                OutboxKind::Reply => OutgoingKindView::Reply,
                OutboxKind::Acknowledgement => OutgoingKindView::Acknowledgement,
                OutboxKind::Notification => OutgoingKindView::Notification,
            },
            state: message.state.into(),
            attempts: message.attempts,
            last_error: message.last_error.clone(),
            next_attempt_at: (message.state == OutboxState::Queued)
                .then_some(message.next_attempt_at),
            queued_at: message.queued_at,
            sent_at: message.sent_at,
            failed_at: message.failed_at,
            message_id: message.message_id.clone(),
            from: message.envelope_from.clone(),
            to: message.to.clone(),
            cc: message.cc.clone(),
            subject: message.subject.clone(),
            body: message.body.clone(),
            attachments: message
                .attachments
                .iter()
                .enumerate()
                .map(|(index, attachment)| ReplyAttachmentView {
                    index,
                    name: attachment.name.clone(),
                    content_type: attachment.content_type.clone(),
                    size: attachment.size,
                    sha256: attachment.sha256.clone(),
                    download_url: attachment_url(message.id, index),
                })
                .collect(),
            author_id: message.author_id,
            author: message.author.clone(),
        }
    }
}

/// Where an outgoing message's attachment is downloaded.
pub(crate) fn attachment_url(outbox_id: i64, index: usize) -> String {
    format!("/api/v1/outbox/{outbox_id}/attachments/{index}")
}

/// Queues a reply through the reply rules and wakes the sender. Shared by the API and
/// the ticket page, so both refuse exactly the same things.
pub(crate) async fn queue(state: &AppState, request: ReplyRequest) -> ApiResult<QueuedReply> {
    let outgoing = state.outgoing().ok_or_else(|| {
        ApiError::unavailable(
            "this popdesk process does not send mail, so it cannot take replies; use `popdesk serve`",
        )
    })?;
    let queued = outgoing.replies.queue(request).await?;
    outgoing.wake();
    Ok(queued)
}

/// The outgoing message, if the caller sees its ticket; else as missing as one that
/// never existed.
async fn find(state: &AppState, actor: &Actor, id: i64) -> ApiResult<OutboxMessage> {
    auth::scope::outbox_message(state, actor, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no outgoing message #{id}")))
}

/// "Send again": a failed message queued once more, with the same bytes and the same
/// Message-ID. Shared by the API and the ticket page.
pub(crate) async fn send_again(
    state: &AppState,
    actor: &Actor,
    id: i64,
) -> ApiResult<OutboxMessage> {
    let store = state.store();
    let not_found = || ApiError::not_found(format!("there is no outgoing message #{id}"));
    let message = find(state, actor, id).await?;
    match message.state {
        OutboxState::Failed => {}
        OutboxState::Queued => {
            return Err(ApiError::conflict(format!(
                "outgoing message #{id} is still queued; the sender tries it again by itself"
            )));
        }
        OutboxState::Sent => {
            return Err(ApiError::conflict(format!(
                "outgoing message #{id} was sent already; write a new reply to send more"
            )));
        }
    }
    let message = store
        .outbox_send_again(id, state.now())
        .await?
        .ok_or_else(not_found)?;
    if let Some(outgoing) = state.outgoing() {
        outgoing.wake();
    }
    Ok(message)
}

/// Decodes an uploaded file's base64; line breaks (as some encoders wrap) are allowed.
fn decode(index: usize, upload: ReplyAttachmentUpload) -> ApiResult<Attachment> {
    let text: Vec<u8> = upload
        .data
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let data = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|error| {
            ApiError::validation(format!(
                "attachment {index} ({:?}) is not valid base64: {error}",
                upload.name
            ))
            .about("attachments")
        })?;
    Ok(Attachment {
        name: upload.name,
        content_type: upload
            .content_type
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| "application/octet-stream".to_string()),
        data,
    })
}

/// Answers the customer: the reply is checked, composed and committed to the outbox
/// (with a `reply` event in the ticket's history and the chosen status) before any
/// SMTP, then sent from the ticket's mailbox. Nothing is queued when it is refused.
#[utoipa::path(
    post, path = "/api/v1/tickets/{number}/replies", tag = "tickets",
    params(("number" = i64, Path, description = "The ticket number")),
    request_body = NewReply,
    responses(
        (status = 201, description = "The reply, queued (state queued)", body = ReplyView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Cross-site request refused", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "The ticket is closed, or its mailbox does not send", body = ErrorBody),
        (status = 413, description = "The attachments are over the limit", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Empty reply, a Cc that is not an address, an attachment that is not base64, or a requester who cannot be answered; `error.field` names the field", body = ErrorBody),
        (status = 503, description = "This process does not send mail", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(number): ApiPath<i64>,
    ApiJson(reply): ApiJson<NewReply>,
) -> ApiResult<(StatusCode, Json<ReplyView>)> {
    // A ticket outside the caller's mailboxes is missing for them.
    crate::api::tickets::find(&state, &actor, number).await?;
    let attachments = reply
        .attachments
        .into_iter()
        .enumerate()
        .map(|(index, upload)| decode(index, upload))
        .collect::<ApiResult<Vec<_>>>()?;
    let queued = queue(
        &state,
        ReplyRequest {
            ticket_number: number,
            body: reply.body,
            cc: reply.cc,
            reply_all: reply.reply_all,
            attachments,
            then_status: Some(reply.status.map_or(TicketStatus::Pending, Into::into)),
            author_id: actor.user_id(),
            author: actor.label(),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(ReplyView::from(&queued.message))))
}

/// The outbox list's filter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// Only messages in this state.
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<OutgoingState>)]
    state: Option<OutboxState>,
    /// 1 to 500 (default 50).
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Outgoing messages (replies and acknowledgements of every ticket the caller sees),
/// newest first.
#[utoipa::path(
    get, path = "/api/v1/outbox", tag = "outbox",
    params(OutboxQuery),
    responses(
        (status = 200, description = "Outgoing messages, newest first", body = Vec<ReplyView>),
        (status = 400, description = "The state or limit is not valid", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(query): ApiQuery<OutboxQuery>,
) -> ApiResult<Json<Vec<ReplyView>>> {
    let limit = query.limit.unwrap_or(DEFAULT_OUTBOX_LIMIT);
    if !(1..=MAX_OUTBOX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_OUTBOX_LIMIT}"
        )));
    }
    let messages = state
        .store()
        .outbox_in(actor.scope(), query.state, limit)
        .await?;
    Ok(Json(messages.iter().map(ReplyView::from).collect()))
}

/// "Send again" for a failed message (after the cause was fixed): queued once more with
/// the same bytes and the same Message-ID, and sent at once.
#[utoipa::path(
    post, path = "/api/v1/outbox/{id}/retry", tag = "outbox",
    params(("id" = i64, Path, description = "The outgoing message's id")),
    responses(
        (status = 200, description = "The message, queued again", body = ReplyView),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Cross-site request refused", body = ErrorBody),
        (status = 404, description = "No such outgoing message", body = ErrorBody),
        (status = 409, description = "The message has not failed (it is queued or sent)", body = ErrorBody),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ReplyView>> {
    let message = send_again(&state, &actor, id).await?;
    Ok(Json(ReplyView::from(&message)))
}

/// Downloads one attachment of an outgoing message (always as a download; risky types
/// as application/octet-stream).
#[utoipa::path(
    get, path = "/api/v1/outbox/{id}/attachments/{index}", tag = "outbox",
    params(
        ("id" = i64, Path, description = "The outgoing message's id"),
        ("index" = u32, Path, minimum = 0, maximum = 2147483647, description = "The attachment's index in the message's list"),
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
    let message = find(&state, &actor, id).await?;
    let attachment: &EntryAttachment =
        message.attachments.get(index as usize).ok_or_else(|| {
            ApiError::not_found(format!(
                "outgoing message #{id} has no attachment number {index}"
            ))
        })?;
    let blob = state.store().blobs().open_blob(&attachment.sha256).await?;
    let filename =
        download::safe_filename(attachment.name.as_deref(), &format!("attachment-{index}"));
    Ok(download::attachment(
        blob,
        download::download_type(&attachment.content_type),
        &filename,
    ))
}
