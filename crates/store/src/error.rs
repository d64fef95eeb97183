//! The one error type of the store.
//!
//! Callers branch on meaning (`is_disk_full()`, the mailbox variants); the Display of every
//! variant is one sentence for an admin: what happened and what to do. No message carries a
//! secret: sealed secrets and keys never appear in any variant.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `add_mailbox` with a name that is taken.
    #[error(
        "a mailbox named \"{0}\" already exists; choose another name or remove the existing mailbox first"
    )]
    MailboxExists(String),

    /// An operation named a mailbox id that is not (or no longer) in the database.
    #[error(
        "mailbox #{0} does not exist (it may have been removed); reload the mailbox list and try again"
    )]
    MailboxNotFound(i64),

    /// `create_user` with an address that already has an account.
    #[error("a user with the address {0} already exists; edit that user instead")]
    UserExists(String),

    /// A user id that is not (or no longer) in the database.
    #[error("user #{0} does not exist (it may have been removed); reload the user list")]
    UserNotFound(i64),

    /// A run id that is not in the database.
    #[error("fetch run #{0} does not exist; it may have been removed together with its mailbox")]
    RunNotFound(i64),

    /// A ticket id that is not in the database.
    #[error("ticket #{0} does not exist; reload the ticket list and try again")]
    TicketNotFound(i64),

    /// A raw message id that is not in the database.
    #[error("message #{0} does not exist; list the messages to find its id")]
    RawMessageNotFound(i64),

    /// `add_entry` for a raw message that already has a ticket entry (promise 2: one
    /// message, one entry). Nothing was written and the transaction is still usable.
    #[error(
        "message #{raw_message_id} already has a ticket entry; it was not added twice (the processor should have looked for it first)"
    )]
    EntryExists { raw_message_id: i64 },

    /// The database refused or failed an operation.
    #[error("{}", database_sentence(.action, .source))]
    Database {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// Opening the database failed (unreachable server, unreadable file, bad URL).
    #[error(
        "could not open the {backend} database: {source}; check the database URL and that the server or file is reachable"
    )]
    Connect {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// The database URL names a backend the store does not support.
    #[error(
        "the database URL must start with postgres:// or postgresql:// (or leave it out to use the built-in SQLite file)"
    )]
    UnsupportedDatabaseUrl,

    /// The schema could not be brought up to date.
    #[error(
        "could not update the database schema: {source}; a newer popdesk may have migrated this database, or it is not popdesk's"
    )]
    Migrate {
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A file-system operation failed.
    #[error("{}", io_sentence(.action, .path, .source))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A stored sealed secret did not decrypt: another key than the one that sealed it.
    #[error("the mailbox secret cannot be decrypted with this key: was secret.key replaced?")]
    SecretUndecryptable,

    /// POPDESK_SECRET_KEY is set but is not base64 of 32 bytes.
    #[error(
        "POPDESK_SECRET_KEY is not the base64 form of 32 bytes; set it to the output of `head -c 32 /dev/urandom | base64`, or unset it to use secret.key"
    )]
    BadKeyEnv,

    /// The key file exists but does not hold exactly 32 bytes.
    #[error(
        "the key file {0} does not hold a 32-byte key; restore it from a backup (without it stored mailbox secrets cannot be read)"
    )]
    BadKeyFile(PathBuf),

    /// The operating system's random number generator failed.
    #[error(
        "the operating system could not provide random bytes ({0}); check the system's entropy source"
    )]
    Random(String),

    /// A blob the database refers to is not in the blob store.
    #[error(
        "the raw message file {} is missing from the blob store; restore the blobs folder from a backup",
        .0.display()
    )]
    BlobMissing(PathBuf),

    /// A string that is not a lowercase hex sha256 was used as a blob name.
    #[error(
        "\"{0}\" is not a sha256 digest (64 lowercase hex digits); this is a bug in the caller"
    )]
    InvalidDigest(String),

    /// A number does not fit the database's signed 64-bit integers.
    #[error("{field} is too large to store ({value}); use a value below 2^63")]
    TooLarge { field: &'static str, value: u64 },

    /// The database holds a value this version does not understand.
    #[error(
        "the database holds an unknown {what} \"{value}\"; it was probably written by a newer popdesk, so upgrade popdesk"
    )]
    UnknownValue { what: &'static str, value: String },

    /// A stored value that does not read back (JSON edited by hand, or from a newer
    /// popdesk).
    #[error(
        "the database holds an unreadable {what} ({detail}); it was edited by hand or written by a newer popdesk"
    )]
    Unreadable { what: &'static str, detail: String },

    /// A text form (tls mode, policy, ...) that does not parse.
    #[error("\"{value}\" is not a valid {what}; use one of: {}", .expected.join(", "))]
    Parse {
        what: &'static str,
        value: String,
        expected: &'static [&'static str],
    },
}

