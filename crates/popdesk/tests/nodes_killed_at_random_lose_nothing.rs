//! Chaos across nodes, for promises 1 (no message is lost), 2 (no message becomes two
//! tickets) and 4 (one fetcher per mailbox at a time): three `popdesk serve` processes,
//! each with its own empty data folder (no shared disk), one PostgreSQL holding all the
//! state and the raw messages, several mailboxes in a real Dovecot with real-world mail
//! and more arriving during the run; nodes are SIGKILLed at random moments and started
//! again. At the end every message is stored exactly once and in one ticket at most, every
//! server mailbox is empty, every raw message reads back through any node's API with the
//! bytes the server served, and the fetch-run records show no two nodes ever fetched one
//! mailbox at the same time.
//!
//! CI-sized by default (about 25 s of chaos, 5 mailboxes × 40 messages);
//! `POPDESK_CHAOS_SECS` sets a longer soak, `POPDESK_CHAOS_MAILBOXES` and
//! `POPDESK_CHAOS_MESSAGES` the size. `POPDESK_TEST_SEED` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::nodes::{Node, admin_token, get, post};
use common::pg::PgDatabase;
use common::{PASSWORD, PASSWORD_VAR, Rng, SourceMail, sha256_hex, support_mailbox};
use testkit::Dovecot;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One fetch run as recorded: which mailbox, when, and which process ("host:pid").
#[derive(Debug)]
struct RunRecord {
    mailbox_id: i64,
    started_at: i64,
    finished_at: Option<i64>,
    fetcher: String,
    outcome: String,
}

