//! The scheduler's loop on tokio: which mailbox runs when is decided by [`super::policy`];
//! this file only starts tasks, collects their results and keeps the board current.
//!
//! Each running mailbox has its own task holding one permit of a semaphore, so a slow or
//! huge mailbox occupies one slot and never the loop; due mailboxes start in the order
//! they fell due as permits free up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use store::{FetchRun, Mailbox, RunOutcome, Store};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::policy::{FinishedRun, RunEnd, Timing, random_unit};
use super::{Command, Phase, SchedulerConfig, SchedulerHandle, Shared, Slot, metrics};
use crate::clock::Clock;
use crate::error::FetchError;
use crate::fetch::{FetchReport, Fetcher};

/// After the store could not be read, try again this soon.
const RELOAD_RETRY: Duration = Duration::from_secs(5);
/// Runs read per mailbox at start-up to restore its last success and failure streak.
const HISTORY: u32 = 50;
/// The loop never sleeps shorter than this (a due time in the past must not spin it).
const MIN_SLEEP: Duration = Duration::from_millis(5);

/// Owns the polling loop; [`Scheduler::run`] drives it until shutdown.
///
/// A clone is the same scheduler (same board, same handles), so when a run ends
/// unexpectedly (a panic) a clone can run again and the handles the web service holds
/// keep working. One run at a time: a second waits for the first to end.
#[derive(Clone)]
pub struct Scheduler {
    store: Store,
    fetcher: Fetcher,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
    timing: Timing,
    shared: Arc<Shared>,
    /// Shared by the clones, held by the run in progress.
    commands: Arc<Mutex<mpsc::UnboundedReceiver<Command>>>,
}

/// What a mailbox's task hands back to the loop.
struct Finished {
    mailbox_id: i64,
    started_at: i64,
    finished_at: i64,
    result: TaskResult,
}

enum TaskResult {
    Ran {
        mailbox: Box<Mailbox>,
        // Boxed like the mailbox: a report is large beside the other variants.
        result: Box<Result<FetchReport, FetchError>>,
    },
    /// Disabled or stopped since it was planned (and not asked for explicitly).
    Skipped(Box<Mailbox>),
    /// Removed since it was planned.
    Removed,
    /// The mailbox could not be read, or the task failed: a transient failure.
    Failed(String),
}

