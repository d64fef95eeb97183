//! The scheduler and safe cancellation, against a real Dovecot into a real store. Each
//! test names the promise (DESIGN.md, issue #5) it protects.
//!
//! Timing is asserted with generous slack: these run on 2 cores beside other tests.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use intake::{
    Clock, FetchNowError, Fetcher, ScheduleState, Scheduler, SchedulerConfig, SchedulerHandle,
    SessionOptions, SystemClock,
};
use pop3::Timeouts;
use secrecy::SecretString;
use store::{FetchRun, Mailbox, MailboxSettings, RunOutcome, Store, TlsMode};
use tempfile::TempDir;
use testkit::{Dovecot, Fault, FaultProxy};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "s3cret-pass";
const CANCELLED: &str =
    "popdesk was shutting down; the run stopped at a safe point and the next run carries on";

struct Fixture {
    dovecot: Dovecot,
    store: Store,
    data: TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        let dovecot = Dovecot::start();
        let data = TempDir::new().expect("temp dir");
        let store = Store::open(data.path(), None).await.expect("open store");
        Fixture {
            dovecot,
            store,
            data,
        }
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }

    /// A mailbox for `user` over implicit TLS, polled every `interval_secs`.
    fn settings(&self, user: &str, interval_secs: u32) -> MailboxSettings {
        MailboxSettings {
            name: user.to_string(),
            host: self.dovecot.host().to_string(),
            port: self.dovecot.pop3s_addr().port(),
            tls: TlsMode::Implicit,
            username: user.to_string(),
            ca_file: Some(self.dovecot.ca_pem_path().display().to_string()),
            poll_interval_secs: interval_secs,
            ..MailboxSettings::default()
        }
    }

    /// A mailbox for `user` in plaintext, straight to Dovecot: a poll costs no TLS
    /// handshake, so twenty mailboxes every two seconds fit on a loaded 2-core machine.
    fn plain_settings(&self, user: &str, interval_secs: u32) -> MailboxSettings {
        MailboxSettings {
            host: "127.0.0.1".to_string(),
            port: self.dovecot.pop3_addr().port(),
            tls: TlsMode::None,
            allow_insecure_auth: true,
            ca_file: None,
            ..self.settings(user, interval_secs)
        }
    }

    /// A mailbox for `user` reached in plaintext through `proxy` (which only sees
    /// plaintext).
    fn settings_via(&self, user: &str, proxy: &FaultProxy, interval_secs: u32) -> MailboxSettings {
        MailboxSettings {
            host: "127.0.0.1".to_string(),
            port: proxy.addr().port(),
            tls: TlsMode::None,
            allow_insecure_auth: true,
            ca_file: None,
            ..self.settings(user, interval_secs)
        }
    }

    async fn add(&self, settings: MailboxSettings, password: &str) -> Mailbox {
        self.store
            .add_mailbox(
                &settings,
                &SecretString::from(password.to_string()),
                SystemClock.now_ms(),
            )
            .await
            .expect("add mailbox")
    }

    fn fetcher(&self) -> Fetcher {
        let session = SessionOptions {
            timeouts: Timeouts {
                connect: Duration::from_secs(5),
                read: Duration::from_secs(20),
                session: Some(Duration::from_secs(120)),
            },
            pipelining: true,
        };
        Fetcher::new(self.store.clone(), Fixture::clock()).with_session_options(session)
    }

    fn scheduler(&self, config: SchedulerConfig) -> (Scheduler, SchedulerHandle) {
        Scheduler::new(self.store.clone(), self.fetcher(), Fixture::clock(), config)
    }

    async fn mailbox(&self, id: i64) -> Mailbox {
        self.store
            .mailbox_by_id(id)
            .await
            .expect("read mailbox")
            .expect("mailbox exists")
    }

    /// Oldest first.
    async fn runs(&self, id: i64) -> Vec<FetchRun> {
        let mut runs = self.store.runs(id, 1000).await.expect("runs");
        runs.reverse();
        runs
    }

    /// Message-IDs of the mailbox's stored messages, each once; panics on a duplicate.
    async fn stored_ids(&self, id: i64) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for raw in self.store.raw_messages(id).await.expect("raw messages") {
            let message_id = raw.message_id.expect("every test message has a Message-ID");
            assert!(ids.insert(message_id.clone()), "stored twice: {message_id}");
        }
        ids
    }

    /// Message-IDs of what is still on the server for `user`.
    fn server_ids(&self, user: &str) -> BTreeSet<String> {
        self.dovecot
            .messages(user)
            .iter()
            .filter_map(|bytes| intake::message_id(bytes))
            .collect()
    }

    /// Temp files in the blob store (half-written downloads).
    fn temp_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.data.path().join("blobs").join("tmp"))
            .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

