//! A private Postfix for one test, delivering every recipient into the test's Dovecot.
//!
//! popdesk answers customers over SMTP, and the promise that a reply is never lost and
//! goes out once (DESIGN.md, promise 8) is only proven against a real MTA: its
//! STARTTLS, its AUTH, its 4xx and 5xx answers, its queue. Each test gets its own
//! Postfix: its own config, queue and data directories in a temp dir (`postfix -c DIR`,
//! never `/etc/postfix` or the system instance), its own loopback ports, no chroot, and
//! no DNS. Every recipient domain is delivered by LMTP into the [`Dovecot`] it was
//! started with, so mail to `customer@example.com` shows up in Dovecot user
//! `customer`'s mailbox and over POP3. Nothing can be relayed anywhere else.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tempfile::TempDir;

use crate::dovecot::{Dovecot, free_ports, read_lossy, write_file};
use crate::socketmap::SocketmapTable;

/// How long Postfix may take to accept connections before the test fails.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the master may take to exit, and the ports to close, after a stop.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a start is retried when another process took one of our ports between
/// choosing it and Postfix binding it.
const START_ATTEMPTS: u32 = 4;
/// Large enough for popdesk's biggest reply (25 MB of attachments, base64-encoded).
const MESSAGE_SIZE_LIMIT: u64 = 50 * 1024 * 1024;

static INSTANCE_SEQ: AtomicU64 = AtomicU64::new(0);

/// Options for a [`Postfix`] instance; get one from [`Postfix::builder`].
#[derive(Clone)]
pub struct PostfixBuilder<'a> {
    dovecot: &'a Dovecot,
    extra_main_cf: String,
}

impl PostfixBuilder<'_> {
    /// Appends raw `main.cf` settings after the generated ones (later settings override
    /// earlier ones), for a case no option covers, e.g. `"message_size_limit = 1000\n"`.
    pub fn extra_main_cf(mut self, config: &str) -> Self {
        self.extra_main_cf.push_str(config);
        if !self.extra_main_cf.ends_with('\n') {
            self.extra_main_cf.push('\n');
        }
        self
    }

    /// Starts Postfix and waits until both ports accept connections.
    ///
    /// Blocks the calling thread for the startup (a few hundred milliseconds); that is
    /// fine inside an async test.
    ///
    /// # Panics
    /// If Postfix is not installed, the process is not root, the Dovecot was not built
    /// with [`lmtp`](crate::DovecotBuilder::lmtp) and
    /// [`sasl_listener`](crate::DovecotBuilder::sasl_listener), or Postfix does not come
    /// up within 30 s; the message includes Postfix's log.
    pub fn start(self) -> Postfix {
        let postfix_bin = find_postfix();
        assert!(
            rustix::process::geteuid().is_root(),
            "testkit: the Postfix fixture must run as root (Postfix's master drops \
             privileges to the postfix account); CI runs tests as root"
        );
        let (Some(lmtp), Some(sasl)) = (self.dovecot.lmtp_addr(), self.dovecot.sasl_addr()) else {
            panic!(
                "testkit: Postfix delivers by LMTP into Dovecot and checks SMTP AUTH with \
                 it; start the Dovecot with Dovecot::builder().lmtp(true).sasl_listener(true)"
            );
        };
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            match Postfix::try_start(&self, &postfix_bin, lmtp, sasl) {
                Ok(postfix) => return postfix,
                Err(StartFailure::PortTaken(details)) => last_failure = details,
            }
        }
        panic!(
            "testkit: Postfix could not bind free ports in {START_ATTEMPTS} attempts:\n\
             {last_failure}"
        );
    }
}

enum StartFailure {
    /// Another process bound a port we picked; try again with new ports.
    PortTaken(String),
}

/// A running private Postfix, stopped (and its directory removed) on drop.
///
/// Two ports, both on `127.0.0.1`, both with a certificate for `localhost` and
/// `127.0.0.1` from the Dovecot's [`TestCa`](crate::TestCa) (so a client that trusts
/// [`Dovecot::ca_pem_path`] trusts Postfix too), both requiring AUTH (checked by the
/// Dovecot's users and passwords) before any mail is accepted:
/// - [`submission_addr`](Postfix::submission_addr): plaintext greeting, STARTTLS
///   required before AUTH and MAIL (port 587 style);
/// - [`smtps_addr`](Postfix::smtps_addr): implicit TLS (port 465 style).
///
/// Headers are delivered as the client wrote them: Postfix adds only its `Received:`
/// line (and Dovecot `Return-Path:`, `Delivered-To:` and its own `Received:`), never a
/// missing `Date:` or `Message-ID:`, so tests see what popdesk itself sent.
/// Deferred deliveries are retried every second or two.
pub struct Postfix {
    dir: TempDir,
    postfix_bin: PathBuf,
    submission: SocketAddr,
    smtps: SocketAddr,
    banner: String,
    /// The master's process id (it leads its own process group) while running; `None`
    /// while stopped.
    master: Mutex<Option<Pid>>,
    recipient_rules: SocketmapTable,
}

