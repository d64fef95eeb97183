//! Shared by popdesk's end-to-end tests: the real `popdesk` binary driven the way an
//! admin or a scheduler drives it, against a real Dovecot, with every wait bounded.
//!
//! - [`Popdesk`]: runs the binary on one data folder and reads its `--json` output.
//! - [`support_mailbox`]: 300-ish distinct messages, real mail from `../shared/corpus`
//!   mixed with generated helpdesk mail (dot-leading lines, ~100 KB attachments).
//! - [`inspect`]: what the store holds, read with the store's own API after the binary
//!   exited, and [`assert_stored_exactly_once`], the check of promises 1 and 2.
//! - [`Pop3Log`]: what Dovecot says each session did (RETR/DELE counts, QUIT or not).
//! - [`WatchingProxy`]: a hand-written pass-through that records the commands reaching
//!   the server and can hold the conversation at a chosen point.
//! - [`Rng`]: a seeded generator; the seed is printed so a failure can be replayed with
//!   `POPDESK_TEST_SEED=<seed>`.

#![allow(dead_code)] // each test file uses its part

pub mod nodes;
pub mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use testkit::Dovecot;

pub const USER: &str = "support";
pub const PASSWORD: &str = "s3cret-support-pass";
/// The environment variable `mailbox add --password-env` reads.
pub const PASSWORD_VAR: &str = "POPDESK_TEST_MAILBOX_PASSWORD";
/// No single `popdesk` invocation in these tests may take longer than this.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Randomness that can be replayed

/// SplitMix64: tiny, good enough to pick kill moments and cut points, and replayable.
pub struct Rng {
    state: u64,
}

