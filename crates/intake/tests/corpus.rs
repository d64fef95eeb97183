//! Every real-world message of ../shared/corpus through the processor, on SQLite and on
//! PostgreSQL: no panic, no hang, each one ends processed or ignored with a reason, none
//! fails (promise 5: bad input never blocks the queue). Prints how many ended in each
//! outcome and how long it took.
//!
//! Mail made for the purpose joins the corpus: decoded text holding U+0000 (a NUL in a
//! header, a `=00` in quoted-printable), which SQLite stores and PostgreSQL refuses
//! (issue 13), and a UTF-16 part labelled as another charset, which is read as UTF-16
//! (issue 18). On both it must become a ticket, with the same text.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestStore;
use intake::{ManualClock, Processor, ProcessorConfig};
use secrecy::SecretString;
use store::{Backend, MailboxSettings, NewRawMessage, ProcessStatus, RawStatus};
use tokio::io::AsyncWriteExt as _;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let index = std::fs::read_to_string(dir.join("INDEX.tsv"))
        .unwrap_or_else(|e| panic!("the corpus index {} is missing: {e}", dir.display()));
    index
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').next())
        .map(|file| {
            let bytes =
                std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("corpus file {file}: {e}"));
            (file.to_string(), bytes)
        })
        .collect()
}

