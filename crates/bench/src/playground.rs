//! `popdesk-bench playground`: a private Dovecot on loopback with generated mail, for
//! trying popdesk by hand: the command line (the progress bar, `mailbox test`, the
//! ticket commands) and the web UI (`popdesk serve`).
//!
//! It makes one temp folder holding popdesk's data folder, prints the commands that use
//! exactly that folder, and runs until its time is up, Ctrl-C, SIGTERM or SIGHUP. Then it
//! stops its Dovecot and removes both its own temp folder and Dovecot's.

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::mailbox::{self, MailboxSpec};

/// The mailbox's user and password on the playground's Dovecot.
const USER: &str = "support";
const PASSWORD: &str = "playground";
/// The environment variable the printed commands read the password from.
const PASSWORD_VAR: &str = "PLAYGROUND_PASSWORD";
/// The admin the printed commands create for the web UI.
const ADMIN: &str = "admin@example.org";

pub fn run(spec: &MailboxSpec, minutes: u64) -> Result<bool> {
    // Listen for the signals first: one that arrives while Dovecot starts must still end
    // in a clean stop, not in the default action that leaves Dovecot running.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime to wait for signals")?;
    let mut stop = {
        let _context = runtime.enter();
        StopSignals::listen()?
    };
    let folder = tempfile::Builder::new()
        .prefix("popdesk-playground-")
        .tempdir()
        .context("creating the playground's temp folder")?;
    let data = folder.path().join("data");
    let dovecot = testkit::Dovecot::start();
    dovecot.add_user(USER, PASSWORD);
    let messages = mailbox::generate(spec);
    let count = dovecot.deliver_many(USER, messages.iter().map(|m| &m.bytes));
    let listen = free_loopback_port()
        .map(|port| format!("127.0.0.1:{port}"))
        .unwrap_or_else(|_| "127.0.0.1:8080".to_string());

    print_guide(&Guide {
        count,
        folder: folder.path(),
        data: &data,
        dovecot: &dovecot,
        listen: &listen,
        minutes,
    });
    let _ = std::io::stdout().flush();

    let limit = Duration::from_secs(minutes.saturating_mul(60));
    let why = runtime.block_on(stop.wait(limit));
    // After SIGHUP, or when whoever read the output is gone, stdout may be closed:
    // println! would panic there, and the clean-up must happen anyway.
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "{why}: stopping Dovecot and removing {}",
        folder.path().display()
    );
    drop(dovecot);
    let removed = folder.path().display().to_string();
    folder
        .close()
        .with_context(|| format!("removing {removed}"))?;
    let _ = writeln!(out, "playground stopped");
    Ok(true)
}

struct Guide<'a> {
    count: usize,
    folder: &'a Path,
    data: &'a Path,
    dovecot: &'a testkit::Dovecot,
    listen: &'a str,
    minutes: u64,
}

fn print_guide(guide: &Guide<'_>) {
    let dovecot = guide.dovecot;
    let data = guide.data.display();
    let host = dovecot.host();
    let tls_port = dovecot.pop3s_addr().port();
    let plain_port = dovecot.pop3_addr().port();
    let ca = dovecot.ca_pem_path();
    let ca = ca.display();
    println!(
        "A private Dovecot (pid {}) with {} messages for user {USER} (password: {PASSWORD})",
        dovecot.pid(),
        guide.count
    );
    println!("  host {host}, POP3S (TLS from the start) on port {tls_port},");
    println!("  plain POP3 with STARTTLS on port {plain_port}");
    println!(
        "  Its certificate comes from a CA made for this run, which nothing trusts by itself:"
    );
    println!("  give popdesk that CA's certificate, {ca}");
    println!("popdesk's data folder: {data}");
    println!(
        "Dovecot's folder (config, log): {}",
        dovecot.dir().display()
    );
    println!();
    println!(
        "On the command line (from the repository: cargo run -p popdesk -- instead of popdesk):"
    );
    println!("  export {PASSWORD_VAR}={PASSWORD}");
    println!(
        "  popdesk --data {data} mailbox add {USER} --host {host} --port {tls_port} --tls implicit \\\n      --user {USER} --password-env {PASSWORD_VAR} --ca-file {ca}"
    );
    println!("  popdesk --data {data} mailbox test {USER}");
    println!("  popdesk --data {data} mailbox fetch {USER}");
    println!("  popdesk --data {data} ticket list");
    println!(
        "  (or STARTTLS on the plain port: --port {plain_port} --tls starttls --ca-file {ca})"
    );
    println!();
    println!("In the web UI:");
    println!("  popdesk --data {data} user add {ADMIN} --role admin      (asks for a password)");
    println!("  popdesk --data {data} serve --listen {}", guide.listen);
    println!(
        "  open http://{}/, sign in as {ADMIN}, then Mailboxes > Add mailbox:",
        guide.listen
    );
    println!("    Host {host}, Port {tls_port}, Security: TLS from the start (port 995),");
    println!("    CA certificate file {ca},");
    println!("    Username {USER}, Password {PASSWORD}");
    println!("    (or Port {plain_port} with Security: STARTTLS (port 110) and the same CA file)");
    println!();
    println!(
        "Runs for {} minutes; Ctrl-C or SIGTERM stops it sooner. Stopping removes {} and Dovecot's folder.",
        guide.minutes,
        guide.folder.display()
    );
}

/// The signals that stop the playground cleanly: Ctrl-C, SIGTERM, SIGHUP (the terminal
/// was closed). Once listened for, they no longer end the process by themselves.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl StopSignals {
    /// Needs a tokio runtime's context.
    fn listen() -> Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("listening for Ctrl-C")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            hangup: signal(SignalKind::hangup()).context("listening for SIGHUP")?,
        })
    }

    /// Waits until `limit` has passed or a signal came (also one that came before this
    /// was called); says which.
    async fn wait(&mut self, limit: Duration) -> &'static str {
        tokio::select! {
            () = tokio::time::sleep(limit) => "time is up",
            _ = self.interrupt.recv() => "Ctrl-C",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
        }
    }
}

/// A loopback port free right now, for the `serve --listen` the guide suggests.
fn free_loopback_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
