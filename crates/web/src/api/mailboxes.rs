//! Mailboxes (admin only): create, read, update, delete, test the connection, test
//! sending, fetch now, the fetch history. The passwords or tokens (POP3's and SMTP's own)
//! are write-only: no response carries them.
//!
//! An adapter over [`admin::Administration`]: the request becomes a
//! [`MailboxChange`], the service's refusal a 422 naming the field.

use admin::{ConnectionReport, MailboxChange};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use intake::schedule::MailboxSchedule;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use store::{AuthMethod, FetchRun, Mailbox, Oversize, Policy, SmtpAuth, StartMode, TlsMode};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::{self, ApiJson, ApiPath, ApiQuery};

/// A text choice in the OpenAPI document, listing the values the service accepts (from
/// the settings model itself, so the document cannot drift from the rules).
fn choice_schema(description: &str, values: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values.iter().copied()))
        .into()
}

/// A choice that may also be null (`schema_with` takes no `nullable`, so it is spelled
/// here): `{"type": ["string", "null"], "enum": [..., null]}`.
fn nullable(schema: RefOr<Schema>) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(object)) = schema else {
        return schema;
    };
    let mut values = object.enum_values.clone().unwrap_or_default();
    values.push(serde_json::Value::Null);
    let mut builder =
        ObjectBuilder::from(object).schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]));
    builder = builder.enum_values(Some(values));
    builder.into()
}

/// `nullable_X_schema`: the choice `X_schema` or null, for request fields where null
/// means "leave as it is" (utoipa's `schema_with` wants a function per schema).
macro_rules! nullable_schemas {
    ($($nullable:ident => $schema:ident),+ $(,)?) => {
        $(fn $nullable() -> RefOr<Schema> {
            nullable($schema())
        })+
    };
}

nullable_schemas!(
    nullable_oauth_provider_schema => oauth_provider_schema,
    nullable_smtp_tls_schema => smtp_tls_schema,
    nullable_smtp_auth_schema => smtp_auth_schema,
    nullable_auth_schema => auth_schema,
    nullable_new_address_reference_schema => new_address_reference_schema,
    nullable_oauth_flow_schema => oauth_flow_schema,
    nullable_oversize_schema => oversize_schema,
    nullable_policy_schema => policy_schema,
    nullable_start_schema => start_schema,
    nullable_tls_schema => tls_schema,
);

fn tls_schema() -> RefOr<Schema> {
    choice_schema(
        "implicit: TLS from the first byte (port 995); starttls: plain upgraded with STLS (port 110), refused if not offered; none: no encryption",
        TlsMode::NAMES,
    )
}

fn notice_kind_schema() -> RefOr<Schema> {
    choice_schema(
        "kept_after_delete: messages popdesk deleted (DELE and QUIT answered +OK) are listed again under the same UIDL; reoffered_under_new_uidl: messages already stored are offered again under new UIDLs (recognised by content); no_uidl: the server gives no UIDL; duplicate_uidls: one listing gives one UIDL to several messages",
        store::NoticeKind::NAMES,
    )
}

fn provider_schema() -> RefOr<Schema> {
    choice_schema(
        "Whose words the notices use, by the POP3 host",
        &["gmail", "microsoft365", "other"],
    )
}

fn oauth_provider_schema() -> RefOr<Schema> {
    choice_schema(
        "Who issues the OAuth2 tokens: microsoft (Microsoft 365, by tenant), google, or generic (any provider, by its issuer or endpoints)",
        store::OAuthProvider::NAMES,
    )
}

fn new_address_reference_schema() -> RefOr<Schema> {
    choice_schema(
        "Mail whose subject names a ticket ([#N]) from an address that never took part in it and replying to none of its messages: join (added marked \"from a new address\", reopens nothing) or new-ticket (opens its own ticket)",
        store::NewAddressReference::NAMES,
    )
}

fn oauth_flow_schema() -> RefOr<Schema> {
    choice_schema(
        "How the mailbox is connected: authorization-code (Connect in the browser, PKCE), device-code (a code approved at the provider), client-credentials (app-only, no user)",
        store::OAuthFlow::NAMES,
    )
}

fn oauth_state_schema() -> RefOr<Schema> {
    choice_schema(
        "not-connected: connect it (POST .../oauth/connect or .../oauth/device); connected: it gets and renews tokens by itself; needs-reconnecting: the provider refused the grant, polling stopped until it is connected again",
        store::OAuthState::NAMES,
    )
}

/// Something the provider does with deleted mail that POP3 does not promise, as popdesk
/// noticed it. Information, not an error: polling goes on.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderNoticeView {
    #[schema(schema_with = notice_kind_schema)]
    pub kind: &'static str,
    /// Messages showing it in the last run that saw it (e.g. kept on the server now).
    pub messages: u64,
    /// Messages showing it over every run since `first_seen_at`.
    pub total: u64,
    /// When popdesk first and last saw it (ms since the epoch).
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    /// The notice in words, with what it means at this provider (as the UI says it).
    pub text: String,
}

impl ProviderNoticeView {
    fn new(notice: &store::ProviderNotice, provider: intake::Provider) -> ProviderNoticeView {
        ProviderNoticeView {
            kind: notice.kind.as_str(),
            messages: notice.last_count,
            total: notice.total,
            first_seen_at: notice.first_seen_at,
            last_seen_at: notice.last_seen_at,
            text: intake::notice::words(notice, provider).text(),
        }
    }
}

