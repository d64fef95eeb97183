//! The fixture of the API tests: a real store on SQLite in a temp dir, the real router
//! called through `tower::ServiceExt::oneshot`, a clock the test sets, and helpers to
//! sign in, make tokens and put real mail through the real processor.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use intake::{ManualClock, Processor, ProcessorConfig};
use outgoing::{AcknowledgementConfig, Outgoing, ReplyConfig, SenderConfig};
use secrecy::SecretString;
use serde_json::{Value, json};
use store::{
    MailboxSettings, NewRawMessage, RawStatus, Role, SendingSettings, SmtpAuth, Store, TlsMode,
    User,
};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt as _;
use tower::ServiceExt as _;
use web::{AppState, PasswordCost, WebConfig};

pub const NOW: i64 = 1_800_000_000_000;
pub const PASSWORD: &str = "correct horse battery";
pub const ADMIN: &str = "admin@example.com";
pub const AGENT: &str = "agent@example.com";

/// Cheap hashes: an unoptimised build takes seconds per hash at the real cost.
pub fn cost() -> PasswordCost {
    PasswordCost {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    }
}

pub fn config() -> WebConfig {
    WebConfig {
        password_cost: cost(),
        ..WebConfig::default()
    }
}

pub struct Desk {
    pub store: Store,
    pub clock: ManualClock,
    pub app: Router,
    pub data: TempDir,
    /// The one-time code the setup asks for, as shown (`ABCD-EFGH-JKLM`).
    pub setup_code: String,
    /// Dropped after the store (fields drop in order): the database outlives its pool.
    pub pg: Option<crate::postgres::PgDatabase>,
}

impl Desk {
    pub async fn new() -> Desk {
        Desk::with(config(), |state| state).await
    }

    /// A desk on a fresh PostgreSQL database.
    pub async fn postgres() -> Desk {
        let pg = crate::postgres::PgDatabase::create().await;
        let data = TempDir::new().expect("temp dir");
        let store = Store::open(data.path(), Some(&pg.url))
            .await
            .expect("open the PostgreSQL store");
        let mut desk = Desk::on_store(store, data, config(), |state| state);
        desk.pg = Some(pg);
        desk
    }

    /// A desk with this configuration; `extend` adds a scheduler, metrics, ...
    pub async fn with(config: WebConfig, extend: impl FnOnce(AppState) -> AppState) -> Desk {
        let data = TempDir::new().expect("temp dir");
        let store = Store::open(data.path(), None).await.expect("open store");
        Desk::on_store(store, data, config, extend)
    }

    pub fn on_store(
        store: Store,
        data: TempDir,
        config: WebConfig,
        extend: impl FnOnce(AppState) -> AppState,
    ) -> Desk {
        let clock = ManualClock::new(NOW);
        // Replies are queued, never sent: no sender runs in these tests.
        let state = AppState::new(store.clone(), config)
            .with_clock(Arc::new(clock.clone()))
            .with_outgoing(outgoing(&store, ReplyConfig::default()));
        let setup_code = state.setup_code().display();
        Desk {
            app: web::app(extend(state)),
            store,
            clock,
            data,
            setup_code,
            pg: None,
        }
    }

    /// A mailbox that sends replies from `address` (an SMTP server nothing listens on).
    pub async fn sending_mailbox(&self, name: &str, address: &str) -> i64 {
        let id = self.mailbox(name, address).await;
        let mut settings = self
            .store
            .mailbox_by_id(id)
            .await
            .expect("r")
            .expect("m")
            .settings;
        settings.sending = Some(SendingSettings {
            address: address.to_string(),
            display_name: Some(format!("{name} team")),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 1,
            smtp_tls: TlsMode::Implicit,
            smtp_auth: SmtpAuth::Auto,
            smtp_username: None,
            smtp_allow_insecure_auth: false,
            acknowledge: false,
        });
        self.store
            .update_mailbox(id, &settings, None, NOW)
            .await
            .expect("set up sending");
        id
    }

