//! The whole comparison (`popdesk-bench run`): one generated mailbox, one private Dovecot,
//! every client on loopback and then with added round-trip time, each run checked.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::delay_line::DelayLine;
use crate::dovecot::{self, Dovecot};
use crate::fetch;
use crate::mailbox::{self, MailboxSpec};
use crate::maildir::{self, Fingerprint, MasterCopy};
use crate::mpop;
use crate::netns::{self, BenchNetwork, Namespace};
use crate::report::{self, Outcome, Row};

pub struct RunOptions {
    pub spec: MailboxSpec,
    /// Round-trip time added for the second half of the runs.
    pub rtt: Duration,
    /// Parent of the scratch directory (default: the system temp dir).
    pub workdir: Option<PathBuf>,
    /// Leave the scratch directory (Dovecot logs, mpoprc) behind for inspection.
    pub keep: bool,
    /// Longest one client run may take before it is killed and reported as failed.
    pub run_limit: Duration,
    /// Runs per client and RTT; the median is reported.
    pub repeat: usize,
    /// Only these clients (by slug: mpop, popdesk-pipelined, popdesk-lockstep,
    /// popdesk-intake); all when empty.
    pub only: Vec<String>,
    /// Messages per session for `popdesk mailbox fetch` (its `--batch`).
    pub batch: u32,
}

/// The clients compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    Mpop,
    PopdeskPipelined,
    PopdeskLockStep,
    /// `popdesk mailbox fetch`: the whole intake, into the SQLite store and the blob
    /// store with every message and batch fsync'd.
    PopdeskIntake,
}

impl Contender {
    const ALL: [Contender; 4] = [
        Contender::Mpop,
        Contender::PopdeskPipelined,
        Contender::PopdeskLockStep,
        Contender::PopdeskIntake,
    ];

    /// `mpop` is the installed version, e.g. "mpop 1.4.18".
    fn label(self, mpop: &str) -> String {
        match self {
            Contender::Mpop => mpop.to_string(),
            Contender::PopdeskPipelined => "popdesk pop3 client (pipelined)".into(),
            Contender::PopdeskLockStep => "popdesk pop3 client (lock-step)".into(),
            Contender::PopdeskIntake => "popdesk mailbox fetch (store)".into(),
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Contender::Mpop => "mpop",
            Contender::PopdeskPipelined => "popdesk-pipelined",
            Contender::PopdeskLockStep => "popdesk-lockstep",
            Contender::PopdeskIntake => "popdesk-intake",
        }
    }

    /// The command that downloads and deletes the whole mailbox into `work/delivered`
    /// (for the intake: into the data folder `work/data`, set up here, untimed).
    fn command(
        self,
        ns: &Namespace,
        host: &str,
        work: &Path,
        batch: u32,
    ) -> Result<Option<Command>> {
        match self {
            Contender::PopdeskIntake => {
                let popdesk = std::env::current_exe()?.with_file_name("popdesk");
                if !popdesk.exists() {
                    return Ok(None);
                }
                let data = work.join("data");
                let mut add = ns.command(&popdesk);
                add.arg("--data")
                    .arg(&data)
                    .args(["mailbox", "add", "bench", "--host", host])
                    .args(["--port", &dovecot::PORT.to_string(), "--tls", "none"])
                    .args(["--user", dovecot::USER, "--password-env", "BENCH_PASSWORD"])
                    .arg("--allow-insecure-auth")
                    .args(["--batch", &batch.to_string()])
                    .env("BENCH_PASSWORD", dovecot::PASSWORD)
                    .stdin(Stdio::null());
                netns::checked(&mut add).context("popdesk mailbox add")?;
                let mut fetch = ns.command(&popdesk);
                // Fetching only, as mpop does: turning mail into tickets is measured on
                // its own (`popdesk-bench process-speed`).
                fetch
                    .arg("--data")
                    .arg(&data)
                    .args(["mailbox", "fetch", "bench", "--no-process"]);
                Ok(Some(fetch))
            }
            Contender::Mpop => mpop::command(ns, host, dovecot::PORT, work).map(Some),
            Contender::PopdeskPipelined | Contender::PopdeskLockStep => {
                if !fetch::READY {
                    return Ok(None);
                }
                let mut cmd = ns.command(std::env::current_exe()?);
                cmd.arg("fetch")
                    .args(["--host", host, "--port", &dovecot::PORT.to_string()])
                    .args(["--user", dovecot::USER, "--password", dovecot::PASSWORD])
                    .arg("--maildir")
                    .arg(work.join("delivered"));
                if self == Contender::PopdeskLockStep {
                    cmd.arg("--lock-step");
                }
                Ok(Some(cmd))
            }
        }
    }
}

/// Where the clients run from, and what they connect to.
struct Scenario<'a> {
    rtt_label: String,
    ns: &'a Namespace,
    host: &'a str,
}

