//! Outgoing mail as one service for a process: the reply rules, the acknowledger, the
//! notifier and the sender, and a wake-up so a reply queued from the web goes out at once instead of at
//! the next tick.

use std::sync::Arc;
use std::time::Duration;

use store::{Store, StoreError};
use tokio::sync::Notify;

use crate::{
    AcknowledgementConfig, Acknowledger, NotificationConfig, Notifier, Replies, ReplyConfig,
    SendReport, Sender, SenderConfig,
};

/// How often the outbox is looked at when nobody wakes the sender: retries fall due and
/// acknowledgements are asked for by the processor.
pub const SEND_EVERY: Duration = Duration::from_secs(5);

/// Everything outgoing, cheap to clone.
#[derive(Clone)]
pub struct Outgoing {
    pub replies: Replies,
    pub acknowledger: Acknowledger,
    pub notifier: Notifier,
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
        // Notifications name tickets as acknowledgements do; their link waits for
        // `with_public_url`.
        let notifications = NotificationConfig {
            ticket_prefix: acknowledgements.ticket_prefix.clone(),
            public_url: None,
        };
        Outgoing {
            replies: Replies::new(store.clone(), replies),
            acknowledger: Acknowledger::new(store.clone(), acknowledgements),
            notifier: Notifier::new(store.clone(), notifications),
            sender: Sender::new(store, sender),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Notifications link to tickets under `public_url` (without a trailing slash).
    pub fn with_public_url(mut self, public_url: Option<&str>) -> Outgoing {
        let config = NotificationConfig {
            public_url: public_url.map(|url| url.trim_end_matches('/').to_string()),
            ..self.notifier.config().clone()
        };
        self.notifier = Notifier::new(self.sender.store().clone(), config);
        self
    }

    /// Asks the running sender to look at the outbox now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// One pass: acknowledgements and notifications wanted, then everything due.
    pub async fn run_once(&self) -> Result<SendReport, StoreError> {
        self.notifier.queue_wanted().await?;
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
