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

    /// An assignment to a user who does not exist or is disabled: only people who can
    /// sign in can work a ticket.
    #[error(
        "user #{0} cannot be assigned tickets: they do not exist or are disabled; pick an enabled agent or admin"
    )]
    AssigneeUnavailable(i64),

    /// A merge of a ticket into itself.
    #[error("ticket #{0} cannot be merged into itself; name another ticket")]
    MergeIntoItself(i64),

    /// A merge into, or of, a ticket that was merged already: its mail lives on the ticket
    /// it joined, which is the one to name.
    #[error(
        "ticket #{ticket} was merged into #{merged_into} already; merge with #{merged_into} instead"
    )]
    MergedAlready { ticket: i64, merged_into: i64 },

    /// An outgoing message id that is not in the database.
    #[error("outgoing message #{0} does not exist; list the outbox to find its id")]
    OutboxMessageNotFound(i64),

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

    /// A stored sealed secret did not open in its slot: sealed with another key, sealed
    /// for another row or column (copied there by someone who could write the database),
    /// or altered.
    #[error(
        "{} #{row_id} cannot be decrypted here: it was sealed with another key (was secret.key replaced?) or for another place (copied from another row?), or altered; type the password again to store it anew",
        crate::secret::SealedColumn::by_field(field).map_or(*field, |c| c.what)
    )]
    SecretUndecryptable { field: &'static str, row_id: i64 },

    /// `rotate_key` on a store whose key comes from POPDESK_SECRET_KEY (or was given by
    /// the caller): there is no key file to replace.
    #[error(
        "the key comes from POPDESK_SECRET_KEY, which popdesk cannot change: generate a new key (`head -c 32 /dev/urandom | base64`), put it in another variable, run `popdesk secret rotate --new-key-env THAT_VARIABLE`, then set POPDESK_SECRET_KEY to the new key and restart popdesk"
    )]
    KeyNotInFile,

    /// A sealed secret changed while `secret rotate` re-sealed them all (an admin saved
    /// a password at the same moment). Nothing was changed.
    #[error(
        "{} #{row_id} changed while the key was being rotated; nothing was changed, run the rotation again",
        crate::secret::SealedColumn::by_field(field).map_or(*field, |c| c.what)
    )]
    SecretChangedDuringRotation { field: &'static str, row_id: i64 },

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
    #[error("the {what} is missing from the blob store; restore {restore} from a backup")]
    BlobMissing { what: String, restore: &'static str },

    /// A blob's octets do not hash to its name (found while moving blobs).
    #[error(
        "the stored raw message {sha256} is damaged (its octets hash to {actual}); it was left where it is: restore it from a backup"
    )]
    BlobCorrupt { sha256: String, actual: String },

    /// A blob written for one blob store was handed to the other. A bug in the caller.
    #[error(
        "a raw message written for one blob store was handed to another; this is a bug in popdesk"
    )]
    BlobElsewhere,

    /// `blob_store = "postgres"` without a PostgreSQL database.
    #[error(
        "blob_store = \"postgres\" keeps raw messages in the PostgreSQL database, but this popdesk uses the built-in SQLite file; set database_url to a PostgreSQL database, or use blob_store = \"files\""
    )]
    BlobsNeedPostgres,

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

    /// A ticket search or requester filter longer than
    /// [`MAX_SEARCH_CHARS`](crate::MAX_SEARCH_CHARS).
    #[error("the ticket {field} has at most {max} characters; shorten it")]
    SearchTooLong { field: &'static str, max: usize },

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
        self.database_fault() == Some(DbFault::LockConflict)
    }

    /// True when the database refused the data itself — a value it cannot hold
    /// (PostgreSQL class 22), a constraint it breaks (class 23), a value over a size
    /// limit (54000, SQLite's TOOBIG, CONSTRAINT, MISMATCH), a number over 2^63 — so the
    /// same data fails the same way every time, whichever process runs it. The processor
    /// marks the message that carried it failed, with this error as the reason, and goes
    /// on with the next: one message's data must not hold the queue (promise 5).
    pub fn is_refused_data(&self) -> bool {
        matches!(self, StoreError::TooLarge { .. })
            || self.database_fault() == Some(DbFault::RefusedData)
    }

    fn database_fault(&self) -> Option<DbFault> {
        match self {
            StoreError::Database {
                source: sqlx::Error::Database(db),
                ..
            } => Some(db_fault(db.as_ref())),
            _ => None,
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

/// What a database error says about the operation, read from the backend's own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbFault {
    /// Lost a race with another transaction; running it again is safe.
    LockConflict,
    /// The data itself was refused; running it again fails the same way.
    RefusedData,
    DiskFull,
    /// Anything else: the database or the connection, not the data.
    Other,
}

/// Classifies by the backend that raised the error. The codes must be read per backend:
/// both are digit strings, and a PostgreSQL SQLSTATE read as a SQLite result code
/// means something else entirely (22021, "invalid byte sequence", has 5 = SQLITE_BUSY
/// in its low byte, which once made a NUL in one mail look like a lock conflict to
/// retry forever).
fn db_fault(db: &(dyn sqlx::error::DatabaseError + 'static)) -> DbFault {
    let Some(code) = db.code() else {
        return DbFault::Other;
    };
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        postgres_fault(&code)
    } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        sqlite_fault(&code)
    } else {
        DbFault::Other
    }
}

