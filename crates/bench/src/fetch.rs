//! popdesk's own POP3 client doing the benchmark job (`popdesk-bench fetch`): download every
//! message into a Maildir, delete it, QUIT — pipelined, or in lock-step (one command, wait for
//! its reply, next command) to show what pipelining buys at 20 ms RTT.
//!
//! Each message is streamed to `tmp/`, fsync'd and renamed into `new/`, which is what mpop's
//! maildir delivery does too (one fsync per message), so the two do the same work.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncWriteExt, BufWriter};

/// Whether `run` below is the real client; the benchmark marks these rows as pending
/// otherwise.
pub const READY: bool = true;

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[arg(long)]
    pub host: String,
    #[arg(long)]
    pub port: u16,
    #[arg(long)]
    pub user: String,
    #[arg(long)]
    pub password: String,
    /// Delivery Maildir (new/, cur/, tmp/ are created).
    #[arg(long)]
    pub maildir: PathBuf,
    /// One command at a time instead of pipelining.
    #[arg(long)]
    pub lock_step: bool,
}

pub fn run(args: &FetchArgs) -> Result<()> {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(args.maildir.join(sub))?;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(fetch_all(args))
}

async fn fetch_all(args: &FetchArgs) -> Result<()> {
    let mut options = pop3::ConnectOptions::new(&args.host, args.port, pop3::Security::None);
    // Loopback and our own namespaces only: no TLS, so plaintext login must be allowed.
    options.allow_insecure_auth = true;
    options.pipelining = !args.lock_step;
    let mut client = pop3::Client::connect(&options).await?;
    if !args.lock_step && !client.is_pipelining() {
        bail!("the server did not offer PIPELINING");
    }
    client
        .authenticate(
            &pop3::Credentials::password(&args.user, &args.password),
            pop3::AuthMethod::Auto,
        )
        .await?;
    let numbers: Vec<u32> = client.list().await?.iter().map(|e| e.number).collect();
    let mut sink = MaildirSink {
        dir: args.maildir.clone(),
        pid: std::process::id(),
    };
    client.retr_batch(&numbers, &mut sink).await?;
    for (number, outcome) in client.dele_batch(&numbers).await? {
        outcome.with_context(|| format!("DELE {number}"))?;
    }
    match client.quit().await {
        pop3::QuitOutcome::Committed => Ok(()),
        other => bail!("QUIT did not commit the deletions: {other:?}"),
    }
}

/// Streams each message into `tmp/`, then fsync + rename into `new/`.
struct MaildirSink {
    dir: PathBuf,
    pid: u32,
}

impl MaildirSink {
    fn name(&self, number: u32) -> String {
        format!("{}.M{number}.popdesk-bench", self.pid)
    }

    fn tmp_path(&self, number: u32) -> PathBuf {
        self.dir.join("tmp").join(self.name(number))
    }
}

impl pop3::MessageSink for MaildirSink {
    type Writer = BufWriter<tokio::fs::File>;

    async fn open(&mut self, number: u32) -> io::Result<Self::Writer> {
        let file = tokio::fs::File::create(self.tmp_path(number)).await?;
        Ok(BufWriter::with_capacity(256 * 1024, file))
    }

    async fn finish(
        &mut self,
        mut writer: Self::Writer,
        retrieved: pop3::Retrieved,
    ) -> io::Result<()> {
        writer.flush().await?;
        writer.get_ref().sync_all().await?;
        let number = retrieved.number;
        tokio::fs::rename(
            self.tmp_path(number),
            Path::new(&self.dir).join("new").join(self.name(number)),
        )
        .await
    }

    async fn refused(&mut self, number: u32, error: pop3::ServerError) -> io::Result<()> {
        Err(io::Error::other(format!("RETR {number} refused: {error}")))
    }
}
