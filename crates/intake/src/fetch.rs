//! One fetch run: lease, sessions of one batch each, store, commit, delete, quit.
//!
//! The order inside a session is what keeps promise 1: RETR into temp files, made
//! durable in parts while the download goes on (files synced and renamed into the blob
//! store, then the ledger and raw message rows of the part in one transaction) — only
//! when every part is committed DELE, and QUIT only when everything retrieved in the
//! session is committed. Any failure before that drops the connection
//! without QUIT, so the server rolls back and keeps every message.
//!
//! Cancellation ([`Fetcher::with_cancel`]) keeps that order: it stops a run only where
//! stopping loses nothing — before a session opens, or while one logs in, lists or
//! downloads (the connection is then dropped without QUIT, the half-written temp files
//! are removed as their writers drop, and the server keeps every message). Once a batch
//! is being made durable, it is committed, deleted and QUIT first; those steps are
//! bounded by the client's timeouts.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use pop3::{Client, QuitOutcome};
use secrecy::SecretString;
use store::{
    CommitOutcome, FailedRetrieval, FailingMessage, FinishedBlob, LedgerEntry, LedgerState,
    Mailbox, NewRawMessage, Policy, RawStatus, RunCounts, RunOutcome, StartMode, Store,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::connect::{SessionOptions, open_session, session_plan};
use crate::error::FetchError;
use crate::failing::{HEADER_LIMIT, SET_ASIDE_AFTER, body_limit, failure_kind};
use crate::lease::LeaseGuard;
use crate::notice::{ProviderSigns, drop_duplicate_uidls};
use crate::plan::{Listed, Plan, Rules, plan_session};
use crate::process::{ProcessReport, Processor};
use crate::sink::{BatchSink, Downloaded, HeaderSink};

/// Progress of a run, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// New messages the run expects to download (known after the first listing).
    pub total: u64,
    /// Messages downloaded so far.
    pub done: u64,
    /// Octets downloaded so far.
    pub bytes: u64,
}

/// The result of a run that got as far as being recorded.
#[derive(Debug, Clone)]
pub struct FetchReport {
    pub run_id: i64,
    pub counts: RunCounts,
    pub outcome: RunOutcome,
    /// The error in words, when the run did not succeed.
    pub error: Option<String>,
    /// What the run's processor made of the stored messages.
    pub processing: ProcessReport,
    /// The LOGIN-DELAY (RFC 2449) the server announced after login, in seconds: the
    /// scheduler never logs in to this mailbox more often than that. When the server
    /// announces one, a run uses a single session (one login) and the next run carries
    /// on with what is left.
    pub login_delay_secs: Option<u64>,
    /// The UIDL of the message whose download broke off and ended this run (it is tried
    /// again, on its own, next run). The mailbox itself works: the scheduler does not
    /// back off as for a server that is down.
    pub failed_message: Option<String>,
    /// UIDLs set aside by this run (see [`crate::failing`]).
    pub set_aside_now: Vec<String>,
    /// Messages of the mailbox set aside after this run (all runs so far).
    pub set_aside: u64,
    /// What the run saw the provider do with deleted mail (see [`crate::notice`]).
    pub signs: ProviderSigns,
}

type ProgressFn = dyn Fn(Progress) + Send + Sync;

/// Runs fetches against the store.
#[derive(Clone)]
pub struct Fetcher {
    store: Store,
    clock: Arc<dyn Clock>,
    session: SessionOptions,
    progress: Option<Arc<ProgressFn>>,
    processor: Option<Processor>,
    cancel: Option<CancellationToken>,
    set_aside_after: u32,
    /// Access tokens for mailboxes that sign in with OAuth2.
    oauth: oauth::Connections,
    lease_ttl: Duration,
    /// How long a session downloads before it ends with QUIT (see [`SESSION_BUDGET`]).
    session_budget: Duration,
}

/// How long one session asks for messages before it ends with QUIT and the next one
/// carries on (the messages already asked for still arrive).
///
/// Sessions are bounded by time rather than by a count: every session costs a TCP and
/// TLS handshake, a login (a maildir scan on Dovecot) and slow start, which at 20 ms
/// RTT took as long as downloading hundreds of messages, so a run should be one session
/// or few, as mpop's is. What a session bound still protects stays protected with a
/// minute: deletions become final at QUIT at least once a minute; a session that is
/// lost costs at most a minute of DELEs and never a download, since every message is
/// committed (and in the ledger) in parts as it arrives; and Gmail's rule holds, as
/// QUIT still waits for every retrieved message to be committed. A mailbox's own
/// `batch_messages` and `batch_bytes` still end a session earlier; their defaults are
/// only a backstop (see [`store::MailboxSettings`]).
pub const SESSION_BUDGET: Duration = Duration::from_secs(60);

impl Fetcher {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Fetcher {
        Fetcher {
            oauth: oauth::Connections::new(store.clone()),
            store,
            clock,
            session: SessionOptions::default(),
            progress: None,
            processor: None,
            cancel: None,
            set_aside_after: SET_ASIDE_AFTER,
            lease_ttl: crate::lease::DEFAULT_LEASE_TTL,
            session_budget: SESSION_BUDGET,
        }
    }

    /// How long a session asks for messages, on the fetcher's clock, before it ends
    /// with QUIT and the next session carries on (default [`SESSION_BUDGET`]). With a
    /// hand-set clock, time passes only when the test sets it.
    pub fn with_session_budget(mut self, budget: Duration) -> Fetcher {
        self.session_budget = budget;
        self
    }

    /// Sets aside a message once this many runs in a row failed to download it the same
    /// way (default [`SET_ASIDE_AFTER`]; at least 1).
    pub fn with_set_aside_after(mut self, runs: u32) -> Fetcher {
        self.set_aside_after = runs.max(1);
        self
    }

