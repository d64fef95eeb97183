//! When a mailbox is due next. Pure: times in, times out; the clock's reading and the
//! random draw are arguments, so every rule is a plain unit test.
//!
//! The rules:
//! - after a success, the next poll is one interval (± jitter) after the run *started*,
//!   so a mailbox is polled every interval whatever its runs take; a run longer than
//!   the interval is followed at once by the next (a big backlog drains);
//! - after a transient failure, the wait is the backoff (base, doubling per consecutive
//!   failure, capped) but never shorter than the interval: trouble never makes popdesk
//!   poll a server more often than usual;
//! - the server's LOGIN-DELAY is a floor under all of these, counted from the end of the
//!   run that logged in (the login was no later than that);
//! - a permanent failure plans nothing: the mailbox waits for the admin;
//! - another process fetching the mailbox (lease busy) is no failure: try at the next
//!   interval;
//! - a run ended by one message whose download broke off is no failure of the mailbox
//!   either: the next run (one interval on) tries that message alone and, should it fail
//!   the same way a few runs in a row, sets it aside and carries on with the rest —
//!   backing off would only delay that.

use std::time::Duration;

use super::SchedulerConfig;

/// The first poll after start-up comes within this long (spread at random, so a
/// restarted service does not log in to every mailbox in the same instant).
pub const FIRST_POLL_SPREAD_MS: i64 = 3_000;

/// How a run ended, as far as timing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Success,
    /// Network trouble, a locked maildrop, `[LOGIN-DELAY]`, `[SYS/TEMP]`, a full disk.
    Transient,
    /// A refused login, a bad certificate, `[SYS/PERM]`: the admin must act.
    Permanent,
    /// Another fetcher holds the mailbox's lease.
    Busy,
    /// One message's download broke off; the mailbox itself answers.
    MessageFailed,
    /// Stopped at a safe point because popdesk is shutting down.
    Cancelled,
}

/// The times of one finished run and what the mailbox's state is after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedRun {
    pub started_at: i64,
    pub finished_at: i64,
    pub interval_ms: i64,
    /// Consecutive failures including this run (0 after a success).
    pub consecutive_failures: u32,
    /// The LOGIN-DELAY the server announced, if it did (this run or earlier).
    pub login_delay_ms: Option<i64>,
}

/// The scheduler's timing knobs, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Fraction of an interval a poll may move either way.
    pub jitter: f64,
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
}

impl Timing {
    pub fn from_config(config: &SchedulerConfig) -> Timing {
        Timing {
            jitter: config.jitter.clamp(0.0, 1.0),
            backoff_base_ms: millis(config.backoff_base),
            backoff_max_ms: millis(config.backoff_max),
        }
    }

    /// `ms` moved by up to ±jitter; `unit` is a random draw in [0, 1).
    pub fn jittered(&self, ms: i64, unit: f64) -> i64 {
        let factor = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        ((ms as f64) * factor).round().max(0.0) as i64
    }

    /// When a mailbox is first polled after start-up or after it was added: soon, spread
    /// over a few seconds (or its interval, if shorter).
    pub fn first_poll(&self, now: i64, interval_ms: i64, unit: f64) -> i64 {
        let spread = interval_ms.clamp(0, FIRST_POLL_SPREAD_MS);
        now + ((spread as f64) * unit.clamp(0.0, 1.0)) as i64
    }

    /// The wait after `failures` consecutive failures: base, doubled per further failure,
    /// capped. Jitter only shortens it, so the cap holds exactly.
    pub fn backoff(&self, failures: u32, unit: f64) -> i64 {
        let doublings = failures.saturating_sub(1).min(40);
        let raw = self
            .backoff_base_ms
            .max(0)
            .saturating_mul(1i64 << doublings)
            .min(self.backoff_max_ms.max(0));
        let shortened = (raw as f64) * (1.0 - self.jitter * unit.clamp(0.0, 1.0));
        shortened.round().max(0.0) as i64
    }

    /// When the mailbox is polled next; None when it waits for the admin.
    pub fn next_poll(&self, end: RunEnd, run: &FinishedRun, unit: f64) -> Option<i64> {
        let interval = self.jittered(run.interval_ms, unit);
        let planned = match end {
            RunEnd::Permanent => return None,
            RunEnd::Success => (run.started_at + interval).max(run.finished_at),
            RunEnd::Transient => {
                run.finished_at + interval.max(self.backoff(run.consecutive_failures, unit))
            }
            RunEnd::Busy | RunEnd::MessageFailed => run.finished_at + interval,
            // Only while shutting down; should the loop go on, carry on at once.
            RunEnd::Cancelled => run.finished_at,
        };
        let floor = login_floor(Some(run.finished_at), run.login_delay_ms);
        Some(floor.map_or(planned, |floor| planned.max(floor)))
    }
}

/// The earliest time the server allows the next login, given its LOGIN-DELAY.
pub fn login_floor(last_login_at: Option<i64>, login_delay_ms: Option<i64>) -> Option<i64> {
    Some(last_login_at? + login_delay_ms?)
}

