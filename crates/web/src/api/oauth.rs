//! Connecting a mailbox to its OAuth2 provider (admin only): the authorization-code
//! flow's first step, client credentials at once, and the device flow, which goes on
//! polling in the background. The callback of the authorization-code flow is an HTML
//! page, not an API route: see `crate::oauth_callback`.
//!
//! Nothing here returns a token, a code or the client secret; the authorization URL
//! carries only the flow's `state` and PKCE challenge, which are worthless without the
//! admin's session.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use store::OAuthFlow;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::mailboxes::{MailboxView, mailbox_view};
use crate::auth::actor::{Admin, Credential};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::ApiPath;

/// What "Connect" answers: where to send the browser (authorization code), or the
/// mailbox, connected already (client credentials).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ConnectAnswer {
    Authorize(AuthorizeRedirect),
    Connected(Box<MailboxView>),
}

/// The provider's page to open in the admin's browser (this session's browser: the
/// callback checks that the same session comes back).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizeRedirect {
    pub authorize_url: String,
}

/// The code to approve at the provider (RFC 8628). popdesk polls the provider in the
/// background until it is approved or expires; the mailbox's `oauth.state` turns
/// `connected` then.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceCode {
    pub user_code: String,
    pub verification_uri: String,
    /// The verification page with the code filled in, when the provider offers it.
    pub verification_uri_complete: Option<String>,
    /// Seconds until the code expires.
    pub expires_in: u64,
}

/// The secret that binds an authorization-code flow to this browser session: the
/// stored hash of the session's token (the callback computes the same from the cookie).
/// An API token has no browser to send back, so it cannot start this flow.
pub(crate) fn session_key(admin: &Admin) -> Result<&str, ApiError> {
    match &admin.0.credential {
        Credential::Session { token_hash, .. } => Ok(token_hash),
        Credential::Token(_) => Err(ApiError::conflict(
            "connecting with the authorization-code flow needs a signed-in browser session: the provider sends that browser back to popdesk; use the mailbox page, or the device-code flow (POST /api/v1/mailboxes/{id}/oauth/device)",
        )),
    }
}

/// "Connect": for the authorization-code flow the provider's URL to open in this
/// session's browser (the provider sends it back to `{public_url}/oauth/callback`, which
/// stores the tokens); for client credentials the first app-only token now. A
/// device-code mailbox connects with `POST .../oauth/device`.
#[utoipa::path(
    post, path = "/api/v1/mailboxes/{id}/oauth/connect", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 200, description = "The provider's authorization URL, or the mailbox connected (client credentials)", body = ConnectAnswer),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
        (status = 409, description = "It cannot be connected this way: not an OAuth2 mailbox, no public_url, no authorization endpoint, an API token instead of a browser session, or the provider refused", body = ErrorBody),
    )
)]
pub async fn connect(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ConnectAnswer>> {
    let mailbox = state.admin().mailbox(id).await?;
    let flow = mailbox.settings.oauth.as_ref().map(|o| o.flow);
    match flow {
        Some(OAuthFlow::ClientCredentials) => {
            let mailbox = state.admin().connect_app(id).await?;
            Ok(Json(ConnectAnswer::Connected(Box::new(
                mailbox_view(&state, mailbox).await?,
            ))))
        }
        Some(OAuthFlow::DeviceCode) => Err(ApiError::conflict(
            "this mailbox connects with the device-code flow: POST /api/v1/mailboxes/{id}/oauth/device",
        )),
        _ => {
            let key = session_key(&admin)?;
            let public_url = state.config().public_url.as_ref().map(|u| u.as_str());
            let authorize_url = state
                .admin()
                .begin_oauth_connect(id, key, public_url)
                .await?;
            Ok(Json(ConnectAnswer::Authorize(AuthorizeRedirect {
                authorize_url,
            })))
        }
    }
}

/// Starts the device-code flow: the code to approve at the provider's page. popdesk
/// polls the provider in the background and stores the tokens once the code is
/// approved (the mailbox's `oauth.state` becomes `connected`); a code that expires
/// unapproved leaves the mailbox as it was, with a line in the log.
#[utoipa::path(
    post, path = "/api/v1/mailboxes/{id}/oauth/device", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 200, description = "The code to approve, and where", body = DeviceCode),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
        (status = 409, description = "Not an OAuth2 mailbox, no device endpoint, or the provider refused", body = ErrorBody),
    )
)]
pub async fn device(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<DeviceCode>> {
    Ok(Json(start_device(&state, id).await?))
}

/// Starts the device flow and leaves a task polling for its approval.
pub(crate) async fn start_device(
    state: &AppState,
    id: i64,
) -> Result<DeviceCode, admin::AdminError> {
    let (mailbox, device) = state.admin().start_device_connect(id).await?;
    let answer = DeviceCode {
        user_code: device.user_code.clone(),
        verification_uri: device.verification_uri.clone(),
        verification_uri_complete: device.verification_uri_complete.clone(),
        expires_in: device.expires_in_secs,
    };
    let admin = state.admin().clone();
    tokio::spawn(async move {
        let name = mailbox.settings.name.clone();
        match admin.finish_device_connect(&mailbox, &device).await {
            Ok(_) => {
                tracing::info!(mailbox = %name, "device code approved; the mailbox is connected")
            }
            Err(error) => {
                tracing::warn!(mailbox = %name, %error, "the device-code flow started on the web did not connect the mailbox");
            }
        }
    });
    Ok(answer)
}