impl Rng {
    /// Seeded from `POPDESK_TEST_SEED` when set, else from the clock; prints the seed.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("POPDESK_TEST_SEED")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                now.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
            });
        eprintln!("{test}: seed {seed} (replay with POPDESK_TEST_SEED={seed})");
        Rng::new(seed)
    }

    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.range(0, i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The mail

/// One message of the test mailbox.
#[derive(Clone)]
pub struct SourceMail {
    /// The bytes put into the Maildir (some with bare LF line ends, as MDAs leave them).
    pub delivered: Vec<u8>,
    /// The bytes as Dovecot serves them: every line ending CRLF.
    pub served: Vec<u8>,
    pub message_id: String,
    /// sha256 of `served`, lowercase hex.
    pub sha256: String,
    /// Where it came from, for failure messages.
    pub origin: String,
}

impl SourceMail {
    fn new(delivered: Vec<u8>, message_id: String, origin: String) -> SourceMail {
        let served = to_crlf(&delivered);
        let sha256 = sha256_hex(&served);
        SourceMail {
            delivered,
            served,
            message_id,
            sha256,
            origin,
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every bare LF becomes CRLF, which is what a POP3 server sends.
pub fn to_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 30);
    let mut previous = 0u8;
    for &b in bytes {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out
}

/// `count` distinct messages with unique Message-IDs: up to two fifths real mail from
/// the shared corpus (its own Message-ID replaced, line endings as upstream wrote them),
/// the rest generated helpdesk mail, about one in ten with a ~100 KB attachment, many with
/// lines that begin with a dot (one a lone dot). Shuffled with `rng`.
pub fn support_mailbox(rng: &mut Rng, count: usize, tag: &str) -> Vec<SourceMail> {
    let corpus = corpus_messages();
    let mut picks: Vec<usize> = (0..corpus.len()).collect();
    rng.shuffle(&mut picks);
    picks.truncate(count * 2 / 5);
    let mut mail = Vec::with_capacity(count);
    for (n, index) in picks.into_iter().enumerate() {
        let (name, bytes) = &corpus[index];
        let id = format!("{tag}-corpus-{n}@popdesk.test");
        mail.push(SourceMail::new(
            with_message_id(bytes, &id),
            id,
            format!("corpus {name}"),
        ));
    }
    let mut n = 0;
    while mail.len() < count {
        let id = format!("{tag}-generated-{n}@popdesk.test");
        let bytes = generated_message(rng, n, &id);
        mail.push(SourceMail::new(bytes, id, format!("generated #{n}")));
        n += 1;
    }
    rng.shuffle(&mut mail);
    let distinct: BTreeSet<&str> = mail.iter().map(|m| m.sha256.as_str()).collect();
    assert_eq!(
        distinct.len(),
        mail.len(),
        "the test mailbox must be distinct"
    );
    mail
}

/// The shared corpus, where it is (`../shared/corpus` beside the repository).
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

/// Corpus messages a POP3 server serves unchanged apart from CRLF: no NUL, no lone CR,
/// not an mbox file, at most 200 KB. Sorted by name so a seed picks the same ones.
fn corpus_messages() -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir();
    let index = fs::read_to_string(dir.join("INDEX.tsv")).unwrap_or_else(|e| {
        panic!(
            "the shared mail corpus is missing ({}: {e}); these tests use real mail from it",
            dir.display()
        )
    });
    let mut messages = Vec::new();
    for line in index.lines().skip(1) {
        let Some(name) = line.split('\t').next() else {
            continue;
        };
        let Ok(bytes) = fs::read(dir.join(name)) else {
            continue;
        };
        let lone_cr = bytes.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n')
            || bytes.last() == Some(&b'\r');
        if bytes.len() > 200_000
            || bytes.len() < 40
            || bytes.contains(&0)
            || lone_cr
            || bytes.starts_with(b"From ")
        {
            continue;
        }
        messages.push((name.to_string(), bytes));
    }
    messages.sort();
    assert!(
        messages.len() >= 200,
        "expected hundreds of usable corpus messages in {}, found {}",
        dir.display(),
        messages.len()
    );
    messages
}

/// The message with its Message-ID header(s) replaced by `id`, in the message's own
/// line-ending style, and ending with a line end.
fn with_message_id(bytes: &[u8], id: &str) -> Vec<u8> {
    let eol: &[u8] = match memfind(bytes, b"\n") {
        Some(at) if at > 0 && bytes[at - 1] == b'\r' => b"\r\n",
        _ => b"\n",
    };
    let mut out = Vec::with_capacity(bytes.len() + 64);
    out.extend_from_slice(b"Message-ID: <");
    out.extend_from_slice(id.as_bytes());
    out.push(b'>');
    out.extend_from_slice(eol);
    let mut rest = bytes;
    let mut in_headers = true;
    let mut dropping = false;
    while !rest.is_empty() {
        let end = memfind(rest, b"\n").map_or(rest.len(), |at| at + 1);
        let line = &rest[..end];
        rest = &rest[end..];
        if in_headers {
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if content.is_empty() {
                in_headers = false;
            } else if dropping && matches!(content[0], b' ' | b'\t') {
                continue; // folded continuation of a dropped Message-ID
            } else {
                dropping =
                    content.len() >= 11 && content[..11].eq_ignore_ascii_case(b"message-id:");
                if dropping {
                    continue;
                }
            }
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\n") {
        out.extend_from_slice(eol);
    }
    out
}

fn memfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

const NAMES: [&str; 8] = [
    "Ana Souza",
    "Bjørn Eriksen",
    "Chen Wei",
    "Dana Whitfield",
    "Émile Roux",
    "Fatima Zahra",
    "Grzegorz Nowak",
    "Hiroko Tanaka",
];
const TOPICS: [&str; 6] = [
    "Invoice 2026-%d is wrong",
    "Cannot log in since yesterday (ticket %d?)",
    "Re: [#%d] Refund request",
    "Delivery %d arrived damaged",
    "Question about plan %d",
    "Fwd: error %d when exporting",
];

/// Generated helpdesk mail with CRLF line ends: plain text or multipart/alternative,
/// about one in ten with a base64 attachment of ~100 KB, most with dot-leading lines.
fn generated_message(rng: &mut Rng, n: usize, id: &str) -> Vec<u8> {
    let name = NAMES[rng.range(0, NAMES.len() as u64) as usize];
    let login = name
        .split(' ')
        .next()
        .unwrap_or("customer")
        .to_ascii_lowercase()
        .replace('ø', "o")
        .replace('é', "e");
    let topic =
        TOPICS[rng.range(0, TOPICS.len() as u64) as usize].replace("%d", &(1000 + n).to_string());
    let mut m = String::new();
    m.push_str(&format!(
        "Return-Path: <{login}{n}@example.net>\r\n\
Received: from mx{a}.example.net (mx{a}.example.net [192.0.2.{a}])\r\n\
\tby mail.example.com (Postfix) with ESMTPS id 4Zx{n:05}\r\n\
\tfor <support@example.com>; Tue, 24 Nov 2026 09:{mm:02}:{ss:02} +0100\r\n\
From: {name} <{login}{n}@example.net>\r\n\
To: Support <support@example.com>\r\n\
Subject: {topic}\r\n\
Date: Tue, 24 Nov 2026 09:{mm:02}:{ss:02} +0100\r\n\
Message-ID: <{id}>\r\n\
MIME-Version: 1.0\r\n",
        a = rng.range(1, 250),
        mm = rng.range(0, 60),
        ss = rng.range(0, 60),
    ));
    let mut text = format!(
        "Hello,\r\n\r\nthis is about case {n}. I tried what the FAQ says but it still fails.\r\n"
    );
    // Lines a POP3 server must dot-stuff, and a client must unstuff.
    match rng.range(0, 4) {
        0 => text.push_str(".\r\nThat dot above was alone on its line.\r\n"),
        1 => text.push_str("..double dot\r\n. dot space\r\n.hidden.cfg\r\n"),
        2 => text.push_str("...\r\n.\r\n..\r\n"),
        _ => {}
    }
    for _ in 0..rng.range(1, 30) {
        text.push_str("Lorem ipsum dolor sit amet, the order number was ");
        text.push_str(&rng.range(100_000, 999_999).to_string());
        text.push_str(" and the page just says error.\r\n");
    }
    text.push_str("\r\n-- \r\n");
    text.push_str(name);
    text.push_str("\r\n");
    if rng.chance(0.1) {
        // An attachment: the message is ~100 KB.
        let boundary = format!("=_att_{n}_{}", rng.next_u64());
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
This is a multi-part message in MIME format.\r\n--{boundary}\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n{text}--{boundary}\r\n\
Content-Type: application/pdf; name=\"scan-{n}.pdf\"\r\n\
Content-Disposition: attachment; filename=\"scan-{n}.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n"
        ));
        let raw: Vec<u8> = (0..rng.range(70_000, 80_000))
            .map(|_| rng.next_u64() as u8)
            .collect();
        for chunk in base64(&raw).as_bytes().chunks(76) {
            m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            m.push_str("\r\n");
        }
        m.push_str(&format!("--{boundary}--\r\n"));
    } else if rng.chance(0.3) {
        let boundary = format!("=_alt_{n}_{}", rng.next_u64());
        let html = text.replace("\r\n", "<br>\r\n");
        m.push_str(&format!(
            "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\r\n{text}--{boundary}\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n{html}</body></html>\r\n\
--{boundary}--\r\n"
        ));
    } else {
        m.push_str(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        );
        m.push_str(&text);
    }
    m.into_bytes()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Helpdesk mail of about `size` octets (CRLF, some lines beginning with a dot), with the
/// Message-ID `<{tag}-{n}@popdesk.test>`.
pub fn sized_message(tag: &str, n: usize, size: usize) -> SourceMail {
    let id = format!("{tag}-{n}@popdesk.test");
    let mut m = format!(
        "From: Customer {n} <customer{n}@example.net>\r\nTo: support@example.com\r\n\
Subject: Log files for case {n}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\n\
Message-ID: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Here are the logs you asked for.\r\n.\r\n"
    );
    let mut line = 0;
    while m.len() < size {
        m.push_str(&format!(
            ".{n:04}.{line:06} 2026-11-24T10:00:00Z worker[{n}] request {line} took {}ms\r\n",
            (n * 7919 + line * 104_729) % 5000
        ));
        line += 1;
    }
    SourceMail::new(m.into_bytes(), id, format!("sized #{n}"))
}

/// A Dovecot with the user `support` holding `mail`.
pub fn dovecot_with(mail: &[SourceMail]) -> Dovecot {
    let dovecot = Dovecot::start();
    dovecot.add_user(USER, PASSWORD);
    dovecot.deliver_many(USER, mail.iter().map(|m| &m.delivered));
    assert_eq!(dovecot.message_count(USER), mail.len());
    dovecot
}

// ---------------------------------------------------------------------------------------
// The binary

/// `popdesk` on one data folder. Output of every invocation goes to files beside (not in)
/// the data folder, so a data folder on a full disk does not lose it.
pub struct Popdesk {
    data: PathBuf,
    output: tempfile::TempDir,
    seq: AtomicU64,
}

/// A finished invocation.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    /// Whether it ended by SIGKILL.
    pub fn killed(&self) -> bool {
        self.status.signal() == Some(9)
    }
}

/// A running invocation; killed if dropped unfinished.
pub struct Running {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
    started: Instant,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// What it has printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// What it has printed on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// SIGKILL (Child::kill sends SIGKILL on Unix), then reap. If it had already
    /// exited, its real exit status is returned: see [`Finished::killed`].
    pub fn kill(mut self) -> Finished {
        let mut child = self.child.take().expect("running child");
        let _ = child.kill();
        self.reap(child, Duration::from_secs(10))
    }

    /// Waits up to `timeout` for it to exit; kills it and panics after that.
    pub fn wait(mut self, timeout: Duration) -> Finished {
        let child = self.child.take().expect("running child");
        self.reap(child, timeout)
    }

    fn reap(&self, mut child: Child, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "popdesk did not finish within {timeout:?}\n--- stderr ---\n{}",
                        fs::read_to_string(&self.stderr).unwrap_or_default()
                    );
                }
                Err(e) => panic!("wait for popdesk: {e}"),
            }
        };
        Finished {
            status,
            stdout: fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr).unwrap_or_default(),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One row of `mailbox runs --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct RunRecord {
    pub id: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: String,
    pub listed: u64,
    pub downloaded: u64,
    pub deleted: u64,
    pub already_known: u64,
    pub too_large: u64,
    pub duplicates: u64,
    pub bytes: u64,
    pub error: Option<String>,
}

impl Popdesk {
    pub fn new(data: impl Into<PathBuf>) -> Popdesk {
        Popdesk {
            data: data.into(),
            output: tempfile::Builder::new()
                .prefix("popdesk-cli-output-")
                .tempdir()
                .expect("temp dir for popdesk's output"),
            seq: AtomicU64::new(0),
        }
    }

    pub fn data(&self) -> &Path {
        &self.data
    }

    /// Starts `popdesk --data DIR ARGS...`.
    pub fn spawn(&self, args: &[&str]) -> Running {
        self.spawn_with(args, &[])
    }

    /// Starts `popdesk --data DIR ARGS...` with extra environment variables.
    pub fn spawn_with(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let stdout = self.output.path().join(format!("{n}.out"));
        let stderr = self.output.path().join(format!("{n}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_popdesk"))
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .env(PASSWORD_VAR, PASSWORD)
            .env_remove("POPDESK_DATA")
            .env_remove("POPDESK_DATABASE_URL")
            .env_remove("POPDESK_LOG")
            .env_remove("RUST_BACKTRACE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).expect("stdout file"))
            .stderr(fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start the popdesk binary");
        Running {
            child: Some(child),
            stdout,
            stderr,
            started: Instant::now(),
        }
    }

    /// Runs to the end (bounded by [`RUN_TIMEOUT`]).
    pub fn run(&self, args: &[&str]) -> Finished {
        self.spawn(args).wait(RUN_TIMEOUT)
    }

    /// Runs and insists on exit status 0.
    pub fn run_ok(&self, args: &[&str]) -> Finished {
        let done = self.run(args);
        assert!(
            done.status.success(),
            "popdesk {args:?} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            done.status,
            done.stdout,
            done.stderr
        );
        done
    }

    /// `mailbox add NAME --host H --port P --tls ... --user support --password-env ...`
    /// for `security`, then `extra`.
    pub fn add_mailbox(&self, name: &str, security: Security<'_>, extra: &[&str]) {
        let (host, port, tls) = match security {
            Security::ImplicitTls { dovecot } => (
                dovecot.host().to_string(),
                dovecot.pop3s_addr().port(),
                vec![
                    "--tls".to_string(),
                    "implicit".to_string(),
                    "--ca-file".to_string(),
                    dovecot.ca_pem_path().display().to_string(),
                ],
            ),
            Security::Plaintext { addr } => (
                addr.ip().to_string(),
                addr.port(),
                vec![
                    "--tls".to_string(),
                    "none".to_string(),
                    "--allow-insecure-auth".to_string(),
                ],
            ),
        };
        let port = port.to_string();
        let mut args = vec!["mailbox", "add", name, "--host", &host, "--port", &port];
        args.extend(tls.iter().map(String::as_str));
        args.extend(["--user", USER, "--password-env", PASSWORD_VAR]);
        args.extend(extra);
        self.run_ok(&args);
    }

    /// `mailbox fetch NAME`.
    pub fn fetch(&self, name: &str) -> Finished {
        self.run(&["mailbox", "fetch", name])
    }

    /// `mailbox runs NAME --json`, oldest first.
    pub fn runs(&self, name: &str) -> Vec<RunRecord> {
        let done = self.run_ok(&["mailbox", "runs", name, "--json", "--limit", "100000"]);
        let mut runs: Vec<RunRecord> = serde_json::from_str(&done.stdout)
            .unwrap_or_else(|e| panic!("mailbox runs --json: {e}\n{}", done.stdout));
        runs.reverse();
        runs
    }

    /// `mailbox show NAME --json`.
    pub fn show(&self, name: &str) -> serde_json::Value {
        let done = self.run_ok(&["mailbox", "show", name, "--json"]);
        serde_json::from_str(&done.stdout)
            .unwrap_or_else(|e| panic!("mailbox show --json: {e}\n{}", done.stdout))
    }
}

/// How `mailbox add` reaches the server.
#[derive(Clone, Copy)]
pub enum Security<'a> {
    /// POP3S straight to Dovecot, trusting its test CA.
    ImplicitTls { dovecot: &'a Dovecot },
    /// Plaintext POP3 to this address (a proxy), password allowed without TLS.
    Plaintext { addr: SocketAddr },
}

// ---------------------------------------------------------------------------------------
// What the store holds

/// The store's view of one mailbox, read with the store's own API.
#[derive(Debug, Default)]
pub struct Inspection {
    /// (Message-ID, sha256 of the bytes read back from the blob store, sha256 column).
    pub raw: Vec<(Option<String>, String, String)>,
    /// Ledger rows: uid → state.
    pub ledger: BTreeMap<String, String>,
    /// Ledger uids whose deletion the server confirmed.
    pub ledger_deleted: BTreeSet<String>,
    /// Temp files left in `blobs/tmp`, by name.
    pub temp_files: Vec<String>,
    /// Blob files in the content-addressed folders.
    pub blob_files: BTreeSet<String>,
    /// Blobs that ticket entries' attachments point at (the processor's, not raw mail).
    pub attachment_blobs: BTreeSet<String>,
    /// Recorded fetch runs, oldest first: (id, outcome).
    pub runs: Vec<(i64, String)>,
}

/// Opens the store in `data` (the binary must not be running), reads `mailbox`.
pub fn inspect(data: &Path, mailbox: &str) -> Inspection {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime to read the store");
    let mut inspection = runtime.block_on(async {
        let store = store::Store::open(data, None)
            .await
            .expect("open the store the binary wrote");
        let mailbox = store
            .mailbox(mailbox)
            .await
            .expect("read the mailbox")
            .expect("the mailbox exists");
        let mut inspection = Inspection::default();
        for raw in store
            .raw_messages(mailbox.id)
            .await
            .expect("read raw messages")
        {
            let bytes = store
                .blobs()
                .read(&raw.sha256)
                .await
                .unwrap_or_else(|e| panic!("raw message {} has no readable blob: {e}", raw.id));
            inspection
                .raw
                .push((raw.message_id, sha256_hex(&bytes), raw.sha256));
        }
        let every_ticket = store::TicketFilter {
            limit: u32::MAX,
            ..store::TicketFilter::default()
        };
        for ticket in store.tickets(&every_ticket).await.expect("read tickets") {
            for entry in store.ticket_entries(ticket.id).await.expect("read entries") {
                for attachment in entry.attachments {
                    inspection.attachment_blobs.insert(attachment.sha256);
                }
            }
        }
        for entry in store.ledger(mailbox.id).await.expect("read the ledger") {
            if entry.deleted_at.is_some() {
                inspection.ledger_deleted.insert(entry.uid.clone());
            }
            inspection
                .ledger
                .insert(entry.uid, format!("{:?}", entry.state));
        }
        let mut runs = store
            .runs(mailbox.id, u32::MAX)
            .await
            .expect("read the fetch runs");
        runs.reverse();
        inspection.runs = runs
            .into_iter()
            .map(|run| (run.id, run.outcome.to_string()))
            .collect();
        store.close().await;
        inspection
    });
    let blobs = data.join("blobs");
    inspection.temp_files = file_names(&blobs.join("tmp"));
    for fan1 in file_names(&blobs) {
        if fan1.len() != 2 {
            continue;
        }
        for fan2 in file_names(&blobs.join(&fan1)) {
            inspection
                .blob_files
                .extend(file_names(&blobs.join(&fan1).join(fan2)));
        }
    }
    inspection
}

fn file_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

impl Inspection {
    /// Blobs in place that no raw message and no attachment points at: persisted, not
    /// (yet) committed.
    pub fn orphan_blobs(&self) -> usize {
        let referenced: BTreeSet<&str> = self
            .raw
            .iter()
            .map(|r| r.2.as_str())
            .chain(self.attachment_blobs.iter().map(String::as_str))
            .collect();
        self.blob_files
            .iter()
            .filter(|b| !referenced.contains(b.as_str()))
            .count()
    }

    /// Temp files a process with this pid left behind.
    pub fn temp_files_of(&self, pid: u32) -> usize {
        let prefix = format!("{pid}-");
        self.temp_files
            .iter()
            .filter(|n| n.starts_with(&prefix))
            .count()
    }
}

/// Promises 1 and 2 at the end of a test: the store holds every source message exactly
/// once (Message-ID set and sha256 of the bytes read back, against the bytes Dovecot
/// served), nothing else, and `remaining` messages are still on the server.
pub fn assert_stored_exactly_once(
    inspection: &Inspection,
    source: &[SourceMail],
    dovecot: &Dovecot,
    remaining_on_server: usize,
    context: &str,
) {
    let expected: BTreeMap<&str, &SourceMail> =
        source.iter().map(|m| (m.message_id.as_str(), m)).collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (message_id, read_back, column) in &inspection.raw {
        assert_eq!(
            read_back, column,
            "{context}: a blob's bytes do not hash to its name"
        );
        let id = message_id
            .as_deref()
            .unwrap_or_else(|| panic!("{context}: a stored message has no Message-ID"));
        let source = expected
            .get(id)
            .unwrap_or_else(|| panic!("{context}: stored a message nobody sent: <{id}>"));
        assert_eq!(
            read_back, &source.sha256,
            "{context}: <{id}> ({}) was stored with other bytes than the server served",
            source.origin
        );
        *seen.entry(id).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{context}: stored more than once: {twice:?}"
    );
    let missing: Vec<&str> = expected
        .keys()
        .filter(|id| !seen.contains_key(*id))
        .copied()
        .collect();
    assert_eq!(
        inspection.raw.len() + missing.len(),
        source.len(),
        "{context}: stored/missing do not add up"
    );
    let on_server = dovecot.message_count(USER);
    assert_eq!(
        on_server, remaining_on_server,
        "{context}: {on_server} messages on the server, expected {remaining_on_server}"
    );
    if remaining_on_server == 0 {
        assert!(
            missing.is_empty(),
            "{context}: the server is empty but {} messages were never stored: {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
    }
}

/// Promises 1 and 2 at any moment between runs: every source message is stored or
/// still on the server (or both), nothing is stored twice, nothing unknown is stored.
pub fn assert_nothing_lost_nothing_twice(
    inspection: &Inspection,
    source: &[SourceMail],
    dovecot: &Dovecot,
    context: &str,
) {
    let on_server = message_ids_on_server(dovecot, source);
    let mut stored: BTreeMap<&str, usize> = BTreeMap::new();
    for (message_id, read_back, column) in &inspection.raw {
        assert_eq!(
            read_back, column,
            "{context}: a blob's bytes do not match its name"
        );
        *stored
            .entry(message_id.as_deref().unwrap_or(""))
            .or_insert(0) += 1;
    }
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{context}: stored more than once: {twice:?}"
    );
    let lost: Vec<&str> = source
        .iter()
        .map(|m| m.message_id.as_str())
        .filter(|id| !stored.contains_key(id) && !on_server.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{context}: LOST {} messages (neither stored nor on the server): {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let known: BTreeSet<&str> = source.iter().map(|m| m.message_id.as_str()).collect();
    let unknown: Vec<_> = stored.keys().filter(|id| !known.contains(*id)).collect();
    assert!(
        unknown.is_empty(),
        "{context}: stored unknown messages {unknown:?}"
    );
}

/// The Message-IDs of the messages still on the server (read from its Maildir).
pub fn message_ids_on_server(dovecot: &Dovecot, source: &[SourceMail]) -> BTreeSet<String> {
    let by_delivered: BTreeMap<&[u8], &str> = source
        .iter()
        .map(|m| (m.delivered.as_slice(), m.message_id.as_str()))
        .collect();
    dovecot
        .messages(USER)
        .iter()
        .map(|bytes| {
            by_delivered
                .get(bytes.as_slice())
                .map(|id| id.to_string())
                .unwrap_or_else(|| panic!("a message on the server the test did not deliver"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// What Dovecot says each session did

/// One POP3 session of `support` as Dovecot logged its end:
/// `Disconnected: Logged out top=0/0, retr=10/52310, del=10/300, size=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pop3Session {
    /// Ended by QUIT (Dovecot committed the session's deletions).
    pub logged_out: bool,
    /// RETR commands Dovecot answered.
    pub retr: u32,
    /// Messages the session deleted: Dovecot counts them only when the session ended
    /// with QUIT (0 for a session cut or killed after its DELEs).
    pub del: u32,
    pub line: String,
}

