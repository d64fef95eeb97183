//! The web UI in a real browser (issue #6): Debian's Chromium, driven from Node by
//! playwright-core (`e2e/`), against the real `popdesk serve` and a real Dovecot.
//!
//! This file builds the world the browser sees: a Dovecot holding five mails (rich HTML
//! with an inline image and an attachment, an XSS probe, a plain-text reply with quoted
//! history, an auto-reply on that ticket, an auto-reply about nothing), a `popdesk serve` with a first admin made on the command line,
//! and a second `popdesk serve` on an empty data folder for the first-run setup page.
//! The browser then works through the flows an agent and an admin use (see
//! `e2e/ui.test.mjs`); this test insists that Node exits 0 and, once the service has
//! stopped, checks with the CLI that what the browser did is really in the store.
//!
//! - Promise 7 in the browser: mail HTML never runs a script or loads anything remote.
//! - Promise 1: "Test connection" changes nothing on the server; a fetch empties it and
//!   every message is a ticket entry.
//!
//! Screenshots go to `target/e2e-artifacts/`. Needs `scripts/install-test-deps` (Chromium,
//! Node, `npm ci` in `e2e/`); without them this test fails and says so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PASSWORD, Popdesk, Running, USER};
use testkit::Dovecot;

/// Debian's Chromium, as `scripts/install-test-deps` installs it.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Node gets this long for everything; then it is killed with its browser. The OAuth2
/// story waits out an access token's life (20 s) on purpose.
const NODE_TIMEOUT: Duration = Duration::from_secs(330);
/// The OAuth2 mailbox's POP3 user, and the account signed in at the provider: the
/// provider's tokens carry the account name as the user Dovecot lets in.
const OAUTH_USER: &str = "dana";
/// The mailbox the admin connects with OAuth2 in the browser.
const OAUTH_MAILBOX: &str = "oauthbox";
/// Its client at the provider (public: PKCE, no secret).
const OAUTH_CLIENT: &str = "popdesk-web";
const ADMIN_EMAIL: &str = "admin@example.org";
const ADMIN_PASSWORD: &str = "browser-test admin pass 7";
/// What `report.txt`, the attachment of "Printer on fire", holds (non-ASCII on purpose:
/// the download must be byte-exact, not re-encoded).
const REPORT_TXT: &str =
    "Printer PRN-3 status report\nToner: 12 %\nTemperature: 451 °F\nState: on fire\n";
/// An 8×8 orange PNG, the inline image of "Printer on fire".
const FLAMES_PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR42mN44SWDFTEMLQkA06hTgcpIvrkAAAAASUVORK5CYII=";

