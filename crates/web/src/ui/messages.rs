//! Messages that failed processing or were ignored (admin): the reason, the processing
//! log, the headers, the raw download, and reprocessing (promise 5: what fails is kept,
//! visible and can be reprocessed).

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{ProcessStatus, RawStatus};
use tokio::io::AsyncReadExt as _;

use crate::AppState;
use crate::auth::Admin;
use crate::input::ApiPath;
use crate::ui::display::{When, sentence, size};
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, NoFields, PagePath, PageQuery};
use crate::ui::page::{self, Layout, Section, impl_page};
use crate::ui::viewer::AdminViewer;

/// Rows on the list: the newest; older ones are still there for the API and the CLI.
const LIST_LIMIT: u32 = 200;

/// The most of a raw message read to show its headers: a header block is a few KB, a
/// hostile one could be the whole message.
const MAX_HEADER_BYTES: usize = 64 * 1024;

fn status_label(status: ProcessStatus) -> &'static str {
    match status {
        ProcessStatus::Pending => "Waiting for processing",
        ProcessStatus::Processed => "Processed",
        ProcessStatus::Ignored => "Ignored",
        ProcessStatus::Failed => "Failed",
    }
}

pub(crate) struct MessageRow {
    id: i64,
    received: When,
    mailbox: String,
    reason: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "messages.html")]
pub(crate) struct MessagesPage {
    layout: Layout,
    /// Showing the ignored ones (else the failed ones).
    ignored: bool,
    rows: Vec<MessageRow>,
    limit: u32,
    /// The list stops at `limit`: older ones exist.
    truncated: bool,
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
}

/// The failed (or ignored) messages, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PageQuery(query): PageQuery<ListQuery>,
) -> Response {
    let status = match query.status.as_deref().map(str::trim) {
        None | Some("" | "failed") => ProcessStatus::Failed,
        Some("ignored") => ProcessStatus::Ignored,
        Some(_) => {
            return page::error(
                &state,
                Some(&viewer),
                StatusCode::BAD_REQUEST,
                "This list shows failed or ignored messages; pick one of the two.",
            );
        }
    };
    let loaded = async {
        let rows = state
            .store()
            .raw_messages_with_status(Some(status), None, LIST_LIMIT)
            .await?;
        let mailboxes = state.store().mailboxes().await?;
        Ok::<_, store::StoreError>((rows, mailboxes))
    }
    .await;
    let (rows, mailboxes) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
    };
    let names: HashMap<i64, String> = mailboxes
        .into_iter()
        .map(|m| (m.id, m.settings.name))
        .collect();
    let now = state.now();
    let ignored = status == ProcessStatus::Ignored;
    let truncated = rows.len() >= usize::try_from(LIST_LIMIT).unwrap_or(usize::MAX);
    page::show(
        &state,
        StatusCode::OK,
        MessagesPage {
            layout: Layout::signed_in(
                &viewer,
                if ignored {
                    "Ignored messages"
                } else {
                    "Failed messages"
                },
                Section::Messages,
            ),
            ignored,
            rows: rows
                .into_iter()
                .map(|(raw, record)| MessageRow {
                    id: raw.id,
                    received: When::new(raw.received_at, now),
                    mailbox: names
                        .get(&raw.mailbox_id)
                        .cloned()
                        .unwrap_or_else(|| "(removed mailbox)".to_string()),
                    reason: sentence(&record.reason),
                })
                .collect(),
            limit: LIST_LIMIT,
            truncated,
        },
    )
}

#[derive(Template, WebTemplate)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    layout: Layout,
    id: i64,
    status: &'static str,
    /// Failed or ignored: the list to go back to.
    back: &'static str,
    reason: String,
    mailbox: String,
    received: When,
    size: String,
    /// Over the mailbox's size limit (only its headers may have been stored).
    too_large: bool,
    message_id: String,
    ticket: Option<i64>,
    log: Vec<String>,
    /// The raw header block, or why it could not be read.
    headers: String,
    headers_cut: bool,
}
impl_page!(MessagesPage, MessagePage);

/// The header block of a stored message: up to the first empty line, at most
/// [`MAX_HEADER_BYTES`]. Also true when the block was longer and was cut.
async fn header_block(
    blobs: &store::BlobStore,
    sha256: &str,
) -> Result<(String, bool), store::StoreError> {
    let file = blobs.open_blob(sha256).await?;
    let mut bytes = Vec::with_capacity(8 * 1024);
    file.take(u64::try_from(MAX_HEADER_BYTES).unwrap_or(u64::MAX))
        .read_to_end(&mut bytes)
        .await
        .map_err(store::StoreError::from)?;
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let cut = end.is_none() && bytes.len() >= MAX_HEADER_BYTES;
    let block = &bytes[..end.unwrap_or(bytes.len())];
    Ok((String::from_utf8_lossy(block).replace("\r\n", "\n"), cut))
}

/// One stored message with why it failed (or was ignored).
pub(crate) async fn show(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
) -> Response {
    let store = state.store();
    let loaded = async {
        let raw = store.raw_message(id).await?;
        let record = store.processing_record(id).await?;
        Ok::<_, store::StoreError>(raw.zip(record))
    }
    .await;
    let (raw, record) = match loaded {
        Ok(Some(found)) => found,
        Ok(None) => {
            return page::not_found(
                &state,
                Some(&viewer),
                format!("There is no stored message #{id}."),
            );
        }
        Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
    };
    let ticket = match record.ticket_id {
        Some(ticket_id) => match store.ticket_by_id(ticket_id).await {
            Ok(ticket) => ticket.map(|t| t.number),
            Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
        },
        None => None,
    };
    let mailbox = match store.mailbox_by_id(raw.mailbox_id).await {
        Ok(mailbox) => mailbox.map_or_else(|| "(removed mailbox)".to_string(), |m| m.settings.name),
        Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
    };
    let (headers, headers_cut) = match header_block(store.blobs(), &raw.sha256).await {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, raw_message_id = id, "could not read a stored message's headers");
            (
                "The stored message could not be read; the details are in the server's log."
                    .to_string(),
                false,
            )
        }
    };
    page::show(
        &state,
        StatusCode::OK,
        MessagePage {
            layout: Layout::signed_in(&viewer, format!("Message #{id}"), Section::Messages),
            id,
            status: status_label(record.status),
            back: if record.status == ProcessStatus::Ignored {
                "/messages?status=ignored"
            } else {
                "/messages?status=failed"
            },
            reason: sentence(&record.reason),
            mailbox,
            received: When::new(raw.received_at, state.now()),
            size: size(raw.size),
            too_large: raw.status == RawStatus::TooLarge,
            message_id: raw.message_id.clone().unwrap_or_default(),
            ticket,
            log: record.log,
            headers,
            headers_cut,
        },
    )
}

/// Sets the message back to pending: the processor takes it up again.
pub(crate) async fn reprocess(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    let admin = Admin(viewer.actor.clone());
    match crate::api::messages::reprocess(State(state.clone()), admin, ApiPath(id)).await {
        Ok(_) => page::see_other_with(
            &state,
            &format!("/messages/{id}"),
            Flash::done(
                "Queued for processing again. Reload this page in a moment to see the outcome.",
            ),
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}
