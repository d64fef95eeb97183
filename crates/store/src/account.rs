//! The people who work in popdesk: users with a role, their sign-in sessions and the API
//! tokens admins hand out.
//!
//! The store never sees a password or a token in clear: callers pass an argon2id PHC
//! string for passwords and a hash (sha256) for session and API tokens, so a copy of the
//! database lets nobody sign in. [`User`] does not carry the password hash; only
//! [`Store::user_password_hash`] reads it, for the sign-in check.

use serde::Serialize;
use sqlx::any::AnyRow;

use crate::text::{column, text_enum};
use crate::{Store, StoreError};

/// What a user (or an API token) may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything: mailboxes, users, tokens, failed messages.
    Admin,
    /// Reads and works tickets.
    Agent,
}
text_enum!(Role, "role", { Admin => "admin", Agent => "agent" });

/// A person who signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    /// Trimmed and lower-cased.
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    /// A disabled user cannot sign in and their sessions stop working.
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    /// How the user appears in a ticket's history.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) if !name.trim().is_empty() => format!("{name} <{}>", self.email),
            _ => self.email.clone(),
        }
    }
}

/// An API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The token's first characters, to tell tokens apart in a list.
    pub prefix: String,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When it stops working; `None` for a token that does not expire.
    pub expires_at: Option<i64>,
}

/// Addresses compare case-insensitively; they are stored in one form.
pub(crate) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

const USER_COLUMNS: &str = "id, email, name, role, disabled, created_at, updated_at";
const TOKEN_COLUMNS: &str =
    "id, name, role, prefix, created_by, created_at, last_used_at, revoked_at, expires_at";

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: column(row, "id")?,
        email: column(row, "email")?,
        name: column(row, "name")?,
        role: Role::from_stored(&column::<String>(row, "role")?)?,
        disabled: column::<i64>(row, "disabled")? != 0,
        created_at: column(row, "created_at")?,
        updated_at: column(row, "updated_at")?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: column(row, "id")?,
        name: column(row, "name")?,
        role: Role::from_stored(&column::<String>(row, "role")?)?,
        prefix: column(row, "prefix")?,
        created_by: column(row, "created_by")?,
        created_at: column(row, "created_at")?,
        last_used_at: column(row, "last_used_at")?,
        revoked_at: column(row, "revoked_at")?,
        expires_at: column(row, "expires_at")?,
    })
}

impl Store {
    /// Adds a user. An address that already has an account gives
    /// [`StoreError::UserExists`].
    pub async fn create_user(
        &self,
        email: &str,
        name: Option<&str>,
        role: Role,
        password_hash: &str,
        now: i64,
    ) -> Result<User, StoreError> {
        let email = normalize_email(email);
        let sql = format!(
            "INSERT INTO users (email, name, role, password_hash, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $5) ON CONFLICT (email) DO NOTHING \
             RETURNING {USER_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&email)
            .bind(name)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("add the user"))?;
        match row {
            Some(row) => user_from_row(&row),
            None => Err(StoreError::UserExists(email)),
        }
    }

