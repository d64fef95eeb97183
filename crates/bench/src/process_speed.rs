//! `popdesk-bench process-speed`: how fast stored messages become tickets — the
//! generated benchmark mailbox stored as raw messages (as a fetch would leave them),
//! then `Processor::process_pending` on SQLite, attachments included. Prints messages/s.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use intake::{Processor, ProcessorConfig, SystemClock};
use secrecy::SecretString;
use store::{MailboxSettings, NewRawMessage, RawStatus, Store};
use tokio::io::AsyncWriteExt as _;

use crate::mailbox::{self, MailboxSpec};

/// The target on this 2-core machine.
pub const TARGET_PER_SECOND: f64 = 3_000.0;

pub fn run(spec: &MailboxSpec, batch: Option<u32>) -> Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(spec, batch))
}

async fn measure(spec: &MailboxSpec, batch: Option<u32>) -> Result<bool> {
    let messages = mailbox::generate(spec);
    let data = tempfile::tempdir()?;
    let store = Store::open(data.path(), None).await?;
    let settings = MailboxSettings {
        name: "bench".into(),
        host: "pop.example.com".into(),
        username: "support@example.com".into(),
        ..MailboxSettings::default()
    };
    let mailbox = store
        .add_mailbox(&settings, &SecretString::from("x".to_string()), 0)
        .await?;

    let started = Instant::now();
    store_raw(&store, mailbox.id, &messages).await?;
    println!(
        "stored {} raw messages in {:.2} s (setup, not measured)",
        messages.len(),
        started.elapsed().as_secs_f64()
    );
    let bytes: usize = messages.iter().map(|m| m.bytes.len()).sum();
    drop(messages);

    let mut config = ProcessorConfig::default();
    if let Some(batch) = batch {
        config.batch = batch;
    }
    println!("batch: {} messages per transaction", config.batch);
    let processor = Processor::new(store.clone(), Arc::new(SystemClock), config);
    let started = Instant::now();
    let report = processor.process_pending().await?;
    let elapsed = started.elapsed().as_secs_f64();
    let handled = report.processed + report.ignored + report.failed;
    let rate = handled as f64 / elapsed;
    println!(
        "processed {handled} messages ({:.1} MB) into {} tickets in {elapsed:.2} s: {rate:.0} messages/s, {:.1} MB/s \
         ({} to tickets, {} ignored, {} failed)",
        bytes as f64 / 1e6,
        report.tickets_opened,
        bytes as f64 / 1e6 / elapsed,
        report.processed,
        report.ignored,
        report.failed
    );
    let met = rate >= TARGET_PER_SECOND;
    println!(
        "target >= {TARGET_PER_SECOND:.0} messages/s: {}",
        if met { "met" } else { "MISSED" }
    );
    Ok(met && report.failed == 0)
}

/// Stores `messages` as raw messages of the mailbox, in batches of 100, as a fetch leaves
/// them: blobs persisted, then one commit per batch.
pub async fn store_raw(
    store: &Store,
    mailbox_id: i64,
    messages: &[mailbox::Message],
) -> Result<()> {
    for chunk in messages.chunks(100) {
        let mut blobs = Vec::with_capacity(chunk.len());
        let mut items = Vec::with_capacity(chunk.len());
        for message in chunk {
            let mut writer = store.blobs().writer().await?;
            writer.write_all(&message.bytes).await?;
            let blob = writer.finish().await?;
            items.push(NewRawMessage {
                uid: None,
                sha256: blob.sha256.clone(),
                size: blob.size,
                server_size: Some(blob.size),
                message_id: intake::message_id(&message.bytes),
                status: RawStatus::Stored,
            });
            blobs.push(blob);
        }
        store.blobs().persist(blobs).await?;
        store.commit_batch(mailbox_id, &items, 0).await?;
    }
    Ok(())
}