impl Scheduler {
    /// A scheduler over the store's mailboxes. `fetcher` should already have its
    /// processor (`with_processor`): what a run stores is processed after each batch.
    /// `clock` times the schedule (and should be the fetcher's).
    pub fn new(
        store: Store,
        fetcher: Fetcher,
        clock: Arc<dyn Clock>,
        config: SchedulerConfig,
    ) -> (Scheduler, SchedulerHandle) {
        let (sender, commands) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(sender, clock.clone()));
        let handle = SchedulerHandle {
            shared: shared.clone(),
        };
        let timing = Timing::from_config(&config);
        let scheduler = Scheduler {
            store,
            fetcher,
            clock,
            config,
            timing,
            shared,
            commands: Arc::new(Mutex::new(commands)),
        };
        (scheduler, handle)
    }

    /// Polls until `shutdown` fires, then waits for the fetches in flight to stop at
    /// their safe points (each run's token is a child of `shutdown`) and returns.
    ///
    /// Called again after an earlier run ended abnormally, it carries on with the board
    /// as that run left it (last results, backoff, pending "fetch now" requests).
    pub async fn run(self, shutdown: CancellationToken) {
        let commands = self.commands.clone();
        let mut commands = commands.lock().await;
        let _phase = AbandonedPhase(self.shared.clone());
        let permits = Arc::new(Semaphore::new(self.config.max_concurrent.max(1)));
        let mut tasks: JoinSet<Finished> = JoinSet::new();
        // Which mailbox a task runs, for a task that panicked.
        let mut task_mailboxes: HashMap<tokio::task::Id, i64> = HashMap::new();
        self.forget_abandoned_runs();
        let mut next_reload = Instant::now() + self.reload().await;
        {
            let mut board = self.shared.board();
            if board.phase == Phase::Starting {
                board.phase = Phase::Running;
            }
        }
        tracing::info!(
            mailboxes = self.shared.board().mailboxes.len(),
            max_concurrent = self.config.max_concurrent,
            "scheduler started"
        );
        loop {
            if !shutdown.is_cancelled() {
                self.start_due(&permits, &mut tasks, &mut task_mailboxes, &shutdown);
            }
            let sleep = self.sleep_time();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(joined) = tasks.join_next_with_id() => {
                    self.settle(joined, &mut task_mailboxes);
                }
                Some(command) = commands.recv() => {
                    if command == Command::Reload {
                        next_reload = Instant::now() + self.reload().await;
                    }
                }
                () = tokio::time::sleep_until(next_reload) => {
                    next_reload = Instant::now() + self.reload().await;
                }
                () = tokio::time::sleep(sleep) => {}
            }
        }
        self.shared.board().phase = Phase::Stopping;
        tracing::info!(
            running = tasks.len(),
            "scheduler stopping; fetches in flight stop at safe points"
        );
        while let Some(joined) = tasks.join_next_with_id().await {
            self.settle(joined, &mut task_mailboxes);
        }
        self.shared.board().phase = Phase::Stopped;
        tracing::info!("scheduler stopped");
    }

    /// A run that ended abnormally dropped its fetch tasks (which stopped where they
    /// were, like a killed process: nothing is deleted that is not stored). Their
    /// mailboxes are not running any more; they are polled again soon. (Their leases
    /// expire on their own: until then such a mailbox is reported busy.)
    fn forget_abandoned_runs(&self) {
        let now = self.clock.now_ms();
        let mut board = self.shared.board();
        for slot in board.mailboxes.values_mut().filter(|slot| slot.running) {
            tracing::warn!(
                mailbox = %slot.name,
                "a fetch was abandoned when the scheduler stopped unexpectedly"
            );
            slot.running = false;
            slot.reloaded_while_running = false;
            slot.next_due = Some(self.timing.first_poll(now, slot.interval_ms, random_unit()));
        }
    }

    /// Starts every due mailbox there is a permit for, the longest-due first.
    fn start_due(
        &self,
        permits: &Arc<Semaphore>,
        tasks: &mut JoinSet<Finished>,
        task_mailboxes: &mut HashMap<tokio::task::Id, i64>,
        shutdown: &CancellationToken,
    ) {
        let now = self.clock.now_ms();
        let mut board = self.shared.board();
        let mut due: Vec<(i64, i64)> = board
            .mailboxes
            .values()
            .filter_map(|slot| {
                slot.due()
                    .filter(|due| *due <= now)
                    .map(|due| (due, slot.id))
            })
            .collect();
        due.sort_unstable();
        for (_, mailbox_id) in due {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            let Some(slot) = board.mailboxes.get_mut(&mailbox_id) else {
                continue;
            };
            let requested = slot.requested_at.take().is_some();
            slot.running = true;
            slot.last_poll_at = Some(now);
            tracing::debug!(mailbox = %slot.name, requested, "fetch starts");
            let task = poll_mailbox(
                self.store.clone(),
                self.fetcher.clone().with_cancel(shutdown.child_token()),
                self.clock.clone(),
                mailbox_id,
                requested,
                permit,
            );
            let handle = tasks.spawn(task);
            task_mailboxes.insert(handle.id(), mailbox_id);
        }
    }

    /// How long the loop may sleep: until the next due time, at most one tick.
    fn sleep_time(&self) -> Duration {
        let now = self.clock.now_ms();
        let next = self
            .shared
            .board()
            .mailboxes
            .values()
            .filter_map(Slot::due)
            .min();
        match next {
            Some(due) if due > now => {
                let until = Duration::from_millis(u64::try_from(due - now).unwrap_or(0));
                until.min(self.config.tick).max(MIN_SLEEP)
            }
            // Due but no permit free: a finishing task wakes the loop.
            _ => self.config.tick.max(MIN_SLEEP),
        }
    }

    /// Takes in a finished task.
    fn settle(
        &self,
        joined: Result<(tokio::task::Id, Finished), JoinError>,
        task_mailboxes: &mut HashMap<tokio::task::Id, i64>,
    ) {
        let finished = match joined {
            Ok((id, finished)) => {
                task_mailboxes.remove(&id);
                finished
            }
            Err(error) => {
                // A bug, not the mailbox's fault; count it as a transient failure so the
                // mailbox is retried with backoff rather than forgotten.
                let Some(mailbox_id) = task_mailboxes.remove(&error.id()) else {
                    return;
                };
                tracing::error!(mailbox_id, %error, "a fetch task failed");
                let now = self.clock.now_ms();
                Finished {
                    mailbox_id,
                    started_at: now,
                    finished_at: now,
                    result: TaskResult::Failed(format!("the fetch task failed: {error}")),
                }
            }
        };
        let mut board = self.shared.board();
        let Some(slot) = board.mailboxes.get_mut(&finished.mailbox_id) else {
            return;
        };
        slot.running = false;
        let end = match finished.result {
            TaskResult::Removed => {
                board.mailboxes.remove(&finished.mailbox_id);
                return;
            }
            TaskResult::Skipped(mailbox) => {
                slot.refresh(&mailbox);
                return;
            }
            TaskResult::Failed(error) => {
                slot.consecutive_failures += 1;
                slot.last_error = Some(error);
                RunEnd::Transient
            }
            TaskResult::Ran { mailbox, result } => {
                // Settings read by a reload during the run are newer than the task's.
                if !std::mem::take(&mut slot.reloaded_while_running) {
                    slot.refresh(&mailbox);
                }
                slot.record(*result, finished.finished_at)
            }
        };
        let run = FinishedRun {
            started_at: finished.started_at,
            finished_at: finished.finished_at,
            interval_ms: slot.interval_ms,
            consecutive_failures: slot.consecutive_failures,
            login_delay_ms: slot.login_delay_ms,
        };
        slot.next_due = self.timing.next_poll(end, &run, random_unit());
        match end {
            RunEnd::Permanent => tracing::warn!(
                mailbox = %slot.name,
                reason = slot.needs_attention.as_deref().unwrap_or(""),
                "mailbox stopped until the admin acts"
            ),
            RunEnd::Transient => tracing::info!(
                mailbox = %slot.name,
                failures = slot.consecutive_failures,
                retry_in_ms = slot.next_due.map(|due| due - finished.finished_at),
                "fetch failed; backing off"
            ),
            _ => {}
        }
    }

    /// Reads the mailboxes from the store and merges them into the board. Returns when
    /// to read them again.
    async fn reload(&self) -> Duration {
        let mailboxes = match self.store.mailboxes().await {
            Ok(mailboxes) => mailboxes,
            Err(error) => {
                tracing::warn!(%error, "the scheduler could not read the mailboxes");
                return RELOAD_RETRY;
            }
        };
        // History for mailboxes new to the board, read before taking the lock.
        let known: Vec<i64> = self.shared.board().mailboxes.keys().copied().collect();
        let mut set_aside = HashMap::new();
        if mailboxes.iter().any(|m| !known.contains(&m.id)) {
            match self.store.set_aside_counts().await {
                Ok(counts) => set_aside.extend(counts),
                Err(error) => {
                    tracing::warn!(%error, "could not count the set-aside messages");
                }
            }
        }
        let mut histories = HashMap::new();
        for mailbox in mailboxes.iter().filter(|m| !known.contains(&m.id)) {
            match self.store.runs(mailbox.id, HISTORY).await {
                Ok(runs) => {
                    histories.insert(mailbox.id, runs);
                }
                Err(error) => {
                    tracing::warn!(mailbox = %mailbox.settings.name, %error, "could not read the fetch history");
                }
            }
        }
        let now = self.clock.now_ms();
        let mut board = self.shared.board();
        board.mailboxes.retain(|id, slot| {
            // A running one is dropped when its task finds it gone.
            slot.running || mailboxes.iter().any(|m| m.id == *id)
        });
        for mailbox in &mailboxes {
            match board.mailboxes.get_mut(&mailbox.id) {
                Some(slot) => slot.reload(mailbox, &self.timing, now),
                None => {
                    let runs = histories.remove(&mailbox.id).unwrap_or_default();
                    let slot = Slot::new(mailbox, &runs, &self.timing, now);
                    if let Some(at) = slot.last_success_at {
                        metrics::record_last_success(&slot.name, at);
                    }
                    metrics::record_set_aside(
                        &slot.name,
                        set_aside.get(&mailbox.id).copied().unwrap_or(0),
                    );
                    board.mailboxes.insert(mailbox.id, slot);
                }
            }
        }
        for id in std::mem::take(&mut board.unknown_requests) {
            match board.mailboxes.get_mut(&id) {
                Some(slot) => {
                    slot.requested_at.get_or_insert(now);
                }
                None => tracing::warn!(mailbox_id = id, "fetch now asked for an unknown mailbox"),
            }
        }
        board.reload_pending = false;
        self.config.reload_every
    }
}