/// U+0000 in a header, in a quoted-printable body, in a UTF-16 part labelled Latin-1;
/// each with the subject its ticket must get and text its entry must hold.
fn messages_with_nul() -> Vec<(String, Vec<u8>)> {
    let header = b"From: \"Ali\0ce\" <alice@example.org>\r\nTo: support@example.com\r\n\
Subject: NUL in a header: a\0b\r\nMessage-ID: <nul\0header@made.example>\r\n\
Date: Thu, 26 Nov 2026 08:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
The subject holds a NUL.\r\n"
        .to_vec();
    let quoted_printable = b"From: bob@example.org\r\nTo: support@example.com\r\n\
Subject: =?utf-8?q?NUL_in_an_encoded_word=3A_c=00d?=\r\n\
Message-ID: <nul-qp@made.example>\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nbody=00with=00nuls\r\n"
        .to_vec();
    // "UTF-16 text" in UTF-16LE, labelled ISO-8859-1: every other byte is 0x00.
    let utf16: String = "UTF-16 text"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .map(|b| format!("={b:02X}"))
        .collect();
    let mut utf16_part = b"From: carol@example.org\r\nTo: support@example.com\r\n\
Subject: a UTF-16 part read as Latin-1\r\nMessage-ID: <nul-utf16@made.example>\r\n\
Date: Thu, 26 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        .to_vec();
    // Quoted-printable lines stay under 76 characters with soft breaks.
    for chunk in utf16.as_bytes().chunks(72) {
        utf16_part.extend_from_slice(chunk);
        utf16_part.extend_from_slice(b"=\r\n");
    }
    utf16_part.extend_from_slice(
        b"\r\n--B\r\nContent-Type: text/plain; charset=iso-8859-1; name=\"a=00b.txt\"\r\n\
Content-Disposition: attachment; filename*=iso-8859-1''f%00g.txt\r\n\r\nattached\r\n--B--\r\n",
    );
    vec![
        ("made/nul-in-a-header.eml".to_string(), header),
        (
            "made/nul-in-quoted-printable.eml".to_string(),
            quoted_printable,
        ),
        ("made/utf-16-read-as-latin-1.eml".to_string(), utf16_part),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_message_ends_processed_or_ignored_with_a_reason() {
    every_message_ends_processed_or_ignored(Backend::Sqlite).await;
}

/// The same on PostgreSQL, which refuses what SQLite takes (U+0000 in text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_every_corpus_message_ends_processed_or_ignored_with_a_reason() {
    every_message_ends_processed_or_ignored(Backend::Postgres).await;
}

async fn every_message_ends_processed_or_ignored(backend: Backend) {
    let mut messages = corpus();
    assert!(
        messages.len() > 800,
        "the corpus has {} files",
        messages.len()
    );
    messages.extend(messages_with_nul());
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

    let mut names = BTreeMap::new();
    for chunk in messages.chunks(100) {
        let mut blobs = Vec::new();
        let mut items = Vec::new();
        for (name, bytes) in chunk {
            let mut writer = store.blobs().writer().await.expect("writer");
            writer.write_all(bytes).await.expect("write");
            let blob = writer.finish().await.expect("finish");
            names.insert(blob.sha256.clone(), name.clone());
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

    let processor = Processor::new(
        store.clone(),
        Arc::new(ManualClock::new(1_800_000_000_000)),
        ProcessorConfig::default(),
    );
    let started = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(300), processor.process_pending())
        .await
        .expect("processing the corpus never hangs")
        .expect("the store works");
    let elapsed = started.elapsed();

    let all = store
        .raw_messages_with_status(None, None, u32::MAX)
        .await
        .expect("records");
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (raw, record) in &all {
        assert!(
            !record.reason.is_empty(),
            "message {} has no reason",
            raw.id
        );
        let key = match record.status {
            ProcessStatus::Ignored => format!(
                "ignored: {}",
                record.reason.split([':', ';', '(']).next().unwrap_or("")
            ),
            other => other.to_string(),
        };
        *outcomes.entry(key).or_default() += 1;
        if record.status == ProcessStatus::Failed || record.status == ProcessStatus::Pending {
            failures.push(format!(
                "{}: {}",
                names.get(&raw.sha256).map_or("?", String::as_str),
                record.reason
            ));
        }
    }
    println!(
        "corpus on {backend:?}: {} stored messages processed in {:.2} s; {} tickets opened",
        all.len(),
        elapsed.as_secs_f64(),
        report.tickets_opened
    );
    for (outcome, count) in &outcomes {
        println!("  {count:>4}  {outcome}");
    }
    assert!(failures.is_empty(), "failed: {failures:#?}");
    assert_eq!(report.failed, 0);
    assert_eq!(
        (report.processed + report.ignored) as usize,
        all.len(),
        "every stored message was decided"
    );
    // The made messages are tickets, their U+0000 stored as U+FFFD, alike on both
    // backends.
    let r = '\u{FFFD}';
    let mut made = BTreeMap::new();
    for (raw, record) in &all {
        let name = names.get(&raw.sha256).map_or("?", String::as_str);
        if !name.starts_with("made/") {
            continue;
        }
        assert_eq!(
            record.status,
            ProcessStatus::Processed,
            "{name}: {}",
            record.reason
        );
        let entry = store
            .entry_for_raw_message(raw.id)
            .await
            .expect("read the entry")
            .unwrap_or_else(|| panic!("{name} has a ticket entry"));
        let texts = [
            Some(entry.message_id.as_str()),
            entry.from_name.as_deref(),
            entry.subject.as_deref(),
            Some(entry.text_body.as_str()),
            Some(entry.reply_text.as_str()),
        ];
        for text in texts.into_iter().flatten() {
            assert!(!text.contains('\0'), "{name}: {text:?}");
        }
        made.insert(name.to_string(), entry);
    }
    assert_eq!(made.len(), 3, "{:?}", made.keys());
    let header = &made["made/nul-in-a-header.eml"];
    // The parser makes control characters in headers spaces; the Message-ID the fetcher
    // reads off the raw header for dedupe keeps it, and is stored with U+FFFD.
    let (raw_header, _) = all
        .iter()
        .find(|(raw, _)| raw.id == header.raw_message_id)
        .expect("the raw message of the header mail");
    assert_eq!(
        raw_header.message_id.as_deref(),
        Some(format!("nul{r}header@made.example").as_str())
    );
    let qp = &made["made/nul-in-quoted-printable.eml"];
    assert!(
        qp.text_body.contains(&format!("body{r}with{r}nuls")),
        "{:?}",
        qp.text_body
    );
    // The UTF-16 part is recognised whatever its label says (issue 18), so no NUL
    // is left to store.
    let utf16 = &made["made/utf-16-read-as-latin-1.eml"];
    assert!(
        utf16.text_body.contains("UTF-16 text"),
        "{:?}",
        utf16.text_body
    );
    for attachment in &utf16.attachments {
        assert!(
            !attachment.name.as_deref().unwrap_or("").contains('\0'),
            "{attachment:?}"
        );
    }
}
