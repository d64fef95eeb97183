//! Who works a ticket: assigning it to an agent (or admin), or to nobody. Each change is
//! an event in the ticket's history, written in the same transaction as the ticket.

use crate::text::column;
use crate::{Store, StoreError};

impl Store {
    /// Gives the ticket to `assignee_id` (`None`: nobody) and records who did it.
    /// `false` when the ticket already had that assignee (nothing is recorded).
    ///
    /// The assignee must be a user who can sign in: a disabled or removed user is
    /// [`StoreError::AssigneeUnavailable`].
    pub async fn assign_ticket(
        &self,
        ticket_id: i64,
        assignee_id: Option<i64>,
        author_id: Option<i64>,
        author: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let action = "assign the ticket";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        // Claims the row first, so two agents assigning at once record two honest
        // changes rather than two from the same old assignee.
        let done = sqlx::query("UPDATE tickets SET updated_at = updated_at WHERE id = $1")
            .bind(ticket_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::TicketNotFound(ticket_id));
        }
        let row = sqlx::query("SELECT assignee_id FROM tickets WHERE id = $1")
            .bind(ticket_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let current: Option<i64> = column(&row, "assignee_id")?;
        if current == assignee_id {
            return Ok(false);
        }
        // Read in the transaction: a user disabled a moment ago is not given the ticket.
        let label = match assignee_id {
            None => None,
            Some(user_id) => {
                let row = sqlx::query("SELECT email, name, disabled FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
                let Some(row) = row else {
                    return Err(StoreError::AssigneeUnavailable(user_id));
                };
                if column::<i64>(&row, "disabled")? != 0 {
                    return Err(StoreError::AssigneeUnavailable(user_id));
                }
                let email: String = column(&row, "email")?;
                let name: Option<String> = column(&row, "name")?;
                Some(match name {
                    Some(name) if !name.trim().is_empty() => format!("{name} <{email}>"),
                    _ => email,
                })
            }
        };
        sqlx::query("UPDATE tickets SET assignee_id = $1, updated_at = $2 WHERE id = $3")
            .bind(assignee_id)
            .bind(now)
            .bind(ticket_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let row = sqlx::query(
            "INSERT INTO ticket_events \
             (ticket_id, kind, author_id, author, assignee_id, assignee, created_at) \
             VALUES ($1, 'assignment', $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(ticket_id)
        .bind(author_id)
        .bind(author)
        .bind(assignee_id)
        .bind(label)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        let event_id: i64 = column(&row, "id")?;
        // "Assigned to you" is asked for in the same transaction: once, and only if the
        // assignment itself holds.
        crate::notification::queue_assignment_notification(
            &mut tx,
            ticket_id,
            assignee_id,
            author_id,
            event_id,
            now,
        )
        .await?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(true)
    }
}
