//! Mailbox secrets at rest (promise 7): XChaCha20-Poly1305 with a random 24-byte nonce per
//! seal, so the database alone (a backup, a dump, a stolen file) reveals no password or
//! token.
//!
//! Every secret is sealed for its *slot*: the column it lives in and the row that owns it
//! are the associated data (format 2). Someone who can write the database but does not
//! hold the key cannot move mailbox A's password into mailbox B (whose server they
//! control): the copy does not open there. Format 1, from before slots, still opens, and
//! the store re-seals it as format 2 in one pass when it opens ([`Store::open`]).
//!
//! The key is 32 random bytes in `data_dir/secret.key` (mode 0600, created on first
//! open), or the base64 of 32 bytes in `POPDESK_SECRET_KEY`, which wins over the file so
//! deployments can keep the key out of the data folder and its backups.
//!
//! `popdesk secret rotate` writes the next key to `secret.key.new` before it re-seals
//! anything and renames it over `secret.key` only after the re-sealing committed. A box
//! loaded while `secret.key.new` exists holds both keys and opens with either (the
//! *pending* key); the store then settles which one the database uses (see
//! `Store::settle_pending_key`).
//!
//! [`Store::open`]: crate::Store::open

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use secrecy::SecretString;

use crate::StoreError;

/// The environment variable that carries the key (base64 of 32 bytes).
pub const KEY_ENV: &str = "POPDESK_SECRET_KEY";
/// The key file's name in the data folder.
pub const KEY_FILE: &str = "secret.key";
/// The next key during `popdesk secret rotate`, until the re-sealing has committed.
pub const PENDING_KEY_FILE: &str = "secret.key.new";
/// Held (flock) while a rotation runs and while an open settles a pending key, so an open
/// never discards the key of a rotation still under way.
pub(crate) const ROTATION_LOCK_FILE: &str = ".secret-rotate.lock";

/// The length of a key in bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// First byte of secrets sealed without a slot (before format 2): opened, never written.
const FORMAT_V1: u8 = 1;
/// First byte of secrets sealed for their slot.
const FORMAT_V2: u8 = 2;

/// Every database column that holds sealed secrets: the one list the upgrade pass and
/// `secret rotate` walk. A new sealed column is one line here (and its slot in the code
/// that seals it); sealing for a field not listed here is a bug that tests catch.
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        field: "mailboxes.secret",
        table: "mailboxes",
        id_column: "id",
        column: "secret",
        what: "the password of mailbox",
    },
    SealedColumn {
        field: "mailboxes.smtp_secret",
        table: "mailboxes",
        id_column: "id",
        column: "smtp_secret",
        what: "the SMTP password of mailbox",
    },
    SealedColumn {
        field: "mailboxes.oauth_client_secret",
        table: "mailboxes",
        id_column: "id",
        column: "oauth_client_secret",
        what: "the OAuth2 client secret of mailbox",
    },
    SealedColumn {
        field: "mailboxes.oauth_access_token",
        table: "mailboxes",
        id_column: "id",
        column: "oauth_access_token",
        what: "the OAuth2 access token of mailbox",
    },
    SealedColumn {
        field: "mailboxes.oauth_refresh_token",
        table: "mailboxes",
        id_column: "id",
        column: "oauth_refresh_token",
        what: "the OAuth2 refresh token of mailbox",
    },
    SealedColumn {
        field: "oauth_authorizations.verifier",
        table: "oauth_authorizations",
        id_column: "id",
        column: "verifier",
        what: "the PKCE verifier of OAuth2 authorization",
    },
];

/// The mailbox's POP3 password or token.
pub(crate) const MAILBOX_SECRET: &SealedColumn = &SEALED_COLUMNS[0];
/// The mailbox's own SMTP password.
pub(crate) const SMTP_SECRET: &SealedColumn = &SEALED_COLUMNS[1];
/// A mailbox's OAuth2 client secret, access token and refresh token.
pub(crate) const OAUTH_CLIENT_SECRET: &SealedColumn = &SEALED_COLUMNS[2];
pub(crate) const OAUTH_ACCESS_TOKEN: &SealedColumn = &SEALED_COLUMNS[3];
pub(crate) const OAUTH_REFRESH_TOKEN: &SealedColumn = &SEALED_COLUMNS[4];
/// The PKCE verifier of an authorization-code flow under way.
pub(crate) const OAUTH_VERIFIER: &SealedColumn = &SEALED_COLUMNS[5];