    /// How long a mailbox's lease outlives its last renewal (default
    /// [`DEFAULT_LEASE_TTL`](crate::DEFAULT_LEASE_TTL)): how long a node that died on
    /// another machine keeps its mailboxes from the others.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Fetcher {
        self.lease_ttl = ttl;
        self
    }

    /// Stops runs at a safe point once `token` is cancelled (popdesk is shutting down).
    /// Such a run is recorded as [`RunOutcome::Cancelled`]; the next run carries on.
    pub fn with_cancel(mut self, token: CancellationToken) -> Fetcher {
        self.cancel = Some(token);
        self
    }

    pub fn with_session_options(mut self, session: SessionOptions) -> Fetcher {
        self.session = session;
        self
    }

    /// Turns what the run stores into tickets while it goes on: a processor task beside
    /// the fetcher works on every batch once it is committed, so the download and the
    /// processing share the machine's cores instead of taking turns. The run waits for
    /// it before it reports.
    pub fn with_processor(mut self, processor: Processor) -> Fetcher {
        self.processor = Some(processor);
        self
    }

    pub fn with_progress(mut self, progress: impl Fn(Progress) + Send + Sync + 'static) -> Fetcher {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// Fetches one mailbox. `Err` only when no run could be recorded (another fetcher
    /// holds the mailbox, or the database is unreachable); every other failure is in the
    /// report, which is also stored.
    pub async fn fetch(&self, mailbox: &Mailbox) -> Result<FetchReport, FetchError> {
        let lease =
            LeaseGuard::take(&self.store, mailbox.id, self.clock.clone(), self.lease_ttl).await?;
        // Temp files of fetchers that were killed mid-message; those of live processes
        // sharing the data folder are left alone.
        match self.store.blobs().clean_temp().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed temp files of interrupted fetches"),
            Err(error) => tracing::warn!(%error, "could not clean up temp files"),
        }
        let run_id = self
            .store
            .start_run_by(mailbox.id, self.clock.now_ms(), Some(&lease.holder_name()))
            .await?;
        let cancel = self.cancel.clone().unwrap_or_default();
        let background = self
            .processor
            .clone()
            .map(|processor| BackgroundProcessing::start(processor, cancel.clone()));
        let mut run = Run {
            fetcher: self,
            mailbox,
            lease: &lease,
            run_id,
            counts: RunCounts::default(),
            progress: Progress::default(),
            known_seen: HashSet::new(),
            ledger: HashMap::new(),
            ledger_read: HashSet::new(),
            processing: ProcessReport::default(),
            unconfirmed_deletes: 0,
            quit_problem: None,
            login_delay_secs: None,
            failed_message: None,
            set_aside_now: Vec::new(),
            signs: ProviderSigns::default(),
            kept: HashSet::new(),
            // A token nobody cancels when none was given: one code path.
            cancel,
            processing_wake: background.as_ref().map(BackgroundProcessing::waker),
        };
        let result = run.execute().await;
        run.processing_wake = None;
        if let Some(background) = background {
            run.processing.add(&background.finish().await);
        }
        let counts = run.counts;
        let processing = run.processing;
        let login_delay_secs = run.login_delay_secs;
        let failed_message = run.failed_message.take();
        let set_aside_now = std::mem::take(&mut run.set_aside_now);
        let mut signs = std::mem::take(&mut run.signs);
        signs.kept_after_delete = run.kept.len() as u64;
        let set_aside_note = (!set_aside_now.is_empty()).then(|| {
            set_aside_now
                .iter()
                .map(|(uid, error)| {
                    format!(
                        "message UIDL {uid} was set aside after failing to download in {} runs ({error}); it stays on the server until an admin asks to try again",
                        self.set_aside_after
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        });
        let (outcome, error) = match &result {
            // Nothing was lost, but an admin should see a server that never confirms
            // its deletions: its mailbox would only grow.
            Ok(()) if run.unconfirmed_deletes > 0 => (
                RunOutcome::Success,
                Some(format!(
                    "the server did not confirm {} deletions ({}); the messages are stored, and popdesk deletes them again on the next run",
                    run.unconfirmed_deletes,
                    run.quit_problem.as_deref().unwrap_or("no answer to QUIT")
                )),
            ),
            Ok(()) => (RunOutcome::Success, set_aside_note),
            Err(error) => (error.outcome(), Some(error.to_string())),
        };
        if let Some(error) = &error {
            tracing::info!(mailbox = %mailbox.settings.name, %error, "fetch run failed");
        }
        self.store
            .finish_run(
                run_id,
                self.clock.now_ms(),
                &counts,
                outcome,
                error.as_deref(),
            )
            .await?;
        let attention = match &result {
            Err(error) if error.is_permanent() => Some(error.to_string()),
            _ => None,
        };
        // A run that got through (or failed only for now) clears an earlier problem; a
        // cancelled one may have stopped before it showed anything, so it clears nothing.
        let clears = outcome != RunOutcome::Cancelled && mailbox.needs_attention.is_some();
        if attention.is_some() || clears {
            self.store
                .set_attention(mailbox.id, attention.as_deref(), self.clock.now_ms())
                .await?;
        }
        if outcome == RunOutcome::Success {
            self.record_notices(mailbox, &signs).await;
        }
        let set_aside = match self.store.set_aside_count(mailbox.id).await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(%error, "could not count the set-aside messages");
                0
            }
        };
        lease.release().await;
        Ok(FetchReport {
            run_id,
            counts,
            outcome,
            error,
            processing,
            login_delay_secs,
            failed_message,
            set_aside_now: set_aside_now.into_iter().map(|(uid, _)| uid).collect(),
            set_aside,
            signs,
        })
    }

    /// Brings the mailbox's provider notices up to date with what a successful run saw.
    /// A notice is information for the admin: failing to record one is logged and the
    /// run's outcome stands.
    async fn record_notices(&self, mailbox: &Mailbox, signs: &ProviderSigns) {
        if !signs.listed {
            return;
        }
        let now = self.clock.now_ms();
        let result = async {
            let notices = self.store.provider_notices(mailbox.id).await?;
            let stopped = signs.stopped(&notices, now);
            self.store
                .update_provider_notices(mailbox.id, &signs.counts(), &stopped, now)
                .await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(mailbox = %mailbox.settings.name, %error, "could not record what the provider does with deleted mail");
        }
    }
}

