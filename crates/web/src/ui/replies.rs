//! Answering the customer from the ticket page: the reply box (a multipart form, so
//! files can go with the text), each reply in the thread with how sending it went, and
//! "Send again" for a failed one.
//!
//! The rules are the reply service's (through the API's `queue`): a refused reply comes
//! back as the same page with the sentence beside the box and the text as typed, and
//! nothing is queued.

use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use outgoing::ReplyRequest;
use outgoing::compose::Attachment;
use store::{Mailbox, OutboxKind, OutboxMessage, OutboxState, Ticket, TicketStatus};

use crate::AppState;
use crate::auth::token::has_authorization;
use crate::error::ApiError;
use crate::ui::display::{When, size};
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, FORM_REFUSED, NoFields, PagePath, from_htmx};
use crate::ui::page;
use crate::ui::tickets::{self, status_label};
use crate::ui::viewer::{Viewer, form_token_matches};

/// A file of a reply, as a download link.
pub(crate) struct ReplyFile {
    pub(crate) href: String,
    pub(crate) name: String,
    pub(crate) size: String,
}

/// A reply (or acknowledgement) in the thread, with its sending state.
pub(crate) struct ReplyCard {
    pub(crate) id: i64,
    pub(crate) author: String,
    /// "Reply" or "Acknowledgement".
    pub(crate) kind: &'static str,
    pub(crate) when: When,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) cc: Option<String>,
    pub(crate) subject: String,
    pub(crate) body: String,
    pub(crate) attachments: Vec<ReplyFile>,
    /// "queued", "sent", "failed": the card's class and badge.
    pub(crate) state: &'static str,
    /// "Queued", "Sent", "Failed".
    pub(crate) state_label: &'static str,
    /// What the state means now: when the next attempt is, when it was sent, why it
    /// failed (the server's words).
    pub(crate) state_text: String,
    /// The server's words at the last failed attempt, while it is still being retried.
    pub(crate) last_error: Option<String>,
    /// "Send again" is offered (failed only).
    pub(crate) can_send_again: bool,
    pub(crate) ticket_number: i64,
}

impl ReplyCard {
    pub(crate) fn new(message: &OutboxMessage, now: i64) -> ReplyCard {
        let (state, state_label, state_text) = match message.state {
            OutboxState::Queued => {
                let next = When::new(message.next_attempt_at, now);
                let text = if message.attempts == 0 {
                    format!(
                        "Waiting to be sent; next attempt at {} ({}).",
                        next.text, next.ago
                    )
                } else {
                    format!(
                        "Not accepted yet after {} attempt{}; next attempt at {} ({}).",
                        message.attempts,
                        if message.attempts == 1 { "" } else { "s" },
                        next.text,
                        next.ago
                    )
                };
                ("queued", "Queued", text)
            }
            OutboxState::Sent => {
                let text = match message.sent_at {
                    Some(at) => format!(
                        "The mail server accepted it at {}.",
                        When::new(at, now).text
                    ),
                    None => "The mail server accepted it.".to_string(),
                };
                ("sent", "Sent", text)
            }
            OutboxState::Failed => {
                let at = message
                    .failed_at
                    .map(|at| format!(" at {}", When::new(at, now).text))
                    .unwrap_or_default();
                let why = message
                    .last_error
                    .as_deref()
                    .unwrap_or("no reason was recorded");
                (
                    "failed",
                    "Failed",
                    format!("Not sent{at}. The server said: {why}"),
                )
            }
        };
        ReplyCard {
            id: message.id,
            author: message.author.clone(),
            kind: match message.kind {
                OutboxKind::Reply => "Reply",
                OutboxKind::Acknowledgement => "Acknowledgement",
                OutboxKind::Notification => "Notification",
            },
            when: When::new(message.queued_at, now),
            from: message.envelope_from.clone(),
            to: message.to.join(", "),
            cc: (!message.cc.is_empty()).then(|| message.cc.join(", ")),
            subject: message.subject.clone(),
            body: message.body.clone(),
            attachments: message
                .attachments
                .iter()
                .enumerate()
                .map(|(index, attachment)| ReplyFile {
                    href: crate::api::replies::attachment_url(message.id, index),
                    name: crate::download::safe_filename(
                        attachment.name.as_deref(),
                        &format!("attachment-{index}"),
                    ),
                    size: size(attachment.size),
                })
                .collect(),
            state,
            state_label,
            state_text,
            last_error: (message.state == OutboxState::Queued)
                .then(|| message.last_error.clone())
                .flatten(),
            can_send_again: message.state == OutboxState::Failed,
            ticket_number: message.ticket_number,
        }
    }
}

