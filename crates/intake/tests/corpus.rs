//! Every real-world message of ../shared/corpus through the processor: no panic, no hang,
//! each one ends processed or ignored with a reason, none fails (promise 5: bad input
//! never blocks the queue). Prints how many ended in each outcome.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use intake::{ManualClock, Processor, ProcessorConfig};
use secrecy::SecretString;
use store::{MailboxSettings, NewRawMessage, ProcessStatus, RawStatus, Store};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_message_ends_processed_or_ignored_with_a_reason() {
    let messages = corpus();
    assert!(
        messages.len() > 800,
        "the corpus has {} files",
        messages.len()
    );
    let data = tempfile::TempDir::new().expect("temp dir");
    let store = Store::open(data.path(), None).await.expect("open store");
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
    let report = tokio::time::timeout(Duration::from_secs(120), processor.process_pending())
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
        "corpus: {} stored messages processed in {:.2} s; {} tickets opened",
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
}