struct Run<'a> {
    fetcher: &'a Fetcher,
    mailbox: &'a Mailbox,
    lease: &'a LeaseGuard,
    run_id: i64,
    counts: RunCounts,
    progress: Progress,
    /// Known uids already counted, so a run of many sessions counts each once.
    known_seen: HashSet<String>,
    /// The ledger rows (uid → entry) of the UIDLs this run was shown, each read once per
    /// run and kept current with what the run commits and deletes: a run of many
    /// sessions does not read the ledger again for each (at 20,000 messages in sessions
    /// of 1,000 that was twenty reads of the whole ledger), nor the rows of mail deleted
    /// long ago, which stay in the ledger for good. The lease makes this run the
    /// ledger's only writer meanwhile; every change is written to the database first and
    /// mirrored here only once it is committed, so this copy never knows more than the
    /// database.
    ledger: HashMap<String, LedgerEntry>,
    /// UIDLs whose row (or lack of one) is in `ledger`.
    ledger_read: HashSet<String>,
    processing: ProcessReport,
    /// Deletions whose QUIT was not answered +OK, and what the server said.
    unconfirmed_deletes: u64,
    quit_problem: Option<String>,
    /// The LOGIN-DELAY the server announced after login, in seconds.
    login_delay_secs: Option<u64>,
    /// The UIDL of the message whose failed download ended the run.
    failed_message: Option<String>,
    /// Messages set aside in this run: UIDL and the last error.
    set_aside_now: Vec<(String, String)>,
    /// What the provider was seen doing with deleted mail.
    signs: ProviderSigns,
    /// UIDLs whose deletion the server had confirmed, listed again in this run.
    kept: HashSet<String>,
    cancel: CancellationToken,
    /// Tells the processor task that a batch was committed.
    processing_wake: Option<mpsc::Sender<()>>,
}

/// The processor task of one run ([`Fetcher::with_processor`]). It wakes when a batch is
/// committed, processes everything pending, and sleeps again; once the run drops its
/// sender it makes a last pass and returns what it did. Its queue holds one wake-up: a
/// pass always takes everything pending, so more would add nothing.
struct BackgroundProcessing {
    wake: mpsc::Sender<()>,
    task: tokio::task::JoinHandle<ProcessReport>,
}

impl BackgroundProcessing {
    fn start(processor: Processor, cancel: CancellationToken) -> BackgroundProcessing {
        let (wake, mut woken) = mpsc::channel::<()>(1);
        let task = tokio::spawn(async move {
            let mut report = ProcessReport::default();
            let mut fetching = true;
            while fetching {
                fetching = woken.recv().await.is_some();
                // When cancelled, what was stored stays pending for the next run (or the
                // service's processor) rather than delaying the shutdown.
                if cancel.is_cancelled() {
                    break;
                }
                match processor.process_pending().await {
                    Ok(done) => report.add(&done),
                    // Fetching goes on: the messages are stored and stay pending.
                    Err(error) => tracing::warn!(
                        %error,
                        "processing stored messages failed; they stay pending"
                    ),
                }
            }
            report
        });
        BackgroundProcessing { wake, task }
    }

    fn waker(&self) -> mpsc::Sender<()> {
        self.wake.clone()
    }

    /// Waits for the last pass (the run has dropped its sender).
    async fn finish(self) -> ProcessReport {
        drop(self.wake);
        match self.task.await {
            Ok(report) => report,
            Err(error) => {
                tracing::warn!(%error, "the processor task of the run failed; messages stay pending");
                ProcessReport::default()
            }
        }
    }
}

/// What one session is to do.
struct SessionWork {
    plan: Plan,
    /// Failing messages still tried: each retrieved first, on its own, lock-step.
    probes: Vec<Listed>,
    /// Failing messages whose `TOP n 0` was not tried yet, and whether each is set aside.
    headers: Vec<(Listed, bool)>,
}

/// How a session ended, when it did not fail the run.
enum SessionEnd {
    Done,
    /// A message was set aside on a connection that is now gone: a fresh session carries
    /// on with the rest.
    Again,
    /// The session's time budget ([`Fetcher::with_session_budget`]) ended it, with QUIT,
    /// before its whole batch was asked for: the next session carries on.
    Cut,
}

