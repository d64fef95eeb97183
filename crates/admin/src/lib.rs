//! The rules of administering popdesk — mailboxes, users, API tokens — in one place.
//!
//! The web UI, the JSON API and the command line are adapters: each turns its input into
//! a [`MailboxChange`] (or a user or token change), calls [`Administration`], and turns
//! an [`AdminError`] back into its own words (a 422 naming the field, a message beside
//! the form's field, one sentence on stderr). Validation, defaults, the secret rule and
//! telling the scheduler live here and nowhere else.

mod error;
pub mod mailbox;
pub mod password;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use intake::schedule::SchedulerHandle;
use intake::{Clock, SessionOptions, SystemClock};
use store::Store;

pub use error::{AdminError, Field};
pub use mailbox::connection::{ConnectionProblem, ConnectionReport, ServerFacts};
pub use mailbox::{MailboxChange, SecretRule};
pub use password::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, hash_password, hash_password_with, verify_password,
};
pub use password::{PasswordCost, PasswordError};
pub use tokens::{MAX_TOKEN_DAYS, NewToken};
pub use users::{NewUser, UserChange};

/// The administration service: the store, the scheduler to tell about changes (when one
/// runs in this process), and the knobs a connection test needs. Cheap to clone.
#[derive(Clone)]
pub struct Administration {
    store: Store,
    scheduler: Option<SchedulerHandle>,
    session: SessionOptions,
    clock: Arc<dyn Clock>,
    password_cost: PasswordCost,
    /// Mailboxes' OAuth2 connections: tokens for "Test connection", and connecting.
    oauth: oauth::Connections,
}

impl Administration {
    /// Without a scheduler: changes are picked up by a scheduler in another process at
    /// its next periodic reload, and "fetch now" is refused.
    pub fn new(store: Store) -> Administration {
        Administration {
            oauth: oauth::Connections::new(store.clone()),
            store,
            scheduler: None,
            session: SessionOptions::default(),
            clock: Arc::new(SystemClock),
            password_cost: PasswordCost::default(),
        }
    }

    /// Tell this scheduler about every change, and let "fetch now" use it.
    pub fn with_scheduler(mut self, scheduler: SchedulerHandle) -> Administration {
        self.scheduler = Some(scheduler);
        self
    }

    /// Time limits and pipelining for connection tests.
    pub fn with_session_options(mut self, session: SessionOptions) -> Administration {
        self.session = session;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Administration {
        self.clock = clock;
        self
    }

    /// The argon2id cost of passwords set from now on (tests lower it).
    pub fn with_password_cost(mut self, cost: PasswordCost) -> Administration {
        self.password_cost = cost;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn scheduler(&self) -> Option<&SchedulerHandle> {
        self.scheduler.as_ref()
    }

    pub fn session_options(&self) -> &SessionOptions {
        &self.session
    }

    pub fn password_cost(&self) -> PasswordCost {
        self.password_cost
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The scheduler should read the mailboxes again.
    fn reload(&self) {
        if let Some(scheduler) = &self.scheduler {
            scheduler.reload();
        }
    }
}
