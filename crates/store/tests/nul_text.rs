//! Text from mail that holds U+0000 (issue 13): PostgreSQL refuses it in a text value,
//! SQLite takes it. The store makes it safe at its edge, the same way on both backends,
//! so one mail's odd text never fails a batch (promise 5); and when a database does refuse
//! data, the error says so rather than looking like a lock conflict to retry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, TestDb, add_mailbox, message, on_both_backends};
use sqlx::Connection;
use store::{
    Backend, EntryAttachment, EntryKind, ForwardedMessage, NewTicketEntry, ProcessRecord,
    ProcessStatus, StoreError, TicketFilter,
};

on_both_backends!(
    text_with_nul_is_stored_with_a_replacement_character_on_both_backends,
    a_refused_row_is_the_datas_fault_and_not_retried,
);

const R: char = '\u{FFFD}';

/// Every text column written from mail, with U+0000 in it: stored (U+0000 read back as
/// U+FFFD, the same on both backends), and the lookups by those values (threading by
/// Message-ID, the requester, the ticket search) find what was stored.
async fn text_with_nul_is_stored_with_a_replacement_character_on_both_backends(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let mut item = message(Some("uid-nul"), "mail with a NUL");
    item.message_id = Some("raw\0id@example.org".to_string());
    let raw_id = store.commit_batch(mailbox.id, &[item], T0).await.unwrap()[0].raw_message_id();
    let raw = store.raw_message(raw_id).await.unwrap().unwrap();
    assert_eq!(raw.message_id, Some(format!("raw{R}id@example.org")));

    let entry = NewTicketEntry {
        raw_message_id: raw_id,
        message_id: "id\0@example.org".to_string(),
        kind: EntryKind::Message,
        from_address: Some("nul\0@example.org".to_string()),
        from_name: Some("N\0L".to_string()),
        subject: Some("Sub\0ject".to_string()),
        sent_at: Some(T0),
        reply_text: "re\0ply".to_string(),
        text_body: "t\0e\0x\0t".to_string(),
        html_body: Some("<p>\0</p>".to_string()),
        attachments: vec![EntryAttachment {
            name: Some("a\0.txt".to_string()),
            content_type: "text/plain\0".to_string(),
            size: 3,
            sha256: common::sha256_hex(b"abc"),
            content_id: Some("cid\0".to_string()),
            inline: false,
            forwarded: Some(ForwardedMessage {
                from: Some("f\0@example.org".to_string()),
                subject: Some("s\0".to_string()),
                date: None,
                message_id: Some("m\0@x".to_string()),
            }),
        }],
    };
    let record = ProcessRecord {
        status: ProcessStatus::Processed,
        reason: "opened a ticket for \"Sub\0ject\"".to_string(),
        ticket_id: None,
        log: vec!["note: a =00 in quoted-printable \0".to_string()],
        processed_at: None,
    };
    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person("Nul\0@Example.org", Some("N\0L")).await.unwrap();
    assert_eq!(person.address, format!("nul{R}@example.org"));
    assert_eq!(person.name, Some(format!("N{R}L")));
    let again = tx.person("nul\0@example.org", None).await.unwrap();
    assert_eq!(again.id, person.id, "the same address is the same person");
    let ticket = tx
        .create_ticket(mailbox.id, "Sub\0ject", &person, T0)
        .await
        .unwrap();
    assert_eq!(ticket.subject, format!("Sub{R}ject"));
    tx.add_entry(ticket.id, mailbox.id, &entry, T0)
        .await
        .unwrap();
    tx.record_processing(
        raw_id,
        &ProcessRecord {
            ticket_id: Some(ticket.id),
            ..record.clone()
        },
        T0,
    )
    .await
    .unwrap();
    // Threading and dedupe look the id up as the mail wrote it.
    let found = tx
        .entry_with_message_id(mailbox.id, "id\0@example.org")
        .await
        .unwrap()
        .expect("the entry is found by its Message-ID as the mail wrote it");
    assert_eq!(found.ticket_id, ticket.id);
    let ids = vec!["other@x".to_string(), "id\0@example.org".to_string()];
    let (threaded, matched) = tx
        .ticket_for_message_ids(mailbox.id, &ids)
        .await
        .unwrap()
        .expect("threads by the Message-ID as the mail wrote it");
    assert_eq!(threaded.id, ticket.id);
    assert_eq!(matched, "id\0@example.org", "the id that matched, as given");
    tx.commit().await.unwrap();

    let stored = store.entry_for_raw_message(raw_id).await.unwrap().unwrap();
    assert_eq!(stored.message_id, format!("id{R}@example.org"));
    assert_eq!(stored.from_address, Some(format!("nul{R}@example.org")));
    assert_eq!(stored.from_name, Some(format!("N{R}L")));
    assert_eq!(stored.subject, Some(format!("Sub{R}ject")));
    assert_eq!(stored.reply_text, format!("re{R}ply"));
    assert_eq!(stored.text_body, format!("t{R}e{R}x{R}t"));
    assert_eq!(stored.html_body, Some(format!("<p>{R}</p>")));
    let attachment = &stored.attachments[0];
    assert_eq!(attachment.name, Some(format!("a{R}.txt")));
    assert_eq!(attachment.content_type, format!("text/plain{R}"));
    assert_eq!(attachment.content_id, Some(format!("cid{R}")));
    let forwarded = attachment.forwarded.as_ref().unwrap();
    assert_eq!(forwarded.from, Some(format!("f{R}@example.org")));
    assert_eq!(forwarded.subject, Some(format!("s{R}")));
    assert_eq!(forwarded.message_id, Some(format!("m{R}@x")));

    let kept = store.processing_record(raw_id).await.unwrap().unwrap();
    assert_eq!(kept.reason, format!("opened a ticket for \"Sub{R}ject\""));
    assert_eq!(
        kept.log,
        vec![format!("note: a =00 in quoted-printable {R}")]
    );

    for filter in [
        TicketFilter {
            // A NUL separates words, as the stored U+FFFD does.
            text: Some("Sub\0ject".to_string()),
            ..TicketFilter::default()
        },
        TicketFilter {
            requester: Some("nul\0@example.org".to_string()),
            ..TicketFilter::default()
        },
    ] {
        let tickets = store.tickets(&filter).await.unwrap();
        assert_eq!(tickets.len(), 1, "{filter:?}");
        assert_eq!(store.count_tickets(&filter).await.unwrap(), 1);
    }
}

