//! `popdesk-bench several-nodes`: the numbers issue 16 asks for (numbers, not gates).
//!
//! - **Blob stores:** the 2,000-message benchmark mailbox fetched with `popdesk mailbox
//!   fetch --no-process` with raw messages in PostgreSQL (`blob_store = postgres`) beside
//!   raw messages in the data folder (`files`), both on the same PostgreSQL database
//!   server so that only the blob store differs; interleaved in one run (the order
//!   alternates per round), the median of each reported with their ratio.
//! - **Nodes:** the same mail spread over 20 mailboxes, fetched by one `popdesk serve`
//!   and then by three (each its own data folder, one database, blobs in it, the same
//!   secret key): messages/s from the first fetch run's start to the last one's end, as
//!   the database's fetch runs record them. The nodes also turn the mail into tickets
//!   meanwhile, as serve does.
//!
//! Everything is private to the run: a Dovecot and a PostgreSQL cluster of its own on
//! loopback (testkit), so it must run as root, and the release `popdesk` beside this
//! binary (`cargo build --release -p popdesk -p bench`). `scripts/bench-nodes` runs it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::mailbox::{self, MailboxSpec};

const PASSWORD: &str = "bench-password";
const PASSWORD_VAR: &str = "BENCH_PASSWORD";
/// The same key on every node, so a mailbox password sealed by one opens on another.
/// (base64 of "0123456789abcdef0123456789abcdef")
const SECRET_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// No part of the benchmark may take longer than this.
const LIMIT: Duration = Duration::from_secs(1800);

#[derive(Debug, clap::Args)]
pub struct NodesArgs {
    /// Messages in the benchmark mailbox.
    #[arg(long, default_value_t = 2_000)]
    messages: usize,
    /// Its total size in MB (10^6 bytes).
    #[arg(long, default_value_t = 130)]
    megabytes: u64,
    /// Rounds of the blob store comparison (each fetches once per blob store); the
    /// median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Mailboxes the mail is spread over for the nodes comparison.
    #[arg(long, default_value_t = 20)]
    mailboxes: usize,
    /// Nodes to compare with one.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Only one part: `blob-stores` or `nodes`.
    #[arg(long)]
    only: Option<String>,
}

pub fn run(args: &NodesArgs) -> Result<bool> {
    let popdesk = std::env::current_exe()?.with_file_name("popdesk");
    if !popdesk.exists() {
        bail!(
            "{} is missing: run `cargo build --release -p bench -p popdesk`",
            popdesk.display()
        );
    }
    let spec = MailboxSpec {
        messages: args.messages,
        total_bytes: args.megabytes * 1_000_000,
        ..MailboxSpec::default()
    };
    let messages: Vec<Vec<u8>> = mailbox::generate(&spec)
        .into_iter()
        .map(|m| m.bytes)
        .collect();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    println!(
        "benchmark mailbox: {} messages, {:.1} MB; load average {}",
        messages.len(),
        bytes as f64 / 1e6,
        load_average()
    );
    let dovecot = testkit::Dovecot::start();
    let pg = testkit::PrivatePostgres::start();
    let bench = Bench {
        popdesk,
        dovecot: &dovecot,
        pg: &pg,
        messages: &messages,
    };
    let only = args.only.as_deref();
    if only.is_none_or(|o| o == "blob-stores") {
        bench.blob_stores(args.repeat.max(1))?;
    }
    if only.is_none_or(|o| o == "nodes") {
        bench.nodes(args.mailboxes.max(1), args.nodes.max(1))?;
    }
    println!("load average {}", load_average());
    Ok(true)
}

struct Bench<'a> {
    popdesk: PathBuf,
    dovecot: &'a testkit::Dovecot,
    pg: &'a testkit::PrivatePostgres,
    messages: &'a [Vec<u8>],
}

