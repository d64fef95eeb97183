//! `popdesk-bench`: download-and-delete throughput of popdesk's POP3 client beside mpop,
//! against a private Dovecot, on loopback and with added round-trip time.
//!
//! `scripts/bench-pop3` is the way in: it installs what this needs and runs `run`. The other
//! subcommands are the pieces `run` uses (in other namespaces) and are useful on their own.

mod api_load;
mod delay_line;
mod dovecot;
mod fetch;
mod mailbox;
mod maildir;
mod memory;
mod mpop;
mod netns;
mod nodes;
mod playground;
mod probe;
mod process_speed;
mod report;
mod rng;
mod run;
mod sending;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "POP3 download benchmark: popdesk's client beside mpop")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, clap::Args)]
struct MailboxArgs {
    /// Number of messages.
    #[arg(long, default_value_t = 2_000)]
    messages: usize,
    /// Total mailbox size in MB (10^6 bytes).
    #[arg(long, default_value_t = 130)]
    megabytes: u64,
    /// Seed; the same seed gives the same mailbox byte for byte.
    #[arg(long)]
    seed: Option<u64>,
}

impl MailboxArgs {
    fn spec(&self) -> mailbox::MailboxSpec {
        let default = mailbox::MailboxSpec::default();
        mailbox::MailboxSpec {
            messages: self.messages,
            total_bytes: self.megabytes * 1_000_000,
            seed: self.seed.unwrap_or(default.seed),
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the whole comparison (as root) and print the table.
    Run {
        #[command(flatten)]
        mailbox: MailboxArgs,
        /// Round-trip time added between client and server for the second set of runs
        /// (0: no second set).
        #[arg(long, default_value_t = 20)]
        rtt_ms: u64,
        /// Parent directory for scratch files (default: the system temp dir).
        #[arg(long)]
        workdir: Option<PathBuf>,
        /// Keep the scratch directory (Dovecot logs, mpoprc) afterwards.
        #[arg(long)]
        keep: bool,
        /// Kill a client run that takes longer than this many seconds.
        #[arg(long, default_value_t = 600)]
        run_limit_secs: u64,
        /// Runs per client and RTT (the median is reported); runs over 30 s are not repeated.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Only these clients (repeatable): mpop, popdesk-pipelined, popdesk-lockstep,
        /// popdesk-fetch, popdesk-no-process, popdesk-process.
        #[arg(long)]
        only: Vec<String>,
        /// Messages per session for `popdesk mailbox fetch` (each session ends with
        /// QUIT); popdesk's own default when not given.
        #[arg(long)]
        batch: Option<u32>,
        /// More mailbox sizes in messages (same bytes per message), run on loopback by
        /// mpop and `popdesk mailbox fetch`: is the cost per message flat? E.g. 200,20000.
        #[arg(long, value_delimiter = ',')]
        sizes: Vec<usize>,
    },
    /// Write the benchmark mailbox into a Maildir's new/ directory.
    Generate {
        #[command(flatten)]
        mailbox: MailboxArgs,
        /// Maildir to fill (created if missing).
        #[arg(long)]
        maildir: PathBuf,
    },
    /// Hold every packet of a netfilter queue for a fixed delay (used by `run`).
    DelayLine {
        #[arg(long)]
        queue: u16,
        #[arg(long)]
        delay_us: u64,
    },
    /// Check that a POP3 server greets on HOST PORT (used by `run`).
    Probe { host: String, port: u16 },
    /// Download and delete a whole mailbox with popdesk's client (used by `run`).
    Fetch(fetch::FetchArgs),
    /// Peak RSS of `popdesk mailbox fetch` downloading one huge message (as root: it
    /// starts a private Dovecot).
    FetchMemory {
        /// Size of the message in MB.
        #[arg(long, default_value_t = 200)]
        megabytes: u64,
    },
    /// Replies/s through a private Postfix: queue replies, then one sender pass (as root).
    Sending {
        /// How many replies.
        #[arg(long, default_value_t = 1_000)]
        replies: usize,
    },
    /// Messages/s of turning the stored benchmark mailbox into tickets (SQLite).
    ProcessSpeed {
        #[command(flatten)]
        mailbox: MailboxArgs,
        /// Messages per processing transaction (the processor's default when not
        /// given).
        #[arg(long)]
        batch: Option<u32>,
    },
    /// The ticket list and search under wrk, idle and while a fetch runs, on SQLite and
    /// PostgreSQL (as root; see scripts/bench-api).
    ApiLoad {
        /// The popdesk binary to serve with (a release build).
        #[arg(long, default_value = "target/release/popdesk")]
        popdesk: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        tickets: usize,
        /// Messages per seeded ticket: its first mail and the replies threaded onto it.
        #[arg(long, default_value_t = 3)]
        messages_per_ticket: usize,
        /// Messages delivered to the mailbox fetched during each loaded run.
        #[arg(long, default_value_t = 20_000)]
        fetch_messages: usize,
        /// Seconds per wrk run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 8)]
        connections: u32,
        /// The databases to measure, in order.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "sqlite,postgres"
        )]
        backends: Vec<api_load::Backend>,
        /// Keep the data folders afterwards.
        #[arg(long)]
        keep: bool,
    },

