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

/// Gauge: messages of the mailbox that are set aside — left on the server because their
/// download failed the same way run after run — until an admin asks to try again.
pub const MAILBOX_SET_ASIDE_MESSAGES: &str = "popdesk_mailbox_set_aside_messages";

/// Gauge: messages that showed a behaviour of the provider in the mailbox's last run
/// that listed it, by `mailbox` and `behaviour` (`kept_after_delete`: deleted and listed
/// again; `reoffered_under_new_uidl`; `no_uidl`; `duplicate_uidls`). Information for
/// the admin, not an error: see the mailbox page.
pub const MAILBOX_PROVIDER_BEHAVIOUR_MESSAGES: &str = "popdesk_mailbox_provider_behaviour_messages";
/// Counter: messages the server kept after popdesk deleted them, counted each run that
/// saw them listed again.
pub const MESSAGES_KEPT_AFTER_DELETE_TOTAL: &str = "popdesk_messages_kept_after_delete_total";
/// Counter: messages already stored that the server offered again under a new UIDL
/// (recognised by content, stored once).
pub const MESSAGES_REOFFERED_TOTAL: &str = "popdesk_messages_reoffered_total";

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
    describe_gauge!(
        MAILBOX_PROVIDER_BEHAVIOUR_MESSAGES,
        "Messages showing a behaviour of the provider (kept after delete, offered again under a new UIDL, no UIDL, duplicate UIDLs) in the last run, by mailbox and behaviour."
    );
    describe_counter!(
        MESSAGES_KEPT_AFTER_DELETE_TOTAL,
        "Messages the server listed again after popdesk deleted them, by mailbox (counted each run)."
    );
    describe_counter!(
        MESSAGES_REOFFERED_TOTAL,
        "Messages already stored that the server offered again under a new UIDL, by mailbox."
    );
    describe_gauge!(
        MAILBOX_SET_ASIDE_MESSAGES,
        "Messages left on the server because they cannot be downloaded (set aside), by mailbox."
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
    record_set_aside(mailbox, report.set_aside);
    if report.signs.listed {
        let signs = &report.signs;
        counter!(MESSAGES_KEPT_AFTER_DELETE_TOTAL, &[label()]).increment(signs.kept_after_delete);
        counter!(MESSAGES_REOFFERED_TOTAL, &[label()]).increment(signs.reoffered_under_new_uidl);
        for (kind, messages) in signs.counts() {
            gauge!(MAILBOX_PROVIDER_BEHAVIOUR_MESSAGES, "mailbox" => mailbox.to_string(), "behaviour" => kind.as_str())
                .set(messages as f64);
        }
    }
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

/// Sets the set-aside gauge (also at start-up, from the store).
pub(crate) fn record_set_aside(mailbox: &str, count: u64) {
    gauge!(MAILBOX_SET_ASIDE_MESSAGES, "mailbox" => mailbox.to_string()).set(count as f64);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
        Recorder, SharedString,
    };
    use store::{RunCounts, RunOutcome};

    use super::*;
    use crate::process::ProcessReport;

    /// (name, labels, value) of every update.
    type Updates = Arc<Mutex<Vec<(String, Vec<(String, String)>, f64)>>>;

    /// A recorder that writes every update down, so the test sees names and labels.
    #[derive(Default)]
    struct Notebook(Updates);

    struct Series {
        key: Key,
        updates: Updates,
    }

    impl Series {
        fn note(&self, value: f64) {
            let labels = self
                .key
                .labels()
                .map(|label| (label.key().to_string(), label.value().to_string()))
                .collect();
            self.updates
                .lock()
                .unwrap()
                .push((self.key.name().to_string(), labels, value));
        }
    }

    impl CounterFn for Series {
        fn increment(&self, value: u64) {
            self.note(value as f64);
        }
        fn absolute(&self, value: u64) {
            self.note(value as f64);
        }
    }

    impl GaugeFn for Series {
        fn increment(&self, value: f64) {
            self.note(value);
        }
        fn decrement(&self, value: f64) {
            self.note(-value);
        }
        fn set(&self, value: f64) {
            self.note(value);
        }
    }

    impl HistogramFn for Series {
        fn record(&self, value: f64) {
            self.note(value);
        }
    }

    impl Notebook {
        fn series(&self, key: &Key) -> Arc<Series> {
            Arc::new(Series {
                key: key.clone(),
                updates: self.0.clone(),
            })
        }
    }

    impl Recorder for Notebook {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.series(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.series(key))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(self.series(key))
        }
    }

    fn report(outcome: RunOutcome) -> FetchReport {
        FetchReport {
            run_id: 1,
            counts: RunCounts {
                listed: 5,
                downloaded: 4,
                deleted: 3,
                bytes: 1234,
                ..RunCounts::default()
            },
            outcome,
            error: None,
            processing: ProcessReport {
                failed: 2,
                ..ProcessReport::default()
            },
            login_delay_secs: None,
            failed_message: None,
            set_aside_now: vec!["u2".to_string()],
            set_aside: 1,
            signs: crate::ProviderSigns {
                listed: true,
                kept_after_delete: 412,
                reoffered_under_new_uidl: 7,
                ..crate::ProviderSigns::default()
            },
        }
    }

    fn value(updates: &Updates, name: &str) -> Option<(Vec<(String, String)>, f64)> {
        let updates = updates.lock().unwrap();
        updates
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, labels, value)| (labels.clone(), *value))
    }

    #[test]
    fn a_run_updates_every_series_labelled_with_the_mailbox_name() {
        let notebook = Notebook::default();
        metrics::with_local_recorder(&notebook, || {
            describe();
            record_run(
                "support",
                &Ok(report(RunOutcome::Success)),
                Duration::from_millis(1500),
                1_800_000_000_000,
            );
        });
        let mailbox = || vec![("mailbox".to_string(), "support".to_string())];
        assert_eq!(
            value(&notebook.0, FETCH_RUNS_TOTAL),
            Some((
                vec![
                    ("mailbox".to_string(), "support".to_string()),
                    ("outcome".to_string(), "success".to_string())
                ],
                1.0
            ))
        );
        for (name, expected) in [
            (MESSAGES_DOWNLOADED_TOTAL, 4.0),
            (MESSAGES_DELETED_TOTAL, 3.0),
            (FETCH_BYTES_TOTAL, 1234.0),
            (MESSAGES_FAILED_TOTAL, 2.0),
            (FETCH_DURATION_SECONDS, 1.5),
            (MAILBOX_LAST_SUCCESS_TIMESTAMP_SECONDS, 1_800_000_000.0),
            (MAILBOX_SET_ASIDE_MESSAGES, 1.0),
            (MESSAGES_KEPT_AFTER_DELETE_TOTAL, 412.0),
            (MESSAGES_REOFFERED_TOTAL, 7.0),
        ] {
            assert_eq!(
                value(&notebook.0, name),
                Some((mailbox(), expected)),
                "{name}"
            );
        }
        let kept: Vec<f64> = notebook
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, labels, _)| {
                name == MAILBOX_PROVIDER_BEHAVIOUR_MESSAGES
                    && labels.contains(&("behaviour".to_string(), "kept_after_delete".to_string()))
                    && labels.contains(&("mailbox".to_string(), "support".to_string()))
            })
            .map(|(_, _, value)| *value)
            .collect();
        assert_eq!(kept, [412.0], "the kept messages, by behaviour");
    }

    #[test]
    fn a_failed_run_leaves_the_last_success_alone_and_busy_is_counted_apart() {
        let notebook = Notebook::default();
        metrics::with_local_recorder(&notebook, || {
            record_run(
                "support",
                &Ok(report(RunOutcome::Transient)),
                Duration::from_secs(1),
                1_800_000_000_000,
            );
            record_run(
                "support",
                &Err(FetchError::Busy {
                    host: "other".into(),
                    pid: 1,
                }),
                Duration::from_secs(1),
                1_800_000_000_000,
            );
        });
        assert_eq!(
            value(&notebook.0, MAILBOX_LAST_SUCCESS_TIMESTAMP_SECONDS),
            None
        );
        let outcomes: Vec<String> = notebook
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, _, _)| name == FETCH_RUNS_TOTAL)
            .flat_map(|(_, labels, _)| labels.clone())
            .filter(|(key, _)| key == "outcome")
            .map(|(_, value)| value)
            .collect();
        assert_eq!(outcomes, ["transient", "busy"]);
    }
}