/// A message with a Message-ID of its own, padded to about `size` octets.
fn message(user: &str, i: usize, size: usize) -> Vec<u8> {
    let mut text = format!(
        "From: customer{i}@example.net\r\nTo: {user}@example.com\r\nSubject: help {i}\r\n\
Message-ID: <{user}-{i}@example.net>\r\n\r\nPlease help with case {i}.\r\n"
    );
    while text.len() < size {
        text.push_str("All work and no play makes a dull helpdesk, says the customer.\r\n");
    }
    text.into_bytes()
}

fn message_ids(user: &str, range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("{user}-{i}@example.net")).collect()
}

fn spawn(scheduler: Scheduler) -> (CancellationToken, JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(scheduler.run(shutdown.clone()));
    (shutdown, run)
}

/// Waits until `check` holds, or panics with `what` after `limit`.
async fn wait_for<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops the scheduler and says how long `run` took to return.
async fn shut_down(shutdown: CancellationToken, run: JoinHandle<()>) -> Duration {
    let asked = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("run returns after shutdown")
        .expect("the scheduler did not panic");
    asked.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_mailboxes_are_polled_on_time_while_one_is_slow_and_one_refused() {
    const INTERVAL_SECS: u32 = 2;
    const RUN_FOR: Duration = Duration::from_secs(14);
    let fixture = Fixture::new().await;
    let users: Vec<String> = (0..20).map(|i| format!("desk{i:02}")).collect();
    for user in &users {
        fixture.dovecot.add_user(user, PASSWORD);
    }
    let (refused, slow, good) = (&users[0], &users[1], &users[2..]);
    let proxy = FaultProxy::start(fixture.dovecot.pop3_addr());
    // 10 messages of 25 kB at 25 kB/s: the slow mailbox's fetch takes about 10 s.
    proxy.set_fault(Fault::Slow {
        bytes_per_sec: 25_000,
    });
    let mut ids = HashMap::new();
    let refused_box = fixture
        .add(fixture.settings(refused, INTERVAL_SECS), "not-the-password")
        .await;
    let slow_box = fixture
        .add(fixture.settings_via(slow, &proxy, INTERVAL_SECS), PASSWORD)
        .await;
    for user in good {
        let mailbox = fixture
            .add(fixture.plain_settings(user, INTERVAL_SECS), PASSWORD)
            .await;
        ids.insert(user.clone(), mailbox.id);
        fixture
            .dovecot
            .deliver_many(user, (0..3).map(|i| message(user, i, 500)));
    }
    fixture
        .dovecot
        .deliver_many(slow, (0..10).map(|i| message(slow, i, 25_000)));
    fixture.dovecot.deliver(refused, &message(refused, 0, 500));

    let config = SchedulerConfig {
        max_concurrent: 8,
        jitter: 0.1,
        backoff_base: Duration::from_secs(1),
        backoff_max: Duration::from_secs(4),
        tick: Duration::from_millis(250),
        ..SchedulerConfig::default()
    };
    let (scheduler, handle) = fixture.scheduler(config);
    let started = Instant::now();
    let (shutdown, run) = spawn(scheduler);

    // More mail arrives while the scheduler runs.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for user in good {
        fixture
            .dovecot
            .deliver_many(user, (3..5).map(|i| message(user, i, 500)));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    for user in good {
        fixture.dovecot.deliver(user, &message(user, 5, 500));
    }
    // The slow mailbox is still in its first run: the others went on meanwhile.
    let slow_runs = fixture.runs(slow_box.id).await;
    assert!(
        slow_runs.len() == 1 && slow_runs[0].outcome == RunOutcome::Running,
        "the slow mailbox's first run is still going after 8 s: {slow_runs:?}"
    );
    tokio::time::sleep(RUN_FOR.saturating_sub(started.elapsed())).await;
    // All delivered mail is stored (the last of it came 6 s ago: three intervals).
    for user in good {
        let stored = fixture.stored_ids(ids[user]).await;
        assert_eq!(stored, message_ids(user, 0..6), "{user}");
        assert_eq!(fixture.dovecot.message_count(user), 0, "{user}");
    }
    let statuses = handle.statuses();
    let elapsed = shut_down(shutdown, run).await;
    assert!(
        elapsed < Duration::from_secs(10),
        "shutdown took {elapsed:?}"
    );

    // Every good mailbox was polled promptly, then on time, again and again.
    let slack_ms = 2_500;
    let max_gap = i64::from(INTERVAL_SECS) * 1100 + slack_ms;
    let first_allowed = 3_000 + slack_ms;
    for user in good {
        let runs = fixture.runs(ids[user]).await;
        // About seven polls in 14 s; four even on a machine loaded to saturation.
        assert!(
            runs.len() >= 4,
            "{user} polled only {} times: {runs:?}",
            runs.len()
        );
        assert!(
            runs.iter()
                .all(|run| matches!(run.outcome, RunOutcome::Success | RunOutcome::Cancelled)),
            "{user}: {runs:?}"
        );
        let starts: Vec<i64> = runs.iter().map(|run| run.started_at).collect();
        let first = starts[0] - fixture.mailbox(ids[user]).await.created_at;
        assert!(
            first <= first_allowed,
            "{user}: first poll after {first} ms"
        );
        for pair in starts.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap <= max_gap,
                "{user}: {gap} ms between polls (interval {INTERVAL_SECS} s): {starts:?}"
            );
            assert!(
                gap >= i64::from(INTERVAL_SECS) * 900 - 500,
                "{user}: polled too often, {gap} ms apart: {starts:?}"
            );
        }
        let status = statuses
            .iter()
            .find(|status| status.mailbox_id == ids[user])
            .expect("a status");
        assert_eq!(status.consecutive_failures, 0, "{status:?}");
        assert!(status.last_success_at.is_some(), "{status:?}");
    }

    // The refused mailbox is stopped with the reason, and was not polled again.
    let stopped = fixture.mailbox(refused_box.id).await;
    let reason = stopped
        .needs_attention
        .expect("the refused mailbox needs attention");
    assert!(reason.contains("authentication failed"), "{reason}");
    let refused_runs = fixture.runs(refused_box.id).await;
    assert_eq!(refused_runs.len(), 1, "{refused_runs:?}");
    assert_eq!(refused_runs[0].outcome, RunOutcome::Permanent);
    let status = statuses
        .iter()
        .find(|status| status.mailbox_id == refused_box.id)
        .expect("a status");
    assert!(
        matches!(&status.state, ScheduleState::Stopped { reason } if reason.contains("authentication failed")),
        "{status:?}"
    );
    assert_eq!(status.next_poll_at, None);
    assert_eq!(fixture.dovecot.message_count(refused), 1);

    // The slow mailbox really was slow, and got its mail too.
    let slow_runs = fixture.runs(slow_box.id).await;
    let first = &slow_runs[0];
    let took = first.finished_at.expect("finished") - first.started_at;
    assert!(took >= 5_000, "the slow fetch took only {took} ms");
    assert_eq!(
        fixture.stored_ids(slow_box.id).await.len() + fixture.server_ids(slow).len(),
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_mailbox_backs_off_longer_each_time_up_to_the_cap() {
    let fixture = Fixture::new().await;
    // A port nothing listens on: every connection is refused at once (transient).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut settings = fixture.settings("nowhere", 1);
    settings.host = "127.0.0.1".into();
    settings.port = port;
    let mailbox = fixture.add(settings, PASSWORD).await;
    let config = SchedulerConfig {
        max_concurrent: 2,
        jitter: 0.0,
        backoff_base: Duration::from_secs(1),
        backoff_max: Duration::from_secs(4),
        tick: Duration::from_millis(100),
        ..SchedulerConfig::default()
    };
    let (scheduler, handle) = fixture.scheduler(config);
    let (shutdown, run) = spawn(scheduler);

    // Per failure count, how long the scheduler said it waits after that failure.
    let mut waits: Vec<(u32, i64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while waits.len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Some(status) = handle.status(mailbox.id) else {
            continue;
        };
        let ScheduleState::BackingOff { until } = status.state else {
            continue;
        };
        if waits
            .last()
            .is_some_and(|(n, _)| *n == status.consecutive_failures)
        {
            continue;
        }
        let runs = fixture.runs(mailbox.id).await;
        let last = runs.last().expect("a run");
        let finished = last.finished_at.expect("finished");
        assert_eq!(last.outcome, RunOutcome::Transient, "{last:?}");
        assert_eq!(status.consecutive_failures as usize, runs.len());
        assert!(status.last_error.is_some());
        // The run's recorded end comes a little before the scheduler sees the task end
        // (the lease is released in between): the measured wait is a little long.
        waits.push((status.consecutive_failures, until - finished));
    }
    shut_down(shutdown, run).await;
    assert_eq!(waits.len(), 4, "{waits:?}");
    // Interval 1 s, base 1 s doubling, cap 4 s: 1, 2, 4, 4 seconds.
    for ((failures, wait), expected) in waits.iter().zip([1_000, 2_000, 4_000, 4_000]) {
        assert!(
            (expected - 100..expected + 900).contains(wait),
            "after {failures} failures waited {wait} ms, expected {expected}: {waits:?}"
        );
    }
    assert!(fixture.mailbox(mailbox.id).await.needs_attention.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_now_runs_a_mailbox_out_of_turn_even_a_stopped_one() {
    let fixture = Fixture::new().await;
    fixture.dovecot.add_user("support", PASSWORD);
    fixture.dovecot.add_user("sales", PASSWORD);
    // Interval one hour: only the first poll after start-up comes by itself.
    let support = fixture
        .add(fixture.settings("support", 3600), PASSWORD)
        .await;
    let sales = fixture
        .add(fixture.settings("sales", 3600), "not-the-password")
        .await;
    let (scheduler, handle) = fixture.scheduler(SchedulerConfig::default());
    // Asked before the scheduler has read the mailboxes: queued, not refused.
    handle.fetch_now(support.id).expect("queued at start-up");
    let (shutdown, run) = spawn(scheduler);
    let settled = |id| {
        !matches!(
            handle.status(id).map(|s| s.state),
            Some(ScheduleState::Running) | None
        )
    };
    wait_for(Duration::from_secs(10), "the first polls", || async {
        fixture.runs(support.id).await.len() == 1
            && fixture.runs(sales.id).await.len() == 1
            && settled(support.id)
            && settled(sales.id)
    })
    .await;
    let status = handle.status(support.id).expect("known");
    assert_eq!(status.state, ScheduleState::Waiting);
    let next = status.next_poll_at.expect("planned");
    assert!(next - SystemClock.now_ms() > 3_000_000, "{status:?}");
    assert!(matches!(
        handle.status(sales.id).expect("known").state,
        ScheduleState::Stopped { .. }
    ));

    fixture
        .dovecot
        .deliver_many("support", (0..3).map(|i| message("support", i, 500)));
    let asked = Instant::now();
    handle.fetch_now(support.id).expect("known mailbox");
    wait_for(Duration::from_secs(5), "the out-of-turn run", || async {
        fixture.stored_ids(support.id).await.len() == 3
    })
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(fixture.runs(support.id).await.len(), 2);

    // A stopped mailbox runs when the admin asks (and stays stopped: the password is
    // still wrong).
    handle.fetch_now(sales.id).expect("known mailbox");
    wait_for(
        Duration::from_secs(5),
        "the stopped mailbox's run",
        || async {
            fixture.runs(sales.id).await.len() == 2
                && matches!(
                    handle.status(sales.id).map(|s| s.state),
                    Some(ScheduleState::Stopped { .. })
                )
        },
    )
    .await;

    // The admin fixes the password: after a reload it is polled again.
    let mut settings = fixture.mailbox(sales.id).await.settings;
    settings.poll_interval_secs = 3600;
    fixture
        .store
        .update_mailbox(
            sales.id,
            &settings,
            Some(&SecretString::from(PASSWORD.to_string())),
            SystemClock.now_ms(),
        )
        .await
        .expect("update");
    if fixture.mailbox(sales.id).await.needs_attention.is_some() {
        // The store keeps the reason until the admin's edit clears it.
        fixture
            .store
            .set_attention(sales.id, None, SystemClock.now_ms())
            .await
            .expect("clear");
    }
    fixture.dovecot.deliver("sales", &message("sales", 0, 500));
    handle.reload();
    wait_for(
        Duration::from_secs(10),
        "the repaired mailbox's run",
        || async { fixture.stored_ids(sales.id).await.len() == 1 },
    )
    .await;

    assert!(matches!(
        handle.fetch_now(999_999),
        Err(FetchNowError::UnknownMailbox(999_999))
    ));
    shut_down(shutdown, run).await;
    assert!(matches!(
        handle.fetch_now(support.id),
        Err(FetchNowError::NotRunning)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_big_fetch_returns_promptly_and_loses_nothing() {
    const COUNT: usize = 60;
    let fixture = Fixture::new().await;
    fixture.dovecot.add_user("support", PASSWORD);
    let proxy = FaultProxy::start(fixture.dovecot.pop3_addr());
    // 60 messages of 5 kB at 50 kB/s, 10 a session: about 6 s in all.
    proxy.set_fault(Fault::Slow {
        bytes_per_sec: 50_000,
    });
    let mut settings = fixture.settings_via("support", &proxy, 60);
    settings.batch_messages = 10;
    let mailbox = fixture.add(settings, PASSWORD).await;
    fixture
        .dovecot
        .deliver_many("support", (0..COUNT).map(|i| message("support", i, 5_000)));
    let (scheduler, _handle) = fixture.scheduler(SchedulerConfig::default());
    let (shutdown, run) = spawn(scheduler);
    // Shut down once the first batch is in, mid-way through the run.
    wait_for(Duration::from_secs(20), "the first batch", || async {
        !fixture.stored_ids(mailbox.id).await.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let took = shut_down(shutdown, run).await;
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");

    let runs = fixture.runs(mailbox.id).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].outcome, RunOutcome::Cancelled);
    assert_eq!(runs[0].error.as_deref(), Some(CANCELLED));
    assert_safe_point(&fixture, mailbox.id, "support", 0..COUNT).await;
    let stored = fixture.stored_ids(mailbox.id).await.len();
    assert!(
        stored > 0 && stored < COUNT,
        "stopped mid-way: {stored} stored"
    );

    // The next start carries on: the lease was released, every message comes in once.
    proxy.set_fault(Fault::None);
    let report = fixture
        .fetcher()
        .fetch(&fixture.mailbox(mailbox.id).await)
        .await
        .expect("not busy: the lease was released");
    assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
    assert_eq!(report.counts.downloaded as usize, COUNT - stored);
    assert_eq!(
        fixture.stored_ids(mailbox.id).await,
        message_ids("support", 0..COUNT)
    );
    assert_eq!(fixture.dovecot.message_count("support"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_cancelled_at_any_moment_loses_nothing_and_the_next_run_carries_on() {
    let fixture = Fixture::new().await;
    fixture.dovecot.add_user("support", PASSWORD);
    let proxy = FaultProxy::start(fixture.dovecot.pop3_addr());
    // 12 new messages of 4 kB per round at 40 kB/s, 4 a session: about 1.2 s a run.
    proxy.set_fault(Fault::Slow {
        bytes_per_sec: 40_000,
    });
    let mut settings = fixture.settings_via("support", &proxy, 60);
    settings.batch_messages = 4;
    let mailbox = fixture.add(settings, PASSWORD).await;
    let mut delivered = 0;
    let mut outcomes = Vec::new();
    for delay_ms in [0, 150, 300, 450, 600, 800, 1_000] {
        fixture.dovecot.deliver_many(
            "support",
            (delivered..delivered + 12).map(|i| message("support", i, 4_000)),
        );
        delivered += 12;
        let cancel = CancellationToken::new();
        let fetcher = fixture.fetcher().with_cancel(cancel.clone());
        let current = fixture.mailbox(mailbox.id).await;
        let fetch = tokio::spawn(async move { fetcher.fetch(&current).await });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let asked = Instant::now();
        cancel.cancel();
        let report = fetch.await.expect("no panic").expect("recorded");
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "stopping took {:?}",
            asked.elapsed()
        );
        if report.outcome == RunOutcome::Cancelled {
            assert_eq!(report.error.as_deref(), Some(CANCELLED));
        } else {
            assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
        }
        outcomes.push(report.outcome);
        assert_safe_point(&fixture, mailbox.id, "support", 0..delivered).await;
    }
    assert!(
        outcomes.contains(&RunOutcome::Cancelled),
        "some run was cancelled mid-way: {outcomes:?}"
    );

    proxy.set_fault(Fault::None);
    let report = fixture
        .fetcher()
        .fetch(&fixture.mailbox(mailbox.id).await)
        .await
        .expect("recorded");
    assert_eq!(report.outcome, RunOutcome::Success, "{:?}", report.error);
    assert_eq!(
        fixture.stored_ids(mailbox.id).await,
        message_ids("support", 0..delivered)
    );
    assert_eq!(fixture.dovecot.message_count("support"), 0);
}

/// Promise 1 at a cancelled run's end: every message is either stored (and then deleted
/// from the server, since its session finished commit, DELE and QUIT) or still on the
/// server and not stored; none is stored twice; no half-written temp file is left.
///
/// An *empty* temp file may be left: a cancel that lands while the blob store's
/// `open` runs on tokio's blocking pool cannot stop the open, and the guard that would
/// remove the file does not exist yet. It holds nothing, is named with this process's
/// pid, and `clean_temp` removes it once this process is gone (a cancel happens at
/// shutdown).
async fn assert_safe_point(
    fixture: &Fixture,
    mailbox_id: i64,
    user: &str,
    delivered: std::ops::Range<usize>,
) {
    let stored = fixture.stored_ids(mailbox_id).await;
    let on_server = fixture.server_ids(user);
    let both: Vec<&String> = stored.intersection(&on_server).collect();
    assert!(both.is_empty(), "stored but not deleted: {both:?}");
    let all: BTreeSet<String> = stored.union(&on_server).cloned().collect();
    assert_eq!(all, message_ids(user, delivered), "a message went missing");
    for path in fixture.temp_files() {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert_eq!(
            size,
            0,
            "a half-written temp file was left: {}",
            path.display()
        );
    }
}