#[test]
fn agents_and_admins_work_in_a_real_browser_and_mail_html_never_runs_scripts() {
    let e2e = workspace().join("e2e");
    require_browser_tooling(&e2e);
    let artifacts = workspace().join("target/e2e-artifacts");
    // Stale screenshots from an earlier run would pass for this run's.
    let _ = fs::remove_dir_all(&artifacts);
    fs::create_dir_all(&artifacts).expect("create target/e2e-artifacts");

    let dovecot = Dovecot::builder().lmtp(true).sasl_listener(true).start();
    dovecot.add_user(USER, PASSWORD);
    // The customer's own mailbox, where the agent's reply lands through Postfix.
    dovecot.add_user("dana", "dana-pass");
    let postfix = testkit::Postfix::start(&dovecot);
    let mail = [
        printer_on_fire(),
        xss_probe(),
        reply_with_quoted_history(),
        auto_reply_on_the_ticket(),
        out_of_office_about_nothing(),
    ];
    for message in &mail {
        dovecot.deliver(USER, message.as_bytes());
    }
    assert_eq!(dovecot.message_count(USER), mail.len());

    // A second server with a self-signed, CA:TRUE certificate made by `openssl req -x509`,
    // for "Trust this certificate".
    let self_signed_cert = testkit::ServerCert::openssl_self_signed();
    let self_signed_fingerprint =
        pop3::CertFingerprint::of(self_signed_cert.cert_der().as_ref()).to_string();
    let self_signed = Dovecot::builder().server_cert(self_signed_cert).start();
    self_signed.add_user(USER, PASSWORD);

    // OAuth2: a real provider with 20-second access tokens, and a Dovecot that checks
    // every token with it (a token popdesk did not really get is refused).
    let main_addr = listen_addr();
    let provider = testkit::OidcProvider::start(
        testkit::OidcConfig::default().client(
            testkit::OidcClient::public(OAUTH_CLIENT)
                .redirect_uri(&format!("http://{main_addr}/oauth/callback")),
        ),
    );
    let oauth_dovecot = Dovecot::builder()
        .oauth2(provider.introspection_url_for_dovecot())
        .start();
    oauth_dovecot.add_user(OAUTH_USER, "unused-oauth2-only");
    oauth_dovecot.deliver(
        OAUTH_USER,
        b"From: Olga Oauth <olga@customer.example>\r\nTo: dana@example.com\r\n\
Subject: Fetched with OAuth2\r\nMessage-ID: <oauth-1@customer.example>\r\n\r\n\
This came in over a token popdesk got in the browser.\r\n",
    );

    let data = tempfile::tempdir().expect("data dir");
    let popdesk = Popdesk::new(data.path().join("main"));
    let added = popdesk
        .spawn_with(
            &[
                "user",
                "add",
                ADMIN_EMAIL,
                "--role",
                "admin",
                "--name",
                "Ada Admin",
                "--password-env",
                "ADMIN_PW",
            ],
            &[("ADMIN_PW", ADMIN_PASSWORD)],
        )
        .wait(common::RUN_TIMEOUT);
    assert!(added.status.success(), "user add: {}", added.stderr);
    // A server that keeps what popdesk deletes (the project's hand-written fault server):
    // two fetches before serving, and its mailbox page carries a notice.
    let keeper = testkit::FaultyPop3::start(PASSWORD);
    for i in 0..3 {
        let mail = format!(
            "From: Kim Keeper <kim{i}@keeper.example>\r\nTo: support@example.com\r\n\
             Subject: Kept question {i}\r\nMessage-ID: <kept{i}@keeper.example>\r\n\r\n\
             Still here {i}.\r\n"
        );
        keeper.add(
            &format!("keep-{i}"),
            mail.as_bytes(),
            testkit::MessageFault::None,
        );
    }
    keeper.set_behaviour(testkit::ProviderBehaviour::KeepsDeleted);
    popdesk.add_mailbox(
        NOTICE_MAILBOX,
        common::Security::Plaintext {
            addr: keeper.addr(),
        },
        &["--poll-interval", "3600"],
    );
    for _ in 0..2 {
        popdesk.run_ok(&["mailbox", "fetch", NOTICE_MAILBOX]);
    }
    // Made on the command line, connected in the browser.
    let oauth_port = oauth_dovecot.pop3_addr().port().to_string();
    let issuer = provider.issuer();
    popdesk.run_ok(&[
        "mailbox",
        "add",
        OAUTH_MAILBOX,
        "--host",
        "127.0.0.1",
        "--port",
        &oauth_port,
        "--tls",
        "none",
        "--allow-insecure-auth",
        "--user",
        OAUTH_USER,
        "--auth",
        "xoauth2",
        "--oauth-provider",
        "generic",
        "--oauth-issuer",
        &issuer,
        "--oauth-client-id",
        OAUTH_CLIENT,
        // offline_access as Microsoft wants it: oidc-provider grants less than asked
        // (it drops offline_access, and issues the refresh token anyway), so a renewal
        // that named the scopes again would be refused; popdesk names none.
        "--oauth-scope",
        "mail",
        "--oauth-scope",
        "offline_access",
        "--poll-interval",
        "3600",
    ]);
    let public_url = format!("http://{main_addr}");
    let serving = popdesk.spawn(&[
        "serve",
        "--listen",
        &main_addr.to_string(),
        "--public-url",
        &public_url,
    ]);
    // A second install, never set up: the browser walks its first-run page.
    let fresh = Popdesk::new(data.path().join("fresh"));
    let fresh_addr = listen_addr();
    let fresh_serving = fresh.spawn(&["serve", "--listen", &fresh_addr.to_string()]);
    wait_healthy(main_addr, &serving);
    wait_healthy(fresh_addr, &fresh_serving);
    // The one-time setup code: serve wrote it (0600) beside its log line; the browser
    // types it like an admin who read the log.
    let setup_code_file = fresh.data().join("setup-code");
    let setup_code = fs::read_to_string(&setup_code_file)
        .expect("serve writes the setup code while no user exists")
        .trim()
        .to_string();
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&setup_code_file)
            .expect("the setup code file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "setup-code mode {mode:o}");
    }

    // What the agent attaches to the reply in the browser: bytes no text filter keeps.
    let reply_attachment = data.path().join("Checkliste Brandfall.pdf");
    let attachment_bytes: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&reply_attachment, &attachment_bytes).expect("write the reply attachment");

    let started = Instant::now();
    let node = NodeRun::start(
        &e2e,
        &artifacts,
        &[
            ("BASE_URL", format!("http://{main_addr}")),
            ("SETUP_BASE_URL", format!("http://{fresh_addr}")),
            ("SETUP_CODE", setup_code.clone()),
            ("ADMIN_EMAIL", ADMIN_EMAIL.to_string()),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
            ("DOVECOT_HOST", dovecot.host().to_string()),
            (
                "DOVECOT_POP3S_PORT",
                dovecot.pop3s_addr().port().to_string(),
            ),
            ("CA_FILE", dovecot.ca_pem_path().display().to_string()),
            ("MAILBOX_USER", USER.to_string()),
            ("MAILBOX_PASSWORD", PASSWORD.to_string()),
            ("MAIL_COUNT", mail.len().to_string()),
            ("ATTACHMENT_NAME", "report.txt".to_string()),
            ("ATTACHMENT_CONTENT", REPORT_TXT.to_string()),
            ("ARTIFACTS", artifacts.display().to_string()),
            ("CHROMIUM", CHROMIUM.to_string()),
            (
                "SELF_SIGNED_PORT",
                self_signed.pop3s_addr().port().to_string(),
            ),
            ("SELF_SIGNED_FINGERPRINT", self_signed_fingerprint),
            ("SMTP_HOST", postfix.host().to_string()),
            ("SMTP_PORT", postfix.submission_addr().port().to_string()),
            ("SEND_ADDRESS", SEND_ADDRESS.to_string()),
            ("REPLY_ATTACHMENT", reply_attachment.display().to_string()),
            ("NOTICE_MAILBOX", NOTICE_MAILBOX.to_string()),
            ("OAUTH_MAILBOX", OAUTH_MAILBOX.to_string()),
            ("OAUTH_USER", OAUTH_USER.to_string()),
            ("OAUTH_ISSUER", issuer.clone()),
        ],
    );
    let (success, output) = node.finish(NODE_TIMEOUT);
    eprintln!("browser tests took {:.1?}", started.elapsed());
    if success {
        eprintln!("{output}");
    }
    if !success {
        panic!(
            "the browser tests failed (screenshots in {}):\n{output}\n\
             --- popdesk serve stderr (tail) ---\n{}",
            artifacts.display(),
            tail(&stop(serving).stderr, 60),
        );
    }

    // OAuth2: the provider saw popdesk renew the token after it expired, with a
    // rotated refresh token, and then refuse the revoked grant.
    let events = provider.token_events();
    let refreshes: Vec<_> = events
        .iter()
        .filter(|e| e.grant_type == "refresh_token")
        .collect();
    assert!(
        refreshes.iter().any(|e| e.outcome == "ok"),
        "popdesk renewed the expired access token: {events:?}"
    );
    assert!(
        refreshes.iter().any(|e| e.outcome == "invalid_grant"),
        "the revoked grant was refused at a refresh: {events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.grant_type == "authorization_code" && e.outcome == "ok")
            .count(),
        2,
        "Connect and Reconnect each exchanged one code: {events:?}"
    );
    assert_eq!(
        oauth_dovecot.message_count(OAUTH_USER),
        0,
        "the OAuth2 mailbox was fetched over the token"
    );

    // What the browser did is in the store, not just on the page.
    assert_eq!(
        dovecot.message_count(USER),
        0,
        "the fetch the browser started took every message off the server"
    );
    let stopped = stop(serving);
    assert!(stopped.status.success(), "{}", stopped.stderr);
    let fresh_stopped = stop(fresh_serving);
    assert!(fresh_stopped.status.success());
    assert!(
        fresh_stopped
            .stderr
            .contains(&format!("setup code: {setup_code}")),
        "serve logs the setup code: {}",
        fresh_stopped.stderr
    );
    assert!(
        !setup_code_file.exists(),
        "the setup code file goes once the admin exists"
    );
    let listed = popdesk.run_ok(&["ticket", "list", "--json"]);
    let tickets: serde_json::Value = serde_json::from_str(&listed.stdout).expect("ticket json");
    let find = |subject: &str| {
        tickets
            .as_array()
            .expect("a list")
            .iter()
            .find(|t| t["subject"] == subject)
            .unwrap_or_else(|| panic!("no ticket {subject:?} in {tickets:#}"))
            .clone()
    };
    let printer = find("Printer on fire");
    assert_eq!(
        printer["status"], "pending",
        "the browser set it: {printer:#}"
    );
    assert_eq!(
        printer["messages"], 4,
        "the reply and the auto-reply thread in, and the XSS probe was merged in: {printer:#}"
    );
    // The reply the agent wrote in the browser reached the customer through Postfix as a
    // proper reply in their thread (promises 8 and 9), with the attachment's exact bytes.
    let thread = popdesk.run_ok(&["ticket", "show", &printer["number"].to_string(), "--json"]);
    let thread: serde_json::Value = serde_json::from_str(&thread.stdout).expect("ticket json");
    let replies = thread["replies"].as_array().expect("replies");
    assert_eq!(replies.len(), 1, "{thread:#}");
    assert_eq!(replies[0]["state"], "sent");
    let our_id = replies[0]["message_id"].as_str().expect("a Message-ID");
    let last_customer_id = thread["thread"]
        .as_array()
        .expect("entries")
        .iter()
        .rev()
        // The XSS probe's mail joined this ticket after the reply was sent (the merge).
        .find(|e| e["kind"] == "message" && e["subject"] != "XSS probe")
        .and_then(|e| e["message_id"].as_str())
        .expect("the customer's last message");
    let received = dovecot.messages("dana");
    assert_eq!(received.len(), 1, "exactly one copy reached the customer");
    let raw = &received[0];
    let parsed = mail::parse(raw).expect("the customer's client reads it");
    assert_eq!(
        parsed
            .from
            .as_ref()
            .map(|a| (a.address.as_str(), a.name.as_deref())),
        Some((SEND_ADDRESS, Some("Example Support")))
    );
    assert_eq!(
        parsed
            .to
            .iter()
            .map(|a| a.address.as_str())
            .collect::<Vec<_>>(),
        ["dana@customer.example"]
    );
    let subject = parsed.subject.clone().unwrap_or_default();
    assert_eq!(
        subject,
        format!("Re: Printer on fire [#{}]", printer["number"])
    );
    assert_eq!(parsed.message_id, our_id);
    assert_eq!(parsed.in_reply_to, [last_customer_id]);
    assert_eq!(
        parsed.references.last().map(String::as_str),
        Some(last_customer_id)
    );
    assert!(
        parsed
            .text_body
            .starts_with("Unplug the printer and keep the door closed."),
        "{:?}",
        parsed.text_body
    );
    assert_eq!(parsed.attachments.len(), 1);
    assert_eq!(
        parsed.attachments[0].name.as_deref(),
        Some("Checkliste Brandfall.pdf")
    );
    assert_eq!(parsed.attachments[0].data, attachment_bytes);
    let head = String::from_utf8_lossy(raw);
    let head = head.split("\r\n\r\n").next().unwrap_or_default();
    assert!(
        !head.to_ascii_lowercase().contains("\nauto-submitted:"),
        "a person's reply carries no Auto-Submitted: {head}"
    );

    // The browser merged the XSS probe into the printer ticket: it left the list, and its
    // mail is on the printer ticket's thread.
    assert!(
        tickets
            .as_array()
            .expect("a list")
            .iter()
            .all(|t| t["subject"] != "XSS probe"),
        "a merged ticket is not listed: {tickets:#}"
    );
    assert!(
        thread["thread"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["subject"] == "XSS probe"),
        "the probe's mail moved to the printer ticket: {thread:#}"
    );
    find("Fetched with OAuth2");
    let users = fresh.run_ok(&["user", "list", "--json"]);
    assert!(
        users.stdout.contains("setup-admin@example.org"),
        "the setup page made the first admin: {}",
        users.stdout
    );
}