impl Bench<'_> {
    /// Part (a): the same mailbox into each blob store, interleaved, median of `repeat`.
    fn blob_stores(&self, repeat: usize) -> Result<()> {
        println!(
            "\nblob stores: `popdesk mailbox fetch --no-process` of the whole mailbox, \
             state in PostgreSQL, raw messages in the data folder or in the database"
        );
        let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        const STORES: [&str; 2] = ["files", "postgres"];
        for round in 0..repeat {
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let store = STORES[which];
                let user = format!("blobs{round}{store}");
                self.dovecot.add_user(&user, PASSWORD);
                self.dovecot.deliver_many(&user, self.messages);
                let database = format!("blobs_{round}_{store}");
                let url = self.pg.create_database(&database);
                let data = tempfile::tempdir()?;
                let node = NodeCmd {
                    popdesk: &self.popdesk,
                    data: data.path(),
                    url: &url,
                    blob_store: store,
                };
                node.add_mailbox(self.dovecot, &user, 600)?;
                let started = Instant::now();
                let fetched = node
                    .command(&["mailbox", "fetch", &user, "--no-process"])
                    .stdout(Stdio::null())
                    .status()
                    .context("popdesk mailbox fetch")?;
                let took = started.elapsed();
                if !fetched.success() {
                    bail!("popdesk mailbox fetch ({store}) failed");
                }
                let left = self.dovecot.message_count(&user);
                if left != 0 {
                    bail!("{left} messages still on the server after the {store} fetch");
                }
                println!(
                    "  round {}: {store:<8} {:>6.1} s  {:>6.0} messages/s",
                    round + 1,
                    took.as_secs_f64(),
                    self.messages.len() as f64 / took.as_secs_f64()
                );
                times[which].push(took);
                self.pg
                    .sql(&format!("DROP DATABASE {database} WITH (FORCE)"));
            }
        }
        let files = median(&mut times[0]);
        let postgres = median(&mut times[1]);
        let mb = self.messages.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
        for (store, took) in [("files", files), ("postgres", postgres)] {
            println!(
                "  median {store:<8} {:>6.1} s  {:>6.0} messages/s  {:>5.1} MB/s",
                took.as_secs_f64(),
                self.messages.len() as f64 / took.as_secs_f64(),
                mb / took.as_secs_f64()
            );
        }
        println!(
            "  ratio postgres/files: {:.2} (time)",
            postgres.as_secs_f64() / files.as_secs_f64()
        );
        Ok(())
    }

    /// Part (b): the mail spread over `mailboxes`, fetched by one node, then by `nodes`.
    fn nodes(&self, mailboxes: usize, nodes: usize) -> Result<()> {
        println!(
            "\nnodes: `popdesk serve` × N (own data folders, one database, blobs in it) \
             against {mailboxes} mailboxes holding the mailbox's {} messages",
            self.messages.len()
        );
        let mut rates = Vec::new();
        for count in [1, nodes] {
            let rate = self.nodes_once(mailboxes, count)?;
            rates.push((count, rate));
        }
        if let [(_, one), (n, many)] = rates[..] {
            println!("  {n} nodes / 1 node: {:.2} (messages/s)", many / one);
        }
        Ok(())
    }

    fn nodes_once(&self, mailboxes: usize, count: usize) -> Result<f64> {
        let database = format!("nodes_{count}");
        let url = self.pg.create_database(&database);
        let folders: Vec<tempfile::TempDir> = (0..count)
            .map(|_| tempfile::tempdir())
            .collect::<Result<_, _>>()?;
        let node = |i: usize| NodeCmd {
            popdesk: &self.popdesk,
            data: folders[i].path(),
            url: &url,
            blob_store: "postgres",
        };
        let users: Vec<String> = (0..mailboxes)
            .map(|m| format!("nodes{count}desk{m}"))
            .collect();
        for (m, user) in users.iter().enumerate() {
            self.dovecot.add_user(user, PASSWORD);
            self.dovecot.deliver_many(
                user,
                self.messages
                    .iter()
                    .skip(m)
                    .step_by(mailboxes)
                    .map(Vec::as_slice),
            );
            node(0).add_mailbox(self.dovecot, user, 600)?;
        }
        let started = Instant::now();
        let mut serving: Vec<Served> =
            (0..count).map(|i| node(i).serve()).collect::<Result<_>>()?;
        loop {
            let left: usize = users.iter().map(|u| self.dovecot.message_count(u)).sum();
            if left == 0 {
                break;
            }
            for served in &mut serving {
                if let Some(status) = served.child.try_wait()? {
                    bail!(
                        "a node stopped ({status}):\n{}",
                        std::fs::read_to_string(&served.log).unwrap_or_default()
                    );
                }
            }
            if started.elapsed() > LIMIT {
                bail!("{left} messages still on the servers after {LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let wall = started.elapsed();
        let span = self.pg.sql_in(
            &database,
            "SELECT MAX(finished_at) - MIN(started_at), COUNT(*), \
             COUNT(DISTINCT fetcher), SUM(downloaded) FROM fetch_runs",
        );
        let processed = self.pg.sql_in(
            &database,
            "SELECT COUNT(*) FROM raw_messages WHERE process_status <> 'pending'",
        );
        for served in &mut serving {
            let _ = served.child.kill();
            let _ = served.child.wait();
        }
        let cols: Vec<&str> = span.split('|').collect();
        let span_ms: f64 = cols.first().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let runs = cols.get(1).copied().unwrap_or("?");
        let fetchers = cols.get(2).copied().unwrap_or("?");
        let downloaded: f64 = cols.get(3).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let seconds = (span_ms / 1000.0).max(0.001);
        let rate = downloaded / seconds;
        println!(
            "  {count} node{}: {downloaded} messages in {seconds:.1} s of fetch runs \
             ({:.1} s from start to empty servers): {rate:.0} messages/s; {runs} runs by \
             {fetchers} processes; {processed} already processed into tickets",
            if count == 1 { "" } else { "s" },
            wall.as_secs_f64()
        );
        drop(serving);
        self.pg
            .sql(&format!("DROP DATABASE {database} WITH (FORCE)"));
        Ok(rate)
    }
}

/// `popdesk --data D --database-url U --blob-store S ...` for one node.
struct NodeCmd<'a> {
    popdesk: &'a Path,
    data: &'a Path,
    url: &'a str,
    blob_store: &'a str,
}

/// A running `popdesk serve`, killed when dropped.
struct Served {
    child: Child,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeCmd<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.popdesk);
        command
            .arg("--data")
            .arg(self.data.join("data"))
            .args(["--database-url", self.url, "--blob-store", self.blob_store])
            .args(args)
            .env(PASSWORD_VAR, PASSWORD)
            .env("POPDESK_SECRET_KEY", SECRET_KEY)
            .env("POPDESK_LOG", "warn,sqlx=off")
            .stdin(Stdio::null());
        command
    }

    fn add_mailbox(&self, dovecot: &testkit::Dovecot, user: &str, interval: u32) -> Result<()> {
        let port = dovecot.pop3_addr().port().to_string();
        let interval = interval.to_string();
        let out = self
            .command(&[
                "mailbox",
                "add",
                user,
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--tls",
                "none",
                "--allow-insecure-auth",
                "--user",
                user,
                "--password-env",
                PASSWORD_VAR,
                "--poll-interval",
                &interval,
            ])
            .output()
            .context("popdesk mailbox add")?;
        if !out.status.success() {
            bail!(
                "popdesk mailbox add {user}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn serve(&self) -> Result<Served> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listen = format!("127.0.0.1:{port}");
        let log_dir = tempfile::tempdir()?;
        let log = log_dir.path().join("serve.log");
        let child = self
            .command(&["serve", "--listen", &listen])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("popdesk serve")?;
        Ok(Served {
            child,
            log,
            _log_dir: log_dir,
        })
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
