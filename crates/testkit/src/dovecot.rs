//! A private Dovecot POP3 server for one test.
//!
//! Mocks of POP3 servers agree with whoever wrote them; Dovecot is what many helpdesk
//! mailboxes really run, so the client is tested against it. Each test gets its own
//! instance: its own generated config (never `/etc/dovecot`), its own base, state and
//! log directories in a temp dir, its own loopback ports, users and Maildirs. Tests
//! can therefore run in parallel and leave nothing behind.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tempfile::TempDir;

use crate::ca::{ServerCert, TestCa};
use crate::maildir::{self, MailOwner};
use crate::openssl::{same_pem, served_certificate_pem};

/// How long Dovecot may take to accept connections before the test fails.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the ports may stay open after Dovecot was killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a start is retried when another process took one of our ports between
/// choosing it and Dovecot binding it.
const START_ATTEMPTS: u32 = 4;
/// The unprivileged account mail processes run as when nothing better is known:
/// `nobody`/`nogroup` on Debian.
const NOBODY: MailOwner = MailOwner {
    uid: 65534,
    gid: 65534,
};

static INSTANCE_SEQ: AtomicU64 = AtomicU64::new(0);

/// Options for a [`Dovecot`] instance; get one from [`Dovecot::builder`].
///
/// Defaults: USER/PASS and SASL PLAIN/LOGIN, plaintext auth allowed on the plain port,
/// STLS offered, a certificate for `localhost` and `127.0.0.1`, no session lock, no
/// LMTP and no auth listener for an MTA.
#[derive(Clone, Debug, Default)]
pub struct DovecotBuilder {
    apop: bool,
    cram_md5: bool,
    lmtp: bool,
    sasl_listener: bool,
    oauth2_url: Option<String>,
    lock_session: bool,
    cert_names: Option<Vec<String>>,
    server_cert: Option<ServerCert>,
    extra_config: String,
}

impl DovecotBuilder {
    /// Offers APOP: the greeting carries a `<timestamp>` and `APOP user digest` works.
    /// (Passwords are always stored in plain text, which APOP needs.)
    pub fn apop(mut self, on: bool) -> Self {
        self.apop = on;
        self
    }

    /// Offers SASL CRAM-MD5.
    pub fn cram_md5(mut self, on: bool) -> Self {
        self.cram_md5 = on;
        self
    }

    /// Listens for LMTP on a loopback port ([`Dovecot::lmtp_addr`]) and delivers into the
    /// Maildirs of the users [`Dovecot::add_user`] made: recipient `name@any.domain` goes
    /// to user `name`, so [`Dovecot::messages`] and POP3 see what an MTA delivered.
    /// Needed by [`Postfix`](crate::Postfix).
    pub fn lmtp(mut self, on: bool) -> Self {
        self.lmtp = on;
        self
    }

    /// Opens Dovecot's auth service on a loopback TCP port ([`Dovecot::sasl_addr`]) for
    /// an MTA's SMTP AUTH (Postfix's `smtpd_sasl_type = dovecot`), so SMTP checks the
    /// same users and passwords as POP3. Needed by [`Postfix`](crate::Postfix).
    pub fn sasl_listener(mut self, on: bool) -> Self {
        self.sasl_listener = on;
        self
    }

    /// Offers SASL XOAUTH2 and OAUTHBEARER, checking bearer tokens by POSTing them to
    /// `introspection_url` (usually [`OAuthIntrospection::url`](crate::OAuthIntrospection::url)).
    /// The token's user must also exist: call [`Dovecot::add_user`] for it (any password).
    pub fn oauth2(mut self, introspection_url: impl Into<String>) -> Self {
        self.oauth2_url = Some(introspection_url.into());
        self
    }

    /// Sets `pop3_lock_session = yes`: while one session is logged in, a second one on
    /// the same mailbox waits and then gets `-ERR [IN-USE]`. Dovecot's wait for the
    /// lock is a hard-coded 10 s, so such a test takes at least that long.
    pub fn lock_session(mut self, on: bool) -> Self {
        self.lock_session = on;
        self
    }

