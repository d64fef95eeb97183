//! popdesk's own POP3 client doing the benchmark job (`popdesk-bench fetch`): download every
//! message into a Maildir, delete it, QUIT — pipelined, or in lock-step (one command, wait for
//! its reply, next command) to show what pipelining buys at 20 ms RTT.
//!
//! INTEGRATION (crates/pop3): this is the place for the client runs. Once `pop3::Client`
//! exists: add `pop3` and `tokio` to crates/bench/Cargo.toml, set [`READY`] to true, and
//! fill in [`run`]:
//!   connect(&ConnectOptions::new(host, port, Security::None) + the pipelining switch
//!   off when `lock_step`), authenticate(&Credentials::password(user, pass), AuthMethod::Auto),
//!   list(), retr_batch(&all, &mut sink) with a sink that writes each message to
//!   `maildir/tmp/N` and renames it into `maildir/new/` (as mpop's maildir delivery does),
//!   dele_batch(&all), quit().
//! The orchestrator (run.rs) already runs this as a subprocess in the right namespace, times
//! it the same way as mpop, and checks the delivered Maildir and the emptied server mailbox.

use std::path::PathBuf;

use anyhow::{Result, bail};

/// Whether `run` below is the real client yet; the benchmark marks these rows as pending
/// until it is.
pub const READY: bool = false;

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[arg(long)]
    pub host: String,
    #[arg(long)]
    pub port: u16,
    #[arg(long)]
    pub user: String,
    #[arg(long)]
    pub password: String,
    /// Delivery Maildir (new/, cur/, tmp/ are created).
    #[arg(long)]
    pub maildir: PathBuf,
    /// One command at a time instead of pipelining.
    #[arg(long)]
    pub lock_step: bool,
}

pub fn run(args: &FetchArgs) -> Result<()> {
    bail!(
        "popdesk's POP3 client is not integrated yet (crates/pop3); asked to fetch from {}:{}",
        args.host,
        args.port
    )
}
