//! The `popdesk` binary: configuration, wiring, and words for the person at the terminal.

mod cli;
mod commands;
mod config;
mod output;
mod serve;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

/// Exit status for a run that failed in a way that may pass if tried again later
/// (sysexits' EX_TEMPFAIL), so scripts can tell "retry" from "fix something".
pub const EXIT_TEMPORARY: u8 = 75;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (common, file) = match config::FileConfig::load(cli.config.as_deref())
        .and_then(|file| Ok((config::common(&cli, &file)?, file)))
    {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {}", output::sentence(&error));
            return ExitCode::FAILURE;
        }
    };
    let serving = matches!(cli.command, Command::Serve(_));
    init_logging(cli.verbose, &common, serving);
    // Blocking threads (file I/O, parsing) capped well below tokio's 512: each new
    // thread can take a malloc arena of its own, and a long fetch that grew the pool to
    // fifty threads held about 45 MB more for it. Eight keep both cores busy with room
    // for file waits.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, common, file)) {
        Ok(code) => code,
        Err(error) => {
            // One clear sentence: the chain of causes, no backtrace.
            let sentence = output::sentence(&error);
            if serving {
                tracing::error!(error = %sentence, "popdesk stopped");
            }
            eprintln!("error: {sentence}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    cli: Cli,
    common: config::Common,
    file: config::FileConfig,
) -> anyhow::Result<ExitCode> {
    let options = store::StoreOptions {
        blob_store: common.blob_store,
    };
    let opened =
        store::Store::open_with(&common.data, common.database_url.as_deref(), options).await;
    let store = match opened {
        Ok(store) => store,
        // A full disk heals when space is freed: tell scripts to retry, not to fix.
        Err(error) if error.is_disk_full() => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(EXIT_TEMPORARY));
        }
        Err(error) => return Err(error.into()),
    };
    match cli.command {
        Command::Serve(args) => {
            let service = config::service(&args, &file)?;
            serve::run(store, &common, service).await
        }
        Command::User(command) => commands::users::run(&store, command).await,
        Command::Mailbox(command) => commands::mailbox::run(&store, command, &common).await,
        Command::Process => commands::tickets::process(&store, &common).await,
        Command::Ticket(command) => commands::tickets::ticket(&store, command, &common).await,
        Command::Outbox(command) => commands::outbox::run(&store, command, &common).await,
        Command::Message(command) => commands::tickets::message(&store, command, &common).await,
        Command::Secret(command) => commands::secret::run(&store, command).await,
        Command::Blobs(command) => commands::blobs::run(&store, command).await,
    }
}

fn init_logging(verbose: u8, common: &config::Common, serving: bool) {
    // The CLI says what happened in its own sentences; the log adds detail on request.
    // A service has no terminal to say things on: its log is how it speaks, so it logs
    // what it does by default. sqlx's own log lines repeat, in less helpful words,
    // errors popdesk reports anyway.
    let default = match (verbose, serving) {
        (0, false) => "error,sqlx=off",
        (0, true) => "info,sqlx=off",
        (1, _) => "info,pop3=debug,sqlx=off",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("POPDESK_LOG")
        .ok()
        .or_else(|| {
            common
                .log
                .as_deref()
                .and_then(|log| tracing_subscriber::EnvFilter::try_new(log).ok())
        })
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match common.log_format {
        cli::LogFormat::Json => builder.json().flatten_event(true).init(),
        cli::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}
