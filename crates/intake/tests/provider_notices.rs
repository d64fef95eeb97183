//! Noticing what the provider does with deleted mail (issue 19), while promises 1 and 2
//! keep holding: nothing lost, nothing stored twice.
//!
//! The four behaviours come from `testkit::FaultyPop3`, a hand-written fake server named
//! as such: no real server can be told to keep mail it confirmed deleting, offer it again
//! under new UIDLs, drop UIDL or give one UIDL to two messages. The real Dovecot shows
//! that normal deletion never raises a notice.

use std::sync::Arc;
use std::time::Duration;

use intake::{Clock as _, FetchReport, Fetcher, ManualClock, SessionOptions};
use pop3::Timeouts;
use secrecy::SecretString;
use store::{MailboxSettings, NoticeKind, ProviderNotice, RunOutcome, Store, TlsMode};
use tempfile::TempDir;
use testkit::{Dovecot, FaultyPop3, MessageFault, ProviderBehaviour};

const PASSWORD: &str = "s3cret-pass";
const NAME: &str = "support";
const START: i64 = 1_800_000_000_000;
const MINUTE_MS: i64 = 60_000;

struct Fixture {
    store: Store,
    clock: ManualClock,
    _data: TempDir,
}

impl Fixture {
    async fn new(settings: MailboxSettings) -> Fixture {
        let data = TempDir::new().expect("temp dir");
        let store = Store::open(data.path(), None).await.expect("open store");
        let clock = ManualClock::new(START);
        store
            .add_mailbox(
                &settings,
                &SecretString::from(PASSWORD.to_string()),
                clock.now_ms(),
            )
            .await
            .expect("add mailbox");
        Fixture {
            store,
            clock,
            _data: data,
        }
    }

    /// A run a minute after the last one.
    async fn fetch(&self) -> FetchReport {
        self.clock.set(self.clock.now_ms() + MINUTE_MS);
        let mailbox = self
            .store
            .mailbox(NAME)
            .await
            .expect("read mailbox")
            .expect("mailbox exists");
        let session = SessionOptions {
            timeouts: Timeouts {
                connect: Duration::from_secs(5),
                read: Duration::from_secs(20),
                session: None,
            },
            pipelining: true,
        };
        let report = Fetcher::new(self.store.clone(), Arc::new(self.clock.clone()))
            .with_session_options(session)
            .fetch(&mailbox)
            .await
            .expect("a run is recorded");
        // Information, never an error: every run here succeeds.
        assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
        report
    }

    async fn notices(&self) -> Vec<ProviderNotice> {
        let mailbox = self
            .store
            .mailbox(NAME)
            .await
            .expect("read")
            .expect("exists");
        assert!(
            mailbox.needs_attention.is_none(),
            "a notice never needs attention"
        );
        self.store
            .provider_notices(mailbox.id)
            .await
            .expect("read notices")
    }

    async fn stored(&self) -> usize {
        let mailbox = self
            .store
            .mailbox(NAME)
            .await
            .expect("read")
            .expect("exists");
        self.store
            .raw_messages(mailbox.id)
            .await
            .expect("raw messages")
            .len()
    }
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: customer{i}@example.net\r\nTo: support@example.com\r\nSubject: help {i}\r\n\
Message-ID: <m{i}@example.net>\r\n\r\nPlease help with case {i}.\r\n"
    )
    .into_bytes()
}

/// The fake server with `count` messages, and a mailbox on it (batches of 4, so a run
/// has several sessions).
async fn faulty(count: usize) -> (FaultyPop3, Fixture) {
    let server = FaultyPop3::start(PASSWORD);
    for i in 0..count {
        server.add(&format!("uid-{i}"), &message(i), MessageFault::None);
    }
    let settings = MailboxSettings {
        name: NAME.to_string(),
        host: server.addr().ip().to_string(),
        port: server.addr().port(),
        tls: TlsMode::None,
        allow_insecure_auth: true,
        username: server.user().to_string(),
        batch_messages: 4,
        ..MailboxSettings::default()
    };
    (server, Fixture::new(settings).await)
}

fn kinds(notices: &[ProviderNotice]) -> Vec<NoticeKind> {
    notices.iter().map(|n| n.kind).collect()
}

#[tokio::test]
async fn deleted_mail_listed_again_under_the_same_uidl_is_noticed_and_the_notice_goes_when_it_stops()
 {
    let (server, fixture) = faulty(10).await;
    server.set_behaviour(ProviderBehaviour::KeepsDeleted);
    let first = fixture.fetch().await;
    assert_eq!(first.counts.downloaded, 10);
    assert_eq!(server.uids().len(), 10, "the provider kept everything");
    let first_seen = fixture.clock.now_ms();
    let second = fixture.fetch().await;
    assert_eq!(second.counts.downloaded, 0, "the ledger skips them");
    assert_eq!(second.signs.kept_after_delete, 10);
    let notices = fixture.notices().await;
    assert_eq!(kinds(&notices), [NoticeKind::KeptAfterDelete]);
    // The first run already saw the first batches listed again by its later sessions.
    assert!(notices[0].first_seen_at <= first_seen, "{notices:?}");
    assert_eq!(notices[0].last_count, 10);
    assert_eq!(notices[0].last_seen_at, fixture.clock.now_ms());
    assert_eq!(fixture.stored().await, 10, "nothing stored twice");

    // The admin tells the provider to delete: the next run's listing is empty of them.
    server.set_behaviour(ProviderBehaviour::Plain);
    fixture.fetch().await; // deletes them again, for real this time
    assert!(server.uids().is_empty());
    fixture.fetch().await;
    assert!(fixture.notices().await.is_empty(), "gone once it stopped");
}