impl Postfix {
    /// Options for an instance delivering into `dovecot`.
    pub fn builder(dovecot: &Dovecot) -> PostfixBuilder<'_> {
        PostfixBuilder {
            dovecot,
            extra_main_cf: String::new(),
        }
    }

    /// Starts an instance delivering into `dovecot` with the default options; see
    /// [`PostfixBuilder::start`].
    pub fn start(dovecot: &Dovecot) -> Postfix {
        Postfix::builder(dovecot).start()
    }

    /// The submission port: STARTTLS, then AUTH PLAIN or LOGIN.
    pub fn submission_addr(&self) -> SocketAddr {
        self.submission
    }

    /// The implicit-TLS port, then AUTH PLAIN or LOGIN.
    pub fn smtps_addr(&self) -> SocketAddr {
        self.smtps
    }

    /// The host name the certificate is valid for (it is valid for `127.0.0.1` too).
    pub fn host(&self) -> &'static str {
        "localhost"
    }

    /// The CA that signed Postfix's certificate (the Dovecot's CA) as a PEM file.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    /// The instance's directory (`conf/`, `queue/`, `data/`, `tls/`, `maillog`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Answers `RCPT TO:<address>` with `action` from now on, on new and already open
    /// connections alike, until [`clear_recipient_rules`](Postfix::clear_recipient_rules).
    /// `action` is an access(5) action, e.g. `"450 4.7.1 Try again later"` or
    /// `"550 5.1.1 No such user"`; `address` may also be a whole domain
    /// (`"example.com"`). Replaces an earlier rule for the same address.
    ///
    /// # Panics
    /// If `address` is empty or holds white space, or `action` is empty or holds a line
    /// break.
    pub fn set_recipient_rule(&self, address: &str, action: &str) {
        assert!(
            !address.is_empty() && !address.contains(char::is_whitespace),
            "testkit: recipient {address:?} must be one address or domain"
        );
        assert!(
            !action.trim().is_empty() && !action.contains(['\r', '\n']),
            "testkit: action {action:?} must be one line, e.g. \"450 4.7.1 Try again later\""
        );
        self.recipient_rules.insert(address, action);
    }

    /// Lifts every rule set by [`set_recipient_rule`](Postfix::set_recipient_rule).
    pub fn clear_recipient_rules(&self) {
        self.recipient_rules.clear();
    }

    /// Stops Postfix as `postfix stop` does (SIGTERM to the master, which ends its
    /// children) and returns once the master has exited and both ports refuse
    /// connections. Queued mail stays queued for [`start_again`](Postfix::start_again).
    ///
    /// # Panics
    /// If Postfix is already stopped, or does not stop within 10 s.
    pub fn stop(&self) {
        let mut master = self.master();
        let pid = master.take().expect("testkit: Postfix is already stopped");
        let _ = kill_process(pid, Signal::TERM);
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while process_alive(pid) || self.any_port_open() {
            assert!(
                Instant::now() < deadline,
                "testkit: Postfix did not stop within {SHUTDOWN_TIMEOUT:?}\n--- maillog ---\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Anything the master's SIGTERM left behind.
        let _ = kill_process_group(pid, Signal::KILL);
    }

    /// Starts a stopped Postfix again on the same ports and with the same queue
    /// directory (so mail it had accepted but not yet delivered before
    /// [`stop`](Postfix::stop) goes out now), and waits until it accepts connections.
    ///
    /// # Panics
    /// If Postfix is running, or does not come up within 30 s (e.g. another process
    /// took one of its ports while it was stopped).
    pub fn start_again(&self) {
        let mut master = self.master();
        assert!(master.is_none(), "testkit: Postfix is already running");
        let pid = match self.run_start() {
            Ok(pid) => pid,
            Err(StartFailure::PortTaken(report)) => panic!(
                "testkit: another process took one of Postfix's ports while it was \
                 stopped:\n{report}"
            ),
        };
        *master = Some(pid);
        drop(master);
        if let Err(StartFailure::PortTaken(report)) = self.wait_ready() {
            panic!("testkit: Postfix's port answers for someone else:\n{report}");
        }
    }

    /// Whether Postfix is running (not [`stop`](Postfix::stop)ped).
    pub fn is_running(&self) -> bool {
        self.master().is_some()
    }

    /// Postfix's log so far (`maillog_file`, TLS and delivery details included): print
    /// it when a test fails to see what the server thought happened.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("maillog"))
    }

    /// Waits until `user`'s mailbox in `dovecot` holds at least `count` messages and
    /// returns all of them (so a test can also assert that no further copy arrived).
    ///
    /// Async so that the code under test keeps running on the test's runtime meanwhile.
    ///
    /// # Panics
    /// On timeout, with both servers' logs.
    pub async fn wait_for_delivery(
        &self,
        dovecot: &Dovecot,
        user: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = dovecot.messages(user);
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "testkit: {user:?} has {} of {count} messages after {timeout:?}\n\
                 --- postfix maillog ---\n{}\n--- dovecot.log ---\n{}",
                messages.len(),
                self.log(),
                dovecot.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn master(&self) -> MutexGuard<'_, Option<Pid>> {
        self.master.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn try_start(
        options: &PostfixBuilder<'_>,
        postfix_bin: &Path,
        lmtp: SocketAddr,
        sasl: SocketAddr,
    ) -> Result<Postfix, StartFailure> {
        let dir = tempfile::Builder::new()
            .prefix("popdesk-postfix-")
            .tempdir()
            .expect("testkit: create a temp dir for Postfix");
        // Postfix's daemons run as the postfix account and must reach the queue under
        // it; Postfix also warns about any group- or world-writable directory here.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("testkit: chmod the Postfix temp dir");
        // `data/` and the queue's subdirectories are left to `postfix start`, which
        // makes them with the owners and modes its daemons need.
        for sub in ["conf", "queue", "tls"] {
            let path = dir.path().join(sub);
            fs::create_dir(&path)
                .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o755)))
                .expect("testkit: create Postfix dirs");
        }

        let tls = dir.path().join("tls");
        let cert = options.dovecot.ca().issue(&["localhost", "127.0.0.1"]);
        write_file(&tls.join("ca.pem"), &options.dovecot.ca().cert_pem(), 0o644);
        write_file(&tls.join("server.pem"), &cert.cert_pem, 0o644);
        // smtpd reads it as root before dropping privileges.
        write_file(&tls.join("server.key"), &cert.key_pem, 0o600);

        let instance = format!(
            "{}-{}",
            std::process::id(),
            INSTANCE_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let banner = format!("popdesk testkit Postfix {instance}");
        let [submission, smtps] = free_ports();
        let recipient_rules = SocketmapTable::start();
        let inputs = ConfigInputs {
            dir: dir.path(),
            banner: &banner,
            submission,
            smtps,
            lmtp,
            sasl,
            recipient_rules: recipient_rules.addr(),
            extra: &options.extra_main_cf,
        };
        let conf = dir.path().join("conf");
        for (name, text) in [
            ("main.cf", main_cf(&inputs)),
            ("master.cf", master_cf(&inputs)),
        ] {
            let path = conf.join(name);
            write_file(&path, &text, 0o644);
            backdate(&path);
        }

        let postfix = Postfix {
            dir,
            postfix_bin: postfix_bin.to_owned(),
            submission,
            smtps,
            banner,
            master: Mutex::new(None),
            recipient_rules,
        };
        // On failure `postfix` is dropped, which kills whatever did start.
        let pid = postfix.run_start()?;
        *postfix.master() = Some(pid);
        postfix.wait_ready()?;
        Ok(postfix)
    }

    /// Runs `postfix -c DIR start`, which returns once the master has bound its ports
    /// (or failed to), and returns the master's process id.
    fn run_start(&self) -> Result<Pid, StartFailure> {
        // A file, not a pipe: should the daemonized master keep the descriptors it
        // inherited, reading a pipe to its end would wait for the master to exit.
        let output_path = self.dir.path().join("postfix-start.out");
        let output_file = fs::File::create(&output_path)
            .expect("testkit: create the file for `postfix start`'s output");
        let stderr = output_file
            .try_clone()
            .expect("testkit: clone the output file");
        let status = Command::new(&self.postfix_bin)
            .arg("-c")
            .arg(self.dir.path().join("conf"))
            .arg("start")
            .stdin(Stdio::null())
            .stdout(output_file)
            .stderr(stderr)
            .status()
            .unwrap_or_else(|e| panic!("testkit: run {}: {e}", self.postfix_bin.display()));
        let output_text = read_lossy(&output_path);
        if !status.success() {
            let report = self.startup_report(&format!(
                "`postfix start` failed with {status}:\n{output_text}"
            ));
            if report.contains("Address already in use") {
                return Err(StartFailure::PortTaken(report));
            }
            panic!("{report}");
        }
        let pid_file = self.dir.path().join("queue/pid/master.pid");
        let pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
            .and_then(Pid::from_raw);
        match pid {
            Some(pid) => Ok(pid),
            None => panic!(
                "{}",
                self.startup_report(&format!(
                    "`postfix start` succeeded but {} holds no process id:\n{output_text}",
                    pid_file.display()
                ))
            ),
        }
    }

    /// Waits until the submission port greets with our own banner (not some other
    /// process that grabbed the port). `postfix start` returned only after the master
    /// bound every port, so the SMTPS port needs no probe (one would only leave a TLS
    /// error in the log).
    fn wait_ready(&self) -> Result<(), StartFailure> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match read_banner(self.submission) {
                Ok(line) if line.contains(&self.banner) => return Ok(()),
                Ok(other) => {
                    return Err(StartFailure::PortTaken(format!(
                        "port {} greets with {other:?}, not our Postfix",
                        self.submission
                    )));
                }
                Err(_) => {}
            }
            assert!(
                Instant::now() < deadline,
                "{}",
                self.startup_report(&format!(
                    "Postfix did not accept connections on {} within {STARTUP_TIMEOUT:?}",
                    self.submission
                ))
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn any_port_open(&self) -> bool {
        [self.submission, self.smtps]
            .iter()
            .any(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(100)).is_ok())
    }

    fn startup_report(&self, what: &str) -> String {
        format!(
            "testkit: {what}\n--- maillog ---\n{}\n--- main.cf ---\n{}\n--- master.cf ---\n{}",
            self.log(),
            read_lossy(&self.dir.path().join("conf/main.cf")),
            read_lossy(&self.dir.path().join("conf/master.cf")),
        )
    }
}

