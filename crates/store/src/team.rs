//! Team mailboxes: which mailboxes each agent works. An agent sees the tickets and
//! messages of these mailboxes and nothing else; admins see every mailbox and have no
//! rows here.

use std::collections::HashMap;

use sqlx::AssertSqlSafe;

use crate::text::column;
use crate::{MailboxScope, Role, Store, StoreError};

impl Store {
    /// The mailboxes this user works, by id.
    pub async fn user_mailbox_ids(&self, user_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT mailbox_id FROM user_mailboxes WHERE user_id = $1 ORDER BY mailbox_id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read a user's mailboxes"))?;
        rows.iter().map(|row| column(row, "mailbox_id")).collect()
    }

    /// The users who work this mailbox, by id.
    pub async fn mailbox_user_ids(&self, mailbox_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id FROM user_mailboxes WHERE mailbox_id = $1 ORDER BY user_id",
        )
        .bind(mailbox_id)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read a mailbox's users"))?;
        rows.iter().map(|row| column(row, "user_id")).collect()
    }

    /// Replaces the mailboxes a user works with these, in one transaction. Ids of
    /// mailboxes that do not exist are refused ([`StoreError::MailboxNotFound`]), and
    /// nothing changes.
    pub async fn set_user_mailboxes(
        &self,
        user_id: i64,
        mailbox_ids: &[i64],
    ) -> Result<(), StoreError> {
        let action = "change a user's mailboxes";
        let mut ids = mailbox_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        let user = sqlx::query("SELECT id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        if user.is_none() {
            return Err(StoreError::UserNotFound(user_id));
        }
        for &id in &ids {
            let found = sqlx::query("SELECT id FROM mailboxes WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            if found.is_none() {
                return Err(StoreError::MailboxNotFound(id));
            }
        }
        sqlx::query("DELETE FROM user_mailboxes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        if !ids.is_empty() {
            // Only placeholders are formatted in, never data.
            let values = (0..ids.len())
                .map(|i| format!("($1, ${})", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("INSERT INTO user_mailboxes (user_id, mailbox_id) VALUES {values}");
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(user_id);
            for &id in &ids {
                query = query.bind(id);
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
        }
        tx.commit().await.map_err(StoreError::db(action))
    }
}

impl Store {
    /// What this user may see, in one query: every mailbox for an admin, the granted
    /// ones for an agent, nothing for a user who no longer exists.
    pub async fn mailbox_scope(&self, user_id: i64) -> Result<MailboxScope, StoreError> {
        let rows = sqlx::query(
            "SELECT u.role, m.mailbox_id FROM users u \
             LEFT JOIN user_mailboxes m ON m.user_id = u.id \
             WHERE u.id = $1 ORDER BY m.mailbox_id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read what a user may see"))?;
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            if Role::from_stored(&column::<String>(row, "role")?)? == Role::Admin {
                return Ok(MailboxScope::All);
            }
            if let Some(id) = column::<Option<i64>>(row, "mailbox_id")? {
                ids.push(id);
            }
        }
        Ok(MailboxScope::Only(ids))
    }

    /// Every grant, by user: for the users list, in one query.
    pub async fn user_mailbox_grants(&self) -> Result<HashMap<i64, Vec<i64>>, StoreError> {
        let rows =
            sqlx::query("SELECT user_id, mailbox_id FROM user_mailboxes ORDER BY mailbox_id")
                .fetch_all(self.pool())
                .await
                .map_err(StoreError::db("read the users' mailboxes"))?;
        let mut grants: HashMap<i64, Vec<i64>> = HashMap::new();
        for row in &rows {
            grants
                .entry(column(row, "user_id")?)
                .or_default()
                .push(column(row, "mailbox_id")?);
        }
        Ok(grants)
    }
}