    /// Serves a certificate (signed by the test CA) for these names instead of
    /// `localhost` and `127.0.0.1`, e.g. `["wrong.example"]` to prove that a client
    /// rejects a certificate for another host.
    pub fn cert_names(mut self, names: &[&str]) -> Self {
        self.cert_names = Some(names.iter().map(|n| (*n).to_owned()).collect());
        self
    }

    /// Serves `cert` (e.g. [`ServerCert::openssl_self_signed`]) instead of a certificate
    /// from the test CA. [`Dovecot::tls_client_config`] then trusts nothing the server
    /// presents; clients trust the certificate itself, e.g. through
    /// [`Dovecot::server_cert_pem_path`].
    pub fn server_cert(mut self, cert: ServerCert) -> Self {
        self.server_cert = Some(cert);
        self
    }

    /// Appends raw Dovecot configuration after the generated config (later settings
    /// override earlier ones), for a case no option covers, e.g.
    /// `"pop3_uidl_format = %f\n"` or `"login_greeting = ...\n"`.
    pub fn extra_config(mut self, config: &str) -> Self {
        self.extra_config.push_str(config);
        if !self.extra_config.ends_with('\n') {
            self.extra_config.push('\n');
        }
        self
    }

    /// Starts Dovecot and waits until both ports accept connections.
    ///
    /// Blocks the calling thread for the startup (a few hundred milliseconds); that is
    /// fine inside an async test.
    ///
    /// # Panics
    /// If Dovecot is not installed, the process is not root, or Dovecot does not come up
    /// within 20 s; the message includes Dovecot's log.
    pub fn start(self) -> Dovecot {
        let dovecot_bin = find_dovecot();
        assert!(
            rustix::process::geteuid().is_root(),
            "testkit: the Dovecot fixture must run as root (Dovecot's master drops privileges \
             to the dovecot, dovenull and nobody accounts); CI runs tests as root"
        );
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            match Dovecot::try_start(&self, &dovecot_bin) {
                Ok(dovecot) => return dovecot,
                Err(StartFailure::PortTaken(details)) => last_failure = details,
            }
        }
        panic!(
            "testkit: Dovecot could not bind free ports in {START_ATTEMPTS} attempts:\n{last_failure}"
        );
    }
}

enum StartFailure {
    /// Another process bound a port we picked; try again with new ports.
    PortTaken(String),
}

/// A running private Dovecot, stopped (and its directory removed) on drop.
pub struct Dovecot {
    child: Child,
    dir: TempDir,
    pop3: SocketAddr,
    pop3s: SocketAddr,
    lmtp: Option<SocketAddr>,
    sasl: Option<SocketAddr>,
    ca: TestCa,
    owner: MailOwner,
    users: Mutex<Vec<String>>,
    tls_config: Arc<rustls::ClientConfig>,
}

impl Dovecot {
    /// Options for a new instance.
    pub fn builder() -> DovecotBuilder {
        DovecotBuilder::default()
    }

    /// Starts an instance with the default options; see [`DovecotBuilder::start`].
    pub fn start() -> Dovecot {
        DovecotBuilder::default().start()
    }

    /// The plaintext POP3 port (offers STLS).
    pub fn pop3_addr(&self) -> SocketAddr {
        self.pop3
    }

    /// The implicit-TLS POP3S port.
    pub fn pop3s_addr(&self) -> SocketAddr {
        self.pop3s
    }

    /// The LMTP port, if the instance was built with [`DovecotBuilder::lmtp`].
    pub fn lmtp_addr(&self) -> Option<SocketAddr> {
        self.lmtp
    }

    /// The auth service's port for an MTA's SMTP AUTH, if the instance was built with
    /// [`DovecotBuilder::sasl_listener`].
    pub fn sasl_addr(&self) -> Option<SocketAddr> {
        self.sasl
    }