/// The reply box under the thread: the form (with what was typed, after a refusal), or
/// why there is none.
pub(crate) struct ReplyBox {
    /// Why this ticket cannot be answered here; the form is not shown.
    pub(crate) cannot_send: Option<String>,
    /// The mailbox page where sending is set up (for admins).
    pub(crate) mailbox_href: Option<String>,
    /// "Example Support <support@example.com>".
    pub(crate) from: String,
    pub(crate) body: String,
    pub(crate) cc: String,
    pub(crate) reply_all: bool,
    pub(crate) error: Option<String>,
    /// The input the error is about: `reply-body`, `reply-cc`, `reply-attachments`.
    pub(crate) error_field: &'static str,
    /// Files were chosen before the refusal: a browser cannot be given them back.
    pub(crate) files_lost: bool,
    /// "26 MB": what the attachments of one reply may add up to.
    pub(crate) max_size: String,
}

impl ReplyBox {
    /// An empty box for this ticket, or the reason there is none.
    pub(crate) fn new(
        state: &AppState,
        viewer: &Viewer,
        ticket: &Ticket,
        mailbox: Option<&Mailbox>,
    ) -> ReplyBox {
        let sending = mailbox.and_then(|m| m.settings.sending.as_ref());
        let cannot_send = match (mailbox, sending) {
            _ if state.outgoing().is_none() => Some(
                "This popdesk process does not send mail, so replies cannot be written here."
                    .to_string(),
            ),
            (None, _) => Some(
                "The mailbox of this ticket was removed, so there is no address to answer from."
                    .to_string(),
            ),
            (Some(mailbox), None) => Some(format!(
                "Replies cannot be sent from the mailbox “{}” yet: its sending address and SMTP server are not set up.{}",
                mailbox.settings.name,
                if viewer.is_admin() {
                    ""
                } else {
                    " Ask an admin to set them up."
                }
            )),
            (Some(_), Some(_)) if ticket.status == TicketStatus::Closed => Some(
                "This ticket is closed. Set its status to Open to answer; a closed ticket's \
                 next mail from the customer starts a new ticket."
                    .to_string(),
            ),
            (Some(_), Some(_)) => None,
        };
        ReplyBox {
            mailbox_href: match (mailbox, sending) {
                (Some(mailbox), None) if viewer.is_admin() => {
                    Some(format!("/mailboxes/{}#sending-settings", mailbox.id))
                }
                _ => None,
            },
            cannot_send,
            from: sending
                .map(|s| crate::ui::display::person(Some(&s.address), s.display_name.as_deref()))
                .unwrap_or_default(),
            body: String::new(),
            cc: String::new(),
            reply_all: false,
            error: None,
            error_field: "",
            files_lost: false,
            max_size: size(state.max_reply_attachments()),
        }
    }

    /// The box again with what was typed and why it was refused.
    fn refused(mut self, form: &ReplyForm, error: String, error_field: &'static str) -> ReplyBox {
        self.body = form.body.clone();
        self.cc = form.cc.clone();
        self.reply_all = form.reply_all;
        self.files_lost = form.files_chosen;
        self.error = Some(error);
        self.error_field = error_field;
        self
    }
}

