//! OAuth2 connections for mailboxes (Microsoft 365, Google, any provider by its
//! endpoints): a mailbox holds a *connection*, not a token (DESIGN.md "OAuth2
//! connections").
//!
//! - [`provider`]: presets (endpoints, scopes, extra authorize parameters). I/O-free.
//! - [`pkce`]: the flow's random values, the S256 challenge, the hashes kept of them.
//! - [`token`]: a token endpoint's answer read into a grant or a classified refusal
//!   (`invalid_grant` → needs reconnecting; a bad client → permanent; an outage →
//!   transient). I/O-free.
//! - [`client`]: the HTTP requests (reqwest).
//! - [`connection`]: [`Connections`], which intake (POP3) and outgoing mail (SMTP) ask for
//!   an access token, and which the CLI and the web use to connect a mailbox.

pub mod client;
pub mod connection;
mod error;
pub mod pkce;
pub mod provider;
pub mod token;

pub use client::{ClientAuth, DeviceAuthorization, TokenClient};
pub use connection::{AUTHORIZATION_TTL_MS, Connections, TOKEN_REFRESHES_TOTAL, describe_metrics};
pub use error::{AccessError, ConnectError};
pub use provider::{Endpoints, default_scopes, preset_endpoints};
pub use token::{TokenError, TokenGrant};
