//! popdesk's intake: from a POP3 mailbox into durable storage, nothing lost, nothing
//! twice (promises 1 to 6 of DESIGN.md).
//!
//! - [`Fetcher::fetch`] runs one fetch of one mailbox under its lease.
//! - [`failing`]: a message whose download breaks off is tried again on its own and,
//!   failing the same way run after run, set aside so the rest of the mailbox flows.
//! - [`plan::plan_session`] decides, without I/O, what a session downloads and deletes.
//! - [`probe`] is `mailbox test`: connect and log in, change nothing.
//! - [`Processor`] turns stored raw messages into ticket entries.
//! - [`Scheduler`] polls every enabled mailbox on its interval (`popdesk serve`).
//! - [`supervise`] restarts the scheduler or the processor when its task dies, and
//!   [`health`] says meanwhile which part is down (`/healthz`).

pub mod clock;
mod connect;
mod error;
pub mod failing;
mod fetch;
mod headers;
pub mod health;
mod lease;
pub mod notice;
pub mod plan;
pub mod process;
pub mod schedule;
mod sink;
pub mod supervise;

pub use clock::{Clock, ManualClock, SystemClock};
pub use connect::{Probe, READ_TIMEOUT_VAR, SessionOptions, SessionPlan, probe, session_plan};
pub use error::FetchError;
pub use failing::SET_ASIDE_AFTER;
pub use fetch::{FetchReport, Fetcher, Progress, SESSION_BUDGET};
pub use headers::message_id;
pub use health::{HealthBoard, PartHealth};
pub use lease::DEFAULT_LEASE_TTL;
pub use notice::{NoticeWords, Provider, ProviderSigns};
pub use process::{ProcessReport, Processor, ProcessorConfig};
pub use schedule::{
    FetchNowError, MailboxSchedule, ScheduleState, Scheduler, SchedulerConfig, SchedulerHandle,
};