impl StoreError {
    /// True when the cause is a full disk or an exceeded quota (ENOSPC, EDQUOT, SQLite's
    /// SQLITE_FULL, PostgreSQL's disk_full), anywhere in the chain of causes. The fetcher
    /// uses it to say "the disk is full" rather than a generic storage failure.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => io_is_disk_full(source),
            StoreError::Database { source, .. } | StoreError::Connect { source, .. } => {
                sqlx_is_disk_full(source)
            }
            StoreError::Migrate { source } => match source {
                sqlx::migrate::MigrateError::Execute(e)
                | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => sqlx_is_disk_full(e),
                other => error_is_disk_full(other),
            },
            _ => false,
        }
    }

    /// True when the operation lost a race with another process's transaction — a
    /// PostgreSQL deadlock or serialization failure, a lock wait that timed out, SQLite
    /// busy — and nothing of it was committed: running the whole transaction again (a
    /// processing batch, say) is safe and will most likely succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Database {
                source: sqlx::Error::Database(db),
                ..
            } => db.code().is_some_and(|c| is_lock_conflict(&c)),
            _ => false,
        }
    }

    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { action, source }
    }
}

/// For callers that hold a bare `io::Error` from writing a message (through
/// `AsyncWrite`): a [`StoreError`] inside it comes back out as it was; any other error
/// becomes an I/O error of the blob store.
impl From<io::Error> for StoreError {
    fn from(error: io::Error) -> Self {
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<StoreError>())
        {
            match error.downcast::<StoreError>() {
                Ok(inner) => return inner,
                Err(error) => {
                    return StoreError::io(
                        "write a raw message to the blob store",
                        Path::new(""),
                        error,
                    );
                }
            }
        }
        StoreError::io(
            "write a raw message to the blob store",
            Path::new(""),
            error,
        )
    }
}

const ENOSPC: i32 = 28;
const EDQUOT: i32 = 122;
const SQLITE_FULL: i32 = 13;
const PG_DISK_FULL: &str = "53100";

fn io_is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(ENOSPC) | Some(EDQUOT))
        || matches!(
            e.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
        // A custom io::Error's source() skips its payload, so look at the payload itself.
        || e.get_ref().is_some_and(|inner| error_is_disk_full(inner))
}

fn sqlx_is_disk_full(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(io) => io_is_disk_full(io),
        sqlx::Error::Database(db) => match db.code() {
            // SQLite reports (extended) result codes as numbers; the primary code is the
            // low byte.
            Some(code) => {
                code == PG_DISK_FULL || code.parse::<i32>().is_ok_and(|n| n & 0xff == SQLITE_FULL)
            }
            None => false,
        },
        other => chain_is_disk_full(other),
    }
}