/// Runs everything and prints the table. Returns whether every run completed and verified.
pub fn run(opts: &RunOptions) -> Result<bool> {
    ensure_root()?;
    let scratch = tempfile::Builder::new()
        .prefix("popdesk-bench-")
        .tempdir_in(opts.workdir.clone().unwrap_or_else(std::env::temp_dir))?;
    let work = scratch.path().to_path_buf();
    println!("scratch directory: {}", work.display());
    // Kept even when the run fails: that is when its logs are wanted.
    let scratch = if opts.keep {
        println!("(kept afterwards: --keep)");
        let _ = scratch.keep();
        None
    } else {
        Some(scratch)
    };

    let started = Instant::now();
    let messages = mailbox::generate(&opts.spec);
    let expected = Fingerprint::of_messages(&messages);
    let master = MasterCopy::write(&work.join("master"), &messages)?;
    drop(messages);
    println!(
        "generated {} messages, {:.1} MB (seed {:#x}) in {:.1} s",
        expected.messages(),
        expected.wire_bytes as f64 / 1e6,
        opts.spec.seed,
        started.elapsed().as_secs_f64()
    );

    let net = BenchNetwork::create()?;
    let mut server = Dovecot::start(
        &work.join("dovecot"),
        &net.server,
        &["127.0.0.1", netns::SERVER_ADDR],
    )?;
    println!("private Dovecot up in namespace {}", net.server.name);

    let bench = Bench {
        server: &server,
        master: &master,
        expected: &expected,
        work: &work,
        limit: opts.run_limit,
        repeat: opts.repeat,
        only: &opts.only,
        batch: opts.batch,
        mpop_version: mpop::version()?,
    };
    let mut rows = Vec::new();
    // Loopback inside the server namespace: no added delay.
    let local = Scenario {
        rtt_label: "0 ms".into(),
        ns: &net.server,
        host: "127.0.0.1",
    };
    rows.extend(bench.run_scenario(&local));

    let delay = DelayLine::start(&net, opts.rtt / 2)?;
    let rtt = delay.measured_rtt()?;
    println!(
        "added {} ms RTT between {} and {} with {}; ping measures {:.1} ms",
        opts.rtt.as_millis(),
        netns::CLIENT_ADDR,
        netns::SERVER_ADDR,
        delay.method,
        rtt.as_secs_f64() * 1e3
    );
    if rtt < opts.rtt.mul_f64(0.8) || rtt > opts.rtt.mul_f64(1.5) + Duration::from_millis(2) {
        bail!(
            "measured RTT {rtt:?} is not close to the {:?} asked for",
            opts.rtt
        );
    }
    let remote = Scenario {
        rtt_label: format!("{} ms", opts.rtt.as_millis()),
        ns: &net.client,
        host: netns::SERVER_ADDR,
    };
    rows.extend(bench.run_scenario(&remote));
    drop(delay);
    let mpop_version = bench.mpop_version;
    server.stop();

    println!();
    report::print(&rows);
    println!();
    print_targets(&rows, &mpop_version, &local.rtt_label, &remote.rtt_label);

    drop(scratch);
    Ok(rows
        .iter()
        .all(|r| !matches!(r.outcome, Outcome::Failed(_))))
}

struct Bench<'a> {
    server: &'a Dovecot,
    master: &'a MasterCopy,
    expected: &'a Fingerprint,
    work: &'a Path,
    limit: Duration,
    repeat: usize,
    only: &'a [String],
    batch: u32,
    mpop_version: String,
}

/// See [`Bench::run_scenario`].
const REPEAT_ONLY_BELOW: Duration = Duration::from_secs(30);

