//! The whole comparison (`popdesk-bench run`): one generated mailbox, one private Dovecot,
//! every client on loopback and then with added round-trip time, each run checked.

use std::cell::Cell;
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
use crate::report::{self, Outcome, Row, Usage};

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
    /// popdesk-fetch, popdesk-no-process, popdesk-process); all when empty.
    pub only: Vec<String>,
    /// Messages per session for `popdesk mailbox fetch` (its `--batch`); popdesk's
    /// default when `None`.
    pub batch: Option<u32>,
    /// More mailbox sizes (in messages, same bytes per message) run on loopback by mpop
    /// and `popdesk mailbox fetch`, to show whether the cost per message stays flat.
    pub sizes: Vec<usize>,
}

/// The clients compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    Mpop,
    PopdeskPipelined,
    PopdeskLockStep,
    /// `popdesk mailbox fetch` with its defaults: into the SQLite store and the blob
    /// store, every batch fsync'd, and the mail made into tickets — the job a user waits
    /// for, from the server to the ticket list.
    PopdeskFetch,
    /// `popdesk mailbox fetch --no-process`: only the bytes, stored and committed, as
    /// mpop only downloads.
    PopdeskNoProcess,
    /// `popdesk process` of what a `--no-process` fetch stored (the fetch is set-up,
    /// not timed).
    PopdeskProcess,
}

impl Contender {
    const ALL: [Contender; 6] = [
        Contender::Mpop,
        Contender::PopdeskPipelined,
        Contender::PopdeskLockStep,
        Contender::PopdeskFetch,
        Contender::PopdeskNoProcess,
        Contender::PopdeskProcess,
    ];

    /// `mpop` is the installed version, e.g. "mpop 1.4.18".
    fn label(self, mpop: &str) -> String {
        match self {
            Contender::Mpop => mpop.to_string(),
            Contender::PopdeskPipelined => "popdesk pop3 client (pipelined)".into(),
            Contender::PopdeskLockStep => "popdesk pop3 client (lock-step)".into(),
            Contender::PopdeskFetch => "popdesk mailbox fetch (tickets made)".into(),
            Contender::PopdeskNoProcess => "popdesk mailbox fetch --no-process".into(),
            Contender::PopdeskProcess => "popdesk process (alone)".into(),
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Contender::Mpop => "mpop",
            Contender::PopdeskPipelined => "popdesk-pipelined",
            Contender::PopdeskLockStep => "popdesk-lockstep",
            Contender::PopdeskFetch => "popdesk-fetch",
            Contender::PopdeskNoProcess => "popdesk-no-process",
            Contender::PopdeskProcess => "popdesk-process",
        }
    }

    /// Whether this one stores into popdesk's data folder (and how it is checked).
    fn uses_store(self) -> bool {
        matches!(
            self,
            Contender::PopdeskFetch | Contender::PopdeskNoProcess | Contender::PopdeskProcess
        )
    }

    /// Whether this one makes tickets (its output says how many).
    fn makes_tickets(self) -> bool {
        matches!(self, Contender::PopdeskFetch | Contender::PopdeskProcess)
    }

