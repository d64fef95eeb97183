//! The scheduler: polls every enabled mailbox on its own interval, so a helpdesk's mail
//! comes in without anyone running `mailbox fetch`.
//!
//! - [`policy`] decides, without I/O, when a mailbox is due next: interval with jitter,
//!   exponential backoff on transient errors, the server's LOGIN-DELAY as a floor.
//! - [`Scheduler`] (in `runner`) drives fetches on tokio: bounded concurrency, one task
//!   per running mailbox (a slow one never holds up the others), one run per mailbox at
//!   a time, safe-point cancellation on shutdown.
//! - [`SchedulerHandle`] is what the web UI and API hold: fetch now, reload, status.
//! - [`metrics`] names the Prometheus series each run updates.

pub mod metrics;
pub mod policy;
mod runner;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;

pub use runner::Scheduler;

/// Mailbox changes made on another node (or by the CLI) reach this scheduler within this.
pub const RELOAD_EVERY: Duration = Duration::from_secs(3);

/// How the scheduler paces fetches. Per-mailbox intervals are in each mailbox's settings
/// (`poll_interval_secs`).
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Fetches running at once across all mailboxes.
    pub max_concurrent: usize,
    /// How far a poll may move from its interval, as a fraction (0.1 = ±10 %), so many
    /// mailboxes on one server do not all log in in the same second.
    pub jitter: f64,
    /// The wait after the first transient failure; it doubles with each further one.
    pub backoff_base: Duration,
    /// The longest wait between retries of a failing mailbox.
    pub backoff_max: Duration,
    /// How often due mailboxes are looked at when nothing else wakes the scheduler.
    pub tick: Duration,
    /// How often the mailboxes are read again without being asked to, so that changes
    /// made elsewhere (the CLI, another node behind the load balancer) take effect. One
    /// small query each time.
    pub reload_every: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_concurrent: 4,
            jitter: 0.1,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(30 * 60),
            tick: Duration::from_secs(1),
            reload_every: RELOAD_EVERY,
        }
    }
}

/// Where one mailbox stands in the schedule, for the UI, the API and tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailboxSchedule {
    pub mailbox_id: i64,
    pub state: ScheduleState,
    /// When the next poll is due (ms since the epoch); None when none is planned
    /// (stopped, disabled, or running).
    pub next_poll_at: Option<i64>,
    /// When the last run started (ms since the epoch).
    pub last_poll_at: Option<i64>,
    /// When the last successful run finished (ms since the epoch).
    pub last_success_at: Option<i64>,
    /// Failed runs since the last success.
    pub consecutive_failures: u32,
    /// The last run's error in words, if it had one.
    pub last_error: Option<String>,
}

/// What the scheduler is doing with a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ScheduleState {
    /// Polled when `next_poll_at` comes.
    Waiting,
    /// A fetch is running now.
    Running,
    /// The last runs failed transiently; the next try waits until `until` (ms since the
    /// epoch).
    BackingOff { until: i64 },
    /// A permanent error (a refused login, a bad certificate): not polled until the admin
    /// edits the mailbox or asks for a fetch.
    Stopped { reason: String },
    /// The admin turned scheduled fetching off for this mailbox.
    Disabled,
}

/// Why "fetch now" was not queued.
#[derive(Debug, thiserror::Error)]
pub enum FetchNowError {
    #[error("no mailbox with id {0}")]
    UnknownMailbox(i64),
    #[error("the scheduler is not running")]
    NotRunning,
}

/// The scheduler's remote control: cheap to clone, usable from any task or thread.
#[derive(Clone)]
pub struct SchedulerHandle {
    shared: Arc<Shared>,
}

impl SchedulerHandle {
    /// Queues a fetch of this mailbox out of turn. An admin asked explicitly, so it also
    /// runs a mailbox that is stopped on a permanent error or disabled (once; it stays
    /// stopped or disabled unless the run shows the problem is gone). The server's
    /// LOGIN-DELAY is still honoured. A mailbox already running is fetched again right
    /// after, so mail that arrived meanwhile comes in.
    pub fn fetch_now(&self, mailbox_id: i64) -> Result<(), FetchNowError> {
        let mut board = self.shared.board();
        match board.phase {
            Phase::Stopping | Phase::Stopped => return Err(FetchNowError::NotRunning),
            Phase::Starting => {}
            Phase::Running if board.reload_pending => {}
            Phase::Running if !board.mailboxes.contains_key(&mailbox_id) => {
                return Err(FetchNowError::UnknownMailbox(mailbox_id));
            }
            Phase::Running => {}
        }
        let now = self.shared.clock.now_ms();
        if let Some(slot) = board.mailboxes.get_mut(&mailbox_id) {
            slot.requested_at.get_or_insert(now);
        } else {
            // Not read from the store yet (start-up, or a reload on its way): the
            // scheduler looks it up once it has read the mailboxes.
            board.unknown_requests.push(mailbox_id);
        }
        drop(board);
        if self.shared.send(Command::Wake) {
            Ok(())
        } else {
            // The scheduler was dropped without shutting down.
            Err(FetchNowError::NotRunning)
        }
    }

