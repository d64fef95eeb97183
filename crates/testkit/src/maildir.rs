//! Maildir delivery and inspection, done straight on disk.
//!
//! Going through SMTP/LMTP would add a second server to every test and cost a round
//! trip per message; benchmarks deliver thousands. Maildir is designed for exactly
//! this: write the file in `tmp/`, then rename it into `new/`, and Dovecot picks it up
//! at the next session.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, fchown};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The (seconds, microseconds) of the last name handed out in this process.
///
/// Dovecot numbers new mail in the order of the time stamp at the start of the file
/// name, so names must strictly increase for POP3 message 1 to be the first delivered.
/// The clock alone does not promise that (two deliveries in one microsecond, or a clock
/// step backwards), so the stamp is bumped past the previous one when needed.
static LAST_STAMP: Mutex<(u64, u32)> = Mutex::new((0, 0));

/// Owner of the mail files: the unprivileged account Dovecot's mail processes run as.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MailOwner {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// Creates `home/Maildir/{cur,new,tmp}` owned by `owner`.
pub(crate) fn create(home: &Path, owner: MailOwner) -> io::Result<()> {
    let maildir = home.join("Maildir");
    for dir in [
        home.to_path_buf(),
        maildir.clone(),
        maildir.join("cur"),
        maildir.join("new"),
        maildir.join("tmp"),
    ] {
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        std::os::unix::fs::chown(&dir, Some(owner.uid), Some(owner.gid))?;
    }
    Ok(())
}

/// Writes one message into `maildir/new`, the way an MDA does.
pub(crate) fn deliver(maildir: &Path, message: &[u8], owner: MailOwner) -> io::Result<PathBuf> {
    let name = unique_name(message.len());
    let tmp = maildir.join("tmp").join(&name);
    let mut file = File::create(&tmp)?;
    file.write_all(message)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    fchown(&file, Some(owner.uid), Some(owner.gid))?;
    drop(file);
    let new = maildir.join("new").join(&name);
    fs::rename(&tmp, &new)?;
    Ok(new)
}

/// The messages still in the mailbox (`new/` and `cur/`), oldest delivery first.
pub(crate) fn message_paths(maildir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for sub in ["new", "cur"] {
        for entry in fs::read_dir(maildir.join(sub))? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                paths.push(entry.path());
            }
        }
    }
    // Dovecot moves files from new/ to cur/ and appends ":2,FLAGS"; the part before
    // the colon is the name given at delivery, which sorts in delivery order.
    paths.sort_by_cached_key(|path| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match name.split_once(':') {
            Some((base, _)) => base.to_owned(),
            None => name,
        }
    });
    Ok(paths)
}

/// A Maildir file name: `SECS.MUSECSPpidQseq.testkit,S=size`.
///
/// Seconds and microseconds are zero-padded so names also sort as strings. `S=` tells
/// Dovecot the file size without a stat.
fn unique_name(size: usize) -> String {
    static SEQ: Mutex<u64> = Mutex::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, micros) = {
        let mut last = LAST_STAMP.lock().unwrap_or_else(|e| e.into_inner());
        let mut stamp = (now.as_secs(), now.subsec_micros());
        if stamp <= *last {
            stamp = if last.1 >= 999_999 {
                (last.0 + 1, 0)
            } else {
                (last.0, last.1 + 1)
            };
        }
        *last = stamp;
        stamp
    };
    let seq = {
        let mut seq = SEQ.lock().unwrap_or_else(|e| e.into_inner());
        *seq += 1;
        *seq
    };
    format!(
        "{secs:010}.M{micros:06}P{pid}Q{seq:010}.testkit,S={size}",
        pid = std::process::id()
    )
}