impl Drop for Postfix {
    /// Kills the whole instance at once.
    ///
    /// Nothing of value is lost by killing rather than stopping gracefully: the
    /// directory, queue included, is deleted next.
    fn drop(&mut self) {
        let master = self.master.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(pid) = master.take() {
            // The master leads its own process group (it calls setsid), which all its
            // children share.
            let _ = kill_process_group(pid, Signal::KILL);
            // Make sure the ports are really closed so the next test sees a stopped
            // server. Bounded like every wait here.
            let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
            while Instant::now() < deadline && (process_alive(pid) || self.any_port_open()) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Sets `path`'s modification time a minute back. Postfix reads a config file modified
/// within the last second again and again, 300 ms apart, until it is a second old
/// (so as not to read one an admin is still writing): a second and more at every start.
fn backdate(path: &Path) {
    let past = std::time::SystemTime::now() - Duration::from_secs(60);
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(past))
        .unwrap_or_else(|e| panic!("testkit: set the time of {}: {e}", path.display()));
}

/// Whether `pid` is alive. An exited process stays a zombie until its parent (here
/// init, since the master daemonized) reaps it, which can take a second or two; it holds
/// no port or lock any more, so it counts as gone.
fn process_alive(pid: Pid) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())) else {
        return false;
    };
    // "PID (COMM) STATE ...": COMM may hold spaces and parentheses; STATE follows the
    // last ')'.
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

