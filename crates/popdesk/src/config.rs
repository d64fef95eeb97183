//! Configuration: a TOML file (`--config`), then environment variables, then flags.
//! A flag overrides its environment variable, which overrides the file, which overrides
//! the built-in default. clap reads a flag or its variable (flag first); this module
//! fills in what neither gave from the file, then from the defaults.
//!
//! Every key is documented in the README's configuration table; keep the two together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::cli::{Cli, LogFormat, ServeArgs};

/// The file's keys. Unknown keys are refused: a typo must not silently fall back to a
/// default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data: Option<PathBuf>,
    pub database_url: Option<String>,
    pub blob_store: Option<String>,
    pub log: Option<String>,
    pub log_format: Option<LogFormat>,
    pub listen: Option<SocketAddr>,
    pub secure_cookies: Option<bool>,
    pub session_hours: Option<u64>,
    pub session_idle_minutes: Option<u64>,
    pub metrics_public: Option<bool>,
    pub trusted_origins: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<String>>,
    pub header_timeout_secs: Option<u64>,
    pub public_url: Option<String>,
    pub max_connections: Option<usize>,
    pub max_concurrent_fetches: Option<usize>,
    pub backoff_max_secs: Option<u64>,
    pub lease_ttl_secs: Option<u64>,
    pub ticket_prefix: Option<String>,
    pub own_addresses: Option<Vec<String>>,
    pub send_retry_hours: Option<f64>,
    pub send_first_retry_secs: Option<u64>,
    pub send_claim_secs: Option<u64>,
    pub max_attachments_mb: Option<u64>,
    pub acknowledge_period_hours: Option<f64>,
    pub acknowledgement_text: Option<String>,
}

impl FileConfig {
    /// Reads the file, or the empty configuration when none is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        let mut config: FileConfig = toml::from_str(&text)
            .with_context(|| format!("the configuration file {} is not valid", path.display()))?;
        // A relative data folder in a file means "next to this file", wherever popdesk
        // is started from.
        if let Some(data) = &config.data
            && data.is_relative()
            && let Some(folder) = path.parent()
        {
            config.data = Some(folder.join(data));
        }
        Ok(config)
    }
}

/// Settings every command uses.
#[derive(Debug, Clone)]
pub struct Common {
    pub data: PathBuf,
    pub database_url: Option<String>,
    pub blob_store: store::BlobBackend,
    pub log: Option<String>,
    pub log_format: LogFormat,
    pub ticket_prefix: String,
    pub own_addresses: Vec<String>,
    pub outgoing: OutgoingSettings,
}

/// How replies and acknowledgements are written and sent.
#[derive(Debug, Clone)]
pub struct OutgoingSettings {
    /// Temporary failures are retried this long after a reply is queued.
    pub retry_for: Duration,
    /// The first pause after a temporary failure (it doubles, up to an hour).
    pub first_retry: Duration,
    /// How long a sender holds the messages it claimed.
    pub claim: Duration,
    pub max_attachments_bytes: u64,
    /// `public_url` (the file's, or `POPDESK_PUBLIC_URL`): agents' notifications link to
    /// tickets under it. `serve` uses its own, which a flag may set.
    pub public_url: Option<web::PublicUrl>,
    pub acknowledge_period: Duration,
    pub acknowledgement_text: String,
}

/// Settings of `popdesk serve`.
#[derive(Debug, Clone)]
pub struct Service {
    pub listen: SocketAddr,
    pub secure_cookies: bool,
    pub session_ttl: Duration,
    pub session_idle_timeout: Duration,
    pub metrics_public: bool,
    pub trusted_origins: Vec<String>,
    /// Proxies whose X-Forwarded-For names the client.
    pub trusted_proxies: Vec<web::TrustedProxy>,
    /// Where OAuth2 providers send the admin's browser back to (`/oauth/callback`).
    pub public_url: Option<web::PublicUrl>,
    pub connections: ConnectionLimits,
    pub max_concurrent_fetches: usize,
    pub backoff_max: Duration,
    pub lease_ttl: Duration,
}

