//! Team mailboxes: which tickets, mail and replies the caller may see.
//!
//! An agent works the tickets of the mailboxes an admin granted them; admins see every
//! mailbox. What lies outside the caller's mailboxes is looked up here and answers
//! exactly as if it did not exist (the same 404 and sentence), so walking ticket
//! numbers or message ids tells an agent nothing.
//!
//! A stored message is the mail of a ticket, so it goes with the ticket: an agent reads
//! it (its bytes, attachments, HTML, inline images) only while it is an entry of a
//! ticket they see. Messages on no ticket (ignored, failed, waiting) are the admins'
//! to sort out.

use store::{
    ApiToken, MailboxScope, OutboxMessage, RawMessage, Role, Store, StoreError, Ticket,
    TicketEntry, User,
};

use crate::AppState;
use crate::auth::Actor;

/// The ticket a search opens when it is a ticket's number ("1996", "#1996"): the one it
/// was merged into, if it was; `None` when the search is not a number or the ticket is
/// outside `scope`. The list in the API and the page ask this alike.
pub(crate) async fn jump_target(
    store: &Store,
    scope: &MailboxScope,
    search: Option<&str>,
) -> Result<Option<i64>, StoreError> {
    let Some(number) = search.and_then(store::ticket_number) else {
        return Ok(None);
    };
    Ok(store
        .ticket_by_number(number)
        .await?
        .filter(|ticket| scope.allows(ticket.mailbox_id))
        .map(|ticket| ticket.merged_into.unwrap_or(ticket.number)))
}

/// What a signed-in user may see: an admin everything, an agent their mailboxes.
pub(crate) async fn of_user(store: &Store, user: &User) -> Result<MailboxScope, StoreError> {
    match user.role {
        Role::Admin => Ok(MailboxScope::All),
        Role::Agent => store.mailbox_scope(user.id).await,
    }
}

/// What an API token may see: an agent token sees what its maker sees (so a token
/// never sees more than the person who answers for it); a token nobody made (the
/// command line's) or an admin token sees everything.
pub(crate) async fn of_token(store: &Store, token: &ApiToken) -> Result<MailboxScope, StoreError> {
    match (token.role, token.created_by) {
        (Role::Agent, Some(maker)) => store.mailbox_scope(maker).await,
        _ => Ok(MailboxScope::All),
    }
}

/// The ticket with this number, if the caller may see it.
pub(crate) async fn ticket(
    state: &AppState,
    actor: &Actor,
    number: i64,
) -> Result<Option<Ticket>, StoreError> {
    let ticket = state.store().ticket_by_number(number).await?;
    Ok(ticket.filter(|t| actor.scope().allows(t.mailbox_id)))
}

/// The ticket entry made from this stored message, if the caller may read it.
pub(crate) async fn entry(
    state: &AppState,
    actor: &Actor,
    raw_message_id: i64,
) -> Result<Option<TicketEntry>, StoreError> {
    let Some(entry) = state.store().entry_for_raw_message(raw_message_id).await? else {
        return Ok(None);
    };
    if matches!(actor.scope(), MailboxScope::All) {
        return Ok(Some(entry));
    }
    let ticket = state.store().ticket_by_id(entry.ticket_id).await?;
    Ok(ticket
        .filter(|t| actor.scope().allows(t.mailbox_id))
        .map(|_| entry))
}

/// The stored message, if the caller may read it: an admin any, anyone else only the
/// mail of a ticket they see.
pub(crate) async fn message(
    state: &AppState,
    actor: &Actor,
    id: i64,
) -> Result<Option<RawMessage>, StoreError> {
    if !actor.is_admin() && entry(state, actor, id).await?.is_none() {
        return Ok(None);
    }
    state.store().raw_message(id).await
}

/// The outgoing message (a reply or an acknowledgement), if the caller sees its ticket.
pub(crate) async fn outbox_message(
    state: &AppState,
    actor: &Actor,
    id: i64,
) -> Result<Option<OutboxMessage>, StoreError> {
    let Some(message) = state.store().outbox_message(id).await? else {
        return Ok(None);
    };
    if matches!(actor.scope(), MailboxScope::All) {
        return Ok(Some(message));
    }
    // The ticket's mailbox decides, as for the ticket itself.
    let ticket = state.store().ticket_by_id(message.ticket_id).await?;
    Ok(ticket
        .filter(|t| actor.scope().allows(t.mailbox_id))
        .map(|_| message))
}