/// Reads Dovecot's log from a point on.
pub struct Pop3Log {
    offset: usize,
}

impl Pop3Log {
    /// From the end of the log as it is now.
    pub fn from_now(dovecot: &Dovecot) -> Pop3Log {
        Pop3Log {
            offset: dovecot.log().len(),
        }
    }

    /// The sessions of `support` that logged in since, each with how it ended. Waits
    /// (bounded) until every session that logged in has also been logged as ended:
    /// Dovecot notices a dead client a moment after it died.
    pub fn sessions(&self, dovecot: &Dovecot) -> Vec<Pop3Session> {
        self.collect_sessions(dovecot, true)
    }

    /// Like [`Pop3Log::sessions`], for runs whose connection is cut at random: a client
    /// cut while Dovecot hands the login over to its pop3 process can end without a
    /// "Disconnected" line, so after the wait the sessions logged so far are returned.
    pub fn sessions_allowing_unlogged_ends(&self, dovecot: &Dovecot) -> Vec<Pop3Session> {
        self.collect_sessions(dovecot, false)
    }

    fn collect_sessions(&self, dovecot: &Dovecot, strict: bool) -> Vec<Pop3Session> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = dovecot.log();
            let slice = log.get(self.offset..).unwrap_or_default();
            let logins = slice
                .lines()
                .filter(|l| l.contains("pop3-login: Info: Login: user=<support>"))
                .count();
            let sessions: Vec<Pop3Session> = slice
                .lines()
                .filter(|l| l.contains("pop3(support)") && l.contains("Disconnected"))
                .map(parse_disconnect)
                .collect();
            if sessions.len() >= logins || (!strict && Instant::now() >= deadline) {
                return sessions;
            }
            assert!(
                Instant::now() < deadline,
                "Dovecot logged {logins} logins but only {} disconnects within 10 s:\n{slice}",
                sessions.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn parse_disconnect(line: &str) -> Pop3Session {
    let count = |key: &str| -> u32 {
        line.split(key)
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} count in Dovecot's line {line:?}"))
    };
    Pop3Session {
        logged_out: line.contains("Disconnected: Logged out"),
        retr: count("retr="),
        del: count("del="),
        line: line.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// A proxy that watches, and holds on cue

/// Where [`WatchingProxy`] holds the conversation (once; later connections pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The client's first command starting with this word is never forwarded: the
    /// server has not seen it, the client waits for its reply.
    ClientCommand(&'static str),
    /// The client's first command starting with this word is forwarded; of the server's
    /// reply only `octets` octets reach the client, then nothing more.
    ServerReply {
        command: &'static str,
        octets: usize,
    },
}

/// A hand-written pass-through proxy for plaintext POP3 — a fake, named as such. It
/// records what the client sends (secrets redacted) and can hold the conversation at one
/// chosen point, so a test can see that no `QUIT` was sent, or kill the client exactly
/// between two protocol steps, which no real server can be made to do on cue. testkit's
/// `FaultProxy` injects faults; this one only watches and waits.
pub struct WatchingProxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    accept: Option<std::thread::JoinHandle<()>>,
}

struct ProxyShared {
    upstream: SocketAddr,
    stop: AtomicBool,
    hold: Mutex<Option<Hold>>,
    held: AtomicBool,
    conversations: Mutex<Vec<Vec<String>>>,
    sockets: Mutex<Vec<TcpStream>>,
}

impl WatchingProxy {
    pub fn start(upstream: SocketAddr) -> WatchingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the watching proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(ProxyShared {
            upstream,
            stop: AtomicBool::new(false),
            hold: Mutex::new(None),
            held: AtomicBool::new(false),
            conversations: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let shared = Arc::clone(&shared);
                    std::thread::spawn(move || relay(client, shared));
                }
            })
        };
        WatchingProxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Arms a hold for the next matching command.
    pub fn hold(&self, hold: Hold) {
        self.shared.held.store(false, Ordering::SeqCst);
        *lock(&self.shared.hold) = Some(hold);
    }