    /// Issue 16's numbers: blobs in PostgreSQL beside blobs on disk, and three
    /// `popdesk serve` nodes beside one (as root; see scripts/bench-nodes).
    SeveralNodes(nodes::NodesArgs),
    /// A private Dovecot with generated mail to try popdesk by hand (as root).
    Playground {
        #[command(flatten)]
        mailbox: MailboxArgs,
        /// Stop after this many minutes.
        #[arg(long, default_value_t = 30)]
        minutes: u64,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("popdesk-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<bool> {
    match Cli::parse().command {
        Cmd::Run {
            mailbox,
            rtt_ms,
            workdir,
            keep,
            run_limit_secs,
            repeat,
            only,
            batch,
            sizes,
        } => run::run(&run::RunOptions {
            spec: mailbox.spec(),
            rtt: Duration::from_millis(rtt_ms),
            workdir,
            keep,
            run_limit: Duration::from_secs(run_limit_secs),
            repeat,
            only,
            batch,
            sizes,
        }),
        Cmd::Generate { mailbox, maildir } => {
            let messages = mailbox::generate(&mailbox.spec());
            let master = maildir::MasterCopy::write(&maildir.join("new"), &messages)?;
            for sub in ["cur", "tmp"] {
                std::fs::create_dir_all(maildir.join(sub))?;
            }
            let bytes: usize = messages.iter().map(|m| m.bytes.len()).sum();
            println!(
                "wrote {} messages, {:.1} MB to {}",
                messages.len(),
                bytes as f64 / 1e6,
                maildir.join("new").display()
            );
            drop(master);
            Ok(true)
        }
        Cmd::DelayLine { queue, delay_us } => {
            delay_line::serve(queue, Duration::from_micros(delay_us))?;
            Ok(true)
        }
        Cmd::Probe { host, port } => {
            println!("{}", probe::greeting(&host, port)?);
            Ok(true)
        }
        Cmd::Fetch(args) => {
            fetch::run(&args)?;
            Ok(true)
        }
        Cmd::FetchMemory { megabytes } => memory::run(megabytes),
        Cmd::ProcessSpeed { mailbox, batch } => process_speed::run(&mailbox.spec(), batch),
        Cmd::Sending { replies } => sending::run(replies),
        Cmd::Playground { mailbox, minutes } => playground::run(&mailbox.spec(), minutes),
        Cmd::SeveralNodes(args) => nodes::run(&args),
        Cmd::ApiLoad {
            popdesk,
            tickets,
            messages_per_ticket,
            fetch_messages,
            seconds,
            connections,
            backends,
            keep,
        } => api_load::run(&api_load::Options {
            popdesk,
            tickets,
            messages_per_ticket,
            fetch_messages,
            seconds,
            connections,
            backends,
            keep,
        }),
    }
}
