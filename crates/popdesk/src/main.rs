//! The `popdesk` binary: configuration, wiring, and words for the person at the terminal.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

/// Exit status for a run that failed in a way that may pass if tried again later
/// (sysexits' EX_TEMPFAIL), so scripts can tell "retry" from "fix something".
pub const EXIT_TEMPORARY: u8 = 75;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            // One clear sentence: the chain of causes, no backtrace.
            eprintln!("error: {}", output::sentence(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let store = match store::Store::open(&cli.data, cli.database_url.as_deref()).await {
        Ok(store) => store,
        // A full disk heals when space is freed: tell scripts to retry, not to fix.
        Err(error) if error.is_disk_full() => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(EXIT_TEMPORARY));
        }
        Err(error) => return Err(error.into()),
    };
    match cli.command {
        Command::Mailbox(command) => commands::mailbox::run(&store, command).await,
        Command::Process => commands::tickets::process(&store).await,
        Command::Ticket(command) => commands::tickets::ticket(&store, command).await,
        Command::Message(command) => commands::tickets::message(&store, command).await,
    }
}

fn init_logging(verbose: u8) {
    // The CLI says what happened in its own sentences; the log adds detail on request.
    // sqlx's own log lines repeat, in less helpful words, errors popdesk reports anyway.
    let default = match verbose {
        0 => "error,sqlx=off",
        1 => "info,pop3=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("POPDESK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
