//! Notifications by mail to agents: a new ticket in a mailbox they work, a customer's
//! reply on a ticket assigned to them, a ticket someone else assigned to them.
//!
//! Exactly once each: the wish is written in the transaction of the event itself (the
//! processing batch that opened the ticket or added the reply, the assignment), keyed
//! by user, event and the entry or history event it is about, so a retried transaction
//! never asks twice and a rolled-back one asks nobody. The sender turns each wish into
//! an outbox message in one transaction with taking it off the list
//! ([`Store::queue_notification`]), like acknowledgements.
//!
//! Who is asked: enabled users whose preference is on, and who can see the ticket's
//! mailbox (an admin sees every mailbox; an agent those granted in `user_mailboxes`).
//! An admin therefore hears of new tickets in every mailbox once they turn that
//! preference on; it starts off for everyone.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::processing::ProcessingTx;
use crate::text::{column, text_enum};
use crate::{Store, StoreError};

/// What a notification tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationEvent {
    /// A ticket opened in one of the user's mailboxes.
    NewTicket,
    /// The customer wrote again on a ticket assigned to the user.
    CustomerReply,
    /// Someone else assigned a ticket to the user.
    Assigned,
}
text_enum!(NotificationEvent, "notification event", {
    NewTicket => "new_ticket",
    CustomerReply => "customer_reply",
    Assigned => "assigned",
});

/// A notification waiting for the sender, with where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedNotification {
    pub id: i64,
    pub user_id: i64,
    /// The user's address and name as they are now.
    pub email: String,
    pub name: Option<String>,
    /// A user disabled since is not written to.
    pub user_disabled: bool,
    pub ticket_id: i64,
    pub event: NotificationEvent,
    /// The ticket entry (new ticket, customer reply) or history event (assignment).
    pub source_id: i64,
    pub created_at: i64,
}

/// Who may hear about a ticket `t` at all: enabled, and working its mailbox.
const MAY_HEAR: &str = "u.disabled = 0 AND (u.role = 'admin' OR EXISTS (\
     SELECT 1 FROM user_mailboxes um WHERE um.user_id = u.id AND um.mailbox_id = t.mailbox_id))";

/// Asks for a "new ticket" notification to everyone who wants one for this ticket's
/// mailbox. `entry_id` is the entry that opened it. Returns how many were asked.
pub(crate) async fn want_new_ticket(
    conn: &mut AnyConnection,
    ticket_id: i64,
    entry_id: i64,
    now: i64,
) -> Result<u64, StoreError> {
    let sql = format!(
        "INSERT INTO notifications_wanted (user_id, ticket_id, event, source_id, created_at) \
         SELECT u.id, t.id, 'new_ticket', $2, $3 FROM tickets t, users u \
         WHERE t.id = $1 AND u.notify_new_ticket = 1 AND {MAY_HEAR} \
         ON CONFLICT (user_id, event, source_id) DO NOTHING"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ticket_id)
        .bind(entry_id)
        .bind(now)
        .execute(conn)
        .await
        .map_err(StoreError::db("ask for new-ticket notifications"))?;
    Ok(done.rows_affected())
}

/// Asks for a "customer reply" notification to the ticket's assignee, if they want one.
/// `entry_id` is the customer's new entry. Returns how many were asked (0 or 1).
pub(crate) async fn want_customer_reply(
    conn: &mut AnyConnection,
    ticket_id: i64,
    entry_id: i64,
    now: i64,
) -> Result<u64, StoreError> {
    let sql = format!(
        "INSERT INTO notifications_wanted (user_id, ticket_id, event, source_id, created_at) \
         SELECT u.id, t.id, 'customer_reply', $2, $3 FROM tickets t \
         JOIN users u ON u.id = t.assignee_id \
         WHERE t.id = $1 AND u.notify_customer_reply = 1 AND {MAY_HEAR} \
         ON CONFLICT (user_id, event, source_id) DO NOTHING"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ticket_id)
        .bind(entry_id)
        .bind(now)
        .execute(conn)
        .await
        .map_err(StoreError::db("ask for a customer-reply notification"))?;
    Ok(done.rows_affected())
}

/// Asks for an "assigned to you" notification, inside the assignment's transaction:
/// to `assignee_id` if they want one, can see the ticket, and are not `author_id`
/// themselves (nobody is told what they just did). `event_id` is the assignment's
/// history event. Returns how many were asked (0 or 1).
pub(crate) async fn want_assigned(
    conn: &mut AnyConnection,
    ticket_id: i64,
    assignee_id: i64,
    author_id: Option<i64>,
    event_id: i64,
    now: i64,
) -> Result<u64, StoreError> {
    if author_id == Some(assignee_id) {
        return Ok(0);
    }
    let sql = format!(
        "INSERT INTO notifications_wanted (user_id, ticket_id, event, source_id, created_at) \
         SELECT u.id, t.id, 'assigned', $3, $4 FROM tickets t, users u \
         WHERE t.id = $1 AND u.id = $2 AND u.notify_assigned = 1 AND {MAY_HEAR} \
         ON CONFLICT (user_id, event, source_id) DO NOTHING"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ticket_id)
        .bind(assignee_id)
        .bind(event_id)
        .bind(now)
        .execute(conn)
        .await
        .map_err(StoreError::db("ask for an assignment notification"))?;
    Ok(done.rows_affected())
}