fn auth_schema() -> RefOr<Schema> {
    let names: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.as_setting()).collect();
    choice_schema(
        "How popdesk signs in; xoauth2 and oauthbearer take an OAuth2 access token as the password",
        &names,
    )
}

fn smtp_tls_schema() -> RefOr<Schema> {
    choice_schema(
        "implicit: TLS from the first byte (port 465); starttls: plain upgraded with STARTTLS (port 587), refused if not offered; none: no encryption (signing in then needs smtp_allow_insecure_auth)",
        TlsMode::NAMES,
    )
}

fn smtp_auth_schema() -> RefOr<Schema> {
    choice_schema(
        "How popdesk signs in to the SMTP server: auto (PLAIN or LOGIN, whichever it offers), plain, login, xoauth2 (an OAuth2 access token as the password), none (a relay that trusts this machine)",
        SmtpAuth::NAMES,
    )
}

fn policy_schema() -> RefOr<Schema> {
    choice_schema(
        "delete: remove mail from the server once stored; keep: leave it there (needs UIDL)",
        Policy::NAMES,
    )
}

fn start_schema() -> RefOr<Schema> {
    choice_schema(
        "all: import what is on the server; now: only mail that arrives from now on",
        StartMode::NAMES,
    )
}

fn oversize_schema() -> RefOr<Schema> {
    choice_schema(
        "skip: store the headers only and keep it on the server; download: store it anyway, marked too large",
        Oversize::NAMES,
    )
}

/// A new mailbox. Name, host and username are required, and the password, unless the
/// mailbox signs in with OAuth2 (`oauth_provider`): it is then connected afterwards
/// (`POST /api/v1/mailboxes/{id}/oauth/connect` or `.../oauth/device`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMailbox {
    #[schema(max_length = 100, pattern = r"\S")]
    pub name: String,
    #[schema(max_length = 253, pattern = r"^[^\s/\x00-\x1f\x7f-\x9f]+$")]
    pub host: String,
    /// Default 995 for implicit TLS, else 110.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u64>,
    #[schema(schema_with = nullable_tls_schema)]
    pub tls: Option<String>,
    #[schema(min_length = 1, max_length = 320)]
    pub username: String,
    /// The password, or a pasted OAuth2 access token. Write-only. Not needed with
    /// `oauth_provider`.
    #[schema(min_length = 1, max_length = 16384)]
    pub password: Option<String>,
    #[schema(schema_with = nullable_auth_schema)]
    pub auth_method: Option<String>,
    #[schema(schema_with = nullable_policy_schema)]
    pub policy: Option<String>,
    /// With the keep policy only: delete from the server this many days after storing.
    #[schema(minimum = 1, maximum = 36500)]
    pub delete_after_days: Option<u64>,
    #[schema(schema_with = nullable_start_schema)]
    pub start: Option<String>,
    #[schema(minimum = 1, maximum = 100000)]
    pub batch_messages: Option<u64>,
    #[schema(minimum = 1)]
    pub batch_bytes: Option<u64>,
    #[schema(minimum = 1)]
    pub max_size: Option<u64>,
    #[schema(schema_with = nullable_oversize_schema)]
    pub oversize: Option<String>,
    /// A PEM file on the server with the CA to trust for this mailbox (or the server's
    /// own self-signed certificate).
    pub ca_file: Option<String>,
    /// Trust exactly the certificate with this SHA-256 fingerprint (hex, colons allowed),
    /// whoever signed it: for a self-signed server.
    pub trusted_certificate: Option<String>,
    pub allow_insecure_auth: Option<bool>,
    pub enabled: Option<bool>,
    #[schema(minimum = 10, maximum = 86400)]
    pub poll_interval_secs: Option<u64>,
    /// Sending replies: the address they come from (usually the mailbox's own). Without
    /// it the mailbox does not send, and the other sending settings do not apply.
    #[schema(max_length = 320)]
    pub address: Option<String>,
    /// The name shown beside the address, e.g. "Example Support".
    pub display_name: Option<String>,
    /// The SMTP server replies leave through, e.g. smtp.gmail.com.
    #[schema(max_length = 253)]
    pub smtp_host: Option<String>,
    /// Default 465 for implicit TLS, 587 for STARTTLS, 25 without.
    #[schema(minimum = 1, maximum = 65535)]
    pub smtp_port: Option<u64>,
    #[schema(schema_with = nullable_smtp_tls_schema)]
    pub smtp_tls: Option<String>,
    #[schema(schema_with = nullable_smtp_auth_schema)]
    pub smtp_auth: Option<String>,
    /// SMTP's own username; without it the POP3 username and password are reused.
    #[schema(max_length = 320)]
    pub smtp_username: Option<String>,
    /// SMTP's own password or token, with `smtp_username`. Write-only.
    #[schema(min_length = 1, max_length = 16384)]
    pub smtp_password: Option<String>,
    pub smtp_allow_insecure_auth: Option<bool>,
    /// Send "we got your message" on new tickets (never to automatic mail, lists or
    /// no-reply addresses; at most one per sender in a while).
    pub acknowledge: Option<bool>,
    /// What a `[#N]` from an address new to ticket N does (default join).
    #[schema(schema_with = nullable_new_address_reference_schema)]
    pub new_address_reference: Option<String>,
    /// OAuth2 instead of a password: who issues the tokens. The sign-in method becomes
    /// xoauth2 unless oauthbearer is asked for.
    #[schema(schema_with = nullable_oauth_provider_schema)]
    pub oauth_provider: Option<String>,
    /// Microsoft: the tenant id or domain (default `organizations`).
    #[schema(max_length = 255)]
    pub oauth_tenant: Option<String>,
    /// Generic: the issuer whose `/.well-known/openid-configuration` names the endpoints
    /// (read once, when the mailbox is saved).
    #[schema(max_length = 2048)]
    pub oauth_issuer: Option<String>,
    /// Generic: the endpoints, when there is no issuer (or to override it). https://, or
    /// http:// to this machine only.
    #[schema(max_length = 2048)]
    pub oauth_authorize_url: Option<String>,
    #[schema(max_length = 2048)]
    pub oauth_token_url: Option<String>,
    #[schema(max_length = 2048)]
    pub oauth_device_url: Option<String>,
    /// The app's client id, as registered with the provider.
    #[schema(max_length = 255)]
    pub oauth_client_id: Option<String>,
    /// The app's client secret (a confidential client). Write-only: never returned.
    #[schema(max_length = 16384)]
    pub oauth_client_secret: Option<String>,
    /// The scopes; the provider preset's when empty or absent.
    pub oauth_scopes: Option<Vec<String>>,
    #[schema(schema_with = nullable_oauth_flow_schema)]
    pub oauth_flow: Option<String>,
}