    /// The host name the default certificate is valid for.
    pub fn host(&self) -> &'static str {
        "localhost"
    }

    /// The CA that signed the server certificate; can issue more certificates.
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The CA certificate as a PEM file, for clients that take a path.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    /// The server certificate being served, as a PEM file.
    pub fn server_cert_pem_path(&self) -> PathBuf {
        self.dir.path().join("tls/server.pem")
    }

    /// Switches the running server to `cert`, as an admin renewing a certificate does:
    /// rewrites the certificate and key files and reloads Dovecot (SIGHUP, what
    /// `doveadm reload` sends). Returns once the POP3S port serves the new certificate.
    ///
    /// # Panics
    /// If the files cannot be written or the new certificate is not served within 20 s.
    pub fn replace_server_cert(&self, cert: &ServerCert) {
        let tls = self.dir.path().join("tls");
        write_file(&tls.join("server.key"), &cert.key_pem, 0o600);
        write_file(&tls.join("server.pem"), &cert.cert_pem, 0o644);
        let master = Pid::from_raw(self.child.id().try_into().unwrap_or(0))
            .expect("testkit: Dovecot's master has a process id");
        kill_process(master, Signal::HUP).expect("testkit: SIGHUP Dovecot to reload");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let served = served_certificate_pem(self.pop3s);
            if served
                .as_deref()
                .is_some_and(|pem| same_pem(pem, &cert.cert_pem))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "testkit: Dovecot still serves another certificate {STARTUP_TIMEOUT:?} after \
                 the reload:\n{}\n--- dovecot.log ---\n{}",
                served.unwrap_or_default(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A rustls client config whose only trust root is the test CA.
    pub fn tls_client_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.tls_config)
    }

    /// The instance's directory (config, log, Maildirs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Process id of Dovecot's master process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Creates a user with an empty Maildir; works before or after the first login.
    /// The password is stored in plain text (APOP and CRAM-MD5 need it).
    ///
    /// # Panics
    /// If the user exists, or the name or password contains `:` or a line break (the
    /// passwd-file format has no escaping).
    pub fn add_user(&self, name: &str, password: &str) {
        for (what, value) in [("user name", name), ("password", password)] {
            assert!(
                !value.contains([':', '\n', '\r']),
                "testkit: {what} {value:?} cannot contain ':' or a line break"
            );
        }
        assert!(
            !name.is_empty() && !name.contains('/') && !name.starts_with('.'),
            "testkit: user name {name:?} must be a plain file name"
        );
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            !users.iter().any(|n| n == name),
            "testkit: user {name:?} already exists"
        );
        maildir::create(&self.home(name), self.owner)
            .unwrap_or_else(|e| panic!("testkit: create Maildir for {name:?}: {e}"));
        // One passwd file per user: Dovecot rereads a changed passwd file at most once
        // a second, so a user added to a shared file right after a login would stay
        // unknown for up to a second. A new file is read on its first lookup.
        let line = format!(
            "{name}:{{PLAIN}}{password}:{uid}:{gid}::{home}::\n",
            uid = self.owner.uid,
            gid = self.owner.gid,
            home = self.home(name).display()
        );
        write_file(&self.dir.path().join("users").join(name), &line, 0o644);
        users.push(name.to_owned());
    }

    /// Puts a message into `user`'s mailbox, as the last message. `message` is stored
    /// as is (CRLF or LF line ends; Dovecot sends CRLF either way).
    ///
    /// # Panics
    /// If the user does not exist or the disk write fails.
    pub fn deliver(&self, user: &str, message: &[u8]) {
        let maildir = self.maildir(user);
        maildir::deliver(&maildir, message, self.owner)
            .unwrap_or_else(|e| panic!("testkit: deliver to {}: {e}", maildir.display()));
    }

    /// Delivers each message in order; returns how many.
    pub fn deliver_many<I>(&self, user: &str, messages: I) -> usize
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut count = 0;
        for message in messages {
            self.deliver(user, message.as_ref());
            count += 1;
        }
        count
    }

    /// How many messages are in `user`'s mailbox on disk (deleted ones are gone only
    /// after a session ended with `QUIT`).
    pub fn message_count(&self, user: &str) -> usize {
        self.message_paths(user).len()
    }

    /// The bytes of each message left in `user`'s mailbox, in delivery order.
    pub fn messages(&self, user: &str) -> Vec<Vec<u8>> {
        self.message_paths(user)
            .iter()
            .map(|path| {
                fs::read(path).unwrap_or_else(|e| panic!("testkit: read {}: {e}", path.display()))
            })
            .collect()
    }

    /// `user`'s Maildir (with `cur`, `new`, `tmp`).
    pub fn maildir(&self, user: &str) -> PathBuf {
        let maildir = self.home(user).join("Maildir");
        assert!(
            maildir.is_dir(),
            "testkit: no user {user:?}; call add_user first"
        );
        maildir
    }

    /// Dovecot's log so far (auth and mail debug logging are on): print it when a test
    /// fails to see what the server thought happened.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("dovecot.log"))
    }

    fn home(&self, user: &str) -> PathBuf {
        self.dir.path().join("mail").join(user)
    }

    fn message_paths(&self, user: &str) -> Vec<PathBuf> {
        let maildir = self.maildir(user);
        maildir::message_paths(&maildir)
            .unwrap_or_else(|e| panic!("testkit: list {}: {e}", maildir.display()))
    }

    fn try_start(options: &DovecotBuilder, dovecot_bin: &Path) -> Result<Dovecot, StartFailure> {
        let dir = tempfile::Builder::new()
            .prefix("popdesk-dovecot-")
            .tempdir()
            .expect("testkit: create a temp dir for Dovecot");
        // Dovecot's unprivileged processes (auth as `dovecot`, logins as `dovenull`,
        // mail as `nobody`) must reach their files under it.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("testkit: chmod the Dovecot temp dir");
        for sub in ["run", "state", "mail", "tls", "users"] {
            fs::create_dir(dir.path().join(sub)).expect("testkit: create Dovecot dirs");
        }
        fs::set_permissions(dir.path().join("mail"), fs::Permissions::from_mode(0o755))
            .expect("testkit: chmod the mail dir");

        let ca = TestCa::new();
        let names: Vec<String> = options
            .cert_names
            .clone()
            .unwrap_or_else(|| vec!["localhost".into(), "127.0.0.1".into()]);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let cert = match &options.server_cert {
            Some(cert) => cert.clone(),
            None => ca.issue(&names),
        };
        let tls = dir.path().join("tls");
        write_file(&tls.join("ca.pem"), &ca.cert_pem(), 0o644);
        write_file(&tls.join("server.pem"), &cert.cert_pem, 0o644);
        // Read by the master (root) only; Dovecot refuses nothing here.
        write_file(&tls.join("server.key"), &cert.key_pem, 0o600);

        let instance = format!(
            "{}-{}",
            std::process::id(),
            INSTANCE_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let greeting = format!("popdesk testkit Dovecot {instance} ready.");
        let [pop3, pop3s, lmtp, sasl] = free_ports();
        let lmtp = options.lmtp.then_some(lmtp);
        let sasl = options.sasl_listener.then_some(sasl);

        if let Some(url) = &options.oauth2_url {
            write_file(&dir.path().join("oauth2.conf"), &oauth2_config(url), 0o644);
        }
        let config = render_config(&ConfigInputs {
            dir: dir.path(),
            instance: &instance,
            greeting: &greeting,
            pop3,
            pop3s,
            lmtp,
            sasl,
            owner: NOBODY,
            options,
        });
        let config_path = dir.path().join("dovecot.conf");
        write_file(&config_path, &config, 0o644);

        let stderr = fs::File::create(dir.path().join("dovecot.stderr"))
            .expect("testkit: create Dovecot's stderr file");
        let stdout = stderr.try_clone().expect("testkit: clone stderr file");
        let child = Command::new(dovecot_bin)
            .arg("-F")
            .arg("-c")
            .arg(&config_path)
            // Its own process group, so that drop can kill the master and every child
            // it forked in one call.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("testkit: spawn {}: {e}", dovecot_bin.display()));

        let mut root_store = rustls::RootCertStore::empty();
        root_store
            .add(ca.cert_der())
            .expect("testkit: add the test CA to a root store");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("testkit: TLS protocol versions")
            .with_root_certificates(root_store)
            .with_no_client_auth();

        let mut dovecot = Dovecot {
            child,
            dir,
            pop3,
            pop3s,
            lmtp,
            sasl,
            ca,
            owner: NOBODY,
            users: Mutex::new(Vec::new()),
            tls_config: Arc::new(tls_config),
        };
        // On failure `dovecot` is dropped, which stops the process.
        dovecot.wait_ready(&greeting)?;
        Ok(dovecot)
    }

    /// Waits until the plain port greets with our own greeting (not some other
    /// process that grabbed the port) and the other ports accept connections. (Dovecot
    /// exits when it cannot bind one of them, so accepting means ours.)
    fn wait_ready(&mut self, greeting: &str) -> Result<(), StartFailure> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let report = self.startup_report(&format!("Dovecot exited with {status}"));
                if report.contains("Address already in use") {
                    return Err(StartFailure::PortTaken(report));
                }
                panic!("{report}");
            }
            match read_greeting(self.pop3) {
                Ok(line) if line.contains(greeting) => {
                    let others = [Some(self.pop3s), self.lmtp, self.sasl];
                    if others.iter().flatten().all(|addr| {
                        TcpStream::connect_timeout(addr, Duration::from_secs(1)).is_ok()
                    }) {
                        return Ok(());
                    }
                }
                Ok(other) => {
                    return Err(StartFailure::PortTaken(format!(
                        "port {} greets with {other:?}, not our Dovecot",
                        self.pop3
                    )));
                }
                Err(_) => {}
            }
            if Instant::now() > deadline {
                panic!(
                    "{}",
                    self.startup_report(&format!(
                        "Dovecot did not accept connections on {} within {STARTUP_TIMEOUT:?}",
                        self.pop3
                    ))
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn startup_report(&self, what: &str) -> String {
        format!(
            "testkit: {what}\n--- stderr ---\n{}\n--- dovecot.log ---\n{}\n--- dovecot.conf ---\n{}",
            read_lossy(&self.dir.path().join("dovecot.stderr")),
            self.log(),
            read_lossy(&self.dir.path().join("dovecot.conf")),
        )
    }
}

impl Drop for Dovecot {
    /// Kills the whole instance at once.
    ///
    /// A graceful SIGTERM takes Dovecot 3 to 5 s (the master waits for its log process),
    /// which would dominate every test. Nothing of value is lost by killing: every reply
    /// a test waited for has been written, and the directory is deleted next.
    fn drop(&mut self) {
        if let Some(group) = Pid::from_raw(self.child.id().try_into().unwrap_or(0)) {
            // The master leads its own process group (see `try_start`), which all its
            // children share.
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Processes die asynchronously; make sure the ports are really closed so the
        // next test sees a stopped server. Bounded like every wait here.
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline
            && [Some(self.pop3), Some(self.pop3s), self.lmtp, self.sasl]
                .iter()
                .flatten()
                .any(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(100)).is_ok())
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

struct ConfigInputs<'a> {
    dir: &'a Path,
    instance: &'a str,
    greeting: &'a str,
    pop3: SocketAddr,
    pop3s: SocketAddr,
    lmtp: Option<SocketAddr>,
    sasl: Option<SocketAddr>,
    owner: MailOwner,
    options: &'a DovecotBuilder,
}

fn render_config(inputs: &ConfigInputs<'_>) -> String {
    let dir = inputs.dir.display();
    let options = inputs.options;
    let mut mechanisms = vec!["plain", "login"];
    if options.apop {
        mechanisms.push("apop");
    }
    if options.cram_md5 {
        mechanisms.push("cram-md5");
    }
    let password_mechanisms = mechanisms.join(" ");
    if options.oauth2_url.is_some() {
        mechanisms.extend(["xoauth2", "oauthbearer"]);
    }
    let MailOwner { uid, gid } = inputs.owner;
    let mut config = format!(
        r#"# Generated by popdesk's testkit for one test. Nothing is read from /etc/dovecot.
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = popdesk-testkit-{instance}
log_path = {dir}/dovecot.log
protocols = {protocols}
listen = 127.0.0.1
login_greeting = {greeting}

# Tests also log in with USER/PASS over the plain port.
disable_plaintext_auth = no
auth_mechanisms = {all_mechanisms}
# Tests fail auth on purpose; Dovecot's 2 s failure delay and per-IP penalty would
# only make them slow and order-dependent.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}

# Say everything about auth, mail and TLS in the log, but never passwords.
auth_verbose = yes
auth_debug = yes
auth_verbose_passwords = no
auth_debug_passwords = no
mail_debug = yes
verbose_ssl = yes

ssl = yes
ssl_cert = <{dir}/tls/server.pem
ssl_key = <{dir}/tls/server.key

# Mail processes run as this one unprivileged account and no other.
mail_location = maildir:~/Maildir
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
default_internal_user = dovecot
default_login_user = dovenull
protocol pop3 {{
  mail_max_userip_connections = 100
}}

pop3_lock_session = {lock}
mail_max_lock_timeout = 2s

passdb {{
  driver = passwd-file
  args = {dir}/users/%u
  mechanisms = {password_mechanisms}
}}
"#,
        instance = inputs.instance,
        greeting = inputs.greeting,
        all_mechanisms = mechanisms.join(" "),
        lock = if options.lock_session { "yes" } else { "no" },
        protocols = if inputs.lmtp.is_some() {
            "pop3 lmtp"
        } else {
            "pop3"
        },
    );
    if options.oauth2_url.is_some() {
        let _ = write!(
            config,
            r#"passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {dir}/oauth2.conf
}}
"#
        );
    }
    let _ = write!(
        config,
        r#"userdb {{
  driver = passwd-file
  args = {dir}/users/%u
}}