impl Run<'_> {
    fn store(&self) -> &Store {
        &self.fetcher.store
    }

    /// What the session signs in with: the stored password, or the connection's access
    /// token (renewed first when it is about to expire, or when `refused` is the one the
    /// server just turned down).
    async fn sign_in_secret(
        &self,
        refused: Option<&SecretString>,
    ) -> Result<SecretString, FetchError> {
        if self.mailbox.settings.oauth.is_none() {
            return Ok(self.store().mailbox_secret(self.mailbox.id).await?);
        }
        Ok(self
            .fetcher
            .oauth
            .access_token(self.mailbox, refused)
            .await?)
    }

    /// Connects and signs in. An OAuth2 token the server refuses mid-life (revoked
    /// early, or the clocks disagree) is renewed once and tried again.
    async fn open(&self) -> Result<Client, FetchError> {
        let settings = &self.mailbox.settings;
        let secret = self.sign_in_secret(None).await?;
        let plan = session_plan(settings, &secret, &self.fetcher.session)?;
        match cancellable(&self.cancel, open_session(&plan)).await {
            Err(FetchError::Pop3(error)) if error.is_auth() && settings.oauth.is_some() => {
                tracing::info!(mailbox = %settings.name, %error, "the server refused the OAuth2 token; renewing it once");
                let renewed = self.sign_in_secret(Some(&secret)).await?;
                let plan = session_plan(settings, &renewed, &self.fetcher.session)?;
                cancellable(&self.cancel, open_session(&plan)).await
            }
            other => other,
        }
    }

    async fn execute(&mut self) -> Result<(), FetchError> {
        let settings = &self.mailbox.settings;
        let mut started = self.mailbox.started;
        let mut first_session = true;
        // Without UIDL: how many messages the last session listed, and whether it stored
        // anything new.
        let mut last_without_uidl: Option<(usize, bool)> = None;
        loop {
            if self.lease.is_lost() {
                return Err(FetchError::LeaseLost);
            }
            if self.cancel.is_cancelled() {
                return Err(FetchError::Cancelled);
            }
            let mut client = self.open().await?;
            if let Some(delay) = client.capabilities().login_delay() {
                self.login_delay_secs = Some(delay);
            }
            let (mut listed, has_uidl) =
                cancellable(&self.cancel, list_messages(&mut client)).await?;
            self.signs.listed = true;
            if !has_uidl {
                self.signs.without_uidl = true;
                self.signs.no_uidl = self.signs.no_uidl.max(listed.len() as u64);
            }
            let shared_uidls = drop_duplicate_uidls(&mut listed);
            self.signs.duplicate_uidls = self.signs.duplicate_uidls.max(shared_uidls);
            // Messages known only by their content this session: no UIDL, or a shared one.
            let anonymous = listed.iter().any(|m| m.uid.is_none());
            if first_session {
                self.counts.listed = listed.len() as u64;
            }
            if !has_uidl && matches!(settings.policy, Policy::Keep { .. }) {
                return Err(FetchError::KeepNeedsUidl);
            }
            if !started && settings.start == StartMode::Now {
                // "Only mail arriving from now on": remember what is there, import nothing.
                let uids: Vec<String> = listed.iter().filter_map(|m| m.uid.clone()).collect();
                let now = self.fetcher.clock.now_ms();
                self.store()
                    .seed_ledger(self.mailbox.id, &uids, now)
                    .await?;
                self.store().mark_started(self.mailbox.id, now).await?;
                self.counts.already_known = uids.len() as u64;
                let _ = client.quit().await;
                return Ok(());
            }
            if let Some((previously_listed, stored_new)) = last_without_uidl
                && anonymous
                && !stored_new
                && listed.len() >= previously_listed
            {
                // Without UIDL a message is only recognised once downloaded. The last
                // session stored nothing new and the mailbox did not shrink (its QUIT
                // failed, or the server keeps mail): this session would download the
                // same messages again, and so would every one after it. Stop; the next
                // run carries on.
                let _ = client.quit().await;
                return Ok(());
            }
            let work = self.plan(&listed).await?;
            let session_plan = &work.plan;
            if self.cancel.is_cancelled() {
                // Nothing retrieved yet: drop the connection without QUIT.
                return Err(FetchError::Cancelled);
            }
            if first_session {
                self.progress.total = (session_plan.download.len()
                    + session_plan.remaining
                    + session_plan.headers_only.len()
                    + work.probes.len()) as u64;
                self.report_progress();
            }
            let more = session_plan.remaining > 0 && !session_plan.download.is_empty();
            let stored_before = self.counts.downloaded;
            let again = match self.session(client, &listed, work).await? {
                SessionEnd::Done => false,
                SessionEnd::Again | SessionEnd::Cut => true,
            };
            if anonymous {
                last_without_uidl = Some((listed.len(), self.counts.downloaded > stored_before));
            }
            if !started {
                self.store()
                    .mark_started(self.mailbox.id, self.fetcher.clock.now_ms())
                    .await?;
                started = true;
            }
            self.store()
                .update_run_counts(self.run_id, &self.counts)
                .await?;
            first_session = false;
            if !more && !again {
                return Ok(());
            }
            if self.login_delay_secs.is_some_and(|delay| delay > 0) {
                // Another session would be another login sooner than the server allows;
                // the next run (which the scheduler times by the delay) carries on.
                tracing::info!(
                    mailbox = %settings.name,
                    login_delay_secs = self.login_delay_secs,
                    "the server's LOGIN-DELAY allows one session per run; the rest comes next run"
                );
                return Ok(());
            }
        }
    }

    /// Plans one session: what the ledger and the policy say, with failing messages taken
    /// out of the batch — those still tried come first, on their own (`probes`); those
    /// set aside are left alone. `headers` are failing messages whose `TOP n 0` was not
    /// tried yet.
    async fn plan(&mut self, listed: &[Listed]) -> Result<SessionWork, FetchError> {
        // Only the rows of UIDLs this run has not looked up yet: all of them at the first
        // listing, then only mail that arrived (or that a provider listing part of the
        // mailbox, like Gmail, showed) since.
        let unread: Vec<String> = listed
            .iter()
            .filter_map(|m| m.uid.as_ref())
            .filter(|uid| !self.ledger_read.contains(*uid))
            .cloned()
            .collect();
        if !unread.is_empty() {
            for entry in self
                .store()
                .ledger_entries(self.mailbox.id, &unread)
                .await?
            {
                self.ledger.insert(entry.uid.clone(), entry);
            }
            self.ledger_read.extend(unread);
        }
        let settings = &self.mailbox.settings;
        let ledger = &self.ledger;
        for message in listed {
            let Some(uid) = &message.uid else { continue };
            let Some(entry) = ledger.get(uid) else {
                continue;
            };
            if self.known_seen.insert(uid.clone()) {
                self.counts.already_known += 1;
            }
            // The server confirmed its deletion (QUIT answered +OK) and lists it again:
            // it keeps what popdesk deletes.
            if entry.deleted_at.is_some() {
                self.kept.insert(uid.clone());
            }
        }
        let mut failing: HashMap<String, FailingMessage> = self
            .store()
            .failing_messages(self.mailbox.id)
            .await?
            .into_iter()
            .map(|message| (message.uid.clone(), message))
            .collect();
        if !failing.is_empty() && listed.iter().any(|m| m.uid.is_some()) {
            // Messages removed on the server meanwhile are no longer failing.
            let present: Vec<String> = listed.iter().filter_map(|m| m.uid.clone()).collect();
            if self
                .store()
                .forget_absent_failing(self.mailbox.id, &present)
                .await?
                > 0
            {
                failing.retain(|uid, _| present.contains(uid));
            }
        }
        let mut eligible = Vec::with_capacity(listed.len());
        let mut probes = Vec::new();
        let mut headers = Vec::new();
        for message in listed {
            let uid = message.uid.as_deref().unwrap_or_default();
            match failing.get(uid) {
                Some(failing) if !ledger.contains_key(uid) => {
                    if !failing.headers_tried {
                        headers.push((message.clone(), failing.is_set_aside()));
                    }
                    if !failing.is_set_aside() {
                        probes.push(message.clone());
                    }
                }
                _ => eligible.push(message.clone()),
            }
        }
        let rules = Rules {
            policy: settings.policy,
            max_size: settings.max_size,
            oversize: settings.oversize,
            batch_messages: settings.batch_messages,
            batch_bytes: settings.batch_bytes,
            now: self.fetcher.clock.now_ms(),
        };
        Ok(SessionWork {
            plan: plan_session(&eligible, ledger, &rules),
            probes,
            headers,
        })
    }

    /// One session's batch: download, persist, commit, delete, quit.
    ///
    /// A download that breaks off keeps what arrived whole: it is committed (durable,
    /// in the ledger) and the connection is then dropped without QUIT, as after any
    /// failure. The message it broke off is charged with the failure
    /// ([`Run::message_failed`]).
    async fn session(
        &mut self,
        mut client: Client,
        listed: &[Listed],
        work: SessionWork,
    ) -> Result<SessionEnd, FetchError> {
        let SessionWork {
            plan,
            probes,
            headers: header_probes,
        } = work;
        let by_number: HashMap<u32, &Listed> = listed.iter().map(|m| (m.number, m)).collect();
        let blobs = self.store().blobs().clone();

        // What a failing message looks like, for the admin, before it is tried again
        // (the try may break the connection).
        for (message, set_aside) in &header_probes {
            let uid = message.uid.as_deref().unwrap_or_default();
            let mut sink = HeaderSink::new(body_limit(message.size.min(HEADER_LIMIT)));
            let numbers = [message.number];
            match interruptible(&self.cancel, client.top_batch(&numbers, 0, &mut sink)).await? {
                Ok(()) => {
                    let text = sink
                        .headers
                        .map(|octets| String::from_utf8_lossy(&octets).into_owned());
                    self.store()
                        .record_failing_headers(self.mailbox.id, uid, text.as_deref())
                        .await?;
                }
                // Set aside already: no headers then, and a fresh session for the rest.
                Err(_) if *set_aside => {
                    self.store()
                        .record_failing_headers(self.mailbox.id, uid, None)
                        .await?;
                    return Ok(SessionEnd::Again);
                }
                Err(error) => return self.message_failed(Some(message), 0, error).await,
            }
        }

        let mut progress = self.progress;
        let progress_fn = self.fetcher.progress.clone();
        let mut on_message = |bytes: u64| {
            progress.done += 1;
            progress.bytes += bytes;
            if let Some(report) = &progress_fn {
                report(progress);
            }
        };
        let limits: HashMap<u32, u64> = listed
            .iter()
            .map(|m| (m.number, body_limit(m.size)))
            .collect();
        let max_size = self.mailbox.settings.max_size;
        let header_limits: HashMap<u32, u64> = plan
            .headers_only
            .iter()
            .map(|m| (m.number, body_limit(m.size.min(max_size))))
            .collect();
        let mut headers = Vec::new();
        let mut downloaded = Vec::new();
        // The failure that broke the downloads off, and the message it struck.
        let mut interrupted: Option<(Option<u32>, u64, pop3::Error)> = None;
        // Downloading changes nothing on the server and commits nothing here: a cancel
        // drops the batch (its temp files go with their writers) and the connection,
        // without QUIT.

        // Messages that failed in an earlier run, each on its own and lock-step: one
        // that fails again is told apart from a network that failed once.
        for message in &probes {
            let numbers = [message.number];
            let mut sink = BatchSink::new(&blobs, &mut on_message).with_limits(&limits);
            let result =
                interruptible(&self.cancel, client.retr_batch(&numbers, &mut sink)).await?;
            downloaded.append(&mut sink.downloaded);
            if let Err(error) = result {
                if error.is_sink() {
                    return Err(sink_error(error));
                }
                interrupted = Some((Some(message.number), sink.octets_in_progress(), error));
                break;
            }
        }

        // Oversized messages: headers only, and they stay on the server.
        if interrupted.is_none() {
            let numbers: Vec<u32> = plan.headers_only.iter().map(|m| m.number).collect();
            let mut sink = BatchSink::new(&blobs, &mut on_message).with_limits(&header_limits);
            let result =
                interruptible(&self.cancel, client.top_batch(&numbers, 0, &mut sink)).await?;
            if let Err(error) = result {
                if error.is_sink() {
                    return Err(sink_error(error));
                }
                interrupted = Some((sink.unfinished(&numbers), sink.octets_in_progress(), error));
            }
            headers.append(&mut sink.downloaded);
        }

        // The batch's messages are made durable in parts while the download goes on (see
        // [`Committer`]); DELE and QUIT still wait for every part.
        let mut numbers_committed = Vec::new();
        // Whether the session's time budget left messages of its plan for the next one.
        let mut cut = false;
        if interrupted.is_none() && !plan.download.is_empty() {
            let numbers: Vec<u32> = plan.download.iter().map(|m| m.number).collect();
            let committer = Committer::start(self, listed);
            let fetcher = self.fetcher;
            let mut sink = BatchSink::new(&blobs, &mut on_message)
                .with_limits(&limits)
                .with_handoff(committer.parts.clone(), PART_MESSAGES, PART_BYTES)
                .with_budget(fetcher.clock.as_ref(), fetcher.session_budget);
            let result = interruptible(&self.cancel, client.retr_batch(&numbers, &mut sink)).await;
            let leftover = std::mem::take(&mut sink.downloaded);
            let unfinished = sink.unfinished(&numbers);
            let octets = sink.octets_in_progress();
            drop(sink);
            // Whatever happened to the download, what was handed over is committed (or
            // failed to be) before anything else: it is counted, and deleted only when
            // the session ends well.
            let committed = committer.finish().await;
            for part in committed.parts {
                numbers_committed.extend(self.account(part));
            }
            if let Some(error) = committed.error {
                return Err(error);
            }
            match result? {
                // The batch ended well without these: the budget stopped asking for them.
                Ok(()) => cut = unfinished.is_some(),
                Err(error) if error.is_sink() => return Err(sink_error(error)),
                Err(error) => interrupted = Some((unfinished, octets, error)),
            }
            downloaded.extend(leftover);
        }
        self.progress = progress;

        numbers_committed.extend(self.commit(headers, downloaded, &by_number).await?);
        if let Some((number, octets, error)) = interrupted {
            // The connection is broken: dropped without QUIT, so nothing of this session
            // is hidden or deleted; what was committed is deleted by a later session.
            let message = number.and_then(|n| by_number.get(&n).copied());
            return self.message_failed(message, octets, error).await;
        }

        // Delete what is committed (policy delete) and what the policy says is old enough.
        let mut to_delete: Vec<u32> = plan.delete_known.iter().map(|m| m.number).collect();
        if self.mailbox.settings.policy == Policy::Delete {
            for (number, status) in &numbers_committed {
                let headers_only = *status == RawStatus::TooLarge
                    && plan.headers_only.iter().any(|m| m.number == *number);
                if !headers_only {
                    to_delete.push(*number);
                }
            }
        }
        // Another node took the mailbox over (our renewals failed for a whole lease
        // time): what is committed stays, and the connection is dropped without QUIT.
        if self.lease.is_lost() {
            return Err(FetchError::LeaseLost);
        }
        // The session's parts were committed without a sync each: one sync for all of
        // them before the server is told to delete anything (promise 1), and before
        // QUIT, after which some providers hide what was retrieved.
        self.store().sync_commits().await?;
        let deleted = client.dele_batch(&to_delete).await?;
        let deleted_uids: Vec<String> = deleted
            .iter()
            .filter(|(_, result)| result.is_ok())
            .filter_map(|(number, _)| by_number.get(number).and_then(|m| m.uid.clone()))
            .collect();
        let deleted_count = deleted.iter().filter(|(_, r)| r.is_ok()).count() as u64;
        match client.quit().await {
            QuitOutcome::Committed => {
                self.counts.deleted += deleted_count;
                if !deleted_uids.is_empty() {
                    let now = self.fetcher.clock.now_ms();
                    self.store()
                        .mark_deleted(self.mailbox.id, &deleted_uids, now)
                        .await?;
                    // A later session of this run that lists them again sees a provider
                    // that keeps what it confirmed deleting, as the database now says.
                    for uid in &deleted_uids {
                        if let Some(entry) = self.ledger.get_mut(uid) {
                            entry.deleted_at = Some(now);
                        }
                    }
                }
            }
            // The ledger still knows these messages: the next session deletes them again.
            QuitOutcome::Unknown { reason } | QuitOutcome::NotCommitted { reason } => {
                tracing::warn!(%reason, "deletions of this session may not have happened");
                if deleted_count > 0 {
                    self.unconfirmed_deletes += deleted_count;
                    self.quit_problem = Some(reason);
                }
            }
        }
        Ok(if cut {
            SessionEnd::Cut
        } else {
            SessionEnd::Done
        })
    }

    /// Makes downloaded messages durable — files into place, directories fsync'd, then
    /// one transaction — and counts them. Returns each message's number and status.
    async fn commit(
        &mut self,
        headers: Vec<Downloaded>,
        downloaded: Vec<Downloaded>,
        by_number: &HashMap<u32, &Listed>,
    ) -> Result<Vec<(u32, RawStatus)>, FetchError> {
        let max_size = self.mailbox.settings.max_size;
        let items = commit_items(
            headers,
            downloaded,
            |number| by_number.get(&number).map(|m| (m.uid.clone(), m.size)),
            max_size,
        );
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let part = make_durable(
            self.store(),
            self.mailbox.id,
            items,
            self.fetcher.clock.as_ref(),
            self.processing_wake.as_ref(),
        )
        .await?;
        Ok(self.account(part))
    }

    /// Counts what a commit did and mirrors it in the run's copy of the ledger; returns
    /// each message's number and status.
    fn account(&mut self, part: CommittedPart) -> Vec<(u32, RawStatus)> {
        let numbers_committed = part.messages.iter().map(|m| (m.number, m.status)).collect();
        for item in part.messages {
            self.count(&item);
            let Some(uid) = item.uid else { continue };
            // Counted as downloaded, duplicate or too large: when a later session of
            // this run lists it again (its deletion did not happen), it is not also
            // "already known".
            self.known_seen.insert(uid.clone());
            // What commit_batch wrote to the ledger row: an existing row (seeded, or
            // headers only before) keeps its first_seen_at and is on the server again.
            let state = LedgerState::committed(item.outcome, item.status);
            let raw_message_id = Some(item.outcome.raw_message_id());
            self.ledger
                .entry(uid)
                .and_modify(|entry| {
                    entry.state = state;
                    entry.raw_message_id = raw_message_id;
                    entry.deleted_at = None;
                })
                .or_insert_with_key(|uid| LedgerEntry {
                    uid: uid.clone(),
                    state,
                    raw_message_id,
                    first_seen_at: part.at,
                    deleted_at: None,
                });
        }
        numbers_committed
    }

    /// Adds one committed message to the run's counts.
    fn count(&mut self, item: &CommittedMessage) {
        match (item.status, item.outcome) {
            (RawStatus::TooLarge, _) if item.size < item.server_size.unwrap_or(0) => {
                self.counts.too_large += 1
            }
            (_, CommitOutcome::Duplicate { .. }) => {
                self.counts.duplicates += 1;
                // Downloaded because its UIDL was new, yet its content was stored
                // already: the server offered known mail again under a new UIDL.
                // (Without a UIDL, mail is always recognised only this way.)
                if item.uid.is_some() {
                    self.signs.reoffered_under_new_uidl += 1;
                }
            }
            (RawStatus::TooLarge, CommitOutcome::Stored { .. }) => {
                self.counts.too_large += 1;
                self.counts.downloaded += 1;
                self.counts.bytes += item.size;
            }
            (RawStatus::Stored, CommitOutcome::Stored { .. }) => {
                self.counts.downloaded += 1;
                self.counts.bytes += item.size;
            }
        }
    }

    /// Charges a broken-off download to the message it struck. A message that has now
    /// failed the same way often enough is set aside and the run goes on with a fresh
    /// session; otherwise the run ends, and the next one tries the message first, on its
    /// own. A failure that is not the message's (or a message without UIDL, which cannot
    /// be recognised next time) is the session's, as before.
    async fn message_failed(
        &mut self,
        message: Option<&Listed>,
        octets: u64,
        error: pop3::Error,
    ) -> Result<SessionEnd, FetchError> {
        let (Some(message), Some(kind)) = (message, failure_kind(&error)) else {
            return Err(error.into());
        };
        let Some(uid) = message.uid.clone() else {
            return Err(error.into());
        };
        // Cut off at its limit, a body always breaks off at the same place, however the
        // octets before it were split into reads.
        let octets = match error {
            pop3::Error::BodyTooLong { limit, .. } => limit,
            _ => octets,
        };
        let text = error.to_string();
        let failing = self
            .store()
            .record_failed_retrieval(
                self.mailbox.id,
                &FailedRetrieval {
                    uid: &uid,
                    size: message.size,
                    kind,
                    error: &text,
                    octets,
                },
                self.fetcher.clock.now_ms(),
                self.fetcher.set_aside_after,
            )
            .await?;
        if failing.is_set_aside() {
            tracing::warn!(
                mailbox = %self.mailbox.settings.name,
                uid = %uid,
                attempts = failing.attempts.len(),
                error = %text,
                "message set aside: it stays on the server and is no longer retrieved"
            );
            self.set_aside_now.push((uid, text));
            return Ok(SessionEnd::Again);
        }
        self.failed_message = Some(uid.clone());
        Err(FetchError::MessageFailed {
            number: message.number,
            uid,
            size: message.size,
            attempts: failing.attempts.len(),
            set_aside_after: self.fetcher.set_aside_after,
            source: error,
        })
    }

    fn report_progress(&self) {
        if let Some(report) = &self.fetcher.progress {
            report(self.progress);
        }
    }
}

