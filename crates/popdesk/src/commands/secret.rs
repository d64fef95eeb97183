//! `popdesk secret rotate`: a new key for the sealed secrets.

use std::process::ExitCode;

use anyhow::bail;
use store::{KeySource, SecretBox, Store};

use crate::cli::SecretCommand;

pub async fn run(store: &Store, command: SecretCommand) -> anyhow::Result<ExitCode> {
    match command {
        SecretCommand::Rotate { new_key_env } => rotate(store, new_key_env.as_deref()).await,
    }
}

async fn rotate(store: &Store, new_key_env: Option<&str>) -> anyhow::Result<ExitCode> {
    let from_environment = store.secret_box().source() == KeySource::Environment;
    match new_key_env {
        None => {
            // Refused with the instructions when the key is in the environment.
            let count = store.rotate_key().await?;
            println!(
                "re-sealed {count} secret{} with a new key in {}; restart every popdesk process that uses this data folder (popdesk serve) so it uses the new key",
                plural(count),
                store.data_dir().join(store::KEY_FILE).display()
            );
        }
        Some(var) => {
            if !from_environment {
                bail!(
                    "--new-key-env is for installations whose key is in {}; this one keeps its key in {}: run `popdesk secret rotate` without it",
                    store::KEY_ENV,
                    store.data_dir().join(store::KEY_FILE).display()
                );
            }
            let Some(value) = std::env::var_os(var) else {
                bail!(
                    "the variable {var} is not set; put a new key in it (`head -c 32 /dev/urandom | base64`) and run again"
                );
            };
            let Some(new) = value.to_str().and_then(SecretBox::from_base64) else {
                bail!(
                    "{var} is not the base64 form of 32 bytes; set it to the output of `head -c 32 /dev/urandom | base64` and run again"
                );
            };
            let count = store.reseal_secrets(&new).await?;
            println!(
                "re-sealed {count} secret{} with the key in {var}; now set {} to that key and restart every popdesk process: until then they cannot read the mailbox passwords",
                plural(count),
                store::KEY_ENV
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