impl NewMailbox {
    fn into_change(self) -> MailboxChange {
        MailboxChange {
            name: Some(self.name),
            host: Some(self.host),
            port: self.port,
            tls: self.tls,
            username: Some(self.username),
            secret: self.password.map(SecretString::from),
            auth_method: self.auth_method,
            policy: self.policy,
            delete_after_days: self.delete_after_days.map(Some),
            start: self.start,
            batch_messages: self.batch_messages,
            batch_bytes: self.batch_bytes,
            max_size: self.max_size,
            oversize: self.oversize,
            ca_file: self.ca_file.map(Some),
            trusted_certificate: self.trusted_certificate.map(Some),
            allow_insecure_auth: self.allow_insecure_auth,
            enabled: self.enabled,
            poll_interval_secs: self.poll_interval_secs,
            send_address: self.address.map(Some),
            send_display_name: self.display_name.map(Some),
            smtp_host: self.smtp_host,
            smtp_port: self.smtp_port,
            smtp_tls: self.smtp_tls,
            smtp_auth: self.smtp_auth,
            smtp_username: self.smtp_username.map(Some),
            smtp_secret: self.smtp_password.map(SecretString::from),
            smtp_allow_insecure_auth: self.smtp_allow_insecure_auth,
            acknowledge: self.acknowledge,
            new_address_reference: self.new_address_reference,
            oauth_provider: self.oauth_provider.map(Some),
            oauth_tenant: self.oauth_tenant.map(Some),
            oauth_issuer: self.oauth_issuer.map(Some),
            oauth_authorize_url: self.oauth_authorize_url.map(Some),
            oauth_token_url: self.oauth_token_url.map(Some),
            oauth_device_url: self.oauth_device_url.map(Some),
            oauth_client_id: self.oauth_client_id,
            oauth_client_secret: self.oauth_client_secret.map(SecretString::from),
            oauth_scopes: self.oauth_scopes,
            oauth_flow: self.oauth_flow,
        }
    }
}