/// Messages per part that the [`Committer`] makes durable while the download goes on...
const PART_MESSAGES: usize = 100;
/// ... or octets per part, whichever comes first.
const PART_BYTES: u64 = 8 * 1024 * 1024;

/// A message about to be committed, with its number in the session.
struct CommitItem {
    number: u32,
    raw: NewRawMessage,
    blob: FinishedBlob,
}

/// The rows for downloaded messages (headers-only ones first). `listed` gives a
/// number's UIDL and LIST size; a message over `max_size` is stored as too large.
fn commit_items(
    headers: Vec<Downloaded>,
    downloaded: Vec<Downloaded>,
    listed: impl Fn(u32) -> Option<(Option<String>, u64)>,
    max_size: u64,
) -> Vec<CommitItem> {
    headers
        .into_iter()
        .map(|m| (m, RawStatus::TooLarge))
        .chain(downloaded.into_iter().map(|m| (m, RawStatus::Stored)))
        .map(|(message, status)| {
            let Downloaded {
                number,
                blob,
                message_id,
            } = message;
            let (uid, server_size) = match listed(number) {
                Some((uid, size)) => (uid, Some(size)),
                None => (None, None),
            };
            let status = match (status, server_size) {
                (RawStatus::Stored, Some(size)) if size > max_size => RawStatus::TooLarge,
                (status, _) => status,
            };
            CommitItem {
                number,
                raw: NewRawMessage {
                    uid,
                    sha256: blob.sha256.clone(),
                    size: blob.size,
                    server_size,
                    message_id,
                    status,
                },
                blob,
            }
        })
        .collect()
}

