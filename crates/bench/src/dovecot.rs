//! A private Dovecot POP3 server for the benchmark, started from our own config inside the
//! server namespace; never the system instance.
//!
//! TESTKIT: crates/testkit's `Dovecot` builder is meant to replace this once it can listen on
//! an address inside a namespace (the benchmark serves 127.0.0.1 and the veth address from a
//! namespace it created, so the client side can be put 20 ms away). Until then this file is
//! the minimal config that the benchmark needs: POP3 only, no TLS, USER/PASS and PLAIN.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::netns::Namespace;
use crate::probe;

pub const USER: &str = "bench";
pub const PASSWORD: &str = "bench-password";
/// Inside our own namespace every port is free, so the standard one reads best.
pub const PORT: u16 = 110;

/// A running private Dovecot; stopped on drop.
pub struct Dovecot {
    dir: PathBuf,
    child: Option<Child>,
    mail_owner: (u32, u32),
}

impl Dovecot {
    /// Writes the config under `dir` and starts Dovecot in `ns`, listening on `listen`
    /// (addresses that exist in that namespace).
    pub fn start(dir: &Path, ns: &Namespace, listen: &[&str]) -> Result<Dovecot> {
        fs::create_dir_all(dir.join("mail"))?;
        // The mail process runs as `nobody` (Dovecot refuses root) and must reach the Maildir.
        for d in [dir, &dir.join("mail")] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
        }
        let mail_owner = passwd_ids("nobody").context("looking up user nobody")?;
        let config = dir.join("dovecot.conf");
        fs::write(
            dir.join("passwd"),
            format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
        )?;
        fs::write(&config, config_text(dir, listen, mail_owner))?;

        let log = fs::File::create(dir.join("dovecot.stderr"))?;
        let child = ns
            .command("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting dovecot (apt-get install dovecot-core dovecot-pop3d)")?;
        let mut dovecot = Dovecot {
            dir: dir.to_path_buf(),
            child: Some(child),
            mail_owner,
        };
        dovecot.wait_ready(ns, listen[0])?;
        Ok(dovecot)
    }

    fn wait_ready(&mut self, ns: &Namespace, host: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("dovecot exited with {status}:\n{}", self.log_tail());
            }
            if probe::greeting_in(ns, host, PORT).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "dovecot did not answer on {host}:{PORT} within 15 s:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The Maildir of [`USER`], which [`crate::maildir::MasterCopy::stage`] fills.
    pub fn maildir(&self) -> PathBuf {
        self.dir.join("mail").join(USER)
    }

    pub fn mail_owner(&self) -> (u32, u32) {
        self.mail_owner
    }

    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        for name in ["dovecot.stderr", "dovecot.log"] {
            if let Ok(s) = fs::read_to_string(self.dir.join(name)) {
                let lines: Vec<&str> = s.lines().collect();
                text += &lines[lines.len().saturating_sub(20)..].join("\n");
                text.push('\n');
            }
        }
        text
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM lets the master stop its login and mail processes too.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config_text(dir: &Path, listen: &[&str], (uid, gid): (u32, u32)) -> String {
    let d = dir.display();
    let listen = listen.join(", ");
    format!(
        r#"# Private Dovecot for popdesk's POP3 benchmark (generated; see crates/bench/src/dovecot.rs).
instance_name = popdesk-bench
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = pop3
listen = {listen}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:~
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {PORT}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"#
    )
}

/// (uid, primary gid) of a system user, from /etc/passwd.
fn passwd_ids(user: &str) -> io::Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() > 3
            && fields[0] == user
            && let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse())
        {
            return Ok((uid, gid));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no user {user} in /etc/passwd"),
    ))
}