/// Changes to a mailbox: only the fields given change. `delete_after_days`, `ca_file`,
/// `trusted_certificate`, `display_name` and `smtp_username` are cleared with null;
/// `address` null turns sending off. Changing where the password goes (host, port, tls,
/// username, auth_method, ca_file, trusted_certificate, allow_insecure_auth, and for
/// SMTP smtp_host, smtp_port, smtp_tls, smtp_auth, smtp_username,
/// smtp_allow_insecure_auth) needs the password SMTP signs in with again. OAuth2:
/// `oauth_provider` null turns it off (a password is then needed); a change of where
/// tokens come from or go (provider, tenant, endpoints, client id, scopes, flow, host,
/// username) drops the tokens, and the mailbox is connected again; a change of the token
/// endpoint or client id needs `oauth_client_secret` again when one is stored
/// (`""` makes it a public client).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxUpdate {
    #[schema(max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(max_length = 253, pattern = r"^[^\s/\x00-\x1f\x7f-\x9f]+$")]
    pub host: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u64>,
    #[schema(schema_with = nullable_tls_schema)]
    pub tls: Option<String>,
    #[schema(min_length = 1, max_length = 320)]
    pub username: Option<String>,
    /// A new password or token. Write-only.
    #[schema(min_length = 1, max_length = 16384)]
    pub password: Option<String>,
    #[schema(schema_with = nullable_auth_schema)]
    pub auth_method: Option<String>,
    #[schema(schema_with = nullable_policy_schema)]
    pub policy: Option<String>,
    /// With the keep policy only: delete from the server this many days after storing
    /// (null: never).
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<u64>, nullable, minimum = 1, maximum = 36500)]
    pub delete_after_days: Option<Option<u64>>,
    #[schema(schema_with = nullable_start_schema)]
    pub start: Option<String>,
    #[schema(minimum = 1, maximum = 100000)]
    pub batch_messages: Option<u64>,
    #[schema(minimum = 1)]
    pub batch_bytes: Option<u64>,
    #[schema(minimum = 1)]
    pub max_size: Option<u64>,
    #[schema(schema_with = nullable_oversize_schema)]
    pub oversize: Option<String>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub ca_file: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub trusted_certificate: Option<Option<String>>,
    pub allow_insecure_auth: Option<bool>,
    pub enabled: Option<bool>,
    #[schema(minimum = 10, maximum = 86400)]
    pub poll_interval_secs: Option<u64>,
    /// The address replies come from; null turns sending off.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 320)]
    pub address: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub display_name: Option<Option<String>>,
    #[schema(max_length = 253)]
    pub smtp_host: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    pub smtp_port: Option<u64>,
    #[schema(schema_with = nullable_smtp_tls_schema)]
    pub smtp_tls: Option<String>,
    #[schema(schema_with = nullable_smtp_auth_schema)]
    pub smtp_auth: Option<String>,
    /// SMTP's own username; null reuses the POP3 username and password.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 320)]
    pub smtp_username: Option<Option<String>>,
    /// A new SMTP password or token, with `smtp_username`. Write-only.
    #[schema(min_length = 1, max_length = 16384)]
    pub smtp_password: Option<String>,
    pub smtp_allow_insecure_auth: Option<bool>,
    pub acknowledge: Option<bool>,
    /// What a `[#N]` from an address new to ticket N does (default join).
    #[schema(schema_with = nullable_new_address_reference_schema)]
    pub new_address_reference: Option<String>,
    /// null turns OAuth2 off.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(schema_with = nullable_oauth_provider_schema)]
    pub oauth_provider: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 255)]
    pub oauth_tenant: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 2048)]
    pub oauth_issuer: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 2048)]
    pub oauth_authorize_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 2048)]
    pub oauth_token_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, nullable, max_length = 2048)]
    pub oauth_device_url: Option<Option<String>>,
    #[schema(max_length = 255)]
    pub oauth_client_id: Option<String>,
    /// A new client secret; `""` for a public client. Write-only.
    #[schema(max_length = 16384)]
    pub oauth_client_secret: Option<String>,
    /// Empty: the provider preset's scopes.
    pub oauth_scopes: Option<Vec<String>>,
    #[schema(schema_with = nullable_oauth_flow_schema)]
    pub oauth_flow: Option<String>,
}

impl MailboxUpdate {
    fn into_change(self) -> MailboxChange {
        MailboxChange {
            name: self.name,
            host: self.host,
            port: self.port,
            tls: self.tls,
            username: self.username,
            secret: self.password.map(SecretString::from),
            auth_method: self.auth_method,
            policy: self.policy,
            delete_after_days: self.delete_after_days,
            start: self.start,
            batch_messages: self.batch_messages,
            batch_bytes: self.batch_bytes,
            max_size: self.max_size,
            oversize: self.oversize,
            ca_file: self.ca_file,
            trusted_certificate: self.trusted_certificate,
            allow_insecure_auth: self.allow_insecure_auth,
            enabled: self.enabled,
            poll_interval_secs: self.poll_interval_secs,
            send_address: self.address,
            send_display_name: self.display_name,
            smtp_host: self.smtp_host,
            smtp_port: self.smtp_port,
            smtp_tls: self.smtp_tls,
            smtp_auth: self.smtp_auth,
            smtp_username: self.smtp_username,
            smtp_secret: self.smtp_password.map(SecretString::from),
            smtp_allow_insecure_auth: self.smtp_allow_insecure_auth,
            acknowledge: self.acknowledge,
            new_address_reference: self.new_address_reference,
            oauth_provider: self.oauth_provider,
            oauth_tenant: self.oauth_tenant,
            oauth_issuer: self.oauth_issuer,
            oauth_authorize_url: self.oauth_authorize_url,
            oauth_token_url: self.oauth_token_url,
            oauth_device_url: self.oauth_device_url,
            oauth_client_id: self.oauth_client_id,
            oauth_client_secret: self.oauth_client_secret.map(SecretString::from),
            oauth_scopes: self.oauth_scopes,
            oauth_flow: self.oauth_flow,
        }
    }
}

/// A mailbox's OAuth2 connection as the API shows it: never a token or the client
/// secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthView {
    #[schema(schema_with = oauth_provider_schema)]
    pub provider: &'static str,
    pub tenant: Option<String>,
    pub issuer: Option<String>,
    /// The endpoints, as resolved when the settings were saved.
    pub authorize_url: Option<String>,
    pub token_url: String,
    pub device_url: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    #[schema(schema_with = oauth_flow_schema)]
    pub flow: &'static str,
    #[schema(schema_with = oauth_state_schema)]
    pub state: &'static str,
    /// `{public_url}/oauth/callback`, to register with the provider; null while
    /// `public_url` is not set (then the authorization-code flow cannot work).
    pub redirect_uri: Option<String>,
}

