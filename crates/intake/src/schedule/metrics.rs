//! The metrics each fetch run updates, through the `metrics` facade. A binary that
//! installs a recorder (the web crate's Prometheus exporter) gets them; without one the
//! calls cost next to nothing.
//!
//! Every series has the label `mailbox`, the mailbox's name (what the admin chose and
//! sees in the UI); the run counter also has `outcome`.

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use crate::error::FetchError;
use crate::fetch::FetchReport;

/// Counter: fetch runs, by `mailbox` and `outcome`: `success`, `transient`,
/// `permanent`, `cancelled` (stopped at a safe point for shutdown), `busy` (another
/// process held the mailbox, nothing ran) or `error` (the run could not even be recorded:
/// the database was unreachable).
pub const FETCH_RUNS_TOTAL: &str = "popdesk_fetch_runs_total";
/// Counter: messages downloaded and stored.
pub const MESSAGES_DOWNLOADED_TOTAL: &str = "popdesk_messages_downloaded_total";
/// Counter: messages deleted from the server (deletions the server confirmed with QUIT).
pub const MESSAGES_DELETED_TOTAL: &str = "popdesk_messages_deleted_total";
/// Counter: octets stored.
pub const FETCH_BYTES_TOTAL: &str = "popdesk_fetch_bytes_total";
/// Counter: stored messages whose processing failed (kept raw, to reprocess).
pub const MESSAGES_FAILED_TOTAL: &str = "popdesk_messages_failed_total";
/// Histogram: how long a fetch run took, in seconds (processing after each batch
/// included).
pub const FETCH_DURATION_SECONDS: &str = "popdesk_fetch_duration_seconds";
/// Gauge: when the mailbox's last successful run finished, in seconds since the epoch.
pub const MAILBOX_LAST_SUCCESS_TIMESTAMP_SECONDS: &str =
    "popdesk_mailbox_last_success_timestamp_seconds";

/// Registers the descriptions (Prometheus `# HELP` lines). Call once after installing a
/// recorder; the series work without it.
pub fn describe() {
    describe_counter!(FETCH_RUNS_TOTAL, "Fetch runs, by mailbox and outcome.");
    describe_counter!(
        MESSAGES_DOWNLOADED_TOTAL,
        "Messages downloaded and stored, by mailbox."
    );
    describe_counter!(
        MESSAGES_DELETED_TOTAL,
        "Messages deleted from the server after they were stored, by mailbox."
    );
    describe_counter!(FETCH_BYTES_TOTAL, Unit::Bytes, "Octets stored, by mailbox.");
    describe_counter!(
        MESSAGES_FAILED_TOTAL,
        "Stored messages whose processing failed (kept to reprocess), by mailbox."
    );
    describe_histogram!(
        FETCH_DURATION_SECONDS,
        Unit::Seconds,
        "How long fetch runs take, by mailbox."
    );
    describe_gauge!(
        MAILBOX_LAST_SUCCESS_TIMESTAMP_SECONDS,
        Unit::Seconds,
        "When the mailbox's last successful fetch run finished (Unix time)."
    );
}

/// Records one run (or attempt) of `mailbox`.
pub(crate) fn record_run(
    mailbox: &str,
    result: &Result<FetchReport, FetchError>,
    duration: Duration,
    finished_at_ms: i64,
) {
    let outcome = match result {
        Ok(report) => report.outcome.as_str(),
        Err(FetchError::Busy { .. }) => "busy",
        Err(_) => "error",
    };
    counter!(FETCH_RUNS_TOTAL, "mailbox" => mailbox.to_string(), "outcome" => outcome).increment(1);
    let Ok(report) = result else {
        return;
    };
    let label = || ("mailbox", mailbox.to_string());
    let counts = &report.counts;
    counter!(MESSAGES_DOWNLOADED_TOTAL, &[label()]).increment(counts.downloaded);
    counter!(MESSAGES_DELETED_TOTAL, &[label()]).increment(counts.deleted);
    counter!(FETCH_BYTES_TOTAL, &[label()]).increment(counts.bytes);
    counter!(MESSAGES_FAILED_TOTAL, &[label()]).increment(report.processing.failed);
    histogram!(FETCH_DURATION_SECONDS, &[label()]).record(duration.as_secs_f64());
    if report.outcome == store::RunOutcome::Success {
        record_last_success(mailbox, finished_at_ms);
    }
}

/// Sets the last-success gauge (also at start-up, from the stored runs, so it is right
/// after a restart).
pub(crate) fn record_last_success(mailbox: &str, at_ms: i64) {
    gauge!(MAILBOX_LAST_SUCCESS_TIMESTAMP_SECONDS, "mailbox" => mailbox.to_string())
        .set(at_ms as f64 / 1000.0);
}