#[test]
fn nodes_killed_at_random_lose_nothing_store_nothing_twice_and_never_share_a_mailbox() {
    let chaos = Duration::from_secs(env_number("POPDESK_CHAOS_SECS", 25));
    let mailbox_count = env_number("POPDESK_CHAOS_MAILBOXES", 5) as usize;
    let per_mailbox = env_number("POPDESK_CHAOS_MESSAGES", 40) as usize;
    let mut rng = Rng::from_env("nodes_killed_at_random");

    let dovecot = Dovecot::start();
    let names: Vec<String> = (0..mailbox_count).map(|i| format!("desk{i}")).collect();
    let mut sent: BTreeMap<String, Vec<SourceMail>> = BTreeMap::new();
    for name in &names {
        dovecot.add_user(name, PASSWORD);
        let mail = support_mailbox(&mut rng, per_mailbox, name);
        dovecot.deliver_many(name, mail.iter().map(|m| &m.delivered));
        sent.insert(name.clone(), mail);
    }

    let pg = PgDatabase::create("chaos");
    let mut nodes: Vec<Node> = (0..3)
        .map(|_| Node::new(&pg.url, &["--max-concurrent-fetches", "2"]))
        .collect();
    let port = dovecot.pop3_addr().port().to_string();
    for name in &names {
        let done = nodes[0].cli(&[
            "mailbox",
            "add",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--tls",
            "none",
            "--allow-insecure-auth",
            "--user",
            name,
            "--password-env",
            PASSWORD_VAR,
            "--poll-interval",
            "10",
        ]);
        assert!(done.status.success(), "mailbox add: {}", done.stderr);
    }
    let token = admin_token(&pg.url);
    for node in &mut nodes {
        node.start();
    }
    for node in &nodes {
        node.wait_healthy(Duration::from_secs(60));
    }

    // pid → when it was killed (ms), for runs a killed node left unfinished.
    let mut killed_at: BTreeMap<u32, i64> = BTreeMap::new();
    let mut kills = 0u32;
    let mut extra = 0usize;
    let began = Instant::now();
    while began.elapsed() < chaos {
        std::thread::sleep(Duration::from_millis(rng.range(300, 2500)));
        if rng.chance(0.6) {
            let which = rng.range(0, 3) as usize;
            if let Some((pid, finished)) = nodes[which].kill() {
                killed_at.insert(pid, now_ms());
                if finished.killed() {
                    kills += 1;
                } else {
                    panic!(
                        "node {which} had stopped by itself ({}):\n{}",
                        finished.status, finished.stderr
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(rng.range(100, 1500)));
            nodes[which].start();
        } else {
            // More mail arrives while nodes come and go.
            let name = &names[rng.range(0, names.len() as u64) as usize];
            let tag = format!("{name}-late{extra}");
            let count = rng.range(1, 4) as usize;
            let mail = support_mailbox(&mut rng, count, &tag);
            dovecot.deliver_many(name, mail.iter().map(|m| &m.delivered));
            extra += mail.len();
            sent.get_mut(name).expect("a mailbox").extend(mail);
        }
    }
    for node in &mut nodes {
        if node.serving.is_none() {
            node.start();
        }
    }
    for node in &nodes {
        node.wait_healthy(Duration::from_secs(60));
    }

    // Settle: every mailbox asked to fetch now, until the servers are empty and every
    // stored message is processed.
    let total: usize = sent.values().map(Vec::len).sum();
    let ids: BTreeMap<String, i64> = pg
        .sql("SELECT name, id FROM mailboxes")
        .lines()
        .filter_map(|line| {
            let (name, id) = line.split_once('|')?;
            Some((name.to_string(), id.parse().ok()?))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let on_servers: usize = names.iter().map(|n| dovecot.message_count(n)).sum();
        let pending: usize = pg
            .sql("SELECT COUNT(*) FROM raw_messages WHERE process_status = 'pending'")
            .parse()
            .unwrap();
        if on_servers == 0 && pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not settle: {on_servers} messages on the servers, {pending} pending"
        );
        for (i, id) in ids.values().enumerate() {
            let _ = post(
                nodes[i % nodes.len()].addr,
                &format!("/api/v1/mailboxes/{id}/fetch"),
                Some(&token),
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }

    // Promise 1 and 2: every message sent is stored exactly once, with the served bytes.
    let stored = pg.sql(
        "SELECT m.name, r.id, COALESCE(r.message_id, ''), r.sha256, r.process_status \
         FROM raw_messages r JOIN mailboxes m ON m.id = r.mailbox_id",
    );
    let mut seen: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut raws: Vec<(i64, String)> = Vec::new();
    let mut statuses: BTreeMap<String, u32> = BTreeMap::new();
    for line in stored.lines() {
        let cols: Vec<&str> = line.split('|').collect();
        let (name, id, message_id, sha, status) = (cols[0], cols[1], cols[2], cols[3], cols[4]);
        let expected = sent[name]
            .iter()
            .find(|m| format!("<{}>", m.message_id) == message_id || m.message_id == message_id)
            .unwrap_or_else(|| panic!("{name} stored a message nobody sent: {message_id}"));
        assert_eq!(
            sha, expected.sha256,
            "{message_id}: other bytes than served"
        );
        *seen
            .entry((name.to_string(), expected.message_id.clone()))
            .or_default() += 1;
        raws.push((id.parse().unwrap(), sha.to_string()));
        *statuses.entry(status.to_string()).or_default() += 1;
    }
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    let losses: Vec<String> = sent
        .iter()
        .flat_map(|(name, mail)| mail.iter().map(move |m| (name, m)))
        .filter(|(name, m)| !seen.contains_key(&((*name).clone(), m.message_id.clone())))
        .map(|(name, m)| format!("{name}: {} ({})", m.message_id, m.origin))
        .collect();

    // One ticket at most per message (promise 2): entries per raw message.
    let twice_in_tickets: u32 = pg
        .sql(
            "SELECT COUNT(*) FROM (SELECT raw_message_id FROM ticket_entries \
             GROUP BY raw_message_id HAVING COUNT(*) > 1) twice",
        )
        .parse()
        .unwrap();
    let in_tickets: u32 = pg
        .sql("SELECT COUNT(DISTINCT raw_message_id) FROM ticket_entries")
        .parse()
        .unwrap();

    // Raw bytes through any node's API, each message from a different node in turn.
    for (i, (id, sha)) in raws.iter().enumerate() {
        let node = &nodes[i % nodes.len()];
        let (status, body) = get(
            node.addr,
            &format!("/api/v1/messages/{id}/raw"),
            Some(&token),
        )
        .unwrap_or_else(|| panic!("node {} did not answer", node.addr));
        assert_eq!(status, 200, "message {id} from node {}", node.addr);
        assert_eq!(
            &sha256_hex(&body),
            sha,
            "message {id} read back from node {}",
            node.addr
        );
    }

    // Promise 4: per mailbox, no two runs of different processes overlap. A run a killed
    // node left unfinished ended when that node was killed.
    let runs: Vec<RunRecord> = pg
        .sql(
            "SELECT mailbox_id, started_at, COALESCE(finished_at, -1), COALESCE(fetcher, ''), outcome \
             FROM fetch_runs ORDER BY mailbox_id, started_at",
        )
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split('|').collect();
            let finished: i64 = cols[2].parse().unwrap();
            RunRecord {
                mailbox_id: cols[0].parse().unwrap(),
                started_at: cols[1].parse().unwrap(),
                finished_at: (finished >= 0).then_some(finished),
                fetcher: cols[3].to_string(),
                outcome: cols[4].to_string(),
            }
        })
        .collect();
    let end_of = |run: &RunRecord| -> i64 {
        run.finished_at.unwrap_or_else(|| {
            let pid: u32 = run
                .fetcher
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("a run without its fetcher: {run:?}"));
            *killed_at
                .get(&pid)
                .unwrap_or_else(|| panic!("an unfinished run of a node never killed: {run:?}"))
        })
    };
    let mut overlaps = Vec::new();
    for (i, a) in runs.iter().enumerate() {
        for b in runs[i + 1..]
            .iter()
            .filter(|b| b.mailbox_id == a.mailbox_id)
        {
            if b.started_at < end_of(a) && a.fetcher != b.fetcher {
                overlaps.push(format!("{a:?} and {b:?}"));
            }
        }
    }
    let fetchers: BTreeSet<&str> = runs.iter().map(|r| r.fetcher.as_str()).collect();
    let unfinished = runs.iter().filter(|r| r.finished_at.is_none()).count();
    let empty: Vec<&String> = names
        .iter()
        .filter(|n| dovecot.message_count(n) > 0)
        .collect();
    let leftovers = pg.sql("SELECT COUNT(*) FROM blob_contents WHERE owner IS NOT NULL");

    println!(
        "chaos {:.0?}: {kills} kills, {} runs by {} processes ({unfinished} cut short by a kill), \
         {total} messages ({extra} arrived during the run), {} stored, {in_tickets} in tickets, \
         statuses {statuses:?}, duplicates {duplicates}, losses {}, overlapping runs {}, \
         unfinished blobs left by killed nodes {leftovers}",
        chaos,
        runs.len(),
        fetchers.len(),
        raws.len(),
        losses.len(),
        overlaps.len()
    );
    assert!(kills > 0, "the run killed no node");
    assert_eq!(duplicates, 0, "messages stored twice");
    assert!(losses.is_empty(), "messages lost: {losses:?}");
    assert_eq!(raws.len(), total);
    assert_eq!(twice_in_tickets, 0, "messages in two ticket entries");
    assert!(
        !statuses.contains_key("failed") && !statuses.contains_key("pending"),
        "every message processed: {statuses:?}"
    );
    assert!(empty.is_empty(), "mail left on the server: {empty:?}");
    assert!(
        overlaps.is_empty(),
        "two nodes fetched one mailbox at once: {overlaps:#?}"
    );
    assert!(
        runs.iter()
            .all(|r| r.outcome != "running" || r.finished_at.is_none())
    );
    for node in &mut nodes {
        node.kill();
    }
}
