//! `popdesk-bench api-load`: the ticket list and search under load (issues 5 and 15):
//! `wrk` against the JSON API of a real `popdesk serve` (release build) holding 10,000
//! tickets made of 30,000 messages (each ticket its first mail and two replies threaded
//! onto it), on SQLite and on PostgreSQL. For each backend it measures the list at its
//! first, a middle and its last page, and a full-text search for a rare and for a common
//! word: first with nothing else running, then while the scheduler fetches a large
//! mailbox from a private Dovecot in the same process. Prints requests/s, p50 and p99 of
//! each, against the target of p99 under 50 ms.
//!
//! `scripts/bench-api` builds what this needs and runs it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use secrecy::SecretString;
use store::{MailboxSettings, Store};

use crate::mailbox::{self, MailboxSpec};

/// The issue's target for a 50-row page on this 2-core machine.
pub const TARGET_P99_MS: f64 = 50.0;

/// A word the seeded replies carry in one ticket out of a thousand.
const RARE_WORD: &str = "zeppelin";
/// A word of the generated prose that most messages carry.
const COMMON_WORD: &str = "account";

/// Which database a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

pub struct Options {
    pub popdesk: PathBuf,
    pub tickets: usize,
    /// Messages per seeded ticket: the first and its replies.
    pub messages_per_ticket: usize,
    /// Messages delivered to the mailbox fetched during each loaded run.
    pub fetch_messages: usize,
    pub seconds: u64,
    pub connections: u32,
    pub backends: Vec<Backend>,
    /// Keep the data folders (to look at the seeded databases afterwards).
    pub keep: bool,
}

/// What one query measured, idle and while a fetch runs.
struct QueryResult {
    name: &'static str,
    idle: WrkResult,
    busy: WrkResult,
    /// Messages the fetch took from the server during the loaded window.
    fetched: usize,
}

pub fn run(options: &Options) -> Result<bool> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed (apt-get install -y wrk; scripts/bench-api does it)");
    }
    let started = Instant::now();
    let seed_mail = seed_messages(options.tickets, options.messages_per_ticket.max(1));
    println!(
        "generated {} tickets' mail, {} messages, in {:.1} s",
        options.tickets,
        seed_mail.len(),
        started.elapsed().as_secs_f64()
    );
    let dovecot = testkit::Dovecot::start();
    let pg = options
        .backends
        .contains(&Backend::Postgres)
        .then(testkit::PrivatePostgres::start);
    let mut all = Vec::new();
    for &backend in &options.backends {
        let url = match (backend, &pg) {
            (Backend::Postgres, Some(pg)) => Some(pg.create_database("api_load")),
            _ => None,
        };
        let results = run_backend(options, backend, url.as_deref(), &seed_mail, &dovecot)?;
        all.push((backend, results));
    }

    println!();
    println!(
        "{} tickets of {} messages; 50 rows a page; wrk -t2 -c{} -d{}s; p50 / p99 in ms",
        options.tickets,
        seed_mail.len(),
        options.connections,
        options.seconds
    );
    let mut met = true;
    print!("{:<28}", "");
    for (backend, _) in &all {
        print!(" {:>27}", format!("{} idle", backend.label()));
        print!(" {:>27}", format!("{} during a fetch", backend.label()));
    }
    println!();
    let names: Vec<&str> = all
        .first()
        .map(|(_, r)| r.iter().map(|q| q.name).collect())
        .unwrap_or_default();
    for (i, name) in names.iter().enumerate() {
        print!("{name:<28}");
        for (_, results) in &all {
            let q = &results[i];
            for r in [&q.idle, &q.busy] {
                met &= r.p99_ms < TARGET_P99_MS;
                print!(
                    " {:>27}",
                    format!(
                        "{:.2} / {:.2} ({:.0}/s)",
                        r.p50_ms, r.p99_ms, r.requests_per_sec
                    )
                );
            }
        }
        println!();
    }
    for (backend, results) in &all {
        for q in results {
            println!(
                "{}: the fetch took {} messages from the server while \"{}\" was loaded",
                backend.label(),
                q.fetched,
                q.name
            );
        }
    }
    println!(
        "target: every p99 < {TARGET_P99_MS:.0} ms: {}",
        if met { "met" } else { "MISSED" }
    );
    Ok(met)
}