/// The reply form as posted: text fields and the chosen files.
#[derive(Default)]
pub(crate) struct ReplyForm {
    body: String,
    cc: String,
    reply_all: bool,
    /// "pending" (the default) or "resolved": which button was pressed.
    then: String,
    attachments: Vec<Attachment>,
    /// Any file was chosen (even one refused before it was read whole).
    files_chosen: bool,
    /// The body broke off, or was larger than the server takes: what arrived of the
    /// text is kept, the files are not.
    incomplete: Option<String>,
}

/// The reply form, read from `multipart/form-data` with its form token checked first:
/// the token must come before any file (the page puts it first), so nobody can make
/// popdesk buffer files for a form it will refuse.
pub(crate) struct ReplyUpload(pub ReplyForm);

impl FromRequest<AppState> for ReplyUpload {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let viewer = request.extensions().get::<Viewer>().cloned();
        let headers = request.headers().clone();
        let refused = || {
            tracing::info!("refused a reply form without a valid form token");
            page::forbidden(state, viewer.as_ref(), FORM_REFUSED)
        };
        let mut multipart = Multipart::from_request(request, state).await.map_err(|_| {
            page::error(
                state,
                viewer.as_ref(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "This address takes the reply form of a ticket page. Use the page's own form.",
            )
        })?;
        let mut trusted = has_authorization(&headers);
        let mut form = ReplyForm::default();
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(error) => {
                    form.incomplete = Some(incomplete_reason(&error, state));
                    break;
                }
            };
            let name = field.name().unwrap_or("").to_string();
            if name == "attachments" {
                if !trusted {
                    return Err(refused());
                }
                let file_name = field.file_name().unwrap_or("").to_string();
                let content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string();
                match field.bytes().await {
                    // An empty file input still sends a part, without a name or bytes.
                    Ok(data) if data.is_empty() && file_name.is_empty() => {}
                    Ok(data) => {
                        form.files_chosen = true;
                        form.attachments.push(Attachment {
                            name: file_name,
                            content_type,
                            data: data.to_vec(),
                        });
                    }
                    Err(error) => {
                        form.files_chosen = true;
                        form.incomplete = Some(incomplete_reason(&error, state));
                        break;
                    }
                }
                continue;
            }
            let text = match field.text().await {
                Ok(text) => text,
                Err(error) => {
                    form.incomplete = Some(incomplete_reason(&error, state));
                    break;
                }
            };
            match name.as_str() {
                "csrf" => {
                    if !trusted && !form_token_matches(&headers, Some(&text)) {
                        return Err(refused());
                    }
                    trusted = true;
                }
                "body" => form.body = text,
                "cc" => form.cc = text,
                "reply_all" => form.reply_all = true,
                "then" => form.then = text,
                _ => {}
            }
        }
        if !trusted {
            return Err(refused());
        }
        Ok(ReplyUpload(form))
    }
}

/// Why the form could not be read whole, in the page's words.
fn incomplete_reason(error: &MultipartError, state: &AppState) -> String {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "The attachments are larger than this server accepts for one reply ({} together); leave some out or share them another way.",
            size(state.max_reply_attachments())
        )
    } else {
        "The form arrived incomplete. Choose the files again and send it once more.".to_string()
    }
}