/// What the session and [`Run::account`] need of a committed message — not its digest
/// or Message-ID — so that what a long session has committed stays small in memory
/// until its DELEs.
struct CommittedMessage {
    number: u32,
    uid: Option<String>,
    status: RawStatus,
    size: u64,
    server_size: Option<u64>,
    outcome: CommitOutcome,
}

/// Messages committed in one transaction, and when (the ledger's `first_seen_at` of
/// the UIDLs it added).
struct CommittedPart {
    messages: Vec<CommittedMessage>,
    at: i64,
}

/// Files into place and fsync'd, then one transaction (promise 1); then the run's
/// processor is told.
async fn make_durable(
    store: &Store,
    mailbox_id: i64,
    items: Vec<CommitItem>,
    clock: &dyn Clock,
    processing_wake: Option<&mpsc::Sender<()>>,
) -> Result<CommittedPart, FetchError> {
    let part = persist_part(store, items).await?;
    commit_persisted(store, mailbox_id, part, clock, processing_wake).await
}

/// Messages whose files are in place and synced, not yet committed.
struct PersistedPart {
    raws: Vec<NewRawMessage>,
    numbers: Vec<u32>,
}

/// Moves a part's files into place and syncs them: the first half of [`make_durable`].
async fn persist_part(store: &Store, items: Vec<CommitItem>) -> Result<PersistedPart, FetchError> {
    let mut blobs: Vec<FinishedBlob> = Vec::with_capacity(items.len());
    let mut raws: Vec<NewRawMessage> = Vec::with_capacity(items.len());
    let mut numbers = Vec::with_capacity(items.len());
    for item in items {
        blobs.push(item.blob);
        raws.push(item.raw);
        numbers.push(item.number);
    }
    store.blobs().persist(blobs).await?;
    Ok(PersistedPart { raws, numbers })
}