/// A row the database refuses (here a CHECK constraint, or a trigger on SQLite, added
/// behind the store's back: a fault a real database is made to produce on demand) is
/// the data's fault: not retryable, said in words that do not ask for a retry.
async fn a_refused_row_is_the_datas_fault_and_not_retried(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let mut conn = db.raw_connection().await;
    let refuse = match db.backend {
        Backend::Postgres => {
            "ALTER TABLE tickets ADD CONSTRAINT test_only_refused CHECK (subject <> 'refuse me')"
        }
        Backend::Sqlite => {
            "CREATE TRIGGER test_only_refused BEFORE INSERT ON tickets \
             WHEN NEW.subject = 'refuse me' BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        }
    };
    sqlx::query(refuse).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();

    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person("c@example.org", None).await.unwrap();
    let error = tx
        .create_ticket(mailbox.id, "refuse me", &person, T0)
        .await
        .unwrap_err();
    assert!(error.is_refused_data(), "{error:?}");
    assert!(!error.is_retryable(), "{error:?}");
    assert!(!error.is_disk_full(), "{error:?}");
    let words = error.to_string();
    assert!(words.contains("refused the data"), "{words}");
    assert!(!words.contains("another process"), "{words}");
}

/// The error of issue 13 itself: PostgreSQL's refusal of a U+0000 that reached it
/// (SQLSTATE 22021, whose number once read as SQLite's "busy") is refused data, never a
/// lock conflict to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_nul_that_reaches_the_database_is_refused_data_not_a_lock_conflict() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut conn = db.raw_connection().await;
    let Err(source) = sqlx::query("SELECT $1::text AS t")
        .bind("a\0b")
        .fetch_one(&mut conn)
        .await
    else {
        panic!("PostgreSQL took a U+0000 in text");
    };
    let code = source
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("22021"), "{source:?}");
    let error = StoreError::Database {
        action: "add an entry to a ticket",
        source,
    };
    assert!(error.is_refused_data(), "{error:?}");
    assert!(!error.is_retryable(), "{error:?}");
    assert!(!error.to_string().contains("another process"), "{error}");
    conn.close().await.unwrap();
}
