//! Keeps a long-running background part (the scheduler, the processor) running.
//!
//! Without this, a panic in the scheduler's task ends that task alone: the web service
//! keeps answering and nothing is fetched any more, silently. [`supervise`] runs the part
//! in a task of its own; when it ends unexpectedly (a panic, or a return nobody asked
//! for) the cause is logged, the part is marked [`PartHealth::Restarting`] on the
//! [`HealthBoard`] (so `/healthz` answers 503 naming it), and it is started again after a
//! wait that doubles with each quick failure ([`RestartBackoff`]). Shutdown stops it for
//! good: a part that ends once the token is cancelled is never restarted.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::health::{HealthBoard, PartHealth, PartName};

/// Restarts counted by part (`popdesk_task_restarts_total{part="scheduler"}`).
pub const TASK_RESTARTS_TOTAL: &str = "popdesk_task_restarts_total";

/// The `# HELP` line of [`TASK_RESTARTS_TOTAL`].
pub fn describe_metrics() {
    metrics::describe_counter!(
        TASK_RESTARTS_TOTAL,
        "Background parts (scheduler, processor) that ended unexpectedly and were started again"
    );
}

/// How quickly a part that keeps failing is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// The wait before the first restart.
    pub first_delay: Duration,
    /// The longest wait; the delay doubles up to this.
    pub max_delay: Duration,
    /// A part that ran this long before it ended is treated as healthy: its next restart
    /// waits only `first_delay` again.
    pub healthy_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            healthy_after: Duration::from_secs(5 * 60),
        }
    }
}

/// The waits between one part's restarts, without I/O: a part that fails straight after
/// each start must not spin, and one that failed once in a week should come back fast.
#[derive(Debug, Clone)]
pub struct RestartBackoff {
    policy: RestartPolicy,
    next: Duration,
}

impl RestartBackoff {
    pub fn new(policy: RestartPolicy) -> RestartBackoff {
        RestartBackoff {
            policy,
            next: policy.first_delay,
        }
    }

    /// The part ended after running for `ran_for`: how long to wait before starting it
    /// again.
    pub fn after_run(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= self.policy.healthy_after {
            self.next = self.policy.first_delay;
        }
        let delay = self.next.min(self.policy.max_delay);
        self.next = delay.saturating_mul(2).min(self.policy.max_delay);
        delay
    }
}

/// Runs the part `start` makes, again and again, until `shutdown` is cancelled and the
/// part has ended. Each run is a task of its own (so a panic is caught as a
/// [`JoinError`]); `start` is called once per run.
///
/// The part is on the board as running from this call on (not only once the returned
/// future is first polled), so `/healthz` never answers without it.
///
/// The part must end by itself soon after `shutdown` is cancelled (it gets the token, or
/// a child of it, through `start`); this waits for it, so that shutdown stays clean.
/// Dropping the returned future aborts the run in flight.
pub fn supervise<F, Fut>(
    part: PartName,
    health: HealthBoard,
    policy: RestartPolicy,
    shutdown: CancellationToken,
    start: F,
) -> impl Future<Output = ()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    health.set(part, PartHealth::Running);
    keep_running(part, health, policy, shutdown, start)
}