/// Whether this error, or any error in its chain of causes, says the disk is full.
fn error_is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = e.downcast_ref::<io::Error>() {
        return io_is_disk_full(io) || chain_is_disk_full(io);
    }
    if let Some(sqlx) = e.downcast_ref::<sqlx::Error>() {
        return sqlx_is_disk_full(sqlx);
    }
    if let Some(store) = e.downcast_ref::<StoreError>() {
        return store.is_disk_full();
    }
    chain_is_disk_full(e)
}

fn chain_is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    e.source().is_some_and(error_is_disk_full)
}

/// SQLITE_BUSY (5) / SQLITE_LOCKED (6) with any extended code; PostgreSQL
/// lock_not_available, deadlock_detected, serialization_failure.
fn is_lock_conflict(code: &str) -> bool {
    code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
        || matches!(code, "55P03" | "40P01" | "40001")
}

fn io_sentence(action: &str, path: &Path, source: &io::Error) -> String {
    let what = if path.as_os_str().is_empty() {
        action.to_string()
    } else {
        format!("{action} {}", path.display())
    };
    if io_is_disk_full(source) {
        format!(
            "the disk is full: could not {what}; free some space (or raise the quota) and run again"
        )
    } else if source.kind() == io::ErrorKind::PermissionDenied {
        format!(
            "permission denied: could not {what}; let the user running popdesk write to the data folder"
        )
    } else {
        format!("could not {what}: {source}; check the data folder and its disk")
    }
}

fn database_sentence(action: &str, source: &sqlx::Error) -> String {
    if sqlx_is_disk_full(source) {
        return format!(
            "the disk is full: the database could not {action}; free some space on the database's disk and run again"
        );
    }
    match source {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => format!(
            "the database could not {action} because it is unreachable ({source}); check that it is running and retry"
        ),
        sqlx::Error::Database(db) if db.code().is_some_and(|c| is_lock_conflict(&c)) => {
            format!(
                "the database could not {action} because another process's work got in its way (a lock held too long, or a deadlock: {source}); retry"
            )
        }
        _ => format!(
            "the database could not {action}: {source}; retry, and report it if it keeps happening"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_is_disk_full() {
        let e = StoreError::io(
            "write",
            Path::new("/x"),
            io::Error::from_raw_os_error(ENOSPC),
        );
        assert!(e.is_disk_full());
        assert!(e.to_string().starts_with("the disk is full"), "{e}");
        let e = StoreError::io(
            "write",
            Path::new("/x"),
            io::Error::from_raw_os_error(EDQUOT),
        );
        assert!(e.is_disk_full());
    }

    #[test]
    fn enospc_wrapped_inside_another_error_is_disk_full() {
        let inner = io::Error::from_raw_os_error(ENOSPC);
        let outer = io::Error::other(inner);
        let e = StoreError::io("write", Path::new("/x"), outer);
        assert!(e.is_disk_full());
        let e = StoreError::Database {
            action: "commit",
            source: sqlx::Error::Io(io::Error::from_raw_os_error(ENOSPC)),
        };
        assert!(e.is_disk_full());
    }

    #[test]
    fn a_store_error_carried_through_async_write_stays_disk_full() {
        let inner = StoreError::io(
            "write",
            Path::new("/x"),
            io::Error::from_raw_os_error(ENOSPC),
        );
        let carried = io::Error::new(io::ErrorKind::StorageFull, inner);
        let back = StoreError::from(carried);
        assert!(matches!(back, StoreError::Io { .. }));
        assert!(back.is_disk_full());
        let plain = StoreError::from(io::Error::from_raw_os_error(ENOSPC));
        assert!(plain.is_disk_full());
        assert!(
            plain
                .to_string()
                .starts_with("the disk is full: could not write a raw message to the blob store;"),
            "{plain}"
        );
    }

    #[test]
    fn other_errors_are_not_disk_full() {
        let e = StoreError::io(
            "write",
            Path::new("/x"),
            io::Error::from_raw_os_error(5), // EIO
        );
        assert!(!e.is_disk_full());
        assert!(!StoreError::SecretUndecryptable.is_disk_full());
    }
}
