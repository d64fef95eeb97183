//! Notifications by mail to agents (issue 15) against real mail servers: a private
//! Postfix (submission with STARTTLS and SASL through the test Dovecot) delivering by
//! LMTP into the test Dovecot, where the support mailbox and the agents' mailboxes live.
//!
//! A new ticket and a customer's reply on an assigned ticket reach the agents who asked
//! for them, once each, from the ticket's mailbox, `Auto-Submitted: auto-generated`, with
//! a link under `public_url`; mail popdesk ignores (an auto-reply, a bounce, its own
//! notification coming back) notifies nobody; a preference turned off sends nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, Popdesk, Security, USER};
use sqlx::Connection as _;
use testkit::{Dovecot, Postfix};

const SUPPORT: &str = "support@example.com";
const CUSTOMER: &str = "customer@example.com";
const ANN: &str = "ann@example.com";
const BOB: &str = "bob@example.com";
const BOSS: &str = "boss@example.com";
const PUBLIC_URL: &str = "https://desk.example.com";

/// A support desk with sending set up through a private Postfix, and three people:
/// Ann and Bob (agents working the support mailbox) and Boss (an admin).
struct Desk {
    dovecot: Dovecot,
    postfix: Postfix,
    popdesk: Popdesk,
    runtime: tokio::runtime::Runtime,
    _data: tempfile::TempDir,
}

impl Desk {
    fn new() -> Desk {
        let dovecot = Dovecot::builder().lmtp(true).sasl_listener(true).start();
        dovecot.add_user(USER, PASSWORD);
        for user in ["customer", "ann", "bob", "boss"] {
            dovecot.add_user(user, &format!("{user}-pass"));
        }
        let postfix = Postfix::start(&dovecot);
        let data = tempfile::tempdir().expect("data folder");
        let popdesk = Popdesk::new(data.path().join("data"));
        let port = postfix.submission_addr().port().to_string();
        popdesk.add_mailbox(
            "support",
            Security::ImplicitTls { dovecot: &dovecot },
            &[
                "--address",
                SUPPORT,
                "--display-name",
                "Example Support",
                "--smtp-host",
                postfix.host(),
                "--smtp-port",
                &port,
                "--smtp-tls",
                "starttls",
            ],
        );
        let desk = Desk {
            dovecot,
            postfix,
            popdesk,
            runtime: tokio::runtime::Runtime::new().expect("runtime"),
            _data: data,
        };
        for (email, role) in [(ANN, "agent"), (BOB, "agent"), (BOSS, "admin")] {
            desk.run_ok(&["user", "add", email, "--role", role, "--password-env", "PW"]);
        }
        desk
    }

    fn run_ok(&self, args: &[&str]) -> common::Finished {
        let done = self
            .popdesk
            .spawn_with(
                args,
                &[
                    ("POPDESK_SEND_FIRST_RETRY_SECS", "1"),
                    ("POPDESK_PUBLIC_URL", PUBLIC_URL),
                    ("PW", "a long enough password"),
                ],
            )
            .wait(common::RUN_TIMEOUT);
        assert!(
            done.status.success(),
            "popdesk {args:?}: {}\n{}\n{}",
            done.status,
            done.stdout,
            done.stderr
        );
        done
    }

    fn fetch(&self) {
        self.run_ok(&["mailbox", "fetch", "support"]);
    }

    /// One pass of the outbox; returns how many went out.
    fn send(&self) -> u64 {
        let done = self.run_ok(&["outbox", "send"]);
        let sent = done
            .stdout
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok());
        sent.unwrap_or_else(|| panic!("\"N sent\": {}", done.stdout))
    }

    fn tickets(&self) -> usize {
        let done = self.run_ok(&["ticket", "list", "--json"]);
        let list: serde_json::Value = serde_json::from_str(&done.stdout).expect("json");
        list.as_array().expect("a list").len()
    }

    /// The store of the desk, opened beside the command line.
    fn store<T>(&self, work: impl AsyncFnOnce(&store::Store) -> T) -> T {
        self.runtime.block_on(async {
            let store = store::Store::open(self.popdesk.data(), None)
                .await
                .expect("store");
            work(&store).await
        })
    }

    fn user_id(&self, email: &str) -> i64 {
        self.store(async |store| {
            store
                .user_by_email(email)
                .await
                .expect("read")
                .expect("the user")
                .id
        })
    }

    fn set_preferences(&self, email: &str, preferences: store::Preferences) {
        let id = self.user_id(email);
        self.store(async |store| {
            store
                .set_preferences(id, &preferences, 0)
                .await
                .expect("preferences");
        });
    }

    /// Assigns a ticket behind the store's back: `ticket assign` is another part of
    /// issue 15, and assignment by someone else notifies through its own hook.
    fn assign(&self, number: i64, email: &str) {
        let id = self.user_id(email);
        let url = format!(
            "sqlite://{}",
            self.popdesk.data().join("popdesk.db").display()
        );
        self.runtime.block_on(async {
            let mut db = sqlx::SqliteConnection::connect(&url).await.expect("db");
            sqlx::query("UPDATE tickets SET assignee_id = ? WHERE number = ?")
                .bind(id)
                .bind(number)
                .execute(&mut db)
                .await
                .expect("assign");
        });
    }

    /// Waits until `user`'s mailbox holds `count` messages and returns them all.
    fn wait_for_mail(&self, user: &str, count: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let messages = self.dovecot.messages(user);
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{user} has {} of {count} messages after 60 s\n--- postfix log ---\n{}",
                messages.len(),
                self.postfix.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn customer_mail(message_id: &str, subject: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Carla Customer <{CUSTOMER}>\r\nTo: Example Support <{SUPPORT}>\r\n\
         Subject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n{extra}\r\n{body}\r\n"
    )
    .into_bytes()
}

