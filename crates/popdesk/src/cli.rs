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
    /// after every batch too).
    Process,
    /// Tickets made from incoming mail.
    #[command(subcommand)]
    Ticket(TicketCommand),
    /// Stored messages and what processing did with them.
    #[command(subcommand)]
    Message(MessageCommand),
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
    /// Serve /metrics without credentials (for Prometheus on a trusted network).
    #[arg(long, env = "POPDESK_METRICS_PUBLIC", num_args = 0..=1, default_missing_value = "true")]
    pub metrics_public: Option<bool>,
    /// Other origins (https://desk.example.com) whose requests are trusted. Comma-separated.
    #[arg(long, env = "POPDESK_TRUSTED_ORIGINS", value_delimiter = ',')]
    pub trusted_origins: Vec<String>,
    /// How many mailboxes are fetched at the same time [default: 4].
    #[arg(long, env = "POPDESK_MAX_CONCURRENT_FETCHES")]
    pub max_concurrent_fetches: Option<usize>,
    /// The longest wait between retries of a failing mailbox, in seconds [default: 1800].
    #[arg(long, env = "POPDESK_BACKOFF_MAX_SECS")]
    pub backoff_max_secs: Option<u64>,
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
    /// Connect and log in, print what the server offers; changes nothing.
    Test { name: String },
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
    /// Messages per session (default 50); each session ends with QUIT so deletions commit early.
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
    /// Let the scheduler poll the mailbox (the default).
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Stop the scheduler polling the mailbox.
    #[arg(long)]
    pub disable: bool,
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
