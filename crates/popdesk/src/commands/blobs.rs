//! `popdesk blobs migrate --to postgres|files`: moving the raw messages between the data
//! folder and the database.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::anyhow;
use store::{BlobBackend, Store};

use crate::cli::BlobsCommand;

pub async fn run(store: &Store, command: BlobsCommand) -> anyhow::Result<ExitCode> {
    match command {
        BlobsCommand::Migrate { to } => {
            let to: BlobBackend = to
                .parse()
                .map_err(|_| anyhow!("--to must be \"postgres\" or \"files\", not \"{to}\""))?;
            let from = match to {
                BlobBackend::Postgres => BlobBackend::Files,
                BlobBackend::Files => BlobBackend::Postgres,
            };
            let source = store.blob_place(from).await?;
            let target = store.blob_place(to).await?;
            let terminal = std::io::stderr().is_terminal();
            let report = store::migrate_blobs(&source, &target, |so_far| {
                let done = so_far.moved + so_far.already_there;
                if terminal && done % 100 == 0 {
                    eprint!("\rmoved {done} raw messages");
                }
            })
            .await?;
            if terminal {
                eprintln!();
            }
            println!(
                "moved {} raw messages ({} octets) from {from} to {to}; {} were there already (an earlier run) and were checked",
                report.moved, report.octets, report.already_there
            );
            if to != store.blobs().backend() {
                println!(
                    "now set blob_store = \"{to}\" on every node and restart them; until then they read both places"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
