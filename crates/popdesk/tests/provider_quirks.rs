//! Providers that bend POP3, seen through the real `popdesk` binary: a server that does
//! not delete on DELE (promise 2: nothing twice, thanks to the UIDL ledger and the
//! per-mailbox content hash), and a server without UIDL — refused with one clear
//! sentence under the keep policy, deduplicated by content under the delete policy
//! (promises 1, 2 and 6: nothing lost, nothing twice, and the run ends).
//!
//! The quirks come from testkit's FaultProxy (a hand-written fake, for what Dovecot
//! cannot be made to do) in front of a real Dovecot.

mod common;

use std::time::Duration;

use common::{
    Pop3Log, Popdesk, Rng, Security, SourceMail, USER, assert_nothing_lost_nothing_twice,
    assert_stored_exactly_once, dovecot_with, inspect, support_mailbox,
};
use testkit::{Fault, FaultProxy};

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
