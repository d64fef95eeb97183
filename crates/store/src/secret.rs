//! Mailbox secrets at rest (promise 7): XChaCha20-Poly1305 with a random 24-byte nonce per
//! seal, so the database alone (a backup, a dump, a stolen file) reveals no password or
//! token.
//!
//! The key is 32 random bytes in `data_dir/secret.key` (mode 0600, created on first
//! open), or the base64 of 32 bytes in `POPDESK_SECRET_KEY`, which wins over the file so
//! deployments can keep the key out of the data folder and its backups.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use secrecy::SecretString;

use crate::StoreError;

/// The environment variable that carries the key (base64 of 32 bytes).
pub const KEY_ENV: &str = "POPDESK_SECRET_KEY";
/// The key file's name in the data folder.
pub const KEY_FILE: &str = "secret.key";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// First byte of every sealed secret: lets a later version change the format or rotate
/// keys and still read what this one wrote.
const FORMAT_V1: u8 = 1;

/// Seals and opens mailbox secrets with the installation's key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox { key: [redacted] }")
    }
}

impl SecretBox {
    /// A box with the given key.
    pub fn from_key(key: &[u8; KEY_LEN]) -> SecretBox {
        SecretBox {
            cipher: XChaCha20Poly1305::new(&Key::from(*key)),
        }
    }

    /// The installation's box: the key from `POPDESK_SECRET_KEY` if set, else from
    /// `data_dir/secret.key`, which is created (32 random bytes, mode 0600) if missing.
    pub async fn load(data_dir: &Path) -> Result<SecretBox, StoreError> {
        Self::load_with(data_dir, std::env::var_os(KEY_ENV)).await
    }

    /// [`load`](Self::load) with the environment's value passed in (tests cannot set
    /// environment variables safely while other tests run).
    async fn load_with(
        data_dir: &Path,
        env_key: Option<std::ffi::OsString>,
    ) -> Result<SecretBox, StoreError> {
        if let Some(value) = env_key {
            let key = value
                .to_str()
                .and_then(|text| BASE64.decode(text.trim()).ok())
                .and_then(|bytes| <[u8; KEY_LEN]>::try_from(bytes).ok())
                .ok_or(StoreError::BadKeyEnv)?;
            return Ok(SecretBox::from_key(&key));
        }
        let path = data_dir.join(KEY_FILE);
        let key = tokio::task::spawn_blocking(move || load_or_create_key_file(&path))
            .await
            .map_err(|e| StoreError::io("read the key file", Path::new(KEY_FILE), e.into()))??;
        Ok(SecretBox::from_key(&key))
    }

    /// Encrypts a secret: version byte, nonce, ciphertext with tag.
    ///
    /// # Panics
    /// Only if the operating system cannot provide 24 random bytes, where no safe nonce
    /// exists (getrandom does not fail on the platforms popdesk runs on).
    pub fn seal(&self, secret: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut nonce).expect("the operating system's random number generator failed");
        #[allow(clippy::expect_used)]
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), secret.as_bytes())
            .expect("XChaCha20-Poly1305 seals any secret shorter than 256 GiB");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Decrypts what [`seal`](Self::seal) produced. Another key, or altered bytes, give
    /// [`StoreError::SecretUndecryptable`].
    pub fn open(&self, sealed: &[u8]) -> Result<SecretString, StoreError> {
        let (&version, rest) = sealed
            .split_first()
            .ok_or(StoreError::SecretUndecryptable)?;
        if version != FORMAT_V1 || rest.len() < NONCE_LEN {
            return Err(StoreError::SecretUndecryptable);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce =
            <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| StoreError::SecretUndecryptable)?;
        let plain = self
            .cipher
            .decrypt(&XNonce::from(nonce), ciphertext)
            .map_err(|_| StoreError::SecretUndecryptable)?;
        let text = String::from_utf8(plain).map_err(|_| StoreError::SecretUndecryptable)?;
        Ok(SecretString::from(text))
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
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| StoreError::Random(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    // Unique per attempt: two opens in one process must not share a temp file.
    let mut tag = [0u8; 8];
    getrandom::fill(&mut tag).map_err(|e| StoreError::Random(e.to_string()))?;
    let temp = dir.join(format!(
        ".{KEY_FILE}.{}.{}.tmp",
        std::process::id(),
        u64::from_le_bytes(tag)
    ));
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(&key)?;
        file.sync_all()
    };
    write().map_err(|e| StoreError::io("write the new key file", &temp, e))?;
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

fn parse_key_file(path: &Path, bytes: Vec<u8>) -> Result<[u8; KEY_LEN], StoreError> {
    <[u8; KEY_LEN]>::try_from(bytes).map_err(|_| StoreError::BadKeyFile(PathBuf::from(path)))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync the folder", dir, e))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn seal_then_open_gives_the_secret_back() {
        let sb = SecretBox::from_key(&[7; 32]);
        let sealed = sb.seal("hunter2");
        assert_eq!(sealed.len(), 1 + 24 + 7 + 16);
        assert_eq!(
            sb.open(&sealed).map(|s| s.expose_secret().to_string()).ok(),
            Some("hunter2".into())
        );
        // A fresh nonce each time.
        assert_ne!(sb.seal("hunter2"), sealed);
    }

    #[tokio::test]
    async fn the_key_from_the_environment_wins_over_the_key_file() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::io("create", Path::new("tmp"), e))?;
        let from_file = SecretBox::load_with(dir.path(), None).await?;
        let sealed = from_file.seal("pw");
        let env_key = BASE64.encode([9u8; 32]);
        let from_env = SecretBox::load_with(dir.path(), Some(env_key.into())).await?;
        assert!(from_env.open(&sealed).is_err());
        assert!(
            SecretBox::from_key(&[9; 32])
                .open(&from_env.seal("pw"))
                .is_ok()
        );
        // The file's key stays what it was.
        let again = SecretBox::load_with(dir.path(), None).await?;
        assert!(again.open(&sealed).is_ok());
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
        let sealed = SecretBox::from_key(&[7; 32]).seal("hunter2");
        let other = SecretBox::from_key(&[8; 32]);
        let e = other.open(&sealed).err();
        assert!(matches!(e, Some(StoreError::SecretUndecryptable)));
        let mut altered = sealed.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert!(SecretBox::from_key(&[7; 32]).open(&altered).is_err());
        assert!(SecretBox::from_key(&[7; 32]).open(&[]).is_err());
    }
}