impl OAuthView {
    pub(crate) fn new(
        mailbox: &Mailbox,
        public_url: Option<&crate::PublicUrl>,
    ) -> Option<OAuthView> {
        let o = mailbox.settings.oauth.as_ref()?;
        Some(OAuthView {
            provider: o.provider.as_str(),
            tenant: o.tenant.clone(),
            issuer: o.issuer.clone(),
            authorize_url: o.authorize_url.clone(),
            token_url: o.token_url.clone(),
            device_url: o.device_url.clone(),
            client_id: o.client_id.clone(),
            scopes: o.scopes.clone(),
            flow: o.flow.as_str(),
            state: mailbox.oauth_state.unwrap_or_default().as_str(),
            redirect_uri: public_url.map(crate::PublicUrl::redirect_uri),
        })
    }
}

/// A mailbox as the API shows it; never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxView {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    #[schema(schema_with = tls_schema)]
    pub tls: &'static str,
    pub username: String,
    #[schema(schema_with = auth_schema)]
    pub auth_method: &'static str,
    #[schema(schema_with = policy_schema)]
    pub policy: &'static str,
    pub delete_after_days: Option<u32>,
    #[schema(schema_with = start_schema)]
    pub start: &'static str,
    pub batch_messages: u32,
    pub batch_bytes: u64,
    pub max_size: u64,
    #[schema(schema_with = oversize_schema)]
    pub oversize: &'static str,
    pub ca_file: Option<String>,
    /// The SHA-256 fingerprint of the one certificate this mailbox's server may present.
    pub trusted_certificate: Option<String>,
    pub allow_insecure_auth: bool,
    pub enabled: bool,
    pub poll_interval_secs: u32,
    /// Why the mailbox needs the admin (a refused login, a bad certificate); null
    /// when it is fine. While set, the scheduler does not poll it.
    pub needs_attention: Option<String>,
    /// Whether the first run is done.
    pub started: bool,
    /// Messages set aside because they cannot be downloaded (see `/failing`).
    pub set_aside: u64,
    /// Whose words `provider_notices` use: gmail, microsoft365 or other.
    #[schema(schema_with = provider_schema)]
    pub provider: &'static str,
    /// What the provider was seen doing with deleted mail; empty when nothing unusual.
    pub provider_notices: Vec<ProviderNoticeView>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Where the mailbox stands in the schedule; null when no scheduler runs in this
    /// process or it has not read the mailbox yet.
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<MailboxSchedule>,
    /// Whether replies can be sent from this mailbox; the sending settings below are
    /// null (or false) when not.
    pub sending: bool,
    /// The address replies come from.
    pub address: Option<String>,
    pub display_name: Option<String>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    #[schema(schema_with = nullable_smtp_tls_schema)]
    pub smtp_tls: Option<&'static str>,
    #[schema(schema_with = nullable_smtp_auth_schema)]
    pub smtp_auth: Option<&'static str>,
    /// SMTP's own username, when it has one.
    pub smtp_username: Option<String>,
    /// True: SMTP signs in with `smtp_username` and a password of its own; false: with
    /// the POP3 username and password. The password itself is never shown.
    pub smtp_own_login: bool,
    pub smtp_allow_insecure_auth: bool,
    /// New tickets are acknowledged by mail.
    pub acknowledge: bool,
    /// What a `[#N]` from an address new to ticket N does.
    #[schema(schema_with = new_address_reference_schema)]
    pub new_address_reference: &'static str,
    /// The OAuth2 connection; null for a mailbox that signs in with a password.
    pub oauth: Option<OAuthView>,
}

impl MailboxView {
    fn new(
        mailbox: Mailbox,
        schedule: Option<MailboxSchedule>,
        set_aside: u64,
        notices: &[store::ProviderNotice],
        public_url: Option<&crate::PublicUrl>,
    ) -> MailboxView {
        let oauth = OAuthView::new(&mailbox, public_url);
        let provider = intake::Provider::for_host(&mailbox.settings.host);
        let provider_notices = notices
            .iter()
            .filter(|n| n.mailbox_id == mailbox.id)
            .map(|n| ProviderNoticeView::new(n, provider))
            .collect();
        let s = mailbox.settings;
        let delete_after_days = match s.policy {
            Policy::Delete => None,
            Policy::Keep { delete_after_days } => delete_after_days,
        };
        let sending = s.sending.as_ref();
        MailboxView {
            oauth,
            sending: sending.is_some(),
            address: sending.map(|s| s.address.clone()),
            display_name: sending.and_then(|s| s.display_name.clone()),
            smtp_host: sending.map(|s| s.smtp_host.clone()),
            smtp_port: sending.map(|s| s.smtp_port),
            smtp_tls: sending.map(|s| s.smtp_tls.as_str()),
            smtp_auth: sending.map(|s| s.smtp_auth.as_str()),
            smtp_username: sending.and_then(|s| s.smtp_username.clone()),
            smtp_own_login: sending.is_some_and(|s| s.smtp_username.is_some()),
            smtp_allow_insecure_auth: sending.is_some_and(|s| s.smtp_allow_insecure_auth),
            acknowledge: sending.is_some_and(|s| s.acknowledge),
            id: mailbox.id,
            name: s.name,
            host: s.host,
            port: s.port,
            tls: s.tls.as_str(),
            username: s.username,
            auth_method: s.auth_method.as_setting(),
            policy: s.policy.as_str(),
            delete_after_days,
            start: s.start.as_str(),
            batch_messages: s.batch_messages,
            batch_bytes: s.batch_bytes,
            max_size: s.max_size,
            oversize: s.oversize.as_str(),
            ca_file: s.ca_file,
            trusted_certificate: s.trusted_certificate.map(|f| f.to_string()),
            allow_insecure_auth: s.allow_insecure_auth,
            enabled: s.enabled,
            poll_interval_secs: s.poll_interval_secs,
            new_address_reference: s.new_address_reference.as_str(),
            needs_attention: mailbox.needs_attention,
            started: mailbox.started,
            set_aside,
            provider: provider.as_str(),
            provider_notices,
            created_at: mailbox.created_at,
            updated_at: mailbox.updated_at,
            schedule,
        }
    }
}