// ---------------------------------------------------------------------------------------
// The mail

/// HTML mail as a customer's mail program writes it: multipart/mixed around
/// multipart/related (the HTML and its `cid:` image) with an alternative plain part,
/// and a text attachment.
/// The mailbox on a server that keeps deleted mail.
const NOTICE_MAILBOX: &str = "Kept mail";

/// The address replies come from.
const SEND_ADDRESS: &str = "support@example.com";

fn printer_on_fire() -> String {
    format!(
        "From: Dana Whitfield <dana@customer.example>\r\n\
To: Support <support@example.com>\r\n\
Subject: Printer on fire\r\n\
Date: Tue, 24 Nov 2026 09:00:00 +0100\r\n\
Message-ID: <printer-on-fire@customer.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"=_mixed\"\r\n\
\r\n\
--=_mixed\r\n\
Content-Type: multipart/related; boundary=\"=_related\"; type=\"multipart/alternative\"\r\n\
\r\n\
--=_related\r\n\
Content-Type: multipart/alternative; boundary=\"=_alt\"\r\n\
\r\n\
--=_alt\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello support,\r\n\
\r\n\
the printer on floor 3 is literally on fire. Status report attached.\r\n\
\r\n\
Dana\r\n\
--=_alt\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<html><body>\r\n\
<p>Hello support,</p>\r\n\
<p>the printer on floor 3 is <b>literally on fire</b>. Status report attached.</p>\r\n\
<table border=\"1\"><tr><th>Printer</th><th>Floor</th><th>State</th></tr>\r\n\
<tr><td>PRN-3</td><td>3</td><td>burning</td></tr></table>\r\n\
<p><img src=\"cid:flames@customer.example\" alt=\"flames\" width=\"8\" height=\"8\"></p>\r\n\
<p>Dana</p>\r\n\
</body></html>\r\n\
--=_alt--\r\n\
--=_related\r\n\
Content-Type: image/png; name=\"flames.png\"\r\n\
Content-ID: <flames@customer.example>\r\n\
Content-Disposition: inline; filename=\"flames.png\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{FLAMES_PNG_BASE64}\r\n\
--=_related--\r\n\
--=_mixed\r\n\
Content-Type: text/plain; charset=utf-8; name=\"report.txt\"\r\n\
Content-Disposition: attachment; filename=\"report.txt\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{report}\r\n\
--=_mixed--\r\n",
        report = base64(REPORT_TXT.as_bytes()),
    )
}

