//! OAuth2 in the browser: "Connect"/"Reconnect" on the mailbox page, the device-code
//! variant, and the provider's redirect back, `GET /oauth/callback`.
//!
//! The authorization-code flow is bound to the admin's browser session: "Connect" hands
//! the session's key (the stored hash of its cookie) to the flow, and the callback must
//! come back in the same session. A callback without a session stores nothing and says
//! to sign in and start again. Code, state and tokens never appear in a page or a log
//! line (the request span carries the path only).

use admin::AdminError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use store::{Mailbox, OAuthFlow, OAuthProvider, OAuthState};

use crate::AppState;
use crate::auth::Credential;
use crate::auth::actor::identify;
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, NoFields, PagePath, PageQuery};
use crate::ui::page::{self, ErrorPage, Layout, Section};
use crate::ui::viewer::{AdminViewer, Viewer, form_token};

/// The provider by name, as sentences say it: "Connected to Microsoft 365".
pub(crate) fn provider_name(mailbox: &Mailbox) -> String {
    let Some(o) = mailbox.settings.oauth.as_ref() else {
        return String::new();
    };
    match o.provider {
        OAuthProvider::Microsoft => "Microsoft 365".to_string(),
        OAuthProvider::Google => "Google".to_string(),
        OAuthProvider::Generic => o
            .issuer
            .as_deref()
            .or(o.authorize_url.as_deref())
            .unwrap_or(&o.token_url)
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("the provider")
            .to_string(),
    }
}

/// The secret binding a flow to the viewer's browser session: the stored hash of its
/// session token. None for an API token, which has no browser to come back.
fn session_key(viewer: &Viewer) -> Option<&str> {
    match &viewer.actor.credential {
        Credential::Session { token_hash, .. } => Some(token_hash),
        Credential::Token(_) => None,
    }
}

/// "Connect" / "Reconnect": to the provider's sign-in page (authorization code), or
/// the first app-only token now (client credentials).
pub(crate) async fn connect(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    let back = format!("/mailboxes/{id}");
    let mailbox = match state.admin().mailbox(id).await {
        Ok(mailbox) => mailbox,
        Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
    };
    let refused = |error: AdminError| match error {
        error if error.is_caller_error() => page::see_other_with(
            &state,
            &back,
            Flash::failed(crate::ui::display::sentence(&error.to_string())),
        ),
        error => page::api_error(&state, Some(&viewer), &error.into()),
    };
    if mailbox.settings.oauth.as_ref().map(|o| o.flow) == Some(OAuthFlow::ClientCredentials) {
        return match state.admin().connect_app(id).await {
            Ok(mailbox) => page::see_other_with(
                &state,
                &back,
                Flash::done(format!(
                    "Connected to {} (app-only); fetching resumes.",
                    provider_name(&mailbox)
                )),
            ),
            Err(error) => refused(error),
        };
    }
    let Some(key) = session_key(&viewer) else {
        return page::forbidden(
            &state,
            Some(&viewer),
            "Connecting needs a signed-in browser: the provider sends it back to popdesk.",
        );
    };
    let public_url = state.config().public_url.as_ref().map(|u| u.as_str());
    match state.admin().begin_oauth_connect(id, key, public_url).await {
        // To the provider: the browser comes back to /oauth/callback.
        Ok(authorize_url) => page::see_other(&authorize_url),
        Err(error) => refused(error),
    }
}

/// The device-code variant: the code and where to enter it, on the mailbox page;
/// popdesk polls the provider in the background until it is approved.
pub(crate) async fn device(
    State(state): State<AppState>,
    AdminViewer(viewer): AdminViewer,
    PagePath(id): PagePath<i64>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    let back = format!("/mailboxes/{id}");
    match crate::api::oauth::start_device(&state, id).await {
        Ok(code) => {
            let mailbox = match state.admin().mailbox(id).await {
                Ok(mailbox) => mailbox,
                Err(error) => return page::api_error(&state, Some(&viewer), &error.into()),
            };
            super::mailboxes::device_page(&state, &viewer, mailbox, code).await
        }
        Err(error) if error.is_caller_error() => page::see_other_with(
            &state,
            &back,
            Flash::failed(crate::ui::display::sentence(&error.to_string())),
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error.into()),
    }
}