/// The mailbox as the API shows it, with its schedule, set-aside count and notices.
pub(crate) async fn mailbox_view(state: &AppState, mailbox: Mailbox) -> ApiResult<MailboxView> {
    let schedule = state.scheduler().and_then(|s| s.status(mailbox.id));
    let set_aside = state.store().set_aside_count(mailbox.id).await?;
    let notices = state.store().provider_notices(mailbox.id).await?;
    Ok(MailboxView::new(
        mailbox,
        schedule,
        set_aside,
        &notices,
        state.config().public_url.as_ref(),
    ))
}

/// All mailboxes, by name.
#[utoipa::path(
    get, path = "/api/v1/mailboxes", tag = "mailboxes",
    responses(
        (status = 200, description = "The mailboxes", body = Vec<MailboxView>),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> ApiResult<Json<Vec<MailboxView>>> {
    let mailboxes = state.store().mailboxes().await?;
    let counts: std::collections::HashMap<i64, u64> = state
        .store()
        .set_aside_counts()
        .await?
        .into_iter()
        .collect();
    let notices = state.store().all_provider_notices().await?;
    Ok(Json(
        mailboxes
            .into_iter()
            .map(|m| {
                let schedule = state.scheduler().and_then(|s| s.status(m.id));
                let set_aside = counts.get(&m.id).copied().unwrap_or(0);
                MailboxView::new(
                    m,
                    schedule,
                    set_aside,
                    &notices,
                    state.config().public_url.as_ref(),
                )
            })
            .collect(),
    ))
}

/// Adds a mailbox; the scheduler picks it up at once.
#[utoipa::path(
    post, path = "/api/v1/mailboxes", tag = "mailboxes",
    request_body = NewMailbox,
    responses(
        (status = 201, description = "The new mailbox", body = MailboxView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "A setting is not valid", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(new): ApiJson<NewMailbox>,
) -> ApiResult<Response> {
    let mailbox = state.admin().create_mailbox(&new.into_change()).await?;
    let location = format!("/api/v1/mailboxes/{}", mailbox.id);
    let mut response = (
        StatusCode::CREATED,
        Json(mailbox_view(&state, mailbox).await?),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// One mailbox.
#[utoipa::path(
    get, path = "/api/v1/mailboxes/{id}", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 200, description = "The mailbox", body = MailboxView),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<MailboxView>> {
    let mailbox = state.admin().mailbox(id).await?;
    Ok(Json(mailbox_view(&state, mailbox).await?))
}

/// Changes a mailbox. Any change clears its "needs attention" mark, so the scheduler
/// tries it again (the admin has looked at it).
#[utoipa::path(
    patch, path = "/api/v1/mailboxes/{id}", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    request_body = MailboxUpdate,
    responses(
        (status = 200, description = "The mailbox as it is now", body = MailboxView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
        (status = 409, description = "The new name is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "A setting is not valid", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(change): ApiJson<MailboxUpdate>,
) -> ApiResult<Json<MailboxView>> {
    let mailbox = state
        .admin()
        .update_mailbox(id, &change.into_change())
        .await?;
    Ok(Json(mailbox_view(&state, mailbox).await?))
}

/// Removes a mailbox with its settings, secret, ledger and fetch history. Its stored
/// messages and tickets stay.
#[utoipa::path(
    delete, path = "/api/v1/mailboxes/{id}", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state.admin().remove_mailbox(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What "test connection" found: the server as popdesk sees it, or the error in words.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ConnectionTest {
    /// True when popdesk connected and logged in.
    pub ok: bool,
    /// Why not, in one sentence for people.
    pub error: Option<String>,
    /// The technical detail behind `error` (for the log, or a "details" disclosure).
    pub detail: Option<String>,
    /// The server's greeting.
    pub greeting: Option<String>,
    pub encrypted: Option<bool>,
    /// The login method that was used.
    pub auth_method: Option<String>,
    pub capabilities: Vec<String>,
    /// Messages waiting on the server.
    pub messages: Option<u32>,
    /// Their size in octets.
    pub size: Option<u64>,
    /// Whether the server has UIDL (the keep policy needs it).
    pub has_uidl: Option<bool>,
    pub pipelining: Option<bool>,
    /// The certificate the server presented when popdesk did not trust it: check its
    /// fingerprint, then set it as the mailbox's `trusted_certificate` to trust it.
    pub certificate: Option<CertificateView>,
}

/// A server certificate as a connection test saw it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateView {
    pub subject: String,
    pub issuer: String,
    /// Validity, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the certificate, `AB:CD:...`.
    pub fingerprint: String,
    pub self_signed: bool,
}

impl From<ConnectionReport> for ConnectionTest {
    fn from(report: ConnectionReport) -> ConnectionTest {
        match report {
            ConnectionReport::Connected(found) => ConnectionTest {
                ok: true,
                error: None,
                detail: None,
                greeting: Some(found.greeting),
                encrypted: Some(found.encrypted),
                auth_method: Some(found.auth_method),
                capabilities: found.capabilities,
                messages: Some(found.messages),
                size: Some(found.size),
                has_uidl: Some(found.has_uidl),
                pipelining: Some(found.pipelining),
                certificate: None,
            },
            ConnectionReport::Failed(problem) => ConnectionTest {
                ok: false,
                certificate: problem.certificate.map(|c| CertificateView {
                    subject: c.subject,
                    issuer: c.issuer,
                    not_before: c.not_before,
                    not_after: c.not_after,
                    fingerprint: c.fingerprint.to_string(),
                    self_signed: c.self_signed,
                }),
                error: Some(problem.summary),
                detail: Some(problem.detail),
                ..ConnectionTest::default()
            },
        }
    }
}

/// Connects and logs in with the stored settings, reads the mailbox's size, and logs
/// out. Changes nothing on the server. A failed login or connection is a 200 with
/// `ok: false` and the reason.
#[utoipa::path(
    post, path = "/api/v1/mailboxes/{id}/test", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 200, description = "What the test found", body = ConnectionTest),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
    )
)]
pub async fn test(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ConnectionTest>> {
    Ok(Json(state.admin().test_mailbox(id).await?.into()))
}

/// What "Test sending" found: whether popdesk could connect to the SMTP server, secure
/// the connection and sign in. No mail is sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendingTestView {
    /// True when popdesk connected, secured the connection and signed in.
    pub ok: bool,
    /// Why not, in one sentence with the server's own words when it gave some.
    pub error: Option<String>,
    /// True when the failure will not go away by waiting (a 5xx, settings that cannot
    /// work); false for a temporary one (a 4xx, the network).
    pub permanent: Option<bool>,
    pub smtp_host: String,
    pub smtp_port: u16,
    #[schema(schema_with = smtp_tls_schema)]
    pub smtp_tls: &'static str,
    #[schema(schema_with = smtp_auth_schema)]
    pub smtp_auth: &'static str,
    /// The username SMTP signed in (or tried to sign in) with.
    pub smtp_username: String,
}

impl SendingTestView {
    pub(crate) fn new(
        mailbox: &Mailbox,
        outcome: Result<outgoing::SendingTest, outgoing::Failure>,
    ) -> SendingTestView {
        let sending = mailbox.settings.sending.as_ref();
        let (ok, error, permanent) = match &outcome {
            Ok(_) => (true, None, None),
            Err(failure) => (
                false,
                Some(failure.message().to_string()),
                Some(failure.is_permanent()),
            ),
        };
        SendingTestView {
            ok,
            error,
            permanent,
            smtp_host: sending.map(|s| s.smtp_host.clone()).unwrap_or_default(),
            smtp_port: sending.map_or(0, |s| s.smtp_port),
            smtp_tls: sending.map_or("", |s| s.smtp_tls.as_str()),
            smtp_auth: sending.map_or("", |s| s.smtp_auth.as_str()),
            smtp_username: match (&outcome, sending) {
                (Ok(test), _) => test.username.clone(),
                (Err(_), Some(s)) => s
                    .smtp_username
                    .clone()
                    .unwrap_or_else(|| mailbox.settings.username.clone()),
                (Err(_), None) => String::new(),
            },
        }
    }
}

/// "Test sending": connects to the mailbox's SMTP server, secures the connection, signs
/// in with the stored password and says QUIT. No mail is sent. A failed test is a 200
/// with `ok: false` and the reason.
#[utoipa::path(
    post, path = "/api/v1/mailboxes/{id}/test-sending", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 200, description = "What the test found", body = SendingTestView),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
        (status = 422, description = "The mailbox does not send (no sending address)", body = ErrorBody),
    )
)]
pub async fn test_sending(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SendingTestView>> {
    let outcome = state.admin().test_sending(id).await?;
    let mailbox = state.admin().mailbox(id).await?;
    Ok(Json(SendingTestView::new(&mailbox, outcome)))
}

/// "Fetch now" was queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct FetchQueued {
    pub mailbox_id: i64,
    /// Where the mailbox stands now (null until the scheduler has read it).
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<MailboxSchedule>,
}

