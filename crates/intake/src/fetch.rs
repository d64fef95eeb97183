//! One fetch run: lease, sessions of one batch each, store, commit, delete, quit.
//!
//! The order inside a session is what keeps promise 1: RETR into fsync'd temp files,
//! rename into the blob store and fsync the directories, commit the ledger and raw
//! message rows in one transaction — only then DELE, and QUIT only when everything
//! retrieved in the session is committed. Any failure before that drops the connection
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

use pop3::{Client, QuitOutcome};
use store::{
    CommitOutcome, Mailbox, NewRawMessage, Policy, RawStatus, RunCounts, RunOutcome, StartMode,
    Store,
};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::connect::{SessionOptions, open_session, session_plan};
use crate::error::FetchError;
use crate::lease::LeaseGuard;
use crate::plan::{Listed, Plan, Rules, plan_session};
use crate::process::{ProcessReport, Processor};
use crate::sink::{BatchSink, Downloaded};

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
    /// What processing after each batch made of the stored messages.
    pub processing: ProcessReport,
    /// The LOGIN-DELAY (RFC 2449) the server announced after login, in seconds: the
    /// scheduler never logs in to this mailbox more often than that. When the server
    /// announces one, a run uses a single session (one login) and the next run carries
    /// on with what is left.
    pub login_delay_secs: Option<u64>,
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
}

impl Fetcher {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Fetcher {
        Fetcher {
            store,
            clock,
            session: SessionOptions::default(),
            progress: None,
            processor: None,
            cancel: None,
        }
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

    /// Turns what each batch stored into tickets right after the batch's session.
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
        let lease = LeaseGuard::take(&self.store, mailbox.id, self.clock.clone()).await?;
        // Temp files of fetchers that were killed mid-message; those of live processes
        // sharing the data folder are left alone.
        match self.store.blobs().clean_temp().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed temp files of interrupted fetches"),
            Err(error) => tracing::warn!(%error, "could not clean up temp files"),
        }
        let run_id = self
            .store
            .start_run(mailbox.id, self.clock.now_ms())
            .await?;
        let mut run = Run {
            fetcher: self,
            mailbox,
            lease: &lease,
            run_id,
            counts: RunCounts::default(),
            progress: Progress::default(),
            known_seen: HashSet::new(),
            processing: ProcessReport::default(),
            unconfirmed_deletes: 0,
            quit_problem: None,
            login_delay_secs: None,
            // A token nobody cancels when none was given: one code path.
            cancel: self.cancel.clone().unwrap_or_default(),
        };
        let result = run.execute().await;
        let counts = run.counts;
        let processing = run.processing;
        let login_delay_secs = run.login_delay_secs;
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
            Ok(()) => (RunOutcome::Success, None),
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
        lease.release().await;
        Ok(FetchReport {
            run_id,
            counts,
            outcome,
            error,
            processing,
            login_delay_secs,
        })
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
    processing: ProcessReport,
    /// Deletions whose QUIT was not answered +OK, and what the server said.
    unconfirmed_deletes: u64,
    quit_problem: Option<String>,
    /// The LOGIN-DELAY the server announced after login, in seconds.
    login_delay_secs: Option<u64>,
    cancel: CancellationToken,
}

