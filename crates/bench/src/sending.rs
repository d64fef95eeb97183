//! `popdesk-bench sending`: how fast the outbox empties through a real, local Postfix —
//! replies queued through the reply rules (composed, committed), then one sender pass;
//! the time until every reply is accepted, replies/s, and how many SMTP connections
//! carried them. Numbers, not a gate. As root: it starts a private Dovecot and Postfix.

use std::time::Instant;

use anyhow::{Result, bail};
use outgoing::{AcknowledgementConfig, Outgoing, ReplyConfig, ReplyRequest, SenderConfig};
use secrecy::SecretString;
use store::{
    EntryKind, MailboxSettings, NewRawMessage, NewTicketEntry, OutboxState, RawStatus,
    SendingSettings, SmtpAuth, Store, TlsMode,
};
use testkit::{Dovecot, Postfix};

const USER: &str = "support";
const PASSWORD: &str = "bench-support-pass";

pub fn run(replies: usize) -> Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(replies))
}

async fn measure(replies: usize) -> Result<bool> {
    let dovecot = Dovecot::builder().lmtp(true).sasl_listener(true).start();
    dovecot.add_user(USER, PASSWORD);
    dovecot.add_user("customer", "customer-pass");
    let postfix = Postfix::start(&dovecot);
    let data = tempfile::tempdir()?;
    let store = Store::open(data.path(), None).await?;
    let settings = MailboxSettings {
        name: "bench".into(),
        host: dovecot.host().into(),
        port: dovecot.pop3s_addr().port(),
        username: USER.into(),
        ca_file: Some(dovecot.ca_pem_path().display().to_string()),
        sending: Some(SendingSettings {
            address: "support@example.com".into(),
            display_name: Some("Bench Support".into()),
            smtp_host: postfix.host().into(),
            smtp_port: postfix.submission_addr().port(),
            smtp_tls: TlsMode::StartTls,
            smtp_auth: SmtpAuth::Auto,
            smtp_username: None,
            smtp_allow_insecure_auth: false,
            acknowledge: false,
        }),
        ..MailboxSettings::default()
    };
    let mailbox = store
        .add_mailbox(&settings, &SecretString::from(PASSWORD.to_string()), 0)
        .await?;
    let number = open_ticket(&store, mailbox.id).await?;
    let outgoing = Outgoing::new(
        store.clone(),
        ReplyConfig::default(),
        AcknowledgementConfig::default(),
        SenderConfig {
            batch: 100,
            ..SenderConfig::default()
        },
    );

    let queue_started = Instant::now();
    for n in 0..replies {
        outgoing
            .replies
            .queue(ReplyRequest {
                ticket_number: number,
                body: format!("Answer number {n}: try turning it off and on again.\n"),
                author: "bench".into(),
                ..ReplyRequest::default()
            })
            .await?;
    }
    let queued_in = queue_started.elapsed();

    let send_started = Instant::now();
    let report = outgoing.sender.send_due().await?;
    let sent_in = send_started.elapsed();
    let sent = store.outbox(Some(OutboxState::Sent), u32::MAX).await?.len();
    if sent != replies {
        bail!(
            "{sent} of {replies} replies were accepted ({} retrying, {} failed)\n{}",
            report.retrying,
            report.failed,
            postfix.log()
        );
    }
    let delivered = postfix
        .wait_for_delivery(
            &dovecot,
            "customer",
            replies,
            std::time::Duration::from_secs(300),
        )
        .await
        .len();
    let delivered_in = send_started.elapsed();
    println!("sending {replies} replies through a local Postfix (submission, STARTTLS, AUTH)");
    println!(
        "  queued (composed, committed) in {:.2} s: {:.0} replies/s",
        queued_in.as_secs_f64(),
        replies as f64 / queued_in.as_secs_f64()
    );
    println!(
        "  accepted by Postfix in {:.2} s: {:.0} replies/s, over {} SMTP connection{} ({} passes of {} claimed)",
        sent_in.as_secs_f64(),
        replies as f64 / sent_in.as_secs_f64(),
        report.connections,
        if report.connections == 1 { "" } else { "s" },
        replies.div_ceil(100),
        100
    );
    println!(
        "  delivered into the customer's mailbox ({delivered}) {:.2} s after sending began",
        delivered_in.as_secs_f64()
    );
    Ok(true)
}

/// A ticket to answer, opened by one stored customer message.
async fn open_ticket(store: &Store, mailbox_id: i64) -> Result<i64> {
    let raw = b"From: Carla <customer@example.com>\r\nTo: support@example.com\r\n\
Subject: Bench question\r\nMessage-ID: <bench-1@example.com>\r\n\r\nHello?\r\n";
    let mut writer = store.blobs().writer().await?;
    tokio::io::AsyncWriteExt::write_all(&mut writer, raw).await?;
    let blob = writer.finish().await?;
    let item = NewRawMessage {
        uid: Some("bench-1".into()),
        sha256: blob.sha256.clone(),
        size: blob.size,
        server_size: Some(blob.size),
        message_id: Some("<bench-1@example.com>".into()),
        status: RawStatus::Stored,
    };
    store.blobs().persist(vec![blob]).await?;
    let outcomes = store.commit_batch(mailbox_id, &[item], 0).await?;
    let raw_id = outcomes[0].raw_message_id();
    let mut tx = store.begin_processing().await?;
    let person = tx.person("customer@example.com", Some("Carla")).await?;
    let ticket = tx
        .create_ticket(mailbox_id, "Bench question", &person, 0)
        .await?;
    tx.add_entry(
        ticket.id,
        mailbox_id,
        &NewTicketEntry {
            raw_message_id: raw_id,
            message_id: "bench-1@example.com".into(),
            kind: EntryKind::Message,
            from_address: Some("customer@example.com".into()),
            from_name: Some("Carla".into()),
            subject: Some("Bench question".into()),
            sent_at: Some(0),
            reply_text: "Hello?".into(),
            text_body: "Hello?".into(),
            html_body: None,
            attachments: Vec::new(),
        },
        0,
    )
    .await?;
    tx.commit().await?;
    Ok(ticket.number)
}
