//! `popdesk user ...`: the people who sign in. The first admin of a new install is made
//! here (or on the web setup page while no user exists).

use std::io::IsTerminal as _;
use std::process::ExitCode;

use admin::Administration;
use anyhow::{Context as _, anyhow, bail};
use secrecy::SecretString;
use store::{Role, Store};

use crate::cli::{RoleArg, UserCommand};
use crate::commands::mailbox::now_ms;

pub async fn run(store: &Store, command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add {
            email,
            role,
            name,
            password_env,
        } => {
            admin::users::check_email(&email).map_err(|e| anyhow!("{e}"))?;
            let password = read_password(&email, password_env.as_deref(), true)?;
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Agent => Role::Agent,
            };
            let user = Administration::new(store.clone())
                .create_user(&admin::NewUser {
                    email,
                    name,
                    role,
                    password,
                })
                .await
                .map_err(|e| anyhow!("{e}"))?;
            println!("added {} {} (user #{})", user.role, user.email, user.id);
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::List { json } => {
            let users = store.users().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else if users.is_empty() {
                println!(
                    "no users yet: add the first admin with `popdesk user add EMAIL --role admin`"
                );
            } else {
                for user in users {
                    println!(
                        "{:<5} {:<6} {}{}{}",
                        user.id,
                        user.role,
                        user.email,
                        user.name.map(|n| format!(" ({n})")).unwrap_or_default(),
                        if user.disabled { " [disabled]" } else { "" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Password {
            email,
            password_env,
        } => {
            let user = store
                .user_by_email(&email)
                .await?
                .ok_or_else(|| anyhow!("there is no user {email}; see `popdesk user list`"))?;
            let password = read_password(&email, password_env.as_deref(), true)?;
            let hash = hash(store, &password).await?;
            store.set_user_password(user.id, &hash, now_ms()).await?;
            println!(
                "password of {} changed; their sessions have ended",
                user.email
            );
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Mailboxes { email, set } => mailboxes(store, &email, set.as_deref()).await,
    }
}

/// `user mailboxes EMAIL [--set ...]`: what the user works, after the change if any.
async fn mailboxes(store: &Store, email: &str, set: Option<&str>) -> anyhow::Result<ExitCode> {
    let admin = Administration::new(store.clone());
    let user = admin
        .user_by_email(email)
        .await
        .map_err(|_| anyhow!("there is no user {email}; see `popdesk user list`"))?;
    let all = store.mailboxes().await?;
    if let Some(set) = set {
        let mut ids = Vec::new();
        for wanted in set.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            // A name first: a mailbox may well be called "2024".
            let found = all
                .iter()
                .find(|m| m.settings.name == wanted)
                .or_else(|| {
                    let id = wanted
                        .strip_prefix('#')
                        .unwrap_or(wanted)
                        .parse::<i64>()
                        .ok()?;
                    all.iter().find(|m| m.id == id)
                })
                .ok_or_else(|| {
                    anyhow!("there is no mailbox {wanted:?} (see `popdesk mailbox list`)")
                })?;
            ids.push(found.id);
        }
        let change = admin::UserChange {
            mailboxes: Some(ids),
            ..admin::UserChange::default()
        };
        admin
            .update_user(user.id, &change)
            .await
            .map_err(|e| anyhow!("{e}"))?;
    }
    let granted = store.user_mailbox_ids(user.id).await?;
    let names: Vec<String> = all
        .iter()
        .filter(|m| granted.contains(&m.id))
        .map(|m| format!("{} (#{})", m.settings.name, m.id))
        .collect();
    match (user.role, names.is_empty()) {
        (Role::Admin, true) => println!("{} is an admin and sees every mailbox", user.email),
        (Role::Admin, false) => println!(
            "{} is an admin and sees every mailbox; as an agent they would work: {}",
            user.email,
            names.join(", ")
        ),
        (Role::Agent, true) => println!(
            "{} works no mailbox, so they see no tickets; give them some with `popdesk user mailboxes {} --set NAME,...`",
            user.email, user.email
        ),
        (Role::Agent, false) => println!("{} works: {}", user.email, names.join(", ")),
    }
    Ok(ExitCode::SUCCESS)
}

async fn hash(store: &Store, password: &SecretString) -> anyhow::Result<String> {
    Administration::new(store.clone())
        .hash_password(password)
        .await
        .map_err(|e| anyhow!("{e}"))
}

fn read_password(
    email: &str,
    password_env: Option<&str>,
    confirm: bool,
) -> anyhow::Result<SecretString> {
    if let Some(var) = password_env {
        let value =
            std::env::var(var).map_err(|_| anyhow!("the environment variable {var} is not set"))?;
        return Ok(SecretString::from(value));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password given: use --password-env VAR (or run on a terminal to be asked)");
    }
    let first = rpassword::prompt_password(format!("Password for {email}: "))
        .context("cannot read the password")?;
    if confirm {
        let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
        if again != first {
            bail!("the two passwords differ; nothing was changed");
        }
    }
    Ok(SecretString::from(first))
}