fn run_backend(
    options: &Options,
    backend: Backend,
    database_url: Option<&str>,
    seed_mail: &[Vec<u8>],
    dovecot: &testkit::Dovecot,
) -> Result<Vec<QueryResult>> {
    let work = tempfile::Builder::new()
        .prefix("popdesk-api-load-")
        .tempdir()?;
    let data = work.path().join("data");
    let started = Instant::now();
    seed(&data, database_url, seed_mail, options.tickets)?;
    println!(
        "{}: seeded {} tickets from {} messages through the processor in {:.1} s (setup, not measured)",
        backend.label(),
        options.tickets,
        seed_mail.len(),
        started.elapsed().as_secs_f64()
    );
    let popdesk = |args: &[&str]| {
        let mut command = Command::new(&options.popdesk);
        command.arg("--data").arg(&data);
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        command.args(args);
        command
    };

    let password = "bench-admin-password";
    let status = popdesk(&["user", "add", "admin@bench.test", "--role", "admin"])
        .args(["--password-env", "BENCH_ADMIN_PASSWORD"])
        .env("BENCH_ADMIN_PASSWORD", password)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("popdesk user add failed");
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let log = std::fs::File::create(work.path().join("serve.log"))?;
    let mut serve = Server(
        popdesk(&["serve", "--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    wait_healthy(addr)?;
    let token = api_token(addr, password)?;
    let base = format!("http://{addr}");
    let first = "/api/v1/tickets?per_page=50".to_string();
    let (middle, last) = deep_pages(addr, &token, &first)?;
    let queries: Vec<(&'static str, String)> = vec![
        ("list, first page", first),
        ("list, a middle page", middle),
        ("list, last page", last),
        (
            "search, a rare word",
            format!("/api/v1/tickets?per_page=50&q={RARE_WORD}"),
        ),
        (
            "search, a common word",
            format!("/api/v1/tickets?per_page=50&q={COMMON_WORD}"),
        ),
    ];
    for (name, path) in &queries {
        let (status, body) = http(addr, "GET", path, Some(&token), "")?;
        if status != 200 || !body.contains("\"number\"") {
            bail!("{name}: {path} answered {status} without tickets: {body:.300}");
        }
    }

    let mut idle = Vec::new();
    for (_, path) in &queries {
        idle.push(wrk(&format!("{base}{path}"), &token, options)?);
    }

    // A large mailbox, fetched by the scheduler in the same process while wrk runs: one
    // mailbox, refilled before each loaded window.
    let user = format!("live{}", backend.label().to_lowercase());
    dovecot.add_user(&user, "bench-password");
    let body = format!(
        "{{\"name\":\"live\",\"host\":\"{}\",\"port\":{},\"tls\":\"implicit\",\"username\":\"{user}\",\
         \"password\":\"bench-password\",\"ca_file\":\"{}\"}}",
        dovecot.host(),
        dovecot.pop3s_addr().port(),
        dovecot.ca_pem_path().display()
    );
    let (status, created) = http(addr, "POST", "/api/v1/mailboxes", Some(&token), &body)?;
    if status != 201 && status != 200 {
        bail!("creating the mailbox answered {status}: {created}");
    }
    let id = serde_json_id(&created)?;
    let mut results = Vec::new();
    for (round, ((name, path), idle)) in queries.iter().zip(idle).enumerate() {
        let mail = mailbox::generate(&MailboxSpec {
            messages: options.fetch_messages,
            total_bytes: options.fetch_messages as u64 * 12_000,
            seed: 7 + round as u64,
        });
        dovecot.deliver_many(&user, mail.iter().map(|m| &m.bytes));
        drop(mail);
        let before = dovecot.message_count(&user);
        let _ = http(
            addr,
            "POST",
            &format!("/api/v1/mailboxes/{id}/fetch"),
            Some(&token),
            "",
        )?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while dovecot.message_count(&user) == before {
            if Instant::now() > deadline {
                bail!("the fetch did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let busy = wrk(&format!("{base}{path}"), &token, options)?;
        let at_end = dovecot.message_count(&user);
        if at_end == 0 {
            println!(
                "note: the fetch finished before the \"{name}\" window ended; raise --fetch-messages"
            );
        }
        // The next window starts from an empty mailbox.
        let deadline = Instant::now() + Duration::from_secs(600);
        while dovecot.message_count(&user) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        results.push(QueryResult {
            name,
            idle,
            busy,
            fetched: before.saturating_sub(at_end),
        });
    }
    serve.stop();
    if options.keep {
        println!("data folder kept: {}", work.keep().display());
    }
    Ok(results)
}

/// The paths of a page in the middle and of the last page, reached the way a client
/// pages: by following the list's `next` cursor when it gives one (keyset paging), else
/// by page number.
fn deep_pages(addr: SocketAddr, token: &str, first: &str) -> Result<(String, String)> {
    let (status, body) = http(addr, "GET", first, Some(token), "")?;
    if status != 200 {
        bail!("{first} answered {status}: {body:.300}");
    }
    let page: serde_json::Value = serde_json::from_str(&body)?;
    let total = page["total"].as_u64().unwrap_or(0);
    let pages = total.div_ceil(50).max(1);
    if page.get("next").is_none() {
        return Ok((
            format!("{first}&page={}", pages / 2 + 1),
            format!("{first}&page={pages}"),
        ));
    }
    let mut path = first.to_string();
    let mut middle = None;
    for n in 1..=pages {
        if n == pages / 2 + 1 {
            middle = Some(path.clone());
        }
        let (status, body) = http(addr, "GET", &path, Some(token), "")?;
        if status != 200 {
            bail!("{path} answered {status}: {body:.300}");
        }
        let page: serde_json::Value = serde_json::from_str(&body)?;
        // `next` is the cursor for `after`.
        match page["next"].as_str() {
            Some(next) if n < pages => path = format!("{first}&after={next}"),
            _ => break,
        }
    }
    let middle = middle.ok_or_else(|| anyhow!("the list has no middle page"))?;
    Ok((middle, path))
}

/// The seeded mail: each ticket's first message from the benchmark mailbox, then its
/// replies, threaded by In-Reply-To, in arrival order (every first message before any
/// reply, as processing takes them in order).
fn seed_messages(tickets: usize, per_ticket: usize) -> Vec<Vec<u8>> {
    let firsts = mailbox::generate(&MailboxSpec {
        messages: tickets,
        total_bytes: tickets as u64 * 4_000,
        seed: 1,
    });
    let mut replies = Vec::new();
    for round in 1..per_ticket {
        for (t, first) in firsts.iter().enumerate() {
            replies.push(reply(&first.bytes, t, round));
        }
    }
    firsts.into_iter().map(|m| m.bytes).chain(replies).collect()
}

/// The first line of a header in generated mail (they are never folded).
fn header<'a>(message: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(message.get(..8_192.min(message.len()))?).ok()?;
    text.split("\r\n")
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

/// A customer's follow-up to `first`: the same sender, `Re:` its subject.
fn reply(first: &[u8], ticket: usize, round: usize) -> Vec<u8> {
    let id = header(first, "Message-ID").unwrap_or("<missing@bench.test>");
    let from = header(first, "From").unwrap_or("customer@example.org");
    let subject = header(first, "Subject").unwrap_or("Question");
    let rare = if ticket % 1000 == 7 && round == 1 {
        format!(" The {RARE_WORD} shipment is still missing.")
    } else {
        String::new()
    };
    let day = 1 + (ticket % 28);
    format!(
        "Message-ID: <reply-{ticket}-{round}@customer.example>\r\n\
         In-Reply-To: {id}\r\nReferences: {id}\r\nFrom: {from}\r\n\
         To: Support <support@helpdesk.example>\r\nSubject: Re: {subject}\r\n\
         Date: Tue, {day} Sep 2026 10:{:02}:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello again,\r\n\r\nAny news on this? My account still shows the old state \
         after the update.{rare}\r\n\r\nThanks\r\n",
        round % 60
    )
    .into_bytes()
}

/// Kills `popdesk serve` if the benchmark stops early.
struct Server(Child);

impl Server {
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stores the seed mail as a fetch would and lets the processor turn it into tickets.
fn seed(
    data: &Path,
    database_url: Option<&str>,
    messages: &[Vec<u8>],
    tickets: usize,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = Store::open(data, database_url).await?;
        let settings = MailboxSettings {
            name: "seeded".into(),
            host: "pop.example.invalid".into(),
            username: "support@example.com".into(),
            // Only its tickets matter; the scheduler must not poll a made-up host.
            enabled: false,
            ..MailboxSettings::default()
        };
        let mailbox = store
            .add_mailbox(&settings, &SecretString::from("x".to_string()), 0)
            .await?;
        let messages: Vec<mailbox::Message> = messages
            .iter()
            .map(|bytes| mailbox::Message {
                bytes: bytes.clone(),
            })
            .collect();
        crate::process_speed::store_raw(&store, mailbox.id, &messages).await?;
        let processor = intake::Processor::new(
            store.clone(),
            std::sync::Arc::new(intake::SystemClock),
            intake::ProcessorConfig::default(),
        );
        let report = processor.process_pending().await?;
        if report.tickets_opened < tickets as u64 {
            bail!(
                "seeding opened {} tickets, wanted {tickets}",
                report.tickets_opened
            );
        }
        if report.tickets_opened > tickets as u64 {
            bail!(
                "seeding opened {} tickets, wanted {tickets}: replies did not thread",
                report.tickets_opened
            );
        }
        store.close().await;
        Ok(())
    })
}

struct WrkResult {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn wrk(url: &str, token: &str, options: &Options) -> Result<WrkResult> {
    let output = Command::new("wrk")
        .args(["-t2", &format!("-c{}", options.connections)])
        .args([&format!("-d{}s", options.seconds), "--latency"])
        .args(["-H", &format!("Authorization: Bearer {token}"), url])
        .output()
        .context("run wrk")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    if text.contains("Non-2xx") {
        bail!("some requests did not succeed:\n{text}");
    }
    let percentile = |label: &str| -> Result<f64> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .ok_or_else(|| anyhow!("no {label} line in wrk's output:\n{text}"))?;
        let value = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| anyhow!("no value on {line}"))?;
        parse_duration_ms(value)
    };
    let requests_per_sec = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("no Requests/sec in wrk's output:\n{text}"))?;
    Ok(WrkResult {
        requests_per_sec,
        p50_ms: percentile("50%")?,
        p99_ms: percentile("99%")?,
    })
}

/// wrk's durations: `812.00us`, `3.21ms`, `1.02s`.
fn parse_duration_ms(value: &str) -> Result<f64> {
    let (number, factor) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        bail!("unknown duration {value}");
    };
    Ok(number.parse::<f64>()? * factor)
}

fn wait_healthy(addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok((200, _)) = http(addr, "GET", "/healthz", None, "") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("popdesk serve did not answer on {addr}")
}

/// Signs in as the admin and creates an API token for wrk.
fn api_token(addr: SocketAddr, password: &str) -> Result<String> {
    let body = format!("{{\"email\":\"admin@bench.test\",\"password\":\"{password}\"}}");
    let mut stream = TcpStream::connect(addr)?;
    let request = format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let cookie = response
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .ok_or_else(|| anyhow!("sign-in gave no cookie:\n{response}"))?
        .to_string();
    // Admin: the same token also creates the mailbox that is fetched during the load.
    let body = r#"{"name":"wrk","role":"admin"}"#;
    let mut stream = TcpStream::connect(addr)?;
    let request = format!(
        "POST /api/v1/tokens HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nOrigin: http://{addr}\r\n\
         Cookie: {cookie}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let start = response
        .find("\"token\":\"")
        .ok_or_else(|| anyhow!("no token in:\n{response}"))?
        + 9;
    let end = start
        + response[start..]
            .find('"')
            .ok_or_else(|| anyhow!("unterminated token"))?;
    Ok(response[start..end].to_string())
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP answer: {response}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The `id` of a created resource.
fn serde_json_id(body: &str) -> Result<i64> {
    let start = body
        .find("\"id\":")
        .ok_or_else(|| anyhow!("no id in {body}"))?
        + 5;
    let digits: String = body[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Ok(digits.parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_durations_in_milliseconds() {
        assert_eq!(parse_duration_ms("812.00us").ok(), Some(0.812));
        assert_eq!(parse_duration_ms("3.21ms").ok(), Some(3.21));
        assert_eq!(parse_duration_ms("1.50s").ok(), Some(1500.0));
        assert!(parse_duration_ms("3.2m").is_err());
    }
}