/// Commits a persisted part and tells the run's processor: the second half of
/// [`make_durable`].
async fn commit_persisted(
    store: &Store,
    mailbox_id: i64,
    part: PersistedPart,
    clock: &dyn Clock,
    processing_wake: Option<&mpsc::Sender<()>>,
) -> Result<CommittedPart, FetchError> {
    let PersistedPart { raws, numbers } = part;
    let at = clock.now_ms();
    let outcomes = store.commit_part(mailbox_id, &raws, at).await?;
    if let Some(wake) = processing_wake {
        // Full means a pass is already due, and it takes this batch too.
        let _ = wake.try_send(());
    }
    let messages = raws
        .into_iter()
        .zip(numbers)
        .zip(outcomes)
        .map(|((raw, number), outcome)| CommittedMessage {
            number,
            uid: raw.uid,
            status: raw.status,
            size: raw.size,
            server_size: raw.server_size,
            outcome,
        })
        .collect();
    Ok(CommittedPart { messages, at })
}

/// Makes a session's messages durable in parts while the download goes on: the sink
/// hands over every [`PART_MESSAGES`] messages (or [`PART_BYTES`]); one task moves a
/// part's files into place and syncs them while another commits the part before it, so
/// the disk, the database and the network work at the same time, and the run's
/// processor gets mail early. A commit waiting for the processor's batch to release the
/// write lock no longer holds back the next part's sync. Parts commit in the order they
/// arrived. Nothing is deleted here: the session sends DELE only for what
/// [`Committer::finish`] reports as committed, and only when the whole session went
/// well. After a failed part nothing more is committed.
struct Committer {
    parts: mpsc::Sender<Vec<Downloaded>>,
    persister: tokio::task::JoinHandle<Option<FetchError>>,
    committer: tokio::task::JoinHandle<Committed>,
}

