//! Providers that bend POP3, seen through the real `popdesk` binary: a server that does
//! not delete on DELE (promise 2: nothing twice, thanks to the UIDL ledger and the
//! per-mailbox content hash), and a server without UIDL — refused with one clear
//! sentence under the keep policy, deduplicated by content under the delete policy
//! (promises 1, 2 and 6: nothing lost, nothing twice, and the run ends).
//!
//! The quirks come from testkit's FaultProxy (a hand-written fake, for what Dovecot
//! cannot be made to do) in front of a real Dovecot, and from testkit's FaultyPop3 (a
//! hand-written fake server) for what `popdesk mailbox show` says the provider does
//! with deleted mail (issue 19).

mod common;

use std::time::Duration;

use common::{
    PASSWORD, Pop3Log, Popdesk, Rng, Security, SourceMail, USER, assert_nothing_lost_nothing_twice,
    assert_stored_exactly_once, dovecot_with, inspect, support_mailbox,
};
use testkit::{Fault, FaultProxy, FaultyPop3, MessageFault, ProviderBehaviour};

const MAILBOX: &str = "support";
/// More messages than a batch, so every run has several sessions.
const MESSAGES: usize = 30;
const BATCH: &str = "10";
/// A correct run of 30 messages takes well under a second; one that does not end within
/// this has lost track of what it already did (promise 6: nothing hangs).
const RUN_LIMIT: Duration = Duration::from_secs(20);

fn mailbox(test: &str) -> Vec<SourceMail> {
    let mut rng = Rng::from_env(test);
    support_mailbox(&mut rng, MESSAGES, test)
}

#[test]
fn a_server_that_keeps_mail_after_dele_gets_each_message_stored_once() {
    let source = mailbox("ignore-dele");
    let dovecot = dovecot_with(&source);
    let proxy = FaultProxy::start(dovecot.pop3_addr());
    proxy.set_fault(Fault::IgnoreDele);
    let data = tempfile::tempdir().expect("temp dir");
    let popdesk = Popdesk::new(data.path().join("data"));
    popdesk.add_mailbox(
        MAILBOX,
        Security::Plaintext { addr: proxy.addr() },
        &["--batch", BATCH],
    );
    let log = Pop3Log::from_now(&dovecot);

    let first = popdesk.run_ok(&["mailbox", "fetch", MAILBOX]);
    assert_eq!(
        dovecot.message_count(USER),
        MESSAGES,
        "the provider keeps everything"
    );
    let second = popdesk.run_ok(&["mailbox", "fetch", MAILBOX]);
    assert!(
        second.stdout.contains(" 0 downloaded")
            && second.stdout.contains(&format!("{MESSAGES} already known")),
        "the second run says it knew every message: {second:?}"
    );
    let runs = popdesk.runs(MAILBOX);
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_eq!(runs[0].downloaded, MESSAGES as u64, "{first:?}");
    assert_eq!(runs[1].downloaded, 0, "{:?}", runs[1]);
    assert_eq!(runs[1].already_known, MESSAGES as u64, "{:?}", runs[1]);
    // The ledger, not luck: the second run retrieved nothing at all.
    let retrieved: u32 = log.sessions(&dovecot).iter().map(|s| s.retr).sum();
    assert_eq!(retrieved, MESSAGES as u32, "each message retrieved once");
    let after = inspect(popdesk.data(), MAILBOX);
    assert_stored_exactly_once(&after, &source, &dovecot, MESSAGES, "after two runs");

    // The same mail shown again under new UIDLs (a provider that keeps copies, Gmail's
    // recent mode): downloaded, recognised by content, not stored again.
    dovecot.deliver_many(USER, source.iter().map(|m| &m.delivered));
    let third = popdesk.run_ok(&["mailbox", "fetch", MAILBOX]);
    let runs = popdesk.runs(MAILBOX);
    let last = runs.last().expect("third run");
    assert_eq!(last.duplicates, MESSAGES as u64, "{third:?}");
    assert_eq!(last.downloaded, 0, "{last:?}");
    assert_eq!(last.already_known, MESSAGES as u64, "{last:?}");
    let after = inspect(popdesk.data(), MAILBOX);
    assert_stored_exactly_once(
        &after,
        &source,
        &dovecot,
        2 * MESSAGES,
        "after copies came back under new UIDLs",
    );
}

