//! mpop (Debian's 1.4.18) doing the benchmark job: download every message into a Maildir and
//! delete it from the server, with its own defaults (it pipelines when the server says
//! PIPELINING).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::dovecot;
use crate::netns::Namespace;

/// The command that runs mpop in `ns` against `host`, delivering into `work/delivered`.
/// Writes the mpoprc (and an empty delivery Maildir) under `work`.
pub fn command(ns: &Namespace, host: &str, port: u16, work: &Path) -> Result<Command> {
    let delivered = work.join("delivered");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(delivered.join(sub))?;
    }
    let rc = work.join("mpoprc");
    fs::write(
        &rc,
        format!(
            "# Written by popdesk-bench.\n\
             defaults\n\
             timeout 120\n\
             \n\
             account bench\n\
             host {host}\n\
             port {port}\n\
             tls off\n\
             auth user\n\
             user {user}\n\
             password {password}\n\
             delivery maildir {delivered}\n\
             keep off\n\
             only_new off\n\
             uidls_file {uidls}\n\
             received_header off\n\
             \n\
             account default : bench\n",
            user = dovecot::USER,
            password = dovecot::PASSWORD,
            delivered = delivered.display(),
            uidls = work.join("uidls").display(),
        ),
    )?;
    // mpop refuses an rc file with a password that others can read.
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600))?;
    let mut cmd = ns.command("mpop");
    cmd.arg("--file").arg(&rc).arg("--quiet").arg("bench");
    Ok(cmd)
}

/// "mpop 1.4.18", from `mpop --version`.
pub fn version() -> Result<String> {
    let out = Command::new("mpop")
        .arg("--version")
        .output()
        .context("running mpop (apt-get install mpop)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("mpop");
    Ok(first.replace(" version", ""))
}
