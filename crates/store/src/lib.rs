//! popdesk storage: everything the intake must keep durably.
//!
//! - [`Store`]: the database (SQLite by default, PostgreSQL for several workers) through one
//!   sqlx `AnyPool` code path: mailboxes with their sealed secrets, the per-mailbox UIDL
//!   ledger, raw message records, fetch runs, and the per-mailbox lease that keeps one
//!   fetcher per mailbox across processes.
//! - Tickets, their entries and requesters, and the processing status of every raw
//!   message; the processor writes a batch of decisions in one [`ProcessingTx`].
//! - Messages the server cannot hand out ([`FailingMessage`]): each failed download
//!   attempt, and whether the message is set aside (left on the server, no longer
//!   retrieved) until the admin asks to try again.
//! - [`BlobStore`]: the raw bytes of every message, content-addressed by sha256, on the
//!   file system (temp file, rename, filesystem sync) or in PostgreSQL (in chunks).
//! - The people who sign in ([`User`] with a [`Role`]), their sessions and API tokens,
//!   kept only as hashes; what they do on tickets ([`TicketEvent`]: notes, status changes).
//! - [`SecretBox`]: XChaCha20-Poly1305 sealing of mailbox passwords and tokens at rest,
//!   each bound to its slot (column and row, [`SEALED_COLUMNS`]); key rotation.
//!
//! Timestamps are integer milliseconds since the Unix epoch, always passed in by the
//! caller so tests can drive the clock. Text from mail reaches the database only through
//! one function (`text::db_text`: U+0000 becomes U+FFFD, which PostgreSQL would refuse
//! and SQLite would take), so both backends store the same text.

mod account;
mod assignment;
mod batch_tickets;
mod blob;
mod db;
mod error;
mod event;
mod failing_message;
mod fetch_run;
mod lease;
mod ledger;
mod mailbox;
mod merge;
mod notification;
mod oauth;
mod outbox;
mod preferences;
mod processing;
mod provider_notice;
mod raw_message;
mod sealed;
mod search;
mod secret;
mod sending;
mod sign_in_limit;
mod team;
mod text;
mod ticket;
mod ticket_order;

pub use account::{ApiToken, Role, User};
pub use batch_tickets::OpenedTicket;
pub use blob::{
    BlobBackend, BlobReader, BlobStore, BlobWriter, BlockingBlobs, FinishedBlob, MigrationReport,
    migrate_blobs,
};
pub use db::{Backend, Store, StoreOptions};
pub use error::StoreError;
pub use event::{TicketEvent, TicketEventKind};
pub use failing_message::{
    FailedRetrieval, FailingMessage, FailureKind, RetrievalAttempt, SAME_PLACE_OCTETS,
};
pub use fetch_run::{FetchRun, RunCounts, RunOutcome};
pub use lease::{LeaseHolder, LeaseOutcome};
pub use ledger::{CommitOutcome, LedgerEntry, LedgerState};
pub use mailbox::{
    AuthMethod, CertFingerprint, DEFAULT_BATCH_BYTES, DEFAULT_BATCH_MESSAGES, Mailbox,
    MailboxSettings, NewAddressReference, Oversize, Policy, StartMode, TlsMode,
};
pub use notification::{NotificationEvent, WantedNotification};
pub use oauth::{
    ClientSecretChange, OAuthConnection, OAuthFlow, OAuthProvider, OAuthSettings, OAuthState,
    OAuthTokens, PendingAuthorization,
};
pub use outbox::{
    AcknowledgementOutcome, NewOutboxMessage, OutboxKind, OutboxMessage, OutboxState,
    WantedAcknowledgement,
};
pub use preferences::Preferences;
pub use processing::{BatchKnown, ProcessRecord, ProcessStatus, ProcessingTx};
pub use provider_notice::{NoticeKind, ProviderNotice};
pub use raw_message::{NewRawMessage, RawMessage, RawStatus};
pub use search::{Snippet, SnippetField, SnippetPiece, TicketHit, ticket_number};
pub use secret::{
    KEY_ENV, KEY_FILE, KeyFileExposure, KeySource, PENDING_KEY_FILE, SEALED_COLUMNS, SealedColumn,
    SecretBox, SecretSlot, key_file_exposure,
};
pub use sending::{SendingSettings, SmtpAuth, SmtpSecretChange};
pub use sign_in_limit::SignInKey;
pub use ticket::{
    Assignee, AssigneeFilter, EntryAttachment, EntryKind, ForwardedMessage, MAX_SEARCH_CHARS,
    MailboxScope, NewTicketEntry, Person, Ticket, TicketEntry, TicketFilter, TicketStatus,
};
pub use ticket_order::{SortKey, TicketCursor, TicketListPage, TicketSort, Toward};