struct ConfigInputs<'a> {
    dir: &'a Path,
    banner: &'a str,
    submission: SocketAddr,
    smtps: SocketAddr,
    lmtp: SocketAddr,
    sasl: SocketAddr,
    recipient_rules: SocketAddr,
    extra: &'a str,
}

fn main_cf(inputs: &ConfigInputs<'_>) -> String {
    let dir = inputs.dir.display();
    let refuse = "error:5.7.1 this test Postfix delivers only into its Dovecot";
    let mut config = format!(
        r#"# Generated by popdesk's testkit for one test. Nothing is read from /etc/postfix.
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
# Logging without syslog (tests have none), through the postlog service.
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
smtpd_tls_loglevel = 1

myhostname = localhost
mydomain = localdomain
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
smtpd_banner = $myhostname ESMTP {banner}

# Every domain is "ours" and goes by LMTP into the test's Dovecot, which maps
# customer@example.com to its user `customer`. Nothing is local, nothing is relayed:
# should anything else be routed, the error transport refuses it.
mydestination =
relay_domains =
relayhost =
virtual_mailbox_domains = static:all
virtual_mailbox_maps = static:all
virtual_transport = lmtp:inet:{lmtp}
default_transport = {refuse}
relay_transport = {refuse}
local_transport = {refuse}
# Nothing is local, so no aliases (Debian's default would read /etc/aliases.db).
alias_maps =
alias_database =
local_recipient_maps =

# Mail arrives with the client's headers untouched: no Date, Message-ID or From added,
# no address rewritten, so tests see what popdesk wrote.
local_header_rewrite_clients =
remote_header_rewrite_domain =

# No DNS: every peer is a literal loopback address.
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no

# Fast: no pauses after errors or under load, no delay warnings, and deferred mail
# retried every second or two (the default backoff is minutes).
smtpd_error_sleep_time = 0s
in_flow_delay = 0s
delay_warning_time = 0h
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
message_size_limit = {size_limit}

# TLS with a certificate from the test CA. Both services require it: STARTTLS before
# anything else on submission, implicit TLS on smtps.
smtpd_tls_chain_files = {dir}/tls/server.key, {dir}/tls/server.pem
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes

# SMTP AUTH checked by the test Dovecot's auth service: the same users and passwords
# as POP3.
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:{sasl}
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous

# Only authenticated clients send mail. The recipient rules come from the fixture's
# socketmap table (Postfix::set_recipient_rule), asked on every RCPT TO.
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = check_recipient_access socketmap:inet:{rules}:recipient_rules
"#,
        banner = inputs.banner,
        lmtp = inputs.lmtp,
        sasl = inputs.sasl,
        rules = inputs.recipient_rules,
        size_limit = MESSAGE_SIZE_LIMIT,
    );
    if !inputs.extra.is_empty() {
        config.push_str("\n# extra_main_cf\n");
        config.push_str(inputs.extra);
    }
    config
}