    /// The command that downloads and deletes the whole mailbox into `work/delivered`
    /// (for popdesk's intake: into the data folder `work/data`, set up here, untimed; for
    /// processing alone, the untimed set-up also fetches with `--no-process`).
    fn command(
        self,
        ns: &Namespace,
        host: &str,
        work: &Path,
        batch: Option<u32>,
    ) -> Result<Option<Command>> {
        match self {
            Contender::PopdeskFetch | Contender::PopdeskNoProcess | Contender::PopdeskProcess => {
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
                    .env("BENCH_PASSWORD", dovecot::PASSWORD)
                    .stdin(Stdio::null());
                if let Some(batch) = batch {
                    add.args(["--batch", &batch.to_string()]);
                }
                netns::checked(&mut add).context("popdesk mailbox add")?;
                let mut fetch = ns.command(&popdesk);
                fetch
                    .arg("--data")
                    .arg(&data)
                    .args(["mailbox", "fetch", "bench"]);
                match self {
                    Contender::PopdeskFetch => Ok(Some(fetch)),
                    Contender::PopdeskNoProcess => {
                        fetch.arg("--no-process");
                        Ok(Some(fetch))
                    }
                    _ => {
                        fetch.arg("--no-process");
                        netns::checked(&mut fetch).context("popdesk mailbox fetch (set-up)")?;
                        let mut process = ns.command(&popdesk);
                        process.arg("--data").arg(&data).arg("process");
                        Ok(Some(process))
                    }
                }
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
    /// Who takes part (processing alone does not touch the network: loopback only).
    contenders: &'a [Contender],
}

/// The contenders of the runs at other mailbox sizes.
const SCALE_CONTENDERS: [Contender; 4] = [
    Contender::Mpop,
    Contender::PopdeskFetch,
    Contender::PopdeskNoProcess,
    Contender::PopdeskProcess,
];

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

    spread_run_folders(&work);
    let (master, expected) = make_mailbox(&work, &opts.spec)?;
    let net = BenchNetwork::create()?;
    let mut server = Dovecot::start(
        &work.join("dovecot"),
        &net.server,
        &["127.0.0.1", netns::SERVER_ADDR],
    )?;
    println!("private Dovecot up in namespace {}", net.server.name);

    let bench = Bench {
        server: &server,
        work: &work,
        limit: opts.run_limit,
        repeat: opts.repeat,
        only: &opts.only,
        batch: opts.batch,
        mpop_version: mpop::version()?,
        runs: Cell::new(0),
    };
    let mut rows = Vec::new();
    // Loopback inside the server namespace: no added delay.
    let local = Scenario {
        rtt_label: "0 ms".into(),
        ns: &net.server,
        host: "127.0.0.1",
        contenders: &Contender::ALL,
    };
    rows.extend(bench.run_scenario(&local, &master, &expected));

    let mut remote_label = None;
    let delay = if opts.rtt.is_zero() {
        Err(anyhow::anyhow!("--rtt-ms 0"))
    } else {
        DelayLine::start(&net, opts.rtt / 2)
    };
    match delay {
        Ok(delay) => {
            let rtt = delay.measured_rtt()?;
            println!(
                "added {} ms RTT between {} and {} with {}; ping measures {:.1} ms",
                opts.rtt.as_millis(),
                netns::CLIENT_ADDR,
                netns::SERVER_ADDR,
                delay.method,
                rtt.as_secs_f64() * 1e3
            );
            if rtt < opts.rtt.mul_f64(0.8) || rtt > opts.rtt.mul_f64(1.5) + Duration::from_millis(2)
            {
                bail!(
                    "measured RTT {rtt:?} is not close to the {:?} asked for",
                    opts.rtt
                );
            }
            let remote = Scenario {
                rtt_label: format!("{} ms", opts.rtt.as_millis()),
                ns: &net.client,
                host: netns::SERVER_ADDR,
                contenders: &Contender::ALL[..5],
            };
            rows.extend(bench.run_scenario(&remote, &master, &expected));
            remote_label = Some(remote.rtt_label);
        }
        Err(e) => println!("no added RTT on this machine ({e:#}): the 20 ms runs are skipped"),
    }
    drop(master);

    let mut scale_rows = Vec::new();
    for &messages in &opts.sizes {
        let spec = MailboxSpec {
            messages,
            total_bytes: opts.spec.total_bytes * messages as u64 / opts.spec.messages.max(1) as u64,
            seed: opts.spec.seed,
        };
        let (master, expected) = make_mailbox(&work, &spec)?;
        let scenario = Scenario {
            rtt_label: "0 ms".into(),
            ns: &net.server,
            host: "127.0.0.1",
            contenders: &SCALE_CONTENDERS,
        };
        scale_rows.extend(bench.run_scenario(&scenario, &master, &expected));
    }
    let mpop_version = bench.mpop_version;
    server.stop();

    println!();
    report::print(&rows);
    if !scale_rows.is_empty() {
        println!();
        println!(
            "the same on loopback at other mailbox sizes (time per message should stay flat):"
        );
        let mut all: Vec<Row> = scale_rows.clone();
        all.extend(
            rows.iter()
                .filter(|r| {
                    r.rtt == local.rtt_label
                        && SCALE_CONTENDERS
                            .iter()
                            .any(|c| c.label(&mpop_version) == r.client)
                })
                .cloned(),
        );
        all.sort_by_key(|r| (r.client.clone(), r.outcome_messages()));
        report::print(&all);
        rows.extend(scale_rows);
    }
    println!();
    print_targets(
        &rows,
        &mpop_version,
        &local.rtt_label,
        remote_label.as_deref(),
    );

    drop(scratch);
    Ok(rows
        .iter()
        .all(|r| !matches!(r.outcome, Outcome::Failed(_))))
}

/// Makes every run's folder start in an ext4 block group of its own (`chattr +T`: its
/// subfolders are placed like top-level ones, by a hash of their name).
///
/// This machine's disk is ext4 without a journal. There, creating a file skips every
/// inode of its group freed in the last minute, one buffer-cache lookup each: right after
/// the previous run's 2,000 files were removed from the same group, each new file cost
/// about a millisecond of kernel CPU (a third of popdesk's CPU time in a profile, and
/// mpop's runs took 2 to 13 s), charged to whichever client ran next. With a folder of
/// its own per run (a new name each time), no client pays for the benchmark's clean-up.
/// Elsewhere (a journal, another file system) this changes nothing.
fn spread_run_folders(work: &Path) {
    let _ = Command::new("chattr")
        .arg("+T")
        .arg(work)
        .stderr(Stdio::null())
        .status();
}

/// Generates the mailbox for `spec` and writes its master copy under `work`.
fn make_mailbox(work: &Path, spec: &MailboxSpec) -> Result<(MasterCopy, Fingerprint)> {
    let started = Instant::now();
    let messages = mailbox::generate(spec);
    let expected = Fingerprint::of_messages(&messages);
    let master = MasterCopy::write(&work.join(format!("master-{}", spec.messages)), &messages)?;
    drop(messages);
    println!(
        "generated {} messages, {:.1} MB (seed {:#x}) in {:.1} s",
        expected.messages(),
        expected.wire_bytes as f64 / 1e6,
        spec.seed,
        started.elapsed().as_secs_f64()
    );
    Ok((master, expected))
}

struct Bench<'a> {
    server: &'a Dovecot,
    work: &'a Path,
    limit: Duration,
    repeat: usize,
    only: &'a [String],
    batch: Option<u32>,
    mpop_version: String,
    /// Numbers each run's folder (see [`spread_run_folders`]).
    runs: Cell<u32>,
}

/// See [`Bench::run_scenario`].
const REPEAT_ONLY_BELOW: Duration = Duration::from_secs(30);

impl Bench<'_> {
    /// Runs every contender `repeat` times, taking turns (mpop, ours, mpop, ours, ...) so
    /// that a burst of load on this shared machine hits all of them alike, and reports each
    /// one's median. Runs longer than [`REPEAT_ONLY_BELOW`] (lock-step at 20 ms) are not
    /// repeated.
    fn run_scenario(
        &self,
        scenario: &Scenario,
        master: &MasterCopy,
        expected: &Fingerprint,
    ) -> Vec<Row> {
        let contenders = scenario.contenders;
        let mut runs: Vec<Vec<(Duration, Option<Usage>)>> = vec![Vec::new(); contenders.len()];
        let mut outcomes: Vec<Option<Outcome>> = vec![None; contenders.len()];
        let mut done = vec![false; contenders.len()];
        // Each contender's time per round (None: not run that round).
        let mut rounds: Vec<Vec<Option<Duration>>> = vec![Vec::new(); contenders.len()];
        for round in 1..=self.repeat.max(1) {
            for times in &mut rounds {
                times.push(None);
            }
            for (i, &contender) in contenders.iter().enumerate() {
                if !self.only.is_empty() && !self.only.iter().any(|s| s == contender.slug()) {
                    done[i] = true;
                    outcomes[i] = Some(Outcome::Skipped("not selected (--only)".into()));
                }
                if done[i] {
                    continue;
                }
                print!(
                    "  {} {} msgs round {round}: {} ... ",
                    scenario.rtt_label,
                    expected.messages(),
                    contender.label(&self.mpop_version)
                );
                let _ = std::io::stdout().flush();
                match self.measure(contender, scenario, master, expected) {
                    Ok(Outcome::Measured {
                        elapsed,
                        messages,
                        bytes,
                        usage,
                    }) => {
                        println!("{:.2} s, verified", elapsed.as_secs_f64());
                        rounds[i][round - 1] = Some(elapsed);
                        runs[i].push((elapsed, usage));
                        runs[i].sort_by_key(|(elapsed, _)| *elapsed);
                        let (elapsed, usage) = runs[i][(runs[i].len() - 1) / 2];
                        outcomes[i] = Some(Outcome::Measured {
                            messages,
                            bytes,
                            elapsed,
                            usage,
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
        let mpop = contenders.iter().position(|c| *c == Contender::Mpop);
        contenders
            .iter()
            .enumerate()
            .zip(outcomes)
            .map(|((i, contender), outcome)| {
                let mut ratios: Vec<f64> = match mpop {
                    Some(m) if m != i => rounds[i]
                        .iter()
                        .zip(&rounds[m])
                        .filter_map(|(ours, theirs)| {
                            Some(ours.as_ref()?.as_secs_f64() / theirs.as_ref()?.as_secs_f64())
                        })
                        .collect(),
                    Some(_) => vec![1.0],
                    None => Vec::new(),
                };
                ratios.sort_by(f64::total_cmp);
                Row {
                    client: contender.label(&self.mpop_version),
                    rtt: scenario.rtt_label.clone(),
                    outcome: outcome.unwrap_or(Outcome::Skipped("not run".into())),
                    ratio: (!ratios.is_empty()).then(|| ratios[(ratios.len() - 1) / 2]),
                }
            })
            .collect()
    }

    fn measure(
        &self,
        contender: Contender,
        scenario: &Scenario,
        master: &MasterCopy,
        expected: &Fingerprint,
    ) -> Result<Outcome> {
        let maildir = self.server.maildir();
        master.stage(&maildir, self.server.mail_owner())?;
        self.runs.set(self.runs.get() + 1);
        let work = self.work.join(format!(
            "{}-{}-{}-{}",
            contender.slug(),
            scenario.rtt_label.replace(' ', ""),
            expected.messages(),
            self.runs.get()
        ));
        if work.exists() {
            fs::remove_dir_all(&work)?;
        }
        fs::create_dir_all(&work)?;
        let Some(cmd) = contender.command(scenario.ns, scenario.host, &work, self.batch)? else {
            return Ok(Outcome::Skipped(
                "not built: run `cargo build --release -p bench -p popdesk`".into(),
            ));
        };
        // Write back the previous run's (and the set-up's) files now, not during this run.
        let _ = Command::new("sync").status();

        // GNU time reports the client's own CPU time and peak RSS (`ip netns exec` execs
        // the client, so the process it measures is the client).
        let usage_path = work.join("usage");
        let mut cmd = timed(&cmd, &usage_path);
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
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        if !status.success() {
            bail!(
                "exited with {status}: {}\n{}",
                log.trim(),
                self.server.log_tail()
            );
        }
        let usage = read_usage(&usage_path);

        if contender.uses_store() {
            // Attachments the processor stored are blobs too: every message must be
            // there, extras are allowed.
            let delivered = maildir::fingerprint_blobs(&work.join("data").join("blobs"))?;
            expected
                .compare_within(&delivered)
                .map_err(anyhow::Error::msg)
                .context("stored mail does not match the mailbox")?;
        } else {
            let delivered = maildir::fingerprint_dir(&work.join("delivered"))?;
            expected
                .compare(&delivered)
                .map_err(anyhow::Error::msg)
                .context("delivered mail does not match the mailbox")?;
        }
        if contender.makes_tickets() {
            check_tickets(&log, expected.messages())?;
        }
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
            messages: expected.messages(),
            bytes: expected.wire_bytes,
            elapsed,
            usage,
        })
    }
}

/// `cmd` run under GNU time, which writes "user system maxrss_kb" to `out`.
fn timed(cmd: &Command, out: &Path) -> Command {
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%U %S %M", "-o"])
        .arg(out)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    timed
}

fn read_usage(path: &Path) -> Option<Usage> {
    let text = fs::read_to_string(path).ok()?;
    let mut fields = text.lines().last()?.split_whitespace();
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    let max_rss_kb = fields.next()?.parse().ok()?;
    Some(Usage {
        cpu_secs: user + system,
        max_rss_kb,
    })
}

/// Every message made a ticket (or deliberately ignored), none failed: read from the
/// summary popdesk prints ("N to tickets (...), I ignored, F failed").
fn check_tickets(log: &str, messages: usize) -> Result<()> {
    let number_before = |marker: &str| -> Option<usize> {
        let head = &log[..log.find(marker)?];
        head.split(|c: char| !c.is_ascii_digit())
            .rfind(|s| !s.is_empty())?
            .parse()
            .ok()
    };
    let (Some(made), Some(ignored), Some(failed)) = (
        number_before(" to tickets"),
        number_before(" ignored"),
        number_before(" failed"),
    ) else {
        bail!("no processing summary in the output: {}", log.trim());
    };
    if made + ignored != messages || failed != 0 {
        bail!(
            "{made} to tickets, {ignored} ignored, {failed} failed of {messages} messages: {}",
            log.trim()
        );
    }
    Ok(())
}

fn print_targets(rows: &[Row], mpop: &str, local: &str, remote: Option<&str>) {
    let find = |c: Contender, rtt: &str| {
        rows.iter()
            .find(|r| r.client == c.label(mpop) && r.rtt == rtt && r.ratio.is_some())
    };
    println!("targets:");
    let time_ratio =
        |name: &str, c: Contender, target: f64| match find(c, local).and_then(Row::ratio_to_mpop) {
            Some(ratio) => {
                let met = if ratio <= target { "met" } else { "MISSED" };
                println!("  {local}: {name}: {ratio:.2}x mpop's time (target <= {target}x) {met}");
            }
            None => println!("  {local}: {name}: pending (needs both runs)"),
        };
    time_ratio(
        "popdesk mailbox fetch, tickets made",
        Contender::PopdeskFetch,
        1.0,
    );
    time_ratio(
        "popdesk mailbox fetch --no-process",
        Contender::PopdeskNoProcess,
        0.6,
    );
    match find(Contender::PopdeskProcess, local).and_then(Row::rate) {
        Some(rate) => println!(
            "  processing alone: {rate:.0} messages/s (target >= 3000) {}",
            if rate >= 3000.0 { "met" } else { "MISSED" }
        ),
        None => println!("  processing alone: pending"),
    }
    if let Some(remote) = remote {
        let rate = |c: Contender| find(c, remote).and_then(Row::rate);
        if let (Some(a), Some(b)) = (
            rate(Contender::PopdeskPipelined),
            rate(Contender::PopdeskLockStep),
        ) {
            let ratio = a / b;
            let met = if ratio >= 10.0 { "met" } else { "MISSED" };
            println!(
                "  {remote}: popdesk pipelined / popdesk lock-step: {ratio:.1}x (target >= 10x) {met}"
            );
        }
        if let Some(ratio) = find(Contender::PopdeskFetch, remote).and_then(Row::ratio_to_mpop) {
            println!("  {remote}: popdesk mailbox fetch, tickets made: {ratio:.2}x mpop's time");
        }
    }
    // Flatness: time per message at the largest size over that at the smallest.
    for c in SCALE_CONTENDERS {
        let mut sizes: Vec<(usize, f64)> = rows
            .iter()
            .filter(|r| r.client == c.label(mpop) && r.rtt == local)
            .filter_map(|r| {
                let elapsed = r.elapsed()?.as_secs_f64();
                let n = r.outcome_messages()?;
                Some((n, elapsed / n as f64))
            })
            .collect();
        sizes.sort_by_key(|(n, _)| *n);
        if let (Some(first), Some(last)) = (sizes.first(), sizes.last())
            && first.0 != last.0
        {
            println!(
                "  {}: {:.3} ms/message at {} messages, {:.3} at {} ({:.2}x)",
                c.label(mpop),
                first.1 * 1e3,
                first.0,
                last.1 * 1e3,
                last.0,
                last.1 / first.1
            );
        }
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