/// Cc as typed: addresses separated by commas, semicolons or line breaks. Not by
/// spaces, so a mistyped entry ("Jane Doe") is named whole in the refusal.
fn cc_addresses(text: &str) -> Vec<String> {
    text.split([',', ';', '\r', '\n'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// The input a refusal is about.
fn error_field(api: &ApiError) -> &'static str {
    match api.field() {
        Some("body") => "reply-body",
        Some("cc") => "reply-cc",
        Some("attachments") => "reply-attachments",
        _ => "",
    }
}

/// Queues the reply as the signed-in person and goes back to the ticket; a refusal
/// shows the ticket again with the sentence beside the box and the text as typed.
pub(crate) async fn reply(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(number): PagePath<i64>,
    headers: HeaderMap,
    ReplyUpload(form): ReplyUpload,
) -> Response {
    let again = |sentence: String, field: &'static str| {
        let form = &form;
        let state = &state;
        let viewer = &viewer;
        let headers = &headers;
        async move {
            // htmx swaps only 2xx answers: a refusal it should show is a 200 for it.
            let status = if from_htmx(headers) {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            tickets::ticket_page(state, viewer, number, status, |reply_box| {
                reply_box.refused(form, sentence, field)
            })
            .await
        }
    };
    if let Some(reason) = &form.incomplete {
        return again(reason.clone(), "reply-attachments").await;
    }
    let then_status = match form.then.as_str() {
        "" | "pending" => TicketStatus::Pending,
        "resolved" => TicketStatus::Resolved,
        _ => {
            return again(
                "Use the page's own buttons to send the reply.".to_string(),
                "",
            )
            .await;
        }
    };
    // A ticket outside the viewer's mailboxes is missing for them.
    if let Err(error) = crate::api::tickets::find(&state, &viewer.actor, number).await {
        return page::api_error(&state, Some(&viewer), &error);
    }
    let request = ReplyRequest {
        ticket_number: number,
        body: form.body.clone(),
        cc: cc_addresses(&form.cc),
        reply_all: form.reply_all,
        attachments: form.attachments.clone(),
        then_status: Some(then_status),
        author_id: viewer.actor.user_id(),
        author: viewer.actor.label(),
    };
    match crate::api::replies::queue(&state, request).await {
        Ok(queued) => {
            let to = queued.message.recipients().collect::<Vec<_>>().join(", ");
            page::see_other_with(
                &state,
                &format!("/tickets/{number}#reply-{}", queued.message.id),
                Flash::done(format!(
                    "Reply to {to} queued: it goes out in a moment. The ticket is now {}.",
                    status_label(queued.ticket.status)
                )),
            )
        }
        Err(error) if error.status() == StatusCode::NOT_FOUND => {
            page::api_error(&state, Some(&viewer), &error)
        }
        Err(error) if error.status().is_client_error() || error.status().as_u16() == 503 => {
            let field = error_field(&error);
            again(page::api_message(&error), field).await
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}

/// "Send again" for a failed reply of this ticket.
pub(crate) async fn send_again(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath((number, id)): PagePath<(i64, i64)>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    let back = format!("/tickets/{number}#reply-{id}");
    // Only a message of the ticket whose page sent the form, and one the viewer sees.
    match crate::auth::scope::outbox_message(&state, &viewer.actor, id).await {
        Ok(Some(message)) if message.ticket_number == number => {}
        Ok(_) => {
            return page::not_found(
                &state,
                Some(&viewer),
                format!("Ticket #{number} has no reply #{id}."),
            );
        }
        Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
    }
    match crate::api::replies::send_again(&state, &viewer.actor, id).await {
        Ok(_) => page::see_other_with(
            &state,
            &back,
            Flash::done("Queued again: popdesk sends it in a moment, as the same message."),
        ),
        Err(error) if error.status() == StatusCode::CONFLICT => {
            page::see_other_with(&state, &back, Flash::failed(page::api_message(&error)))
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cc_may_be_separated_by_commas_semicolons_or_lines() {
        assert_eq!(
            cc_addresses(" a@example.com, b@example.com;c@example.com\r\nd@example.com "),
            [
                "a@example.com",
                "b@example.com",
                "c@example.com",
                "d@example.com"
            ]
        );
        assert!(cc_addresses(" , ").is_empty());
        assert_eq!(
            cc_addresses("Jane Doe, j@example.com"),
            ["Jane Doe", "j@example.com"]
        );
    }
}
