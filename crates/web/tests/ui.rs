//! The HTML UI, page by page, without a browser: a real store on SQLite, the real
//! router through `oneshot`, real mail through the real processor. The browser tests
//! (e2e/) drive the same pages in Chromium; these pin what a page must be whatever
//! the browser does: its status, its headers, markup that the content policy allows,
//! labelled fields, forms that work as plain POST/303, and mail HTML kept out of pages.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use intake::{Clock as _, ManualClock, Processor, ProcessorConfig};
use secrecy::{ExposeSecret as _, SecretString};
use store::{MailboxSettings, NewRawMessage, ProcessStatus, RawStatus, Role, Store, TicketStatus};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt as _;
use tower::ServiceExt as _;
use web::{AppState, PasswordCost, WebConfig};

const NOW: i64 = 1_800_000_000_000;
const PASSWORD: &str = "correct horse battery";
const ADMIN: &str = "admin@example.com";
const AGENT: &str = "agent@example.com";

/// The content policy every page must carry, exactly.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; \
base-uri 'none'; object-src 'none'";

/// The mail document's policy, exactly.
const MAIL_CSP: &str = "sandbox allow-same-origin allow-popups; default-src 'none'; \
img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'";

// ---------------------------------------------------------------------------------------
// The fixture.

struct Desk {
    store: Store,
    app: Router,
    clock: ManualClock,
    _data: TempDir,
    /// The one-time code the setup page asks for.
    setup_code: String,
}

/// A signed-in browser: its session cookie and the form token its pages carry.
#[derive(Clone)]
struct Browser {
    cookie: String,
    token: String,
}

impl Desk {
    async fn new() -> Desk {
        let data = TempDir::new().expect("temp dir");
        let store = Store::open(data.path(), None).await.expect("open store");
        let clock = ManualClock::new(NOW);
        let config = WebConfig {
            // Cheap hashes: an unoptimised build takes seconds per hash at the real cost.
            password_cost: PasswordCost {
                memory_kib: 64,
                passes: 1,
                lanes: 1,
            },
            ..WebConfig::default()
        };
        // Replies are queued, never sent: no sender runs in these tests.
        let outgoing = outgoing::Outgoing::new(
            store.clone(),
            outgoing::ReplyConfig::default(),
            outgoing::AcknowledgementConfig::default(),
            outgoing::SenderConfig::default(),
        );
        let state = AppState::new(store.clone(), config)
            .with_clock(Arc::new(clock.clone()))
            .with_outgoing(outgoing);
        let setup_code = state.setup_code().display();
        Desk {
            app: web::app(state),
            store,
            clock,
            _data: data,
            setup_code,
        }
    }

    async fn add_user(&self, email: &str, role: Role) -> i64 {
        let hash = web::hash_password_with(
            PASSWORD,
            PasswordCost {
                memory_kib: 64,
                passes: 1,
                lanes: 1,
            },
        )
        .expect("hash");
        self.store
            .create_user(email, None, role, &hash, NOW)
            .await
            .expect("create user")
            .id
    }

    /// Signs in through the sign-in form; reads the form token from the next page.
    async fn sign_in(&self, email: &str) -> Browser {
        let reply = self
            .post("/login", &[("email", email), ("password", PASSWORD)], None)
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let cookie = reply.cookie("popdesk_session").expect("a session cookie");
        let mut browser = Browser {
            cookie,
            token: String::new(),
        };
        let page = self.get("/tickets", Some(&browser)).await;
        browser.token = page.form_token().expect("a form token on the page");
        browser
    }