/// Every way a mail body has been seen to try to run script, navigate, or phone home,
/// plus an inline SVG image and an HTML attachment that carry scripts of their own.
/// Each payload sets `window.__pwned` (and some call `alert`), so the browser side can
/// tell whether any ran; everything remote points at 127.0.0.2, so it can tell whether
/// anything was loaded.
fn xss_probe() -> String {
    "From: Mallory <mallory@attacker.example>\r\n\
To: support@example.com\r\n\
Subject: XSS probe\r\n\
Date: Tue, 24 Nov 2026 09:05:00 +0100\r\n\
Message-ID: <xss-probe@attacker.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"=_x\"\r\n\
\r\n\
--=_x\r\n\
Content-Type: multipart/related; boundary=\"=_r\"\r\n\
\r\n\
--=_r\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<html><head>\r\n\
<meta http-equiv=\"refresh\" content=\"0;url=http://127.0.0.2/refresh\">\r\n\
<base href=\"http://127.0.0.2/\">\r\n\
<link rel=\"stylesheet\" href=\"http://127.0.0.2/link.css\">\r\n\
<style>@import url(http://127.0.0.2/import.css); body { background: url(javascript:window.__pwned=1) }</style>\r\n\
</head><body>\r\n\
<p>XSS probe: nothing below may run.</p>\r\n\
<script>window.__pwned = 1; alert('script');</script>\r\n\
<img src=x onerror=\"window.__pwned = 1; alert('onerror')\">\r\n\
<a href=\"javascript:window.__pwned=1;alert('href')\">click</a>\r\n\
<svg onload=\"window.__pwned = 1; alert('svg')\"><circle r=\"4\"></circle></svg>\r\n\
<iframe srcdoc=\"&lt;script&gt;parent.__pwned = 1; alert('srcdoc')&lt;/script&gt;\"></iframe>\r\n\
<form action=\"http://127.0.0.2/steal\" method=\"post\"><input name=\"q\" value=\"secret\"><button>Send</button></form>\r\n\
<details open ontoggle=\"window.__pwned = 1; alert('toggle')\"><summary>s</summary>d</details>\r\n\
<div style=\"background:url(javascript:window.__pwned=1); width: 10px; height: 10px\">styled</div>\r\n\
<div style=\"background-image: url(http://127.0.0.2/bg.png); width: 10px; height: 10px\">bg</div>\r\n\
<img src=\"http://127.0.0.2/track.png\" alt=\"tracker\">\r\n\
<object data=\"http://127.0.0.2/x.swf\"></object><embed src=\"http://127.0.0.2/y.swf\">\r\n\
<math><mtext><table><mglyph><style><img src=x onerror=\"window.__pwned=1;alert('mxss')\"></style></mglyph></table></mtext></math>\r\n\
<img src=\"cid:evil-svg@attacker.example\" alt=\"svg image\">\r\n\
</body></html>\r\n\
--=_r\r\n\
Content-Type: image/svg+xml; name=\"evil.svg\"\r\n\
Content-ID: <evil-svg@attacker.example>\r\n\
Content-Disposition: inline; filename=\"evil.svg\"\r\n\
\r\n\
<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"window.__pwned=1;alert('svg file')\">\
<script>window.__pwned=1;alert('svg script')</script><circle r=\"4\"/></svg>\r\n\
--=_r--\r\n\
--=_x\r\n\
Content-Type: text/html; charset=utf-8; name=\"evil.html\"\r\n\
Content-Disposition: attachment; filename=\"evil.html\"\r\n\
\r\n\
<script>window.__pwned=1;alert('attachment')</script><p>evil attachment</p>\r\n\
--=_x--\r\n"
        .to_string()
}

