//! Promise 1 when storage fails mid-batch: the data folder on a real, small tmpfs that
//! fills up during a `popdesk mailbox fetch`. The session is dropped without QUIT (Gmail
//! hides whatever was retrieved in a session that ends with QUIT), nothing is lost, the
//! run's error says the disk is full, and once space is freed the next run completes.
//!
//! Three places the disk fills: under the blobs mid-batch, under the database at the
//! commit (the blobs on a disk of their own), and under the database as popdesk starts.
//!
//! Needs root to mount the tmpfs, as CI and the dev machines run (Dovecot needs root
//! too). Without it the test fails and says so: a silently skipped full-disk test proves
//! nothing.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    Pop3Log, Popdesk, Security, SourceMail, USER, WatchingProxy, assert_stored_exactly_once,
    dovecot_with, inspect, message_ids_on_server, sized_message,
};

const MAILBOX: &str = "support";
const MESSAGES: usize = 24;
const MESSAGE_SIZE: usize = 100_000;
const BATCH: &str = "4";
/// The database (~400 KB with its WAL and search index) and about two batches of
/// messages: the third batch does not fit.
const SMALL_DISK: &str = "1400k";
const ROOMY_DISK: &str = "64m";

/// A tmpfs, unmounted on drop (also when the test fails).
struct Tmpfs {
    path: PathBuf,
    _mount_point: Option<tempfile::TempDir>,
}

impl Tmpfs {
    /// On a fresh folder.
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("popdesk-full-disk-")
            .tempdir()
            .expect("temp dir for the mount point");
        let mut tmpfs = Tmpfs::mount_at(dir.path(), size);
        tmpfs._mount_point = Some(dir);
        tmpfs
    }

    /// On `path`, created if missing.
    fn mount_at(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("create the mount point");
        mount(
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ],
            path,
        );
        Tmpfs {
            path: path.to_path_buf(),
            _mount_point: None,
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Octets still free.
    fn available(&self) -> u64 {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .expect("run df");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("df said {output:?}"))
    }

    /// Frees space the way an admin would: the disk grows.
    fn resize(&self, size: &str) {
        mount(&["-o", &format!("remount,size={size}")], self.path());
    }
}

