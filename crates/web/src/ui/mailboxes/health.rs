//! A mailbox's health in words, its fetch history and the messages the server will not
//! hand over, as the mailbox pages show them.

use std::collections::HashMap;

use intake::notice::{Provider, words};
use intake::schedule::{MailboxSchedule, ScheduleState};
use store::{FetchRun, Mailbox, ProcessStatus, ProviderNotice, RunOutcome};

use crate::AppState;
use crate::ui::display::{When, ago, duration, size};

/// Past this many messages waiting for processing, the page says "at least" (the
/// store lists them rather than counting, so the number is kept small).
pub(crate) const BACKLOG_SHOWN: u32 = 100;

/// Fetch runs shown on a mailbox's page.
pub(crate) const HISTORY: u32 = 20;

/// A mailbox's health, in words.
pub(crate) struct Health {
    pub(crate) enabled: bool,
    /// Enabled, but not polled until the admin fixes what a permanent error says: the
    /// badge must not read "Enabled" beside "Stopped".
    pub(crate) stopped: bool,
    /// What the scheduler is doing: "Waiting: next poll in 1 minute", ...
    pub(crate) state: String,
    pub(crate) last_poll: Option<When>,
    pub(crate) last_success: Option<When>,
    /// Stored messages of this mailbox not yet made into tickets.
    pub(crate) backlog: String,
    /// What the server listed at the last successful fetch (a refused login lists
    /// nothing, which says nothing about the server).
    pub(crate) on_server: Option<String>,
    /// "1 message cannot be downloaded", when the server holds messages set aside.
    pub(crate) set_aside: Option<String>,
    /// Why mail is not coming in, in words: what needs the admin, or the last error.
    pub(crate) error: Option<String>,
    /// What the provider was seen doing with deleted mail: information, shown calmly,
    /// never as an error.
    pub(crate) notices: Vec<NoticeLine>,
}

/// One behaviour of the provider, in words (see `intake::notice`).
pub(crate) struct NoticeLine {
    /// `kept_after_delete`, ... for the page's markup and tests.
    pub(crate) kind: &'static str,
    /// One sentence with the number, for the list's health line.
    pub(crate) headline: String,
    /// What popdesk does about it and what the admin can do at this provider.
    pub(crate) meaning: String,
    pub(crate) advice: String,
    pub(crate) since: When,
    pub(crate) last_seen: When,
}

impl NoticeLine {
    pub(crate) fn new(notice: &ProviderNotice, mailbox: &Mailbox, now: i64) -> NoticeLine {
        let text = words(notice, Provider::for_host(&mailbox.settings.host));
        NoticeLine {
            kind: notice.kind.as_str(),
            headline: text.headline,
            meaning: text.meaning,
            advice: text.advice,
            since: When::new(notice.first_seen_at, now),
            last_seen: When::new(notice.last_seen_at, now),
        }
    }
}

fn schedule_state(schedule: Option<&MailboxSchedule>, enabled: bool, now: i64) -> String {
    let Some(schedule) = schedule else {
        return if enabled {
            "Not scheduled: no scheduler runs in this popdesk process".to_string()
        } else {
            "Disabled: not polled".to_string()
        };
    };
    match &schedule.state {
        ScheduleState::Waiting => match schedule.next_poll_at {
            Some(at) => format!("Waiting: next poll {}", ago(now - at)),
            None => "Waiting".to_string(),
        },
        ScheduleState::Running => "Fetching now".to_string(),
        ScheduleState::BackingOff { until } => {
            let when = When::new(*until, now);
            format!(
                "Backing off after errors until {} ({})",
                when.text, when.ago
            )
        }
        ScheduleState::Stopped { .. } => {
            "Stopped until you fix the error shown for this mailbox, or press “Fetch now”"
                .to_string()
        }
        ScheduleState::Disabled => "Disabled: not polled".to_string(),
    }
}

/// When each mailbox last fetched successfully, by the store's fetch history (the
/// scheduler knows it too, but only for the mailboxes it has run since it started).
pub(crate) async fn last_successes(
    state: &AppState,
) -> Result<HashMap<i64, i64>, store::StoreError> {
    Ok(state
        .store()
        .last_success_by_mailbox()
        .await?
        .into_iter()
        .collect())
}