/// What one HTTP client may hold: how long it may take to send a request's headers (or
/// sit idle between requests), and how many connections are served at once.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Long enough for a slow mobile link to send a few hundred bytes of headers; short
/// enough that idle or dribbling connections free their slot quickly.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;

/// A sign-in unused for half a day ends: a working day's pauses keep it, a browser left
/// signed in overnight does not.
pub const DEFAULT_SESSION_IDLE_MINUTES: u64 = 12 * 60;
/// Far above what a team's browsers open, well below the usual 1024 open files.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

pub const DEFAULT_DATA: &str = "popdesk-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

pub fn common(cli: &Cli, file: &FileConfig) -> anyhow::Result<Common> {
    let ticket_prefix = cli
        .ticket_prefix
        .clone()
        .or_else(|| file.ticket_prefix.clone())
        .map(|prefix| prefix.trim().to_string())
        .filter(|prefix| !prefix.is_empty())
        .unwrap_or_else(|| "#".to_string());
    let hours = |value: f64, key: &str| -> anyhow::Result<Duration> {
        if !(value.is_finite() && value > 0.0 && value <= 24.0 * 365.0) {
            bail!("{key} must be a number of hours between 0 and 8760");
        }
        Ok(Duration::from_secs_f64(value * 3600.0))
    };
    let retry_for = hours(
        cli.send_retry_hours
            .or(file.send_retry_hours)
            .unwrap_or(24.0),
        "send_retry_hours",
    )?;
    let first_retry_secs = cli
        .send_first_retry_secs
        .or(file.send_first_retry_secs)
        .unwrap_or(60);
    if first_retry_secs == 0 {
        bail!("send_first_retry_secs must be at least 1");
    }
    let claim_secs = cli.send_claim_secs.or(file.send_claim_secs).unwrap_or(300);
    if claim_secs == 0 {
        bail!("send_claim_secs must be at least 1");
    }
    let max_attachments_mb = file.max_attachments_mb.unwrap_or(25);
    if max_attachments_mb == 0 {
        bail!("max_attachments_mb must be at least 1");
    }
    let outgoing = OutgoingSettings {
        retry_for,
        first_retry: Duration::from_secs(first_retry_secs),
        claim: Duration::from_secs(claim_secs),
        max_attachments_bytes: max_attachments_mb * 1024 * 1024,
        public_url: std::env::var("POPDESK_PUBLIC_URL")
            .ok()
            .or_else(|| file.public_url.clone())
            .filter(|url| !url.trim().is_empty())
            .map(|url| web::PublicUrl::parse(&url))
            .transpose()?,
        acknowledge_period: hours(
            file.acknowledge_period_hours.unwrap_or(24.0),
            "acknowledge_period_hours",
        )?,
        acknowledgement_text: file
            .acknowledgement_text
            .clone()
            .filter(|text| !text.trim().is_empty())
            .unwrap_or_else(|| outgoing::acknowledge::DEFAULT_TEXT.to_string()),
    };
    let blob_store = match cli.blob_store.as_deref().or(file.blob_store.as_deref()) {
        None => store::BlobBackend::Files,
        Some(word) => word.parse().map_err(|_| {
            anyhow::anyhow!("blob_store must be \"files\" or \"postgres\", not \"{word}\"")
        })?,
    };
    Ok(Common {
        outgoing,
        blob_store,
        data: cli
            .data
            .clone()
            .or_else(|| file.data.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA)),
        database_url: cli
            .database_url
            .clone()
            .or_else(|| file.database_url.clone()),
        log: file.log.clone(),
        log_format: cli.log_format.or(file.log_format).unwrap_or_default(),
        ticket_prefix,
        own_addresses: if cli.own_addresses.is_empty() {
            file.own_addresses.clone().unwrap_or_default()
        } else {
            cli.own_addresses.clone()
        },
    })
}