/// Puts the board back to "starting" when a run is dropped before it stopped (it
/// panicked): the handles then queue requests for the next run instead of reporting a
/// loop that is gone as running.
struct AbandonedPhase(Arc<Shared>);

impl Drop for AbandonedPhase {
    fn drop(&mut self) {
        let mut board = self.0.board();
        if board.phase != Phase::Stopped {
            board.phase = Phase::Starting;
        }
    }
}

/// One scheduled fetch, in its own task. The permit is held until the run is over.
async fn poll_mailbox(
    store: Store,
    fetcher: Fetcher,
    clock: Arc<dyn Clock>,
    mailbox_id: i64,
    requested: bool,
    _permit: OwnedSemaphorePermit,
) -> Finished {
    let started_at = clock.now_ms();
    let finish = |result| Finished {
        mailbox_id,
        started_at,
        finished_at: clock.now_ms(),
        result,
    };
    // Read afresh: the settings may have changed since the board was last loaded, and
    // the fetcher decides from `needs_attention` whether a success clears it.
    let mailbox = match store.mailbox_by_id(mailbox_id).await {
        Ok(Some(mailbox)) => mailbox,
        Ok(None) => return finish(TaskResult::Removed),
        Err(error) => return finish(TaskResult::Failed(error.to_string())),
    };
    let stopped = !mailbox.settings.enabled || mailbox.needs_attention.is_some();
    if stopped && !requested {
        return finish(TaskResult::Skipped(Box::new(mailbox)));
    }
    let began = Instant::now();
    let result = fetcher.fetch(&mailbox).await;
    let finished = finish(TaskResult::Ran {
        mailbox: Box::new(mailbox.clone()),
        result: Box::new(result),
    });
    if let TaskResult::Ran { result, .. } = &finished.result {
        let took = began.elapsed();
        log_run(&mailbox.settings.name, result, took);
        metrics::record_run(&mailbox.settings.name, result, took, finished.finished_at);
    }
    finished
}