    /// Adds the first admin, only while no user exists at all: two people racing through
    /// the setup page cannot both become admin. `None` when a user already exists.
    pub async fn create_first_admin(
        &self,
        email: &str,
        name: Option<&str>,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        let email = normalize_email(email);
        let sql = format!(
            "INSERT INTO users (email, name, role, password_hash, disabled, created_at, updated_at) \
             SELECT $1, $2, 'admin', $3, 0, $4, $4 WHERE NOT EXISTS (SELECT 1 FROM users) \
             ON CONFLICT (email) DO NOTHING RETURNING {USER_COLUMNS}"
        );
        // SQLite serialises writers; on PostgreSQL two concurrent inserts could both see
        // an empty table, so the table is locked for the statement's transaction.
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(StoreError::db("add the first admin"))?;
        if self.backend() == crate::Backend::Postgres {
            sqlx::query("LOCK TABLE users IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("add the first admin"))?;
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&email)
            .bind(name)
            .bind(password_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("add the first admin"))?;
        tx.commit()
            .await
            .map_err(StoreError::db("add the first admin"))?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// How many users exist (zero means the setup page is open).
    pub async fn count_users(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("count the users"))?;
        Ok(crate::text::from_db(column(&row, "n")?))
    }

    /// Every user, by address.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY email");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("list the users"))?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read a user"))?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user with this address (compared case-insensitively).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(normalize_email(email))
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read a user"))?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user's argon2id PHC string, for checking a sign-in.
    pub async fn user_password_hash(&self, id: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read a user's password hash"))?;
        row.as_ref()
            .map(|row| column(row, "password_hash"))
            .transpose()
    }

    /// Changes a user's name, role and whether they may sign in. Disabling a user also
    /// ends their sessions.
    pub async fn update_user(
        &self,
        id: i64,
        name: Option<&str>,
        role: Role,
        disabled: bool,
        now: i64,
    ) -> Result<User, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET name = $1, role = $2, disabled = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(i64::from(disabled))
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("update the user"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UserNotFound(id));
        }
        if disabled {
            self.delete_user_sessions(id).await?;
        }
        self.user_by_id(id)
            .await?
            .ok_or(StoreError::UserNotFound(id))
    }

    /// Replaces a user's password hash and ends their other sessions.
    pub async fn set_user_password(
        &self,
        id: i64,
        password_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(password_hash)
                .bind(now)
                .bind(id)
                .execute(self.pool())
                .await
                .map_err(StoreError::db("change the user's password"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UserNotFound(id));
        }
        self.delete_user_sessions(id).await?;
        Ok(())
    }

    /// Removes a user and their sessions, and revokes the API tokens they made (in the
    /// same transaction: a token must not outlive the person who answers for it, and
    /// once the user is gone nothing tells their tokens from tokens made by the CLI);
    /// their notes keep the author's name.
    pub async fn delete_user(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let action = "remove the user";
        let mut tx = self.pool().begin().await.map_err(StoreError::db(action))?;
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE created_by = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a new sign-in session under the hash of its token.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_sessions (token_hash, user_id, created_at, expires_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $3)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("start a session"))?;
        Ok(())
    }

    /// The user a session token hash belongs to; `None` when the session is unknown,
    /// expired, unused for `idle_timeout_ms`, or its user is disabled. Marks the session
    /// used at most once a minute (so the idle timeout is exact to a minute): a write
    /// per page would make every read a write.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now: i64,
        idle_timeout_ms: i64,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {}, s.last_seen_at AS session_seen_at FROM user_sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 \
             AND u.disabled = 0",
            USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(now)
            .bind(now.saturating_sub(idle_timeout_ms))
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("read a session"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = user_from_row(&row)?;
        let seen_at: i64 = column(&row, "session_seen_at")?;
        if now - seen_at >= 60_000 {
            sqlx::query("UPDATE user_sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(token_hash)
                .execute(self.pool())
                .await
                .map_err(StoreError::db("record a session's use"))?;
        }
        Ok(Some(user))
    }

    /// Ends one session (sign out).
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM user_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("end a session"))?;
        Ok(())
    }

    /// Ends every session of a user; how many there were.
    pub async fn delete_user_sessions(&self, user_id: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM user_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(self.pool())
            .await
            .map_err(StoreError::db("end a user's sessions"))?;
        Ok(done.rows_affected())
    }

    /// Forgets sessions past their expiry or unused for `idle_timeout_ms`; how many.
    pub async fn delete_expired_sessions(
        &self,
        now: i64,
        idle_timeout_ms: i64,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM user_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
                .bind(now)
                .bind(now.saturating_sub(idle_timeout_ms))
                .execute(self.pool())
                .await
                .map_err(StoreError::db("remove expired sessions"))?;
        Ok(done.rows_affected())
    }

    /// Records a new API token under its hash; `expires_at` is `None` for a token that
    /// does not expire.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_api_token(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
        prefix: &str,
        created_by: Option<i64>,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<ApiToken, StoreError> {
        let sql = format!(
            "INSERT INTO api_tokens (name, role, token_hash, prefix, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {TOKEN_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(role.as_str())
            .bind(token_hash)
            .bind(prefix)
            .bind(created_by)
            .bind(now)
            .bind(expires_at)
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("create the API token"))?;
        token_from_row(&row)
    }

    /// Every API token, revoked ones included, newest first.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id DESC");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("list the API tokens"))?;
        rows.iter().map(token_from_row).collect()
    }

    /// The live token with this hash: not revoked, not expired, and not made by a user
    /// who is now disabled. Its role is what it may do now: never more than its maker's
    /// (an admin's token made before they became an agent acts as an agent). Marks it
    /// used, at most once a minute: a write per API request would make every read a write.
    pub async fn api_token_by_hash(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<ApiToken>, StoreError> {
        let columns = TOKEN_COLUMNS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        // A token made by the CLI or by another token has no maker (NULL) and keeps its
        // own role; a deleted maker's tokens were revoked with them.
        let sql = format!(
            "SELECT {columns}, u.role AS maker_role FROM api_tokens t \
             LEFT JOIN users u ON u.id = t.created_by \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL \
             AND (t.expires_at IS NULL OR t.expires_at > $2) \
             AND (t.created_by IS NULL OR u.disabled = 0)"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("check an API token"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut token = token_from_row(&row)?;
        if let Some(maker_role) = column::<Option<String>>(&row, "maker_role")?
            && Role::from_stored(&maker_role)? == Role::Agent
        {
            token.role = Role::Agent;
        }
        if token.last_used_at.is_none_or(|used| now - used >= 60_000) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(token.id)
                .execute(self.pool())
                .await
                .map_err(StoreError::db("record an API token's use"))?;
            token.last_used_at = Some(now);
        }
        Ok(Some(token))
    }

    /// Revokes a token; false when there is no live token with this id.
    pub async fn revoke_api_token(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("revoke the API token"))?;
        Ok(done.rows_affected() > 0)
    }
}