    async fn admin(&self) -> Browser {
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
    /// (team mailboxes: an agent sees only the mailboxes granted).
    async fn agent(&self) -> Browser {
        let agent = match self.store.user_by_email(AGENT).await.expect("user") {
            Some(agent) => agent.id,
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
            .set_user_mailboxes(agent, &every)
            .await
            .expect("grant every mailbox");
        self.sign_in(AGENT).await
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let mut request = request;
        // As `into_make_service_with_connect_info` would: the sign-in limit sees an address.
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 10], 40000))));
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    fn request(
        method: Method,
        uri: &str,
        browser: Option<&Browser>,
    ) -> axum::http::request::Builder {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(browser) = browser {
            request = request.header(
                header::COOKIE,
                format!("popdesk_session={}", browser.cookie),
            );
        }
        request
    }

    async fn get(&self, uri: &str, browser: Option<&Browser>) -> Reply {
        self.send(
            Desk::request(Method::GET, uri, browser)
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    /// The page a redirect leads to, with the flash cookie the redirect set.
    async fn follow(&self, reply: &Reply, browser: &Browser) -> Reply {
        let flash = reply.cookie("popdesk_flash").expect("a flash");
        self.send(
            Request::get(reply.location())
                .header(
                    header::COOKIE,
                    format!("popdesk_session={}; popdesk_flash={flash}", browser.cookie),
                )
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    /// A form post as a browser sends it from a popdesk page: same-origin, with the
    /// page's token (when signed in) unless the fields already name one.
    async fn post(&self, uri: &str, fields: &[(&str, &str)], browser: Option<&Browser>) -> Reply {
        let mut fields: Vec<(&str, &str)> = fields.to_vec();
        if let Some(browser) = browser
            && !fields.iter().any(|(name, _)| *name == "csrf")
        {
            fields.push(("csrf", &browser.token));
        }
        self.post_raw(uri, &fields, browser, &[("sec-fetch-site", "same-origin")])
            .await
    }

    async fn post_raw(
        &self,
        uri: &str,
        fields: &[(&str, &str)],
        browser: Option<&Browser>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Desk::request(Method::POST, uri, browser)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = serde_urlencoded::to_string(fields).expect("form");
        self.send(request.body(Body::from(body)).expect("request"))
            .await
    }

    async fn mailbox(&self, name: &str) -> i64 {
        let settings = MailboxSettings {
            name: name.to_string(),
            host: "pop.example.com".into(),
            username: format!("{name}@example.com"),
            enabled: false,
            ..MailboxSettings::default()
        };
        self.store
            .add_mailbox(&settings, &SecretString::from("secret".to_string()), NOW)
            .await
            .expect("add mailbox")
            .id
    }

    /// Stores raw bytes as the fetcher would and runs the real processor; returns the
    /// raw message id.
    async fn deliver(&self, mailbox_id: i64, bytes: &[u8]) -> i64 {
        // A second apart: "most recent activity first" has an order to keep.
        self.clock.set(self.clock.now_ms() + 1000);
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
        let id = self
            .store
            .commit_batch(mailbox_id, &[item], NOW)
            .await
            .expect("commit")[0]
            .raw_message_id();
        Processor::new(
            self.store.clone(),
            Arc::new(self.clock.clone()),
            ProcessorConfig::default(),
        )
        .process_pending()
        .await
        .expect("process");
        id
    }

    /// A mailbox with the printer ticket: HTML with an inline image and an attachment,
    /// a reply quoting it, an out-of-office answer and a bounce about it. Returns
    /// (mailbox id, ticket number, raw id of the HTML mail).
    async fn printer_ticket(&self) -> (i64, i64, i64) {
        let mailbox = self.mailbox("support").await;
        let html = self.deliver(mailbox, &printer_mail()).await;
        self.deliver(mailbox, &printer_reply()).await;
        self.deliver(mailbox, &printer_auto_reply()).await;
        self.deliver(mailbox, &printer_bounce()).await;
        let ticket = self
            .store
            .ticket_by_number(1)
            .await
            .expect("ticket")
            .expect("ticket #1");
        assert_eq!(ticket.subject, "Printer on fire");
        (mailbox, ticket.number, html)
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn location(&self) -> &str {
        self.header("location")
    }

    /// The value a `Set-Cookie` gives this cookie ("" for a removal).
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.to_string())
    }

    /// The form token in the page's first hidden `csrf` field.
    fn form_token(&self) -> Option<String> {
        tags(&self.body)
            .into_iter()
            .find(|tag| tag.name == "input" && tag.attr("name") == Some("csrf"))
            .and_then(|tag| tag.attr("value").map(str::to_string))
            .filter(|token| !token.is_empty())
    }

    /// The text of the elements with this role attribute, tags stripped.
    fn role_text(&self, role: &str) -> Vec<String> {
        let body = &self.body;
        let needle = format!("role=\"{role}\"");
        body.match_indices(&needle)
            .filter_map(|(at, _)| {
                let open = body[..at].rfind('<')?;
                let name: String = body[open + 1..]
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                let start = at + body[at..].find('>')? + 1;
                let end = start + body[start..].find(&format!("</{name}>"))?;
                Some(text_of(&body[start..end]))
            })
            .collect()
    }

    fn assert_page(&self, status: StatusCode, what: &str) {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        assert_eq!(self.header("content-security-policy"), PAGE_CSP, "{what}");
        assert!(
            self.header("content-type").starts_with("text/html"),
            "{what}: {}",
            self.header("content-type")
        );
        assert_eq!(self.header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(self.header("cache-control"), "no-store", "{what}");
        assert_clean_html(&self.body, what);
        assert_fields_labelled(&self.body, what);
        assert!(self.body.contains("<main id=\"main\""), "{what}: no <main>");
        let title = tags(&self.body).iter().any(|t| t.name == "title");
        assert!(title, "{what}: no <title>");
        assert!(
            self.body.contains(" · popdesk</title>"),
            "{what}: the title should read \"<Page> · popdesk\""
        );
    }

    /// A page for a signed-in admin: the whole navigation and "Sign out".
    fn assert_admin_page(&self, what: &str) {
        self.assert_page(StatusCode::OK, what);
        for link in [
            "href=\"/tickets\"",
            "href=\"/mailboxes\"",
            "href=\"/messages?status=failed\"",
            "href=\"/users\"",
            "href=\"/tokens\"",
        ] {
            assert!(self.body.contains(link), "{what}: nav lacks {link}");
        }
        for text in [
            "Tickets",
            "Mailboxes",
            "Failed messages",
            "Users",
            "API tokens",
        ] {
            assert!(
                self.body.contains(&format!(">{text}</a>")),
                "{what}: no {text} link"
            );
        }
        assert!(
            self.body
                .contains("<button type=\"submit\" class=\"quiet\">Sign out</button>"),
            "{what}: no Sign out button"
        );
    }
}

// ---------------------------------------------------------------------------------------
// A small tag reader: enough to check attributes, not a full HTML parser. Text between
// tags is escaped by the templates, so a `<` there is never markup.

#[derive(Debug)]
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn tags(html: &str) -> Vec<Tag> {
    let bytes = html.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(offset) = html[i..].find('<') {
        i += offset + 1;
        if html[i..].starts_with("!--") {
            i = html[i..].find("-->").map_or(html.len(), |end| i + end + 3);
            continue;
        }
        if !bytes.get(i).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let name_end = html[i..]
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '-')
            .map_or(html.len(), |end| i + end);
        let name = html[i..name_end].to_ascii_lowercase();
        i = name_end;
        let mut attrs = Vec::new();
        loop {
            while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            match bytes.get(i) {
                None => break,
                Some(b'>') => {
                    i += 1;
                    break;
                }
                Some(b'/') => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let attr_end = html[i..]
                .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>' || c == '/')
                .map_or(html.len(), |end| i + end);
            let attr = html[i..attr_end].to_ascii_lowercase();
            i = attr_end;
            let mut value = String::new();
            if bytes.get(i) == Some(&b'=') {
                i += 1;
                match bytes.get(i) {
                    Some(&quote @ (b'"' | b'\'')) => {
                        let end = html[i + 1..]
                            .find(char::from(quote))
                            .map_or(html.len(), |end| i + 1 + end);
                        value = html[i + 1..end].to_string();
                        i = (end + 1).min(html.len());
                    }
                    _ => {
                        let end = html[i..]
                            .find(|c: char| c.is_ascii_whitespace() || c == '>')
                            .map_or(html.len(), |end| i + end);
                        value = html[i..end].to_string();
                        i = end;
                    }
                }
            }
            attrs.push((attr, value));
        }
        // Raw text elements: their content is not markup.
        if name == "script" || name == "style" {
            let close = format!("</{name}");
            i = html[i..].find(&close).map_or(html.len(), |end| i + end);
        }
        found.push(Tag { name, attrs });
    }
    found
}

/// What the page policy would block, and markup that should never be there: inline
/// scripts, `<style>`, `style=""`, `on...=""` handlers.
fn assert_clean_html(html: &str, what: &str) {
    for tag in tags(html) {
        if tag.name == "script" {
            assert!(tag.attr("src").is_some(), "{what}: an inline <script>");
        }
        assert_ne!(tag.name, "style", "{what}: a <style> element");
        for (name, value) in &tag.attrs {
            assert_ne!(name, "style", "{what}: style=\"{value}\" on <{}>", tag.name);
            assert!(
                !name.starts_with("on"),
                "{what}: {name}=\"{value}\" on <{}>",
                tag.name
            );
            assert!(
                !value
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("javascript:"),
                "{what}: a javascript: URL"
            );
        }
    }
}

/// Every field a person fills in has a `<label for>` naming it, and ids are unique.
fn assert_fields_labelled(html: &str, what: &str) {
    let tags = tags(html);
    let labelled: HashSet<&str> = tags
        .iter()
        .filter(|t| t.name == "label")
        .filter_map(|t| t.attr("for"))
        .collect();
    let mut ids = HashMap::new();
    for tag in &tags {
        if let Some(id) = tag.attr("id") {
            *ids.entry(id.to_string()).or_insert(0) += 1;
        }
        let field = match tag.name.as_str() {
            "select" | "textarea" => true,
            "input" => !matches!(
                tag.attr("type").unwrap_or("text"),
                "hidden" | "submit" | "button" | "reset" | "image"
            ),
            _ => false,
        };
        if field {
            let id = tag.attr("id").unwrap_or("");
            assert!(
                !id.is_empty() && labelled.contains(id),
                "{what}: <{} name={:?}> has no <label for>",
                tag.name,
                tag.attr("name")
            );
        }
    }
    for (id, count) in ids {
        assert_eq!(count, 1, "{what}: the id {id:?} is used {count} times");
    }
}

/// Markup as text: tags dropped, whitespace collapsed.
fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The label text of the field with this id.
fn label_of(html: &str, id: &str) -> Option<String> {
    let needle = format!("<label for=\"{id}\">");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find("</label>")? + start;
    Some(html[start..end].to_string())
}

// ---------------------------------------------------------------------------------------
// Mail.

const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn plain_mail(id: &str, from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\n\
Date: Thu, 26 Nov 2026 08:00:00 +0000\r\nMessage-ID: <{id}>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// HTML with a script, an inline image by cid and markup only mail has; a text
/// attachment.
fn printer_mail() -> Vec<u8> {
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD.encode(PNG);
    format!(
        "From: Dana Whitfield <dana@customer.example>\r\nTo: support@example.com\r\n\
Subject: Printer on fire\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\
Message-ID: <first@customer.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"MIX\"\r\n\r\n\
--MIX\r\nContent-Type: multipart/alternative; boundary=\"ALT\"\r\n\r\n\
--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
The printer on floor 3 is literally on fire.\r\n\
--ALT\r\nContent-Type: multipart/related; boundary=\"REL\"\r\n\r\n\
--REL\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<p>The printer on floor 3 is <b class=\"mailonly\">literally on fire</b>.</p>\
<img alt=\"flames\" src=\"cid:flames@customer.example\"><script>alert(1)</script>\r\n\
--REL\r\nContent-Type: image/png\r\nContent-ID: <flames@customer.example>\r\n\
Content-Disposition: inline; filename=\"flames.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
{png}\r\n--REL--\r\n--ALT--\r\n\
--MIX\r\nContent-Type: text/plain; name=\"report.txt\"\r\n\
Content-Disposition: attachment; filename=\"report.txt\"\r\n\r\nSmoke level: high\r\n\
--MIX--\r\n"
    )
    .into_bytes()
}

fn printer_reply() -> Vec<u8> {
    b"From: Dana Whitfield <dana@customer.example>\r\nTo: support@example.com\r\n\
Subject: Re: Printer on fire\r\nDate: Thu, 26 Nov 2026 09:00:00 +0000\r\n\
Message-ID: <second@customer.example>\r\nIn-Reply-To: <first@customer.example>\r\n\
References: <first@customer.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Update: the fire is out, but the printer smells of toast.\r\n\r\n\
On Thu, 26 Nov 2026 at 08:00, Dana Whitfield <dana@customer.example> wrote:\r\n\
> earlier text: the printer on floor 3 is literally on fire.\r\n"
        .to_vec()
}

/// A delivery status notification about `original`.
fn bounce(id: &str, original: &str) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n\
To: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n\
Date: Thu, 26 Nov 2026 09:30:00 +0000\r\nMessage-ID: <{id}>\r\n\
Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"DSN\"\r\n\r\n\
--DSN\r\nContent-Type: text/plain\r\n\r\n\
Your message could not be delivered to nobody@customer.example.\r\n\
--DSN\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; mx.customer.example\r\n\r\n\
Final-Recipient: rfc822; nobody@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\
--DSN\r\nContent-Type: text/rfc822-headers\r\n\r\n\
Message-ID: <{original}>\r\nSubject: Printer on fire\r\n--DSN--\r\n"
    )
    .into_bytes()
}

/// An out-of-office answer to the first mail.
fn printer_auto_reply() -> Vec<u8> {
    b"From: Dana Whitfield <dana@customer.example>\r\nTo: support@example.com\r\n\
Subject: Out of office: Printer on fire\r\nDate: Thu, 26 Nov 2026 09:10:00 +0000\r\n\
Message-ID: <ooo@customer.example>\r\nIn-Reply-To: <first@customer.example>\r\n\
References: <first@customer.example>\r\nAuto-Submitted: auto-replied\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nI am away until Monday.\r\n"
        .to_vec()
}

fn printer_bounce() -> Vec<u8> {
    bounce("bounce1@mx.customer.example", "first@customer.example")
}

// ---------------------------------------------------------------------------------------
// Pages.

#[tokio::test]
async fn every_page_renders_for_an_admin_under_the_page_policy() {
    let desk = Desk::new().await;
    let (mailbox, number, _) = desk.printer_ticket().await;
    // A bounce about nothing: ignored, so the ignored list has a row.
    let ignored = desk
        .deliver(
            mailbox,
            &bounce("lost@mx.example", "nothing@nowhere.example"),
        )
        .await;
    let admin = desk.admin().await;
    let user = desk.add_user(AGENT, Role::Agent).await;
    for (uri, what) in [
        ("/tickets".to_string(), "tickets"),
        (
            "/tickets?status=new&q=printer".to_string(),
            "tickets filtered",
        ),
        (format!("/tickets/{number}"), "ticket"),
        ("/mailboxes".to_string(), "mailboxes"),
        ("/mailboxes/new".to_string(), "presets"),
        ("/mailboxes/new?preset=gmail".to_string(), "gmail"),
        (
            "/mailboxes/new?preset=microsoft365".to_string(),
            "microsoft 365",
        ),
        ("/mailboxes/new?preset=generic".to_string(), "generic"),
        (format!("/mailboxes/{mailbox}"), "mailbox"),
        (format!("/mailboxes/{mailbox}/delete"), "delete mailbox"),
        ("/messages?status=failed".to_string(), "failed messages"),
        ("/messages?status=ignored".to_string(), "ignored messages"),
        (format!("/messages/{ignored}"), "message"),
        ("/users".to_string(), "users"),
        (format!("/users/{user}/delete"), "delete user"),
        ("/tokens".to_string(), "tokens"),
        ("/preferences".to_string(), "preferences"),
    ] {
        let page = desk.get(&uri, Some(&admin)).await;
        page.assert_admin_page(what);
    }
    let ignored_list = desk.get("/messages?status=ignored", Some(&admin)).await;
    assert!(
        ignored_list
            .body
            .contains(&format!("href=\"/messages/{ignored}\""))
    );
    assert!(
        ignored_list
            .body
            .contains("Bounce not about any known ticket")
    );
}

#[tokio::test]
async fn agents_work_tickets_but_get_the_403_page_on_admin_pages() {
    let desk = Desk::new().await;
    let (mailbox, number, _) = desk.printer_ticket().await;
    let agent = desk.agent().await;
    for uri in ["/tickets".to_string(), format!("/tickets/{number}")] {
        let page = desk.get(&uri, Some(&agent)).await;
        page.assert_page(StatusCode::OK, &uri);
        assert!(
            !page.body.contains("href=\"/mailboxes\""),
            "{uri}: agents see no admin links"
        );
        assert!(page.body.contains(">Sign out</button>"));
    }
    for uri in [
        "/mailboxes".to_string(),
        "/mailboxes/new?preset=gmail".to_string(),
        format!("/mailboxes/{mailbox}"),
        "/messages?status=failed".to_string(),
        "/messages/1".to_string(),
        "/users".to_string(),
        "/tokens".to_string(),
    ] {
        let page = desk.get(&uri, Some(&agent)).await;
        page.assert_page(StatusCode::FORBIDDEN, &uri);
        assert!(
            page.body.contains("Only an admin can open this page."),
            "{uri}"
        );
        assert!(
            page.body.contains(">Sign out</button>"),
            "{uri}: the 403 page keeps the layout"
        );
    }
    // Nor can an agent post to them, token or not.
    let reply = desk
        .post(
            &format!("/mailboxes/{mailbox}/enabled"),
            &[("enabled", "true")],
            Some(&agent),
        )
        .await;
    reply.assert_page(StatusCode::FORBIDDEN, "agent enabling a mailbox");
    let unchanged = desk
        .store
        .mailbox_by_id(mailbox)
        .await
        .expect("read")
        .expect("mailbox");
    assert!(!unchanged.settings.enabled);
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_sign_in_and_back() {
    let desk = Desk::new().await;
    desk.add_user(ADMIN, Role::Admin).await;
    for uri in [
        "/tickets",
        "/tickets/1",
        "/mailboxes/1",
        "/users",
        "/messages/1/html",
    ] {
        let reply = desk.get(uri, None).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{uri}");
        let next = serde_urlencoded::to_string([("next", uri)]).expect("query");
        assert_eq!(reply.location(), format!("/login?{next}"), "{uri}");
    }
    let reply = desk.get("/tickets?status=new&q=a+b", None).await;
    assert_eq!(
        reply.location(),
        "/login?next=%2Ftickets%3Fstatus%3Dnew%26q%3Da%2Bb"
    );
    // A form posted without a session is not replayed after signing in.
    let reply = desk
        .post_raw("/tickets/1/status", &[("status", "open")], None, &[])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/login");
    // htmx gets a full page load instead of the sign-in page pasted into a fragment.
    let reply = desk
        .send(
            Request::get("/tickets")
                .header("hx-request", "true")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("hx-redirect"), "/login?next=%2Ftickets");

    // Signing in goes back to `next`, only ever on this site.
    let reply = desk
        .post(
            "/login",
            &[
                ("email", ADMIN),
                ("password", PASSWORD),
                ("next", "/tickets?status=new"),
            ],
            None,
        )
        .await;
    assert_eq!(reply.location(), "/tickets?status=new");
    for evil in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let reply = desk
            .post(
                "/login",
                &[("email", ADMIN), ("password", PASSWORD), ("next", evil)],
                None,
            )
            .await;
        assert_eq!(reply.location(), "/tickets", "next={evil}");
    }
}

#[tokio::test]
async fn home_leads_to_setup_then_sign_in_then_tickets() {
    let desk = Desk::new().await;
    assert_eq!(desk.get("/", None).await.location(), "/setup");
    assert_eq!(desk.get("/login", None).await.location(), "/setup");
    desk.add_user(ADMIN, Role::Admin).await;
    assert_eq!(desk.get("/", None).await.location(), "/login");
    let admin = desk.sign_in(ADMIN).await;
    assert_eq!(desk.get("/", Some(&admin)).await.location(), "/tickets");
    assert_eq!(
        desk.get("/login", Some(&admin)).await.location(),
        "/tickets"
    );
}

#[tokio::test]
async fn setup_makes_the_first_admin_once() {
    let desk = Desk::new().await;
    let form = desk.get("/setup", None).await;
    form.assert_page(StatusCode::OK, "setup");
    for (id, label) in [
        ("setup_code", "Setup code"),
        ("email", "Email"),
        ("name", "Name"),
        ("password", "Password"),
    ] {
        assert_eq!(label_of(&form.body, id).as_deref(), Some(label));
    }
    assert!(form.body.contains(">Create admin</button>"));
    let code = desk.setup_code.clone();

    // Without the code from the log, nobody claims the install.
    for wrong in ["", "AAAA-AAAA-AAAA"] {
        let refused = desk
            .post(
                "/setup",
                &[
                    ("email", "eve@example.org"),
                    ("name", "Eve"),
                    ("password", PASSWORD),
                    ("setup_code", wrong),
                ],
                None,
            )
            .await;
        refused.assert_page(StatusCode::FORBIDDEN, "setup with a wrong code");
        assert!(
            refused
                .role_text("alert")
                .iter()
                .any(|t| t.contains("setup code is missing or wrong")),
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains("value=\"eve@example.org\""),
            "the address is kept"
        );
    }
    assert_eq!(desk.store.count_users().await.expect("count"), 0);

    let short = desk
        .post(
            "/setup",
            &[
                ("email", "sam@example.org"),
                ("name", "Sam"),
                ("password", "short"),
                ("setup_code", &code),
            ],
            None,
        )
        .await;
    short.assert_page(
        StatusCode::UNPROCESSABLE_ENTITY,
        "setup with a short password",
    );
    assert!(
        short
            .role_text("alert")
            .iter()
            .any(|t| t.contains("at least 10 characters"))
    );
    assert!(
        short.body.contains("value=\"sam@example.org\""),
        "the address is kept"
    );

    let done = desk
        .post(
            "/setup",
            &[
                ("email", "sam@example.org"),
                ("name", "Sam Setup"),
                ("password", PASSWORD),
                ("setup_code", &code),
            ],
            None,
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/mailboxes/new");
    let cookie = done.cookie("popdesk_session").expect("signed in");
    let browser = Browser {
        cookie,
        token: String::new(),
    };
    let next = desk.follow(&done, &browser).await;
    next.assert_admin_page("after setup");
    assert!(
        next.role_text("status")
            .iter()
            .any(|t| t.contains("popdesk is set up"))
    );

    // Closed for good.
    assert_eq!(desk.get("/setup", None).await.location(), "/login");
    let again = desk
        .post(
            "/setup",
            &[
                ("email", "eve@example.org"),
                ("name", ""),
                ("password", PASSWORD),
                ("setup_code", &code),
            ],
            None,
        )
        .await;
    assert_eq!(again.location(), "/login");
    assert_eq!(desk.store.count_users().await.expect("count"), 1);
}

#[tokio::test]
async fn a_wrong_password_shows_the_alert_and_too_many_lock_out() {
    let desk = Desk::new().await;
    desk.add_user(ADMIN, Role::Admin).await;
    let form = desk.get("/login", None).await;
    form.assert_page(StatusCode::OK, "sign-in");
    assert_eq!(label_of(&form.body, "email").as_deref(), Some("Email"));
    assert_eq!(
        label_of(&form.body, "password").as_deref(),
        Some("Password")
    );
    assert!(form.body.contains(">Sign in</button>"));

    let wrong = desk
        .post(
            "/login",
            &[("email", ADMIN), ("password", "not the password")],
            None,
        )
        .await;
    wrong.assert_page(StatusCode::UNAUTHORIZED, "wrong password");
    assert_eq!(
        wrong.role_text("alert"),
        ["The email or password is wrong."]
    );
    assert!(
        wrong.body.contains(&format!("value=\"{ADMIN}\"")),
        "the address is kept"
    );
    assert!(
        !wrong.body.contains("not the password"),
        "the password is never echoed"
    );
    assert!(wrong.cookie("popdesk_session").is_none());

    for _ in 0..4 {
        desk.post("/login", &[("email", ADMIN), ("password", "guess")], None)
            .await;
    }
    let locked = desk
        .post("/login", &[("email", ADMIN), ("password", PASSWORD)], None)
        .await;
    locked.assert_page(StatusCode::TOO_MANY_REQUESTS, "locked out");
    assert!(
        locked.role_text("alert")[0].starts_with("Too many attempts."),
        "{:?}",
        locked.role_text("alert")
    );
}

// ---------------------------------------------------------------------------------------
// Forms: tokens and the cross-site check.

#[tokio::test]
async fn a_form_without_its_token_is_refused() {
    let desk = Desk::new().await;
    let (_, number, _) = desk.printer_ticket().await;
    let admin = desk.admin().await;
    let agent = desk.agent().await;
    let uri = format!("/tickets/{number}/status");
    for (what, token) in [
        ("no token", None),
        ("a made-up token", Some("forged")),
        ("another session's token", Some(agent.token.as_str())),
    ] {
        let mut fields = vec![("status", "closed")];
        if let Some(token) = token {
            fields.push(("csrf", token));
        }
        let reply = desk
            .post_raw(
                &uri,
                &fields,
                Some(&admin),
                &[("sec-fetch-site", "same-origin")],
            )
            .await;
        reply.assert_page(StatusCode::FORBIDDEN, what);
        assert!(
            reply.body.contains("This form could not be accepted"),
            "{what}"
        );
        assert!(
            reply.body.contains(">Sign out</button>"),
            "{what}: the 403 page has the layout"
        );
    }
    // Signing out needs the token too: another site cannot sign people out.
    let reply = desk.post_raw("/logout", &[], Some(&admin), &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let ticket = desk
        .store
        .ticket_by_number(number)
        .await
        .expect("read")
        .expect("ticket");
    assert_eq!(ticket.status, TicketStatus::New, "nothing changed");
    // The page's own token works.
    let reply = desk.post(&uri, &[("status", "closed")], Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_cross_site_form_is_refused() {
    let desk = Desk::new().await;
    let (_, number, _) = desk.printer_ticket().await;
    let admin = desk.admin().await;
    let uri = format!("/tickets/{number}/status");
    let fields = [("status", "closed"), ("csrf", admin.token.as_str())];
    for headers in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("origin", "https://evil.example")][..],
    ] {
        let reply = desk.post_raw(&uri, &fields, Some(&admin), headers).await;
        reply.assert_page(StatusCode::FORBIDDEN, "cross-site");
    }
    // Sign-in and setup have no session to take a token from: the check guards them.
    let reply = desk
        .post_raw(
            "/login",
            &[("email", ADMIN), ("password", PASSWORD)],
            None,
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    reply.assert_page(StatusCode::FORBIDDEN, "cross-site sign-in");
    assert!(reply.cookie("popdesk_session").is_none());
    let ticket = desk
        .store
        .ticket_by_number(number)
        .await
        .expect("read")
        .expect("ticket");
    assert_eq!(ticket.status, TicketStatus::New, "nothing changed");
}

// ---------------------------------------------------------------------------------------
// Tickets.

#[tokio::test]
async fn status_and_notes_work_without_javascript() {
    let desk = Desk::new().await;
    let (_, number, _) = desk.printer_ticket().await;
    let admin = desk.admin().await;
    let page = desk.get(&format!("/tickets/{number}"), Some(&admin)).await;
    assert_eq!(label_of(&page.body, "status").as_deref(), Some("Status"));
    assert_eq!(
        label_of(&page.body, "note").as_deref(),
        Some("Internal note")
    );
    assert!(
        page.body
            .contains(&format!("action=\"/tickets/{number}/status\""))
    );
    assert!(page.body.contains(">Change status</button>"));
    assert!(page.body.contains(">Add note</button>"));

    let reply = desk
        .post(
            &format!("/tickets/{number}/status"),
            &[("status", "open")],
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location(), format!("/tickets/{number}"));
    let shown = desk.follow(&reply, &admin).await;
    shown.assert_admin_page("ticket after the change");
    assert_eq!(shown.role_text("status"), ["The status is now Open."]);
    assert_eq!(
        shown.cookie("popdesk_flash").as_deref(),
        Some(""),
        "shown once, then cleared"
    );
    assert!(
        shown
            .body
            .contains("<span class=\"badge status-open\">Open</span>")
    );
    assert!(
        shown
            .body
            .contains("admin@example.com changed the status from New to Open")
    );
    assert!(
        shown
            .body
            .contains("<option value=\"open\" selected>Open</option>")
    );

    let reply = desk
        .post(
            &format!("/tickets/{number}/notes"),
            &[("body", "Called the <b>fire</b> brigade.")],
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(
        reply
            .location()
            .starts_with(&format!("/tickets/{number}#note-"))
    );
    let page = desk.get(&format!("/tickets/{number}"), Some(&admin)).await;
    page.assert_admin_page("ticket with a note");
    assert!(page.body.contains("Internal note</span>"));
    assert!(
        page.body
            .contains("Called the &#60;b&#62;fire&#60;/b&#62; brigade."),
        "a note is text, escaped"
    );
    let store_ticket = desk
        .store
        .ticket_by_number(number)
        .await
        .expect("read")
        .expect("ticket");
    let events = desk
        .store
        .ticket_events(store_ticket.id)
        .await
        .expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].author, "admin@example.com");

    // An empty note comes back as an error flash, nothing stored.
    let reply = desk
        .post(
            &format!("/tickets/{number}/notes"),
            &[("body", "   ")],
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.cookie("popdesk_flash").is_some());
    assert_eq!(
        desk.store
            .ticket_events(store_ticket.id)
            .await
            .expect("events")
            .len(),
        2
    );
}

#[tokio::test]
async fn the_ticket_page_folds_quoted_text_and_marks_bounces() {
    let desk = Desk::new().await;
    let (_, number, html_raw) = desk.printer_ticket().await;
    let admin = desk.admin().await;
    let page = desk.get(&format!("/tickets/{number}"), Some(&admin)).await;
    page.assert_admin_page("ticket");
    let body = &page.body;
    assert!(body.contains("Printer on fire <span class=\"ticket-number\">#1</span>"));
    assert_eq!(
        body.matches("<article class=\"card mail").count(),
        4,
        "four mails"
    );

    // The reply: its new text first, the quoted history folded (closed) below it.
    let reply = body
        .find("Update: the fire is out, but the printer smells of toast.")
        .expect("the reply text");
    let folded = body.find("<summary>Quoted text</summary>").expect("a fold");
    let quoted = body.find("&#62; earlier text").expect("the quoted history");
    assert!(
        reply < folded && folded < quoted,
        "reply, then the fold, then the history"
    );
    assert!(
        body.contains("<details class=\"quoted\">"),
        "folded: no `open`"
    );
    assert_eq!(
        body.matches("Update: the fire is out").count(),
        1,
        "the reply text is not repeated inside the fold"
    );

    // The bounce and the auto-reply say what they are.
    assert!(body.contains("<span class=\"badge kind-auto-reply\">Auto-reply</span>"));
    assert_eq!(body.matches(">Bounce</span>").count(), 1, "only the bounce");
    assert!(body.contains("<span class=\"badge kind-bounce\">Bounce</span>"));
    assert!(body.contains("mail-bounce"));

    // Attachments are download links named by their file.
    assert!(body.contains(&format!(
        "<a href=\"/api/v1/messages/{html_raw}/attachments/1\" download>report.txt</a>"
    )));
    assert!(body.contains("flames.png</a>"));
    // The formatted message is a sandboxed frame, without scripts.
    let frame = tags(body)
        .into_iter()
        .find(|t| t.name == "iframe")
        .expect("an iframe");
    assert_eq!(
        frame.attr("src"),
        Some(format!("/messages/{html_raw}/html").as_str())
    );
    let sandbox = frame.attr("sandbox").expect("sandboxed");
    assert!(
        !sandbox.split_whitespace().any(|s| s == "allow-scripts"),
        "{sandbox}"
    );
    assert!(sandbox.split_whitespace().any(|s| s == "allow-same-origin"));
    assert!(
        frame
            .attr("title")
            .is_some_and(|title| title.starts_with("Message from Dana Whitfield")),
        "{frame:?}"
    );
}

#[tokio::test]
async fn mail_html_is_only_served_alone_under_the_sandbox_policy() {
    let desk = Desk::new().await;
    let (_, number, html_raw) = desk.printer_ticket().await;
    let agent = desk.agent().await;

    // Not on the ticket page: the page shows the text and frames the HTML.
    let page = desk.get(&format!("/tickets/{number}"), Some(&agent)).await;
    assert!(
        !page.body.contains("class=\"mailonly\""),
        "mail markup on the page"
    );
    assert!(!page.body.contains("<b class"), "mail markup on the page");
    assert!(!page.body.contains("alert(1)"));

    // Alone, under its own policy.
    let doc = desk
        .get(&format!("/messages/{html_raw}/html"), Some(&agent))
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.header("content-security-policy"), MAIL_CSP);
    assert_eq!(doc.header("x-frame-options"), "SAMEORIGIN");
    assert_eq!(doc.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(doc.header("x-content-type-options"), "nosniff");
    assert!(doc.body.contains("literally on fire</b>"), "{}", doc.body);
    assert!(!doc.body.contains("<script"), "sanitized: {}", doc.body);
    assert!(!doc.body.contains("alert(1)"));
    assert!(
        doc.body
            .contains(&format!("src=\"/messages/{html_raw}/cid/")),
        "the inline image points at popdesk: {}",
        doc.body
    );
    // A message without HTML has no document; nor does one that is not on a ticket.
    let plain = desk.get("/messages/2/html", Some(&agent)).await;
    plain.assert_page(StatusCode::NOT_FOUND, "a plain message's html");
    let missing = desk.get("/messages/999/html", Some(&agent)).await;
    missing.assert_page(StatusCode::NOT_FOUND, "no such message");
    // The inline image it points at is served to the frame (same session).
    let image = desk
        .get(
            &format!("/messages/{html_raw}/cid/flames@customer.example"),
            Some(&agent),
        )
        .await;
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.header("content-type"), "image/png");
    // While a reprocess request waits for the processor, the frame still shows the mail.
    let admin = desk.admin().await;
    let reply = desk
        .post(
            &format!("/messages/{html_raw}/reprocess"),
            &[],
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let doc = desk
        .get(&format!("/messages/{html_raw}/html"), Some(&agent))
        .await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.body);
}

#[tokio::test]
async fn the_ticket_list_filters_counts_and_pages() {
    let desk = Desk::new().await;
    let support = desk.mailbox("support").await;
    let billing = desk.mailbox("billing").await;
    for n in 0..51 {
        let subject = if n == 7 {
            "Invoice missing".to_string()
        } else {
            format!("Question {n}")
        };
        desk.deliver(
            support,
            &plain_mail(
                &format!("q{n}@example.org"),
                &format!("c{n}@example.org"),
                &subject,
                "Hi",
            ),
        )
        .await;
    }
    desk.deliver(
        billing,
        &plain_mail("b1@example.org", "Zed <zed@example.org>", "Refund", "Hi"),
    )
    .await;
    let admin = desk.admin().await;

    let page = desk.get("/tickets", Some(&admin)).await;
    page.assert_admin_page("tickets");
    for (id, label) in [
        ("status", "Status"),
        ("mailbox", "Mailbox"),
        ("q", "Search"),
    ] {
        assert_eq!(label_of(&page.body, id).as_deref(), Some(label));
    }
    assert!(page.body.contains(">Filter</button>"));
    for column in [
        "Number",
        "Subject",
        "Requester",
        "Mailbox",
        "Status",
        "Last activity",
    ] {
        assert!(
            page.body
                .contains(&format!("<th scope=\"col\">{column}</th>")),
            "{column}"
        );
    }
    assert!(
        page.body
            .contains(">New <span class=\"count\">52</span></a>")
    );
    assert!(
        page.body
            .contains(">All <span class=\"count\">52</span></a>")
    );
    assert_eq!(
        page.body.matches("<tr>").count() + page.body.matches("<tr data-href").count(),
        51,
        "a header row and 50 tickets"
    );
    assert!(page.body.contains("1–50 of 52"));
    // Most recent activity first: the last one delivered leads, the first is on page 2.
    let refund = page.body.find(">Refund</a>").expect("the newest");
    let next_newest = page.body.find(">Question 50</a>").expect("the next newest");
    assert!(refund < next_newest);
    assert!(!page.body.contains(">Question 0</a>"));
    // "Next" continues after the last row shown (keyset), and leads where page 2 does.
    let next = page
        .body
        .split("rel=\"next\">Next</a>")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .and_then(|href| href.split('"').next())
        .expect("a Next link")
        .replace("&#38;", "&");
    assert!(next.starts_with("/tickets?after="), "{next}");
    assert!(!page.body.contains(">Previous</a>"));
    assert!(
        page.body.contains("href=\"/tickets?page=2\">2</a>"),
        "page numbers"
    );
    let followed = desk.get(&next, Some(&admin)).await;
    followed.assert_admin_page("tickets after the first page");
    assert!(followed.body.contains("2 of 52"));
    assert!(followed.body.contains(">Question 0</a>"));
    assert!(followed.body.contains("rel=\"prev\">Previous</a>"));
    assert!(!followed.body.contains(">Next</a>"));

    let second = desk.get("/tickets?page=2", Some(&admin)).await;
    second.assert_admin_page("tickets page 2");
    assert!(second.body.contains("51–52 of 52"));
    assert!(second.body.contains("rel=\"prev\">Previous</a>"));
    assert!(!second.body.contains(">Next</a>"));

    let found = desk.get("/tickets?q=INVOICE", Some(&admin)).await;
    assert!(found.body.contains(">Invoice missing</a>"));
    assert!(found.body.contains("1–1 of 1"));
    let by_requester = desk.get("/tickets?q=zed", Some(&admin)).await;
    assert!(by_requester.body.contains(">Refund</a>"));
    let by_mailbox = desk
        .get(&format!("/tickets?mailbox={billing}"), Some(&admin))
        .await;
    assert!(by_mailbox.body.contains("1–1 of 1"));
    assert!(by_mailbox.body.contains(&format!(
        "<option value=\"{billing}\" selected>billing</option>"
    )));
    // Status links keep the other filters.
    assert!(by_mailbox.body.contains(&format!(
        "href=\"/tickets?status=open&#38;mailbox={billing}\""
    )));
    let none = desk.get("/tickets?status=closed", Some(&admin)).await;
    none.assert_admin_page("no closed tickets");
    assert!(none.body.contains("No tickets match these filters."));
    let past = desk.get("/tickets?page=9", Some(&admin)).await;
    past.assert_admin_page("past the last page");
    assert!(past.body.contains("This page is past the last one."));
    let bad = desk.get("/tickets?status=burning", Some(&admin)).await;
    bad.assert_page(StatusCode::BAD_REQUEST, "an unknown status");
    // With no ticket at all, the empty state says where tickets come from.
    let empty = Desk::new().await;
    let browser = empty.admin().await;
    let page = empty.get("/tickets", Some(&browser)).await;
    assert!(page.body.contains("No tickets yet."));
}

// ---------------------------------------------------------------------------------------
// Mailboxes.

/// The fields of the mailbox form, as a browser sends them with the given changes.
/// Searching the list (issue 15): words found in the mail's text show the words around
/// them with the hits marked; a ticket number opens that ticket when the page is asked
/// for, and while typing (htmx) lists it first with a link instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_shows_snippets_and_a_ticket_number_opens_its_ticket() {
    let desk = Desk::new().await;
    let support = desk.mailbox("support").await;
    desk.deliver(
        support,
        &plain_mail(
            "s1@example.org",
            "Carol <carol@example.org>",
            "Printer",
            "Since Monday the printer crashes <every> morning.",
        ),
    )
    .await;
    desk.deliver(
        support,
        &plain_mail("s2@example.org", "dan@example.org", "Other", "Hi"),
    )
    .await;
    let admin = desk.admin().await;
    let number = desk
        .store
        .tickets(&store::TicketFilter::default())
        .await
        .expect("tickets")
        .iter()
        .find(|t| t.subject == "Printer")
        .expect("the printer ticket")
        .number;

    let found = desk.get("/tickets?q=crashes+MORNING", Some(&admin)).await;
    found.assert_admin_page("search results");
    assert!(found.body.contains("1–1 of 1, best match first."));
    assert!(
        found.body.contains(
            "<div class=\"snippet\">Since Monday the printer <mark>crashes</mark> &#60;every&#62; \
         <mark>morning</mark>.</div>"
        ),
        "{}",
        found.body
    );

    let jump = desk
        .get(&format!("/tickets?q=%23{number}"), Some(&admin))
        .await;
    assert_eq!(jump.status, StatusCode::SEE_OTHER);
    assert_eq!(jump.location(), format!("/tickets/{number}"));
    let typing = desk
        .send(
            Desk::request(Method::GET, &format!("/tickets?q={number}"), Some(&admin))
                .header("hx-request", "true")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(typing.status, StatusCode::OK);
    assert!(typing.body.contains(&format!(
        "<a href=\"/tickets/{number}\">Open ticket #{number}</a>"
    )));
    let none = desk.get("/tickets?q=%23987654", Some(&admin)).await;
    assert_eq!(none.status, StatusCode::OK);
    assert!(none.body.contains("No tickets match these filters."));
}

fn mailbox_fields<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields: Vec<(&str, &str)> = vec![
        ("preset", "generic"),
        ("name", "Support"),
        ("host", "pop.example.com"),
        ("port", "995"),
        ("tls", "implicit"),
        ("ca_file", ""),
        ("username", "support@example.com"),
        ("password", "mailbox secret"),
        ("auth_method", "auto"),
        ("policy", "delete"),
        ("delete_after_days", ""),
        ("start", "all"),
        ("poll_interval_secs", "300"),
        ("enabled", "true"),
        // "Add mailbox" tests the connection first; these forms are about the other
        // rules, so they save without the test (the test-first flow has its own tests).
        ("save_anyway", "enabled"),
    ];
    for (name, value) in changes {
        fields.retain(|(n, _)| n != name);
        if !value.is_empty() || *name != "enabled" {
            fields.push((name, value));
        }
    }
    fields
}

#[tokio::test]
async fn presets_fill_the_form_and_explain_the_provider() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    let choice = desk.get("/mailboxes/new", Some(&admin)).await;
    for (preset, label) in [
        ("gmail", "Gmail"),
        ("microsoft365", "Microsoft 365"),
        ("generic", "Other POP3 server"),
    ] {
        assert!(
            choice.body.contains(&format!(
                "href=\"/mailboxes/new?preset={preset}\">{label}</a>"
            )),
            "{label}"
        );
    }
    assert!(
        !choice
            .body
            .contains("<form class=\"card stack mailbox-form\""),
        "no form before a choice"
    );

    let gmail = desk.get("/mailboxes/new?preset=gmail", Some(&admin)).await;
    assert!(gmail.body.contains(
        "id=\"host\" name=\"host\" type=\"text\" required maxlength=\"253\" value=\"pop.gmail.com\""
    ));
    assert!(gmail.body.contains("recent:"));
    assert!(gmail.body.contains("30 days"));
    assert!(gmail.body.contains("app password"));
    assert!(gmail.body.contains("“When messages are accessed with POP”"));
    let microsoft = desk
        .get("/mailboxes/new?preset=microsoft365", Some(&admin))
        .await;
    assert!(microsoft.body.contains("value=\"outlook.office365.com\""));
    assert!(
        microsoft
            .body
            .contains("<option value=\"xoauth2\" selected>")
    );
    assert!(microsoft.body.contains("OAuth2 access token"));
    let generic = desk
        .get("/mailboxes/new?preset=generic", Some(&admin))
        .await;
    assert!(generic.body.contains("id=\"port\" name=\"port\" type=\"text\" inputmode=\"numeric\" maxlength=\"5\" value=\"995\""));
    assert!(
        generic
            .body
            .contains("<option value=\"implicit\" selected>TLS from the start (port 995)</option>")
    );
    assert!(
        generic
            .body
            .contains("<option value=\"starttls\">STARTTLS (port 110)</option>")
    );
    assert!(
        generic
            .body
            .contains("<option value=\"none\">None (unencrypted)</option>")
    );
    assert!(generic.body.contains("UIDL"));
    for (id, label) in [
        ("name", "Name"),
        ("host", "Host"),
        ("port", "Port"),
        ("tls", "Security"),
        ("username", "Username"),
        ("password", "Password or token"),
        ("auth_method", "Sign-in method"),
        ("policy", "After fetching"),
        ("ca_file", "CA certificate file"),
        ("poll_interval_secs", "Poll every (seconds)"),
        ("enabled", "Enabled"),
        (
            "allow_insecure_auth",
            "Allow password over an unencrypted connection",
        ),
    ] {
        assert_eq!(label_of(&generic.body, id).as_deref(), Some(label), "{id}");
    }
    for method in [
        "auto",
        "user",
        "apop",
        "plain",
        "login",
        "cram-md5",
        "xoauth2",
        "oauthbearer",
    ] {
        assert!(
            generic
                .body
                .contains(&format!("<option value=\"{method}\"")),
            "{method}"
        );
    }
    assert!(generic.body.contains(">Add mailbox</button>"));
}

#[tokio::test]
async fn mailboxes_are_added_edited_disabled_and_deleted_with_plain_forms() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    let reply = desk
        .post("/mailboxes", &mailbox_fields(&[]), Some(&admin))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let id: i64 = reply
        .location()
        .strip_prefix("/mailboxes/")
        .and_then(|id| id.parse().ok())
        .expect("/mailboxes/{id}");
    let mailbox = desk
        .store
        .mailbox_by_id(id)
        .await
        .expect("read")
        .expect("added");
    assert_eq!(mailbox.settings.name, "Support");
    assert_eq!(mailbox.settings.poll_interval_secs, 300);
    assert!(mailbox.settings.enabled);
    assert_eq!(
        desk.store
            .mailbox_secret(id)
            .await
            .expect("secret")
            .expose_secret(),
        "mailbox secret"
    );

    let page = desk.get(&format!("/mailboxes/{id}"), Some(&admin)).await;
    page.assert_admin_page("mailbox");
    for button in [
        "Test connection",
        "Fetch now",
        "Disable",
        "Delete mailbox",
        "Save changes",
    ] {
        assert!(
            page.body.contains(&format!(">{button}</button>")),
            "{button}"
        );
    }
    assert!(page.body.contains("Fetch history"));
    assert!(
        !page.body.contains("mailbox secret"),
        "the password is never shown"
    );
    assert!(
        page.body
            .contains("No scheduler runs in this popdesk process")
            || page.body.contains("Not scheduled")
    );

    // Edit: a blank password keeps the stored one.
    let reply = desk
        .post(
            &format!("/mailboxes/{id}"),
            &mailbox_fields(&[
                ("name", "Helpdesk"),
                ("password", ""),
                ("policy", "keep"),
                ("delete_after_days", "30"),
            ]),
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let mailbox = desk
        .store
        .mailbox_by_id(id)
        .await
        .expect("read")
        .expect("mailbox");
    assert_eq!(mailbox.settings.name, "Helpdesk");
    assert_eq!(
        mailbox.settings.policy,
        store::Policy::Keep {
            delete_after_days: Some(30)
        }
    );
    assert_eq!(
        desk.store
            .mailbox_secret(id)
            .await
            .expect("secret")
            .expose_secret(),
        "mailbox secret"
    );

    // Disable, enable.
    let reply = desk
        .post(
            &format!("/mailboxes/{id}/enabled"),
            &[("enabled", "false")],
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(
        !desk
            .store
            .mailbox_by_id(id)
            .await
            .expect("read")
            .expect("mb")
            .settings
            .enabled
    );
    let page = desk.get(&format!("/mailboxes/{id}"), Some(&admin)).await;
    assert!(page.body.contains(">Enable</button>"));
    desk.post(
        &format!("/mailboxes/{id}/enabled"),
        &[("enabled", "true")],
        Some(&admin),
    )
    .await;
    assert!(
        desk.store
            .mailbox_by_id(id)
            .await
            .expect("read")
            .expect("mb")
            .settings
            .enabled
    );

    // "Fetch now" without a scheduler in this process says so.
    let reply = desk
        .post(&format!("/mailboxes/{id}/fetch"), &[], Some(&admin))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let page = desk.follow(&reply, &admin).await;
    assert!(
        page.role_text("alert")
            .iter()
            .any(|t| t.contains("The scheduler is not running")),
        "{:?}",
        page.role_text("alert")
    );

    // Delete: a confirmation page, then the post.
    let confirm = desk
        .get(&format!("/mailboxes/{id}/delete"), Some(&admin))
        .await;
    confirm.assert_admin_page("confirm delete");
    assert!(
        confirm
            .body
            .contains(&format!("action=\"/mailboxes/{id}/delete\""))
    );
    let reply = desk
        .post(&format!("/mailboxes/{id}/delete"), &[], Some(&admin))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/mailboxes");
    assert!(desk.store.mailbox_by_id(id).await.expect("read").is_none());
    let gone = desk.get(&format!("/mailboxes/{id}"), Some(&admin)).await;
    gone.assert_page(StatusCode::NOT_FOUND, "a deleted mailbox");
}

#[tokio::test]
async fn mailbox_form_errors_keep_the_values_but_never_the_password() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    for (changes, sentence) in [
        (vec![("port", "99x")], "“Port” must be a whole number."),
        (
            vec![("poll_interval_secs", "5")],
            "“Poll every (seconds)” must be between 10 and 86400.",
        ),
        (
            vec![("host", "pop example.com")],
            "“Host” must be a host name",
        ),
        (
            vec![("policy", "keep"), ("delete_after_days", "0")],
            "must be between 1 and 36500",
        ),
        (
            vec![("policy", "delete"), ("delete_after_days", "7")],
            "applies only when mail is kept on the server",
        ),
        (
            vec![("batch_messages", "0")],
            "“Messages per session” must be between 1 and 100000.",
        ),
    ] {
        let reply = desk
            .post("/mailboxes", &mailbox_fields(&changes), Some(&admin))
            .await;
        reply.assert_page(StatusCode::UNPROCESSABLE_ENTITY, sentence);
        let alerts = reply.role_text("alert");
        assert!(alerts.iter().any(|a| a.contains(sentence)), "{alerts:?}");
        assert!(
            reply.body.contains("value=\"support@example.com\""),
            "values kept"
        );
        assert!(
            !reply.body.contains("mailbox secret"),
            "the password is not echoed"
        );
        assert!(
            reply.body.contains("Other POP3 server: what to know"),
            "the preset stays"
        );
    }
    let taken = desk
        .post("/mailboxes", &mailbox_fields(&[]), Some(&admin))
        .await;
    assert_eq!(taken.status, StatusCode::SEE_OTHER);
    let again = desk
        .post("/mailboxes", &mailbox_fields(&[]), Some(&admin))
        .await;
    again.assert_page(StatusCode::CONFLICT, "a taken name");
    assert_eq!(desk.store.mailboxes().await.expect("list").len(), 1);
}

#[tokio::test]
async fn the_health_of_a_mailbox_says_the_error_in_words() {
    let desk = Desk::new().await;
    let id = desk.mailbox("support").await;
    desk.store.set_enabled(id, true, NOW).await.expect("enable");
    desk.store
        .set_attention(
            id,
            Some("authentication failed: the server refused the password"),
            NOW,
        )
        .await
        .expect("attention");
    let admin = desk.admin().await;
    let page = desk.get(&format!("/mailboxes/{id}"), Some(&admin)).await;
    page.assert_admin_page("mailbox with an error");
    assert!(
        page.role_text("alert")
            .iter()
            .any(|t| t.contains("Authentication failed: the server refused the password.")),
        "{:?}",
        page.role_text("alert")
    );
    let list = desk.get("/mailboxes", Some(&admin)).await;
    list.assert_admin_page("mailboxes with an error");
    assert!(
        list.body
            .contains("Authentication failed: the server refused the password.")
    );
    for column in ["Last poll", "Last success", "Waiting messages"] {
        assert!(list.body.contains(column), "{column}");
    }
    assert!(list.body.contains(">Add mailbox</a>"));
    // Enabled but stopped by the error: the badge says so, on both pages, and a refused
    // login's empty listing is not shown as the server's count.
    for body in [&page.body, &list.body] {
        assert!(
            body.contains(r#"<span class="badge bad">Stopped</span>"#),
            "{body}"
        );
        assert!(
            !body.contains(r#"<span class="badge ok">Enabled</span>"#),
            "{body}"
        );
    }
    let run = desk.store.start_run(id, NOW).await.expect("run");
    desk.store
        .finish_run(
            run,
            NOW + 1,
            &store::RunCounts::default(),
            store::RunOutcome::Permanent,
            Some("authentication failed"),
        )
        .await
        .expect("finish");
    let page = desk.get(&format!("/mailboxes/{id}"), Some(&admin)).await;
    assert!(
        !page.body.contains("on the server at the last"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn test_connection_reports_the_error_in_words() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    // A port nothing listens on: refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port().to_string();
    drop(closed);
    let reply = desk
        .post(
            "/mailboxes",
            &mailbox_fields(&[("host", "127.0.0.1"), ("port", &port), ("enabled", "")]),
            Some(&admin),
        )
        .await;
    let id = reply
        .location()
        .trim_start_matches("/mailboxes/")
        .to_string();
    let result = desk
        .post(&format!("/mailboxes/{id}/test"), &[], Some(&admin))
        .await;
    result.assert_admin_page("test result");
    assert!(result.body.contains("<section id=\"test-result\""));
    let alerts = result.role_text("alert");
    assert!(
        alerts.iter().any(|a| a.contains("The test failed.")),
        "{alerts:?}"
    );
    assert!(result.body.contains("127.0.0.1"), "says what it tried");
}

#[tokio::test]
async fn test_connection_shows_capabilities_and_counts_and_changes_nothing() {
    let dovecot = testkit::Dovecot::start();
    dovecot.add_user("support", "dovecot-password");
    for n in 0..2 {
        dovecot.deliver(
            "support",
            &plain_mail(&format!("d{n}@example.com"), "alice@example.com", "Hi", "1"),
        );
    }
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    let port = dovecot.pop3s_addr().port().to_string();
    let ca = dovecot.ca_pem_path().display().to_string();
    let reply = desk
        .post(
            "/mailboxes",
            &mailbox_fields(&[
                ("host", dovecot.host()),
                ("port", &port),
                ("username", "support"),
                ("password", "dovecot-password"),
                ("ca_file", &ca),
                ("enabled", ""),
            ]),
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let result = desk
        .post(&format!("{}/test", reply.location()), &[], Some(&admin))
        .await;
    result.assert_admin_page("test result");
    let body = &result.body;
    assert!(body.contains("Connected and signed in."), "{body}");
    assert!(body.contains("2 messages,"));
    assert!(body.contains("<dt>TLS</dt><dd>yes</dd>"));
    assert!(body.contains("<code>UIDL</code>") && body.contains("<code>PIPELINING</code>"));
    assert_eq!(
        dovecot.message_count("support"),
        2,
        "test connection deletes nothing"
    );
}

// ---------------------------------------------------------------------------------------
// Failed messages, users, tokens.

#[tokio::test]
async fn failed_and_ignored_messages_show_headers_and_reprocess() {
    let desk = Desk::new().await;
    let mailbox = desk.mailbox("support").await;
    let id = desk
        .deliver(
            mailbox,
            &bounce("lost@mx.example", "nothing@nowhere.example"),
        )
        .await;
    let admin = desk.admin().await;
    let failed = desk.get("/messages?status=failed", Some(&admin)).await;
    failed.assert_admin_page("failed");
    assert!(failed.body.contains("No failed messages."));
    assert!(failed.body.contains("href=\"/messages?status=ignored\""));
    let page = desk.get(&format!("/messages/{id}"), Some(&admin)).await;
    page.assert_admin_page("message");
    assert!(page.body.contains("Bounce not about any known ticket"));
    assert!(page.body.contains("Message-ID: &#60;lost@mx.example&#62;"));
    assert!(
        !page.body.contains("Your message could not be delivered"),
        "headers only, not the body"
    );
    assert!(page.body.contains(&format!(
        "href=\"/api/v1/messages/{id}/raw\" download>Download raw message</a>"
    )));
    assert!(page.body.contains(">Reprocess</button>"));
    let reply = desk
        .post(&format!("/messages/{id}/reprocess"), &[], Some(&admin))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), format!("/messages/{id}"));
    let record = desk
        .store
        .processing_record(id)
        .await
        .expect("read")
        .expect("record");
    assert_eq!(record.status, ProcessStatus::Pending);
    let bad = desk.get("/messages?status=burning", Some(&admin)).await;
    bad.assert_page(StatusCode::BAD_REQUEST, "an unknown list");
}

#[tokio::test]
async fn users_are_added_promoted_disabled_and_deleted_but_not_the_last_admin() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    let page = desk.get("/users", Some(&admin)).await;
    for (id, label) in [
        ("new-email", "Email"),
        ("new-name", "Name"),
        ("new-role", "Role"),
        ("new-password", "Password"),
    ] {
        assert_eq!(label_of(&page.body, id).as_deref(), Some(label), "{id}");
    }
    assert!(
        page.body
            .contains("<option value=\"agent\" selected>Agent</option>")
    );
    assert!(page.body.contains(">Add user</button>"));

    let short = desk
        .post(
            "/users",
            &[
                ("email", "alex@example.org"),
                ("name", "Alex"),
                ("role", "agent"),
                ("password", "short"),
            ],
            Some(&admin),
        )
        .await;
    short.assert_page(StatusCode::UNPROCESSABLE_ENTITY, "a short password");
    assert!(short.body.contains("value=\"alex@example.org\""));
    let reply = desk
        .post(
            "/users",
            &[
                ("email", "alex@example.org"),
                ("name", "Alex"),
                ("role", "agent"),
                ("password", PASSWORD),
            ],
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let alex = desk
        .store
        .user_by_email("alex@example.org")
        .await
        .expect("read")
        .expect("added");
    assert_eq!(alex.role, Role::Agent);

    desk.post(
        &format!("/users/{}/role", alex.id),
        &[("role", "admin")],
        Some(&admin),
    )
    .await;
    assert_eq!(
        desk.store
            .user_by_id(alex.id)
            .await
            .expect("r")
            .expect("u")
            .role,
        Role::Admin
    );
    desk.post(
        &format!("/users/{}/enabled", alex.id),
        &[("enabled", "false")],
        Some(&admin),
    )
    .await;
    assert!(
        desk.store
            .user_by_id(alex.id)
            .await
            .expect("r")
            .expect("u")
            .disabled
    );

    // The only admin who can still sign in cannot make themself an agent.
    let me = desk
        .store
        .user_by_email(ADMIN)
        .await
        .expect("r")
        .expect("u");
    let reply = desk
        .post(
            &format!("/users/{}/role", me.id),
            &[("role", "agent")],
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.cookie("popdesk_flash").is_some());
    assert_eq!(
        desk.store
            .user_by_id(me.id)
            .await
            .expect("r")
            .expect("u")
            .role,
        Role::Admin
    );

    let confirm = desk
        .get(&format!("/users/{}/delete", alex.id), Some(&admin))
        .await;
    confirm.assert_admin_page("confirm delete user");
    desk.post(&format!("/users/{}/delete", alex.id), &[], Some(&admin))
        .await;
    assert!(desk.store.user_by_id(alex.id).await.expect("r").is_none());
}

#[tokio::test]
async fn a_new_token_is_shown_once_and_revoked() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    let page = desk.get("/tokens", Some(&admin)).await;
    assert_eq!(
        label_of(&page.body, "token-name").as_deref(),
        Some("Token name")
    );
    assert_eq!(label_of(&page.body, "token-role").as_deref(), Some("Role"));
    assert!(page.body.contains(">Create token</button>"));

    let created = desk
        .post(
            "/tokens",
            &[("name", "Reporting export"), ("role", "agent")],
            Some(&admin),
        )
        .await;
    created.assert_admin_page("a new token");
    assert!(created.body.contains("Copy it now: it is not shown again."));
    let start = created
        .body
        .find("<output class=\"secret\"><code id=\"new-token-value\">")
        .expect("output")
        + "<output class=\"secret\"><code id=\"new-token-value\">".len();
    let secret = &created.body[start..start + 46];
    assert!(secret.starts_with("pd_"), "{secret}");
    // It works on the API, and the list never shows it again.
    let api = desk
        .send(
            Request::get("/api/v1/tickets")
                .header(header::AUTHORIZATION, format!("Bearer {secret}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(api.status, StatusCode::OK);
    let list = desk.get("/tokens", Some(&admin)).await;
    assert!(!list.body.contains(secret));
    assert!(list.body.contains("Reporting export"));
    assert!(
        list.body
            .contains(&format!("<code>{}…</code>", &secret[..10]))
    );

    let token = desk.store.api_tokens().await.expect("tokens").remove(0);
    let reply = desk
        .post(&format!("/tokens/{}/revoke", token.id), &[], Some(&admin))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let api = desk
        .send(
            Request::get("/api/v1/tickets")
                .header(header::AUTHORIZATION, format!("Bearer {secret}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    let list = desk.get("/tokens", Some(&admin)).await;
    assert!(
        !list.body.contains(">Revoke<span"),
        "a revoked token has no Revoke button"
    );
}

#[tokio::test]
async fn a_token_can_be_given_a_lifetime_on_the_page() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    let page = desk.get("/tokens", Some(&admin)).await;
    assert_eq!(
        label_of(&page.body, "token-days").as_deref(),
        Some("Expires after (days)")
    );
    for (days, what) in [("0", "zero days"), ("soon", "not a number")] {
        let refused = desk
            .post(
                "/tokens",
                &[
                    ("name", "short"),
                    ("role", "agent"),
                    ("expires_in_days", days),
                ],
                Some(&admin),
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{what}");
        assert!(refused.body.contains("role=\"alert\""), "{what}");
        assert!(
            refused.body.contains(&format!("value=\"{days}\"")),
            "{what}: kept"
        );
    }
    assert!(desk.store.api_tokens().await.expect("tokens").is_empty());
    let created = desk
        .post(
            "/tokens",
            &[
                ("name", "short"),
                ("role", "agent"),
                ("expires_in_days", "30"),
            ],
            Some(&admin),
        )
        .await;
    created.assert_admin_page("a token with a lifetime");
    let token = desk.store.api_tokens().await.expect("tokens").remove(0);
    assert_eq!(
        token.expires_at,
        Some(token.created_at + 30 * 24 * 3600 * 1000)
    );
    // Left empty, the token does not expire.
    desk.post(
        "/tokens",
        &[
            ("name", "forever"),
            ("role", "agent"),
            ("expires_in_days", ""),
        ],
        Some(&admin),
    )
    .await
    .assert_admin_page("a token without a lifetime");
    let tokens = desk.store.api_tokens().await.expect("tokens");
    assert_eq!(tokens[0].name, "forever");
    assert_eq!(tokens[0].expires_at, None);
    let list = desk.get("/tokens", Some(&admin)).await;
    assert!(list.body.contains("data-label=\"Expires\">Never"));
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    let reply = desk.post("/logout", &[], Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/login");
    assert_eq!(reply.cookie("popdesk_session").as_deref(), Some(""));
    let after = desk.get("/tickets", Some(&admin)).await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
}

// ---------------------------------------------------------------------------------------
// Assets and unknown addresses.

#[tokio::test]
async fn assets_are_served_with_a_long_cache() {
    let desk = Desk::new().await;
    for (uri, content_type, start) in [
        (
            "/assets/htmx.min.js",
            "text/javascript; charset=utf-8",
            "var htmx=",
        ),
        ("/assets/app.css", "text/css; charset=utf-8", "/*"),
        ("/assets/app.js", "text/javascript; charset=utf-8", "//"),
    ] {
        let reply = desk.get(uri, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.header("content-type"), content_type, "{uri}");
        assert_eq!(
            reply.header("cache-control"),
            "public, max-age=31536000, immutable",
            "{uri}"
        );
        assert!(reply.body.starts_with(start), "{uri}");
    }
    // Pages point at them with a version, so the long cache never serves a stale one.
    let page = desk.get("/setup", None).await;
    assert!(page.body.contains("src=\"/assets/htmx.min.js?v=2.0.11\""));
    assert!(page.body.contains("href=\"/assets/app.css?v="));
    // htmx may not inject its indicator <style>: the policy would refuse it.
    assert!(page.body.contains("\"includeIndicatorStyles\":false"));
    assert_eq!(
        desk.get("/assets/nothing.js", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unknown_addresses_get_the_404_page_and_api_ones_json() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    let page = desk.get("/no/such/page", Some(&admin)).await;
    page.assert_page(StatusCode::NOT_FOUND, "404 signed in");
    assert!(page.body.contains(">Sign out</button>"));
    let anonymous = desk.get("/no/such/page", None).await;
    anonymous.assert_page(StatusCode::NOT_FOUND, "404 signed out");
    let ticket = desk.get("/tickets/12345", Some(&admin)).await;
    ticket.assert_page(StatusCode::NOT_FOUND, "no such ticket");
    assert!(ticket.body.contains("There is no ticket #12345."));
    let nonsense = desk.get("/tickets/abc", Some(&admin)).await;
    nonsense.assert_page(StatusCode::NOT_FOUND, "not a number");
    let api = desk.get("/api/v2/tickets", None).await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.header("content-type").starts_with("application/json"));
}

/// Issue #13: a message the server breaks off every time is set aside; the mailbox page,
/// the list and the API say so, with each attempt's error, and "Try again" queues it.
#[tokio::test]
async fn set_aside_messages_are_shown_with_their_errors_and_can_be_tried_again() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    let id = desk.mailbox("support").await;
    for n in 0..3 {
        desk.store
            .record_failed_retrieval(
                id,
                &store::FailedRetrieval {
                    uid: "uid-corrupt",
                    size: 20_000,
                    kind: store::FailureKind::Connection,
                    error: "the server closed the connection",
                    octets: 8_000,
                },
                NOW + n,
                3,
            )
            .await
            .expect("record");
    }
    let page = desk.get(&format!("/mailboxes/{id}"), Some(&admin)).await;
    page.assert_admin_page("mailbox with a set-aside message");
    assert!(
        page.body.contains("1 message cannot be downloaded"),
        "health says it"
    );
    assert!(page.body.contains("uid-corrupt"), "the UIDL is listed");
    assert!(
        page.body.contains("The server closed the connection"),
        "each attempt's error"
    );
    let list = desk.get("/mailboxes", Some(&admin)).await;
    assert!(
        list.body.contains("1 message cannot be downloaded"),
        "the list says it too"
    );
    let api = desk
        .get(&format!("/api/v1/mailboxes/{id}/failing"), Some(&admin))
        .await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);
    assert!(api.body.contains("\"uid\":\"uid-corrupt\""), "{}", api.body);
    assert!(
        api.body.contains("the server closed the connection"),
        "the API gives each error"
    );
    let mailbox = desk
        .get(&format!("/api/v1/mailboxes/{id}"), Some(&admin))
        .await;
    assert!(mailbox.body.contains("\"set_aside\":1"), "{}", mailbox.body);

    let retry = desk
        .post(
            &format!("/mailboxes/{id}/failing/retry"),
            &[("uid", "uid-corrupt")],
            Some(&admin),
        )
        .await;
    assert_eq!(retry.status, StatusCode::SEE_OTHER);
    let failing = desk.store.failing_messages(id).await.expect("failing");
    assert!(failing[0].retry_once, "queued for one more try");
}

// ---------------------------------------------------------------------------------------
// Replies: the reply box, the thread's sending states, "Send again", and the mailbox
// form's "Sending replies". No SMTP server: states are set through the store as the
// sender would set them.

/// One part of a `multipart/form-data` body.
enum Part<'a> {
    Text(&'a str, &'a str),
    File {
        name: &'a str,
        file_name: &'a str,
        content_type: &'a str,
        data: &'a [u8],
    },
}

const BOUNDARY: &str = "popdesk-test-boundary-7Gx2";

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::File {
                name,
                file_name,
                content_type,
                data,
            } => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
Content-Type: {content_type}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(data);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

impl Desk {
    /// The reply form as a browser posts it: multipart, same-origin, the page's token
    /// first (unless the parts name one).
    async fn post_reply(
        &self,
        number: i64,
        parts: &[Part<'_>],
        browser: &Browser,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut all = Vec::new();
        if !parts.iter().any(|p| matches!(p, Part::Text("csrf", _))) {
            all.push(Part::Text("csrf", &browser.token));
        }
        for part in parts {
            all.push(match part {
                Part::Text(n, v) => Part::Text(n, v),
                Part::File {
                    name,
                    file_name,
                    content_type,
                    data,
                } => Part::File {
                    name,
                    file_name,
                    content_type,
                    data,
                },
            });
        }
        let mut request = Desk::request(
            Method::POST,
            &format!("/tickets/{number}/replies"),
            Some(browser),
        )
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("sec-fetch-site", "same-origin");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(multipart(&all))).expect("request"))
            .await
    }

    /// Turns sending on for a mailbox (an SMTP server nothing listens on).
    async fn send_from(&self, mailbox_id: i64, address: &str) {
        let mut settings = self
            .store
            .mailbox_by_id(mailbox_id)
            .await
            .expect("read")
            .expect("mailbox")
            .settings;
        settings.sending = Some(store::SendingSettings {
            address: address.to_string(),
            display_name: Some("Example Support".to_string()),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 1,
            smtp_tls: store::TlsMode::Implicit,
            smtp_auth: store::SmtpAuth::Auto,
            smtp_username: None,
            smtp_allow_insecure_auth: false,
            acknowledge: false,
        });
        self.store
            .update_mailbox(mailbox_id, &settings, None, NOW)
            .await
            .expect("set up sending");
    }

    /// A sending mailbox with one ticket from Dana. The desk's clock is set an hour
    /// before the real one first: replies are stamped by the reply service's own
    /// (system) clock, and the thread orders by time.
    async fn answerable_ticket(&self) -> (i64, i64) {
        let real_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_millis();
        self.clock
            .set(i64::try_from(real_now).expect("ms") - 3_600_000);
        let mailbox = self.mailbox("support").await;
        self.send_from(mailbox, "support@example.com").await;
        self.deliver(
            mailbox,
            &plain_mail(
                "dana-1@customer.example",
                "Dana Whitfield <dana@customer.example>",
                "Printer on fire",
                "The printer on floor 3 is on fire.",
            ),
        )
        .await;
        let number = self
            .store
            .tickets(&Default::default())
            .await
            .expect("tickets")[0]
            .number;
        (mailbox, number)
    }
}

/// The position of `needle` in the page, for order checks.
fn at(body: &str, needle: &str) -> usize {
    body.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not on the page"))
}

#[tokio::test]
async fn a_reply_is_sent_from_the_ticket_page_without_javascript() {
    let desk = Desk::new().await;
    let (_, number) = desk.answerable_ticket().await;
    let agent = desk.agent().await;

    let page = desk.get(&format!("/tickets/{number}"), Some(&agent)).await;
    page.assert_page(StatusCode::OK, "ticket with a reply box");
    assert_eq!(label_of(&page.body, "reply-body").as_deref(), Some("Reply"));
    assert_eq!(label_of(&page.body, "reply-cc").as_deref(), Some("Cc"));
    assert_eq!(
        label_of(&page.body, "reply-all").as_deref(),
        Some("Reply to all")
    );
    assert_eq!(
        label_of(&page.body, "reply-attachments").as_deref(),
        Some("Attachments")
    );
    let form = tags(&page.body)
        .into_iter()
        .find(|t| {
            t.name == "form" && t.attr("action") == Some(&format!("/tickets/{number}/replies"))
        })
        .expect("the reply form");
    assert_eq!(form.attr("method"), Some("post"));
    assert_eq!(form.attr("enctype"), Some("multipart/form-data"));
    assert!(page.body.contains(
        "<button type=\"submit\" class=\"primary\" name=\"then\" value=\"pending\">Send and set Pending</button>"
    ));
    assert!(page.body.contains(
        "<button type=\"submit\" name=\"then\" value=\"resolved\">Send and set Resolved</button>"
    ));
    assert!(
        page.body
            .contains("Example Support &#60;support@example.com&#62;")
    );
    // The thread comes first, the box under it.
    assert!(
        at(&page.body, "The printer on floor 3 is on fire.") < at(&page.body, "id=\"reply-head\"")
    );

    let reply = desk
        .post_reply(
            number,
            &[
                Part::Text("body", "We sent a technician.\nHe brings an extinguisher."),
                Part::Text("cc", "facilities@customer.example"),
                Part::File {
                    name: "attachments",
                    file_name: "checklist.txt",
                    content_type: "text/plain",
                    data: b"1. water\n2. no water\n",
                },
                Part::Text("then", "pending"),
            ],
            &agent,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let outbox = desk.store.outbox(None, 10).await.expect("outbox");
    assert_eq!(outbox.len(), 1);
    let queued = &outbox[0];
    assert_eq!(
        reply.location(),
        format!("/tickets/{number}#reply-{}", queued.id)
    );
    assert_eq!(queued.to, ["dana@customer.example"]);
    assert_eq!(queued.cc, ["facilities@customer.example"]);
    assert_eq!(queued.author, AGENT);
    assert_eq!(queued.attachments[0].name.as_deref(), Some("checklist.txt"));

    let shown = desk.follow(&reply, &agent).await;
    shown.assert_page(StatusCode::OK, "ticket after a reply");
    assert_eq!(
        shown.role_text("status"),
        [
            "Reply to dana@customer.example, facilities@customer.example queued: it goes out in a moment. The ticket is now Pending."
        ]
    );
    assert!(
        shown
            .body
            .contains("<span class=\"badge status-pending\">Pending</span>")
    );
    let card = format!("id=\"reply-{}\"", queued.id);
    assert!(shown.body.contains(&card));
    assert!(
        shown
            .body
            .contains("We sent a technician.\nHe brings an extinguisher.")
    );
    assert!(
        shown
            .body
            .contains("<span class=\"badge warn\">Queued</span>")
    );
    assert!(shown.body.contains("Waiting to be sent; next attempt at"));
    assert!(shown.body.contains(
        "From support@example.com to dana@customer.example, Cc facilities@customer.example"
    ));
    assert!(shown.body.contains(&format!(
        "href=\"/api/v1/outbox/{}/attachments/0\" download>checklist.txt</a>",
        queued.id
    )));
    // In order: the customer's mail, the reply, the status change it made.
    assert!(at(&shown.body, "The printer on floor 3 is on fire.") < at(&shown.body, &card));
    assert!(at(&shown.body, &card) < at(&shown.body, "changed the status from New to Pending"));
    let file = desk
        .get(
            &format!("/api/v1/outbox/{}/attachments/0", queued.id),
            Some(&agent),
        )
        .await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body, "1. water\n2. no water\n");

    // Sent: the thread says when; no button.
    desk.store
        .outbox_sent(queued.id, desk.clock.now_ms())
        .await
        .expect("sent");
    let page = desk.get(&format!("/tickets/{number}"), Some(&agent)).await;
    assert!(page.body.contains("<span class=\"badge ok\">Sent</span>"));
    assert!(page.body.contains("The mail server accepted it at"));
    assert!(!page.body.contains(">Send again</button>"));

    // "Send and set Resolved".
    let resolved = desk
        .post_reply(
            number,
            &[
                Part::Text("body", "Closing this."),
                Part::Text("then", "resolved"),
            ],
            &agent,
            &[],
        )
        .await;
    assert_eq!(resolved.status, StatusCode::SEE_OTHER, "{}", resolved.body);
    let ticket = desk
        .store
        .ticket_by_number(number)
        .await
        .expect("r")
        .expect("t");
    assert_eq!(ticket.status, TicketStatus::Resolved);
}

#[tokio::test]
async fn a_failed_reply_shows_the_servers_words_and_is_sent_again_as_the_same_message() {
    let desk = Desk::new().await;
    let (_, number) = desk.answerable_ticket().await;
    let agent = desk.agent().await;
    let reply = desk
        .post_reply(number, &[Part::Text("body", "Hello Dana.")], &agent, &[])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let queued = desk.store.outbox(None, 10).await.expect("outbox")[0].clone();

    // Retried after a temporary failure: still queued, with the last error.
    desk.store
        .outbox_retry_later(queued.id, "451 4.7.1 try again later", NOW + 60_000, NOW)
        .await
        .expect("retry later");
    let page = desk.get(&format!("/tickets/{number}"), Some(&agent)).await;
    assert!(
        page.body
            .contains("<span class=\"badge warn\">Queued</span>")
    );
    assert!(
        page.body
            .contains("Not accepted yet after 1 attempt; next attempt at")
    );
    assert!(
        page.body
            .contains("Last attempt: 451 4.7.1 try again later")
    );

    desk.store
        .outbox_failed(
            queued.id,
            "550 5.1.1 <dana@customer.example>: user unknown",
            NOW,
        )
        .await
        .expect("failed");
    let page = desk.get(&format!("/tickets/{number}"), Some(&agent)).await;
    page.assert_page(StatusCode::OK, "a failed reply");
    assert!(
        page.body
            .contains("<span class=\"badge bad\">Failed</span>")
    );
    assert!(
        page.body
            .contains("The server said: 550 5.1.1 &#60;dana@customer.example&#62;: user unknown")
    );
    let retry = format!("/tickets/{number}/replies/{}/retry", queued.id);
    assert!(page.body.contains(&format!("action=\"{retry}\"")));
    assert!(page.body.contains(">Send again</button>"));

    // Without the form token: refused, still failed.
    let forged = desk
        .post_raw(
            &retry,
            &[],
            Some(&agent),
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let still = desk
        .store
        .outbox_message(queued.id)
        .await
        .expect("r")
        .expect("m");
    assert_eq!(still.state, store::OutboxState::Failed);

    let again = desk.post(&retry, &[], Some(&agent)).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert_eq!(
        again.location(),
        format!("/tickets/{number}#reply-{}", queued.id)
    );
    let shown = desk.follow(&again, &agent).await;
    assert_eq!(
        shown.role_text("status"),
        ["Queued again: popdesk sends it in a moment, as the same message."]
    );
    let requeued = desk
        .store
        .outbox_message(queued.id)
        .await
        .expect("r")
        .expect("m");
    assert_eq!(requeued.state, store::OutboxState::Queued);
    assert_eq!(
        requeued.message_id, queued.message_id,
        "the identical message"
    );
    assert_eq!(desk.store.outbox(None, 10).await.expect("o").len(), 1);

    // Not failed any more: a second press says so and changes nothing.
    let twice = desk.post(&retry, &[], Some(&agent)).await;
    assert_eq!(twice.status, StatusCode::SEE_OTHER);
    let shown = desk.follow(&twice, &agent).await;
    assert!(
        shown.role_text("alert")[0].contains("is still queued"),
        "{:?}",
        shown.role_text("alert")
    );
    // Another ticket's number in the address: not found.
    let elsewhere = desk
        .post(
            &format!("/tickets/{}/replies/{}/retry", number + 1, queued.id),
            &[],
            Some(&agent),
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_refused_reply_keeps_the_typed_text_beside_the_box_and_queues_nothing() {
    let desk = Desk::new().await;
    let (_, number) = desk.answerable_ticket().await;
    let agent = desk.agent().await;

    let refused = desk
        .post_reply(
            number,
            &[
                Part::Text("body", "My careful <answer>."),
                Part::Text("cc", "boss@customer.example, not an address"),
                Part::Text("reply_all", "true"),
                Part::File {
                    name: "attachments",
                    file_name: "plan.pdf",
                    content_type: "application/pdf",
                    data: b"%PDF-1.4\n",
                },
            ],
            &agent,
            &[],
        )
        .await;
    refused.assert_page(StatusCode::UNPROCESSABLE_ENTITY, "a refused reply");
    let alert = refused.role_text("alert").join(" ");
    assert!(
        alert.contains(
            "&#34;not an address&#34; is not an email address (Cc); correct it or leave it out."
        ),
        "{alert}"
    );
    assert!(alert.contains("Choose the files again"), "{alert}");
    assert!(
        refused
            .body
            .contains(">My careful &#60;answer&#62;.</textarea>"),
        "the text is kept"
    );
    assert!(
        refused
            .body
            .contains("value=\"boss@customer.example, not an address\"")
    );
    assert!(
        refused
            .body
            .contains("id=\"reply-cc\" aria-invalid=\"true\"")
    );
    assert!(
        refused.body.contains(
            "id=\"reply-all\" name=\"reply_all\" type=\"checkbox\" value=\"true\" checked"
        )
    );
    assert!(refused.body.contains("href=\"#reply-cc\""));
    assert!(desk.store.outbox(None, 10).await.expect("o").is_empty());

    // An empty reply: the sentence beside the box, nothing queued.
    let empty = desk
        .post_reply(number, &[Part::Text("body", "   ")], &agent, &[])
        .await;
    empty.assert_page(StatusCode::UNPROCESSABLE_ENTITY, "an empty reply");
    assert!(
        empty
            .role_text("alert")
            .join(" ")
            .contains("The reply is empty; write something or attach a file."),
        "{:?}",
        empty.role_text("alert")
    );
    // htmx swaps only 2xx answers: the same page, as a 200.
    let with_htmx = desk
        .post_reply(
            number,
            &[Part::Text("body", "")],
            &agent,
            &[("hx-request", "true")],
        )
        .await;
    with_htmx.assert_page(StatusCode::OK, "a refused reply through htmx");
    assert!(
        with_htmx
            .role_text("alert")
            .join(" ")
            .contains("The reply is empty")
    );

    // Without the form token: the 403 page, before any file is read.
    let forged = desk
        .post_reply(
            number,
            &[Part::Text("csrf", "forged"), Part::Text("body", "Hello.")],
            &agent,
            &[],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let token_last = desk
        .post_reply(
            number,
            &[
                Part::File {
                    name: "attachments",
                    file_name: "a.txt",
                    content_type: "text/plain",
                    data: b"a",
                },
                Part::Text("csrf", &agent.token),
            ],
            &agent,
            &[],
        )
        .await;
    assert_eq!(
        token_last.status,
        StatusCode::FORBIDDEN,
        "a file before the token"
    );

    // A closed ticket: no form, the reason instead; a post is refused all the same.
    let ticket = desk
        .store
        .ticket_by_number(number)
        .await
        .expect("r")
        .expect("t");
    desk.store
        .change_ticket_status(ticket.id, TicketStatus::Closed, None, "test", NOW)
        .await
        .expect("close");
    let page = desk.get(&format!("/tickets/{number}"), Some(&agent)).await;
    assert!(
        page.body
            .contains("This ticket is closed. Set its status to Open to answer")
    );
    assert!(
        !page
            .body
            .contains(&format!("action=\"/tickets/{number}/replies\""))
    );
    let closed = desk
        .post_reply(number, &[Part::Text("body", "Hello.")], &agent, &[])
        .await;
    closed.assert_page(
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reply to a closed ticket",
    );
    assert!(closed.role_text("alert").join(" ").contains("is closed"));
    assert!(desk.store.outbox(None, 10).await.expect("o").is_empty());
}

#[tokio::test]
async fn the_reply_box_says_when_the_mailbox_cannot_send_and_links_admins_to_it() {
    let desk = Desk::new().await;
    let mailbox = desk.mailbox("quiet").await;
    desk.deliver(
        mailbox,
        &plain_mail(
            "q@customer.example",
            "Quinn <quinn@customer.example>",
            "Hello",
            "Hi.",
        ),
    )
    .await;
    let admin = desk.admin().await;
    let agent = desk.agent().await;
    let page = desk.get("/tickets/1", Some(&admin)).await;
    page.assert_admin_page("a ticket whose mailbox does not send");
    assert!(page.body.contains(
        "Replies cannot be sent from the mailbox “quiet” yet: its sending address and SMTP server are not set up."
    ));
    assert!(page.body.contains(&format!(
        "<a href=\"/mailboxes/{mailbox}#sending-settings\">Set up sending on the mailbox page</a>"
    )));
    assert!(!page.body.contains("action=\"/tickets/1/replies\""));
    let page = desk.get("/tickets/1", Some(&agent)).await;
    assert!(page.body.contains("Ask an admin to set them up."));
    assert!(
        !page.body.contains("/mailboxes/"),
        "agents get no admin link"
    );
}

#[tokio::test]
async fn the_mailbox_form_sets_up_sending_with_presets_and_tests_it() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;

    let gmail = desk.get("/mailboxes/new?preset=gmail", Some(&admin)).await;
    gmail.assert_admin_page("the Gmail form");
    assert!(gmail.body.contains("id=\"smtp_host\" name=\"smtp_host\" type=\"text\" maxlength=\"253\" value=\"smtp.gmail.com\""));
    assert!(gmail.body.contains("id=\"smtp_port\" name=\"smtp_port\" type=\"text\" inputmode=\"numeric\" maxlength=\"5\" value=\"465\""));
    assert!(
        gmail
            .body
            .contains("<option value=\"implicit\" selected>TLS from the start (port 465)</option>")
    );
    let microsoft = desk
        .get("/mailboxes/new?preset=microsoft365", Some(&admin))
        .await;
    assert!(microsoft.body.contains("value=\"smtp.office365.com\""));
    assert!(microsoft.body.contains("value=\"587\""));
    assert!(
        microsoft
            .body
            .contains("<option value=\"starttls\" selected>STARTTLS (port 587)</option>")
    );
    assert!(
        microsoft
            .body
            .contains("SMTP AUTH is enabled for the mailbox")
    );
    for (id, label) in [
        ("send_address", "Send from address"),
        ("send_display_name", "Sender name"),
        ("smtp_host", "SMTP server"),
        ("smtp_port", "SMTP port"),
        ("smtp_tls", "SMTP security"),
        ("smtp_auth", "SMTP sign-in method"),
        ("smtp_username", "SMTP username"),
        ("smtp_password", "SMTP password or token"),
        (
            "smtp_allow_insecure_auth",
            "Allow SMTP password over an unencrypted connection",
        ),
        ("acknowledge", "Acknowledge new tickets"),
    ] {
        assert_eq!(label_of(&gmail.body, id).as_deref(), Some(label), "{id}");
    }

    // Added without an address: no sending, although the preset filled the server.
    let plain = desk
        .post(
            "/mailboxes",
            &mailbox_fields(&[
                ("preset", "gmail"),
                ("name", "Quiet"),
                ("smtp_host", "smtp.gmail.com"),
            ]),
            Some(&admin),
        )
        .await;
    assert_eq!(plain.status, StatusCode::SEE_OTHER, "{}", plain.body);
    let quiet = desk.store.mailboxes().await.expect("list");
    assert!(quiet[0].settings.sending.is_none());

    // With an address and a login of its own.
    let added = desk
        .post(
            "/mailboxes",
            &mailbox_fields(&[
                ("name", "Support"),
                ("send_address", "support@example.com"),
                ("send_display_name", "Example Support"),
                ("smtp_host", "127.0.0.1"),
                ("smtp_port", "1"),
                ("smtp_tls", "implicit"),
                ("smtp_auth", "auto"),
                ("smtp_username", "relay"),
                ("smtp_password", "smtp secret 42"),
                ("acknowledge", "true"),
            ]),
            Some(&admin),
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let id: i64 = added
        .location()
        .trim_start_matches("/mailboxes/")
        .parse()
        .expect("the new mailbox's page");
    let mailbox = desk.store.mailbox_by_id(id).await.expect("r").expect("m");
    let sending = mailbox.settings.sending.expect("sending is set up");
    assert_eq!(sending.address, "support@example.com");
    assert_eq!(sending.smtp_username.as_deref(), Some("relay"));
    assert!(sending.acknowledge);
    assert_eq!(
        desk.store
            .smtp_secret(id)
            .await
            .expect("secret")
            .expose_secret(),
        "smtp secret 42"
    );

    let page = desk.get(&format!("/mailboxes/{id}"), Some(&admin)).await;
    page.assert_admin_page("a mailbox that sends");
    assert!(!page.body.contains("smtp secret 42"), "never shown");
    assert!(
        page.body
            .contains("<h2 id=\"sending-head\">Sending replies</h2>")
    );
    assert!(
        page.body
            .contains("Example Support &#60;support@example.com&#62;")
    );
    assert!(page.body.contains("127.0.0.1:1"));
    assert!(page.body.contains("relay, with a password of its own"));
    assert!(page.body.contains(">Test sending</button>"));
    assert!(page.body.contains("value=\"relay\""));
    assert!(page.body.contains("leave it blank to keep the stored one"));

    let tested = desk
        .post(&format!("/mailboxes/{id}/test-sending"), &[], Some(&admin))
        .await;
    tested.assert_admin_page("the sending test");
    let alert = tested.role_text("alert").join(" ");
    assert!(
        alert.contains("The sending test failed (127.0.0.1:1)."),
        "{alert}"
    );

    // An error lands beside its input, with the values kept and no password.
    let wrong = desk
        .post(
            &format!("/mailboxes/{id}"),
            &mailbox_fields(&[
                ("name", "Support"),
                ("password", ""),
                ("send_address", "support@example.com"),
                ("smtp_host", "127.0.0.1"),
                ("smtp_port", "70000"),
                ("smtp_username", "relay"),
                ("smtp_password", "smtp secret 43"),
            ]),
            Some(&admin),
        )
        .await;
    wrong.assert_page(StatusCode::UNPROCESSABLE_ENTITY, "a bad SMTP port");
    let alert = wrong.role_text("alert").join(" ");
    assert!(
        alert.contains("“SMTP port” must be between 1 and 65535."),
        "{alert}"
    );
    assert!(
        wrong
            .body
            .contains("id=\"smtp_port\" aria-invalid=\"true\"")
    );
    assert!(wrong.body.contains("value=\"70000\""));
    assert!(!wrong.body.contains("smtp secret 43"));

    // Moving SMTP elsewhere needs SMTP's own password again (the secret rule).
    let moved = desk
        .post(
            &format!("/mailboxes/{id}"),
            &mailbox_fields(&[
                ("name", "Support"),
                ("password", ""),
                ("send_address", "support@example.com"),
                ("smtp_host", "smtp.example.net"),
                ("smtp_port", "1"),
                ("smtp_tls", "implicit"),
                ("smtp_auth", "auto"),
                ("smtp_username", "relay"),
            ]),
            Some(&admin),
        )
        .await;
    moved.assert_page(
        StatusCode::UNPROCESSABLE_ENTITY,
        "SMTP moved without its password",
    );
    let alert = moved.role_text("alert").join(" ");
    assert!(
        alert.contains("type it in “SMTP password or token”"),
        "{alert}"
    );

    // A blank address turns sending off.
    let off = desk
        .post(
            &format!("/mailboxes/{id}"),
            &mailbox_fields(&[
                ("name", "Support"),
                ("password", ""),
                ("smtp_host", "127.0.0.1"),
            ]),
            Some(&admin),
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER, "{}", off.body);
    let mailbox = desk.store.mailbox_by_id(id).await.expect("r").expect("m");
    assert!(mailbox.settings.sending.is_none());
    let page = desk.get(&format!("/mailboxes/{id}"), Some(&admin)).await;
    assert!(page.body.contains("This mailbox does not send"));
    assert!(!page.body.contains(">Test sending</button>"));
}

// ---------------------------------------------------------------------------------------
// Issue #19: what the provider does with deleted mail. The behaviours come from
// testkit's FaultyPop3, a hand-written fake server (no real server does them on demand),
// fetched by the real fetcher into the desk's store.

/// Fetches the mailbox once with the real fetcher.
async fn fetch_once(desk: &Desk, id: i64) {
    let mailbox = desk
        .store
        .mailbox_by_id(id)
        .await
        .expect("read mailbox")
        .expect("mailbox exists");
    desk.clock.set(desk.clock.now_ms() + 60_000);
    let report = intake::Fetcher::new(desk.store.clone(), Arc::new(desk.clock.clone()))
        .fetch(&mailbox)
        .await
        .expect("a run is recorded");
    assert_eq!(
        report.outcome,
        store::RunOutcome::Success,
        "{:?}",
        report.error
    );
}

#[tokio::test]
async fn what_the_provider_does_with_deleted_mail_is_shown_calmly_on_the_page_the_list_and_the_api()
{
    use testkit::{FaultyPop3, MessageFault, ProviderBehaviour};
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    let cases = [
        (
            ProviderBehaviour::KeepsDeleted,
            2,
            "kept_after_delete",
            3,
            "The server keeps messages after popdesk deletes them (3 kept).",
        ),
        (
            ProviderBehaviour::ReoffersUnderNewUidls,
            2,
            "reoffered_under_new_uidl",
            3,
            "Messages popdesk already had came back under new UIDLs (3 in all).",
        ),
        (
            ProviderBehaviour::NoUidl,
            1,
            "no_uidl",
            3,
            "The server gives its messages no UIDL (3 messages listed).",
        ),
        (
            ProviderBehaviour::DuplicateUidls,
            1,
            "duplicate_uidls",
            2,
            "The server gives one UIDL to several messages (2 messages in the last listing).",
        ),
    ];
    let mut servers = Vec::new();
    for (behaviour, runs, kind, messages, headline) in cases {
        let server = FaultyPop3::start("secret");
        for i in 0..3 {
            let bytes = format!(
                "From: c{i}@example.net\r\nSubject: {kind} {i}\r\nMessage-ID: <{kind}{i}@example.net>\r\n\r\nHello {i}\r\n"
            );
            server.add(&format!("uid-{i}"), bytes.as_bytes(), MessageFault::None);
        }
        server.set_behaviour(behaviour);
        let settings = MailboxSettings {
            name: kind.to_string(),
            host: server.addr().ip().to_string(),
            port: server.addr().port(),
            tls: store::TlsMode::None,
            allow_insecure_auth: true,
            username: server.user().to_string(),
            enabled: true,
            ..MailboxSettings::default()
        };
        let id = desk
            .store
            .add_mailbox(&settings, &SecretString::from("secret".to_string()), NOW)
            .await
            .expect("add mailbox")
            .id;
        for _ in 0..runs {
            fetch_once(&desk, id).await;
        }

        let page = desk.get(&format!("/mailboxes/{id}"), Some(&admin)).await;
        page.assert_admin_page(kind);
        let status = page.role_text("status");
        assert!(
            status.iter().any(|t| t.contains(headline)
                && t.contains("Noticed since")
                && t.contains("popdesk keeps fetching as usual.")),
            "{kind}: {status:?}"
        );
        assert!(
            page.body.contains(&format!("data-notice=\"{kind}\"")),
            "{kind}"
        );
        // Information, not an error: no alert, and the mailbox stays enabled.
        assert!(page.role_text("alert").is_empty(), "{kind}: {}", page.body);
        assert!(
            page.body
                .contains(r#"<span class="badge ok">Enabled</span>"#),
            "{kind}"
        );
        // The general words: this server is neither Gmail nor Microsoft 365.
        assert!(!status.concat().contains("Gmail"), "{kind}: {status:?}");

        let api = desk
            .get(&format!("/api/v1/mailboxes/{id}"), Some(&admin))
            .await;
        assert_eq!(api.status, StatusCode::OK, "{}", api.body);
        let view: serde_json::Value = serde_json::from_str(&api.body).expect("json");
        assert_eq!(view["provider"], "other", "{kind}");
        assert!(view["needs_attention"].is_null(), "{kind}");
        let notices = view["provider_notices"].as_array().expect("a list");
        assert_eq!(notices.len(), 1, "{kind}: {notices:?}");
        assert_eq!(notices[0]["kind"], kind);
        assert_eq!(notices[0]["messages"], messages, "{kind}");
        assert!(
            notices[0]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with(headline)),
            "{kind}: {notices:?}"
        );
        assert!(
            notices[0]["first_seen_at"]
                .as_i64()
                .is_some_and(|t| t > NOW)
        );
        servers.push((server, kind, headline));
    }

    // The list's health line says each, linking to the page.
    let list = desk.get("/mailboxes", Some(&admin)).await;
    list.assert_admin_page("mailboxes with notices");
    for (_, kind, headline) in &servers {
        assert!(
            list.body.contains(&format!("data-notice=\"{kind}\"")),
            "{kind}"
        );
        assert!(list.body.contains(headline), "{kind}");
    }
    assert!(
        !list.body.contains("problem-text"),
        "nothing here is a problem: {}",
        list.body
    );
}

#[tokio::test]
async fn gmail_and_microsoft_365_mailboxes_get_their_providers_words() {
    let desk = Desk::new().await;
    let admin = desk.admin().await;
    for (host, provider, words) in [
        ("pop.gmail.com", "gmail", "Forwarding and POP/IMAP"),
        ("outlook.office365.com", "microsoft365", "retention policy"),
    ] {
        let settings = MailboxSettings {
            name: provider.to_string(),
            host: host.to_string(),
            username: "support@example.com".to_string(),
            enabled: false,
            ..MailboxSettings::default()
        };
        let id = desk
            .store
            .add_mailbox(&settings, &SecretString::from("secret".to_string()), NOW)
            .await
            .expect("add mailbox")
            .id;
        desk.store
            .update_provider_notices(id, &[(store::NoticeKind::KeptAfterDelete, 412)], &[], NOW)
            .await
            .expect("record notice");
        let page = desk.get(&format!("/mailboxes/{id}"), Some(&admin)).await;
        page.assert_admin_page(provider);
        let status = page.role_text("status").concat();
        assert!(status.contains("(412 kept)"), "{provider}: {status}");
        assert!(status.contains(words), "{provider}: {status}");
        let api = desk
            .get(&format!("/api/v1/mailboxes/{id}"), Some(&admin))
            .await;
        let view: serde_json::Value = serde_json::from_str(&api.body).expect("json");
        assert_eq!(view["provider"], provider);
        assert_eq!(view["provider_notices"][0]["messages"], 412);
    }
}

// ---------------------------------------------------------------------------------------
// The agent's day (issue 15): preferences, times in one's own zone, small things.

/// A plain mail with a picture attached (not inline) and a long address in its text.
fn screenshot_mail() -> Vec<u8> {
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD.encode(PNG);
    format!(
        "From: Sam Screens <sam@customer.example>\r\nTo: support@example.com\r\n\
Subject: Error screen\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\
Message-ID: <screen@customer.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"MIX\"\r\n\r\n\
--MIX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the screenshot.\r\n\
--MIX\r\nContent-Type: image/png; name=\"screen.png\"\r\n\
Content-Disposition: attachment; filename=\"screen.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
{png}\r\n\
--MIX\r\nContent-Type: image/svg+xml; name=\"logo.svg\"\r\n\
Content-Disposition: attachment; filename=\"logo.svg\"\r\n\r\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>\r\n\
--MIX--\r\n"
    )
    .into_bytes()
}

/// HTML that refers to an inline image it does not carry.
fn missing_image_mail() -> Vec<u8> {
    b"From: Ann Other <ann@customer.example>\r\nTo: support@example.com\r\n\
Subject: Newsletter reply\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\
Message-ID: <nl@customer.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n\
<p>Our logo: <img alt=\"logo\" src=\"cid:logo@customer.example\"> is gone.</p>\r\n"
        .to_vec()
}

/// Issue 15, small things: an HTML mail is read once (the frame; its plain text folded
/// below it), an inline image the mail does not carry is left out of the frame, an
/// imported ticket says when its mail was written, image attachments have a preview
/// (never SVG), and nothing in the stylesheet breaks words anywhere.
#[tokio::test]
async fn the_ticket_page_shows_an_html_mail_once_with_previews_and_mail_dates() {
    let desk = Desk::new().await;
    let (mailbox, number, html_raw) = desk.printer_ticket().await;
    let agent = desk.agent().await;
    let page = desk.get(&format!("/tickets/{number}"), Some(&agent)).await;
    page.assert_page(StatusCode::OK, "ticket");
    let body = &page.body;
    let frame = body.find("<iframe").expect("the formatted message");
    let plain = body
        .find("<details class=\"plain-text\">")
        .expect("the plain text, folded (closed)");
    let text = body
        .find("The printer on floor 3 is literally on fire.")
        .expect("the plain text");
    assert!(frame < plain && plain < text, "frame, then the folded text");
    assert_eq!(
        body.matches("The printer on floor 3 is literally on fire.")
            .count(),
        1,
        "the HTML mail's text once"
    );
    // A plain mail still shows its text open.
    assert!(body.contains("<div class=\"mail-text\">Update: the fire is out"));

    // Imported: the mail was written on 26 November, long before it arrived.
    assert!(
        body.contains(
            ", written <time datetime=\"2026-11-26T08:00:00Z\">2026-11-26 08:00 UTC</time>"
        ),
        "{body}"
    );
    assert!(body.contains(", last mail written <time datetime=\"2026-11-26T09"));

    // The inline image that the printer mail carries is not previewed (the frame shows
    // it); a missing one is dropped from the frame.
    assert!(!body.contains("class=\"attachment-preview\""), "{body}");
    let missing = desk.deliver(mailbox, &missing_image_mail()).await;
    let doc = desk
        .get(&format!("/messages/{missing}/html"), Some(&agent))
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body.contains("Our logo:"), "{}", doc.body);
    assert!(!doc.body.contains("<img"), "no broken image: {}", doc.body);
    let carried = desk
        .get(&format!("/messages/{html_raw}/html"), Some(&agent))
        .await;
    assert!(
        carried.body.contains("alt=\"flames\""),
        "a carried image stays"
    );

    // A picture attached: a small preview of the download; an SVG only a link.
    let screen = desk.deliver(mailbox, &screenshot_mail()).await;
    let ticket = desk
        .store
        .ticket_by_number(number + 2)
        .await
        .expect("read")
        .expect("the screenshot ticket");
    assert_eq!(ticket.subject, "Error screen");
    let page = desk
        .get(&format!("/tickets/{}", ticket.number), Some(&agent))
        .await;
    page.assert_page(StatusCode::OK, "ticket with a screenshot");
    let previews: Vec<_> = tags(&page.body)
        .into_iter()
        .filter(|t| t.name == "img")
        .collect();
    assert_eq!(previews.len(), 1, "{}", page.body);
    assert_eq!(
        previews[0].attr("src"),
        Some(format!("/api/v1/messages/{screen}/attachments/0").as_str())
    );
    assert!(page.body.contains("logo.svg</a>"));
    let image = desk
        .get(
            &format!("/api/v1/messages/{screen}/attachments/0"),
            Some(&agent),
        )
        .await;
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.header("content-type"), "image/png");

    let css = desk.get("/assets/app.css", None).await;
    assert!(
        !css.body.contains("overflow-wrap: anywhere"),
        "words (addresses, host names, numbers) are not broken anywhere"
    );
}

/// Issue 15: links in a note are clickable (and nothing else in it is markup), and
/// "Note added." shows on the note, where the page lands, not at the top.
#[tokio::test]
async fn a_note_links_its_urls_and_confirms_where_it_lands() {
    let desk = Desk::new().await;
    let (_, number, _) = desk.printer_ticket().await;
    let agent = desk.agent().await;
    let reply = desk
        .post(
            &format!("/tickets/{number}/notes"),
            &[(
                "body",
                "Manual: https://wiki.example/printers?floor=3&x=1. <script>no</script>",
            )],
            Some(&agent),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let anchor = reply
        .location()
        .split_once('#')
        .map(|(_, anchor)| anchor.to_string())
        .expect("lands at the note");
    let page = desk.follow(&reply, &agent).await;
    page.assert_page(StatusCode::OK, "ticket after a note");
    let body = &page.body;
    let note = body
        .find(&format!("<article class=\"card note\" id=\"{anchor}\">"))
        .expect("the note");
    let confirmation = body.find("Note added.").expect("the confirmation");
    assert!(confirmation > note, "shown at the note, not at the top");
    assert_eq!(body.matches("Note added.").count(), 1);
    assert_eq!(page.role_text("status"), ["Note added."]);
    let link = tags(body)
        .into_iter()
        .find(|t| {
            t.name == "a"
                && t.attr("href")
                    .is_some_and(|h| h.starts_with("https://wiki"))
        })
        .expect("the link is clickable");
    assert_eq!(
        link.attr("href"),
        Some("https://wiki.example/printers?floor=3&#38;x=1")
    );
    assert_eq!(link.attr("rel"), Some("noopener noreferrer nofollow"));
    assert_eq!(link.attr("target"), Some("_blank"));
    assert!(
        body.contains("&#60;script&#62;no&#60;/script&#62;"),
        "escaped"
    );
}

/// Issue 15: each user sets their own time zone and notifications on a page of their
/// own, linked from their name; times then read in that zone; an unknown zone is
/// refused beside the form; the password changes there with the API's rules.
#[tokio::test]
async fn preferences_set_the_time_zone_and_notifications_and_change_the_password() {
    let desk = Desk::new().await;
    let (_, number, _) = desk.printer_ticket().await;
    let agent = desk.agent().await;
    let page = desk.get("/preferences", Some(&agent)).await;
    page.assert_page(StatusCode::OK, "preferences");
    assert!(
        page.body.contains("href=\"/preferences\""),
        "linked from the header"
    );
    assert_eq!(
        label_of(&page.body, "time_zone").as_deref(),
        Some("Time zone")
    );
    assert!(
        page.body
            .contains("<option value=\"UTC\" selected>UTC</option>")
    );
    assert!(page.body.contains("<option value=\"Europe/Berlin\">"));
    assert!(page.body.contains(">Save preferences</button>"));
    assert!(page.body.contains(">Change password</button>"));

    let ticket = desk.get(&format!("/tickets/{number}"), Some(&agent)).await;
    assert!(ticket.body.contains("2026-11-26 08:00 UTC"));

    let reply = desk
        .post(
            "/preferences",
            &[
                ("time_zone", "Europe/Berlin"),
                ("notify_new_ticket", "true"),
            ],
            Some(&agent),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location(), "/preferences");
    let shown = desk.follow(&reply, &agent).await;
    assert_eq!(shown.role_text("status"), ["Your preferences are saved."]);
    assert!(
        shown
            .body
            .contains("<option value=\"Europe/Berlin\" selected>")
    );
    let user = desk
        .store
        .user_by_email(AGENT)
        .await
        .expect("read")
        .expect("agent");
    let saved = desk.store.preferences(user.id).await.expect("preferences");
    assert_eq!(saved.time_zone, "Europe/Berlin");
    assert!(saved.notify_new_ticket);
    assert!(!saved.notify_customer_reply, "an unticked box is off");
    assert!(!saved.notify_assigned);

    // Times now read in Berlin, with the zone's abbreviation; machines still get UTC.
    let ticket = desk.get(&format!("/tickets/{number}"), Some(&agent)).await;
    assert!(
        ticket
            .body
            .contains("<time datetime=\"2026-11-26T08:00:00Z\">2026-11-26 09:00 CET</time>"),
        "{}",
        ticket.body
    );
    // Another viewer keeps UTC.
    let admin = desk.admin().await;
    let theirs = desk.get(&format!("/tickets/{number}"), Some(&admin)).await;
    assert!(theirs.body.contains("2026-11-26 08:00 UTC"));

    let refused = desk
        .post(
            "/preferences",
            &[("time_zone", "Mars/Olympus")],
            Some(&agent),
        )
        .await;
    refused.assert_page(StatusCode::UNPROCESSABLE_ENTITY, "unknown zone");
    assert!(refused.role_text("alert")[0].contains("not a time zone name"));
    assert_eq!(
        desk.store
            .preferences(user.id)
            .await
            .expect("read")
            .time_zone,
        "Europe/Berlin",
        "nothing changed"
    );

    // The password: the current one must be right; then the new one signs in.
    let wrong = desk
        .post(
            "/preferences/password",
            &[
                ("current_password", "wrong"),
                ("new_password", "a much longer secret"),
            ],
            Some(&agent),
        )
        .await;
    wrong.assert_page(StatusCode::UNAUTHORIZED, "wrong current password");
    assert_eq!(wrong.role_text("alert"), ["The current password is wrong."]);
    let changed = desk
        .post(
            "/preferences/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a much longer secret"),
            ],
            Some(&agent),
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    assert!(
        changed
            .cookie("popdesk_session")
            .is_some_and(|c| !c.is_empty())
    );
    let old = desk
        .post("/login", &[("email", AGENT), ("password", PASSWORD)], None)
        .await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "the old password is gone"
    );
    let new = desk
        .post(
            "/login",
            &[("email", AGENT), ("password", "a much longer secret")],
            None,
        )
        .await;
    assert_eq!(new.status, StatusCode::SEE_OTHER);
}

// The agent's day: assignment, views, merge, bulk changes, the self-updating list.

/// Two tickets from Alice in "support": (mailbox, older number, newer number).
async fn two_printer_tickets(desk: &Desk) -> (i64, i64, i64) {
    let mailbox = desk.mailbox("support").await;
    desk.deliver(
        mailbox,
        &plain_mail(
            "t1@example.com",
            "Alice <alice@example.com>",
            "Printer jam",
            "Jams.",
        ),
    )
    .await;
    desk.deliver(
        mailbox,
        &plain_mail(
            "t2@example.com",
            "Alice <alice@example.com>",
            "Printer jam again",
            "Still.",
        ),
    )
    .await;
    (mailbox, 1, 2)
}

#[tokio::test]
async fn assign_on_the_ticket_page_then_the_mine_view_lists_it() {
    let desk = Desk::new().await;
    let (_, first, second) = two_printer_tickets(&desk).await;
    let agent = desk.agent().await;
    let page = desk.get(&format!("/tickets/{first}"), Some(&agent)).await;
    page.assert_page(StatusCode::OK, "ticket with the assign form");
    assert_eq!(label_of(&page.body, "assign-to").as_deref(), Some("Assign"));
    assert!(
        page.body
            .contains(&format!("action=\"/tickets/{first}/assign\""))
    );
    assert!(page.body.contains(&format!(
        "<input type=\"hidden\" name=\"assignee\" value=\"{AGENT}\">\n      <button type=\"submit\">Assign to me</button>"
    )));

    // "Assign to me" posts the viewer's address.
    let reply = desk
        .post(
            &format!("/tickets/{first}/assign"),
            &[("assignee", AGENT)],
            Some(&agent),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let shown = desk.follow(&reply, &agent).await;
    assert_eq!(
        shown.role_text("status"),
        [format!("The ticket is now assigned to {AGENT}.")]
    );
    assert!(
        shown
            .body
            .contains(&format!("{AGENT} assigned the ticket to {AGENT}"))
    );
    assert!(
        !shown.body.contains("Assign to me</button>"),
        "it is theirs already"
    );

    let mine = desk.get("/tickets?assignee=me", Some(&agent)).await;
    mine.assert_page(StatusCode::OK, "the Mine view");
    assert!(mine.body.contains("aria-current=\"page\">Mine</a>"));
    assert!(mine.body.contains(&format!("Select ticket #{first}")));
    assert!(!mine.body.contains(&format!("Select ticket #{second}")));
    assert!(mine.body.contains(&format!(
        "<td data-label=\"Assignee\" class=\"assignee\">{AGENT}</td>"
    )));
    let unassigned = desk.get("/tickets?assignee=none", Some(&agent)).await;
    assert!(
        unassigned
            .body
            .contains(&format!("Select ticket #{second}"))
    );
    assert!(!unassigned.body.contains(&format!("Select ticket #{first}")));

    // An address nobody has is refused with the reason, nothing changed.
    let reply = desk
        .post(
            &format!("/tickets/{second}/assign"),
            &[("assignee", "nobody@example.com")],
            Some(&agent),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let shown = desk.follow(&reply, &agent).await;
    assert!(
        shown
            .role_text("alert")
            .iter()
            .any(|t| t.contains("no user with the address"))
    );
}

#[tokio::test]
async fn a_merged_ticket_redirects_to_the_one_it_joined_with_a_flash() {
    let desk = Desk::new().await;
    let (_, first, second) = two_printer_tickets(&desk).await;
    let agent = desk.agent().await;
    let page = desk.get(&format!("/tickets/{second}"), Some(&agent)).await;
    assert_eq!(
        label_of(&page.body, "merge-into").as_deref(),
        Some("Merge into ticket")
    );

    let reply = desk
        .post(
            &format!("/tickets/{second}/merge"),
            &[("into", &format!("#{first}"))],
            Some(&agent),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location(), format!("/tickets/{first}"));
    let joined = desk.follow(&reply, &agent).await;
    joined.assert_page(StatusCode::OK, "the joined ticket");
    assert_eq!(
        joined.role_text("status"),
        [format!("Ticket #{second} was merged into this one.")]
    );
    assert!(
        joined.body.contains("Still."),
        "the merged ticket's mail is here"
    );
    assert!(joined.body.contains(&format!(
        "merged ticket <a href=\"/tickets/{second}\">#{second}</a> into this one"
    )));

    // The old number leads to the new ticket.
    let old = desk.get(&format!("/tickets/{second}"), Some(&agent)).await;
    assert_eq!(old.status, StatusCode::SEE_OTHER);
    assert_eq!(old.location(), format!("/tickets/{first}"));
    let landed = desk.follow(&old, &agent).await;
    assert_eq!(
        landed.role_text("status"),
        [format!("Ticket #{second} was merged into this one.")]
    );

    // Merging into itself is refused on the page, in words.
    let reply = desk
        .post(
            &format!("/tickets/{first}/merge"),
            &[("into", &first.to_string())],
            Some(&agent),
        )
        .await;
    let shown = desk.follow(&reply, &agent).await;
    assert!(
        shown
            .role_text("alert")
            .iter()
            .any(|t| t.contains("cannot be merged into itself"))
    );
}

#[tokio::test]
async fn ticked_tickets_change_together_and_the_list_comes_back_in_its_view() {
    let desk = Desk::new().await;
    let (_, first, second) = two_printer_tickets(&desk).await;
    let agent = desk.agent().await;
    let list = desk.get("/tickets?sort=created", Some(&agent)).await;
    assert!(list.body.contains("action=\"/tickets/bulk\""));
    assert!(list.body.contains("form=\"bulk\" name=\"ticket\""));
    let (a, b) = (first.to_string(), second.to_string());
    let reply = desk
        .post(
            "/tickets/bulk",
            &[
                ("ticket", a.as_str()),
                ("ticket", b.as_str()),
                ("status", "pending"),
                ("action", "status"),
                ("back", "/tickets?sort=created"),
            ],
            Some(&agent),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location(), "/tickets?sort=created");
    let shown = desk.follow(&reply, &agent).await;
    assert_eq!(shown.role_text("status"), ["2 tickets set to Pending."]);
    for number in [first, second] {
        let ticket = desk.store.ticket_by_number(number).await.unwrap().unwrap();
        assert_eq!(ticket.status, TicketStatus::Pending);
    }

    let reply = desk
        .post(
            "/tickets/bulk",
            &[
                ("ticket", a.as_str()),
                ("assignee", AGENT),
                ("action", "assign"),
                ("back", "https://evil.example/"),
            ],
            Some(&agent),
        )
        .await;
    assert_eq!(reply.location(), "/tickets", "only the list is a way back");
    let ticket = desk.store.ticket_by_number(first).await.unwrap().unwrap();
    assert_eq!(ticket.assignee.map(|a| a.email).as_deref(), Some(AGENT));

    // A change on the ticket page comes back to the page in the same view.
    assert!(page_has_view_field(&desk, first, &agent).await);
    for (view, back) in [
        ("?sort=created", format!("/tickets/{first}?sort=created")),
        ("//evil.example/", format!("/tickets/{first}")),
    ] {
        let reply = desk
            .post(
                &format!("/tickets/{first}/status"),
                &[("status", "open"), ("view", view)],
                Some(&agent),
            )
            .await;
        assert_eq!(reply.location(), back, "{view}");
    }
    // A view that no longer reads (an old bookmark) still shows the ticket.
    for query in ["?assignee=left@example.com", "?sort=sideways"] {
        let page = desk
            .get(&format!("/tickets/{first}{query}"), Some(&agent))
            .await;
        page.assert_page(StatusCode::OK, query);
    }
    // The ticket page keeps the view: back, previous and next.
    let page = desk
        .get(&format!("/tickets/{first}?sort=created"), Some(&agent))
        .await;
    assert!(
        page.body
            .contains("<a href=\"/tickets?sort=created\">Tickets</a>")
    );
    assert!(page.body.contains(&format!(
        "<a href=\"/tickets/{second}?sort=created\" rel=\"prev\">Previous ticket</a>"
    )));
}

#[tokio::test]
async fn the_list_refreshes_itself_and_a_new_ticket_appears_on_the_next_fetch() {
    let desk = Desk::new().await;
    let (mailbox, _, _) = two_printer_tickets(&desk).await;
    let agent = desk.agent().await;
    let list = desk.get("/tickets?status=new", Some(&agent)).await;
    assert!(
        list.body.contains(
            "<div id=\"ticket-results\" hx-get=\"/tickets?status=new\" hx-trigger=\"every 3s\" hx-select=\"#ticket-results\""
        ),
        "the results fetch themselves again while open"
    );
    assert!(!list.body.contains("VPN down"));
    desk.deliver(
        mailbox,
        &plain_mail(
            "t3@example.com",
            "Bob <bob@example.com>",
            "VPN down",
            "No VPN.",
        ),
    )
    .await;
    let again = desk.get("/tickets?status=new", Some(&agent)).await;
    assert!(
        again.body.contains("VPN down"),
        "the new ticket is in the next refresh"
    );
    assert!(again.body.contains("New <span class=\"count\">3</span>"));
}

#[tokio::test]
async fn admins_see_a_banner_naming_a_stopped_mailbox_on_the_ticket_list() {
    let desk = Desk::new().await;
    let settings = MailboxSettings {
        name: "billing".to_string(),
        host: "pop.example.com".into(),
        username: "billing@example.com".into(),
        enabled: true,
        ..MailboxSettings::default()
    };
    let mailbox = desk
        .store
        .add_mailbox(&settings, &SecretString::from("secret".to_string()), NOW)
        .await
        .unwrap();
    let admin = desk.admin().await;
    let agent = desk.agent().await;
    let quiet = desk.get("/tickets", Some(&admin)).await;
    assert!(quiet.role_text("alert").is_empty());
    desk.store
        .set_attention(mailbox.id, Some("the server refused the password"), NOW)
        .await
        .unwrap();
    let list = desk.get("/tickets", Some(&admin)).await;
    let alerts = list.role_text("alert");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].contains("billing (stopped on an error)"),
        "{alerts:?}"
    );
    assert!(list.body.contains(&format!(
        "<a href=\"/mailboxes/{}\">billing</a>",
        mailbox.id
    )));
    let for_agent = desk.get("/tickets", Some(&agent)).await;
    assert!(
        for_agent.role_text("alert").is_empty(),
        "agents cannot fix mailboxes"
    );
}

/// Whether the ticket page, opened in a list view, carries it in its forms.
async fn page_has_view_field(desk: &Desk, number: i64, browser: &Browser) -> bool {
    let page = desk
        .get(&format!("/tickets/{number}?sort=created"), Some(browser))
        .await;
    page.body
        .contains("<input type=\"hidden\" name=\"view\" value=\"?sort=created\">")
}
