//! Blobs on the file system: the default, and the place for one machine.
//!
//! A message streams into a temp file under `blobs/tmp` while it is hashed; the finished
//! file is renamed to `blobs/ab/cd/<sha256>` and the batch made durable by one filesystem
//! sync. Only then does the database learn of it, and only after that commit is the
//! message deleted from the server (promise 1). Renames are grouped per batch so a batch
//! of 50 messages costs one sync, not one fsync per message.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

use super::{hex, is_sha256_hex};
use crate::StoreError;

/// Name of the temp folder inside the blob store.
const TEMP_DIR: &str = "tmp";
/// Large enough that streaming a message costs few syscalls (tokio's file I/O goes
/// through a thread pool, so each write is a hand-off), small enough to not matter for
/// memory with a batch in flight.
const WRITE_BUFFER: usize = 256 * 1024;
/// A temp file this old belongs to no live run, whatever its name says.
const TEMP_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Counter that makes temp names unique within this process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Content-addressed blobs in a folder.
#[derive(Clone, Debug)]
pub(crate) struct FileBlobs {
    root: Arc<PathBuf>,
}

impl FileBlobs {
    /// The blob folder at `root`, creating it (and its temp folder) if missing.
    pub(crate) async fn open(root: &Path) -> Result<FileBlobs, StoreError> {
        let temp = root.join(TEMP_DIR);
        tokio::fs::create_dir_all(&temp)
            .await
            .map_err(|e| StoreError::io("create the blob folder", &temp, e))?;
        Ok(FileBlobs::existing(root))
    }

    /// The blob folder at `root`, to read from only: nothing is created (it may not exist).
    pub(crate) fn existing(root: &Path) -> FileBlobs {
        FileBlobs {
            root: Arc::new(root.to_path_buf()),
        }
    }

