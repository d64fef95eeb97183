//! Fetch runs against a real Dovecot into a real store. Each test names the promise of
//! DESIGN.md it protects.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use intake::{FetchReport, Fetcher, ManualClock, SessionOptions};
use pop3::Timeouts;
use secrecy::SecretString;
use store::{
    LedgerState, MailboxSettings, Oversize, Policy, RawStatus, RunOutcome, StartMode, Store,
    TlsMode,
};
use tempfile::TempDir;
use testkit::Dovecot;

const USER: &str = "support";
const PASSWORD: &str = "s3cret-pass";

struct Fixture {
    dovecot: Dovecot,
    store: Store,
    clock: ManualClock,
    _data: TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with_dovecot(Dovecot::start()).await
    }

    async fn with_dovecot(dovecot: Dovecot) -> Fixture {
        dovecot.add_user(USER, PASSWORD);
        let data = TempDir::new().expect("temp dir");
        let store = Store::open(data.path(), None).await.expect("open store");
        Fixture {
            dovecot,
            store,
            clock: ManualClock::new(1_800_000_000_000),
            _data: data,
        }
    }

    fn settings(&self, name: &str) -> MailboxSettings {
        MailboxSettings {
            name: name.to_string(),
            host: self.dovecot.host().to_string(),
            port: self.dovecot.pop3s_addr().port(),
            tls: TlsMode::Implicit,
            username: USER.to_string(),
            ca_file: Some(self.dovecot.ca_pem_path().display().to_string()),
            ..MailboxSettings::default()
        }
    }

    async fn add(&self, settings: MailboxSettings) -> store::Mailbox {
        self.add_with_password(settings, PASSWORD).await
    }

    async fn add_with_password(&self, settings: MailboxSettings, password: &str) -> store::Mailbox {
        self.store
            .add_mailbox(
                &settings,
                &SecretString::from(password.to_string()),
                self.clock.now(),
            )
            .await
            .expect("add mailbox")
    }

    /// The stored mailbox of this name.
    async fn mailbox(&self, name: &str) -> store::Mailbox {
        self.store
            .mailbox(name)
            .await
            .expect("read mailbox")
            .expect("mailbox exists")
    }

    async fn fetch(&self, name: &str) -> FetchReport {
        self.fetch_with(name, |fetcher| fetcher).await
    }

    /// A run by a fetcher `adjust` sets up further.
    async fn fetch_with(&self, name: &str, adjust: impl FnOnce(Fetcher) -> Fetcher) -> FetchReport {
        let mailbox = self.mailbox(name).await;
        let session = SessionOptions {
            timeouts: Timeouts {
                connect: Duration::from_secs(5),
                read: Duration::from_secs(20),
                session: None,
            },
            pipelining: true,
        };
        let fetcher = Fetcher::new(self.store.clone(), Arc::new(self.clock.clone()))
            .with_session_options(session);
        adjust(fetcher)
            .fetch(&mailbox)
            .await
            .expect("a run is recorded")
    }

    /// The RETRs of each POP3 session Dovecot logged after the log had `from` octets,
    /// from its "Disconnected: Logged out ... retr=N/..." line. Dovecot writes that line a
    /// moment after the session ends: waits (bounded) until every login has one.
    fn sessions_since(&self, from: usize) -> Vec<u32> {
        self.sessions_of_since(USER, from)
    }

    /// [`Fixture::sessions_since`] of another user.
    fn sessions_of_since(&self, user: &str, from: usize) -> Vec<u32> {
        let login = format!("pop3-login: Info: Login: user=<{user}>");
        let session = format!("pop3({user})");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.dovecot.log();
            let slice = log.get(from..).unwrap_or_default();
            let logins = slice.lines().filter(|l| l.contains(&login)).count();
            let retrs: Vec<u32> = slice
                .lines()
                .filter(|l| l.contains(&session) && l.contains("Disconnected"))
                .map(|l| {
                    let after = l.split("retr=").nth(1).expect("a retr count");
                    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().expect("a number of RETRs")
                })
                .collect();
            if retrs.len() >= logins || std::time::Instant::now() >= deadline {
                return retrs;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Message-ID → how many raw messages the store holds with it.
    async fn stored_ids(&self, name: &str) -> BTreeMap<String, usize> {
        let mailbox = self.mailbox(name).await;
        let mut ids = BTreeMap::new();
        for raw in self
            .store
            .raw_messages(mailbox.id)
            .await
            .expect("raw messages")
        {
            *ids.entry(raw.message_id.unwrap_or_default()).or_insert(0) += 1;
        }
        ids
    }
}

trait Now {
    fn now(&self) -> i64;
}

impl Now for ManualClock {
    fn now(&self) -> i64 {
        intake::Clock::now_ms(self)
    }
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: customer{i}@example.net\r\nTo: support@example.com\r\nSubject: help {i}\r\n\
Message-ID: <m{i}@example.net>\r\n\r\nPlease help with case {i}.\r\n.hidden dot line\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn delete_policy_stores_each_message_once_and_empties_the_server() {
    let fixture = Fixture::new().await;
    let mut settings = fixture.settings("support");
    settings.batch_messages = 7;
    fixture.add(settings).await;
    fixture.dovecot.deliver_many(USER, (0..30).map(message));

    let report = fixture.fetch("support").await;
    assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
    assert_eq!(report.counts.listed, 30);
    assert_eq!(report.counts.downloaded, 30);
    assert_eq!(report.counts.deleted, 30);
    assert_eq!(fixture.dovecot.message_count(USER), 0);
    let ids = fixture.stored_ids("support").await;
    assert_eq!(ids.len(), 30);
    assert!(ids.values().all(|count| *count == 1));

    // The raw bytes are exactly what was delivered (promise 1).
    let mailbox = fixture.mailbox("support").await;
    let raws = fixture.store.raw_messages(mailbox.id).await.expect("raws");
    let first = fixture
        .store
        .blobs()
        .read(&raws[0].sha256)
        .await
        .expect("blob");
    assert_eq!(first, message(0));
}

#[tokio::test]
async fn mail_that_comes_back_under_a_new_uidl_is_not_stored_twice() {
    let fixture = Fixture::new().await;
    fixture.add(fixture.settings("support")).await;
    fixture.dovecot.deliver_many(USER, (0..5).map(message));
    assert_eq!(fixture.fetch("support").await.counts.downloaded, 5);

    // The provider shows the same mail again as new messages (Gmail recent mode).
    fixture.dovecot.deliver_many(USER, (0..5).map(message));
    fixture.dovecot.deliver(USER, &message(99));
    let report = fixture.fetch("support").await;
    assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
    assert_eq!(report.counts.duplicates, 5);
    assert_eq!(report.counts.downloaded, 1);
    assert_eq!(fixture.dovecot.message_count(USER), 0);
    let ids = fixture.stored_ids("support").await;
    assert_eq!(ids.len(), 6);
    assert!(ids.values().all(|count| *count == 1));
}

#[tokio::test]
async fn the_same_mail_in_two_mailboxes_is_kept_for_each() {
    let fixture = Fixture::new().await;
    fixture.dovecot.add_user("sales", PASSWORD);
    fixture.add(fixture.settings("support")).await;
    let mut sales = fixture.settings("sales");
    sales.username = "sales".into();
    fixture.add(sales).await;
    fixture.dovecot.deliver(USER, &message(1));
    fixture.dovecot.deliver("sales", &message(1));
    assert_eq!(fixture.fetch("support").await.counts.downloaded, 1);
    assert_eq!(fixture.fetch("sales").await.counts.downloaded, 1);
    assert_eq!(fixture.stored_ids("sales").await.len(), 1);
}

#[tokio::test]
async fn keep_policy_leaves_mail_and_never_downloads_it_twice() {
    let fixture = Fixture::new().await;
    let mut settings = fixture.settings("support");
    settings.policy = Policy::Keep {
        delete_after_days: None,
    };
    fixture.add(settings).await;
    fixture.dovecot.deliver_many(USER, (0..4).map(message));
    let first = fixture.fetch("support").await;
    assert_eq!((first.counts.downloaded, first.counts.deleted), (4, 0));
    let second = fixture.fetch("support").await;
    assert_eq!(second.counts.downloaded, 0);
    assert_eq!(second.counts.already_known, 4);
    assert_eq!(fixture.dovecot.message_count(USER), 4);
    assert_eq!(fixture.stored_ids("support").await.len(), 4);
}

#[tokio::test]
async fn keep_with_delete_after_deletes_once_old_enough() {
    let fixture = Fixture::new().await;
    let mut settings = fixture.settings("support");
    settings.policy = Policy::Keep {
        delete_after_days: Some(7),
    };
    fixture.add(settings).await;
    fixture.dovecot.deliver_many(USER, (0..3).map(message));
    fixture.fetch("support").await;
    fixture.clock.advance_days(3);
    fixture.dovecot.deliver(USER, &message(3));
    fixture.fetch("support").await;
    assert_eq!(fixture.dovecot.message_count(USER), 4);

    fixture.clock.advance_days(5); // first three are 8 days old, the fourth 5
    let report = fixture.fetch("support").await;
    assert_eq!(report.counts.deleted, 3);
    assert_eq!(fixture.dovecot.message_count(USER), 1);
    fixture.clock.advance_days(2);
    assert_eq!(fixture.fetch("support").await.counts.deleted, 1);
    assert_eq!(fixture.dovecot.message_count(USER), 0);
    assert_eq!(fixture.stored_ids("support").await.len(), 4);
}

#[tokio::test]
async fn start_now_imports_only_mail_arriving_later() {
    let fixture = Fixture::new().await;
    let mut settings = fixture.settings("support");
    settings.start = StartMode::Now;
    fixture.add(settings).await;
    fixture.dovecot.deliver_many(USER, (0..3).map(message));
    let first = fixture.fetch("support").await;
    assert_eq!(first.counts.downloaded, 0);
    assert_eq!(
        fixture.dovecot.message_count(USER),
        3,
        "old mail is left alone"
    );

    fixture.dovecot.deliver(USER, &message(10));
    let second = fixture.fetch("support").await;
    assert_eq!(second.counts.downloaded, 1);
    assert_eq!(
        fixture
            .stored_ids("support")
            .await
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec!["m10@example.net".to_string()]
    );
    // The seeded messages are never deleted: they were never ours.
    assert_eq!(fixture.dovecot.message_count(USER), 3);
    let mailbox = fixture.mailbox("support").await;
    let seeded = fixture
        .store
        .ledger(mailbox.id)
        .await
        .expect("ledger")
        .into_iter()
        .filter(|entry| entry.state == LedgerState::Seeded)
        .count();
    assert_eq!(seeded, 3);
}

#[tokio::test]
async fn an_oversized_message_stays_on_the_server_with_its_headers_stored() {
    let fixture = Fixture::new().await;
    let mut settings = fixture.settings("support");
    settings.max_size = 10_000_000;
    fixture.add(settings).await;
    let mut big = b"From: big@example.net\r\nSubject: huge attachment\r\nMessage-ID: <big@example.net>\r\n\r\n".to_vec();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    while big.len() < 30_000_000 {
        big.extend_from_slice(line);
    }
    fixture.dovecot.deliver(USER, &big);
    fixture.dovecot.deliver(USER, &message(1));

    let report = fixture.fetch("support").await;
    assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
    assert_eq!(report.counts.too_large, 1);
    assert_eq!(report.counts.downloaded, 1);
    let remaining = fixture.dovecot.messages(USER);
    assert_eq!(remaining.len(), 1, "the large message stays on the server");
    assert_eq!(remaining[0].len(), big.len());

    let mailbox = fixture.mailbox("support").await;
    let raws = fixture.store.raw_messages(mailbox.id).await.expect("raws");
    let large = raws
        .iter()
        .find(|raw| raw.status == RawStatus::TooLarge)
        .expect("a too_large record");
    assert_eq!(large.message_id.as_deref(), Some("big@example.net"));
    assert!(
        large.size < 200,
        "only the headers are stored: {}",
        large.size
    );
    let headers = fixture
        .store
        .blobs()
        .read(&large.sha256)
        .await
        .expect("blob");
    assert!(headers.starts_with(b"From: big@example.net\r\n"));

    // Next run: not downloaded again, still on the server.
    let again = fixture.fetch("support").await;
    assert_eq!((again.counts.downloaded, again.counts.too_large), (0, 0));
    assert_eq!(fixture.dovecot.message_count(USER), 1);
}

#[tokio::test]
async fn oversize_download_stores_the_whole_message_marked_too_large() {
    let fixture = Fixture::new().await;
    let mut settings = fixture.settings("support");
    settings.max_size = 1000;
    settings.oversize = Oversize::Download;
    fixture.add(settings).await;
    let mut big = message(1);
    big.extend(std::iter::repeat_n(b'x', 3000));
    big.extend_from_slice(b"\r\n");
    fixture.dovecot.deliver(USER, &big);
    let report = fixture.fetch("support").await;
    assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
    assert_eq!(fixture.dovecot.message_count(USER), 0);
    let mailbox = fixture.mailbox("support").await;
    let raws = fixture.store.raw_messages(mailbox.id).await.expect("raws");
    assert_eq!(raws.len(), 1);
    assert_eq!(raws[0].status, RawStatus::TooLarge);
    assert_eq!(raws[0].size, big.len() as u64);
}

#[tokio::test]
async fn a_wrong_password_marks_the_mailbox_for_attention() {
    let fixture = Fixture::new().await;
    fixture
        .add_with_password(fixture.settings("support"), "not-the-password")
        .await;
    fixture.dovecot.deliver(USER, &message(1));
    let report = fixture.fetch("support").await;
    assert_eq!(report.outcome, RunOutcome::Permanent);
    let error = report.error.expect("an error in words");
    assert!(error.contains("refused the login"), "{error}");
    let mailbox = fixture.mailbox("support").await;
    assert!(mailbox.needs_attention.is_some());
    assert_eq!(fixture.dovecot.message_count(USER), 1);
    assert!(!error.contains("not-the-password"), "secrets stay secret");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_a_permanent_error() {
    let fixture =
        Fixture::with_dovecot(Dovecot::builder().cert_names(&["wrong.example"]).start()).await;
    fixture.add(fixture.settings("support")).await;
    let report = fixture.fetch("support").await;
    assert_eq!(report.outcome, RunOutcome::Permanent);
    assert!(report.error.expect("error").contains("TLS"));
}

#[tokio::test]
async fn a_locked_mailbox_is_a_transient_error() {
    let fixture = Fixture::with_dovecot(Dovecot::builder().lock_session(true).start()).await;
    fixture.add(fixture.settings("support")).await;
    fixture.dovecot.deliver(USER, &message(1));
    // Another client holds the maildrop lock.
    let mut other = testkit::RawSession::connect(fixture.dovecot.pop3_addr())
        .await
        .expect("connect");
    assert!(
        other
            .login(USER, PASSWORD)
            .await
            .expect("login")
            .starts_with("+OK")
    );
    let report = fixture.fetch("support").await;
    assert_eq!(report.outcome, RunOutcome::Transient, "{:?}", report.error);
    assert!(report.error.expect("error").contains("IN-USE"));
    let mailbox = fixture.mailbox("support").await;
    assert!(mailbox.needs_attention.is_none());
    drop(other);
}

#[tokio::test]
async fn a_host_that_does_not_answer_times_out_as_transient() {
    // A listener that accepts (in the kernel) but never greets.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let fixture = Fixture::new().await;
    let mut settings = fixture.settings("support");
    settings.port = silent.local_addr().expect("addr").port();
    fixture.add(settings).await;
    let mailbox = fixture.mailbox("support").await;
    let session = SessionOptions {
        timeouts: Timeouts {
            connect: Duration::from_millis(500),
            read: Duration::from_millis(500),
            session: Some(Duration::from_secs(5)),
        },
        pipelining: true,
    };
    let started = std::time::Instant::now();
    let report = Fetcher::new(fixture.store.clone(), Arc::new(fixture.clock.clone()))
        .with_session_options(session)
        .fetch(&mailbox)
        .await
        .expect("recorded");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(report.outcome, RunOutcome::Transient, "{:?}", report.error);
}

#[tokio::test]
async fn one_fetcher_per_mailbox_a_second_concurrent_run_is_refused() {
    let fixture = Fixture::new().await;
    fixture.add(fixture.settings("support")).await;
    fixture.dovecot.deliver_many(USER, (0..20).map(message));
    let mailbox = fixture.mailbox("support").await;
    let fetcher = Fetcher::new(fixture.store.clone(), Arc::new(fixture.clock.clone()));
    let (a, b) = tokio::join!(fetcher.fetch(&mailbox), fetcher.fetch(&mailbox));
    let outcomes: Vec<bool> = vec![a.is_ok(), b.is_ok()];
    assert_eq!(
        outcomes.iter().filter(|ok| **ok).count(),
        1,
        "exactly one ran"
    );
    let busy = a.err().or(b.err()).expect("one refused");
    assert!(matches!(busy, intake::FetchError::Busy { .. }), "{busy}");
    let ids: HashSet<String> = fixture.stored_ids("support").await.into_keys().collect();
    assert_eq!(ids.len(), 20);
}

#[tokio::test]
async fn a_run_of_several_sessions_never_downloads_again_what_its_earlier_sessions_stored() {
    // Promise 2 inside one run: the run reads the ledger once and keeps it current, so
    // what session 1 stored is known to sessions 2 and 3 (kept mail is listed again).
    let fixture = Fixture::new().await;
    let mut settings = fixture.settings("support");
    settings.policy = Policy::Keep {
        delete_after_days: None,
    };
    settings.batch_messages = 4;
    fixture.add(settings).await;
    fixture.dovecot.deliver_many(USER, (0..10).map(message));

    let from = fixture.dovecot.log().len();
    let report = fixture.fetch("support").await;
    assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
    assert_eq!(report.counts.downloaded, 10);
    assert_eq!(report.counts.duplicates, 0);
    let sessions = fixture.sessions_since(from);
    assert_eq!(sessions, [4, 4, 2], "each message retrieved once");
    assert_eq!(
        fixture.dovecot.message_count(USER),
        10,
        "kept on the server"
    );
    let ids = fixture.stored_ids("support").await;
    assert_eq!(ids.len(), 10);
    assert!(ids.values().all(|count| *count == 1));

    // The next run knows them all from the database.
    let from = fixture.dovecot.log().len();
    let again = fixture.fetch("support").await;
    assert_eq!(again.counts.downloaded, 0);
    assert_eq!(again.counts.already_known, 10);
    assert_eq!(fixture.sessions_since(from), [0]);
}

#[tokio::test]
async fn a_default_session_is_not_cut_at_1000_messages() {
    // Promise 3 with the defaults: a session ends on its time budget (or a large byte
    // bound), not after 1,000 messages, so a big mailbox is one login, as with mpop. The
    // fixture's clock stands still, so the budget never runs out here.
    let fixture = Fixture::new().await;
    fixture.add(fixture.settings("support")).await;
    fixture.dovecot.deliver_many(USER, (0..1_100).map(message));

    let from = fixture.dovecot.log().len();
    let report = fixture.fetch("support").await;
    assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
    assert_eq!(report.counts.downloaded, 1_100);
    assert_eq!(report.counts.deleted, 1_100);
    assert_eq!(fixture.sessions_since(from), [1_100], "one session");
    assert_eq!(fixture.dovecot.message_count(USER), 0);
    assert_eq!(fixture.stored_ids("support").await.len(), 1_100);
}

#[tokio::test]
async fn an_explicit_small_batch_still_ends_each_session_with_quit() {
    // Promise 3 as the admin set it: their batch_messages or batch_bytes end a session
    // (with QUIT, so its deletions are final) well before the time budget would.
    let fixture = Fixture::new().await;
    let mut settings = fixture.settings("support");
    settings.batch_messages = 7;
    fixture.add(settings).await;
    fixture.dovecot.deliver_many(USER, (0..30).map(message));
    let from = fixture.dovecot.log().len();
    let report = fixture.fetch("support").await;
    assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
    assert_eq!(report.counts.downloaded, 30);
    assert_eq!(fixture.sessions_since(from), [7, 7, 7, 7, 2]);
    assert_eq!(fixture.dovecot.message_count(USER), 0);

    // A byte bound alone: three messages' worth per session.
    let mut by_bytes = fixture.settings("by-bytes");
    by_bytes.username = "bytes".into();
    by_bytes.batch_bytes = 3 * message(10).len() as u64 + 10;
    fixture.dovecot.add_user("bytes", PASSWORD);
    fixture.add(by_bytes).await;
    fixture.dovecot.deliver_many("bytes", (10..17).map(message));
    let from = fixture.dovecot.log().len();
    let report = fixture.fetch("by-bytes").await;
    assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
    assert_eq!(report.counts.downloaded, 7);
    assert_eq!(report.counts.deleted, 7);
    assert_eq!(fixture.sessions_of_since("bytes", from), [3, 3, 1]);
    assert_eq!(fixture.dovecot.message_count("bytes"), 0);
    let ids = fixture.stored_ids("by-bytes").await;
    assert_eq!(ids.len(), 7);
}

#[tokio::test]
async fn a_session_past_its_time_budget_quits_and_the_next_session_carries_on() {
    // Promise 3 by time, and promises 1 and 2 across the cut: a session whose budget is
    // spent asks for nothing more, commits and deletes what it has, ends with QUIT, and
    // the next session of the run carries on with the rest. The hand-set clock moves a
    // second with every message downloaded (no real time is measured).
    let fixture = Fixture::new().await;
    fixture.add(fixture.settings("support")).await;
    fixture.dovecot.deliver_many(USER, (0..70).map(message));
    let clock = fixture.clock.clone();
    let from = fixture.dovecot.log().len();
    let report = fixture
        .fetch_with("support", |fetcher| {
            fetcher
                .with_session_budget(Duration::from_secs(1))
                .with_lease_ttl(Duration::from_secs(24 * 60 * 60))
                .with_progress(move |_| clock.set(intake::Clock::now_ms(&clock) + 1_000))
        })
        .await;
    assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
    assert_eq!(report.counts.downloaded, 70);
    assert_eq!(report.counts.deleted, 70);
    let sessions = fixture.sessions_since(from);
    assert!(sessions.len() > 1, "cut by time: {sessions:?}");
    assert_eq!(
        sessions.iter().sum::<u32>(),
        70,
        "each retrieved once: {sessions:?}"
    );
    assert_eq!(fixture.dovecot.message_count(USER), 0);
    let ids = fixture.stored_ids("support").await;
    assert_eq!(ids.len(), 70);
    assert!(ids.values().all(|count| *count == 1));
}
