//! Each user's preferences: the time zone their pages show times in, and which mail
//! notifications they get (see `notification.rs`).

use serde::Serialize;

use crate::text::{column, db_text};
use crate::{Store, StoreError};

/// What a user chose for themselves. Every user has one; a new user starts with the
/// defaults of migration 0012 ([`Preferences::default`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preferences {
    /// An IANA time zone name ("Europe/Berlin", "UTC"). The store keeps what it is given:
    /// the web checks the name against the time zone database before it gets here, and
    /// a name that later stops being known reads as UTC.
    pub time_zone: String,
    /// Mail for every new ticket in the mailboxes the user works.
    pub notify_new_ticket: bool,
    /// Mail when the customer answers a ticket assigned to the user.
    pub notify_customer_reply: bool,
    /// Mail when someone else assigns a ticket to the user.
    pub notify_assigned: bool,
}

impl Default for Preferences {
    /// The columns' defaults: UTC, and mail about one's own tickets but not about every
    /// new one.
    fn default() -> Self {
        Preferences {
            time_zone: "UTC".to_string(),
            notify_new_ticket: false,
            notify_customer_reply: true,
            notify_assigned: true,
        }
    }
}

impl Store {
    /// A user's preferences; [`StoreError::UserNotFound`] when there is no such user.
    pub async fn preferences(&self, user_id: i64) -> Result<Preferences, StoreError> {
        let row = sqlx::query(
            "SELECT time_zone, notify_new_ticket, notify_customer_reply, notify_assigned \
             FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("read a user's preferences"))?
        .ok_or(StoreError::UserNotFound(user_id))?;
        Ok(Preferences {
            time_zone: column(&row, "time_zone")?,
            notify_new_ticket: column::<i64>(&row, "notify_new_ticket")? != 0,
            notify_customer_reply: column::<i64>(&row, "notify_customer_reply")? != 0,
            notify_assigned: column::<i64>(&row, "notify_assigned")? != 0,
        })
    }

    /// Replaces a user's preferences; [`StoreError::UserNotFound`] when there is no such
    /// user.
    pub async fn set_preferences(
        &self,
        user_id: i64,
        preferences: &Preferences,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE users SET time_zone = $1, notify_new_ticket = $2, \
             notify_customer_reply = $3, notify_assigned = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(db_text(&preferences.time_zone))
        .bind(i64::from(preferences.notify_new_ticket))
        .bind(i64::from(preferences.notify_customer_reply))
        .bind(i64::from(preferences.notify_assigned))
        .bind(now)
        .bind(user_id)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("change a user's preferences"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UserNotFound(user_id));
        }
        Ok(())
    }
}