#[test]
fn no_uidl_with_policy_keep_fails_permanently_with_one_clear_sentence() {
    let source = mailbox("no-uidl-keep");
    let dovecot = dovecot_with(&source);
    let proxy = FaultProxy::start(dovecot.pop3_addr());
    proxy.set_fault(Fault::HideUidl);
    let data = tempfile::tempdir().expect("temp dir");
    let popdesk = Popdesk::new(data.path().join("data"));
    popdesk.add_mailbox(
        MAILBOX,
        Security::Plaintext { addr: proxy.addr() },
        &["--batch", BATCH, "--policy", "keep"],
    );
    let log = Pop3Log::from_now(&dovecot);

    // Even with backtraces asked for, the admin gets one sentence.
    let done = popdesk
        .spawn_with(
            &["mailbox", "fetch", MAILBOX],
            &[("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")],
        )
        .wait(RUN_LIMIT);
    assert_eq!(done.status.code(), Some(1), "a permanent failure: {done:?}");
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {:?}", done.stderr);
    let line = lines[0];
    assert!(
        line.contains("UIDL") && line.contains("keep") && line.contains("delete policy"),
        "the sentence says what is wrong and what to do: {line}"
    );
    for noise in [
        "panicked",
        "backtrace",
        "Backtrace",
        "stack",
        "RUST_",
        "Error {",
    ] {
        assert!(!line.contains(noise), "no {noise:?} in: {line}");
    }

    let show = popdesk.show(MAILBOX);
    let attention = show["needs_attention"].as_str().unwrap_or_default();
    assert!(
        attention.contains("UIDL"),
        "the mailbox needs attention, saying why: {show:#}"
    );
    assert_eq!(show["last_run"]["outcome"], "permanent", "{show:#}");
    assert!(
        show["last_run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("UIDL")),
        "{show:#}"
    );
    // Nothing was retrieved (Gmail would hide it) and nothing deleted.
    let sessions = log.sessions(&dovecot);
    assert!(sessions.iter().all(|s| s.retr == 0), "{sessions:#?}");
    let after = inspect(popdesk.data(), MAILBOX);
    assert!(after.raw.is_empty());
    assert_eq!(dovecot.message_count(USER), MESSAGES);
}

#[test]
fn no_uidl_with_policy_delete_stores_mail_that_comes_back_once() {
    let source = mailbox("no-uidl-delete");
    let dovecot = dovecot_with(&source);
    // popdesk → [no UIDL] → [QUIT refused] → Dovecot: the mail comes back every session.
    let quit_err = FaultProxy::start(dovecot.pop3_addr());
    quit_err.set_fault(Fault::QuitErr);
    let no_uidl = FaultProxy::start(quit_err.addr());
    no_uidl.set_fault(Fault::HideUidl);
    let data = tempfile::tempdir().expect("temp dir");
    let popdesk = Popdesk::new(data.path().join("data"));
    popdesk.add_mailbox(
        MAILBOX,
        Security::Plaintext {
            addr: no_uidl.addr(),
        },
        &["--batch", BATCH],
    );

    // Without UIDL the fetcher cannot tell which listed message it already has before
    // downloading it; with every QUIT refused, the next session lists the same mail
    // again. The run must still end, lose nothing and store nothing twice.
    let refused = popdesk
        .spawn(&["mailbox", "fetch", MAILBOX])
        .wait(RUN_LIMIT);
    let code = refused.status.code();
    assert!(
        code == Some(0) || code == Some(75),
        "success or transient: {refused:?}"
    );
    assert_eq!(
        dovecot.message_count(USER),
        MESSAGES,
        "QUIT refused: rolled back"
    );
    let after = inspect(popdesk.data(), MAILBOX);
    assert_nothing_lost_nothing_twice(&after, &source, &dovecot, "after the refused run");

    // A clean run: whatever comes back is recognised by its content.
    quit_err.set_fault(Fault::None);
    let clean = popdesk
        .spawn(&["mailbox", "fetch", MAILBOX])
        .wait(RUN_LIMIT);
    assert!(clean.status.success(), "{clean:?}");
    let after = inspect(popdesk.data(), MAILBOX);
    assert_stored_exactly_once(&after, &source, &dovecot, 0, "after the clean run");
    let runs = popdesk.runs(MAILBOX);
    let last = runs.last().expect("clean run");
    assert_eq!(last.outcome, "success", "{last:?}");
    assert_eq!(
        last.downloaded + last.duplicates,
        last.listed,
        "every listed message was downloaded and either stored or recognised: {last:?}"
    );
    assert!(last.duplicates > 0, "mail came back: {last:?}");
}

/// popdesk, a mailbox on a FaultyPop3 that behaves like `behaviour`, `runs` fetches, and
/// what `mailbox show` and `mailbox show --json` say afterwards.
fn noticed(behaviour: ProviderBehaviour, runs: usize) -> (String, serde_json::Value) {
    let server = FaultyPop3::start(PASSWORD);
    for i in 0..4 {
        let mail = format!(
            "From: customer{i}@example.net\r\nSubject: question {i}\r\n\
             Message-ID: <q{i}@example.net>\r\n\r\nPlease help {i}.\r\n"
        );
        server.add(&format!("uid-{i}"), mail.as_bytes(), MessageFault::None);
    }
    server.set_behaviour(behaviour);
    let data = tempfile::tempdir().expect("temp dir");
    let popdesk = Popdesk::new(data.path().join("data"));
    popdesk.add_mailbox(
        MAILBOX,
        Security::Plaintext {
            addr: server.addr(),
        },
        &[],
    );
    for _ in 0..runs {
        // Information, not an error: every run succeeds.
        popdesk.run_ok(&["mailbox", "fetch", MAILBOX]);
    }
    let text = popdesk.run_ok(&["mailbox", "show", MAILBOX]).stdout;
    let json = popdesk.show(MAILBOX);
    assert!(json["needs_attention"].is_null(), "{json:#}");
    assert_eq!(json["last_run"]["outcome"], "success", "{json:#}");
    assert_eq!(json["provider"], "other", "{json:#}");
    assert!(!text.contains("ATTENTION"), "{text}");
    (text, json)
}

/// The one notice `--json` carries, checked against what the text output says.
fn the_notice<'a>(text: &str, json: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    let notices = json["provider_notices"].as_array().expect("a list");
    assert_eq!(notices.len(), 1, "{json:#}");
    let notice = &notices[0];
    assert_eq!(notice["kind"], kind, "{json:#}");
    let words = notice["text"].as_str().expect("words");
    assert!(
        text.lines()
            .any(|line| line.starts_with("notice:") && line.contains(words)),
        "the text output says it: {text}"
    );
    notice
}