impl Run<'_> {
    fn store(&self) -> &Store {
        &self.fetcher.store
    }

    async fn execute(&mut self) -> Result<(), FetchError> {
        let settings = &self.mailbox.settings;
        let secret = self.store().mailbox_secret(self.mailbox.id).await?;
        let plan = session_plan(settings, &secret, &self.fetcher.session)?;
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
            let mut client = cancellable(&self.cancel, open_session(&plan)).await?;
            if let Some(delay) = client.capabilities().login_delay() {
                self.login_delay_secs = Some(delay);
            }
            let (listed, has_uidl) = cancellable(&self.cancel, list_messages(&mut client)).await?;
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
                && !has_uidl
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
            let session_plan = self.plan(&listed).await?;
            if self.cancel.is_cancelled() {
                // Nothing retrieved yet: drop the connection without QUIT.
                return Err(FetchError::Cancelled);
            }
            if first_session {
                self.progress.total = (session_plan.download.len()
                    + session_plan.remaining
                    + session_plan.headers_only.len()) as u64;
                self.report_progress();
            }
            let more = session_plan.remaining > 0 && !session_plan.download.is_empty();
            let stored_before = self.counts.downloaded;
            self.session(client, &listed, session_plan).await?;
            if !has_uidl {
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
            // When cancelled, what this batch stored stays pending for the next run (or
            // the service's processor) rather than delaying the shutdown.
            if let Some(processor) = self
                .fetcher
                .processor
                .as_ref()
                .filter(|_| !self.cancel.is_cancelled())
            {
                match processor.process_pending().await {
                    Ok(report) => self.processing.add(&report),
                    // Fetching goes on: the messages are stored and stay pending.
                    Err(error) => tracing::warn!(
                        %error,
                        "processing after the batch failed; messages stay pending"
                    ),
                }
            }
            first_session = false;
            if !more {
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

    async fn plan(&mut self, listed: &[Listed]) -> Result<Plan, FetchError> {
        let settings = &self.mailbox.settings;
        let ledger: HashMap<String, store::LedgerEntry> = self
            .store()
            .ledger(self.mailbox.id)
            .await?
            .into_iter()
            .map(|entry| (entry.uid.clone(), entry))
            .collect();
        for message in listed {
            if let Some(uid) = &message.uid
                && ledger.contains_key(uid)
                && self.known_seen.insert(uid.clone())
            {
                self.counts.already_known += 1;
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
        Ok(plan_session(listed, &ledger, &rules))
    }

    /// One session's batch: download, persist, commit, delete, quit.
    async fn session(
        &mut self,
        mut client: Client,
        listed: &[Listed],
        plan: Plan,
    ) -> Result<(), FetchError> {
        let by_number: HashMap<u32, &Listed> = listed.iter().map(|m| (m.number, m)).collect();
        let blobs = self.store().blobs().clone();
        let mut progress = self.progress;
        let progress_fn = self.fetcher.progress.clone();
        let mut on_message = |bytes: u64| {
            progress.done += 1;
            progress.bytes += bytes;
            if let Some(report) = &progress_fn {
                report(progress);
            }
        };

        // Oversized messages: headers only, and they stay on the server.
        let mut headers_sink = BatchSink::new(&blobs, &mut on_message);
        let numbers: Vec<u32> = plan.headers_only.iter().map(|m| m.number).collect();
        // Downloading changes nothing on the server and commits nothing here: a cancel
        // drops the batch (its temp files go with their writers) and the connection,
        // without QUIT.
        cancellable(&self.cancel, async {
            client
                .top_batch(&numbers, 0, &mut headers_sink)
                .await
                .map_err(sink_error)
        })
        .await?;
        let headers = std::mem::take(&mut headers_sink.downloaded);
        drop(headers_sink);

        let mut sink = BatchSink::new(&blobs, &mut on_message);
        let numbers: Vec<u32> = plan.download.iter().map(|m| m.number).collect();
        cancellable(&self.cancel, async {
            client
                .retr_batch(&numbers, &mut sink)
                .await
                .map_err(sink_error)
        })
        .await?;
        let downloaded = std::mem::take(&mut sink.downloaded);
        drop(sink);
        self.progress = progress;

        // Durable before anything is deleted: files into place, directories fsync'd,
        // then one transaction for the whole batch.
        let mut items = Vec::with_capacity(headers.len() + downloaded.len());
        let mut blobs_to_persist = Vec::with_capacity(items.capacity());
        let mut numbers_committed = Vec::with_capacity(items.capacity());
        for (message, status) in headers
            .into_iter()
            .map(|m| (m, RawStatus::TooLarge))
            .chain(downloaded.into_iter().map(|m| (m, RawStatus::Stored)))
        {
            let Downloaded {
                number,
                blob,
                message_id,
            } = message;
            let listed = by_number.get(&number);
            let server_size = listed.map(|m| m.size);
            let status = match (status, server_size) {
                (RawStatus::Stored, Some(size)) if size > self.mailbox.settings.max_size => {
                    RawStatus::TooLarge
                }
                (status, _) => status,
            };
            items.push(NewRawMessage {
                uid: listed.and_then(|m| m.uid.clone()),
                sha256: blob.sha256.clone(),
                size: blob.size,
                server_size,
                message_id,
                status,
            });
            numbers_committed.push((number, status));
            blobs_to_persist.push(blob);
        }
        if !items.is_empty() {
            blobs.persist(blobs_to_persist).await?;
        }
        let outcomes = if items.is_empty() {
            Vec::new()
        } else {
            self.store()
                .commit_batch(self.mailbox.id, &items, self.fetcher.clock.now_ms())
                .await?
        };
        // Counted below as downloaded, duplicate or too large: when a later session of
        // this run lists them again (their deletion did not happen), they are not also
        // "already known".
        for item in &items {
            if let Some(uid) = &item.uid {
                self.known_seen.insert(uid.clone());
            }
        }
        for (item, outcome) in items.iter().zip(&outcomes) {
            match (item.status, outcome) {
                (RawStatus::TooLarge, _) if item.size < item.server_size.unwrap_or(0) => {
                    self.counts.too_large += 1
                }
                (_, CommitOutcome::Duplicate { .. }) => self.counts.duplicates += 1,
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
                    self.store()
                        .mark_deleted(self.mailbox.id, &deleted_uids, self.fetcher.clock.now_ms())
                        .await?;
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
        Ok(())
    }

    fn report_progress(&self) {
        if let Some(report) = &self.fetcher.progress {
            report(self.progress);
        }
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
