//! Answering the customer against real mail servers: a private Postfix (submission with
//! STARTTLS and SASL through the test Dovecot) delivering by LMTP into the test Dovecot,
//! where both the support mailbox and the customers' mailboxes live.
//!
//! - The loop (promises 8 and 9): customer mail → POP3 → ticket → reply with an attachment
//!   → Postfix → the customer's mailbox, with the headers a mail client threads by; the
//!   customer's answer finds the same ticket and reopens it; our own reply coming back
//!   is never a ticket.
//! - Faults (promise 8): Postfix stopped, a 450, a 550 and "send again", and SIGKILL of
//!   `popdesk serve` while it sends 200 replies: every reply arrives, a duplicate only as
//!   the identical message.
//! - Bad input: nothing is queued.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{PASSWORD, Popdesk, Rng, Security, USER};
use testkit::{Dovecot, Postfix};

const SUPPORT: &str = "support@example.com";
const CUSTOMER: &str = "customer@example.com";
const COLLEAGUE: &str = "colleague@example.com";

/// A support desk with sending set up through a private Postfix.
struct Desk {
    dovecot: Dovecot,
    postfix: Postfix,
    popdesk: Popdesk,
    _data: tempfile::TempDir,
}

impl Desk {
    fn new(extra: &[&str]) -> Desk {
        let dovecot = Dovecot::builder().lmtp(true).sasl_listener(true).start();
        dovecot.add_user(USER, PASSWORD);
        dovecot.add_user("customer", "customer-pass");
        dovecot.add_user("colleague", "colleague-pass");
        let postfix = Postfix::start(&dovecot);
        let data = tempfile::tempdir().expect("data folder");
        let popdesk = Popdesk::new(data.path().join("data"));
        let port = postfix.submission_addr().port().to_string();
        let mut args = vec![
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
        ];
        args.extend_from_slice(extra);
        popdesk.add_mailbox(
            "support",
            Security::ImplicitTls { dovecot: &dovecot },
            &args,
        );
        Desk {
            dovecot,
            postfix,
            popdesk,
            _data: data,
        }
    }

    /// Runs `popdesk ARGS` with quick sending retries.
    fn run(&self, args: &[&str]) -> common::Finished {
        self.popdesk
            .spawn_with(args, &[("POPDESK_SEND_FIRST_RETRY_SECS", "1")])
            .wait(common::RUN_TIMEOUT)
    }

    fn run_ok(&self, args: &[&str]) -> common::Finished {
        let done = self.run(args);
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

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let done = self.run_ok(args);
        serde_json::from_str(&done.stdout)
            .unwrap_or_else(|e| panic!("popdesk {args:?} --json: {e}\n{}", done.stdout))
    }

    fn ticket(&self, number: i64) -> serde_json::Value {
        self.json(&["ticket", "show", &number.to_string(), "--json"])
    }

