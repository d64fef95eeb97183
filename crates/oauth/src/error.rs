//! Why a connection could not give a token or could not be made, in words an admin can
//! act on, and which of them heal by themselves.

use store::StoreError;

use crate::token::TokenError;

/// Why no access token could be had for a mailbox.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "the mailbox is not connected to its OAuth2 provider yet; connect it (Connect on the mailbox's page)"
    )]
    NotConnected,
    #[error(
        "the mailbox needs reconnecting: its OAuth2 provider refused the stored grant (revoked, expired unused, or the password changed); connect it again (Reconnect on the mailbox's page)"
    )]
    NeedsReconnecting,
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error(
        "another popdesk worker is renewing this mailbox's OAuth2 token and has not finished; popdesk tries again later"
    )]
    RefreshBusy,
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl AccessError {
    /// Whether trying again later may help without an admin.
    pub fn is_transient(&self) -> bool {
        match self {
            AccessError::NotConnected | AccessError::NeedsReconnecting => false,
            AccessError::Token(error) => error.is_transient(),
            AccessError::RefreshBusy | AccessError::Store(_) => true,
        }
    }
}

/// Why connecting (any of the three flows) did not work.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "this mailbox does not sign in with OAuth2; set its OAuth2 provider and client id first"
    )]
    NotOAuth,
    #[error(
        "the provider has no device-code endpoint for this mailbox; connect from the mailbox page in the browser instead"
    )]
    NoDeviceEndpoint,
    #[error(
        "the provider has no authorization endpoint for this mailbox; use the device-code flow"
    )]
    NoAuthorizeEndpoint,
    #[error(
        "public_url is not set, so the provider cannot send the browser back to popdesk; set public_url (the address admins open popdesk at) and register {{public_url}}/oauth/callback with the provider"
    )]
    NoPublicUrl,
    #[error(
        "this sign-in answer is unknown or was already used; start again with Connect on the mailbox page"
    )]
    UnknownState,
    #[error("this sign-in took too long and expired; start again with Connect on the mailbox page")]
    ExpiredState,
    #[error(
        "this sign-in was started from another browser session; start again with Connect on the mailbox page, signed in as yourself"
    )]
    ForeignSession,
    #[error("the provider did not grant access ({code}{}); start again with Connect on the mailbox page", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        code: String,
        description: Option<String>,
    },
    #[error("the code was not approved before it expired; run the command again")]
    DeviceExpired,
    #[error("the issuer's discovery document could not be used: {0}")]
    Discovery(String),
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}