fn mount(args: &[&str], on: &Path) {
    let output = Command::new("mount")
        .args(args)
        .arg(on)
        .output()
        .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
    assert!(
        output.status.success(),
        "this test needs a real full disk: `mount {} {}` failed ({}): {}; \
         run the tests as root, as CI does",
        args.join(" "),
        on.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Busy (a process still holds a file): detach it now, it goes when freed.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

fn sent(commands: &[String], word: &str) -> usize {
    commands
        .iter()
        .filter(|c| c.split(' ').next() == Some(word))
        .count()
}

#[test]
fn a_full_disk_mid_batch_drops_the_session_without_quit_and_loses_nothing() {
    let source: Vec<SourceMail> = (0..MESSAGES)
        .map(|n| sized_message("full-disk", n, MESSAGE_SIZE))
        .collect();
    let dovecot = dovecot_with(&source);
    // Watches what reaches the server: RETR, DELE, QUIT.
    let proxy = WatchingProxy::start(dovecot.pop3_addr());
    let disk = Tmpfs::mount(SMALL_DISK);
    let data: PathBuf = disk.path().join("data");
    let popdesk = Popdesk::new(&data);
    popdesk.add_mailbox(
        MAILBOX,
        Security::Plaintext { addr: proxy.addr() },
        &["--batch", BATCH],
    );
    let log = Pop3Log::from_now(&dovecot);

    let full = popdesk.fetch(MAILBOX);
    assert_eq!(
        full.status.code(),
        Some(75),
        "a full disk is a temporary failure: {full:?}"
    );
    let complaint: Vec<&str> = full.stderr.lines().collect();
    assert_eq!(complaint.len(), 1, "one line on stderr: {full:?}");
    assert!(
        complaint[0].contains("disk") && complaint[0].contains("full"),
        "the error says the disk is full: {}",
        complaint[0]
    );
    let runs = popdesk.runs(MAILBOX);
    let run = runs.last().expect("the run is recorded");
    assert_eq!(run.outcome, "transient", "{run:?}");
    let error = run.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("disk") && error.contains("full"),
        "the run's error says the disk is full: {run:?}"
    );
    let show = popdesk.show(MAILBOX);
    assert!(
        show["needs_attention"].is_null(),
        "freeing space is enough; nothing for the admin to repair in the mailbox: {show:#}"
    );

    // What was committed is in the store, everything else is still on the server.
    let after = inspect(&data, MAILBOX);
    let stored: BTreeSet<String> = after.raw.iter().filter_map(|r| r.0.clone()).collect();
    let on_server = message_ids_on_server(&dovecot, &source);
    assert!(
        !stored.is_empty() && on_server.len() > 1,
        "the disk must fill mid-mailbox (stored {}, on the server {}); resize SMALL_DISK",
        stored.len(),
        on_server.len()
    );
    assert!(
        stored.is_disjoint(&on_server),
        "a committed batch was not deleted, or a deleted one not committed"
    );
    assert_eq!(
        stored.len() + on_server.len(),
        MESSAGES,
        "LOST: neither stored nor on the server"
    );
    assert!(
        after.temp_files.is_empty(),
        "the failed batch's temp files are removed, not left to fill the disk: {:?}",
        after.temp_files
    );

    // The failing session: messages retrieved, none deleted, and no QUIT — the server
    // keeps (and Gmail would not hide) every message of the batch that was not stored.
    let conversations = proxy.conversations();
    let (failing, earlier) = conversations.split_last().expect("sessions");
    assert!(
        sent(failing, "RETR") > 0,
        "the disk filled mid-batch: {failing:?}"
    );
    assert_eq!(sent(failing, "DELE"), 0, "{failing:?}");
    assert_eq!(
        sent(failing, "QUIT"),
        0,
        "dropped without QUIT: {failing:?}"
    );
    for session in earlier {
        assert_eq!(
            sent(session, "QUIT"),
            1,
            "committed batches end with QUIT: {session:?}"
        );
    }
    let sessions = log.sessions(&dovecot);
    let last = sessions.last().expect("Dovecot logged the sessions");
    assert!(
        !last.logged_out && last.retr > 0,
        "Dovecot saw the failing session end without QUIT: {last:?}"
    );
    assert_eq!(
        stored.len(),
        earlier.iter().map(|c| sent(c, "RETR")).sum::<usize>(),
        "exactly the batches of the sessions that ended with QUIT are stored"
    );

    eprintln!(
        "disk full after {} of {MESSAGES} messages; the failing session retrieved {}: {}",
        stored.len(),
        sent(failing, "RETR"),
        complaint[0]
    );

    // Space is freed; the next run carries on where this one stopped.
    disk.resize(ROOMY_DISK);
    let done = popdesk.fetch(MAILBOX);
    assert!(done.status.success(), "after freeing space: {done:?}");
    let end = inspect(&data, MAILBOX);
    assert_stored_exactly_once(&end, &source, &dovecot, 0, "after space was freed");
    let runs = popdesk.runs(MAILBOX);
    let last = runs.last().expect("the second run is recorded");
    assert_eq!(last.outcome, "success", "{last:?}");
    assert_eq!(
        last.downloaded as usize,
        MESSAGES - stored.len(),
        "the second run fetched only what the first could not store: {last:?}"
    );
    assert_eq!(dovecot.message_count(USER), 0);
}

/// SQLite's shared-memory index beside a WAL database, created when the database is
/// opened and removed when the last connection closes cleanly.
const SHM: u64 = 32 * 1024;

/// Opens and closes the store, as a clean shutdown does: SQLite checkpoints its
/// write-ahead log and removes it and the shared-memory file. Whether a `popdesk`
/// process got to do that before it exited is a matter of timing; this makes the state
/// of the disk known.
fn close_database_cleanly(data: &Path) {
    let _ = inspect(data, MAILBOX);
    for leftover in ["popdesk.db-wal", "popdesk.db-shm"] {
        assert!(
            !data.join(leftover).exists(),
            "{leftover} is still there after a clean close; this test needs it gone"
        );
    }
}

/// Fills `disk` up to `free` octets; returns the filler file (remove it to free space).
fn fill(disk: &Tmpfs, free: u64) -> PathBuf {
    let filler = disk.path().join("filler");
    let available = disk.available();
    assert!(
        available > free,
        "only {available} octets free on the small disk"
    );
    std::fs::write(&filler, vec![0u8; (available - free) as usize]).expect("write the filler");
    filler
}

#[test]
fn a_full_database_disk_at_commit_drops_the_session_without_quit_and_loses_nothing() {
    const FEW: usize = 12;
    let source: Vec<SourceMail> = (0..FEW)
        .map(|n| sized_message("full-db", n, 20_000))
        .collect();
    let dovecot = dovecot_with(&source);
    let proxy = WatchingProxy::start(dovecot.pop3_addr());
    // The database on a small disk, the blobs on a roomy one of their own: what fails
    // is the database, after the batch's blobs are in place.
    let disk = Tmpfs::mount("1m");
    let data: PathBuf = disk.path().join("data");
    let _blobs = Tmpfs::mount_at(&data.join("blobs"), ROOMY_DISK);
    let popdesk = Popdesk::new(&data);
    popdesk.add_mailbox(
        MAILBOX,
        Security::Plaintext { addr: proxy.addr() },
        &["--batch", BATCH],
    );

    // Leave the database a little room: its shared-memory file (32 KiB) and enough to
    // take the lease and record the start of the run, not enough to commit a batch.
    // How much that is depends on SQLite's write-ahead log, so step up from a known
    // state (no -wal, no -shm) until a run gets as far as retrieving mail.
    let mut free = SHM + 8 * 1024;
    let (full, failing) = loop {
        free += 8 * 1024;
        assert!(
            free <= SHM + 256 * 1024,
            "the database never ran out of space at the commit"
        );
        close_database_cleanly(&data);
        let filler = fill(&disk, free);
        let connections = proxy.conversations().len();
        let full = popdesk.fetch(MAILBOX);
        std::fs::remove_file(&filler).expect("remove the filler");
        assert_eq!(full.status.code(), Some(75), "temporary: {full:?}");
        assert_eq!(full.stderr.lines().count(), 1, "one line: {full:?}");
        assert!(
            full.stderr.contains("disk") && full.stderr.contains("full"),
            "{full:?}"
        );
        let conversations = proxy.conversations().split_off(connections);
        if let Some(last) = conversations.last().filter(|c| sent(c, "RETR") > 0) {
            break (full, last.clone());
        }
        assert!(
            conversations.is_empty(),
            "failed in a session without RETR: {conversations:?}"
        );
    };
    eprintln!(
        "with {free} octets free, the run failed after {} RETR: {}",
        sent(&failing, "RETR"),
        full.stderr.trim()
    );
    assert_eq!(sent(&failing, "DELE"), 0, "{failing:?}");
    assert_eq!(
        sent(&failing, "QUIT"),
        0,
        "dropped without QUIT: {failing:?}"
    );
    let after = inspect(&data, MAILBOX);
    assert!(after.raw.is_empty(), "nothing was committed");
    assert_eq!(
        after.orphan_blobs(),
        sent(&failing, "RETR"),
        "the blobs were in place; the commit is what failed"
    );
    assert_eq!(dovecot.message_count(USER), FEW, "nothing deleted");
    // The run's own record may not fit on a full database disk either: then it stays
    // "running" until the next run marks it interrupted. If it fit, it says why.
    let runs = popdesk.runs(MAILBOX);
    let run = runs.last().expect("the run's start was recorded");
    match run.outcome.as_str() {
        "transient" => assert!(
            run.error
                .as_deref()
                .is_some_and(|e| e.contains("disk") && e.contains("full")),
            "{run:?}"
        ),
        "running" => {}
        other => panic!("a full disk is transient, not {other}: {run:?}"),
    }

    // Space is freed; the next run stores everything once, adopting the blobs in place.
    let done = popdesk.fetch(MAILBOX);
    assert!(done.status.success(), "after freeing space: {done:?}");
    let end = inspect(&data, MAILBOX);
    assert_stored_exactly_once(&end, &source, &dovecot, 0, "after space was freed");
    assert_eq!(end.orphan_blobs(), 0);
}

/// A full disk found when popdesk starts (opening the database needs to create SQLite's
/// shared-memory file) is the same temporary condition as one found mid-run: one
/// sentence saying the disk is full, exit status 75, and at once (promise 6).
#[test]
fn a_full_disk_at_start_up_is_reported_at_once_as_temporary() {
    let disk = Tmpfs::mount("1m");
    let data: PathBuf = disk.path().join("data");
    let popdesk = Popdesk::new(&data);
    popdesk.add_mailbox(
        MAILBOX,
        Security::Plaintext {
            addr: "127.0.0.1:9".parse().expect("address"),
        },
        &[],
    );
    close_database_cleanly(&data);
    let filler = fill(&disk, 0);

    let done = popdesk
        .spawn(&["mailbox", "fetch", MAILBOX])
        .wait(std::time::Duration::from_secs(10));
    std::fs::remove_file(&filler).expect("remove the filler");
    assert_eq!(
        done.status.code(),
        Some(75),
        "a full disk is temporary: {done:?}"
    );
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {:?}", done.stderr);
    assert!(
        lines[0].contains("disk") && lines[0].contains("full"),
        "the sentence says the disk is full: {}",
        lines[0]
    );
    assert!(
        done.elapsed < std::time::Duration::from_secs(5),
        "said at once, not after retrying for {:?}",
        done.elapsed
    );
}
