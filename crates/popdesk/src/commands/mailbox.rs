//! `popdesk mailbox ...`

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;

use admin::{AdminError, Administration, ConnectionReport, Field, MailboxChange};
use anyhow::{Context as _, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use intake::{Fetcher, SystemClock};
use secrecy::SecretString;
use serde::Serialize;
use store::{FetchRun, Mailbox, Policy, RunOutcome, Store};

use crate::EXIT_TEMPORARY;
use crate::cli::{AddMailbox, MailboxCommand, MailboxOptions, UpdateMailbox};
use crate::config::Common;
use crate::output;

pub async fn run(
    store: &Store,
    command: MailboxCommand,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    let admin = Administration::new(store.clone());
    match command {
        MailboxCommand::Add(add) => add_mailbox(&admin, add).await,
        MailboxCommand::Update(update) => update_mailbox(&admin, update).await,
        MailboxCommand::List { json } => list(store, json).await,
        MailboxCommand::Show { name, json } => show(store, &name, json).await,
        MailboxCommand::Test { name } => test(&admin, &name).await,
        MailboxCommand::Connect { name } => connect(&admin, &name).await,
        MailboxCommand::TestSending { name } => test_sending(&admin, &name).await,
        MailboxCommand::Fetch {
            name,
            all,
            no_process,
        } => fetch(store, name.as_deref(), all, !no_process, common).await,
        MailboxCommand::Runs { name, limit, json } => runs(store, &name, limit, json).await,
        MailboxCommand::TryAgain { name, uid } => {
            let mailbox = admin.mailbox_named(&name).await.map_err(refusal)?;
            admin
                .try_set_aside_again(mailbox.id, &uid)
                .await
                .map_err(refusal)?;
            println!("{name}: message {uid} is tried again at the next fetch");
            Ok(ExitCode::SUCCESS)
        }
        MailboxCommand::Remove { name } => {
            let mailbox = admin.mailbox_named(&name).await.map_err(refusal)?;
            admin.remove_mailbox(mailbox.id).await.map_err(refusal)?;
            println!("removed mailbox {name} (its stored messages are kept)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn find(store: &Store, name: &str) -> anyhow::Result<Mailbox> {
    store
        .mailbox(name)
        .await?
        .ok_or_else(|| anyhow!("there is no mailbox named {name:?} (see `popdesk mailbox list`)"))
}

async fn test_sending(admin: &Administration, name: &str) -> anyhow::Result<ExitCode> {
    let mailbox = admin.mailbox_named(name).await.map_err(refusal)?;
    match admin.test_sending(mailbox.id).await.map_err(refusal)? {
        Ok(test) => {
            println!(
                "{name}: sending works: {}:{} ({}), signed in as {} (auth {}); no mail was sent",
                test.host, test.port, test.tls, test.username, test.auth
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            eprintln!("{name}: sending does not work: {failure}");
            Ok(if failure.is_permanent() {
                ExitCode::FAILURE
            } else {
                ExitCode::from(EXIT_TEMPORARY)
            })
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    intake::Clock::now_ms(&SystemClock)
}

/// The service's refusal in the command line's words: the flag, then the rule.
fn refusal(error: AdminError) -> anyhow::Error {
    let flag = |field: Field| match field {
        Field::Name | Field::DisplayName | Field::TokenName => "the mailbox name",
        Field::Host => "--host",
        Field::Port => "--port",
        Field::Tls => "--tls",
        Field::Username | Field::Email => "--user",
        Field::Secret | Field::Password => "the password (--password-env or --password-file)",
        Field::AuthMethod => "--auth",
        Field::Policy => "--policy",
        Field::DeleteAfterDays => "--delete-after",
        Field::Start => "--start",
        Field::BatchMessages | Field::BatchBytes => "--batch",
        Field::MaxSize => "--max-size",
        Field::Oversize => "--oversize",
        Field::CaFile => "--ca-file",
        Field::TrustedCertificate => "--trust-fingerprint",
        Field::AllowInsecureAuth => "--allow-insecure-auth",
        Field::PollInterval => "--poll-interval",
        Field::Role => "--role",
        Field::TokenExpiry => "the token's lifetime",
        Field::SendAddress => "--address",
        Field::SendDisplayName => "--display-name",
        Field::SmtpHost => "--smtp-host",
        Field::SmtpPort => "--smtp-port",
        Field::SmtpTls => "--smtp-tls",
        Field::SmtpAuth => "--smtp-auth",
        Field::SmtpUsername => "--smtp-user",
        Field::SmtpSecret => "the SMTP password (--smtp-password-env or --smtp-password-file)",
        Field::SmtpAllowInsecureAuth => "--smtp-allow-insecure-auth",
        Field::OAuthProvider => "--oauth-provider",
        Field::OAuthTenant => "--oauth-tenant",
        Field::OAuthIssuer => "--oauth-issuer",
        Field::OAuthAuthorizeUrl => "--oauth-authorize-url",
        Field::OAuthTokenUrl => "--oauth-token-url",
        Field::OAuthDeviceUrl => "--oauth-device-url",
        Field::OAuthClientId => "--oauth-client-id",
        Field::OAuthClientSecret => "the client secret (--oauth-client-secret-env)",
        Field::OAuthScopes => "--oauth-scope",
        Field::OAuthFlow => "--oauth-flow",
        Field::NewAddressReference => "--new-address-reference",
        Field::Mailboxes => "--set",
    };
    match error {
        AdminError::Invalid { field, problem } => anyhow!("{} {problem}", flag(field)),
        AdminError::SecretRequired {
            field: field @ (Field::OAuthTokenUrl | Field::OAuthDeviceUrl | Field::OAuthClientId),
        } => anyhow!(
            "changing {} needs the client secret again, so the stored one is never sent where it was not meant to go: add --oauth-client-secret-env VAR",
            flag(field)
        ),
        AdminError::SecretRequired { field } => anyhow!(
            "changing {} needs the password again, so the stored one is never sent where it was not meant to go: add --password-env VAR or --password-file FILE",
            flag(field)
        ),
        other => anyhow!("{other}"),
    }
}

/// The options as the service's [`MailboxChange`].
fn change_from(options: &MailboxOptions, creating: bool) -> anyhow::Result<MailboxChange> {
    let ca_file = match (&options.ca_file, options.no_ca_file) {
        (Some(path), _) => {
            if !path.is_file() {
                bail!("--ca-file: {} does not exist", path.display());
            }
            // Stored absolute: `serve` may run from another folder.
            let path = path.canonicalize().unwrap_or_else(|_| path.clone());
            Some(Some(path.display().to_string()))
        }
        (None, true) => Some(None),
        (None, false) => None,
    };
    let oauth = options.oauth_provider.is_some() && !options.no_oauth;
    // An OAuth2 mailbox gets its tokens by connecting: no password to ask for.
    let secret = read_secret(options, creating && !oauth)?;
    let flag = |on: bool, off: bool| match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    Ok(MailboxChange {
        name: None,
        host: options.host.clone(),
        port: options.port,
        tls: options.tls.clone(),
        username: options.user.clone(),
        secret,
        auth_method: options.auth.clone(),
        policy: options.policy.clone(),
        delete_after_days: match (options.delete_after, options.keep_forever) {
            (Some(days), _) => Some(Some(days)),
            (None, true) => Some(None),
            (None, false) => None,
        },
        start: options.start.clone(),
        batch_messages: options.batch,
        batch_bytes: None,
        max_size: options.max_size,
        oversize: options.oversize.clone(),
        ca_file,
        trusted_certificate: match (&options.trust_fingerprint, options.no_trust_fingerprint) {
            (Some(pin), _) => Some(Some(pin.clone())),
            (None, true) => Some(None),
            (None, false) => None,
        },
        allow_insecure_auth: flag(options.allow_insecure_auth, options.no_allow_insecure_auth),
        enabled: flag(options.enable, options.disable),
        poll_interval_secs: options.poll_interval,
        send_address: match (&options.address, options.no_address) {
            (Some(address), _) => Some(Some(address.clone())),
            (None, true) => Some(None),
            (None, false) => None,
        },
        send_display_name: options.display_name.clone().map(Some),
        smtp_host: options.smtp_host.clone(),
        smtp_port: options.smtp_port,
        smtp_tls: options.smtp_tls.clone(),
        smtp_auth: options.smtp_auth.clone(),
        smtp_username: match (&options.smtp_user, options.no_smtp_user) {
            (Some(user), _) => Some(Some(user.clone())),
            (None, true) => Some(None),
            (None, false) => None,
        },
        smtp_secret: read_optional_secret(
            options.smtp_password_env.as_deref(),
            options.smtp_password_file.as_deref(),
        )?,
        smtp_allow_insecure_auth: flag(
            options.smtp_allow_insecure_auth,
            options.no_smtp_allow_insecure_auth,
        ),
        acknowledge: flag(options.acknowledge, options.no_acknowledge),
        oauth_provider: match (&options.oauth_provider, options.no_oauth) {
            (Some(provider), _) => Some(Some(provider.clone())),
            (None, true) => Some(None),
            (None, false) => None,
        },
        oauth_tenant: options.oauth_tenant.clone().map(Some),
        oauth_issuer: options.oauth_issuer.clone().map(Some),
        oauth_authorize_url: options.oauth_authorize_url.clone().map(Some),
        oauth_token_url: options.oauth_token_url.clone().map(Some),
        oauth_device_url: options.oauth_device_url.clone().map(Some),
        oauth_client_id: options.oauth_client_id.clone(),
        oauth_client_secret: match (
            &options.oauth_client_secret_env,
            options.no_oauth_client_secret,
        ) {
            (Some(var), _) => read_optional_secret(Some(var), None)?,
            (None, true) => Some(SecretString::from("")),
            (None, false) => None,
        },
        oauth_scopes: (!options.oauth_scopes.is_empty()).then(|| options.oauth_scopes.clone()),
        oauth_flow: options.oauth_flow.clone(),
        new_address_reference: options.new_address_reference.clone(),
    })
}

/// `mailbox connect`: the device-code flow, or the first app-only token. Exit 1 with
/// one sentence when the code expires or the provider refuses.
async fn connect(admin: &Administration, name: &str) -> anyhow::Result<ExitCode> {
    let mailbox = admin.mailbox_named(name).await.map_err(refusal)?;
    let Some(settings) = &mailbox.settings.oauth else {
        bail!(
            "{name} does not sign in with OAuth2; set it up with `popdesk mailbox update {name} --oauth-provider ...` first"
        );
    };
    if settings.flow == store::OAuthFlow::ClientCredentials {
        admin.connect_app(mailbox.id).await.map_err(refusal)?;
        println!("{name}: connected (client credentials); popdesk renews its token by itself");
        return Ok(ExitCode::SUCCESS);
    }
    let (mailbox, device) = admin
        .start_device_connect(mailbox.id)
        .await
        .map_err(refusal)?;
    println!(
        "To connect {name}, open {} and enter the code {}",
        device.verification_uri, device.user_code
    );
    if let Some(complete) = &device.verification_uri_complete {
        println!("(or open {complete})");
    }
    println!(
        "Waiting for the approval (the code expires in {} minutes)...",
        device.expires_in_secs.div_ceil(60)
    );
    admin
        .finish_device_connect(&mailbox, &device)
        .await
        .map_err(refusal)?;
    println!("{name}: connected; popdesk renews its token by itself");
    Ok(ExitCode::SUCCESS)
}

async fn add_mailbox(admin: &Administration, add: AddMailbox) -> anyhow::Result<ExitCode> {
    let mut change = change_from(&add.options, true)?;
    change.name = Some(add.name.clone());
    let mailbox = admin.create_mailbox(&change).await.map_err(refusal)?;
    println!(
        "added mailbox {} ({}@{}:{}, {}); check it with `popdesk mailbox test {}`",
        mailbox.settings.name,
        mailbox.settings.username,
        mailbox.settings.host,
        mailbox.settings.port,
        mailbox.settings.tls,
        mailbox.settings.name
    );
    Ok(ExitCode::SUCCESS)
}

async fn update_mailbox(admin: &Administration, update: UpdateMailbox) -> anyhow::Result<ExitCode> {
    let mailbox = admin.mailbox_named(&update.name).await.map_err(refusal)?;
    let mut change = change_from(&update.options, false)?;
    change.name = update.rename.clone();
    let mailbox = admin
        .update_mailbox(mailbox.id, &change)
        .await
        .map_err(refusal)?;
    println!(
        "changed mailbox {}; see it with `popdesk mailbox show {}`",
        mailbox.settings.name, mailbox.settings.name
    );
    Ok(ExitCode::SUCCESS)
}

/// A secret from an environment variable or the first line of a file, when one is named.
fn read_optional_secret(
    env: Option<&str>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<Option<SecretString>> {
    if let Some(var) = env {
        let value =
            std::env::var(var).map_err(|_| anyhow!("the environment variable {var} is not set"))?;
        if value.is_empty() {
            bail!("the environment variable {var} is empty");
        }
        return Ok(Some(SecretString::from(value)));
    }
    if let Some(path) = file {
        let content = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the password file {}", path.display()))?;
        let line = content.lines().next().unwrap_or("").to_string();
        if line.is_empty() {
            bail!("the password file {} is empty", path.display());
        }
        return Ok(Some(SecretString::from(line)));
    }
    Ok(None)
}

/// The secret never comes from an argument (it would show in `ps` and shell history). A
/// new mailbox asks for it on a terminal; a change only takes one when it is given.
fn read_secret(options: &MailboxOptions, creating: bool) -> anyhow::Result<Option<SecretString>> {
    if let Some(secret) = read_optional_secret(
        options.password_env.as_deref(),
        options.password_file.as_deref(),
    )? {
        return Ok(Some(secret));
    }
    if !creating {
        return Ok(None);
    }
    if std::io::stdin().is_terminal() {
        let user = options.user.as_deref().unwrap_or("the mailbox");
        let host = options.host.as_deref().unwrap_or("its server");
        let value = rpassword::prompt_password(format!("Password for {user}@{host}: "))
            .context("cannot read the password")?;
        return Ok(Some(SecretString::from(value)));
    }
    bail!(
        "no password given: use --password-env VAR or --password-file FILE (or run on a terminal to be asked)"
    )
}

/// What list/show print about a mailbox; never the secret.
#[derive(Serialize)]
struct MailboxView<'a> {
    name: &'a str,
    host: &'a str,
    port: u16,
    tls: &'static str,
    user: &'a str,
    auth: &'static str,
    policy: &'static str,
    delete_after_days: Option<u32>,
    start: &'static str,
    batch: u32,
    batch_bytes: u64,
    max_size: u64,
    oversize: &'static str,
    ca_file: Option<&'a str>,
    trusted_certificate: Option<String>,
    allow_insecure_auth: bool,
    enabled: bool,
    poll_interval_secs: u32,
    /// join or new-ticket: what a [#N] from an address new to ticket N does.
    new_address_reference: &'static str,
    needs_attention: Option<&'a str>,
    /// Where replies leave from; absent when sending is off.
    sending: Option<SendingView<'a>>,
    /// The OAuth2 connection; absent for a password mailbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    oauth: Option<OAuthView<'a>>,
    /// Messages on the server that could not be downloaded (set aside or being retried).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cannot_download: Vec<FailingView>,
    /// Whose words the notices use: gmail, microsoft365 or other.
    provider: &'static str,
    /// What the provider was seen doing with deleted mail (information, not an error).
    provider_notices: Vec<NoticeView>,
    last_run: Option<RunView>,
}

/// A provider notice, as `--json` gives it (the same facts as the API's).
#[derive(Serialize)]
struct NoticeView {
    kind: &'static str,
    /// Messages showing it in the last run that saw it.
    messages: u64,
    /// Messages showing it since it was first seen.
    total: u64,
    first_seen_at: i64,
    last_seen_at: i64,
    text: String,
}

impl<'a> MailboxView<'a> {
    fn new(mailbox: &'a Mailbox, last_run: Option<&FetchRun>) -> Self {
        let s = &mailbox.settings;
        let delete_after_days = match s.policy {
            Policy::Delete => None,
            Policy::Keep { delete_after_days } => delete_after_days,
        };
        MailboxView {
            name: &s.name,
            host: &s.host,
            port: s.port,
            tls: s.tls.as_str(),
            user: &s.username,
            auth: s.auth_method.as_setting(),
            policy: s.policy.as_str(),
            delete_after_days,
            start: s.start.as_str(),
            batch: s.batch_messages,
            batch_bytes: s.batch_bytes,
            max_size: s.max_size,
            oversize: s.oversize.as_str(),
            ca_file: s.ca_file.as_deref(),
            trusted_certificate: s.trusted_certificate.map(|f| f.to_string()),
            allow_insecure_auth: s.allow_insecure_auth,
            enabled: s.enabled,
            poll_interval_secs: s.poll_interval_secs,
            new_address_reference: s.new_address_reference.as_str(),
            needs_attention: mailbox.needs_attention.as_deref(),
            sending: s.sending.as_ref().map(|sending| SendingView {
                address: &sending.address,
                display_name: sending.display_name.as_deref(),
                smtp_host: &sending.smtp_host,
                smtp_port: sending.smtp_port,
                smtp_tls: sending.smtp_tls.as_str(),
                smtp_auth: sending.smtp_auth.as_str(),
                smtp_user: sending.smtp_username.as_deref().unwrap_or(&s.username),
                smtp_own_user: sending.smtp_username.is_some(),
                smtp_allow_insecure_auth: sending.smtp_allow_insecure_auth,
                acknowledge: sending.acknowledge,
            }),
            oauth: s.oauth.as_ref().map(|o| OAuthView {
                provider: o.provider.as_str(),
                flow: o.flow.as_str(),
                client_id: &o.client_id,
                tenant: o.tenant.as_deref(),
                issuer: o.issuer.as_deref(),
                token_url: &o.token_url,
                scopes: &o.scopes,
                state: mailbox.oauth_state.unwrap_or_default().as_str(),
            }),
            cannot_download: Vec::new(),
            provider: intake::Provider::for_host(&s.host).as_str(),
            provider_notices: Vec::new(),
            last_run: last_run.map(RunView::new),
        }
    }
}

#[derive(Serialize)]
struct OAuthView<'a> {
    provider: &'static str,
    flow: &'static str,
    client_id: &'a str,
    tenant: Option<&'a str>,
    issuer: Option<&'a str>,
    token_url: &'a str,
    scopes: &'a [String],
    /// not-connected, connected or needs-reconnecting.
    state: &'static str,
}

#[derive(Serialize)]
struct SendingView<'a> {
    address: &'a str,
    display_name: Option<&'a str>,
    smtp_host: &'a str,
    smtp_port: u16,
    smtp_tls: &'static str,
    smtp_auth: &'static str,
    smtp_user: &'a str,
    /// Whether SMTP signs in with a user and secret of its own (else the POP3 ones).
    smtp_own_user: bool,
    smtp_allow_insecure_auth: bool,
    acknowledge: bool,
}

#[derive(Serialize)]
struct FailingView {
    uid: String,
    size: u64,
    set_aside: bool,
    attempts: usize,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct RunView {
    id: i64,
    started_at: i64,
    finished_at: Option<i64>,
    outcome: String,
    listed: u64,
    downloaded: u64,
    deleted: u64,
    already_known: u64,
    too_large: u64,
    duplicates: u64,
    bytes: u64,
    error: Option<String>,
}

impl RunView {
    fn new(run: &FetchRun) -> RunView {
        RunView {
            id: run.id,
            started_at: run.started_at,
            finished_at: run.finished_at,
            outcome: run.outcome.to_string(),
            listed: run.counts.listed,
            downloaded: run.counts.downloaded,
            deleted: run.counts.deleted,
            already_known: run.counts.already_known,
            too_large: run.counts.too_large,
            duplicates: run.counts.duplicates,
            bytes: run.counts.bytes,
            error: run.error.clone(),
        }
    }
}

async fn last_run(store: &Store, mailbox: &Mailbox) -> anyhow::Result<Option<FetchRun>> {
    Ok(store.runs(mailbox.id, 1).await?.into_iter().next())
}

async fn list(store: &Store, json: bool) -> anyhow::Result<ExitCode> {
    let mailboxes = store.mailboxes().await?;
    let mut runs = Vec::with_capacity(mailboxes.len());
    for mailbox in &mailboxes {
        runs.push(last_run(store, mailbox).await?);
    }
    let views: Vec<MailboxView> = mailboxes
        .iter()
        .zip(&runs)
        .map(|(mailbox, run)| MailboxView::new(mailbox, run.as_ref()))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(ExitCode::SUCCESS);
    }
    if views.is_empty() {
        println!("no mailboxes yet; add one with `popdesk mailbox add NAME --host H --user U`");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<32} {:<9} {:<8} {:<8} LAST RUN",
        "NAME", "SERVER", "TLS", "POLICY", "STATE"
    );
    for view in &views {
        let state = if view.needs_attention.is_some() {
            "ATTENTION"
        } else if view.enabled {
            "enabled"
        } else {
            "disabled"
        };
        let last = view.last_run.as_ref().map_or("never".to_string(), |run| {
            format!("{} {}", output::time(run.started_at), run.outcome)
        });
        println!(
            "{:<20} {:<32} {:<9} {:<8} {:<8} {last}",
            view.name,
            format!("{}@{}:{}", view.user, view.host, view.port),
            view.tls,
            view.policy,
            state
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(store: &Store, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let mailbox = find(store, name).await?;
    let run = last_run(store, &mailbox).await?;
    let mut view = MailboxView::new(&mailbox, run.as_ref());
    view.cannot_download = store
        .failing_messages(mailbox.id)
        .await?
        .into_iter()
        .map(|m| FailingView {
            set_aside: m.is_set_aside(),
            attempts: m.attempts.len(),
            last_error: m.attempts.last().map(|a| a.error.clone()),
            uid: m.uid,
            size: m.size,
        })
        .collect();
    let provider = intake::Provider::for_host(&mailbox.settings.host);
    view.provider_notices = store
        .provider_notices(mailbox.id)
        .await?
        .iter()
        .map(|notice| NoticeView {
            kind: notice.kind.as_str(),
            messages: notice.last_count,
            total: notice.total,
            first_seen_at: notice.first_seen_at,
            last_seen_at: notice.last_seen_at,
            text: intake::notice::words(notice, provider).text(),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("name:        {}", view.name);
    println!("server:      {}:{} ({})", view.host, view.port, view.tls);
    println!("user:        {} (auth {})", view.user, view.auth);
    match view.delete_after_days {
        Some(days) => println!("policy:      keep, delete after {days} days"),
        None => println!("policy:      {}", view.policy),
    }
    println!("start:       {}", view.start);
    println!("batch:       {} messages", view.batch);
    println!(
        "size limit:  {} (larger: {})",
        output::size(view.max_size),
        view.oversize
    );
    if let Some(ca_file) = view.ca_file {
        println!("CA file:     {ca_file}");
    }
    if let Some(pin) = &view.trusted_certificate {
        println!("trusts:      the certificate with SHA-256 {pin}");
    }
    println!("polled:      every {} s", view.poll_interval_secs);
    if view.allow_insecure_auth {
        println!("insecure:    password allowed without TLS");
    }
    println!("enabled:     {}", if view.enabled { "yes" } else { "no" });
    match &view.sending {
        Some(sending) => {
            let from = match sending.display_name {
                Some(name) => format!("{name} <{}>", sending.address),
                None => sending.address.to_string(),
            };
            println!("sends as:    {from}");
            println!(
                "SMTP:        {}:{} ({}), user {}{} (auth {})",
                sending.smtp_host,
                sending.smtp_port,
                sending.smtp_tls,
                sending.smtp_user,
                if sending.smtp_own_user {
                    ""
                } else {
                    ", the POP3 login"
                },
                sending.smtp_auth
            );
            println!(
                "acknowledge: {}",
                if sending.acknowledge {
                    "new tickets"
                } else {
                    "no"
                }
            );
        }
        None => println!("sending:     off (add --address and --smtp-host to answer by email)"),
    }
    if let Some(oauth) = &view.oauth {
        println!(
            "oauth2:      {} ({}), client {}, {}",
            oauth.provider, oauth.flow, oauth.client_id, oauth.state
        );
        println!("scopes:      {}", oauth.scopes.join(" "));
        if oauth.state != "connected" {
            println!(
                "             connect it with `popdesk mailbox connect {}` or Connect on its page",
                view.name
            );
        }
    }
    if let Some(reason) = view.needs_attention {
        println!("ATTENTION:   {reason}");
    }
    for failing in &view.cannot_download {
        println!(
            "CANNOT DOWNLOAD: message {} ({}), {} after {} attempts: {}{}",
            failing.uid,
            output::size(failing.size),
            if failing.set_aside {
                "set aside"
            } else {
                "being retried"
            },
            failing.attempts,
            failing.last_error.as_deref().unwrap_or("no error recorded"),
            if failing.set_aside {
                format!(
                    " (`popdesk mailbox try-again {} {}` once the server is fixed)",
                    view.name, failing.uid
                )
            } else {
                String::new()
            }
        );
    }
    // Calm, after any problem: the provider's ways are information, not errors.
    for notice in &view.provider_notices {
        println!(
            "notice:      {} (since {}, last seen {})",
            notice.text,
            output::time(notice.first_seen_at),
            output::time(notice.last_seen_at)
        );
    }
    match &view.last_run {
        Some(run) => println!(
            "last run:    {} {}{}",
            output::time(run.started_at),
            run.outcome,
            run.error
                .as_ref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        ),
        None => println!("last run:    never"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn test(admin: &Administration, name: &str) -> anyhow::Result<ExitCode> {
    let mailbox = admin.mailbox_named(name).await.map_err(refusal)?;
    let probe = match admin.test_mailbox(mailbox.id).await.map_err(refusal)? {
        ConnectionReport::Connected(found) => found,
        ConnectionReport::Failed(problem) => {
            bail!("{} (details: {})", problem.summary, problem.detail);
        }
    };
    println!("server:       {}", probe.greeting);
    println!(
        "connection:   {}",
        if probe.encrypted {
            "encrypted (TLS)"
        } else {
            "NOT encrypted"
        }
    );
    println!("logged in:    with {}", probe.auth_method);
    println!("capabilities: {}", probe.capabilities.join(", "));
    println!(
        "mailbox:      {} messages, {}",
        probe.messages,
        output::size(probe.size)
    );
    if !probe.has_uidl {
        println!("note:         the server has no UIDL, so only the delete policy works");
    }
    Ok(ExitCode::SUCCESS)
}

async fn fetch(
    store: &Store,
    name: Option<&str>,
    all: bool,
    process: bool,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    let mailboxes = if all {
        store
            .mailboxes()
            .await?
            .into_iter()
            .filter(|m| m.settings.enabled)
            .collect()
    } else {
        vec![find(store, name.unwrap_or_default()).await?]
    };
    let mut worst = ExitCode::SUCCESS;
    for mailbox in &mailboxes {
        let bar = progress_bar(&mailbox.settings.name);
        let mut fetcher = Fetcher::new(store.clone(), Arc::new(SystemClock));
        if process {
            fetcher = fetcher.with_processor(crate::commands::tickets::processor(store, common));
        }
        if let Some(bar) = bar.clone() {
            fetcher = fetcher.with_progress(move |progress| {
                bar.set_length(progress.total);
                bar.set_position(progress.done);
                bar.set_message(output::size(progress.bytes));
            });
        }
        let report = fetcher.fetch(mailbox).await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let report = match report {
            Ok(report) => report,
            Err(error) => {
                eprintln!("{}: {error}", mailbox.settings.name);
                worst = exit_for(worst, &error.outcome());
                continue;
            }
        };
        let c = &report.counts;
        let p = &report.processing;
        let mut summary = format!(
            "{}: {} downloaded ({}), {} deleted, {} already known, {} too large, {} duplicates",
            mailbox.settings.name,
            c.downloaded,
            output::size(c.bytes),
            c.deleted,
            c.already_known,
            c.too_large,
            c.duplicates
        );
        if p.processed + p.ignored + p.failed > 0 {
            summary.push_str(&format!(
                "; {} to tickets ({} new), {} ignored, {} failed",
                p.processed, p.tickets_opened, p.ignored, p.failed
            ));
        }
        match &report.error {
            None => println!("{summary}"),
            Some(error) => {
                println!("{summary}; {}", report.outcome);
                eprintln!("{}: {error}", mailbox.settings.name);
                // The error speaks of the mailbox's page; here the command does it.
                if let Ok(Some(after)) = store.mailbox_by_id(mailbox.id).await
                    && matches!(
                        after.oauth_state,
                        Some(
                            store::OAuthState::NotConnected | store::OAuthState::NeedsReconnecting
                        )
                    )
                    && after
                        .settings
                        .oauth
                        .as_ref()
                        .is_some_and(|o| o.flow != store::OAuthFlow::ClientCredentials)
                {
                    eprintln!(
                        "{}: connect it with `popdesk mailbox connect {}`",
                        mailbox.settings.name, mailbox.settings.name
                    );
                }
                worst = exit_for(worst, &report.outcome);
            }
        }
    }
    Ok(worst)
}

fn exit_for(current: ExitCode, outcome: &RunOutcome) -> ExitCode {
    match outcome {
        RunOutcome::Success | RunOutcome::Running => current,
        RunOutcome::Permanent => ExitCode::FAILURE,
        _ if current == ExitCode::SUCCESS => ExitCode::from(EXIT_TEMPORARY),
        _ => current,
    }
}

fn progress_bar(name: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} messages, {msg}")
        .ok()?
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(name.to_string());
    Some(bar)
}

async fn runs(store: &Store, name: &str, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    let mailbox = find(store, name).await?;
    let runs = store.runs(mailbox.id, limit).await?;
    let views: Vec<RunView> = runs.iter().map(RunView::new).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(ExitCode::SUCCESS);
    }
    if views.is_empty() {
        println!("{name} has not been fetched yet");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<6} {:<19} {:<11} {:>6} {:>10} {:>7} {:>6} {:>6} {:>5}  ERROR",
        "RUN", "STARTED", "OUTCOME", "LISTED", "DOWNLOADED", "DELETED", "KNOWN", "LARGE", "DUPS"
    );
    for run in &views {
        println!(
            "{:<6} {:<19} {:<11} {:>6} {:>10} {:>7} {:>6} {:>6} {:>5}  {}",
            run.id,
            output::time(run.started_at),
            run.outcome,
            run.listed,
            run.downloaded,
            run.deleted,
            run.already_known,
            run.too_large,
            run.duplicates,
            run.error.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
