//! What the administration rules refuse, typed so each adapter can say it in its own
//! words: the API names the JSON field, the UI puts the sentence beside the form's field,
//! the CLI names the flag.

use store::StoreError;

/// The setting an error is about. [`Field::name`] is the JSON API's field name; the UI
/// and the CLI map each field to their own label or flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Name,
    Host,
    Port,
    Tls,
    Username,
    Secret,
    AuthMethod,
    Policy,
    DeleteAfterDays,
    Start,
    BatchMessages,
    BatchBytes,
    MaxSize,
    Oversize,
    CaFile,
    TrustedCertificate,
    AllowInsecureAuth,
    PollInterval,
    Email,
    DisplayName,
    Password,
    Role,
    TokenName,
    /// Days until an API token stops working.
    TokenExpiry,
    /// The address replies come from; blank turns sending off.
    SendAddress,
    SendDisplayName,
    SmtpHost,
    SmtpPort,
    SmtpTls,
    SmtpAuth,
    SmtpUsername,
    SmtpSecret,
    SmtpAllowInsecureAuth,
    /// OAuth2: `microsoft`, `google` or `generic`; blank signs in with a password.
    OAuthProvider,
    OAuthTenant,
    OAuthIssuer,
    OAuthAuthorizeUrl,
    OAuthTokenUrl,
    OAuthDeviceUrl,
    OAuthClientId,
    OAuthClientSecret,
    OAuthScopes,
    OAuthFlow,
    /// What a `[#N]` from an address new to ticket N does: join (marked) or new-ticket.
    NewAddressReference,
    /// The mailboxes an agent works (team mailboxes).
    Mailboxes,
}

impl Field {
    /// The field's name in the JSON API.
    pub fn name(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Host => "host",
            Field::Port => "port",
            Field::Tls => "tls",
            Field::Username => "username",
            Field::Secret => "password",
            Field::AuthMethod => "auth_method",
            Field::Policy => "policy",
            Field::DeleteAfterDays => "delete_after_days",
            Field::Start => "start",
            Field::BatchMessages => "batch_messages",
            Field::BatchBytes => "batch_bytes",
            Field::MaxSize => "max_size",
            Field::Oversize => "oversize",
            Field::CaFile => "ca_file",
            Field::TrustedCertificate => "trusted_certificate",
            Field::AllowInsecureAuth => "allow_insecure_auth",
            Field::PollInterval => "poll_interval_secs",
            Field::Email => "email",
            Field::DisplayName => "name",
            Field::Password => "password",
            Field::Role => "role",
            Field::TokenName => "name",
            Field::TokenExpiry => "expires_in_days",
            Field::SendAddress => "address",
            Field::SendDisplayName => "display_name",
            Field::SmtpHost => "smtp_host",
            Field::SmtpPort => "smtp_port",
            Field::SmtpTls => "smtp_tls",
            Field::SmtpAuth => "smtp_auth",
            Field::SmtpUsername => "smtp_username",
            Field::SmtpSecret => "smtp_password",
            Field::SmtpAllowInsecureAuth => "smtp_allow_insecure_auth",
            Field::OAuthProvider => "oauth_provider",
            Field::OAuthTenant => "oauth_tenant",
            Field::OAuthIssuer => "oauth_issuer",
            Field::OAuthAuthorizeUrl => "oauth_authorize_url",
            Field::OAuthTokenUrl => "oauth_token_url",
            Field::OAuthDeviceUrl => "oauth_device_url",
            Field::OAuthClientId => "oauth_client_id",
            Field::OAuthClientSecret => "oauth_client_secret",
            Field::OAuthScopes => "oauth_scopes",
            Field::OAuthFlow => "oauth_flow",
            Field::NewAddressReference => "new_address_reference",
            Field::Mailboxes => "mailboxes",
        }
    }
}

/// Why an administrative change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A setting breaks a rule. `problem` completes a sentence whose subject is the field
    /// ("must be between 1 and 100000"), so each adapter can put its own name in front.
    #[error("{} {problem}", field.name())]
    Invalid { field: Field, problem: String },
    /// The change would send the stored secret somewhere it was not meant to go (another
    /// host, port, user, TLS mode, certificate): the secret must be given again.
    #[error(
        "changing {} needs the password or token again, so the stored one is never sent where it was not meant to go",
        field.name()
    )]
    SecretRequired { field: Field },
    #[error("there is already a mailbox named {0:?}")]
    MailboxNameTaken(String),
    #[error("there is no mailbox {0}")]
    MailboxNotFound(String),
    #[error("mailbox #{mailbox_id} has no set-aside message with UIDL {uid:?}")]
    SetAsideNotFound { mailbox_id: i64, uid: String },
    #[error("there is already a user with the address {0}")]
    EmailTaken(String),
    #[error("there is no user {0}")]
    UserNotFound(String),
    #[error("there is no live API token #{0} (it may be revoked already)")]
    TokenNotFound(i64),
    /// The change would leave no admin who can sign in.
    #[error("this is the last admin who can sign in; make another user an admin first")]
    LastAdmin,
    /// "Fetch now" needs the scheduler of `popdesk serve`.
    #[error(
        "the scheduler is not running in this popdesk process, so it cannot fetch now; use `popdesk serve`, or `popdesk mailbox fetch` on the command line"
    )]
    SchedulerNotRunning,
    /// Our failure, not the caller's (the database, the disk).
    #[error(transparent)]
    Store(StoreError),
    #[error("the password could not be hashed: {0}")]
    Hashing(String),
    /// Connecting a mailbox to its OAuth2 provider did not work.
    #[error(transparent)]
    Connect(oauth::ConnectError),
}

impl AdminError {
    pub(crate) fn invalid(field: Field, problem: impl Into<String>) -> AdminError {
        AdminError::Invalid {
            field,
            problem: problem.into(),
        }
    }

    /// The field the error is about, if it is about one.
    pub fn field(&self) -> Option<Field> {
        match self {
            AdminError::Invalid { field, .. } | AdminError::SecretRequired { field } => {
                Some(*field)
            }
            AdminError::MailboxNameTaken(_) => Some(Field::Name),
            AdminError::EmailTaken(_) => Some(Field::Email),
            _ => None,
        }
    }

    /// Whether the caller can fix it by changing the input (as opposed to our failure).
    pub fn is_caller_error(&self) -> bool {
        !matches!(
            self,
            AdminError::Store(_)
                | AdminError::Hashing(_)
                | AdminError::Connect(oauth::ConnectError::Store(_))
        )
    }
}

impl From<oauth::ConnectError> for AdminError {
    fn from(error: oauth::ConnectError) -> AdminError {
        match error {
            oauth::ConnectError::Store(store) => AdminError::from(store),
            other => AdminError::Connect(other),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> AdminError {
        match error {
            StoreError::MailboxExists(name) => AdminError::MailboxNameTaken(name),
            StoreError::MailboxNotFound(id) => AdminError::MailboxNotFound(format!("#{id}")),
            StoreError::UserExists(email) => AdminError::EmailTaken(email),
            StoreError::UserNotFound(id) => AdminError::UserNotFound(format!("#{id}")),
            other => AdminError::Store(other),
        }
    }
}