    fn outbox(&self) -> Vec<serde_json::Value> {
        let list = self.json(&["outbox", "list", "--json", "--limit", "10000"]);
        list.as_array().expect("a list").clone()
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

/// The message without the trace fields the servers add on the way.
fn as_sent(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut skipping = false;
    for line in text.split_inclusive("\r\n") {
        if line.starts_with([' ', '\t']) && skipping {
            continue;
        }
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        skipping = matches!(
            name.as_str(),
            "received" | "return-path" | "delivered-to" | "x-original-to"
        );
        if !skipping {
            out.push_str(line);
        }
    }
    out
}

/// Promises 8 and 9 end to end: what the customer receives is a proper reply in their
/// thread, their answer lands on the same ticket and reopens it, and our own reply
/// coming back through POP3 is no ticket and no second copy.
#[test]
fn a_reply_reaches_the_customer_and_their_answer_comes_back_to_the_same_ticket() {
    let desk = Desk::new(&[]);
    desk.dovecot.deliver(
        USER,
        &customer_mail(
            "first-1@example.com",
            "Printer on fire",
            &format!("Cc: Colin Colleague <{COLLEAGUE}>, {SUPPORT}\r\n"),
            "It is on fire. Please help.",
        ),
    );
    desk.fetch();
    let ticket = desk.ticket(1);
    assert_eq!(ticket["subject"], "Printer on fire");

    let attachment_dir = tempfile::tempdir().expect("temp dir");
    let attachment = attachment_dir.path().join("Anleitung März.pdf");
    let mut rng = Rng::from_env("replies-loop");
    let bytes: Vec<u8> = (0..150_000).map(|_| rng.next_u64() as u8).collect();
    std::fs::write(&attachment, &bytes).expect("write the attachment");
    let done = desk.run(&[
        "ticket",
        "reply",
        "1",
        "--body",
        "Unplug it first.\nThen read the attached guide.",
        "--reply-all",
        "--attach",
        attachment.to_str().expect("utf-8 path"),
    ]);
    assert!(done.status.success(), "{}\n{}", done.stdout, done.stderr);
    assert!(done.stdout.contains("sent"), "{}", done.stdout);

    let outbox = desk.outbox();
    assert_eq!(outbox.len(), 1);
    let our_id = outbox[0]["message_id"]
        .as_str()
        .expect("a Message-ID")
        .to_string();
    assert_eq!(outbox[0]["state"], "sent");

    let received = desk.wait_for_mail("customer", 1);
    assert_eq!(received.len(), 1, "exactly one copy");
    let raw = &received[0];
    assert_eq!(
        header(raw, "From").as_deref(),
        Some("Example Support <support@example.com>")
    );
    assert_eq!(
        header(raw, "To").as_deref(),
        Some("Carla Customer <customer@example.com>")
    );
    assert_eq!(
        header(raw, "Cc").as_deref(),
        Some(COLLEAGUE),
        "reply to all, minus us"
    );
    assert_eq!(
        header(raw, "Subject").as_deref(),
        Some("Re: Printer on fire [#1]")
    );
    assert_eq!(
        header(raw, "In-Reply-To").as_deref(),
        Some("<first-1@example.com>")
    );
    assert_eq!(
        header(raw, "References").as_deref(),
        Some("<first-1@example.com>")
    );
    assert_eq!(
        header(raw, "Message-ID").as_deref(),
        Some(format!("<{our_id}>").as_str())
    );
    assert!(header(raw, "Date").is_some());
    assert_eq!(header(raw, "Auto-Submitted"), None, "a person wrote it");
    let parsed = mail::parse(raw).expect("the customer's client can read it");
    assert!(
        parsed
            .text_body
            .starts_with("Unplug it first.\nThen read the attached guide."),
        "{:?}",
        parsed.text_body
    );
    assert!(parsed.text_body.contains("> It is on fire. Please help."));
    assert_eq!(parsed.attachments.len(), 1);
    assert_eq!(
        parsed.attachments[0].name.as_deref(),
        Some("Anleitung März.pdf")
    );
    assert_eq!(
        parsed.attachments[0].data, bytes,
        "the attachment's exact bytes"
    );
    // The colleague in Cc got the same message.
    let colleague = desk.wait_for_mail("colleague", 1);
    assert_eq!(as_sent(&colleague[0]), as_sent(raw));

    let ticket = desk.ticket(1);
    assert_eq!(
        ticket["status"], "pending",
        "a reply sets Pending by default"
    );
    assert_eq!(ticket["replies"][0]["state"], "sent");

    // The customer answers: their client dropped the token from the subject, but keeps
    // In-Reply-To.
    desk.dovecot.deliver(
        USER,
        &customer_mail(
            "answer-2@example.com",
            "Re: Printer on fire (still smoking)",
            &format!("In-Reply-To: <{our_id}>\r\nReferences: <first-1@example.com> <{our_id}>\r\n"),
            "Unplugged. Still smoking.",
        ),
    );
    desk.fetch();
    let tickets = desk.json(&["ticket", "list", "--json"]);
    assert_eq!(tickets.as_array().map(Vec::len), Some(1), "no new ticket");
    let ticket = desk.ticket(1);
    assert_eq!(ticket["thread"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        ticket["status"], "open",
        "the customer's answer reopened it"
    );

    // Our own reply comes back through POP3 (Gmail serves sent mail; a Bcc to
    // ourselves): recognised, no ticket, no second copy in the thread.
    desk.dovecot.deliver(USER, raw);
    desk.fetch();
    let tickets = desk.json(&["ticket", "list", "--json"]);
    assert_eq!(tickets.as_array().map(Vec::len), Some(1));
    assert_eq!(desk.ticket(1)["thread"].as_array().map(Vec::len), Some(2));
    let ignored = desk.json(&["message", "list", "--status", "ignored", "--json"]);
    let reasons: Vec<&str> = ignored
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m["reason"].as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("popdesk sent this message itself")),
        "{reasons:?}"
    );
}

/// Promise 8 against a server that is away or says no: the reply waits and goes out
/// once when it can; a permanent refusal fails with the server's words, and "send
/// again" sends the same message after the fix.
#[test]
fn replies_survive_a_stopped_server_a_450_and_a_550() {
    let desk = Desk::new(&[]);
    desk.dovecot.deliver(
        USER,
        &customer_mail("q-1@example.com", "Question", "", "How do I reset it?"),
    );
    desk.fetch();

    // Postfix is away: exit 75, queued, sent once when it is back.
    desk.postfix.stop();
    let done = desk.run(&["ticket", "reply", "1", "--body", "Hold the button."]);
    assert_eq!(
        done.status.code(),
        Some(75),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    assert!(done.stderr.contains("not sent yet"), "{}", done.stderr);
    assert_eq!(desk.outbox()[0]["state"], "queued");
    desk.postfix.start_again();
    std::thread::sleep(Duration::from_millis(1_100));
    let sent = desk.run_ok(&["outbox", "send"]);
    assert!(sent.stdout.starts_with("1 sent"), "{}", sent.stdout);
    assert_eq!(desk.wait_for_mail("customer", 1).len(), 1);

    // A 450 for the recipient: retried, and sent once the rule is lifted.
    desk.postfix
        .set_recipient_rule(CUSTOMER, "450 4.7.1 Try again later");
    let done = desk.run(&["ticket", "reply", "1", "--body", "Second answer."]);
    assert_eq!(
        done.status.code(),
        Some(75),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    assert!(
        done.stderr.contains("450"),
        "the server's words: {}",
        done.stderr
    );
    desk.postfix.clear_recipient_rules();
    std::thread::sleep(Duration::from_millis(1_100));
    desk.run_ok(&["outbox", "send"]);
    assert_eq!(desk.wait_for_mail("customer", 2).len(), 2);

    // A 550: failed at once with the server's words on the ticket; "send again" after
    // the fix delivers the same message.
    desk.postfix
        .set_recipient_rule(CUSTOMER, "550 5.1.1 Mailbox unavailable");
    let done = desk.run(&["ticket", "reply", "1", "--body", "Third answer."]);
    assert_eq!(
        done.status.code(),
        Some(1),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    assert!(done.stderr.contains("550"), "{}", done.stderr);
    let ticket = desk.ticket(1);
    let failed = ticket["replies"]
        .as_array()
        .expect("replies")
        .iter()
        .find(|r| r["state"] == "failed")
        .expect("the failed reply shows on the ticket")
        .clone();
    assert!(
        failed["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("550 5.1.1")),
        "{failed}"
    );
    desk.postfix.clear_recipient_rules();
    let id = failed["id"].as_i64().expect("an id").to_string();
    let again = desk.run_ok(&["outbox", "retry", &id]);
    assert!(again.stdout.contains("sent"), "{}", again.stdout);
    let received = desk.wait_for_mail("customer", 3);
    assert_eq!(received.len(), 3, "each reply exactly once");
    let ids: Vec<String> = received
        .iter()
        .filter_map(|m| header(m, "Message-ID"))
        .collect();
    assert!(ids.contains(&format!("<{}>", failed["message_id"].as_str().expect("id"))));
    assert!(desk.outbox().iter().all(|m| m["state"] == "sent"));
}

/// Bad input gets one sentence and queues nothing.
#[test]
fn bad_replies_are_refused_and_nothing_is_queued() {
    let desk = Desk::new(&[]);
    desk.dovecot.deliver(
        USER,
        &customer_mail("b-1@example.com", "Question", "", "Hello?"),
    );
    desk.dovecot.deliver(
        USER,
        b"From: Not An Address <not-an-address>\r\nTo: support@example.com\r\nSubject: Odd\r\n\
          Message-ID: <b-2@example.com>\r\n\r\nHi\r\n",
    );
    desk.fetch();
    let big = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(big.path(), vec![7u8; 26 * 1024 * 1024]).expect("write");
    let big_path = big.path().to_str().expect("utf-8").to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["ticket", "reply", "99", "--body", "x"],
            "no ticket #99",
        ),
        (
            vec!["ticket", "reply", "1", "--body", "x", "--attach", &big_path],
            "more than the limit",
        ),
        (
            vec![
                "ticket",
                "reply",
                "1",
                "--body",
                "x",
                "--cc",
                "not an address",
            ],
            "not an email address",
        ),
        (
            vec!["ticket", "reply", "1", "--body", "  "],
            "the reply is empty",
        ),
        (
            vec!["ticket", "reply", "2", "--body", "x"],
            "not an address",
        ),
    ];
    for (args, expected) in &cases {
        let done = desk.run(args);
        assert_eq!(done.status.code(), Some(1), "{args:?}: {}", done.stderr);
        assert!(
            done.stderr.contains(expected),
            "{args:?}: expected {expected:?} in {}",
            done.stderr
        );
    }
    desk.run_ok(&["ticket", "reply", "1", "--body", "fine", "--no-send"]);
    // Closed tickets are not answered.
    let done = desk.run(&[
        "ticket",
        "reply",
        "1",
        "--body",
        "x",
        "--status",
        "closed",
        "--no-send",
    ]);
    assert!(done.status.success(), "{}", done.stderr);
    let done = desk.run(&["ticket", "reply", "1", "--body", "again"]);
    assert_eq!(done.status.code(), Some(1));
    assert!(done.stderr.contains("is closed"), "{}", done.stderr);
    assert_eq!(
        desk.outbox().len(),
        2,
        "only the two good replies were queued"
    );
}

/// Promise 8 under SIGKILL: `popdesk serve` is killed at random moments while it sends
/// 200 replies; every reply arrives, and any duplicate is the identical message (same
/// Message-ID, same bytes), which mail clients fold into one.
#[test]
fn killing_serve_while_it_sends_loses_no_reply_and_duplicates_only_identically() {
    let desk = Desk::new(&[]);
    desk.dovecot.deliver(
        USER,
        &customer_mail(
            "k-1@example.com",
            "Many answers",
            "",
            "Please answer often.",
        ),
    );
    desk.fetch();
    const REPLIES: usize = 200;
    for n in 0..REPLIES {
        desk.run_ok(&[
            "ticket",
            "reply",
            "1",
            "--body",
            &format!("Answer number {n}."),
            "--no-send",
        ]);
    }
    let mut rng = Rng::from_env("replies-sigkill");
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let serving = desk.popdesk.spawn_with(
            &["serve", "--listen", &listen],
            &[
                ("POPDESK_SEND_FIRST_RETRY_SECS", "1"),
                ("POPDESK_SEND_CLAIM_SECS", "2"),
            ],
        );
        std::thread::sleep(Duration::from_millis(rng.range(200, 1500)));
        serving.kill();
        kills += 1;
        let waiting = desk
            .outbox()
            .iter()
            .filter(|m| m["state"] != "sent")
            .count();
        if waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} replies still unsent after {kills} kills"
        );
        // Claims of a killed sender run out before another may take the messages.
        std::thread::sleep(Duration::from_millis(2_100));
    }
    let outbox = desk.outbox();
    assert_eq!(outbox.len(), REPLIES);
    let received = desk.wait_for_mail("customer", REPLIES);
    // Postfix may still be delivering a duplicate accepted just before the last kill.
    std::thread::sleep(Duration::from_secs(2));
    let received = {
        let again = desk.dovecot.messages("customer");
        if again.len() > received.len() {
            again
        } else {
            received
        }
    };
    let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for raw in &received {
        let id = header(raw, "Message-ID").expect("every reply has a Message-ID");
        by_id.entry(id).or_default().push(as_sent(raw));
    }
    for message in &outbox {
        let id = format!("<{}>", message["message_id"].as_str().expect("id"));
        assert!(by_id.contains_key(&id), "reply {id} never arrived");
    }
    let duplicates = received.len() - by_id.len();
    for (id, copies) in &by_id {
        assert!(
            copies.iter().all(|c| c == &copies[0]),
            "the copies of {id} differ"
        );
    }
    assert_eq!(by_id.len(), REPLIES, "only our replies arrived");
    println!(
        "SIGKILL while sending: {kills} kills, {REPLIES} replies, {} messages delivered, {duplicates} identical duplicates",
        received.len()
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// Promise 10 through a real server: a mailbox that acknowledges sends one
/// "we got your message" per new ticket, marked `Auto-Submitted: auto-replied`, and none
/// to an out-of-office reply, a no-reply sender or a second ticket of the same sender
/// within the period.
#[test]
fn an_acknowledgement_goes_out_once_per_sender_and_never_to_automatic_mail() {
    let desk = Desk::new(&["--acknowledge"]);
    desk.dovecot.add_user("noreply", "noreply-pass");
    desk.dovecot.add_user("away", "away-pass");
    desk.dovecot.deliver(
        USER,
        &customer_mail("ack-1@example.com", "First question", "", "Hello?"),
    );
    desk.dovecot.deliver(
        USER,
        &customer_mail("ack-2@example.com", "Second question", "", "Hello again?"),
    );
    desk.dovecot.deliver(
        USER,
        b"From: Away <away@example.com>\r\nTo: support@example.com\r\nSubject: Out of office\r\n\
          Auto-Submitted: auto-replied\r\nMessage-ID: <ack-3@example.com>\r\n\r\nI am away.\r\n",
    );
    desk.dovecot.deliver(
        USER,
        b"From: Shop <noreply@example.com>\r\nTo: support@example.com\r\nSubject: Your order\r\n\
          Message-ID: <ack-4@example.com>\r\n\r\nThanks for your order.\r\n",
    );
    desk.fetch();
    let sent = desk.run_ok(&["outbox", "send"]);
    assert!(sent.stdout.starts_with("1 sent"), "{}", sent.stdout);
    let received = desk.wait_for_mail("customer", 1);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(desk.dovecot.messages("customer").len(), 1, "one per sender");
    let ack = &received[0];
    assert_eq!(
        header(ack, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        header(ack, "Subject").as_deref(),
        Some("Re: First question [#1]")
    );
    assert_eq!(
        header(ack, "In-Reply-To").as_deref(),
        Some("<ack-1@example.com>")
    );
    assert!(String::from_utf8_lossy(ack).contains("[#1]"));
    assert!(
        desk.dovecot.messages("away").is_empty(),
        "never to an auto-reply"
    );
    assert!(
        desk.dovecot.messages("noreply").is_empty(),
        "never to no-reply"
    );
    // Nothing more goes out on the next pass, and the acknowledgement is no ticket when
    // it comes back.
    let again = desk.run_ok(&["outbox", "send"]);
    assert!(again.stdout.starts_with("0 sent"), "{}", again.stdout);
    desk.dovecot.deliver(USER, ack);
    desk.fetch();
    let tickets = desk.json(&["ticket", "list", "--json"]);
    assert_eq!(tickets.as_array().map(Vec::len), Some(3), "{tickets:#}");
}