    pub fn call(&self, method: Method, uri: &str) -> Call<'_> {
        Call {
            desk: self,
            request: Request::builder().method(method).uri(uri),
            body: Body::empty(),
            ip: "192.0.2.10".parse().expect("ip"),
            bare: false,
        }
    }

    pub fn get(&self, uri: &str) -> Call<'_> {
        self.call(Method::GET, uri)
    }

    pub fn post(&self, uri: &str) -> Call<'_> {
        self.call(Method::POST, uri)
    }

    pub fn patch(&self, uri: &str) -> Call<'_> {
        self.call(Method::PATCH, uri)
    }

    pub fn delete(&self, uri: &str) -> Call<'_> {
        self.call(Method::DELETE, uri)
    }

    /// A user straight in the store, with [`PASSWORD`].
    pub async fn add_user(&self, email: &str, role: Role) -> User {
        let hash = web::hash_password_with(PASSWORD, cost()).expect("hash");
        self.store
            .create_user(email, None, role, &hash, NOW)
            .await
            .expect("create user")
    }

    /// Signs in through the API; returns the session cookie's value.
    pub async fn sign_in(&self, email: &str) -> String {
        let reply = self
            .post("/api/v1/session")
            .json(json!({"email": email, "password": PASSWORD}))
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::OK, "sign in: {}", reply.text());
        reply.session_cookie().expect("a session cookie")
    }

    /// An admin user (made on first use) signed in.
    pub async fn admin_session(&self) -> String {
        if self
            .store
            .user_by_email(ADMIN)
            .await
            .expect("user")
            .is_none()
        {
            self.add_user(ADMIN, Role::Admin).await;
        }
        self.sign_in(ADMIN).await
    }

    /// The agent (made on first use) signed in, working every mailbox there is now
    /// (team mailboxes: an agent sees only the mailboxes granted; `teams.rs` tests that).
    pub async fn agent_session(&self) -> String {
        let agent = match self.store.user_by_email(AGENT).await.expect("user") {
            Some(agent) => agent,
            None => self.add_user(AGENT, Role::Agent).await,
        };
        let every: Vec<i64> = self
            .store
            .mailboxes()
            .await
            .expect("mailboxes")
            .iter()
            .map(|m| m.id)
            .collect();
        self.store
            .set_user_mailboxes(agent.id, &every)
            .await
            .expect("grant every mailbox");
        self.sign_in(AGENT).await
    }

    /// A fresh API token with this role, made through the API by an admin.
    pub async fn token(&self, role: &str) -> (i64, String) {
        let admin = self.admin_session().await;
        let reply = self
            .post("/api/v1/tokens")
            .cookie(&admin)
            .json(json!({"name": format!("{role} token"), "role": role}))
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        let body = reply.json();
        (
            body["id"].as_i64().expect("id"),
            body["token"].as_str().expect("token").to_string(),
        )
    }

    pub async fn mailbox(&self, name: &str, address: &str) -> i64 {
        let settings = MailboxSettings {
            name: name.to_string(),
            host: "pop.example.com".into(),
            username: address.to_string(),
            ..MailboxSettings::default()
        };
        self.store
            .add_mailbox(&settings, &SecretString::from("secret".to_string()), NOW)
            .await
            .expect("add mailbox")
            .id
    }

    /// Stores raw bytes as the fetcher would; returns the raw message id.
    pub async fn deliver(&self, mailbox_id: i64, bytes: &[u8]) -> i64 {
        let mut writer = self.store.blobs().writer().await.expect("writer");
        writer.write_all(bytes).await.expect("write");
        let blob = writer.finish().await.expect("finish");
        let item = NewRawMessage {
            uid: None,
            sha256: blob.sha256.clone(),
            size: blob.size,
            server_size: Some(blob.size),
            message_id: intake::message_id(bytes),
            status: RawStatus::Stored,
        };
        self.store
            .blobs()
            .persist(vec![blob])
            .await
            .expect("persist");
        self.store
            .commit_batch(mailbox_id, &[item], NOW)
            .await
            .expect("commit")[0]
            .raw_message_id()
    }

    /// Runs the real processor over everything pending.
    pub async fn process(&self) {
        Processor::new(
            self.store.clone(),
            Arc::new(self.clock.clone()),
            ProcessorConfig::default(),
        )
        .process_pending()
        .await
        .expect("process");
    }
}

/// Outgoing mail over this store, with these reply rules.
pub fn outgoing(store: &Store, replies: ReplyConfig) -> Outgoing {
    Outgoing::new(
        store.clone(),
        replies,
        AcknowledgementConfig::default(),
        SenderConfig::default(),
    )
}