/// What a [`Committer`] made durable, part by part, and the failure that stopped it.
#[derive(Default)]
struct Committed {
    parts: Vec<CommittedPart>,
    error: Option<FetchError>,
}

impl Committer {
    fn start(run: &Run<'_>, listed: &[Listed]) -> Committer {
        // One part waits at each stage while one is being synced and one committed: the
        // download goes on meanwhile, and memory holds only file names.
        let (parts, mut received) = mpsc::channel::<Vec<Downloaded>>(1);
        let (persisted, mut to_commit) = mpsc::channel::<PersistedPart>(1);
        let store = run.store().clone();
        let mailbox_id = run.mailbox.id;
        let max_size = run.mailbox.settings.max_size;
        let clock = run.fetcher.clock.clone();
        let wake = run.processing_wake.clone();
        let listed: HashMap<u32, (Option<String>, u64)> = listed
            .iter()
            .map(|m| (m.number, (m.uid.clone(), m.size)))
            .collect();
        let persist_store = store.clone();
        let persister = tokio::spawn(async move {
            while let Some(part) = received.recv().await {
                if persisted.is_closed() {
                    // The commit task stopped at a failure of its own: nothing more is
                    // committed, so nothing more is moved into place.
                    break;
                }
                let items = commit_items(Vec::new(), part, |n| listed.get(&n).cloned(), max_size);
                match persist_part(&persist_store, items).await {
                    Ok(part) => {
                        if persisted.send(part).await.is_err() {
                            // The commit task stopped at a failure of its own.
                            break;
                        }
                    }
                    // The sink's next hand-over fails, which ends the download.
                    Err(error) => return Some(error),
                }
            }
            None
        });
        let committer = tokio::spawn(async move {
            let mut committed = Committed::default();
            while let Some(part) = to_commit.recv().await {
                match commit_persisted(&store, mailbox_id, part, clock.as_ref(), wake.as_ref())
                    .await
                {
                    Ok(part) => committed.parts.push(part),
                    Err(error) => {
                        committed.error = Some(error);
                        break;
                    }
                }
            }
            committed
        });
        Committer {
            parts,
            persister,
            committer,
        }
    }

    /// Waits until every part handed over is committed (the sink, which held the other
    /// sender, is gone).
    async fn finish(self) -> Committed {
        drop(self.parts);
        let failed = |error: tokio::task::JoinError| {
            FetchError::Store(store::StoreError::from(std::io::Error::other(format!(
                "the commit task failed: {error}"
            ))))
        };
        let persisted = self.persister.await;
        let mut committed = match self.committer.await {
            Ok(committed) => committed,
            Err(error) => Committed {
                parts: Vec::new(),
                error: Some(failed(error)),
            },
        };
        // A failed commit came first (its part arrived before the one being synced);
        // otherwise what stopped the syncs is the failure.
        if committed.error.is_none() {
            committed.error = match persisted {
                Ok(error) => error,
                Err(error) => Some(failed(error)),
            };
        }
        committed
    }
}

/// Runs `step` unless `cancel` fires first, in which case `step` is dropped where it
/// stands. Only for steps that commit nothing (connect, login, listing, downloading into
/// temp files); the caller then drops the connection without QUIT.
async fn cancellable<T>(
    cancel: &CancellationToken,
    step: impl Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(FetchError::Cancelled),
        result = step => result,
    }
}

/// Like [`cancellable`], for a download step whose own error the caller looks at (which
/// message it broke off, whether what arrived before it is kept).
async fn interruptible<T>(
    cancel: &CancellationToken,
    step: impl Future<Output = Result<T, pop3::Error>>,
) -> Result<Result<T, pop3::Error>, FetchError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(FetchError::Cancelled),
        result = step => Ok(result),
    }
}

/// A sink failure is a storage failure; anything else is the server's.
fn sink_error(error: pop3::Error) -> FetchError {
    match error {
        pop3::Error::Sink(io) => match io.downcast::<store::StoreError>() {
            Ok(store_error) => FetchError::Store(store_error),
            Err(io) => FetchError::Store(store::StoreError::from(io)),
        },
        other => FetchError::Pop3(other),
    }
}

/// `LIST`, and `UIDL` when the server has it (in one round trip when pipelining).
async fn list_messages(client: &mut Client) -> Result<(Vec<Listed>, bool), FetchError> {
    let capabilities = client.capabilities();
    // An old server without CAPA may still have UIDL: ask. One that lists its
    // capabilities without UIDL has none.
    let (sizes, uids) = if capabilities.uidl() || !capabilities.supported {
        client.list_with_uids().await?
    } else {
        (client.list().await?, None)
    };
    let has_uidl = uids.is_some();
    let uid_of: HashMap<u32, String> = uids
        .unwrap_or_default()
        .into_iter()
        .map(|entry| (entry.number, entry.uid.as_str().to_string()))
        .collect();
    let listed = sizes
        .into_iter()
        .map(|entry| Listed {
            number: entry.number,
            size: entry.size,
            uid: uid_of.get(&entry.number).cloned(),
        })
        .collect();
    Ok((listed, has_uidl))
}
