//! The command line. Later issues and users script against these names: change with care.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "popdesk", version, about = "Helpdesk email intake over POP3")]
pub struct Cli {
    /// A TOML configuration file (see the README); flags and environment variables
    /// override what it says.
    #[arg(long, env = "POPDESK_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// The data folder: database, raw messages, key file [default: popdesk-data].
    #[arg(long, env = "POPDESK_DATA", global = true)]
    pub data: Option<PathBuf>,

    /// A PostgreSQL URL instead of the embedded SQLite database in the data folder.
    #[arg(
        long,
        env = "POPDESK_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Where raw messages are kept: `files` in the data folder, or `postgres` in the
    /// database (several nodes without a shared disk; needs --database-url)
    /// [default: files].
    #[arg(long, env = "POPDESK_BLOB_STORE", global = true)]
    pub blob_store: Option<String>,

    /// More detail in the log (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Log lines as text (default) or as JSON objects, one per line.
    #[arg(long, env = "POPDESK_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,

    /// What stands before the number in subject references: `[#1234]` [default: #].
    #[arg(long, env = "POPDESK_TICKET_PREFIX", global = true)]
    pub ticket_prefix: Option<String>,

    /// Addresses popdesk receives at, besides the mailboxes' own: mail from them never
    /// becomes a ticket (the loop guard). Comma-separated.
    #[arg(
        long,
        env = "POPDESK_OWN_ADDRESSES",
        value_delimiter = ',',
        global = true
    )]
    pub own_addresses: Vec<String>,

    /// How long a reply that meets temporary failures (4xx, network) is retried, in hours
    /// [default: 24].
    #[arg(long, env = "POPDESK_SEND_RETRY_HOURS", global = true)]
    pub send_retry_hours: Option<f64>,

    /// The first pause after a temporary sending failure, in seconds; it doubles after
    /// each one, up to an hour [default: 60].
    #[arg(long, env = "POPDESK_SEND_FIRST_RETRY_SECS", global = true)]
    pub send_first_retry_secs: Option<u64>,

    /// How long a sender holds the messages it took from the outbox, in seconds; a
    /// sender that dies leaves them to another after this [default: 300].
    #[arg(long, env = "POPDESK_SEND_CLAIM_SECS", global = true)]
    pub send_claim_secs: Option<u64>,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

