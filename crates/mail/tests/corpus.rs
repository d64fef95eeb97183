//! Promise 5 (bad input never blocks the queue): every message of the shared
//! corpus parses (or fails with a reason), none panics, none hangs.

mod common;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mail::{ClassifyContext, MessageKind, classify, parse};

/// A single parse taking longer than this counts as a hang. Generous: a debug build
/// on a loaded 2-core machine.
const PER_MESSAGE_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct Outcome {
    file: String,
    elapsed: Duration,
    result: Result<(String, Vec<String>), String>,
}

fn kind_name(kind: &MessageKind) -> String {
    match kind {
        MessageKind::Normal => "normal".into(),
        MessageKind::Bounce { status, .. } => format!("bounce ({status:?})"),
        MessageKind::AutoReply { confidence } => format!("auto-reply ({confidence:?})"),
        MessageKind::List { .. } => "list".into(),
        MessageKind::FromOurselves => "from ourselves".into(),
    }
}

#[test]
fn every_corpus_message_parses_without_panic_or_hang() {
    let index = common::index();
    let mut files: Vec<String> = index.iter().map(|e| e.file.clone()).collect();
    // Any message file on disk that the index forgot is checked too.
    for dir in std::fs::read_dir(common::corpus_dir())
        .expect("corpus dir")
        .flatten()
    {
        if !dir.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).expect("source dir").flatten() {
            let rel = format!(
                "{}/{}",
                dir.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            );
            if rel.ends_with(".eml") && !files.contains(&rel) {
                files.push(rel);
            }
        }
    }
    assert!(
        files.len() >= 800,
        "corpus looks incomplete: {}",
        files.len()
    );

    let (tx, rx) = mpsc::channel();
    let work = files.clone();
    std::thread::spawn(move || {
        let ctx = ClassifyContext {
            own_addresses: vec!["support@popdesk.example".into()],
        };
        for file in work {
            let raw = common::read(&file);
            let start = Instant::now();
            let result = parse(&raw)
                .map(|m| (kind_name(&classify(&m, &raw, &ctx).kind), m.notes))
                .map_err(|e| e.reason().to_owned());
            let outcome = Outcome {
                file,
                elapsed: start.elapsed(),
                result,
            };
            if tx.send(outcome).is_err() {
                return;
            }
        }
    });

    let started = Instant::now();
    let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_note: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for file in &files {
        let outcome = rx.recv_timeout(PER_MESSAGE_LIMIT).unwrap_or_else(|_| {
            panic!("parsing hung (over {PER_MESSAGE_LIMIT:?}) at or after {file}")
        });
        if outcome.elapsed > slowest.0 {
            slowest = (outcome.elapsed, outcome.file.clone());
        }
        match outcome.result {
            Ok((kind, notes)) => {
                let key = if notes.is_empty() {
                    "parsed"
                } else {
                    "parsed with notes"
                };
                *by_outcome.entry(key.into()).or_default() += 1;
                *by_kind.entry(kind).or_default() += 1;
                for note in notes {
                    // Count notes by their first words so the table stays short.
                    let head: String = note
                        .split_whitespace()
                        .take(6)
                        .collect::<Vec<_>>()
                        .join(" ");
                    *by_note.entry(head).or_default() += 1;
                }
            }
            Err(reason) => {
                *by_outcome.entry("parse error".into()).or_default() += 1;
                failures.push(format!("{}: {reason}", outcome.file));
            }
        }
    }
    let total = started.elapsed();

    println!(
        "corpus: {} messages in {total:.2?} (slowest {:.2?}: {})",
        files.len(),
        slowest.0,
        slowest.1
    );
    println!("outcomes:");
    for (k, v) in &by_outcome {
        println!("  {v:5}  {k}");
    }
    println!("classification:");
    for (k, v) in &by_kind {
        println!("  {v:5}  {k}");
    }
    println!("notes:");
    for (k, v) in &by_note {
        println!("  {v:5}  {k}");
    }
    for f in &failures {
        println!("FAILED {f}");
    }
    assert!(
        failures.is_empty(),
        "{} messages failed to parse",
        failures.len()
    );
    assert!(total < Duration::from_secs(120), "corpus took {total:?}");
}

#[test]
fn forwarded_messages_are_kept_whole_and_parse_on_their_own() {
    // A forwarded or returned message is stored as an attachment; the bytes kept
    // must be the whole enclosed message, so parsing them again gives the same
    // headline as the summary made from the enclosing message.
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for entry in common::tagged("message-rfc822") {
        let Ok(message) = parse(&common::read(&entry.file)) else {
            continue;
        };
        for att in &message.attachments {
            let Some(summary) = &att.forwarded else {
                continue;
            };
            let Some(id) = &summary.message_id else {
                continue;
            };
            let again = parse(&att.data).expect("enclosed message parses");
            checked += 1;
            if &again.message_id != id || again.subject != summary.subject {
                mismatches.push(format!(
                    "{}: {id} / {:?} vs {} / {:?}",
                    entry.file, summary.subject, again.message_id, again.subject
                ));
            }
        }
    }
    println!("{checked} enclosed messages re-parsed");
    assert!(checked > 100, "only {checked}");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