/// A database column that holds sealed secrets, one per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    /// The slot's field name, bound into every secret of this column: `table.column`.
    pub field: &'static str,
    pub table: &'static str,
    /// The column that identifies the owning row (an integer).
    pub id_column: &'static str,
    pub column: &'static str,
    /// Words for an admin, followed by ` #<row id>`: "the password of mailbox".
    pub what: &'static str,
}

impl SealedColumn {
    /// The slot of this column in the row with this id.
    pub fn slot(&self, row_id: i64) -> SecretSlot {
        SecretSlot {
            field: self.field,
            row_id,
        }
    }

    /// The listed column with this field name.
    pub fn by_field(field: &str) -> Option<&'static SealedColumn> {
        SEALED_COLUMNS.iter().find(|c| c.field == field)
    }
}

/// Where a sealed secret lives: its field (`table.column`, one of [`SEALED_COLUMNS`]) and
/// the id of the row that owns it. Bound into the ciphertext, so it opens only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSlot {
    pub field: &'static str,
    pub row_id: i64,
}

impl SecretSlot {
    /// The slot of `field` (`table.column`) in row `row_id`.
    pub fn new(field: &'static str, row_id: i64) -> SecretSlot {
        SecretSlot { field, row_id }
    }

    /// The associated data: a fixed label, the field and the row id, NUL-separated so no
    /// two slots give the same bytes.
    fn associated_data(&self) -> Vec<u8> {
        format!("popdesk sealed secret\0{}\0{}", self.field, self.row_id).into_bytes()
    }
}

/// Where the key came from: `secret rotate` can replace a file, not the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `data_dir/secret.key`.
    File,
    /// `POPDESK_SECRET_KEY`.
    Environment,
    /// Given by the caller ([`SecretBox::from_key`]).
    Given,
}

/// Seals and opens secrets with the installation's key (and, during a rotation that did
/// not finish, opens with the pending key too).
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    pending: Option<XChaCha20Poly1305>,
    source: KeySource,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("key", &"[redacted]")
            .field("pending", &self.pending.as_ref().map(|_| "[redacted]"))
            .field("source", &self.source)
            .finish()
    }
}

/// Which of a box's keys opened a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenedWith {
    Current,
    Pending,
}

impl SecretBox {
    /// A box with the given key.
    pub fn from_key(key: &[u8; KEY_LEN]) -> SecretBox {
        SecretBox {
            cipher: XChaCha20Poly1305::new(&Key::from(*key)),
            pending: None,
            source: KeySource::Given,
        }
    }

    /// A box with the key in the base64 text `value` (what `POPDESK_SECRET_KEY` holds).
    pub fn from_base64(value: &str) -> Option<SecretBox> {
        parse_base64_key(value).map(|key| SecretBox::from_key(&key))
    }

    /// A fresh random key.
    pub fn random_key() -> Result<[u8; KEY_LEN], StoreError> {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(|e| StoreError::Random(e.to_string()))?;
        Ok(key)
    }

    /// Where this box's key came from.
    pub fn source(&self) -> KeySource {
        self.source
    }

    /// Whether a pending key (`secret.key.new`) was found beside the current one.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The installation's box: the key from `POPDESK_SECRET_KEY` if set, else from
    /// `data_dir/secret.key`, which is created (32 random bytes, mode 0600) if missing.
    /// A `secret.key.new` beside it is loaded as the pending key. A key file that others
    /// than its owner may read is logged as a warning.
    pub async fn load(data_dir: &Path) -> Result<SecretBox, StoreError> {
        Self::load_with(data_dir, std::env::var_os(KEY_ENV)).await
    }