/// A plain-text mail.
pub fn mail(id: &str, from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\n\
Date: Thu, 26 Nov 2026 08:00:00 +0000\r\nMessage-ID: <{id}>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A one-pixel PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A mail with HTML (a script, an inline image by cid) and three attachments: an HTML
/// file with a path in its name, a PDF with a non-ASCII name, an SVG.
pub fn mail_with_attachments(id: &str) -> Vec<u8> {
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD.encode(PNG);
    format!(
        "From: Alice Example <alice@example.com>\r\nTo: support@example.com\r\n\
Subject: Printer on fire\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\nMessage-ID: <{id}>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"MIX\"\r\n\r\n\
--MIX\r\nContent-Type: multipart/related; boundary=\"REL\"\r\n\r\n\
--REL\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<p>It burns. <img src=\"cid:logo@example.com\"></p><script>alert(1)</script>\r\n\
--REL\r\nContent-Type: image/png\r\nContent-ID: <logo@example.com>\r\n\
Content-Disposition: inline; filename=\"logo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
{png}\r\n--REL--\r\n\
--MIX\r\nContent-Type: text/html; name=\"evil.html\"\r\n\
Content-Disposition: attachment; filename=\"../../evil.html\"\r\n\r\n\
<script>alert(document.cookie)</script>\r\n\
--MIX\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n\
--MIX\r\nContent-Type: image/svg+xml\r\nContent-ID: <vector@example.com>\r\n\
Content-Disposition: attachment; filename=\"vector.svg\"\r\n\r\n\
<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>\r\n\
--MIX--\r\n"
    )
    .into_bytes()
}

/// One request being built.
pub struct Call<'a> {
    desk: &'a Desk,
    request: axum::http::request::Builder,
    body: Body,
    ip: IpAddr,
    bare: bool,
}

impl Call<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    pub fn cookie(self, session: &str) -> Self {
        self.header("cookie", &format!("{}={session}", web::SESSION_COOKIE))
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn json(mut self, value: Value) -> Self {
        self.request = self.request.header("content-type", "application/json");
        self.body = Body::from(value.to_string());
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Body>) -> Self {
        self.request = self.request.header("content-type", content_type);
        self.body = body.into();
        self
    }

    /// Sends the request without the browser's `Sec-Fetch-Site`, as a script would.
    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    pub fn client_ip(mut self, ip: &str) -> Self {
        self.ip = ip.parse().expect("ip");
        self
    }

    /// Sends it. No test may ever see a 500. A request with a session cookie is sent as
    /// a browser sends it from a popdesk page (`Sec-Fetch-Site: same-origin`) unless it
    /// names its site itself; [`Call::bare`] sends it as it is.
    pub async fn send(self) -> Reply {
        let mut request = self.request.body(self.body).expect("request");
        let headers = request.headers_mut();
        if !self.bare
            && headers.contains_key("cookie")
            && !headers.contains_key("sec-fetch-site")
            && !headers.contains_key("origin")
        {
            headers.insert(
                "sec-fetch-site",
                axum::http::HeaderValue::from_static("same-origin"),
            );
        }
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(self.ip, 40000)));
        let response = self
            .desk
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        let reply = Reply {
            status,
            headers,
            body,
        };
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "a 500: {}",
            reply.text()
        );
        reply
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON error's code, checking the error shape on the way.
    pub fn error_code(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{} {}",
            self.status,
            self.text()
        );
        let body = self.json();
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "an error sentence: {body}"
        );
        body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("an error code: {body}"))
            .to_string()
    }

    /// Asserts a JSON error with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.error_code(), code, "{}", self.text());
    }

    /// The session cookie set by this response.
    pub fn session_cookie(&self) -> Option<String> {
        self.set_cookie()
            .and_then(|c| c.split(';').next().map(str::to_string))
            .and_then(|pair| {
                pair.strip_prefix(&format!("{}=", web::SESSION_COOKIE))
                    .map(str::to_string)
            })
            .filter(|value| !value.is_empty())
    }

    pub fn set_cookie(&self) -> Option<&str> {
        self.headers
            .get(header::SET_COOKIE)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    }
}