/// The value of a header (first occurrence, unfolded), from raw bytes.
fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((field, rest)) = line.split_once(':')
            && field.eq_ignore_ascii_case(name)
        {
            value = Some(rest.trim().to_string());
        }
    }
    value
}

/// The decoded text of a received message, by popdesk's own parser.
fn text_of(raw: &[u8]) -> String {
    mail::parse(raw).expect("parse").text_body
}

#[test]
fn agents_hear_of_new_tickets_and_customer_replies_once_and_never_of_ignored_mail() {
    let desk = Desk::new();
    // Ann works the support mailbox and wants every new ticket; Bob works it too but
    // wants nothing; Boss, an admin, keeps the defaults (not every new ticket).
    for agent in [ANN, BOB] {
        let id = desk.user_id(agent);
        let support = desk.store(async |store| store.mailboxes().await.expect("read")[0].id);
        desk.store(async |store| {
            store
                .set_user_mailboxes(id, &[support])
                .await
                .expect("grant")
        });
    }
    desk.set_preferences(
        ANN,
        store::Preferences {
            notify_new_ticket: true,
            ..store::Preferences::default()
        },
    );
    desk.set_preferences(
        BOB,
        store::Preferences {
            notify_new_ticket: false,
            notify_customer_reply: false,
            notify_assigned: false,
            ..store::Preferences::default()
        },
    );

    // A customer's question, and mail popdesk ignores: an out-of-office answer about
    // nothing and a bounce about nothing.
    desk.dovecot.deliver(
        USER,
        &customer_mail("q1@example.com", "Printer on fire", "", "It is on fire."),
    );
    desk.dovecot.deliver(
        USER,
        b"From: Away <away@example.org>\r\nTo: support@example.com\r\nSubject: Out of office\r\n\
          Auto-Submitted: auto-replied\r\nMessage-ID: <away-1@example.org>\r\n\r\nI am away.\r\n",
    );
    desk.dovecot.deliver(
        USER,
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: support@example.com\r\n\
          Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx.example.org>\r\n\
          Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
          Content-Type: multipart/report; report-type=delivery-status; boundary=\"D\"\r\n\r\n\
          --D\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n\
          --D\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n\
          Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\
          --D\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <unknown@nowhere.example>\r\n--D--\r\n",
    );
    desk.fetch();
    assert_eq!(desk.tickets(), 1, "only the customer's mail is a ticket");
    assert_eq!(desk.send(), 1, "one notification: Ann's, of the new ticket");
    let ann = desk.wait_for_mail("ann", 1);
    let new_ticket = &ann[0];
    assert_eq!(
        header(new_ticket, "Subject").as_deref(),
        Some("[#1] New ticket: Printer on fire")
    );
    assert_eq!(
        header(new_ticket, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        header(new_ticket, "From").as_deref(),
        Some("Example Support <support@example.com>"),
        "from the ticket's mailbox"
    );
    assert_eq!(header(new_ticket, "To").as_deref(), Some(ANN));
    let text = text_of(new_ticket);
    assert!(text.contains("It is on fire."), "{text}");
    assert!(
        text.contains(&format!("{PUBLIC_URL}/tickets/1")),
        "a link to the ticket: {text}"
    );
    assert_eq!(desk.send(), 0, "once: nothing more on the next pass");

    // The customer answers the ticket, now Ann's: she hears of it once.
    desk.assign(1, ANN);
    desk.dovecot.deliver(
        USER,
        &customer_mail(
            "q2@example.com",
            "Re: Printer on fire [#1]",
            "In-Reply-To: <q1@example.com>\r\n",
            "Now it smokes.",
        ),
    );
    desk.fetch();
    assert_eq!(desk.tickets(), 1);
    assert_eq!(desk.send(), 1, "the customer's reply, to the assignee");
    let ann = desk.wait_for_mail("ann", 2);
    let reply = ann
        .iter()
        .find(|m| header(m, "Subject").is_some_and(|s| s.contains("Customer replied")))
        .expect("the reply notification");
    assert_eq!(
        header(reply, "Subject").as_deref(),
        Some("[#1] Customer replied: Printer on fire")
    );
    assert_eq!(
        header(reply, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(text_of(reply).contains("Now it smokes."));

    // Ann turns that notification off: the next reply tells nobody.
    desk.set_preferences(
        ANN,
        store::Preferences {
            notify_new_ticket: true,
            notify_customer_reply: false,
            ..store::Preferences::default()
        },
    );
    desk.dovecot.deliver(
        USER,
        &customer_mail(
            "q3@example.com",
            "Re: Printer on fire [#1]",
            "In-Reply-To: <q2@example.com>\r\n",
            "And now it is quiet.",
        ),
    );
    desk.fetch();
    assert_eq!(desk.send(), 0, "the preference is off");

    // A notification coming back to the support mailbox is our own mail: no ticket, no
    // notification of a "new ticket".
    desk.dovecot.deliver(USER, new_ticket);
    desk.fetch();
    assert_eq!(desk.tickets(), 1, "our notification is never a ticket");
    assert_eq!(desk.send(), 0);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(desk.dovecot.messages("ann").len(), 2, "once each");
    for quiet in ["bob", "boss"] {
        assert!(
            desk.dovecot.messages(quiet).is_empty(),
            "{quiet} asked for none of these"
        );
    }
}
