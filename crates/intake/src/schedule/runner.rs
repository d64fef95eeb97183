//! The scheduler's loop on tokio.

use std::sync::Arc;

use store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Command, Phase, SchedulerConfig, SchedulerHandle, Shared};
use crate::clock::Clock;
use crate::fetch::Fetcher;

/// Owns the polling loop; [`Scheduler::run`] drives it until shutdown.
pub struct Scheduler {
    #[allow(dead_code)]
    store: Store,
    #[allow(dead_code)]
    fetcher: Fetcher,
    #[allow(dead_code)]
    config: SchedulerConfig,
    shared: Arc<Shared>,
    #[allow(dead_code)]
    commands: mpsc::UnboundedReceiver<Command>,
}

impl Scheduler {
    /// A scheduler over the store's mailboxes. `fetcher` should already have its
    /// processor (`with_processor`): what a run stores is processed after each batch.
    pub fn new(
        store: Store,
        fetcher: Fetcher,
        clock: Arc<dyn Clock>,
        config: SchedulerConfig,
    ) -> (Scheduler, SchedulerHandle) {
        let (sender, commands) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(sender, clock));
        let handle = SchedulerHandle {
            shared: shared.clone(),
        };
        (
            Scheduler {
                store,
                fetcher,
                config,
                shared,
                commands,
            },
            handle,
        )
    }

    /// Polls until `shutdown` fires, then waits for the fetches in flight to stop at
    /// their safe points.
    pub async fn run(self, shutdown: CancellationToken) {
        self.shared.board().phase = Phase::Running;
        shutdown.cancelled().await;
        self.shared.board().phase = Phase::Stopped;
    }
}