    /// Mailboxes were added, edited or removed: read them again from the store. (The
    /// scheduler also does this by itself every half minute, for changes made by other
    /// processes such as the CLI.)
    pub fn reload(&self) {
        self.shared.board().reload_pending = true;
        // Nothing to reload once the scheduler is gone.
        let _ = self.shared.send(Command::Reload);
    }

    /// This mailbox's place in the schedule; None when the scheduler does not know it.
    pub fn status(&self, mailbox_id: i64) -> Option<MailboxSchedule> {
        self.shared
            .board()
            .mailboxes
            .get(&mailbox_id)
            .map(Slot::schedule)
    }

    /// Every known mailbox's place in the schedule, by mailbox id.
    pub fn statuses(&self) -> Vec<MailboxSchedule> {
        let board = self.shared.board();
        let mut all: Vec<MailboxSchedule> = board.mailboxes.values().map(Slot::schedule).collect();
        all.sort_by_key(|schedule| schedule.mailbox_id);
        all
    }

    /// Whether the scheduler's loop is running (started and not shut down).
    pub fn is_running(&self) -> bool {
        self.shared.board().phase == Phase::Running
    }
}

/// What the handle asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Something was queued: look at the mailboxes now rather than at the next tick.
    Wake,
    Reload,
}

/// State shared by the loop and its handles.
struct Shared {
    board: Mutex<Board>,
    commands: mpsc::UnboundedSender<Command>,
    clock: Arc<dyn Clock>,
}

impl Shared {
    fn new(commands: mpsc::UnboundedSender<Command>, clock: Arc<dyn Clock>) -> Shared {
        Shared {
            board: Mutex::new(Board::default()),
            commands,
            clock,
        }
    }

    /// The board, even after a panic elsewhere: it holds plain data, always consistent
    /// between statements.
    fn board(&self) -> MutexGuard<'_, Board> {
        self.board
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// False when the scheduler is gone.
    fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// `run` has not read the mailboxes yet.
    #[default]
    Starting,
    Running,
    /// Shutdown fired; fetches in flight are stopping at safe points.
    Stopping,
    Stopped,
}

/// Every mailbox's schedule.
#[derive(Debug, Default)]
struct Board {
    phase: Phase,
    mailboxes: HashMap<i64, Slot>,
    /// `reload` was called and the loop has not re-read the mailboxes yet.
    reload_pending: bool,
    /// "Fetch now" for ids not on the board yet; resolved after the next read.
    unknown_requests: Vec<i64>,
}

/// One mailbox's timing state, as the loop keeps it.
#[derive(Debug, Clone)]
struct Slot {
    id: i64,
    /// Metric label and log field.
    name: String,
    enabled: bool,
    needs_attention: Option<String>,
    interval_ms: i64,
    /// When the next scheduled poll is due; None while running, stopped or disabled.
    next_due: Option<i64>,
    running: bool,
    /// When "fetch now" was asked, if it has not started yet.
    requested_at: Option<i64>,
    last_poll_at: Option<i64>,
    last_success_at: Option<i64>,
    consecutive_failures: u32,
    last_error: Option<String>,
    /// The LOGIN-DELAY the server announced at the last login, in milliseconds.
    login_delay_ms: Option<i64>,
    /// When the last run that logged in ended: the login was no later than that.
    last_login_at: Option<i64>,
    /// A reload read the settings while a run was going; they win over the run's copy.
    reloaded_while_running: bool,
}

impl Slot {
    fn stopped(&self) -> bool {
        self.needs_attention.is_some()
    }

    /// When this mailbox should run next, if at all.
    fn due(&self) -> Option<i64> {
        if self.running {
            return None;
        }
        let floor = policy::login_floor(self.last_login_at, self.login_delay_ms);
        if let Some(requested_at) = self.requested_at {
            return Some(floor.map_or(requested_at, |floor| floor.max(requested_at)));
        }
        if !self.enabled || self.stopped() {
            return None;
        }
        self.next_due
    }

    fn state(&self) -> ScheduleState {
        if self.running {
            ScheduleState::Running
        } else if self.requested_at.is_some() {
            ScheduleState::Waiting
        } else if !self.enabled {
            ScheduleState::Disabled
        } else if let Some(reason) = &self.needs_attention {
            ScheduleState::Stopped {
                reason: reason.clone(),
            }
        } else if let (true, Some(until)) = (self.consecutive_failures > 0, self.next_due) {
            ScheduleState::BackingOff { until }
        } else {
            ScheduleState::Waiting
        }
    }

    fn schedule(&self) -> MailboxSchedule {
        MailboxSchedule {
            mailbox_id: self.id,
            state: self.state(),
            next_poll_at: self.due(),
            last_poll_at: self.last_poll_at,
            last_success_at: self.last_success_at,
            consecutive_failures: self.consecutive_failures,
            last_error: self.last_error.clone(),
        }
    }
}
