//! Maildirs on both ends of a run: the server's mailbox we fill, and the client's delivery
//! folder we check.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::Hasher;
use std::io;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};

use crate::mailbox::Message;

/// What a complete download must contain: one entry per message, independent of the line
/// ending the client stores (mpop writes LF, popdesk keeps the raw CRLF bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash of each message with CRLF folded to LF, sorted.
    digests: Vec<u64>,
    /// Size on the wire (CRLF) of the whole mailbox.
    pub wire_bytes: u64,
}

impl Fingerprint {
    pub fn of_messages(messages: &[Message]) -> Fingerprint {
        let mut digests: Vec<u64> = messages.iter().map(|m| digest(&m.bytes)).collect();
        digests.sort_unstable();
        Fingerprint {
            digests,
            wire_bytes: messages.iter().map(|m| m.bytes.len() as u64).sum(),
        }
    }

    pub fn messages(&self) -> usize {
        self.digests.len()
    }

    /// Whether every message of `self` (expected) is in `delivered`, which may hold more
    /// (a blob store also keeps the attachments processing took out).
    pub fn compare_within(&self, delivered: &Fingerprint) -> Result<(), String> {
        let mut have = delivered.digests.iter().peekable();
        let mut missing = 0;
        for digest in &self.digests {
            while have.next_if(|d| *d < digest).is_some() {}
            if have.next_if(|d| *d == digest).is_none() {
                missing += 1;
            }
        }
        if missing == 0 {
            Ok(())
        } else {
            Err(format!("{missing} missing"))
        }
    }

    /// Which of `self` (expected) are missing from `delivered`, and how many extras it has.
    pub fn compare(&self, delivered: &Fingerprint) -> Result<(), String> {
        if self.digests == delivered.digests {
            return Ok(());
        }
        let mut missing = 0;
        let mut extra = 0;
        let (mut i, mut j) = (0, 0);
        while i < self.digests.len() || j < delivered.digests.len() {
            match (self.digests.get(i), delivered.digests.get(j)) {
                (Some(a), Some(b)) if a == b => {
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a < b => {
                    missing += 1;
                    i += 1;
                }
                (Some(_), None) => {
                    missing += 1;
                    i += 1;
                }
                _ => {
                    extra += 1;
                    j += 1;
                }
            }
        }
        Err(format!(
            "{} of {} messages delivered intact; {missing} missing or altered, {extra} unexpected",
            self.digests.len() - missing,
            self.digests.len()
        ))
    }
}

/// Reads every message in `new/` and `cur/` of a delivery Maildir.
pub fn fingerprint_dir(maildir: &Path) -> io::Result<Fingerprint> {
    let mut digests = Vec::new();
    let mut wire_bytes = 0;
    for sub in ["new", "cur"] {
        let dir = maildir.join(sub);
        if !dir.exists() {
            continue;
        }
        for entry in fs::read_dir(dir)? {
            let bytes = fs::read(entry?.path())?;
            wire_bytes += wire_len(&bytes);
            digests.push(digest(&bytes));
        }
    }
    digests.sort_unstable();
    Ok(Fingerprint {
        digests,
        wire_bytes,
    })
}

/// Reads every blob under popdesk's blob store (`DATA/blobs/ab/cd/<sha256>`), skipping
/// its `tmp/` directory of unfinished writes.
pub fn fingerprint_blobs(blobs: &Path) -> io::Result<Fingerprint> {
    let mut digests = Vec::new();
    let mut wire_bytes = 0;
    let mut pending = vec![blobs.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                if entry.file_name() != "tmp" {
                    pending.push(path);
                }
                continue;
            }
            let bytes = fs::read(&path)?;
            wire_bytes += wire_len(&bytes);
            digests.push(digest(&bytes));
        }
    }
    digests.sort_unstable();
    Ok(Fingerprint {
        digests,
        wire_bytes,
    })
}

fn digest(bytes: &[u8]) -> u64 {
    // DefaultHasher::new() uses fixed keys: stable within one run, which is all we compare.
    let mut h = DefaultHasher::new();
    let mut rest = bytes;
    while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
        h.write(&rest[..pos]);
        h.write_u8(b'\n');
        rest = &rest[pos + 2..];
    }
    h.write(rest);
    h.finish()
}

/// Size of the message with LF line endings turned back into CRLF.
fn wire_len(bytes: &[u8]) -> u64 {
    let lf = bytes.iter().filter(|&&b| b == b'\n').count();
    let crlf = bytes.windows(2).filter(|w| w == b"\r\n").count();
    (bytes.len() + lf - crlf) as u64
}

/// The generated mailbox, written once; each run gets hard links to it so that setting up a
/// fresh 130 MB mailbox costs milliseconds and the server's deletes leave it intact.
pub struct MasterCopy {
    dir: PathBuf,
    names: Vec<String>,
}

impl MasterCopy {
    pub fn write(dir: &Path, messages: &[Message]) -> io::Result<MasterCopy> {
        fs::create_dir_all(dir)?;
        let mut names = Vec::with_capacity(messages.len());
        for (i, message) in messages.iter().enumerate() {
            let size = message.bytes.len();
            // Dovecot takes S= (file size) and W= (size with CRLF) from the name instead of
            // reading the file; ours are CRLF already so both are the same.
            let name = format!(
                "{}.M{i:06}P1.popdesk-bench,S={size},W={size}",
                1_767_225_600 + i
            );
            fs::write(dir.join(&name), &message.bytes)?;
            names.push(name);
        }
        Ok(MasterCopy {
            dir: dir.to_path_buf(),
            names,
        })
    }

    /// Replaces `maildir` (and any index the server kept there) with a fresh copy of every
    /// message in `new/`, owned by `owner` so the server's mail process can take them.
    pub fn stage(&self, maildir: &Path, owner: (u32, u32)) -> io::Result<()> {
        if maildir.exists() {
            fs::remove_dir_all(maildir)?;
        }
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir_all(maildir.join(sub))?;
            chown(maildir.join(sub), Some(owner.0), Some(owner.1))?;
        }
        chown(maildir, Some(owner.0), Some(owner.1))?;
        for name in &self.names {
            fs::hard_link(self.dir.join(name), maildir.join("new").join(name))?;
        }
        Ok(())
    }
}

/// Messages still on the server side (the client should have deleted them all).
pub fn messages_left(maildir: &Path) -> io::Result<usize> {
    let mut left = 0;
    for sub in ["new", "cur"] {
        let dir = maildir.join(sub);
        if dir.exists() {
            left += fs::read_dir(dir)?.count();
        }
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ending_does_not_change_the_fingerprint() {
        let crlf = b"Subject: x\r\n\r\nbody\r\n.\r\n".to_vec();
        let lf = b"Subject: x\n\nbody\n.\n".to_vec();
        assert_eq!(digest(&crlf), digest(&lf));
        assert_eq!(wire_len(&lf), crlf.len() as u64);
        assert_eq!(wire_len(&crlf), crlf.len() as u64);
    }

    #[test]
    fn compare_counts_missing_messages() {
        let all = Fingerprint::of_messages(&[
            Message {
                bytes: b"a\r\n".to_vec(),
            },
            Message {
                bytes: b"b\r\n".to_vec(),
            },
        ]);
        let one = Fingerprint::of_messages(&[Message {
            bytes: b"b\r\n".to_vec(),
        }]);
        assert!(all.compare(&all).is_ok());
        let err = all.compare(&one).expect_err("one message is missing");
        assert!(err.contains("1 missing"), "{err}");
    }
}