service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3s}
    ssl = yes
  }}
}}
"#,
        pop3 = inputs.pop3.port(),
        pop3s = inputs.pop3s.port(),
    );
    if let Some(lmtp) = inputs.lmtp {
        let _ = write!(
            config,
            r#"
# LMTP for an MTA on loopback. It hands over full addresses; the user is the local
# part, whatever the domain, so mail for customer@example.com lands in user
# `customer`'s Maildir. Messages are stored with the CRLF line ends they arrived
# with, so a test compares them byte for byte with what was sent.
postmaster_address = postmaster@localhost
protocol lmtp {{
  auth_username_format = %Ln
  mail_save_crlf = yes
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"#,
            port = lmtp.port(),
        );
    }
    if let Some(sasl) = inputs.sasl {
        let _ = write!(
            config,
            r#"
# The auth service for an MTA's SMTP AUTH (Postfix: smtpd_sasl_type = dovecot), over
# TCP so that it needs no socket inside the MTA's directory.
service auth {{
  inet_listener auth-mta {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"#,
            port = sasl.port(),
        );
    }
    if !options.extra_config.is_empty() {
        config.push_str("\n# extra_config\n");
        config.push_str(&options.extra_config);
    }
    config
}

/// Dovecot's oauth2 passdb settings: ask our endpoint about every token, by POST, and
/// take the user name from its answer.
fn oauth2_config(url: &str) -> String {
    format!(
        "introspection_mode = post\n\
         introspection_url = {url}\n\
         force_introspection = yes\n\
         username_attribute = username\n\
         active_attribute = active\n\
         active_value = true\n\
         timeout_msecs = 5000\n"
    )
}

/// `N` distinct loopback ports that were free a moment ago. Another process may still
/// take one before the server binds it; the fixtures' `start` retries then.
pub(crate) fn free_ports<const N: usize>() -> [SocketAddr; N] {
    // All bound at once so that the kernel hands out N different ports.
    let listeners: [TcpListener; N] = std::array::from_fn(|_| {
        TcpListener::bind("127.0.0.1:0").expect("testkit: bind a loopback port")
    });
    listeners
        .each_ref()
        .map(|l| l.local_addr().expect("testkit: local address"))
}

fn read_greeting(addr: SocketAddr) -> io::Result<String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line)
}

fn find_dovecot() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("dovecot"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "testkit: Dovecot is not installed (no `dovecot` in PATH or /usr/sbin); \
                 run scripts/install-test-deps"
            )
        })
}

pub(crate) fn write_file(path: &Path, contents: &str, mode: u32) {
    fs::write(path, contents)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(mode)))
        .unwrap_or_else(|e| panic!("testkit: write {}: {e}", path.display()));
}

pub(crate) fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}