/// The provider's redirect back, as RFC 6749 section 4.1.2 defines it. Every field is
/// optional here: a provider that leaves one out gets a sentence, not a parse error.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /oauth/callback`: stores the tokens and goes to the mailbox page, or says why
/// not (400) and stores nothing.
pub(crate) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageQuery(query): PageQuery<CallbackQuery>,
) -> Response {
    let actor = match identify(&state, &headers).await {
        Ok(actor) => actor,
        Err(error) => return page::api_error(&state, None, &error),
    };
    let viewer = actor.map(|actor| Viewer {
        actor,
        form_token: form_token(&headers).unwrap_or_default(),
        flash: None,
    });
    let Some(viewer) = viewer.filter(|v| session_key(v).is_some()) else {
        // Nothing is taken or stored: the state stays unused until it expires.
        return refusal(
            &state,
            None,
            StatusCode::UNAUTHORIZED,
            "You are not signed in to popdesk in this browser, so this sign-in at the provider cannot be used. Sign in, open the mailbox and press Connect again.",
        );
    };
    if !viewer.is_admin() {
        return refusal(
            &state,
            Some(&viewer),
            StatusCode::FORBIDDEN,
            "Only an admin can connect a mailbox. Nothing was stored.",
        );
    }
    let Some(flow_state) = query.state.as_deref().filter(|s| !s.is_empty()) else {
        return refusal(
            &state,
            Some(&viewer),
            StatusCode::BAD_REQUEST,
            "This address is missing the provider's answer (it has no state). Open the mailbox and press Connect again.",
        );
    };
    let provider_error = query
        .error
        .as_deref()
        .filter(|e| !e.is_empty())
        .map(|e| (e, query.error_description.as_deref()));
    let key = session_key(&viewer).unwrap_or_default();
    match state
        .admin()
        .finish_oauth_connect(flow_state, query.code.as_deref(), provider_error, key)
        .await
    {
        Ok(mailbox) => page::see_other_with(
            &state,
            &format!("/mailboxes/{}", mailbox.id),
            Flash::done(format!(
                "Connected to {}; fetching resumes.",
                provider_name(&mailbox)
            )),
        ),
        Err(oauth::ConnectError::Store(error)) => {
            page::api_error(&state, Some(&viewer), &error.into())
        }
        Err(error) => refusal(
            &state,
            Some(&viewer),
            StatusCode::BAD_REQUEST,
            crate::ui::display::sentence(&error.to_string()),
        ),
    }
}

/// The page that says why the connection was not made.
fn refusal(
    state: &AppState,
    viewer: Option<&Viewer>,
    status: StatusCode,
    message: impl Into<String>,
) -> Response {
    let title = "The mailbox was not connected";
    let layout = match viewer {
        Some(viewer) => Layout::signed_in(viewer, title, Section::Mailboxes),
        None => Layout::public(title, None),
    };
    page::show(
        state,
        status,
        ErrorPage {
            layout,
            message: message.into(),
        },
    )
}

/// How the mailbox page shows the connection.
pub(crate) struct OAuthSummary {
    pub(crate) provider: String,
    /// `not-connected`, `connected`, `needs-reconnecting`, for markup and tests.
    pub(crate) state: &'static str,
    /// The state in words.
    pub(crate) state_text: &'static str,
    pub(crate) flow: &'static str,
    pub(crate) client_id: String,
    pub(crate) scopes: String,
    /// "Connect" takes the browser to the provider (authorization code).
    pub(crate) browser_flow: bool,
    /// The device-code variant is offered (the provider has a device endpoint).
    pub(crate) device_flow: bool,
    /// Client credentials: "Connect" gets an app-only token now.
    pub(crate) app_only: bool,
    /// The button's text: "Connect", "Reconnect" or "Connect again".
    pub(crate) connect_label: &'static str,
    /// `{public_url}/oauth/callback`; None while public_url is not set.
    pub(crate) redirect_uri: Option<String>,
    /// The origin of the authorization endpoint: the page's forms may go there.
    pub(crate) authorize_origin: Option<String>,
}

impl OAuthSummary {
    pub(crate) fn new(mailbox: &Mailbox, state: &AppState) -> Option<OAuthSummary> {
        let o = mailbox.settings.oauth.as_ref()?;
        let connection = mailbox.oauth_state.unwrap_or_default();
        let (state_name, state_text) = match connection {
            OAuthState::NotConnected => ("not-connected", "Not connected"),
            OAuthState::Connected => ("connected", "Connected"),
            OAuthState::NeedsReconnecting => ("needs-reconnecting", "Needs reconnecting"),
        };
        Some(OAuthSummary {
            provider: provider_name(mailbox),
            state: state_name,
            state_text,
            flow: match o.flow {
                OAuthFlow::AuthorizationCode => "In the browser (authorization code)",
                OAuthFlow::DeviceCode => "With a code (device code)",
                OAuthFlow::ClientCredentials => "App-only (client credentials)",
            },
            client_id: o.client_id.clone(),
            scopes: o.scope(),
            browser_flow: o.flow == OAuthFlow::AuthorizationCode && o.authorize_url.is_some(),
            // Google's device flow does not grant the mail scope: Gmail connects in the
            // browser.
            device_flow: o.flow != OAuthFlow::ClientCredentials
                && o.device_url.is_some()
                && o.provider != OAuthProvider::Google,
            app_only: o.flow == OAuthFlow::ClientCredentials,
            connect_label: match connection {
                OAuthState::NotConnected => "Connect",
                OAuthState::NeedsReconnecting => "Reconnect",
                OAuthState::Connected => "Connect again",
            },
            redirect_uri: state
                .config()
                .public_url
                .as_ref()
                .map(crate::PublicUrl::redirect_uri),
            authorize_origin: o
                .authorize_url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .map(|u| u.origin().ascii_serialization())
                .filter(|origin| origin != "null"),
        })
    }
}

/// The device code as the mailbox page shows it.
pub(crate) struct DeviceShown {
    pub(crate) user_code: String,
    pub(crate) verification_uri: String,
    pub(crate) verification_uri_complete: Option<String>,
    pub(crate) minutes: u64,
}

impl From<crate::api::oauth::DeviceCode> for DeviceShown {
    fn from(code: crate::api::oauth::DeviceCode) -> DeviceShown {
        DeviceShown {
            user_code: code.user_code,
            verification_uri: code.verification_uri,
            verification_uri_complete: code.verification_uri_complete,
            minutes: code.expires_in.div_ceil(60),
        }
    }
}