fn master_cf(inputs: &ConfigInputs<'_>) -> String {
    let mut config = String::from(
        "# Generated by popdesk's testkit. No service is chrooted: the instance lives in a\n\
         # temp dir with no copy of /etc or the libraries a chroot would need.\n\
         # service type  private unpriv  chroot  wakeup  maxproc command\n",
    );
    let _ = writeln!(
        config,
        "{submission} inet n - n - - smtpd\n  -o syslog_name=postfix/submission\n\
         {smtps} inet n - n - - smtpd\n  -o syslog_name=postfix/smtps\n  -o smtpd_tls_wrappermode=yes",
        submission = inputs.submission,
        smtps = inputs.smtps,
    );
    config.push_str(
        "cleanup   unix  n - n -     0 cleanup\n\
         qmgr      unix  n - n 300   1 qmgr\n\
         tlsmgr    unix  - - n 1000? 1 tlsmgr\n\
         rewrite   unix  - - n -     - trivial-rewrite\n\
         bounce    unix  - - n -     0 bounce\n\
         defer     unix  - - n -     0 bounce\n\
         trace     unix  - - n -     0 bounce\n\
         verify    unix  - - n -     1 verify\n\
         flush     unix  n - n 1000? 0 flush\n\
         proxymap  unix  - - n -     - proxymap\n\
         showq     unix  n - n -     - showq\n\
         error     unix  - - n -     - error\n\
         retry     unix  - - n -     - error\n\
         discard   unix  - - n -     - discard\n\
         lmtp      unix  - - n -     - lmtp\n\
         anvil     unix  - - n -     1 anvil\n\
         scache    unix  - - n -     1 scache\n\
         postlog   unix-dgram n - n - 1 postlogd\n",
    );
    config
}

/// The first line the server at `addr` sends; says `QUIT` so the probe leaves no
/// "lost connection" in the log.
fn read_banner(addr: SocketAddr) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let _ = stream.write_all(b"QUIT\r\n");
    Ok(line)
}

fn find_postfix() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("postfix"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "testkit: Postfix is not installed (no `postfix` in PATH or /usr/sbin); \
                 run scripts/install-test-deps"
            )
        })
}