/// The customer's plain-text follow-up: new text on top, the history quoted below.
fn reply_with_quoted_history() -> String {
    "From: Dana Whitfield <dana@customer.example>\r\n\
To: Support <support@example.com>\r\n\
Subject: Re: Printer on fire\r\n\
Date: Tue, 24 Nov 2026 09:30:00 +0100\r\n\
Message-ID: <printer-on-fire-2@customer.example>\r\n\
In-Reply-To: <printer-on-fire@customer.example>\r\n\
References: <printer-on-fire@customer.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Update: the fire is out, but the printer smells of toast.\r\n\
\r\n\
On Tue, 24 Nov 2026 at 09:00, Dana Whitfield wrote:\r\n\
> Hello support,\r\n\
> earlier text: the printer on floor 3 is literally on fire.\r\n\
> Status report attached.\r\n"
        .to_string()
}

/// An out-of-office answer from a colleague of the customer, about the ticket: it joins
/// the thread, marked as an auto-reply.
fn auto_reply_on_the_ticket() -> String {
    "From: Facilities <facilities@customer.example>\r\n\
To: Support <support@example.com>\r\n\
Subject: Automatic reply: Printer on fire\r\n\
Date: Tue, 24 Nov 2026 09:01:00 +0100\r\n\
Message-ID: <ooo-facilities@customer.example>\r\n\
In-Reply-To: <printer-on-fire@customer.example>\r\n\
References: <printer-on-fire@customer.example>\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
I am out of the office until Monday. For fires, call the front desk.\r\n"
        .to_string()
}

