//! The table the benchmark prints.

use std::time::Duration;

/// One client's run over the whole mailbox.
#[derive(Clone, Debug)]
pub struct Row {
    pub client: String,
    pub rtt: String,
    pub outcome: Outcome,
    /// Time over mpop's, run for run (mpop and this client take turns), median over the
    /// rounds: a burst of load on this shared machine hits one pair, not one client.
    pub ratio: Option<f64>,
}

/// What the client process cost, from `/usr/bin/time` (the median run's).
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User + system CPU seconds of the client process.
    pub cpu_secs: f64,
    /// Peak resident set size in kilobytes.
    pub max_rss_kb: u64,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Measured {
        messages: usize,
        /// Bytes as sent on the wire (CRLF), before dot-stuffing.
        bytes: u64,
        elapsed: Duration,
        usage: Option<Usage>,
    },
    /// Not run, with the reason (e.g. the client is not integrated yet).
    Skipped(String),
    Failed(String),
}

impl Row {
    /// Messages per second.
    pub fn rate(&self) -> Option<f64> {
        self.elapsed()
            .zip(self.messages())
            .map(|(elapsed, messages)| messages as f64 / elapsed.as_secs_f64())
    }

    pub fn elapsed(&self) -> Option<Duration> {
        match self.outcome {
            Outcome::Measured { elapsed, .. } => Some(elapsed),
            _ => None,
        }
    }

    pub fn outcome_messages(&self) -> Option<usize> {
        self.messages()
    }

    fn messages(&self) -> Option<usize> {
        match self.outcome {
            Outcome::Measured { messages, .. } => Some(messages),
            _ => None,
        }
    }

    /// Time over mpop's in the same scenario (below 1: faster than mpop).
    pub fn ratio_to_mpop(&self) -> Option<f64> {
        self.ratio
    }
}

/// MB here are 10^6 bytes.
pub fn print(rows: &[Row]) {
    println!(
        "{:<40} {:>5} {:>7} {:>6} {:>7} {:>7} {:>6} {:>7} {:>6} {:>7} {:>7}",
        "client",
        "RTT",
        "msgs",
        "MB",
        "seconds",
        "msg/s",
        "MB/s",
        "ms/msg",
        "CPU s",
        "RSS MB",
        "x mpop"
    );
    for row in rows {
        match &row.outcome {
            Outcome::Measured {
                messages,
                bytes,
                elapsed,
                usage,
            } => {
                let secs = elapsed.as_secs_f64();
                let mb = *bytes as f64 / 1e6;
                let (cpu, rss) = match usage {
                    Some(u) => (
                        format!("{:.2}", u.cpu_secs),
                        format!("{:.1}", u.max_rss_kb as f64 / 1024.0),
                    ),
                    None => ("-".into(), "-".into()),
                };
                let ratio = row
                    .ratio_to_mpop()
                    .map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"));
                println!(
                    "{:<40} {:>5} {:>7} {:>6.1} {:>7.2} {:>7.0} {:>6.1} {:>7.3} {:>6} {:>7} {:>7}",
                    row.client,
                    row.rtt,
                    messages,
                    mb,
                    secs,
                    *messages as f64 / secs,
                    mb / secs,
                    secs * 1e3 / *messages as f64,
                    cpu,
                    rss,
                    ratio
                );
            }
            Outcome::Skipped(why) => println!("{:<40} {:>5}   skipped: {why}", row.client, row.rtt),
            Outcome::Failed(why) => println!("{:<40} {:>5}   FAILED: {why}", row.client, row.rtt),
        }
    }
}