#[tokio::test]
async fn mail_offered_again_under_new_uidls_is_noticed_counted_and_stored_once() {
    let (server, fixture) = faulty(6).await;
    server.set_behaviour(ProviderBehaviour::ReoffersUnderNewUidls);
    // Each session's deletions come back under new UIDLs at the next login; every one is
    // downloaded once more and recognised by its content.
    let mut reoffered = 0;
    for _ in 0..3 {
        reoffered += fixture.fetch().await.signs.reoffered_under_new_uidl;
    }
    assert_eq!(reoffered, 6);
    assert!(server.uids().is_empty(), "the copies were deleted too");
    assert_eq!(fixture.stored().await, 6, "nothing stored twice");
    let notices = fixture.notices().await;
    assert_eq!(kinds(&notices), [NoticeKind::ReofferedUnderNewUidl]);
    assert_eq!(notices[0].total, 6);

    // A burst stays a day, long enough to be read, then goes.
    fixture.fetch().await;
    assert_eq!(fixture.notices().await.len(), 1, "still shown the same day");
    fixture
        .clock
        .set(fixture.clock.now_ms() + 24 * 60 * MINUTE_MS);
    fixture.fetch().await;
    assert!(fixture.notices().await.is_empty(), "gone after a quiet day");
}

#[tokio::test]
async fn a_server_without_uidl_is_noticed_and_its_mail_stored_once() {
    let (server, fixture) = faulty(5).await;
    server.set_behaviour(ProviderBehaviour::NoUidl);
    let report = fixture.fetch().await;
    assert_eq!(report.signs.no_uidl, 5);
    assert!(server.uids().is_empty());
    assert_eq!(fixture.stored().await, 5);
    let notices = fixture.notices().await;
    assert_eq!(kinds(&notices), [NoticeKind::NoUidl]);
    assert_eq!(notices[0].last_count, 5);
    // An empty mailbox of a server without UIDL still has no UIDL: the notice stays.
    fixture.fetch().await;
    assert_eq!(kinds(&fixture.notices().await), [NoticeKind::NoUidl]);
    // The provider turns UIDL on.
    server.set_behaviour(ProviderBehaviour::Plain);
    fixture.fetch().await;
    assert!(fixture.notices().await.is_empty());
}

#[tokio::test]
async fn duplicate_uidls_in_one_listing_are_noticed_and_no_message_is_lost() {
    let (server, fixture) = faulty(6).await;
    server.set_behaviour(ProviderBehaviour::DuplicateUidls);
    let report = fixture.fetch().await;
    // uid-0 and uid-1 are both listed as uid-0, and so on: six messages share a UIDL.
    assert_eq!(report.signs.duplicate_uidls, 6);
    // Promise 1: a UIDL naming two messages is trusted for neither, so the second is
    // never skipped (and deleted) as "known".
    assert_eq!(fixture.stored().await, 6, "every message stored");
    assert!(server.uids().is_empty());
    let notices = fixture.notices().await;
    assert_eq!(kinds(&notices), [NoticeKind::DuplicateUidls]);
    assert_eq!(notices[0].last_count, 6);

    server.set_behaviour(ProviderBehaviour::Plain);
    server.add("fresh", &message(50), MessageFault::None);
    fixture.fetch().await;
    assert!(fixture.notices().await.is_empty());
}

#[tokio::test]
async fn normal_deletion_on_a_real_dovecot_never_raises_a_notice_over_20_runs() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", PASSWORD);
    let settings = MailboxSettings {
        name: NAME.to_string(),
        host: dovecot.host().to_string(),
        port: dovecot.pop3s_addr().port(),
        tls: TlsMode::Implicit,
        username: "support".to_string(),
        ca_file: Some(dovecot.ca_pem_path().display().to_string()),
        batch_messages: 3,
        ..MailboxSettings::default()
    };
    let fixture = Fixture::new(settings).await;
    let mut next = 0;
    for run in 0..20 {
        // New mail most runs, several sessions' worth some runs, none in others.
        let arriving = [0, 1, 4, 7][run % 4];
        dovecot.deliver_many("support", (next..next + arriving).map(message));
        next += arriving;
        let report = fixture.fetch().await;
        assert_eq!(report.counts.downloaded, arriving as u64, "run {run}");
        assert_eq!(
            report.signs,
            intake::ProviderSigns {
                listed: true,
                ..intake::ProviderSigns::default()
            },
            "run {run}: nothing noticed"
        );
        assert!(fixture.notices().await.is_empty(), "run {run}");
    }
    assert_eq!(dovecot.message_count("support"), 0);
    assert_eq!(fixture.stored().await, next);
}