    /// [`load`](Self::load) with the environment's value passed in (tests cannot set
    /// environment variables safely while other tests run).
    pub(crate) async fn load_with(
        data_dir: &Path,
        env_key: Option<std::ffi::OsString>,
    ) -> Result<SecretBox, StoreError> {
        if let Some(value) = env_key {
            let key = value
                .to_str()
                .and_then(parse_base64_key)
                .ok_or(StoreError::BadKeyEnv)?;
            let mut sb = SecretBox::from_key(&key);
            sb.source = KeySource::Environment;
            return Ok(sb);
        }
        let dir = data_dir.to_path_buf();
        let (key, pending) = tokio::task::spawn_blocking(move || {
            let path = dir.join(KEY_FILE);
            let key = load_or_create_key_file(&path)?;
            warn_if_exposed(&path);
            let pending_path = dir.join(PENDING_KEY_FILE);
            let pending = match std::fs::read(&pending_path) {
                Ok(bytes) => Some(parse_key_file(&pending_path, bytes)?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(StoreError::io("read the key file", &pending_path, e)),
            };
            Ok((key, pending))
        })
        .await
        .map_err(|e| StoreError::io("read the key file", Path::new(KEY_FILE), e.into()))??;
        let mut sb = SecretBox::from_key(&key);
        sb.source = KeySource::File;
        sb.pending = pending.map(|key| XChaCha20Poly1305::new(&Key::from(key)));
        Ok(sb)
    }

    /// This box with its pending key made the current one (the rotation had committed).
    pub(crate) fn promote_pending(&self) -> SecretBox {
        match &self.pending {
            Some(pending) => SecretBox {
                cipher: pending.clone(),
                pending: None,
                source: self.source,
            },
            None => self.clone(),
        }
    }

    /// This box without its pending key (the rotation never committed).
    pub(crate) fn without_pending(&self) -> SecretBox {
        SecretBox {
            pending: None,
            ..self.clone()
        }
    }

    /// Encrypts a secret for its slot: format byte 2, nonce, ciphertext with tag; the
    /// slot is the associated data.
    ///
    /// # Panics
    /// Only if the operating system cannot provide 24 random bytes, where no safe nonce
    /// exists (getrandom does not fail on the platforms popdesk runs on).
    pub fn seal(&self, slot: SecretSlot, secret: &str) -> Vec<u8> {
        debug_assert!(
            SealedColumn::by_field(slot.field).is_some(),
            "{} is not in SEALED_COLUMNS: rotation and upgrades would miss it",
            slot.field
        );
        let mut nonce = [0u8; NONCE_LEN];
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut nonce).expect("the operating system's random number generator failed");
        let aad = slot.associated_data();
        #[allow(clippy::expect_used)]
        let ciphertext = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any secret shorter than 256 GiB");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_V2);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Decrypts what [`seal`](Self::seal) sealed for this slot (or what an earlier
    /// popdesk sealed in format 1, which names no slot). Another key, another slot (a
    /// secret copied from another row), or altered bytes give
    /// [`StoreError::SecretUndecryptable`] naming the slot.
    pub fn open(&self, slot: SecretSlot, sealed: &[u8]) -> Result<SecretString, StoreError> {
        self.open_reporting(slot, sealed).map(|(secret, _)| secret)
    }

    /// [`open`](Self::open), also saying which key opened it.
    pub(crate) fn open_reporting(
        &self,
        slot: SecretSlot,
        sealed: &[u8],
    ) -> Result<(SecretString, OpenedWith), StoreError> {
        let refused = || StoreError::SecretUndecryptable {
            field: slot.field,
            row_id: slot.row_id,
        };
        let (&version, rest) = sealed.split_first().ok_or_else(refused)?;
        if rest.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| refused())?;
        let aad = match version {
            FORMAT_V1 => Vec::new(),
            FORMAT_V2 => slot.associated_data(),
            _ => return Err(refused()),
        };
        let nonce = XNonce::from(nonce);
        let payload = || Payload {
            msg: ciphertext,
            aad: &aad,
        };
        let (plain, with) = match self.cipher.decrypt(&nonce, payload()) {
            Ok(plain) => (plain, OpenedWith::Current),
            Err(_) => {
                let pending = self.pending.as_ref().ok_or_else(refused)?;
                let plain = pending.decrypt(&nonce, payload()).map_err(|_| refused())?;
                (plain, OpenedWith::Pending)
            }
        };
        let text = String::from_utf8(plain).map_err(|_| refused())?;
        Ok((SecretString::from(text), with))
    }

    /// Whether these sealed bytes are in the format without a slot (re-sealed on open).
    pub(crate) fn is_unbound(sealed: &[u8]) -> bool {
        sealed.first() == Some(&FORMAT_V1)
    }
}

fn parse_base64_key(text: &str) -> Option<[u8; KEY_LEN]> {
    BASE64
        .decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; KEY_LEN]>::try_from(bytes).ok())
}

/// What is wrong with a key file's permissions: anyone but its owner may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileExposure {
    pub path: PathBuf,
    /// The permission bits (e.g. 0o644).
    pub mode: u32,
}

impl std::fmt::Display for KeyFileExposure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the key file {} may be read by other users (mode {:o}): anyone who reads it and a copy of the database can read every mailbox password; run `chmod 600 {}`",
            self.path.display(),
            self.mode,
            self.path.display()
        )
    }
}