/// A random draw in [0, 1) for jitter. Without randomness the middle is as good as any
/// value: jitter spreads load, it protects nothing.
pub fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;
    const MIN: i64 = 60_000;

    fn timing() -> Timing {
        Timing::from_config(&SchedulerConfig::default())
    }

    fn run(interval_ms: i64, failures: u32) -> FinishedRun {
        FinishedRun {
            started_at: T0,
            finished_at: T0 + 2_000,
            interval_ms,
            consecutive_failures: failures,
            login_delay_ms: None,
        }
    }

    #[test]
    fn jitter_stays_within_its_fraction_either_way() {
        let timing = timing();
        assert_eq!(timing.jittered(MIN, 0.5), MIN);
        assert_eq!(timing.jittered(MIN, 0.0), 54_000);
        assert!(timing.jittered(MIN, 0.999_999) <= 66_000);
        assert!(timing.jittered(MIN, 0.999_999) > 65_990);
        let none = Timing {
            jitter: 0.0,
            ..timing
        };
        assert_eq!(none.jittered(MIN, 0.0), MIN);
    }

    #[test]
    fn a_successful_mailbox_is_polled_one_interval_after_its_run_started() {
        let next = timing().next_poll(RunEnd::Success, &run(MIN, 0), 0.5);
        assert_eq!(next, Some(T0 + MIN));
    }

    #[test]
    fn a_run_longer_than_the_interval_is_followed_at_once() {
        let mut slow = run(MIN, 0);
        slow.finished_at = T0 + 5 * MIN;
        assert_eq!(
            timing().next_poll(RunEnd::Success, &slow, 0.5),
            Some(slow.finished_at)
        );
    }

    #[test]
    fn backoff_doubles_from_its_base_and_is_capped() {
        let timing = timing();
        let waits: Vec<i64> = (1..=10).map(|n| timing.backoff(n, 0.0)).collect();
        assert_eq!(
            waits,
            [30, 60, 120, 240, 480, 960, 1_800, 1_800, 1_800, 1_800].map(|s| s * 1_000)
        );
        // Jitter only shortens: the cap holds whatever the draw.
        assert!(timing.backoff(30, 0.999) <= 1_800_000);
        assert!(timing.backoff(30, 0.999) >= 1_620_000);
        assert_eq!(timing.backoff(u32::MAX, 0.0), 1_800_000);
    }

    #[test]
    fn a_transient_failure_never_polls_more_often_than_the_interval() {
        let timing = timing();
        // Interval 5 min, first failure backs off 30 s: the interval wins.
        let next = timing.next_poll(RunEnd::Transient, &run(5 * MIN, 1), 0.5);
        assert_eq!(next, Some(T0 + 2_000 + 5 * MIN));
        // Interval 1 min, fifth failure backs off 8 min.
        let next = timing.next_poll(RunEnd::Transient, &run(MIN, 5), 0.0);
        assert_eq!(next, Some(T0 + 2_000 + 480_000));
    }

    #[test]
    fn a_permanent_failure_plans_no_poll() {
        assert_eq!(
            timing().next_poll(RunEnd::Permanent, &run(MIN, 1), 0.5),
            None
        );
    }

    #[test]
    fn a_busy_lease_is_tried_again_at_the_next_interval_not_backed_off() {
        let next = timing().next_poll(RunEnd::Busy, &run(MIN, 7), 0.5);
        assert_eq!(next, Some(T0 + 2_000 + MIN));
    }

    #[test]
    fn a_failing_message_is_tried_again_at_the_next_interval_not_backed_off() {
        let next = timing().next_poll(RunEnd::MessageFailed, &run(MIN, 0), 0.5);
        assert_eq!(next, Some(T0 + 2_000 + MIN));
    }

    #[test]
    fn login_delay_is_a_floor_under_every_plan() {
        let timing = timing();
        let mut announced = run(MIN, 0);
        announced.login_delay_ms = Some(15 * MIN);
        let floor = announced.finished_at + 15 * MIN;
        assert_eq!(
            timing.next_poll(RunEnd::Success, &announced, 0.5),
            Some(floor)
        );
        announced.consecutive_failures = 1;
        assert_eq!(
            timing.next_poll(RunEnd::Transient, &announced, 0.5),
            Some(floor)
        );
        // A floor below the plan changes nothing.
        announced.login_delay_ms = Some(1_000);
        announced.consecutive_failures = 0;
        assert_eq!(
            timing.next_poll(RunEnd::Success, &announced, 0.5),
            Some(T0 + MIN)
        );
        assert_eq!(login_floor(Some(T0), Some(900_000)), Some(T0 + 900_000));
        assert_eq!(login_floor(None, Some(900_000)), None);
        assert_eq!(login_floor(Some(T0), None), None);
    }

    #[test]
    fn the_first_poll_after_start_up_is_prompt_and_spread() {
        let timing = timing();
        assert_eq!(timing.first_poll(T0, MIN, 0.0), T0);
        assert!(timing.first_poll(T0, MIN, 0.999) <= T0 + FIRST_POLL_SPREAD_MS);
        // A short interval spreads over the interval only.
        assert!(timing.first_poll(T0, 1_000, 0.999) <= T0 + 1_000);
    }

    #[test]
    fn random_draws_are_in_the_unit_interval() {
        for _ in 0..1_000 {
            let unit = random_unit();
            assert!((0.0..1.0).contains(&unit), "{unit}");
        }
    }
}