// The mailbox options make one variant large; the parsed command exists once, on the
// stack of `main`, so boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: web UI and API, the scheduler that polls every mailbox, and the
    /// processor, in one process. Stops cleanly on SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// People who sign in to popdesk.
    #[command(subcommand)]
    User(UserCommand),
    /// Support mailboxes popdesk fetches from.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Turn stored messages that wait for it into tickets (`mailbox fetch` does this
    /// while it fetches too).
    Process,
    /// Tickets made from incoming mail.
    #[command(subcommand)]
    Ticket(TicketCommand),
    /// Stored messages and what processing did with them.
    #[command(subcommand)]
    Message(MessageCommand),
    /// Outgoing mail: replies and acknowledgements, and whether they were sent.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// The key that seals mailbox passwords and tokens at rest.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// The raw messages' store.
    #[command(subcommand)]
    Blobs(BlobsCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Replace the key: a new random key in secret.key, every stored secret re-sealed
    /// with it in one transaction (the old key stays until that commits). Restart
    /// `popdesk serve` afterwards.
    Rotate {
        /// When the key comes from POPDESK_SECRET_KEY: re-seal with the key (base64 of
        /// 32 bytes) in this other variable; then set POPDESK_SECRET_KEY to it.
        #[arg(long, value_name = "VAR")]
        new_key_env: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BlobsCommand {
    /// Move every raw message to the other blob store, checking each one's sha256.
    /// Safe to run while `serve` runs (nodes read both places until they are restarted
    /// with the new blob_store) and to run again after an interruption: it carries on.
    Migrate {
        /// Where the raw messages go: `postgres` or `files`.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port of the web UI and API [default: 127.0.0.1:8080].
    #[arg(long, env = "POPDESK_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Mark the session cookie Secure: turn on when users reach popdesk over https.
    #[arg(long, env = "POPDESK_SECURE_COOKIES", num_args = 0..=1, default_missing_value = "true")]
    pub secure_cookies: Option<bool>,
    /// How long a sign-in lasts, in hours [default: 168].
    #[arg(long, env = "POPDESK_SESSION_HOURS")]
    pub session_hours: Option<u64>,
    /// Minutes a sign-in may go unused before it ends, 5 to 525600 [default: 720].
    #[arg(long, env = "POPDESK_SESSION_IDLE_MINUTES")]
    pub session_idle_minutes: Option<u64>,
    /// Serve /metrics without credentials (for Prometheus on a trusted network).
    #[arg(long, env = "POPDESK_METRICS_PUBLIC", num_args = 0..=1, default_missing_value = "true")]
    pub metrics_public: Option<bool>,
    /// Other origins (https://desk.example.com) whose requests are trusted. Comma-separated.
    #[arg(long, env = "POPDESK_TRUSTED_ORIGINS", value_delimiter = ',')]
    pub trusted_origins: Vec<String>,
    /// Reverse proxies (IP addresses or CIDR networks, like 10.0.0.0/8) whose
    /// X-Forwarded-For names the client, for the sign-in limit. Comma-separated.
    #[arg(long, env = "POPDESK_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Seconds a client may take to send a request's headers, or sit idle between
    /// requests, before its connection is closed [default: 10].
    #[arg(long, env = "POPDESK_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Connections served at once; more wait until one closes [default: 512].
    #[arg(long, env = "POPDESK_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// The address admins open popdesk at, e.g. https://desk.example.com. OAuth2
    /// providers send the browser back to {public_url}/oauth/callback.
    #[arg(long, env = "POPDESK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How many mailboxes are fetched at the same time [default: 4].
    #[arg(long, env = "POPDESK_MAX_CONCURRENT_FETCHES")]
    pub max_concurrent_fetches: Option<usize>,
    /// The longest wait between retries of a failing mailbox, in seconds [default: 1800].
    #[arg(long, env = "POPDESK_BACKOFF_MAX_SECS")]
    pub backoff_max_secs: Option<u64>,
    /// Seconds a mailbox's lease outlives its holder's last renewal, 6 to 600: how long a
    /// node that died keeps its mailboxes from the other nodes [default: 30].
    #[arg(long, env = "POPDESK_LEASE_TTL_SECS")]
    pub lease_ttl_secs: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (the first admin of a new install, typically).
    Add {
        email: String,
        #[arg(long, value_enum, default_value = "agent")]
        role: RoleArg,
        /// The name shown in ticket histories.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from this environment variable instead of asking for it.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (ends their sessions).
    Password {
        email: String,
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
    /// Show the mailboxes a user works, or set them: an agent sees the tickets and mail
    /// of these only (admins see every mailbox).
    Mailboxes {
        email: String,
        /// Replace them with these mailboxes, by name or id, separated by commas
        /// (`--set ""` takes all away).
        #[arg(long, value_name = "ID_OR_NAME,...")]
        set: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Agent,
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// List tickets, most recently active first.
    List {
        #[arg(long, value_enum)]
        status: Option<TicketStatusArg>,
        /// Only this mailbox's tickets.
        #[arg(long)]
        mailbox: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show a ticket and its thread.
    Show {
        number: i64,
        #[arg(long)]
        json: bool,
    },
    /// Answer the customer by email: the reply is queued in the outbox and sent at once.
    /// Exits 0 when the server accepted it, 75 when it stays queued for a retry.
    Reply(ReplyArgs),
    /// Give a ticket to an agent or admin (by the address they sign in with), or with
    /// --none to nobody.
    Assign {
        number: i64,
        #[arg(required_unless_present = "none", conflicts_with = "none")]
        email: Option<String>,
        /// Unassign: the ticket belongs to nobody.
        #[arg(long)]
        none: bool,
    },
}

#[derive(Debug, Args)]
pub struct ReplyArgs {
    pub number: i64,
    /// The reply's text from this file (`-` for standard input).
    #[arg(long, conflicts_with = "body", required_unless_present = "body")]
    pub body_file: Option<PathBuf>,
    /// The reply's text.
    #[arg(long)]
    pub body: Option<String>,
    /// Also send to this address (repeat for more).
    #[arg(long, value_name = "ADDR")]
    pub cc: Vec<String>,
    /// Keep the customer's Cc (minus popdesk's own addresses).
    #[arg(long)]
    pub reply_all: bool,
    /// Attach this file (repeat for more).
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// The ticket's status once the reply is queued [default: pending].
    #[arg(long, value_enum)]
    pub status: Option<TicketStatusArg>,
    /// Queue it only; `popdesk serve` (or `outbox send`) sends it.
    #[arg(long)]
    pub no_send: bool,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Outgoing messages (replies, acknowledgements), newest first.
    List {
        #[arg(long, value_enum)]
        state: Option<OutboxStateArg>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Queue a failed message again ("Send again": the same message, the same Message-ID)
    /// and send it now.
    Retry { id: i64 },
    /// Send everything that is due now (what `popdesk serve` does on its own).
    Send,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutboxStateArg {
    Queued,
    Sent,
    Failed,
}

#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// List stored messages with their processing status, newest first.
    List {
        #[arg(long, value_enum)]
        status: Option<MessageStatusArg>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show a stored message's processing record.
    Show { id: i64 },
    /// Write the exact stored bytes of a message to standard output.
    Raw { id: i64 },
    /// Process a message again (or every failed one).
    Reprocess {
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        id: Option<i64>,
        #[arg(long)]
        failed: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TicketStatusArg {
    New,
    Open,
    Pending,
    Resolved,
    Closed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MessageStatusArg {
    Pending,
    Processed,
    Ignored,
    Failed,
}

#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Add a mailbox.
    Add(AddMailbox),
    /// Change a mailbox's settings (only the options given change). Changing where the
    /// password goes (host, port, TLS, user, auth, CA file, fingerprint, insecure auth)
    /// needs the password again.
    Update(UpdateMailbox),
    /// List mailboxes.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one mailbox's settings and state (never its password).
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Connect the mailbox to its OAuth2 provider: the device-code flow (prints a URL and
    /// a code to approve there, waits until it is approved), or for a client-credentials
    /// mailbox its first app-only token. Also the way to reconnect.
    Connect { name: String },
    /// Connect and log in, print what the server offers; changes nothing.
    Test { name: String },
    /// Connect to the mailbox's SMTP server, start TLS, sign in and QUIT: whether replies
    /// can leave. No mail is sent.
    TestSending { name: String },
    /// Fetch new mail now (one run).
    Fetch {
        /// The mailbox to fetch.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Fetch every enabled mailbox, one after another.
        #[arg(long)]
        all: bool,
        /// Only store the mail; leave turning it into tickets to `popdesk process`.
        #[arg(long)]
        no_process: bool,
    },
    /// Recent fetch runs of a mailbox, newest first.
    Runs {
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Retrieve a set-aside message once more at the next fetch (after the server was fixed).
    TryAgain {
        name: String,
        /// The message's UIDL, as `mailbox show` lists it.
        uid: String,
    },
    /// Remove a mailbox (its stored messages are kept).
    Remove { name: String },
}

/// A mailbox's settings on the command line, for `add` and `update`. Choices are text
/// and numbers are as typed: the administration service checks them, with the same
/// rules and the same refusals as the API and the web UI.
#[derive(Debug, Args, Default)]
pub struct MailboxOptions {
    #[arg(long)]
    pub host: Option<String>,
    /// Defaults to 995 for implicit TLS, 110 otherwise.
    #[arg(long)]
    pub port: Option<u64>,
    /// implicit (TLS from the start, the default), starttls, or none.
    #[arg(long)]
    pub tls: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    /// Read the password (or OAuth token) from this environment variable.
    #[arg(long, conflicts_with = "password_file")]
    pub password_env: Option<String>,
    /// Read the password (or OAuth token) from the first line of this file.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// auto (the default), user, apop, plain, login, cram-md5, xoauth2, oauthbearer.
    #[arg(long)]
    pub auth: Option<String>,
    /// delete (the default): remove mail from the server once stored; keep: leave it there.
    #[arg(long)]
    pub policy: Option<String>,
    /// With --policy keep: delete from the server this many days after storing.
    #[arg(long, conflicts_with = "keep_forever")]
    pub delete_after: Option<u64>,
    /// With --policy keep: never delete (clears --delete-after).
    #[arg(long)]
    pub keep_forever: bool,
    /// First run: import what is there (all, the default), or only mail arriving from now on (now).
    #[arg(long)]
    pub start: Option<String>,
    /// Messages per session (default: no count; a session ends after about a minute of
    /// downloading or 1 GiB); each session ends with QUIT so deletions commit early.
    #[arg(long)]
    pub batch: Option<u64>,
    /// Larger messages are not downloaded (see --oversize); default 25000000 bytes.
    #[arg(long)]
    pub max_size: Option<u64>,
    /// skip (the default): store only the headers and leave the message on the server; download: store it anyway, marked too large.
    #[arg(long)]
    pub oversize: Option<String>,
    /// Extra CA certificates (PEM) for a server with its own CA, or the server's own self-signed certificate.
    #[arg(long, conflicts_with = "no_ca_file")]
    pub ca_file: Option<PathBuf>,
    /// Forget the CA file.
    #[arg(long)]
    pub no_ca_file: bool,
    /// Trust exactly the server certificate with this SHA-256 fingerprint (hex, colons allowed), whoever signed it.
    #[arg(long, conflicts_with = "no_trust_fingerprint")]
    pub trust_fingerprint: Option<String>,
    /// Forget the trusted fingerprint.
    #[arg(long)]
    pub no_trust_fingerprint: bool,
    /// Allow the password over an unencrypted connection. Only for trusted networks.
    #[arg(long, conflicts_with = "no_allow_insecure_auth")]
    pub allow_insecure_auth: bool,
    /// Refuse the password over an unencrypted connection again.
    #[arg(long)]
    pub no_allow_insecure_auth: bool,
    /// Seconds between the scheduler's polls (default 60).
    #[arg(long)]
    pub poll_interval: Option<u64>,
    /// Mail whose subject names a ticket ([#N]) from an address that never took part in
    /// it: join (the default; added marked "from a new address", reopens nothing) or
    /// new-ticket (opens a ticket of its own).
    #[arg(long, value_name = "join|new-ticket")]
    pub new_address_reference: Option<String>,
    /// Let the scheduler poll the mailbox (the default).
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Stop the scheduler polling the mailbox.
    #[arg(long)]
    pub disable: bool,

    /// Sending: the address replies come from (and customers write to). Turns sending on.
    #[arg(long, conflicts_with = "no_address", help_heading = "Sending replies")]
    pub address: Option<String>,
    /// Turn sending off (replies cannot be written on this mailbox's tickets).
    #[arg(long, help_heading = "Sending replies")]
    pub no_address: bool,
    /// The name shown beside the address, e.g. "Example Support".
    #[arg(long, help_heading = "Sending replies")]
    pub display_name: Option<String>,
    /// The SMTP server, e.g. smtp.gmail.com (Gmail) or smtp.office365.com (Microsoft 365).
    #[arg(long, help_heading = "Sending replies")]
    pub smtp_host: Option<String>,
    /// Defaults to 465 for implicit TLS, 587 for STARTTLS.
    #[arg(long, help_heading = "Sending replies")]
    pub smtp_port: Option<u64>,
    /// implicit (port 465), starttls (port 587, the default), or none.
    #[arg(long, help_heading = "Sending replies")]
    pub smtp_tls: Option<String>,
    /// auto (PLAIN or LOGIN, the default), plain, login, xoauth2, none.
    #[arg(long, help_heading = "Sending replies")]
    pub smtp_auth: Option<String>,
    /// Sign in to SMTP as this user (default: the POP3 user and password).
    #[arg(
        long,
        conflicts_with = "no_smtp_user",
        help_heading = "Sending replies"
    )]
    pub smtp_user: Option<String>,
    /// Reuse the POP3 user and password for SMTP again.
    #[arg(long, help_heading = "Sending replies")]
    pub no_smtp_user: bool,
    /// Read the SMTP password (or token) from this environment variable.
    #[arg(
        long,
        value_name = "VAR",
        conflicts_with = "smtp_password_file",
        help_heading = "Sending replies"
    )]
    pub smtp_password_env: Option<String>,
    /// Read the SMTP password (or token) from the first line of this file.
    #[arg(long, help_heading = "Sending replies")]
    pub smtp_password_file: Option<PathBuf>,
    /// Allow the SMTP password over an unencrypted connection. Only for trusted networks.
    #[arg(
        long,
        conflicts_with = "no_smtp_allow_insecure_auth",
        help_heading = "Sending replies"
    )]
    pub smtp_allow_insecure_auth: bool,
    /// Refuse the SMTP password over an unencrypted connection again.
    #[arg(long, help_heading = "Sending replies")]
    pub no_smtp_allow_insecure_auth: bool,
    /// Acknowledge new tickets by mail ("we got your message, your reference is [#N]").
    #[arg(
        long,
        conflicts_with = "no_acknowledge",
        help_heading = "Sending replies"
    )]
    pub acknowledge: bool,
    /// Stop acknowledging new tickets.
    #[arg(long, help_heading = "Sending replies")]
    pub no_acknowledge: bool,

    /// Sign in with OAuth2 tokens from this provider: microsoft, google or generic (use
    /// with --auth xoauth2 or oauthbearer; then `popdesk mailbox connect NAME`).
    #[arg(long, conflicts_with = "no_oauth", help_heading = "OAuth2")]
    pub oauth_provider: Option<String>,
    /// Stop using OAuth2 (give the password again with --password-env or --password-file).
    #[arg(long, help_heading = "OAuth2")]
    pub no_oauth: bool,
    /// The app's client id (application id).
    #[arg(long, help_heading = "OAuth2")]
    pub oauth_client_id: Option<String>,
    /// Read the app's client secret from this environment variable (none: a public client).
    #[arg(
        long,
        value_name = "VAR",
        conflicts_with = "no_oauth_client_secret",
        help_heading = "OAuth2"
    )]
    pub oauth_client_secret_env: Option<String>,
    /// Forget the client secret (a public client).
    #[arg(long, help_heading = "OAuth2")]
    pub no_oauth_client_secret: bool,
    /// Microsoft: the tenant id or domain (default: organizations).
    #[arg(long, help_heading = "OAuth2")]
    pub oauth_tenant: Option<String>,
    /// Generic: the issuer; its /.well-known/openid-configuration names the endpoints.
    #[arg(long, help_heading = "OAuth2")]
    pub oauth_issuer: Option<String>,
    /// Generic: the authorization endpoint (instead of --oauth-issuer).
    #[arg(long, help_heading = "OAuth2")]
    pub oauth_authorize_url: Option<String>,
    /// Generic: the token endpoint (instead of --oauth-issuer).
    #[arg(long, help_heading = "OAuth2")]
    pub oauth_token_url: Option<String>,
    /// Generic: the device authorization endpoint.
    #[arg(long, help_heading = "OAuth2")]
    pub oauth_device_url: Option<String>,
    /// A scope to ask for (repeat for several; default: the provider's POP3 and SMTP scopes).
    #[arg(long = "oauth-scope", value_name = "SCOPE", help_heading = "OAuth2")]
    pub oauth_scopes: Vec<String>,
    /// authorization-code (the default: Connect on the mailbox page), device-code, or
    /// client-credentials (app-only, no user).
    #[arg(long, help_heading = "OAuth2")]
    pub oauth_flow: Option<String>,
}

#[derive(Debug, Args)]
pub struct AddMailbox {
    pub name: String,
    #[command(flatten)]
    pub options: MailboxOptions,
}

#[derive(Debug, Args)]
pub struct UpdateMailbox {
    /// The mailbox to change.
    pub name: String,
    /// A new name.
    #[arg(long)]
    pub rename: Option<String>,
    #[command(flatten)]
    pub options: MailboxOptions,
}
