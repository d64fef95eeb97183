//! People who sign in: the rules for addresses, names and passwords, and "there is
//! always an admin who can sign in".

use secrecy::{ExposeSecret as _, SecretString};
use store::{Role, StoreError, User};

use crate::Administration;
use crate::error::{AdminError, Field};
use crate::password::{self, PasswordError};

/// RFC 5321's limit on an address.
pub const MAX_EMAIL_LEN: usize = 254;
/// A display name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Checks an address enough to catch typos: one `@` with text on both sides, no spaces.
/// Returns it trimmed.
pub fn check_email(email: &str) -> Result<String, AdminError> {
    let email = email.trim();
    let valid = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if valid {
        Ok(email.to_string())
    } else {
        Err(AdminError::invalid(
            Field::Email,
            "is not a valid address (it needs the form name@example.com)",
        ))
    }
}

/// A display name: trimmed, empty means none.
pub fn check_name(name: Option<&str>) -> Result<Option<String>, AdminError> {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > MAX_NAME_CHARS) {
        return Err(AdminError::invalid(
            Field::DisplayName,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    // PostgreSQL's text columns refuse U+0000, and no name needs a control character.
    if name.is_some_and(|n| n.chars().any(char::is_control)) {
        return Err(AdminError::invalid(
            Field::DisplayName,
            "must not contain control characters",
        ));
    }
    Ok(name.map(str::to_string))
}

/// A role as typed: `admin` or `agent`.
pub fn parse_role(role: &str) -> Result<Role, AdminError> {
    match role.trim().to_ascii_lowercase().as_str() {
        "admin" => Ok(Role::Admin),
        "agent" => Ok(Role::Agent),
        _ => Err(AdminError::invalid(
            Field::Role,
            "must be one of: admin, agent",
        )),
    }
}

fn password_error(error: PasswordError) -> AdminError {
    match error {
        PasswordError::TooShort | PasswordError::TooLong => {
            let text = error.to_string();
            let problem = text
                .strip_prefix("the password ")
                .unwrap_or(&text)
                .to_string();
            AdminError::invalid(Field::Password, problem)
        }
        PasswordError::Hash(detail) => AdminError::Hashing(detail),
    }
}

/// A new user.
#[derive(Debug)]
pub struct NewUser {
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub password: SecretString,
}

/// Changes to a user: only what is given changes; `name: Some(None)` clears the name.
#[derive(Debug, Default)]
pub struct UserChange {
    pub name: Option<Option<String>>,
    pub role: Option<Role>,
    /// Disabling also ends the user's sessions.
    pub disabled: Option<bool>,
    /// A new password; ends the user's sessions.
    pub password: Option<SecretString>,
    /// The mailboxes the user works, replacing those they had (by id). They decide
    /// what an agent sees; an admin sees every mailbox whatever is granted here.
    pub mailboxes: Option<Vec<i64>>,
}

impl Administration {
    /// Checks the password rules and hashes it on a blocking thread (argon2 takes tens of
    /// milliseconds of CPU on purpose).
    pub async fn hash_password(&self, password: &SecretString) -> Result<String, AdminError> {
        password::check_password(password.expose_secret()).map_err(password_error)?;
        let password = password.clone();
        let cost = self.password_cost;
        tokio::task::spawn_blocking(move || {
            password::hash_password_with(password.expose_secret(), cost)
        })
        .await
        .map_err(|join| AdminError::Hashing(join.to_string()))?
        .map_err(password_error)
    }

    /// The user with this id.
    pub async fn user(&self, id: i64) -> Result<User, AdminError> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or_else(|| AdminError::UserNotFound(format!("#{id}")))
    }

    /// The user with this address.
    pub async fn user_by_email(&self, email: &str) -> Result<User, AdminError> {
        self.store
            .user_by_email(email.trim())
            .await?
            .ok_or_else(|| AdminError::UserNotFound(email.trim().to_string()))
    }

    /// Adds a user.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, AdminError> {
        let email = check_email(&new.email)?;
        let name = check_name(new.name.as_deref())?;
        let hash = self.hash_password(&new.password).await?;
        let user = self
            .store
            .create_user(&email, name.as_deref(), new.role, &hash, self.now())
            .await?;
        tracing::info!(user_id = user.id, role = %user.role, "user added");
        Ok(user)
    }

    /// Adds the first admin, only while nobody has an account: `None` once someone does.
    pub async fn create_first_admin(
        &self,
        email: &str,
        name: Option<&str>,
        password: &SecretString,
    ) -> Result<Option<User>, AdminError> {
        let email = check_email(email)?;
        let name = check_name(name)?;
        let hash = self.hash_password(password).await?;
        Ok(self
            .store
            .create_first_admin(&email, name.as_deref(), &hash, self.now())
            .await?)
    }

    /// Would the admins who can sign in be none after `user` became `role`/`disabled`?
    async fn leaves_no_admin(
        &self,
        user: &User,
        role: Role,
        disabled: bool,
    ) -> Result<bool, AdminError> {
        let was_active_admin = user.role == Role::Admin && !user.disabled;
        let stays_active_admin = role == Role::Admin && !disabled;
        if !was_active_admin || stays_active_admin {
            return Ok(false);
        }
        let others = self
            .store
            .users()
            .await?
            .iter()
            .filter(|u| u.id != user.id && u.role == Role::Admin && !u.disabled)
            .count();
        Ok(others == 0)
    }

    /// Changes a user. The last admin who can sign in cannot be demoted or disabled.
    pub async fn update_user(&self, id: i64, change: &UserChange) -> Result<User, AdminError> {
        let user = self.user(id).await?;
        let name = match &change.name {
            Some(name) => check_name(name.as_deref())?,
            None => user.name.clone(),
        };
        let role = change.role.unwrap_or(user.role);
        let disabled = change.disabled.unwrap_or(user.disabled);
        if self.leaves_no_admin(&user, role, disabled).await? {
            return Err(AdminError::LastAdmin);
        }
        // Hash before writing anything, so a refused password changes nothing.
        let hash = match &change.password {
            Some(password) => Some(self.hash_password(password).await?),
            None => None,
        };
        // First of the writes: a mailbox that does not exist refuses the whole change.
        if let Some(mailboxes) = &change.mailboxes {
            self.store
                .set_user_mailboxes(id, mailboxes)
                .await
                .map_err(|error| match error {
                    StoreError::MailboxNotFound(mailbox) => AdminError::invalid(
                        Field::Mailboxes,
                        format!("names mailbox #{mailbox}, which does not exist"),
                    ),
                    other => AdminError::from(other),
                })?;
            tracing::info!(user_id = id, mailboxes = ?mailboxes, "user's mailboxes set");
        }
        let now = self.now();
        let user = self
            .store
            .update_user(id, name.as_deref(), role, disabled, now)
            .await?;
        if let Some(hash) = hash {
            self.store.set_user_password(id, &hash, now).await?;
        }
        Ok(user)
    }

    /// Removes a user and their sessions, and revokes their API tokens; the last admin
    /// cannot be removed.
    pub async fn remove_user(&self, id: i64) -> Result<User, AdminError> {
        let user = self.user(id).await?;
        if self.leaves_no_admin(&user, Role::Agent, true).await? {
            return Err(AdminError::LastAdmin);
        }
        if !self.store.delete_user(id, self.now()).await? {
            return Err(AdminError::UserNotFound(format!("#{id}")));
        }
        tracing::info!(user_id = id, "user removed");
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_one_at_with_text_on_both_sides() {
        assert_eq!(
            check_email(" Ann@Example.com ").ok().as_deref(),
            Some("Ann@Example.com")
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "a b@example.com",
            "a@b@c",
        ] {
            assert_eq!(
                check_email(bad).err().and_then(|e| e.field()),
                Some(Field::Email),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn blank_names_are_no_name_and_long_ones_are_refused() {
        assert_eq!(check_name(Some("  ")).ok(), Some(None));
        assert!(check_name(Some(&"x".repeat(201))).is_err());
        assert!(check_name(Some("Ann\0Admin")).is_err());
    }

    #[test]
    fn short_passwords_are_refused_before_hashing() {
        let error = password_error(PasswordError::TooShort);
        assert_eq!(error.field(), Some(Field::Password));
        assert_eq!(
            error.to_string(),
            "password must be at least 10 characters long"
        );
    }
}