/// Whether the key file at `path` is readable (or writable) by its group or by others.
/// None when it is private, or on systems without Unix permissions.
pub fn key_file_exposure(path: &Path) -> Option<KeyFileExposure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| KeyFileExposure {
            path: path.to_path_buf(),
            mode,
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn warn_if_exposed(path: &Path) {
    if let Some(exposure) = key_file_exposure(path) {
        tracing::warn!(path = %exposure.path.display(), mode = format!("{:o}", exposure.mode), "{exposure}");
    }
}

/// Reads the key file, or creates it. Creation is atomic across processes: the key is
/// written and fsync'd to a temp file, then hard-linked into place, which fails if
/// another process got there first (then its key is used). A plain create would let a
/// second process read a file that is not written yet.
fn load_or_create_key_file(path: &Path) -> Result<[u8; KEY_LEN], StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => return parse_key_file(path, bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io("read the key file", path, e)),
    }
    let key = SecretBox::random_key()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    // Unique per attempt: two opens in one process must not share a temp file.
    let mut tag = [0u8; 8];
    getrandom::fill(&mut tag).map_err(|e| StoreError::Random(e.to_string()))?;
    let temp = dir.join(format!(
        ".{KEY_FILE}.{}.{}.tmp",
        std::process::id(),
        u64::from_le_bytes(tag)
    ));
    write_private_file(&temp, &key, true)
        .map_err(|e| StoreError::io("write the new key file", &temp, e))?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes =
                std::fs::read(path).map_err(|e| StoreError::io("read the key file", path, e))?;
            parse_key_file(path, bytes)
        }
        Err(e) => Err(StoreError::io("create the key file", path, e)),
    }
}

/// Writes `bytes` to a file only its owner may read (0600) and fsyncs it. `create_new`
/// refuses an existing file; otherwise one is replaced.
pub(crate) fn write_private_file(
    path: &Path,
    bytes: &[u8],
    create_new: bool,
) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // An existing file keeps its mode through open(): make it private anyway.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

fn parse_key_file(path: &Path, bytes: Vec<u8>) -> Result<[u8; KEY_LEN], StoreError> {
    <[u8; KEY_LEN]>::try_from(bytes).map_err(|_| StoreError::BadKeyFile(PathBuf::from(path)))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync the folder", dir, e))
}

/// An exclusive lock on the data folder's rotation lock file, released when dropped (and
/// by the kernel if the process dies).
pub(crate) struct RotationLock {
    _file: std::fs::File,
}