/// The health of a mailbox from the store and the scheduler. `runs` are its newest
/// runs, newest first; `set_aside` how many of its messages are set aside (the callers
/// have it already: the list counts all mailboxes at once, the page lists them);
/// `notices` its provider notices (read likewise).
pub(crate) async fn health(
    state: &AppState,
    mailbox: &Mailbox,
    runs: &[FetchRun],
    last_successes: &HashMap<i64, i64>,
    set_aside: u64,
    notices: &[ProviderNotice],
) -> Result<Health, store::StoreError> {
    let now = state.now();
    let schedule = state.scheduler().and_then(|s| s.status(mailbox.id));
    let last_run = runs.first();
    let last_success = schedule
        .as_ref()
        .and_then(|s| s.last_success_at)
        .or_else(|| last_successes.get(&mailbox.id).copied());
    let last_poll = schedule
        .as_ref()
        .and_then(|s| s.last_poll_at)
        .or(last_run.map(|r| r.started_at));
    let waiting = state
        .store()
        .raw_messages_with_status(
            Some(ProcessStatus::Pending),
            Some(mailbox.id),
            BACKLOG_SHOWN,
        )
        .await?
        .len();
    let backlog = match waiting {
        0 => "None waiting to be made into tickets".to_string(),
        1 => "1 message waiting to be made into a ticket".to_string(),
        n if n >= usize::try_from(BACKLOG_SHOWN).unwrap_or(usize::MAX) => {
            format!("At least {n} messages waiting to be made into tickets")
        }
        n => format!("{n} messages waiting to be made into tickets"),
    };
    let failed_run_error = last_run
        .filter(|r| !matches!(r.outcome, RunOutcome::Success | RunOutcome::Running))
        .and_then(|r| r.error.clone());
    let error = mailbox
        .needs_attention
        .clone()
        .or_else(|| schedule.as_ref().and_then(|s| s.last_error.clone()))
        .or(failed_run_error)
        .map(|e| crate::ui::display::sentence(&e));
    Ok(Health {
        enabled: mailbox.settings.enabled,
        stopped: mailbox.needs_attention.is_some()
            || matches!(
                schedule.as_ref().map(|s| &s.state),
                Some(ScheduleState::Stopped { .. })
            ),
        state: schedule_state(schedule.as_ref(), mailbox.settings.enabled, now),
        last_poll: last_poll.map(|at| When::new(at, now)),
        last_success: last_success.map(|at| When::new(at, now)),
        backlog,
        on_server: runs
            .iter()
            .find(|r| r.outcome == RunOutcome::Success)
            .map(|r| {
                // What the server holds now is what it listed less what that run deleted
                // (mail that arrived since is not known until the next fetch).
                let left = r.counts.listed.saturating_sub(r.counts.deleted);
                let left = match left {
                    1 => "1 message".to_string(),
                    n => format!("{n} messages"),
                };
                format!(
                    "{left} after the last successful fetch, which downloaded {} and deleted {}",
                    r.counts.downloaded, r.counts.deleted
                )
            }),
        error,
        notices: notices
            .iter()
            .map(|notice| NoticeLine::new(notice, mailbox, now))
            .collect(),
        set_aside: match set_aside {
            0 => None,
            1 => Some("1 message cannot be downloaded".to_string()),
            n => Some(format!("{n} messages cannot be downloaded")),
        },
    })
}

/// One row of the fetch history.
pub(crate) struct RunRow {
    pub(crate) started: When,
    pub(crate) duration: String,
    pub(crate) outcome: &'static str,
    pub(crate) outcome_class: &'static str,
    pub(crate) listed: u64,
    pub(crate) downloaded: u64,
    pub(crate) deleted: u64,
    pub(crate) error: String,
}

impl RunRow {
    pub(crate) fn new(run: &FetchRun, now: i64) -> RunRow {
        let (outcome, outcome_class) = match run.outcome {
            RunOutcome::Running => ("Running", "running"),
            RunOutcome::Success => ("Success", "ok"),
            RunOutcome::Transient => ("Failed, retried later", "warn"),
            RunOutcome::Permanent => ("Failed, needs you", "bad"),
            RunOutcome::Interrupted => ("Interrupted", "warn"),
            RunOutcome::Cancelled => ("Cancelled at shutdown", "warn"),
        };
        RunRow {
            started: When::new(run.started_at, now),
            duration: run
                .finished_at
                .map(|end| duration(end - run.started_at))
                .unwrap_or_default(),
            outcome,
            outcome_class,
            listed: run.counts.listed,
            downloaded: run.counts.downloaded,
            deleted: run.counts.deleted,
            error: run
                .error
                .as_deref()
                .map(crate::ui::display::sentence)
                .unwrap_or_default(),
        }
    }
}

/// A message on the server that could not be downloaded, as the mailbox page lists it.
pub(crate) struct FailingRow {
    pub(crate) uid: String,
    pub(crate) size: String,
    pub(crate) headers: Option<String>,
    pub(crate) set_aside: bool,
    pub(crate) retry_once: bool,
    pub(crate) attempts: Vec<(When, String)>,
}

impl FailingRow {
    pub(crate) fn new(message: store::FailingMessage, now: i64) -> FailingRow {
        FailingRow {
            set_aside: message.is_set_aside(),
            uid: message.uid,
            size: size(message.size),
            headers: message.headers,
            retry_once: message.retry_once,
            attempts: message
                .attempts
                .into_iter()
                .map(|a| (When::new(a.at, now), crate::ui::display::sentence(&a.error)))
                .collect(),
        }
    }
}
