//! Merging a ticket into another: a customer who opened the same question twice gets
//! one ticket. Everything the merged ticket held moves to the one it joins, in one
//! transaction; the merged ticket stays as a closed pointer (`merged_into_id`), so its
//! number still leads somewhere and later mail quoting it (`[#A]`) lands in the other.

use crate::text::column;
use crate::{Store, StoreError};

/// What a merge needs to know of each ticket.
struct MergeSide {
    number: i64,
    merged_into: Option<i64>,
}

impl Store {
    /// Merges ticket `from_id` into `into_id`: its mail entries, history, outgoing mail,
    /// pending acknowledgement and processing records move to `into_id`; `from_id` is
    /// closed and points at `into_id`; both get a merge event by `author`.
    ///
    /// Refused, with nothing changed: a ticket into itself
    /// ([`StoreError::MergeIntoItself`]), and either ticket already merged somewhere
    /// ([`StoreError::MergedAlready`]) — which also keeps a ticket from being merged into
    /// one that was merged into it.
    pub async fn merge_tickets(
        &self,
        from_id: i64,
        into_id: i64,
        author_id: Option<i64>,
        author: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let action = "merge the tickets";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        // Claims both rows, the lower id first, so two merges of the same pair wait for
        // each other instead of deadlocking, and the checks below stay true until commit.
        for id in [from_id.min(into_id), from_id.max(into_id)] {
            let done = sqlx::query("UPDATE tickets SET updated_at = updated_at WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::TicketNotFound(id));
            }
        }
        let mut sides = Vec::with_capacity(2);
        for id in [from_id, into_id] {
            let row = sqlx::query(
                "SELECT t.number, (SELECT m.number FROM tickets m WHERE m.id = t.merged_into_id) \
                 AS merged_into FROM tickets t WHERE t.id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
            sides.push(MergeSide {
                number: column(&row, "number")?,
                merged_into: column(&row, "merged_into")?,
            });
        }
        let (from, into) = (&sides[0], &sides[1]);
        if from_id == into_id {
            return Err(StoreError::MergeIntoItself(from.number));
        }
        for side in [into, from] {
            if let Some(merged_into) = side.merged_into {
                return Err(StoreError::MergedAlready {
                    ticket: side.number,
                    merged_into,
                });
            }
        }
        // Everything that hangs off a ticket. Entries keep their mailbox: threading by
        // Message-ID looks in the mailbox the mail came to, and now finds the other ticket.
        for sql in [
            "UPDATE ticket_entries SET ticket_id = $2 WHERE ticket_id = $1",
            "UPDATE ticket_events SET ticket_id = $2 WHERE ticket_id = $1",
            "UPDATE outbox SET ticket_id = $2 WHERE ticket_id = $1",
            "UPDATE raw_messages SET process_ticket_id = $2 WHERE process_ticket_id = $1",
            // One acknowledgement per ticket: the joined ticket's own wins.
            "UPDATE acknowledgements_wanted SET ticket_id = $2 WHERE ticket_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM acknowledgements_wanted w WHERE w.ticket_id = $2)",
        ] {
            sqlx::query(sql)
                .bind(from_id)
                .bind(into_id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
        }
        sqlx::query("DELETE FROM acknowledgements_wanted WHERE ticket_id = $1")
            .bind(from_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        sqlx::query(
            "UPDATE tickets SET merged_into_id = $1, status = 'closed', updated_at = $2 \
             WHERE id = $3",
        )
        .bind(into_id)
        .bind(now)
        .bind(from_id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        // The joined ticket now spans both tickets' mail: from the earliest written to
        // the latest.
        sqlx::query(
            "UPDATE tickets SET updated_at = $1, \
             first_mail_sent_at = (SELECT MIN(e.sent_at) FROM ticket_entries e \
                                   WHERE e.ticket_id = tickets.id), \
             last_mail_sent_at = (SELECT MAX(e.sent_at) FROM ticket_entries e \
                                  WHERE e.ticket_id = tickets.id) \
             WHERE id = $2",
        )
        .bind(now)
        .bind(into_id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        for (ticket_id, other_number) in [(into_id, from.number), (from_id, into.number)] {
            sqlx::query(
                "INSERT INTO ticket_events \
                 (ticket_id, kind, author_id, author, other_ticket_number, created_at) \
                 VALUES ($1, 'merge', $2, $3, $4, $5)",
            )
            .bind(ticket_id)
            .bind(author_id)
            .bind(author)
            .bind(other_number)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(())
    }
}