impl RotationLock {
    pub(crate) async fn take(data_dir: &Path) -> Result<RotationLock, StoreError> {
        let path = data_dir.join(ROTATION_LOCK_FILE);
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .and_then(|file| file.lock().map(|()| file))
                .map_err(|e| StoreError::io("lock", &path, e))?;
            Ok(RotationLock { _file: file })
        })
        .await
        .map_err(|e| StoreError::io("lock", Path::new(ROTATION_LOCK_FILE), e.into()))?
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const A: SecretSlot = SecretSlot {
        field: "mailboxes.secret",
        row_id: 1,
    };
    const B: SecretSlot = SecretSlot {
        field: "mailboxes.secret",
        row_id: 2,
    };

    fn opened(sb: &SecretBox, slot: SecretSlot, sealed: &[u8]) -> Option<String> {
        sb.open(slot, sealed)
            .ok()
            .map(|s| s.expose_secret().to_string())
    }

    #[test]
    fn seal_then_open_gives_the_secret_back() {
        let sb = SecretBox::from_key(&[7; 32]);
        let sealed = sb.seal(A, "hunter2");
        assert_eq!(sealed.len(), 1 + 24 + 7 + 16);
        assert_eq!(sealed.first(), Some(&2));
        assert_eq!(opened(&sb, A, &sealed), Some("hunter2".into()));
        // A fresh nonce each time.
        assert_ne!(sb.seal(A, "hunter2"), sealed);
    }

    #[test]
    fn a_secret_opens_only_in_the_slot_it_was_sealed_for() {
        let sb = SecretBox::from_key(&[7; 32]);
        let sealed = sb.seal(A, "hunter2");
        let e = sb.open(B, &sealed).err();
        assert!(
            matches!(
                e,
                Some(StoreError::SecretUndecryptable {
                    field: "mailboxes.secret",
                    row_id: 2
                })
            ),
            "{e:?}"
        );
        let smtp = SecretSlot::new("mailboxes.smtp_secret", 1);
        assert!(sb.open(smtp, &sealed).is_err(), "same row, other column");
        // Relabelled as format 1 (no slot), it does not open either.
        let mut downgraded = sealed.clone();
        downgraded[0] = 1;
        assert!(sb.open(A, &downgraded).is_err());
    }

    #[test]
    fn a_secret_sealed_without_a_slot_still_opens() {
        // Format 1 as popdesk sealed it before slots: no associated data.
        let cipher = XChaCha20Poly1305::new(&Key::from([7u8; 32]));
        let nonce = [3u8; NONCE_LEN];
        let ciphertext = cipher
            .encrypt(&XNonce::from(nonce), b"old-password".as_slice())
            .unwrap_or_default();
        let mut sealed = vec![1u8];
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        let sb = SecretBox::from_key(&[7; 32]);
        assert!(SecretBox::is_unbound(&sealed));
        assert_eq!(opened(&sb, B, &sealed), Some("old-password".into()));
    }

    #[test]
    fn a_box_with_a_pending_key_opens_with_either_and_seals_with_the_current() {
        let old = SecretBox::from_key(&[7; 32]);
        let new = SecretBox::from_key(&[8; 32]);
        let mut both = old.clone();
        both.pending = Some(new.cipher.clone());
        let by_new = new.seal(A, "n");
        let by_old = old.seal(A, "o");
        assert!(matches!(
            both.open_reporting(A, &by_new).map(|(_, w)| w),
            Ok(OpenedWith::Pending)
        ));
        assert!(matches!(
            both.open_reporting(A, &by_old).map(|(_, w)| w),
            Ok(OpenedWith::Current)
        ));
        assert_eq!(opened(&old, A, &both.seal(A, "x")), Some("x".into()));
        assert_eq!(
            opened(&new, A, &both.promote_pending().seal(A, "y")),
            Some("y".into())
        );
    }

    #[test]
    fn every_sealed_column_is_named_table_dot_column_once() {
        for (i, c) in SEALED_COLUMNS.iter().enumerate() {
            assert_eq!(c.field, format!("{}.{}", c.table, c.column));
            assert!(
                SEALED_COLUMNS[i + 1..].iter().all(|o| o.field != c.field),
                "{} twice",
                c.field
            );
        }
        assert_eq!(MAILBOX_SECRET.field, "mailboxes.secret");
        assert_eq!(SMTP_SECRET.field, "mailboxes.smtp_secret");
    }

    #[tokio::test]
    async fn the_key_from_the_environment_wins_over_the_key_file() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::io("create", Path::new("tmp"), e))?;
        let from_file = SecretBox::load_with(dir.path(), None).await?;
        assert_eq!(from_file.source(), KeySource::File);
        let sealed = from_file.seal(A, "pw");
        let env_key = BASE64.encode([9u8; 32]);
        let from_env = SecretBox::load_with(dir.path(), Some(env_key.into())).await?;
        assert_eq!(from_env.source(), KeySource::Environment);
        assert!(from_env.open(A, &sealed).is_err());
        assert!(
            SecretBox::from_key(&[9; 32])
                .open(A, &from_env.seal(A, "pw"))
                .is_ok()
        );
        // The file's key stays what it was.
        let again = SecretBox::load_with(dir.path(), None).await?;
        assert!(again.open(A, &sealed).is_ok());
        Ok(())
    }

    #[tokio::test]
    async fn a_malformed_environment_key_is_refused_clearly() {
        let dir = tempfile::tempdir().ok();
        let dir = dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/nonexistent"));
        for bad in ["not base64!", "AAAA", ""] {
            let e = SecretBox::load_with(dir, Some(bad.into())).await.err();
            assert!(matches!(e, Some(StoreError::BadKeyEnv)), "{bad:?}: {e:?}");
        }
    }

    #[test]
    fn another_key_or_altered_bytes_are_refused() {
        let sealed = SecretBox::from_key(&[7; 32]).seal(A, "hunter2");
        let other = SecretBox::from_key(&[8; 32]);
        let e = other.open(A, &sealed).err();
        assert!(matches!(e, Some(StoreError::SecretUndecryptable { .. })));
        let mut altered = sealed.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert!(SecretBox::from_key(&[7; 32]).open(A, &altered).is_err());
        assert!(SecretBox::from_key(&[7; 32]).open(A, &[]).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_reported_with_the_chmod_that_fixes_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(dir) = tempfile::tempdir() else {
            panic!("a temp folder")
        };
        let path = dir.path().join(KEY_FILE);
        assert!(std::fs::write(&path, [1u8; 32]).is_ok());
        assert!(std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).is_ok());
        let finding = key_file_exposure(&path);
        assert_eq!(finding.as_ref().map(|f| f.mode), Some(0o644), "{finding:?}");
        let text = finding.map(|f| f.to_string()).unwrap_or_default();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("chmod 600 {}", path.display())),
            "{text}"
        );
        for private in [0o600, 0o400] {
            assert!(
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(private)).is_ok()
            );
            assert_eq!(key_file_exposure(&path), None, "{private:o}");
        }
        assert!(std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).is_ok());
        assert!(key_file_exposure(&path).is_some(), "group-readable");
    }
}