/// An auto-reply about no ticket at all: popdesk keeps it but opens no ticket, and the
/// admin finds it among the ignored messages.
fn out_of_office_about_nothing() -> String {
    "From: Away <away@elsewhere.example>\r\n\
To: support@example.com\r\n\
Subject: Out of office\r\n\
Date: Tue, 24 Nov 2026 09:10:00 +0100\r\n\
Message-ID: <ooo-away@elsewhere.example>\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
I am away until December and read no mail.\r\n"
        .to_string()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Node and the service

fn workspace() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    path.canonicalize().unwrap_or(path)
}

/// Fails (never skips) when the browser or the Node packages are missing: a suite that
/// quietly stops testing the UI is worse than a red one.
fn require_browser_tooling(e2e: &Path) {
    let fix = "run scripts/install-test-deps (as root) to install Chromium, Node and the \
               e2e packages";
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing: {fix}");
    assert!(
        e2e.join("node_modules/playwright-core").is_dir(),
        "{} is missing: {fix}",
        e2e.join("node_modules/playwright-core").display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        matches!(&node, Ok(out) if out.status.success()),
        "node does not run ({node:?}): {fix}"
    );
}

/// Node running the browser tests in its own process group, so that a timeout or a
/// panic here ends Chromium too.
struct NodeRun {
    child: Option<Child>,
    output: PathBuf,
    _dir: tempfile::TempDir,
}