    /// Waits (bounded) until the armed hold has caught the conversation.
    pub fn wait_held(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.shared.held.load(Ordering::SeqCst) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// Disarms a hold that did not catch anything.
    pub fn release(&self) {
        *lock(&self.shared.hold) = None;
    }

    /// The commands that reached the server, one list per connection, in order (a
    /// held command is listed as `held: ...`, a part of a line as `partial: ...`).
    pub fn conversations(&self) -> Vec<Vec<String>> {
        lock(&self.shared.conversations).clone()
    }
}

impl Drop for WatchingProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for socket in lock(&self.shared.sockets).iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What is recorded of a command line: the line for commands without secrets, the
/// command word alone for the rest (PASS, AUTH and its continuations, APOP).
fn recorded(line: &str) -> String {
    let line = line.trim_end();
    let word = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
    match word.as_str() {
        "CAPA" | "UIDL" | "LIST" | "STAT" | "RETR" | "DELE" | "QUIT" | "TOP" | "NOOP" | "RSET"
        | "STLS" | "USER" => line.to_string(),
        _ => format!("{word} ***"),
    }
}

fn relay(client: TcpStream, shared: Arc<ProxyShared>) {
    let Ok(server) = TcpStream::connect(shared.upstream) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(mut client_out), Ok(mut server_in), Ok(mut server_out)) =
        (client.try_clone(), server.try_clone(), server.try_clone())
    else {
        return;
    };
    {
        let mut sockets = lock(&shared.sockets);
        for socket in [&client, &server] {
            if let Ok(clone) = socket.try_clone() {
                sockets.push(clone);
            }
        }
    }
    let index = {
        let mut conversations = lock(&shared.conversations);
        conversations.push(Vec::new());
        conversations.len() - 1
    };
    // Octets of the server's reply still let through once a ServerReply hold is armed
    // on this connection; u64::MAX while none is.
    let allowance = Arc::new(AtomicU64::new(u64::MAX));
    let downward = {
        let allowance = Arc::clone(&allowance);
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = match server_in.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let allowed = allowance.load(Ordering::SeqCst);
                let pass = usize::try_from(allowed).unwrap_or(usize::MAX).min(n);
                if client_out.write_all(&buffer[..pass]).is_err() {
                    return;
                }
                if allowed == u64::MAX {
                    continue;
                }
                allowance.store(allowed - pass as u64, Ordering::SeqCst);
                if pass < n || allowed == pass as u64 {
                    shared.held.store(true, Ordering::SeqCst);
                    // Held: swallow the rest until either side goes away.
                    while matches!(server_in.read(&mut buffer), Ok(n) if n > 0) {}
                    return;
                }
            }
        })
    };
    let mut reader = BufReader::new(client);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        let word = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let hold = {
            let mut hold = lock(&shared.hold);
            let matches = match *hold {
                Some(Hold::ClientCommand(c) | Hold::ServerReply { command: c, .. }) => c == word,
                None => false,
            };
            if matches { hold.take() } else { None }
        };
        match hold {
            Some(Hold::ClientCommand(_)) => {
                lock(&shared.conversations)[index].push(format!("held: {}", recorded(&text)));
                shared.held.store(true, Ordering::SeqCst);
                // Never forwarded; wait for the client to go away.
                while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {}
                break;
            }
            Some(Hold::ServerReply { octets, .. }) => {
                allowance.store(octets as u64, Ordering::SeqCst);
            }
            None => {}
        }
        if server_out.write_all(&line).is_err() {
            break;
        }
        // What reached the server: whole lines only (a cut upstream may leave a part).
        let entry = if line.ends_with(b"\n") {
            recorded(&text)
        } else {
            format!("partial: {}", recorded(&text))
        };
        lock(&shared.conversations)[index].push(entry);
    }
    // The client is gone (or held, then gone): drop the server without a goodbye.
    let _ = server.shutdown(Shutdown::Both);
    let _ = reader.get_ref().shutdown(Shutdown::Both);
    let _ = downward.join();
}