pub fn service(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<Service> {
    let listen = match args.listen.or(file.listen) {
        Some(listen) => listen,
        None => DEFAULT_LISTEN
            .parse()
            .context("the default listen address")?,
    };
    let session_hours = args.session_hours.or(file.session_hours).unwrap_or(24 * 7);
    if session_hours == 0 {
        bail!("session_hours must be at least 1");
    }
    let session_idle_minutes = args
        .session_idle_minutes
        .or(file.session_idle_minutes)
        .unwrap_or(DEFAULT_SESSION_IDLE_MINUTES);
    if !(5..=525_600).contains(&session_idle_minutes) {
        bail!("session_idle_minutes must be between 5 and 525600 (a year)");
    }
    let max_concurrent_fetches = args
        .max_concurrent_fetches
        .or(file.max_concurrent_fetches)
        .unwrap_or(4);
    if max_concurrent_fetches == 0 {
        bail!("max_concurrent_fetches must be at least 1");
    }
    let backoff_max_secs = args
        .backoff_max_secs
        .or(file.backoff_max_secs)
        .unwrap_or(1800);
    if backoff_max_secs < 30 {
        bail!("backoff_max_secs must be at least 30");
    }
    let lease_ttl_secs = args
        .lease_ttl_secs
        .or(file.lease_ttl_secs)
        .unwrap_or(intake::DEFAULT_LEASE_TTL.as_secs());
    if !(6..=600).contains(&lease_ttl_secs) {
        bail!("lease_ttl_secs must be between 6 and 600");
    }
    let header_timeout_secs = args
        .header_timeout_secs
        .or(file.header_timeout_secs)
        .unwrap_or(DEFAULT_HEADER_TIMEOUT_SECS);
    if !(1..=300).contains(&header_timeout_secs) {
        bail!("header_timeout_secs must be between 1 and 300");
    }
    let max_connections = args
        .max_connections
        .or(file.max_connections)
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if !(1..=1_000_000).contains(&max_connections) {
        bail!("max_connections must be between 1 and 1000000");
    }
    let proxies = if args.trusted_proxies.is_empty() {
        file.trusted_proxies.clone().unwrap_or_default()
    } else {
        args.trusted_proxies.clone()
    };
    let trusted_proxies = proxies
        .iter()
        .map(|proxy| proxy.parse::<web::TrustedProxy>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| anyhow::anyhow!("trusted_proxies: {error}"))?;
    let public_url = args
        .public_url
        .as_deref()
        .or(file.public_url.as_deref())
        .filter(|url| !url.trim().is_empty())
        .map(web::PublicUrl::parse)
        .transpose()?;
    Ok(Service {
        listen,
        trusted_proxies,
        public_url,
        connections: ConnectionLimits {
            header_timeout: Duration::from_secs(header_timeout_secs),
            max_connections,
        },
        secure_cookies: args.secure_cookies.or(file.secure_cookies).unwrap_or(false),
        session_ttl: Duration::from_secs(session_hours * 3600),
        session_idle_timeout: Duration::from_secs(session_idle_minutes * 60),
        metrics_public: args.metrics_public.or(file.metrics_public).unwrap_or(false),
        trusted_origins: if args.trusted_origins.is_empty() {
            file.trusted_origins.clone().unwrap_or_default()
        } else {
            args.trusted_origins.clone()
        },
        max_concurrent_fetches,
        backoff_max: Duration::from_secs(backoff_max_secs),
        lease_ttl: Duration::from_secs(lease_ttl_secs),
    })
}

impl Common {
    /// Outgoing mail with these settings.
    pub fn outgoing(&self, store: &store::Store) -> outgoing::Outgoing {
        let o = &self.outgoing;
        outgoing::Outgoing::new(
            store.clone(),
            outgoing::ReplyConfig {
                ticket_prefix: self.ticket_prefix.clone(),
                max_attachments_bytes: o.max_attachments_bytes,
            },
            outgoing::AcknowledgementConfig {
                ticket_prefix: self.ticket_prefix.clone(),
                period: o.acknowledge_period,
                text: o.acknowledgement_text.clone(),
            },
            outgoing::SenderConfig {
                retry_for: o.retry_for,
                first_retry: o.first_retry,
                claim: o.claim,
                ..outgoing::SenderConfig::default()
            },
        )
        .with_public_url(o.public_url.as_ref().map(web::PublicUrl::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn file(text: &str) -> FileConfig {
        toml::from_str(text).expect("valid test configuration")
    }

    fn serve_args(cli: &Cli) -> &ServeArgs {
        match &cli.command {
            crate::cli::Command::Serve(args) => args,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn a_flag_overrides_the_file_which_overrides_the_default() {
        let from_file = file(
            "listen = \"127.0.0.1:9000\"\nmax_concurrent_fetches = 2\nsecure_cookies = true\n\
             ticket_prefix = \"PD-\"\ndata = \"/srv/popdesk\"\n",
        );
        let cli = Cli::try_parse_from(["popdesk", "serve", "--listen", "127.0.0.1:9100"])
            .expect("parses");
        let resolved = service(serve_args(&cli), &from_file).expect("valid");
        assert_eq!(resolved.listen.port(), 9100, "the flag wins");
        assert_eq!(resolved.max_concurrent_fetches, 2, "the file fills in");
        assert!(resolved.secure_cookies);
        assert_eq!(
            resolved.backoff_max,
            Duration::from_secs(1800),
            "the default"
        );
        let common = common(&cli, &from_file).expect("valid");
        assert_eq!(common.ticket_prefix, "PD-");
        assert_eq!(common.data, PathBuf::from("/srv/popdesk"));

        let cli = Cli::try_parse_from(["popdesk", "serve"]).expect("parses");
        let defaults = service(serve_args(&cli), &FileConfig::default()).expect("valid");
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
        assert!(!defaults.secure_cookies);
        assert_eq!(common_of(&cli).data, PathBuf::from(DEFAULT_DATA));
    }

    fn common_of(cli: &Cli) -> Common {
        common(cli, &FileConfig::default()).expect("valid")
    }

    #[test]
    fn the_blob_store_comes_from_the_flag_or_the_file_and_is_checked() {
        let cli = Cli::try_parse_from(["popdesk", "serve"]).expect("parses");
        assert_eq!(common_of(&cli).blob_store, store::BlobBackend::Files);
        let resolved = common(&cli, &file("blob_store = \"postgres\"")).expect("valid");
        assert_eq!(resolved.blob_store, store::BlobBackend::Postgres);
        let cli =
            Cli::try_parse_from(["popdesk", "--blob-store", "files", "serve"]).expect("parses");
        let resolved = common(&cli, &file("blob_store = \"postgres\"")).expect("valid");
        assert_eq!(
            resolved.blob_store,
            store::BlobBackend::Files,
            "the flag wins"
        );
        let cli = Cli::try_parse_from(["popdesk", "serve"]).expect("parses");
        let error = common(&cli, &file("blob_store = \"s3\"")).expect_err("refused");
        assert!(error.to_string().contains("blob_store"), "{error}");
    }

    #[test]
    fn a_typo_in_the_file_is_an_error_not_a_default() {
        let error = toml::from_str::<FileConfig>("listn = \"127.0.0.1:1\"")
            .expect_err("unknown key refused");
        assert!(error.to_string().contains("listn"), "{error}");
    }

    #[test]
    fn nonsense_values_are_refused_with_the_key_named() {
        let cli = Cli::try_parse_from(["popdesk", "serve"]).expect("parses");
        let error = service(serve_args(&cli), &file("max_concurrent_fetches = 0"))
            .expect_err("zero refused");
        assert!(error.to_string().contains("max_concurrent_fetches"));
        let error = service(serve_args(&cli), &file("lease_ttl_secs = 2")).expect_err("too short");
        assert!(error.to_string().contains("lease_ttl_secs"), "{error}");
        let defaults = service(serve_args(&cli), &FileConfig::default()).expect("valid");
        assert_eq!(defaults.lease_ttl, Duration::from_secs(30));
    }

    #[test]
    fn connection_limits_and_proxies_have_safe_defaults_and_are_checked() {
        let cli = Cli::try_parse_from(["popdesk", "serve"]).expect("parses");
        let defaults = service(serve_args(&cli), &FileConfig::default()).expect("valid");
        assert_eq!(
            defaults.connections.header_timeout,
            Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS)
        );
        assert_eq!(
            defaults.connections.max_connections,
            DEFAULT_MAX_CONNECTIONS
        );
        assert!(
            defaults.trusted_proxies.is_empty(),
            "no proxy is trusted by default"
        );
        let from_file = file(
            "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nheader_timeout_secs = 5\nmax_connections = 64\n",
        );
        let resolved = service(serve_args(&cli), &from_file).expect("valid");
        assert_eq!(resolved.trusted_proxies.len(), 2);
        assert_eq!(resolved.connections.max_connections, 64);
        let cli = Cli::try_parse_from(["popdesk", "serve", "--trusted-proxies", "proxy.local"])
            .expect("parses");
        let error = service(serve_args(&cli), &FileConfig::default()).expect_err("refused");
        assert!(error.to_string().contains("trusted_proxies"), "{error}");
        let cli = Cli::try_parse_from(["popdesk", "serve"]).expect("parses");
        let error =
            service(serve_args(&cli), &file("header_timeout_secs = 0")).expect_err("refused");
        assert!(error.to_string().contains("header_timeout_secs"), "{error}");
    }

    #[test]
    fn public_url_comes_from_the_flag_or_the_file_and_is_checked() {
        let cli = Cli::try_parse_from(["popdesk", "serve"]).expect("parses");
        let defaults = service(serve_args(&cli), &FileConfig::default()).expect("valid");
        assert_eq!(defaults.public_url, None);
        let resolved = service(
            serve_args(&cli),
            &file("public_url = \"https://desk.example.com/\""),
        )
        .expect("valid");
        assert_eq!(
            resolved.public_url.map(|u| u.redirect_uri()).as_deref(),
            Some("https://desk.example.com/oauth/callback")
        );
        let cli =
            Cli::try_parse_from(["popdesk", "serve", "--public-url", "http://127.0.0.1:8080"])
                .expect("parses");
        let resolved = service(
            serve_args(&cli),
            &file("public_url = \"https://desk.example.com\""),
        )
        .expect("valid");
        assert_eq!(
            resolved.public_url.as_ref().map(web::PublicUrl::as_str),
            Some("http://127.0.0.1:8080"),
            "the flag wins"
        );
        let cli = Cli::try_parse_from(["popdesk", "serve"]).expect("parses");
        let error = service(
            serve_args(&cli),
            &file("public_url = \"https://desk.example.com/?x=1\""),
        )
        .expect_err("refused");
        assert!(error.to_string().contains("public_url"), "{error}");
    }

    #[test]
    fn the_session_idle_timeout_has_a_default_and_is_checked() {
        let cli = Cli::try_parse_from(["popdesk", "serve"]).expect("parses");
        let defaults = service(serve_args(&cli), &FileConfig::default()).expect("valid");
        assert_eq!(
            defaults.session_idle_timeout,
            Duration::from_secs(DEFAULT_SESSION_IDLE_MINUTES * 60)
        );
        let resolved =
            service(serve_args(&cli), &file("session_idle_minutes = 30")).expect("valid");
        assert_eq!(resolved.session_idle_timeout, Duration::from_secs(30 * 60));
        let cli = Cli::try_parse_from(["popdesk", "serve", "--session-idle-minutes", "45"])
            .expect("parses");
        let resolved =
            service(serve_args(&cli), &file("session_idle_minutes = 30")).expect("valid");
        assert_eq!(resolved.session_idle_timeout, Duration::from_secs(45 * 60));
        let cli = Cli::try_parse_from(["popdesk", "serve"]).expect("parses");
        let error =
            service(serve_args(&cli), &file("session_idle_minutes = 1")).expect_err("refused");
        assert!(
            error.to_string().contains("session_idle_minutes"),
            "{error}"
        );
    }

    #[test]
    fn a_relative_data_folder_in_a_file_is_next_to_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("popdesk.toml");
        std::fs::write(&path, "data = \"var\"\n").expect("write");
        let config = FileConfig::load(Some(&path)).expect("loads");
        assert_eq!(config.data, Some(dir.path().join("var")));
        let missing = FileConfig::load(Some(&dir.path().join("nope.toml")))
            .expect_err("a missing file is an error");
        assert!(format!("{missing:#}").contains("nope.toml"));
    }
}
