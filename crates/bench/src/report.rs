//! The table the benchmark prints.

use std::time::Duration;

/// One client's run over the whole mailbox.
#[derive(Clone, Debug)]
pub struct Row {
    pub client: String,
    pub rtt: String,
    pub outcome: Outcome,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Measured {
        messages: usize,
        /// Bytes as sent on the wire (CRLF), before dot-stuffing.
        bytes: u64,
        elapsed: Duration,
    },
    /// Not run, with the reason (e.g. the client is not integrated yet).
    Skipped(String),
    Failed(String),
}

impl Row {
    /// Messages per second.
    pub fn rate(&self) -> Option<f64> {
        match self.outcome {
            Outcome::Measured {
                messages, elapsed, ..
            } => Some(messages as f64 / elapsed.as_secs_f64()),
            _ => None,
        }
    }
}

/// MB here are 10^6 bytes.
pub fn print(rows: &[Row]) {
    println!(
        "{:<38} {:>6} {:>9} {:>8} {:>9} {:>11} {:>8}",
        "client", "RTT", "messages", "MB", "seconds", "messages/s", "MB/s"
    );
    for row in rows {
        match &row.outcome {
            Outcome::Measured {
                messages,
                bytes,
                elapsed,
            } => {
                let secs = elapsed.as_secs_f64();
                let mb = *bytes as f64 / 1e6;
                println!(
                    "{:<38} {:>6} {:>9} {:>8.1} {:>9.2} {:>11.1} {:>8.1}",
                    row.client,
                    row.rtt,
                    messages,
                    mb,
                    secs,
                    *messages as f64 / secs,
                    mb / secs
                );
            }
            Outcome::Skipped(why) => println!("{:<38} {:>6}   skipped: {why}", row.client, row.rtt),
            Outcome::Failed(why) => println!("{:<38} {:>6}   FAILED: {why}", row.client, row.rtt),
        }
    }
}