    /// A new temp file's path: this process's id (see [`FileBlobs::clean_temp`]), a
    /// counter and a random tag.
    fn temp_path(&self) -> Result<PathBuf, StoreError> {
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag).map_err(|e| StoreError::Random(e.to_string()))?;
        let name = format!(
            "{}-{}-{}.tmp",
            std::process::id(),
            TEMP_SEQ.fetch_add(1, Ordering::Relaxed),
            hex(&tag)
        );
        Ok(self.root.join(TEMP_DIR).join(name))
    }

    /// A new temp file to stream one message into.
    pub(crate) async fn sink(&self) -> Result<FileSink, StoreError> {
        let path = self.temp_path()?;
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        // Customers' mail: readable by popdesk's user only.
        #[cfg(unix)]
        options.mode(0o600);
        let file = options
            .open(&path)
            .await
            .map_err(|e| StoreError::io("create the temporary file", &path, e))?;
        Ok(FileSink {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            temp: TempPath(Some(path)),
        })
    }

    /// Moves finished temp files to their content address, then syncs the filesystem,
    /// once per call. A blob already in place keeps its file (same name, same bytes) and
    /// the temp is dropped. When this returns Ok, every blob survives a crash or power
    /// loss.
    pub(crate) async fn persist(&self, blobs: Vec<(String, TempPath)>) -> Result<(), StoreError> {
        if blobs.is_empty() {
            return Ok(());
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.persist_blocking(blobs))
            .await
            .map_err(|e| StoreError::io("store raw messages in", &self.root, e.into()))?
    }

    /// Durability in one filesystem sync per batch, whatever its size: the renames,
    /// the new folders and the files' data all reach the disk together. `syncfs`
    /// flushes the whole filesystem holding the blob store; on a disk shared with heavy
    /// writers that costs more than a few fsyncs would, but a batch of 50 messages needs
    /// one call instead of well over 100 fsyncs (a file and up to two folders each).
    ///
    /// A crash before the sync can leave a file under its final name with data that
    /// never reached the disk. No database row points at it (the commit comes after
    /// this returns), and the next time the same content arrives the existing file is
    /// checked against its name before it is trusted, and replaced if it does not match.
    fn persist_blocking(&self, blobs: Vec<(String, TempPath)>) -> Result<(), StoreError> {
        for (sha256, mut temp_path) in blobs {
            let target = self.path(&sha256);
            let dir = target.parent().unwrap_or(&self.root).to_path_buf();
            self.create_fanout_dir(&dir)?;
            let Some(temp) = temp_path.0.take() else {
                continue;
            };
            let intact = match std::fs::File::open(&target) {
                Ok(existing) => content_matches(existing, &sha256)
                    .map_err(|e| StoreError::io("check the stored message", &target, e))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => {
                    temp_path.0 = Some(temp);
                    return Err(StoreError::io("look up the raw message", &target, e));
                }
            };
            if intact {
                std::fs::remove_file(&temp)
                    .map_err(|e| StoreError::io("remove the temporary file", &temp, e))?;
            } else if let Err(e) = std::fs::rename(&temp, &target) {
                temp_path.0 = Some(temp); // removed on drop
                return Err(StoreError::io("move the raw message into", &target, e));
            }
        }
        self.sync_filesystem()
    }

    /// `syncfs(2)` on the blob store's filesystem: every file's data and every folder
    /// entry written so far reach the disk (Linux ≥ 5.8 reports write-back errors).
    fn sync_filesystem(&self) -> Result<(), StoreError> {
        let root = std::fs::File::open(self.root.as_path())
            .map_err(|e| StoreError::io("open the blob folder", &self.root, e))?;
        rustix::fs::syncfs(&root).map_err(|errno| {
            StoreError::io("sync the disk holding", &self.root, io::Error::from(errno))
        })
    }

    /// Creates `root/ab/cd` as needed (made durable by the batch's final sync).
    fn create_fanout_dir(&self, dir: &Path) -> Result<(), StoreError> {
        if dir.is_dir() {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut cursor = Some(dir);
        while let Some(d) = cursor {
            if d == self.root.as_path() || d.is_dir() {
                break;
            }
            missing.push(d);
            cursor = d.parent();
        }
        for d in missing.into_iter().rev() {
            match std::fs::create_dir(d) {
                Ok(()) => {}
                // Another writer was faster; our final sync covers its folder too.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StoreError::io("create the blob folder", d, e)),
            }
        }
        Ok(())
    }

    /// Writes `data` whole into a new temp file, on the caller's (blocking) thread; it
    /// is made durable by [`FileBlobs::persist`] like a streamed one.
    pub(crate) fn write_blocking(&self, data: &[u8]) -> Result<TempPath, StoreError> {
        use std::io::Write as _;
        let path = self.temp_path()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options
            .open(&path)
            .map_err(|e| StoreError::io("create the temporary file", &path, e))?;
        // From here on the temp file is removed if anything fails.
        let temp = TempPath(Some(path));
        file.write_all(data)
            .map_err(|e| into_store_error(&temp.path(), e))?;
        Ok(temp)
    }

    /// The bytes of a stored blob, or None when it is not here, on the caller's
    /// (blocking) thread.
    pub(crate) fn read_blocking(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(sha256);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read the raw message", &path, e)),
        }
    }

    /// The bytes of a stored blob, or None when it is not here.
    pub(crate) async fn read(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(sha256);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read the raw message", &path, e)),
        }
    }

    /// A stored blob opened for reading and its size, or None when it is not here.
    pub(crate) async fn open_blob(
        &self,
        sha256: &str,
    ) -> Result<Option<(tokio::fs::File, u64)>, StoreError> {
        let path = self.path(sha256);
        let opened = async {
            let file = tokio::fs::File::open(&path).await?;
            let size = file.metadata().await?.len();
            Ok::<_, io::Error>((file, size))
        };
        match opened.await {
            Ok(blob) => Ok(Some(blob)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read the raw message", &path, e)),
        }
    }

    /// Removes a stored blob (after `blobs migrate` copied it elsewhere). Whether it was
    /// here.
    pub(crate) async fn remove(&self, sha256: &str) -> Result<bool, StoreError> {
        let path = self.path(sha256);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("remove the raw message", &path, e)),
        }
    }

    /// Every stored blob's digest, in no particular order (temp files are not blobs).
    pub(crate) async fn list(&self) -> Result<Vec<String>, StoreError> {
        let root = self.root.as_ref().clone();
        tokio::task::spawn_blocking(move || list_blocking(&root))
            .await
            .map_err(|e| StoreError::io("list", &self.root, e.into()))?
    }

    /// Where the blob with this digest lives: `root/ab/cd/<sha256>`. For a string that is
    /// not 64 lowercase hex digits, a path inside the store that never exists.
    pub(crate) fn path(&self, sha256: &str) -> PathBuf {
        if !is_sha256_hex(sha256) {
            return self.root.join("not-a-sha256");
        }
        self.root
            .join(&sha256[0..2])
            .join(&sha256[2..4])
            .join(sha256)
    }

    /// Removes temp files that crashed runs left behind and returns how many. A temp file
    /// of a process that still runs (its pid is in the name) is left alone, unless it is
    /// older than a day, so several popdesk processes can share the data folder.
    pub(crate) async fn clean_temp(&self) -> Result<u64, StoreError> {
        let dir = self.root.join(TEMP_DIR);
        tokio::task::spawn_blocking(move || clean_temp_blocking(&dir))
            .await
            .map_err(|e| StoreError::io("clean", &self.root, e.into()))?
    }
}