/// For the assignment's transaction (`Store::assign_ticket` in `assignment.rs`): asks
/// for the "assigned to you" notification when there is an assignee (see
/// [`want_assigned`]); unassigning tells nobody. Call it with the transaction after
/// the assignment's history event is written (its id is `event_id`), before commit.
pub(crate) async fn queue_assignment_notification(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ticket_id: i64,
    assignee_id: Option<i64>,
    author_id: Option<i64>,
    event_id: i64,
    now: i64,
) -> Result<u64, StoreError> {
    match assignee_id {
        Some(assignee_id) => {
            want_assigned(tx, ticket_id, assignee_id, author_id, event_id, now).await
        }
        None => Ok(0),
    }
}

impl ProcessingTx {
    /// In the batch that opened the ticket: a "new ticket" notification to everyone who
    /// wants one. `entry_id` is the mail that opened it.
    pub async fn want_new_ticket_notifications(
        &mut self,
        ticket_id: i64,
        entry_id: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        want_new_ticket(self.db().await?, ticket_id, entry_id, now).await
    }

    /// In the batch that added the customer's mail: a notification to the assignee.
    pub async fn want_customer_reply_notification(
        &mut self,
        ticket_id: i64,
        entry_id: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        want_customer_reply(self.db().await?, ticket_id, entry_id, now).await
    }
}

impl Store {
    /// Notifications waiting for the sender, oldest first.
    pub async fn wanted_notifications(
        &self,
        limit: u32,
    ) -> Result<Vec<WantedNotification>, StoreError> {
        let rows = sqlx::query(
            "SELECT w.id, w.user_id, u.email, u.name, u.disabled, w.ticket_id, w.event, \
             w.source_id, w.created_at FROM notifications_wanted w \
             JOIN users u ON u.id = w.user_id ORDER BY w.created_at, w.id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read the notifications to send"))?;
        rows.iter()
            .map(|row| {
                Ok(WantedNotification {
                    id: column(row, "id")?,
                    user_id: column(row, "user_id")?,
                    email: column(row, "email")?,
                    name: column(row, "name")?,
                    user_disabled: column::<i64>(row, "disabled")? != 0,
                    ticket_id: column(row, "ticket_id")?,
                    event: NotificationEvent::from_stored(&column::<String>(row, "event")?)?,
                    source_id: column(row, "source_id")?,
                    created_at: column(row, "created_at")?,
                })
            })
            .collect()
    }

    /// Drops a notification that will not be sent (the reason is the caller's to log).
    /// False when it was no longer wanted.
    pub async fn drop_wanted_notification(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM notifications_wanted WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("drop a notification"))?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MailboxSettings, Role};

    /// The assignment hook (until `Store::assign_ticket` calls it): the assignee hears
    /// of it once per assignment event, and not when they assigned themselves, when
    /// unassigned, when their preference is off or when they cannot see the mailbox.
    #[tokio::test]
    async fn an_assignment_asks_once_and_only_for_someone_else_who_wants_it()
    -> Result<(), StoreError> {
        let dir = tempfile::tempdir()
            .map_err(|e| StoreError::io("create", std::path::Path::new("."), e))?;
        let store = Store::open(dir.path(), None).await?;
        let settings = MailboxSettings {
            name: "support".to_string(),
            host: "pop.example.com".to_string(),
            username: "support@example.com".to_string(),
            ..MailboxSettings::default()
        };
        let secret = secrecy::SecretString::from("x".to_string());
        let support = store.add_mailbox(&settings, &secret, 0).await?.id;
        let other = store
            .add_mailbox(
                &MailboxSettings {
                    name: "sales".to_string(),
                    ..settings.clone()
                },
                &secret,
                0,
            )
            .await?
            .id;
        let ann = store
            .create_user("ann@example.com", None, Role::Agent, "x", 0)
            .await?
            .id;
        let bob = store
            .create_user("bob@example.com", None, Role::Agent, "x", 0)
            .await?
            .id;
        store.set_user_mailboxes(ann, &[support]).await?;
        store.set_user_mailboxes(bob, &[other]).await?;
        let mut processing = store.begin_processing().await?;
        let person = processing.person("carla@example.org", None).await?;
        let ticket = processing
            .create_ticket(support, "Printer", &person, 0)
            .await?
            .id;
        processing.commit().await?;

        let assign = async |assignee: Option<i64>, author: Option<i64>, event: i64| {
            let mut tx = store.pool().begin().await.map_err(StoreError::db("test"))?;
            let asked =
                queue_assignment_notification(&mut tx, ticket, assignee, author, event, 0).await?;
            tx.commit().await.map_err(StoreError::db("test"))?;
            Ok::<u64, StoreError>(asked)
        };
        assert_eq!(assign(Some(ann), Some(bob), 1).await?, 1, "by someone else");
        assert_eq!(assign(Some(ann), Some(bob), 1).await?, 0, "once per event");
        assert_eq!(
            assign(Some(ann), None, 2).await?,
            1,
            "by the API or the CLI"
        );
        assert_eq!(assign(Some(ann), Some(ann), 3).await?, 0, "not oneself");
        assert_eq!(assign(None, Some(bob), 4).await?, 0, "unassigned");
        assert_eq!(assign(Some(bob), Some(ann), 5).await?, 0, "cannot see it");
        store
            .set_preferences(
                ann,
                &crate::Preferences {
                    notify_assigned: false,
                    ..crate::Preferences::default()
                },
                0,
            )
            .await?;
        assert_eq!(assign(Some(ann), Some(bob), 6).await?, 0, "preference off");
        let wanted = store.wanted_notifications(10).await?;
        assert_eq!(wanted.len(), 2);
        assert!(
            wanted
                .iter()
                .all(|w| w.event == NotificationEvent::Assigned && w.email == "ann@example.com")
        );
        Ok(())
    }
}