#[test]
fn mailbox_show_says_when_the_server_keeps_mail_after_dele() {
    let (text, json) = noticed(ProviderBehaviour::KeepsDeleted, 2);
    let notice = the_notice(&text, &json, "kept_after_delete");
    assert_eq!(notice["messages"], 4, "{json:#}");
    assert!(
        text.contains("The server keeps messages after popdesk deletes them (4 kept). popdesk will not download them again."),
        "{text}"
    );
    assert_eq!(json["last_run"]["downloaded"], 0, "the ledger skipped them");
}

#[test]
fn mailbox_show_says_when_mail_comes_back_under_new_uidls() {
    let (text, json) = noticed(ProviderBehaviour::ReoffersUnderNewUidls, 2);
    let notice = the_notice(&text, &json, "reoffered_under_new_uidl");
    assert_eq!(notice["total"], 4, "{json:#}");
    assert!(
        text.contains("came back under new UIDLs (4 in all)"),
        "{text}"
    );
    assert_eq!(json["last_run"]["duplicates"], 4, "recognised by content");
}

#[test]
fn mailbox_show_says_when_the_server_has_no_uidl() {
    let (text, json) = noticed(ProviderBehaviour::NoUidl, 1);
    let notice = the_notice(&text, &json, "no_uidl");
    assert_eq!(notice["messages"], 4, "{json:#}");
    assert!(
        text.contains("The server gives its messages no UIDL (4 messages listed)."),
        "{text}"
    );
}

#[test]
fn mailbox_show_says_when_one_listing_has_duplicate_uidls() {
    let (text, json) = noticed(ProviderBehaviour::DuplicateUidls, 1);
    let notice = the_notice(&text, &json, "duplicate_uidls");
    assert_eq!(notice["messages"], 4, "{json:#}");
    assert!(
        text.contains("one UIDL to several messages (4 messages in the last listing)"),
        "{text}"
    );
    assert_eq!(
        json["last_run"]["downloaded"], 4,
        "no message skipped as known"
    );
}
