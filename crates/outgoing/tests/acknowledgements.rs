//! Promise 10 over ../shared/corpus: every real-world message goes through the processor
//! into a mailbox that acknowledges new tickets, then the acknowledger queues what it
//! will send. Judged by what the corpus itself says about each message (its index tags
//! and its own headers, not popdesk's classifier): no acknowledgement to an auto-reply,
//! a bounce or delivery report, list mail or a no-reply/system sender; each queued one
//! is `Auto-Submitted: auto-replied`; at most one per sender; and mail a person wrote
//! from an ordinary address is acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use intake::{ManualClock, Processor, ProcessorConfig};
use outgoing::{AcknowledgementConfig, Acknowledger};
use secrecy::SecretString;
use store::{
    MailboxSettings, NewRawMessage, OutboxKind, RawStatus, SendingSettings, SmtpAuth, Store,
    TlsMode,
};
use tokio::io::AsyncWriteExt as _;

struct CorpusMail {
    file: String,
    tags: BTreeSet<String>,
    bytes: Vec<u8>,
}

fn corpus() -> Vec<CorpusMail> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("the corpus index");
    index
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let file = fields.first()?.to_string();
            let tags = fields
                .get(5)
                .map(|t| t.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            let bytes = std::fs::read(dir.join(&file)).ok()?;
            Some(CorpusMail { file, tags, bytes })
        })
        .collect()
}

/// The header section, unfolded, lower-cased names.
fn headers(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let head = text.split("\n\n").next().unwrap_or("");
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    out
}

/// Why the corpus says this message must never be acknowledged, if it does.
fn must_not_be_acknowledged(mail: &CorpusMail) -> Option<&'static str> {
    let automatic_tags = [
        "auto-reply/ooo",
        "bounce-like",
        "dsn-multipart-report",
        "mdn",
        "arf-feedback-report",
        "tlsrpt",
    ];
    if mail
        .tags
        .iter()
        .any(|t| automatic_tags.contains(&t.as_str()))
    {
        return Some("tagged automatic (auto-reply, bounce, report)");
    }
    let headers = headers(&mail.bytes);
    let value = |name: &str| {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    if value("auto-submitted").iter().any(|v| !v.starts_with("no")) {
        return Some("Auto-Submitted");
    }
    if !value("list-id").is_empty() || !value("list-unsubscribe").is_empty() {
        return Some("list mail");
    }
    if value("precedence")
        .iter()
        .any(|v| ["bulk", "list", "junk", "auto_reply"].contains(&v.as_str()))
    {
        return Some("Precedence bulk/list/junk");
    }
    if !value("x-autoreply").is_empty() || !value("x-autorespond").is_empty() {
        return Some("X-Autoreply");
    }
    let from = value("from").join(" ");
    let system = [
        "noreply",
        "no-reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "mailer-daemon",
        "postmaster",
    ];
    if system.iter().any(|s| from.contains(s)) {
        return Some("a no-reply or system sender");
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_never_answer_automatic_mail_lists_or_no_reply_senders() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), None).await.expect("store");
    let settings = MailboxSettings {
        name: "support".into(),
        host: "pop.example.com".into(),
        username: "support@example.com".into(),
        sending: Some(SendingSettings {
            address: "support@example.com".into(),
            display_name: Some("Example Support".into()),
            smtp_host: "smtp.example.com".into(),
            smtp_port: 587,
            smtp_tls: TlsMode::StartTls,
            smtp_auth: SmtpAuth::Auto,
            smtp_username: None,
            smtp_allow_insecure_auth: false,
            acknowledge: true,
        }),
        ..MailboxSettings::default()
    };
    let mailbox = store
        .add_mailbox(&settings, &SecretString::from("x".to_string()), 0)
        .await
        .expect("mailbox");
    let corpus = corpus();
    assert!(corpus.len() > 800, "the corpus has {} files", corpus.len());
    let mut by_sha = BTreeMap::new();
    for chunk in corpus.chunks(100) {
        let mut blobs = Vec::new();
        let mut items = Vec::new();
        for mail in chunk {
            let mut writer = store.blobs().writer().await.expect("writer");
            writer.write_all(&mail.bytes).await.expect("write");
            let blob = writer.finish().await.expect("finish");
            by_sha.insert(blob.sha256.clone(), mail);
            items.push(NewRawMessage {
                uid: None,
                sha256: blob.sha256.clone(),
                size: blob.size,
                server_size: Some(blob.size),
                message_id: intake::message_id(&mail.bytes),
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
    processor.process_pending().await.expect("processing");
    let acknowledger = Acknowledger::new(store.clone(), AcknowledgementConfig::default());
    let queued = acknowledger.queue_wanted().await.expect("queueing");
    assert!(
        store
            .wanted_acknowledgements(10)
            .await
            .expect("read")
            .is_empty(),
        "every wanted acknowledgement was decided"
    );

    let acks: Vec<_> = store
        .outbox(None, u32::MAX)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|m| m.kind == OutboxKind::Acknowledgement)
        .collect();
    assert_eq!(acks.len() as u64, queued);

    // Which corpus message opened each acknowledged ticket.
    let mut opened_by: BTreeMap<i64, &CorpusMail> = BTreeMap::new();
    for (raw, record) in store
        .raw_messages_with_status(None, None, u32::MAX)
        .await
        .expect("records")
    {
        if record.reason.starts_with("opened ticket")
            && let Some(ticket_id) = record.ticket_id
        {
            opened_by.insert(ticket_id, by_sha[&raw.sha256]);
        }
    }
    let mut recipients = BTreeSet::new();
    let mut wrongly = Vec::new();
    for ack in &acks {
        let mail = opened_by
            .get(&ack.ticket_id)
            .expect("an acknowledgement answers the mail that opened its ticket");
        if let Some(why) = must_not_be_acknowledged(mail) {
            wrongly.push(format!("{} ({why}) → {:?}", mail.file, ack.to));
        }
        assert!(
            recipients.insert(ack.to.join(",")),
            "two acknowledgements to {:?}",
            ack.to
        );
        let bytes = store.blobs().read(&ack.sha256).await.expect("bytes");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains("\r\nAuto-Submitted: auto-replied\r\n"),
            "{}",
            text
        );
        assert!(text.contains(&format!("[#{}]", ack.ticket_number)));
    }
    assert!(
        wrongly.is_empty(),
        "acknowledged automatic mail: {wrongly:#?}"
    );

    // And the other way round: ordinary mail from a person is acknowledged, once per
    // sender. Count the senders of the tickets the corpus calls a person's mail.
    let mut personal_senders = BTreeSet::new();
    for (ticket_id, mail) in &opened_by {
        if must_not_be_acknowledged(mail).is_some() {
            continue;
        }
        let ticket = store
            .ticket_by_id(*ticket_id)
            .await
            .expect("read")
            .expect("ticket");
        if outgoing::compose::is_valid_address(&ticket.requester.address) {
            personal_senders.insert(ticket.requester.address);
        }
    }
    println!(
        "acknowledgements over the corpus: {} messages, {} tickets opened, {} distinct senders of a person's mail by the corpus' own marks, {} acknowledged",
        corpus.len(),
        opened_by.len(),
        personal_senders.len(),
        recipients.len()
    );
    let missed: Vec<_> = personal_senders
        .iter()
        .filter(|s| !recipients.contains(*s))
        .collect();
    println!("not acknowledged: {missed:?}");
    assert!(
        recipients.len() * 10 >= personal_senders.len() * 9,
        "at least 9 in 10 senders of a person's mail are acknowledged ({} of {})",
        recipients.len(),
        personal_senders.len()
    );
}
