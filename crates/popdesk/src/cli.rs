//! The command line. Later issues and users script against these names: change with care.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "popdesk", version, about = "Helpdesk email intake over POP3")]
pub struct Cli {
    /// The data folder: database, raw messages, key file.
    #[arg(
        long,
        env = "POPDESK_DATA",
        default_value = "popdesk-data",
        global = true
    )]
    pub data: PathBuf,

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

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// List mailboxes.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one mailbox's settings and state.
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
    /// Remove a mailbox (its stored messages are kept).
    Remove { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TlsArg {
    Implicit,
    Starttls,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PolicyArg {
    Delete,
    Keep,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StartArg {
    All,
    Now,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OversizeArg {
    Skip,
    Download,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuthArg {
    Auto,
    User,
    Apop,
    Plain,
    Login,
    CramMd5,
    Xoauth2,
    Oauthbearer,
}

#[derive(Debug, Args)]
pub struct AddMailbox {
    pub name: String,
    #[arg(long)]
    pub host: String,
    /// Defaults to 995 for implicit TLS, 110 otherwise.
    #[arg(long)]
    pub port: Option<u16>,
    #[arg(long, value_enum, default_value = "implicit")]
    pub tls: TlsArg,
    #[arg(long)]
    pub user: String,
    /// Read the password (or OAuth token) from this environment variable.
    #[arg(long, conflicts_with = "password_file")]
    pub password_env: Option<String>,
    /// Read the password (or OAuth token) from the first line of this file.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    pub auth: AuthArg,
    /// delete: remove mail from the server once stored; keep: leave it there.
    #[arg(long, value_enum, default_value = "delete")]
    pub policy: PolicyArg,
    /// With --policy keep: delete from the server this many days after storing.
    #[arg(long)]
    pub delete_after: Option<u32>,
    /// First run: import what is there (all), or only mail arriving from now on (now).
    #[arg(long, value_enum, default_value = "all")]
    pub start: StartArg,
    /// Messages per session; each session ends with QUIT so deletions commit early.
    #[arg(long, default_value_t = 50)]
    pub batch: u32,
    /// Larger messages are not downloaded (see --oversize).
    #[arg(long, default_value_t = 25_000_000)]
    pub max_size: u64,
    /// skip: store only the headers and leave the message on the server; download: store it anyway, marked too large.
    #[arg(long, value_enum, default_value = "skip")]
    pub oversize: OversizeArg,
    /// Extra CA certificates (PEM) for a server with its own CA.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Allow the password over an unencrypted connection. Only for trusted networks.
    #[arg(long)]
    pub allow_insecure_auth: bool,
}