/// Fetches the mailbox out of turn (also one that is stopped on an error or disabled).
/// Answers at once; the run's outcome shows in the mailbox's runs.
#[utoipa::path(
    post, path = "/api/v1/mailboxes/{id}/fetch", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 202, description = "The fetch is queued", body = FetchQueued),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
        (status = 503, description = "No scheduler runs in this process", body = ErrorBody),
    )
)]
pub async fn fetch_now(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<FetchQueued>)> {
    state.admin().fetch_now(id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(FetchQueued {
            mailbox_id: id,
            schedule: state.scheduler().and_then(|s| s.status(id)),
        }),
    ))
}

/// How a run ended.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcomeView {
    Running,
    Success,
    Transient,
    Permanent,
    Interrupted,
    Cancelled,
}

/// One fetch run with its counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    pub id: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: RunOutcomeView,
    pub error: Option<String>,
    /// Messages the server listed.
    pub listed: u64,
    pub downloaded: u64,
    pub deleted: u64,
    /// Listed messages popdesk already had.
    pub already_known: u64,
    pub too_large: u64,
    pub duplicates: u64,
    /// Octets stored.
    pub bytes: u64,
}

impl From<&FetchRun> for RunView {
    fn from(run: &FetchRun) -> RunView {
        use store::RunOutcome as O;
        RunView {
            id: run.id,
            started_at: run.started_at,
            finished_at: run.finished_at,
            outcome: match run.outcome {
                O::Running => RunOutcomeView::Running,
                O::Success => RunOutcomeView::Success,
                O::Transient => RunOutcomeView::Transient,
                O::Permanent => RunOutcomeView::Permanent,
                O::Interrupted => RunOutcomeView::Interrupted,
                O::Cancelled => RunOutcomeView::Cancelled,
            },
            error: run.error.clone(),
            listed: run.counts.listed,
            downloaded: run.counts.downloaded,
            deleted: run.counts.deleted,
            already_known: run.counts.already_known,
            too_large: run.counts.too_large,
            duplicates: run.counts.duplicates,
            bytes: run.counts.bytes,
        }
    }
}