/// One line per scheduled run at the default level, so an operator sees mail coming in
/// without turning on debug logs. Runs that did not get under way (another process holds
/// the lease, the server refused us) are logged by [`Scheduler::settle`] as failures.
fn log_run(mailbox: &str, result: &Result<FetchReport, FetchError>, took: Duration) {
    let Ok(report) = result else {
        return;
    };
    // Hundredths of a second are plenty, and keep the line short.
    let seconds = (took.as_secs_f64() * 100.0).round() / 100.0;
    tracing::info!(
        mailbox,
        outcome = report.outcome.as_str(),
        downloaded = report.counts.downloaded,
        deleted = report.counts.deleted,
        seconds,
        "fetch run finished"
    );
}

impl Slot {
    /// A mailbox new to the board: its history restored from the stored runs, its first
    /// poll soon.
    fn new(mailbox: &Mailbox, runs: &[FetchRun], timing: &Timing, now: i64) -> Slot {
        let interval_ms = interval_ms(mailbox);
        let mut consecutive_failures = 0;
        for run in runs {
            match run.outcome {
                RunOutcome::Success => break,
                RunOutcome::Transient | RunOutcome::Permanent => consecutive_failures += 1,
                // Neither a success nor the mailbox's failure.
                RunOutcome::Cancelled | RunOutcome::Interrupted | RunOutcome::Running => {}
            }
        }
        Slot {
            id: mailbox.id,
            name: mailbox.settings.name.clone(),
            enabled: mailbox.settings.enabled,
            needs_attention: mailbox.needs_attention.clone(),
            interval_ms,
            next_due: Some(timing.first_poll(now, interval_ms, random_unit())),
            running: false,
            requested_at: None,
            last_poll_at: runs.first().map(|run| run.started_at),
            last_success_at: runs
                .iter()
                .find(|run| run.outcome == RunOutcome::Success)
                .map(|run| run.finished_at.unwrap_or(run.started_at)),
            consecutive_failures,
            last_error: runs.first().and_then(|run| run.error.clone()),
            login_delay_ms: None,
            last_login_at: None,
            reloaded_while_running: false,
        }
    }