async fn keep_running<F, Fut>(
    part: PartName,
    health: HealthBoard,
    policy: RestartPolicy,
    shutdown: CancellationToken,
    mut start: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = RestartBackoff::new(policy);
    loop {
        health.set(part, PartHealth::Running);
        let started = Instant::now();
        let ended = AbortOnDropHandle::new(tokio::spawn(start())).await;
        let ran_for = started.elapsed();
        let cause = match ended {
            Ok(()) if shutdown.is_cancelled() => {
                health.set(part, PartHealth::Stopped);
                return;
            }
            Ok(()) => "it returned although popdesk is not shutting down".to_string(),
            Err(error) => describe_end(error),
        };
        if shutdown.is_cancelled() {
            // Shutting down anyway: say what happened, start nothing.
            tracing::error!(part, %cause, "{part} ended unexpectedly during shutdown");
            health.set(part, PartHealth::Stopped);
            return;
        }
        let delay = backoff.after_run(ran_for);
        tracing::error!(
            part,
            %cause,
            ran_for_secs = ran_for.as_secs(),
            restart_in_secs = delay.as_secs_f64(),
            "{part} ended unexpectedly; starting it again"
        );
        metrics::counter!(TASK_RESTARTS_TOTAL, "part" => part).increment(1);
        health.set(part, PartHealth::Restarting { cause });
        tokio::select! {
            () = shutdown.cancelled() => {
                health.set(part, PartHealth::Stopped);
                return;
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// A run's end in words: the panic's message when there is one.
fn describe_end(error: JoinError) -> String {
    if !error.is_panic() {
        return format!("its task was cancelled ({error})");
    }
    let payload = error.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    match message {
        Some(message) => format!("it panicked: {message}"),
        None => "it panicked".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            healthy_after: Duration::from_secs(300),
        }
    }

    #[test]
    fn quick_failures_double_the_wait_up_to_the_limit() {
        let mut backoff = RestartBackoff::new(policy());
        let waits: Vec<u64> = (0..9)
            .map(|_| backoff.after_run(Duration::from_secs(2)).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_part_that_ran_fine_for_a_while_comes_back_after_the_first_delay() {
        let mut backoff = RestartBackoff::new(policy());
        for _ in 0..5 {
            backoff.after_run(Duration::ZERO);
        }
        assert_eq!(
            backoff.after_run(Duration::from_secs(300)),
            Duration::from_secs(1)
        );
        assert_eq!(backoff.after_run(Duration::ZERO), Duration::from_secs(2));
    }

    /// Waits (in paused time) until `part` shows `word` on the board.
    async fn wait_for(board: &HealthBoard, part: PartName, word: &str) {
        for _ in 0..10_000 {
            if board
                .get(part)
                .is_some_and(|health| health.as_str() == word)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{part} never became {word}: {:?}", board.get(part));
    }

    #[tokio::test(start_paused = true)]
    async fn a_part_that_panics_is_restarted_with_backoff_and_shown_meanwhile() {
        let board = HealthBoard::new();
        let shutdown = CancellationToken::new();
        let starts = Arc::new(AtomicU32::new(0));
        let supervisor = tokio::spawn(supervise(
            "scheduler",
            board.clone(),
            policy(),
            shutdown.clone(),
            {
                let starts = starts.clone();
                let shutdown = shutdown.clone();
                move || {
                    let run = starts.fetch_add(1, Ordering::SeqCst);
                    let shutdown = shutdown.clone();
                    async move {
                        // The first two runs fail: a panic, then an early return.
                        match run {
                            0 => panic!("a bug in the scheduler"),
                            1 => {}
                            _ => shutdown.cancelled().await,
                        }
                    }
                }
            },
        ));
        let began = Instant::now();
        wait_for(&board, "scheduler", "restarting").await;
        assert!(matches!(
            board.get("scheduler"),
            Some(PartHealth::Restarting { cause }) if cause.contains("a bug in the scheduler")
        ));
        assert!(!board.all_running());
        // Restarted after 1 s, failed again, restarted after 2 s more.
        while starts.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let waited = began.elapsed();
        assert!(
            waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
            "{waited:?}"
        );
        wait_for(&board, "scheduler", "ok").await;
        assert!(board.all_running());

        shutdown.cancel();
        supervisor.await.expect("the supervisor ends");
        assert_eq!(board.get("scheduler"), Some(PartHealth::Stopped));
        assert_eq!(starts.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_part_is_on_the_board_before_its_supervisor_first_runs() {
        let board = HealthBoard::new();
        let _not_polled = supervise(
            "processor",
            board.clone(),
            policy(),
            CancellationToken::new(),
            || async {},
        );
        assert_eq!(board.get("processor"), Some(PartHealth::Running));
    }

    #[tokio::test(start_paused = true)]
    async fn a_part_that_fails_during_shutdown_is_not_restarted() {
        let board = HealthBoard::new();
        let shutdown = CancellationToken::new();
        let starts = Arc::new(AtomicU32::new(0));
        let supervisor = tokio::spawn(supervise(
            "processor",
            board.clone(),
            policy(),
            shutdown.clone(),
            {
                let starts = starts.clone();
                let shutdown = shutdown.clone();
                move || {
                    starts.fetch_add(1, Ordering::SeqCst);
                    let shutdown = shutdown.clone();
                    async move {
                        shutdown.cancelled().await;
                        panic!("stopping went wrong");
                    }
                }
            },
        ));
        wait_for(&board, "processor", "ok").await;
        shutdown.cancel();
        supervisor.await.expect("the supervisor ends");
        assert_eq!(board.get("processor"), Some(PartHealth::Stopped));
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_the_wait_starts_nothing_more() {
        let board = HealthBoard::new();
        let shutdown = CancellationToken::new();
        let starts = Arc::new(AtomicU32::new(0));
        let supervisor = tokio::spawn(supervise(
            "scheduler",
            board.clone(),
            policy(),
            shutdown.clone(),
            {
                let starts = starts.clone();
                move || {
                    starts.fetch_add(1, Ordering::SeqCst);
                    async {}
                }
            },
        ));
        wait_for(&board, "scheduler", "restarting").await;
        shutdown.cancel();
        supervisor.await.expect("the supervisor ends");
        assert_eq!(board.get("scheduler"), Some(PartHealth::Stopped));
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }
}
