//! Outgoing mail as one service for a process: the reply rules, the acknowledger and the
//! sender, and a wake-up so a reply queued from the web goes out at once instead of at
//! the next tick.

use std::sync::Arc;
use std::time::Duration;

use store::{Store, StoreError};
use tokio::sync::Notify;

use crate::{
    AcknowledgementConfig, Acknowledger, Replies, ReplyConfig, SendReport, Sender, SenderConfig,
};

/// How often the outbox is looked at when nobody wakes the sender: retries fall due and
/// acknowledgements are asked for by the processor.
pub const SEND_EVERY: Duration = Duration::from_secs(5);

/// Everything outgoing, cheap to clone.
#[derive(Clone)]
pub struct Outgoing {
    pub replies: Replies,
    pub acknowledger: Acknowledger,
    pub sender: Sender,
    wake: Arc<Notify>,
}

impl Outgoing {
    pub fn new(
        store: Store,
        replies: ReplyConfig,
        acknowledgements: AcknowledgementConfig,
        sender: SenderConfig,
    ) -> Outgoing {
        Outgoing {
            replies: Replies::new(store.clone(), replies),
            acknowledger: Acknowledger::new(store.clone(), acknowledgements),
            sender: Sender::new(store, sender),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Asks the running sender to look at the outbox now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// One pass: acknowledgements wanted, then everything due.
    pub async fn run_once(&self) -> Result<SendReport, StoreError> {
        self.sender.run_once(&self.acknowledger).await
    }

    /// Works the outbox until `stop` resolves: a pass every [`SEND_EVERY`] or when woken.
    /// A store failure is logged and tried again at the next pass.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            match self.run_once().await {
                Ok(report) if report != SendReport::default() => tracing::info!(
                    sent = report.sent,
                    retrying = report.retrying,
                    failed = report.failed,
                    connections = report.connections,
                    "outbox pass"
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "the outbox could not be worked; trying again shortly")
                }
            }
            tokio::select! {
                () = &mut stop => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(SEND_EVERY) => {}
            }
        }
    }
}