    /// The settings as a task just read them.
    fn refresh(&mut self, mailbox: &Mailbox) {
        self.name.clone_from(&mailbox.settings.name);
        self.enabled = mailbox.settings.enabled;
        self.interval_ms = interval_ms(mailbox);
        self.needs_attention.clone_from(&mailbox.needs_attention);
    }

    /// The settings as a reload read them: an edit takes effect now.
    fn reload(&mut self, mailbox: &Mailbox, timing: &Timing, now: i64) {
        if self.running {
            // The settings are newer than those the task read; whether the mailbox needs
            // attention is for the run's result to say.
            self.name.clone_from(&mailbox.settings.name);
            self.enabled = mailbox.settings.enabled;
            self.interval_ms = interval_ms(mailbox);
            self.reloaded_while_running = true;
            return;
        }
        let was_stopped = self.needs_attention.is_some() || !self.enabled;
        let old_interval = self.interval_ms;
        self.refresh(mailbox);
        let soon = timing.first_poll(now, self.interval_ms, random_unit());
        if was_stopped && self.needs_attention.is_none() && self.enabled {
            // The admin fixed or re-enabled it: a fresh start, soon.
            self.consecutive_failures = 0;
            self.next_due = Some(soon);
        } else if self.interval_ms < old_interval {
            // A shorter interval should not wait out the longer one.
            let sooner = now + timing.jittered(self.interval_ms, random_unit());
            self.next_due = Some(self.next_due.map_or(sooner, |due| due.min(sooner)));
        } else if self.next_due.is_none() && self.needs_attention.is_none() {
            self.next_due = Some(soon);
        }
    }

    /// Takes in a run's result; says how it ended for the timing policy.
    fn record(&mut self, result: Result<FetchReport, FetchError>, finished_at: i64) -> RunEnd {
        match result {
            Ok(report) => {
                // The login (if any) was no later than the end of the run.
                self.last_login_at = Some(finished_at);
                if let Some(delay) = report.login_delay_secs {
                    self.login_delay_ms =
                        Some(i64::try_from(delay.saturating_mul(1000)).unwrap_or(i64::MAX));
                }
                self.last_error = report.error.clone();
                match report.outcome {
                    RunOutcome::Success => {
                        self.consecutive_failures = 0;
                        self.last_success_at = Some(finished_at);
                        self.needs_attention = None;
                        RunEnd::Success
                    }
                    RunOutcome::Permanent => {
                        self.consecutive_failures += 1;
                        self.needs_attention =
                            Some(report.error.unwrap_or_else(|| {
                                "the last fetch failed permanently".to_string()
                            }));
                        RunEnd::Permanent
                    }
                    RunOutcome::Cancelled => RunEnd::Cancelled,
                    // The server answered and what arrived whole is stored: not the
                    // mailbox's failure, so no streak and no backoff.
                    RunOutcome::Transient if report.failed_message.is_some() => {
                        self.consecutive_failures = 0;
                        self.needs_attention = None;
                        RunEnd::MessageFailed
                    }
                    RunOutcome::Transient | RunOutcome::Interrupted | RunOutcome::Running => {
                        self.consecutive_failures += 1;
                        // The fetcher cleared any earlier problem: the login went through
                        // or never got that far for a passing reason.
                        self.needs_attention = None;
                        RunEnd::Transient
                    }
                }
            }
            // Another process is fetching this mailbox right now: nothing is wrong.
            Err(FetchError::Busy { .. }) => RunEnd::Busy,
            Err(error) => {
                self.consecutive_failures += 1;
                self.last_error = Some(error.to_string());
                if error.is_permanent() {
                    self.needs_attention = Some(error.to_string());
                    RunEnd::Permanent
                } else {
                    RunEnd::Transient
                }
            }
        }
    }
}

fn interval_ms(mailbox: &Mailbox) -> i64 {
    // Zero would poll in a tight loop; one second is the least that makes sense.
    i64::from(mailbox.settings.poll_interval_secs.max(1)) * 1000
}
