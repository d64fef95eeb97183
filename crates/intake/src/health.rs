//! Whether the background parts of a popdesk process (the scheduler, the processor) are
//! working, for `/healthz`.
//!
//! The web service keeps answering when a background task dies, so its own liveness says
//! nothing about whether mail comes in. [`crate::supervise`] writes each part's state
//! here as it starts, ends and restarts it; `/healthz` reads it and answers 503 naming
//! the part that is down.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The name a part goes by in `/healthz` and in the log.
pub type PartName = &'static str;

/// What one part is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartHealth {
    /// Started and working.
    Running,
    /// It ended unexpectedly (a panic, an early return) and waits to be started again.
    /// The cause is for the log and the process; `/healthz` is public and shows only
    /// the word.
    Restarting { cause: String },
    /// Stopped on purpose: the process is shutting down.
    Stopped,
}

impl PartHealth {
    /// The word `/healthz` shows: `ok`, `restarting` or `stopped`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PartHealth::Running => "ok",
            PartHealth::Restarting { .. } => "restarting",
            PartHealth::Stopped => "stopped",
        }
    }

    pub fn is_running(&self) -> bool {
        *self == PartHealth::Running
    }
}

/// The state of every registered part, shared by the supervisor (which writes) and the
/// web service (which reads). Cheap to clone; every clone is the same board.
#[derive(Debug, Clone, Default)]
pub struct HealthBoard {
    parts: Arc<Mutex<BTreeMap<PartName, PartHealth>>>,
}

impl HealthBoard {
    /// A board with no parts: healthy until a part is registered and goes down.
    pub fn new() -> HealthBoard {
        HealthBoard::default()
    }

    /// Records what `part` is doing now (registering it on first use).
    pub fn set(&self, part: PartName, health: PartHealth) {
        self.parts().insert(part, health);
    }

    /// One part's state; None if it was never registered.
    pub fn get(&self, part: PartName) -> Option<PartHealth> {
        self.parts().get(part).cloned()
    }

    /// Every registered part, by name.
    pub fn snapshot(&self) -> Vec<(PartName, PartHealth)> {
        self.parts()
            .iter()
            .map(|(name, health)| (*name, health.clone()))
            .collect()
    }

    /// Whether every registered part is running.
    pub fn all_running(&self) -> bool {
        self.parts().values().all(PartHealth::is_running)
    }

    /// The map, even after a panic elsewhere: it holds plain values, always consistent.
    fn parts(&self) -> MutexGuard<'_, BTreeMap<PartName, PartHealth>> {
        self.parts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_board_is_healthy() {
        assert!(HealthBoard::new().all_running());
    }

    #[test]
    fn one_part_restarting_makes_the_board_unhealthy_and_is_named() {
        let board = HealthBoard::new();
        let seen_by_web = board.clone();
        board.set("scheduler", PartHealth::Running);
        board.set("processor", PartHealth::Running);
        assert!(seen_by_web.all_running());
        board.set(
            "scheduler",
            PartHealth::Restarting {
                cause: "it panicked".into(),
            },
        );
        assert!(!seen_by_web.all_running());
        let words: Vec<_> = seen_by_web
            .snapshot()
            .into_iter()
            .map(|(name, health)| (name, health.as_str()))
            .collect();
        assert_eq!(words, [("processor", "ok"), ("scheduler", "restarting")]);
        board.set("scheduler", PartHealth::Running);
        assert!(seen_by_web.all_running());
    }
}