/// `root/ab/cd/<sha256>` for every blob there.
fn list_blocking(root: &Path) -> Result<Vec<String>, StoreError> {
    let read = |dir: &Path| -> Result<Vec<(String, PathBuf)>, StoreError> {
        match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .map(|entry| {
                    let entry = entry.map_err(|e| StoreError::io("list", dir, e))?;
                    Ok((
                        entry.file_name().to_string_lossy().into_owned(),
                        entry.path(),
                    ))
                })
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StoreError::io("list", dir, e)),
        }
    };
    let fanout = |name: &str| name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
    let mut found = Vec::new();
    for (first, first_path) in read(root)? {
        if !fanout(&first) || !first_path.is_dir() {
            continue;
        }
        for (second, second_path) in read(&first_path)? {
            if !fanout(&second) || !second_path.is_dir() {
                continue;
            }
            for (name, _) in read(&second_path)? {
                if is_sha256_hex(&name) && name[0..2] == first && name[2..4] == second {
                    found.push(name);
                }
            }
        }
    }
    Ok(found)
}

fn clean_temp_blocking(dir: &Path) -> Result<u64, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(StoreError::io("list the temporary folder", dir, e)),
    };
    let own_pid = std::process::id();
    let can_see_processes = Path::new("/proc/self").exists();
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("list the temporary folder", dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > TEMP_MAX_AGE);
        let owner_alive = match pid {
            Some(pid) if pid == own_pid => true,
            Some(pid) if can_see_processes => Path::new("/proc").join(pid.to_string()).exists(),
            // Without /proc we cannot tell: only age decides.
            Some(_) => true,
            None => false,
        };
        if owner_alive && !(old && pid != Some(own_pid)) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("remove the temporary file", &path, e)),
        }
    }
    Ok(removed)
}

/// One message streaming into a temp file. Write errors come out as `io::Error`s that
/// wrap a [`StoreError`] naming the temp file.
#[derive(Debug)]
pub(crate) struct FileSink {
    file: BufWriter<tokio::fs::File>,
    temp: TempPath,
}

impl FileSink {
    /// Flushes the temp file to the kernel. It is made durable, together with the rest
    /// of its batch, by [`FileBlobs::persist`]: one filesystem sync per batch instead of
    /// one fsync per message.
    pub(crate) async fn finish(mut self) -> Result<TempPath, StoreError> {
        let path = self.temp.path();
        self.file
            .flush()
            .await
            .map_err(|e| into_store_error(&path, e))?;
        Ok(self.temp)
    }

    pub(crate) fn wrap_error(&self, error: io::Error) -> StoreError {
        into_store_error(&self.temp.path(), error)
    }

    fn io_error(&self, error: io::Error) -> io::Error {
        let kind = error.kind();
        io::Error::new(kind, self.wrap_error(error))
    }
}

impl AsyncWrite for FileSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.file).poll_write(cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(this.io_error(e))),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.file).poll_flush(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(this.io_error(e))),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.file).poll_shutdown(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(this.io_error(e))),
            other => other,
        }
    }
}

/// A temp file that is removed when dropped, unless it was moved into place.
#[derive(Debug)]
pub(crate) struct TempPath(pub(crate) Option<PathBuf>);

impl TempPath {
    pub(crate) fn path(&self) -> PathBuf {
        self.0.clone().unwrap_or_default()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// An error from the buffered file: keep a StoreError that is already inside, else name
/// the temp file.
fn into_store_error(path: &Path, error: io::Error) -> StoreError {
    if error
        .get_ref()
        .is_some_and(|inner| inner.is::<StoreError>())
    {
        match error.downcast::<StoreError>() {
            Ok(inner) => return inner,
            Err(error) => return StoreError::io("write the raw message to", path, error),
        }
    }
    StoreError::io("write the raw message to", path, error)
}

/// Whether a stored file's content still hashes to its name.
fn content_matches(mut file: std::fs::File, sha256: &str) -> io::Result<bool> {
    use std::io::Read as _;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()) == sha256)
}