/// PostgreSQL SQLSTATEs (appendix A of its manual).
fn postgres_fault(sqlstate: &str) -> DbFault {
    match sqlstate {
        // serialization_failure, deadlock_detected, lock_not_available
        "40001" | "40P01" | "55P03" => DbFault::LockConflict,
        // disk_full
        "53100" => DbFault::DiskFull,
        // program_limit_exceeded: a value too large for an index row, say. Only the
        // class's general code: its others (statement too complex, too many columns or
        // arguments) are the statement's fault, not the data's.
        "54000" => DbFault::RefusedData,
        // data_exception, integrity_constraint_violation
        _ if sqlstate.starts_with("22") || sqlstate.starts_with("23") => DbFault::RefusedData,
        _ => DbFault::Other,
    }
}

/// SQLite result codes, reported as the (extended) number; the primary code is its low
/// byte.
fn sqlite_fault(code: &str) -> DbFault {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const FULL: i32 = 13;
    const TOOBIG: i32 = 18;
    const CONSTRAINT: i32 = 19;
    const MISMATCH: i32 = 20;
    match code.parse::<i32>().map(|n| n & 0xff) {
        Ok(BUSY | LOCKED) => DbFault::LockConflict,
        Ok(FULL) => DbFault::DiskFull,
        Ok(TOOBIG | CONSTRAINT | MISMATCH) => DbFault::RefusedData,
        _ => DbFault::Other,
    }
}

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
        sqlx::Error::Database(db) => db_fault(db.as_ref()) == DbFault::DiskFull,
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
        sqlx::Error::Database(db) => match db_fault(db.as_ref()) {
            DbFault::LockConflict => format!(
                "the database could not {action} because another process's work got in its way (a lock held too long, or a deadlock: {source}); retry"
            ),
            DbFault::RefusedData => format!(
                "the database refused the data to {action} ({source}); the same data is refused every time, so retrying will not help"
            ),
            DbFault::DiskFull | DbFault::Other => format!(
                "the database could not {action}: {source}; retry, and report it if it keeps happening"
            ),
        },
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
    fn a_postgres_data_exception_is_refused_data_not_a_lock_conflict() {
        // 22021 is character_not_in_repertoire (a U+0000 in text); its low byte is 5,
        // SQLITE_BUSY's number.
        assert_eq!(postgres_fault("22021"), DbFault::RefusedData);
        assert_eq!(postgres_fault("22001"), DbFault::RefusedData);
        assert_eq!(postgres_fault("23505"), DbFault::RefusedData);
        assert_eq!(postgres_fault("23514"), DbFault::RefusedData);
        assert_eq!(postgres_fault("54000"), DbFault::RefusedData);
    }

    #[test]
    fn postgres_lock_conflicts_and_deadlocks_are_retried() {
        for code in ["40001", "40P01", "55P03"] {
            assert_eq!(postgres_fault(code), DbFault::LockConflict, "{code}");
        }
    }

    #[test]
    fn postgres_errors_of_the_server_are_neither() {
        // undefined_table, too_many_connections, admin_shutdown, statement_too_complex
        for code in ["42P01", "53300", "57P01", "54001"] {
            assert_eq!(postgres_fault(code), DbFault::Other, "{code}");
        }
        assert_eq!(postgres_fault("53100"), DbFault::DiskFull);
        // A SQLite-looking number from PostgreSQL is not read as SQLite's.
        assert_eq!(postgres_fault("00005"), DbFault::Other);
    }

    #[test]
    fn sqlite_codes_are_read_by_their_primary_code() {
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED, SQLITE_LOCKED_SHAREDCACHE
        for code in ["5", "517", "6", "262"] {
            assert_eq!(sqlite_fault(code), DbFault::LockConflict, "{code}");
        }
        // SQLITE_CONSTRAINT_CHECK, SQLITE_CONSTRAINT_TRIGGER, SQLITE_TOOBIG
        for code in ["275", "1811", "18"] {
            assert_eq!(sqlite_fault(code), DbFault::RefusedData, "{code}");
        }
        assert_eq!(sqlite_fault("13"), DbFault::DiskFull);
        assert_eq!(sqlite_fault("1"), DbFault::Other);
        assert_eq!(sqlite_fault("40P01"), DbFault::Other);
    }

    #[test]
    fn a_number_too_large_is_refused_data() {
        let e = StoreError::TooLarge {
            field: "attachment size",
            value: u64::MAX,
        };
        assert!(e.is_refused_data());
        assert!(!e.is_retryable());
    }

    #[test]
    fn other_errors_are_not_disk_full() {
        let e = StoreError::io(
            "write",
            Path::new("/x"),
            io::Error::from_raw_os_error(5), // EIO
        );
        assert!(!e.is_disk_full());
        assert!(
            !StoreError::SecretUndecryptable {
                field: "mailboxes.secret",
                row_id: 1
            }
            .is_disk_full()
        );
    }
}
