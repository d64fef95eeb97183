//! Search over the real corpus (issue 15), on SQLite and PostgreSQL: every message of
//! ../shared/corpus processed into tickets, then each ticket found again by a word of
//! its own mail in each script the corpus has (German with umlauts, Cyrillic, Japanese
//! subjects as characters in a row), and a made-up word finding nothing.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::TestStore;
use intake::{ManualClock, Processor, ProcessorConfig};
use secrecy::SecretString;
use store::{Backend, MailboxSettings, NewRawMessage, RawStatus, TicketFilter};
use tokio::io::AsyncWriteExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_tickets_are_found_by_their_own_words_on_sqlite() {
    corpus_tickets_are_found_by_their_own_words(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_tickets_are_found_by_their_own_words_on_postgres() {
    corpus_tickets_are_found_by_their_own_words(Backend::Postgres).await;
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("the corpus index");
    index
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').next())
        .map(|file| std::fs::read(dir.join(file)).expect("a corpus file"))
        .collect()
}

/// Which script a searched word is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Script {
    LatinWithMarks,
    Cyrillic,
    Japanese,
}

/// A word of `text` in one of the scripts: a Latin word with a letter like "ü", a
/// Cyrillic word, or two Japanese characters in a row.
fn word_in(text: &str) -> Option<(Script, String)> {
    let japanese = |c: char| matches!(u32::from(c), 0x3041..=0x30FA | 0x4E00..=0x9FFF);
    let chars: Vec<char> = text.chars().collect();
    for pair in chars.windows(2) {
        if pair.iter().all(|&c| japanese(c)) {
            return Some((Script::Japanese, pair.iter().collect()));
        }
    }
    for word in text.split(|c: char| !c.is_alphabetic()) {
        if word.chars().count() < 4 {
            continue;
        }
        if word
            .chars()
            .all(|c| matches!(u32::from(c), 0x0400..=0x04FF))
        {
            return Some((Script::Cyrillic, word.to_string()));
        }
        if word
            .chars()
            .all(|c| c.is_ascii_alphabetic() || "äöüÄÖÜéèàçñ".contains(c))
            && !word.is_ascii()
        {
            return Some((Script::LatinWithMarks, word.to_string()));
        }
    }
    None
}

async fn corpus_tickets_are_found_by_their_own_words(backend: Backend) {
    let test_store = TestStore::new(backend).await;
    let store = test_store.store.clone();
    let settings = MailboxSettings {
        name: "support".into(),
        host: "pop.example.com".into(),
        username: "support@example.com".into(),
        ..MailboxSettings::default()
    };
    let mailbox = store
        .add_mailbox(&settings, &SecretString::from("x".to_string()), 0)
        .await
        .expect("mailbox");
    for chunk in corpus().chunks(100) {
        let mut blobs = Vec::new();
        let mut items = Vec::new();
        for bytes in chunk {
            let mut writer = store.blobs().writer().await.expect("writer");
            writer.write_all(bytes).await.expect("write");
            let blob = writer.finish().await.expect("finish");
            items.push(NewRawMessage {
                uid: None,
                sha256: blob.sha256.clone(),
                size: blob.size,
                server_size: Some(blob.size),
                message_id: intake::message_id(bytes),
                status: RawStatus::Stored,
            });
            blobs.push(blob);
        }
        store.blobs().persist(blobs).await.expect("persist");
        store
            .commit_batch(mailbox.id, &items, 0)
            .await
            .expect("commit");
    }
    Processor::new(
        store.clone(),
        Arc::new(ManualClock::new(1_800_000_000_000)),
        ProcessorConfig::default(),
    )
    .process_pending()
    .await
    .expect("processed");

    let everything = TicketFilter {
        limit: 100_000,
        ..TicketFilter::default()
    };
    let tickets = store.tickets(&everything).await.expect("tickets");
    assert!(tickets.len() > 300, "{} tickets", tickets.len());
    let mut searched = std::collections::BTreeMap::new();
    for ticket in &tickets {
        let entries = store.ticket_entries(ticket.id).await.expect("entries");
        let texts = entries
            .iter()
            .flat_map(|e| [e.subject.clone().unwrap_or_default(), e.reply_text.clone()]);
        let Some((script, word)) = texts.filter_map(|t| word_in(&t)).next() else {
            continue;
        };
        let search = TicketFilter {
            text: Some(format!("{word} ")),
            ..everything.clone()
        };
        let found = store.search_tickets(&search).await.expect("a search");
        assert!(
            found.iter().any(|hit| hit.ticket.id == ticket.id),
            "{backend:?}: ticket {} ({:?}) is not found by {word:?}",
            ticket.number,
            ticket.subject
        );
        assert_eq!(
            store.count_tickets(&search).await.expect("count"),
            found.len() as u64
        );
        *searched.entry(script).or_insert(0) += 1;
    }
    println!("{backend:?}: searched {searched:?}");
    for script in [Script::LatinWithMarks, Script::Cyrillic, Script::Japanese] {
        assert!(
            searched.contains_key(&script),
            "no {script:?} word in the corpus"
        );
    }
    let nothing = TicketFilter {
        text: Some("zqxjkvbwq".into()),
        ..everything.clone()
    };
    assert!(
        store
            .search_tickets(&nothing)
            .await
            .expect("a search")
            .is_empty()
    );
}