impl NodeRun {
    fn start(e2e: &Path, artifacts: &Path, env: &[(&str, String)]) -> NodeRun {
        let dir = tempfile::tempdir().expect("temp dir for node's output");
        let output = dir.path().join("node.log");
        let log = fs::File::create(&output).expect("node log");
        let child = Command::new("node")
            .args(["--test-reporter=spec", "ui.test.mjs"])
            .current_dir(e2e)
            .env(
                "NODE_TIMEOUT_MS",
                (NODE_TIMEOUT.as_millis() - 10_000).to_string(),
            )
            .env("ARTIFACTS", artifacts)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start node");
        NodeRun {
            child: Some(child),
            output,
            _dir: dir,
        }
    }

    /// Waits for Node (killing it after `timeout`); returns (exit 0?, its output).
    fn finish(mut self, timeout: Duration) -> (bool, String) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait().expect("wait for node") {
                Some(status) => break Some(status),
                None if Instant::now() >= deadline => break None,
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        kill_group(&mut child);
        let output = fs::read_to_string(&self.output).unwrap_or_default();
        match status {
            Some(status) => (
                status.success(),
                format!("node exited with {status}\n{output}"),
            ),
            None => (
                false,
                format!("node was killed after {timeout:?}\n{output}"),
            ),
        }
    }
}

impl Drop for NodeRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

/// Ends Node and the browser it started. Playwright runs Chromium in a process group of
/// its own and kills it when Node gets SIGTERM, so Node's group is asked first; whatever
/// is left after a few seconds is killed.
fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let signal = |name: &str| {
        let _ = Command::new("kill")
            .args([name, "--", &group])
            .stderr(Stdio::null())
            .status();
    };
    if matches!(child.try_wait(), Ok(None)) {
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    signal("-KILL");
    let _ = child.kill();
    let _ = child.wait();
}

/// A free loopback address (closed again, so the binary can take it).
fn listen_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
}

/// Waits until `/healthz` answers 200 on `addr`.
fn wait_healthy(addr: SocketAddr, running: &Running) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if healthz(addr) == Some(200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("popdesk (pid {}) never answered on {addr}", running.pid());
}

fn healthz(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split(' ').nth(1)?.parse().ok()
}

/// SIGTERM, then wait for a clean exit.
fn stop(running: Running) -> common::Finished {
    let status = Command::new("kill")
        .args(["-TERM", &running.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
    running.wait(Duration::from_secs(30))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