/// How many runs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// 1 to 500 (default 20).
    #[serde(default, deserialize_with = "input::parsed")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The mailbox's fetch runs, newest first.
#[utoipa::path(
    get, path = "/api/v1/mailboxes/{id}/runs", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id"), RunQuery),
    responses(
        (status = 200, description = "Runs, newest first", body = Vec<RunView>),
        (status = 400, description = "The id or limit is not valid", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
    )
)]
pub async fn runs(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> ApiResult<Json<Vec<RunView>>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    state.admin().mailbox(id).await?;
    let runs = state.store().runs(id, limit).await?;
    Ok(Json(runs.iter().map(RunView::from).collect()))
}

/// One attempt to download a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub at: i64,
    /// connection, timeout, too_long or protocol.
    pub kind: String,
    pub error: String,
    /// How far into the message it got, in octets.
    pub octets: u64,
}

/// A message on the server that could not be downloaded.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailingMessageView {
    /// The server's UIDL of the message.
    pub uid: String,
    /// Its size as the server listed it, octets.
    pub size: u64,
    /// Its headers (TOP n 0), when the server gave them.
    pub headers: Option<String>,
    pub first_failed_at: i64,
    /// When it was set aside: left on the server and no longer retrieved. Null while it
    /// is still being retried.
    pub set_aside_at: Option<i64>,
    /// "Try again" was asked for: the next run retrieves it once more.
    pub retry_once: bool,
    pub attempts: Vec<AttemptView>,
}

impl From<store::FailingMessage> for FailingMessageView {
    fn from(m: store::FailingMessage) -> FailingMessageView {
        FailingMessageView {
            uid: m.uid,
            size: m.size,
            headers: m.headers,
            first_failed_at: m.first_failed_at,
            set_aside_at: m.set_aside_at,
            retry_once: m.retry_once,
            attempts: m
                .attempts
                .into_iter()
                .map(|a| AttemptView {
                    at: a.at,
                    kind: a.kind.to_string(),
                    error: a.error,
                    octets: a.octets,
                })
                .collect(),
        }
    }
}

/// The mailbox's messages that could not be downloaded (set aside, or still being
/// retried), with each attempt and its error.
#[utoipa::path(
    get, path = "/api/v1/mailboxes/{id}/failing", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    responses(
        (status = 200, description = "Messages that could not be downloaded", body = Vec<FailingMessageView>),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such mailbox", body = ErrorBody),
    )
)]
pub async fn failing(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<FailingMessageView>>> {
    let messages = state.admin().failing_messages(id).await?;
    Ok(Json(
        messages.into_iter().map(FailingMessageView::from).collect(),
    ))
}

/// Which set-aside message to try again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TryAgain {
    /// The message's UIDL.
    #[schema(min_length = 1, max_length = 1000)]
    pub uid: String,
}

/// "Try again" for a set-aside message (after the server was fixed): the next run
/// retrieves it once more, on its own; stored normally if it now downloads.
#[utoipa::path(
    post, path = "/api/v1/mailboxes/{id}/failing/retry", tag = "mailboxes",
    params(("id" = i64, Path, description = "The mailbox id")),
    request_body = TryAgain,
    responses(
        (status = 204, description = "It will be tried again"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such mailbox or set-aside message", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "The body does not name a UIDL", body = ErrorBody),
    )
)]
pub async fn try_again(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TryAgain>,
) -> ApiResult<StatusCode> {
    state.admin().try_set_aside_again(id, &body.uid).await?;
    Ok(StatusCode::NO_CONTENT)
}