impl Bench<'_> {
    /// Runs every contender `repeat` times, taking turns (mpop, ours, mpop, ours, ...) so
    /// that a burst of load on this shared machine hits all of them alike, and reports each
    /// one's median. Runs longer than [`REPEAT_ONLY_BELOW`] (lock-step at 20 ms) are not
    /// repeated.
    fn run_scenario(&self, scenario: &Scenario) -> Vec<Row> {
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); Contender::ALL.len()];
        let mut outcomes: Vec<Option<Outcome>> = vec![None; Contender::ALL.len()];
        let mut done = [false; Contender::ALL.len()];
        for round in 1..=self.repeat.max(1) {
            for (i, contender) in Contender::ALL.into_iter().enumerate() {
                if !self.only.is_empty() && !self.only.iter().any(|s| s == contender.slug()) {
                    done[i] = true;
                    outcomes[i] = Some(Outcome::Skipped("not selected (--only)".into()));
                }
                if done[i] {
                    continue;
                }
                print!(
                    "  {} round {round}: {} ... ",
                    scenario.rtt_label,
                    contender.label(&self.mpop_version)
                );
                let _ = std::io::stdout().flush();
                match self.measure(contender, scenario) {
                    Ok(Outcome::Measured {
                        elapsed,
                        messages,
                        bytes,
                    }) => {
                        println!("{:.2} s, verified", elapsed.as_secs_f64());
                        times[i].push(elapsed);
                        times[i].sort();
                        outcomes[i] = Some(Outcome::Measured {
                            messages,
                            bytes,
                            elapsed: times[i][(times[i].len() - 1) / 2],
                        });
                        done[i] = elapsed > REPEAT_ONLY_BELOW;
                    }
                    Ok(other) => {
                        if let Outcome::Skipped(why) = &other {
                            println!("skipped ({why})");
                        }
                        outcomes[i] = Some(other);
                        done[i] = true;
                    }
                    Err(e) => {
                        println!("FAILED: {e:#}");
                        outcomes[i] = Some(Outcome::Failed(format!("{e:#}")));
                        done[i] = true;
                    }
                }
            }
        }
        Contender::ALL
            .into_iter()
            .zip(outcomes)
            .map(|(contender, outcome)| Row {
                client: contender.label(&self.mpop_version),
                rtt: scenario.rtt_label.clone(),
                outcome: outcome.unwrap_or(Outcome::Skipped("not run".into())),
            })
            .collect()
    }

    fn measure(&self, contender: Contender, scenario: &Scenario) -> Result<Outcome> {
        let maildir = self.server.maildir();
        self.master.stage(&maildir, self.server.mail_owner())?;
        let work = self.work.join(format!(
            "{}-{}",
            contender.slug(),
            scenario.rtt_label.replace(' ', "")
        ));
        if work.exists() {
            fs::remove_dir_all(&work)?;
        }
        fs::create_dir_all(&work)?;
        let Some(mut cmd) = contender.command(scenario.ns, scenario.host, &work, self.batch)?
        else {
            return Ok(Outcome::Skipped(
                "not built: run `cargo build --release -p bench -p popdesk`".into(),
            ));
        };
        // Write back the previous run's delivered mail now, not during this run.
        let _ = Command::new("sync").status();

        let log_path = work.join("client.log");
        let log = fs::File::create(&log_path)?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let started = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > self.limit {
                let _ = child.kill();
                let _ = child.wait();
                bail!("still running after {:?}; killed", self.limit);
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let elapsed = started.elapsed();
        if !status.success() {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "exited with {status}: {}\n{}",
                log.trim(),
                self.server.log_tail()
            );
        }

        let delivered = if contender == Contender::PopdeskIntake {
            maildir::fingerprint_blobs(&work.join("data").join("blobs"))?
        } else {
            maildir::fingerprint_dir(&work.join("delivered"))?
        };
        self.expected
            .compare(&delivered)
            .map_err(anyhow::Error::msg)
            .context("delivered mail does not match the mailbox")?;
        let left = maildir::messages_left(&maildir)?;
        if left != 0 {
            bail!("{left} messages are still on the server");
        }
        for done in ["delivered", "data"] {
            if work.join(done).exists() {
                fs::remove_dir_all(work.join(done))?;
            }
        }
        Ok(Outcome::Measured {
            messages: self.expected.messages(),
            bytes: self.expected.wire_bytes,
            elapsed,
        })
    }
}

fn print_targets(rows: &[Row], mpop: &str, local: &str, remote: &str) {
    let find = |c: Contender, rtt: &str| {
        rows.iter()
            .find(|r| r.client == c.label(mpop) && r.rtt == rtt)
            .and_then(Row::rate)
    };
    let verdict =
        |name: &str, ours: Option<f64>, theirs: Option<f64>, target: f64| match (ours, theirs) {
            (Some(a), Some(b)) => {
                let ratio = a / b;
                let met = if ratio >= target { "met" } else { "MISSED" };
                println!("  {name}: {ratio:.2}x (target >= {target}x) {met}");
            }
            _ => println!("  {name}: pending (needs both runs)"),
        };
    println!("targets (messages/s ratios):");
    verdict(
        &format!("{local}: popdesk pipelined / mpop"),
        find(Contender::PopdeskPipelined, local),
        find(Contender::Mpop, local),
        1.0,
    );
    verdict(
        &format!("{remote}: popdesk pipelined / popdesk lock-step"),
        find(Contender::PopdeskPipelined, remote),
        find(Contender::PopdeskLockStep, remote),
        10.0,
    );
    verdict(
        &format!("{local}: popdesk mailbox fetch (into the store) / mpop (into a maildir)"),
        find(Contender::PopdeskIntake, local),
        find(Contender::Mpop, local),
        1.0,
    );
    if let (Some(near), Some(far)) = (find(Contender::Mpop, local), find(Contender::Mpop, remote)) {
        println!(
            "  for reference, mpop at {remote} keeps {:.0}% of its {local} rate",
            100.0 * far / near
        );
    }
}

fn ensure_root() -> Result<()> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("");
    if uid != "0" {
        bail!(
            "the benchmark must run as root: it creates network namespaces, a veth pair and iptables rules"
        );
    }
    Ok(())
}
