//! Full-text search as agents type it (issue 15): words in any order, accents and case
//! folded, punctuation never an error, phrases, the last word as a prefix, Cyrillic and
//! Japanese, the new text, the quoted part, attachment names and the sender; combined
//! with the list's filters and counted by them; a ticket number finds its ticket;
//! entries moved to another ticket are found there; and mail stored before search
//! existed becomes searchable when the store opens. On SQLite and PostgreSQL alike.
//!
//! The real corpus processed into tickets and searched is in
//! `crates/intake/tests/search.rs` (processing mail is the intake's).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, TestDb, add_mailbox, fresh, message, on_both_backends, options};
use sqlx::{AnyConnection, Connection};
use store::{
    AssigneeFilter, EntryAttachment, EntryKind, NewTicketEntry, ProcessRecord, ProcessStatus,
    SnippetField, Store, TicketFilter, TicketStatus,
};

on_both_backends!(
    words_in_any_order_find_tickets_with_accents_case_and_punctuation_folded,
    phrases_prefixes_and_other_scripts_are_searched_as_typed,
    the_new_text_the_quoted_part_attachment_names_and_the_sender_are_searched,
    query_syntax_in_a_search_is_only_text,
    a_search_combines_with_the_lists_filters_and_its_counts,
    a_ticket_number_finds_its_ticket_first,
    the_subject_ranks_above_the_quoted_history,
    entries_moved_to_another_ticket_are_found_there,
    entries_without_a_search_row_are_indexed_when_the_store_opens,
    a_database_from_before_search_becomes_searchable,
);

// ---- fixtures ----

/// A mail to make a ticket entry from.
struct Mail<'a> {
    subject: &'a str,
    from: (&'a str, &'a str),
    reply: &'a str,
    quoted: &'a str,
    attachments: &'a [&'a str],
}

impl Default for Mail<'_> {
    fn default() -> Self {
        Mail {
            subject: "A question",
            from: ("A Customer", "customer@example.org"),
            reply: "Hello.",
            quoted: "",
            attachments: &[],
        }
    }
}

/// Opens a ticket in `mailbox_id` with one entry per mail (the first mail's subject
/// and sender make the ticket), all in one processing batch; returns its number.
async fn ticket(store: &Store, mailbox_id: i64, mails: &[Mail<'_>]) -> i64 {
    let first = &mails[0];
    let bodies: Vec<String> = (0..mails.len())
        .map(|i| {
            format!(
                "{}-{}-{i}-{}",
                mailbox_id,
                first.subject,
                common::random_hex(8)
            )
        })
        .collect();
    let batch: Vec<_> = bodies.iter().map(|b| message(Some(b), b)).collect();
    let raw: Vec<i64> = store
        .commit_batch(mailbox_id, &batch, T0)
        .await
        .unwrap()
        .iter()
        .map(|outcome| outcome.raw_message_id())
        .collect();
    let mut tx = store.begin_processing().await.unwrap();
    let person = tx.person(first.from.1, Some(first.from.0)).await.unwrap();
    let ticket = tx
        .create_ticket(mailbox_id, first.subject, &person, T0)
        .await
        .unwrap();
    for (i, mail) in mails.iter().enumerate() {
        let text_body = if mail.quoted.is_empty() {
            mail.reply.to_string()
        } else {
            format!("{}\n\n{}", mail.reply, mail.quoted)
        };
        let entry = NewTicketEntry {
            raw_message_id: raw[i],
            message_id: format!("{}@example.org", bodies[i]),
            kind: EntryKind::Message,
            from_address: Some(mail.from.1.to_string()),
            from_name: Some(mail.from.0.to_string()),
            subject: Some(mail.subject.to_string()),
            sent_at: Some(T0),
            reply_text: mail.reply.to_string(),
            text_body,
            html_body: None,
            attachments: mail
                .attachments
                .iter()
                .map(|name| EntryAttachment {
                    name: Some(name.to_string()),
                    content_type: "application/octet-stream".into(),
                    size: 1,
                    sha256: "0".repeat(64),
                    content_id: None,
                    inline: false,
                    forwarded: None,
                })
                .collect(),
        };
        tx.add_entry(ticket.id, mailbox_id, &entry, T0 + i as i64)
            .await
            .unwrap();
        tx.record_processing(
            raw[i],
            &ProcessRecord {
                status: ProcessStatus::Processed,
                reason: "test".into(),
                ticket_id: Some(ticket.id),
                log: Vec::new(),
                processed_at: None,
            },
            T0,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    ticket.number
}

fn search(text: &str) -> TicketFilter {
    TicketFilter {
        text: Some(text.to_string()),
        ..TicketFilter::default()
    }
}

/// The numbers of the tickets a search finds, in its order.
async fn found(store: &Store, text: &str) -> Vec<i64> {
    found_with(store, &search(text)).await
}

async fn found_with(store: &Store, filter: &TicketFilter) -> Vec<i64> {
    let hits = store
        .search_tickets(filter)
        .await
        .unwrap_or_else(|e| panic!("searching {:?}: {e}", filter.text));
    // The unranked list and the count agree with the ranked search.
    let mut listed: Vec<i64> = store
        .tickets(filter)
        .await
        .unwrap()
        .iter()
        .map(|t| t.number)
        .collect();
    let mut numbers: Vec<i64> = hits.iter().map(|h| h.ticket.number).collect();
    assert_eq!(
        store.count_tickets(filter).await.unwrap(),
        numbers.len() as u64,
        "the count of {:?}",
        filter.text
    );
    let ranked = numbers.clone();
    listed.sort();
    numbers.sort();
    assert_eq!(listed, numbers, "the list of {:?}", filter.text);
    ranked
}

/// Found, in any order.
async fn found_set(store: &Store, text: &str) -> Vec<i64> {
    let mut numbers = found(store, text).await;
    numbers.sort();
    numbers
}

// ---- tests ----

/// "refund request urgent" finds "Refund request (urgent)"; "muller" finds "Müller".
async fn words_in_any_order_find_tickets_with_accents_case_and_punctuation_folded(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let refund = ticket(
        store,
        mailbox.id,
        &[Mail {
            subject: "Refund request (urgent)",
            from: ("Jürgen Müller", "j.mueller@example.de"),
            reply: "Bitte überweisen Sie das Geld zurück. Grüße aus der Straße.",
            ..Mail::default()
        }],
    )
    .await;
    let other = ticket(
        store,
        mailbox.id,
        &[Mail {
            subject: "Request for a quote",
            ..Mail::default()
        }],
    )
    .await;
    for text in [
        "refund request urgent",
        "urgent refund",
        "Refund request (urgent)",
        "REFUND-REQUEST, urgent!",
        "muller",
        "Müller",
        "MÜLLER jürgen",
        "uberweisen",
        "strasse",
        "j.mueller@example.de",
    ] {
        assert_eq!(found(store, text).await, [refund], "{text}");
    }
    assert_eq!(found_set(store, "request").await, [refund, other]);
    assert!(found(store, "refund quote").await.is_empty(), "all words");
    assert!(found(store, "mueller refund zzzz").await.is_empty());
}

/// A phrase in quotes finds its words in that order only; the last word typed matches
/// as a prefix; Cyrillic and Japanese are found (Japanese by its characters in a row).
async fn phrases_prefixes_and_other_scripts_are_searched_as_typed(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let printer = ticket(
        store,
        mailbox.id,
        &[Mail {
            subject: "Printer",
            reply: "The printer crashes every morning.",
            ..Mail::default()
        }],
    )
    .await;
    let russian = ticket(
        store,
        mailbox.id,
        &[Mail {
            subject: "Вопрос о заказе",
            reply: "Здравствуйте! Мой заказ не пришёл.",
            ..Mail::default()
        }],
    )
    .await;
    let japanese = ticket(
        store,
        mailbox.id,
        &[Mail {
            subject: "日本語の件名テスト",
            reply: "よろしくお願いします。",
            ..Mail::default()
        }],
    )
    .await;
    assert_eq!(found(store, "\"every morning\"").await, [printer]);
    assert!(found(store, "\"morning every\"").await.is_empty());
    assert_eq!(found(store, "crashes morning").await, [printer]);
    assert_eq!(found(store, "morning cras").await, [printer], "a prefix");
    assert!(
        found(store, "cras morning").await.is_empty(),
        "only the last word is a prefix"
    );
    assert!(found(store, "cras ").await.is_empty(), "a finished word");
    assert_eq!(found(store, "заказ").await, [russian]);
    assert_eq!(found(store, "ЗАКАЗЕ вопрос").await, [russian]);
    assert_eq!(found(store, "пришел").await, [russian], "ё folds to е");
    assert_eq!(found(store, "日本語").await, [japanese]);
    assert_eq!(found(store, "件名").await, [japanese]);
    assert_eq!(found(store, "お願い").await, [japanese]);
    assert!(
        found(store, "語本日").await.is_empty(),
        "characters in a row"
    );
    let hit = &store.search_tickets(&search("件名")).await.unwrap()[0];
    let snippet = hit.snippet.as_ref().expect("a snippet");
    assert_eq!(snippet.field, SnippetField::Subject);
    assert_eq!(marked(snippet), ["件名"]);
}

fn marked(snippet: &store::Snippet) -> Vec<&str> {
    snippet
        .pieces
        .iter()
        .filter(|p| p.hit)
        .map(|p| p.text.as_str())
        .collect()
}

/// Each searched part of a mail, with the snippet taken from where the word is.
async fn the_new_text_the_quoted_part_attachment_names_and_the_sender_are_searched(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let number = ticket(
        store,
        mailbox.id,
        &[
            Mail {
                subject: "Invoice",
                reply: "Where is my parcel? It should have arrived on Monday.",
                ..Mail::default()
            },
            Mail {
                subject: "Re: Invoice",
                from: ("Bob Baker", "bob@bakery.example"),
                reply: "Any news?",
                quoted: "On Monday you wrote:\n> the warehouse in Rotterdam has it",
                attachments: &["Lieferschein_2026-03.pdf"],
            },
        ],
    )
    .await;
    ticket(store, mailbox.id, &[Mail::default()]).await;
    let cases = [
        ("parcel", SnippetField::Message, "parcel"),
        ("rotterdam", SnippetField::Quoted, "Rotterdam"),
        ("lieferschein", SnippetField::Attachment, "Lieferschein"),
        (
            "lieferschein 2026",
            SnippetField::Attachment,
            "Lieferschein",
        ),
        ("bakery", SnippetField::Sender, "bakery"),
        ("news", SnippetField::Message, "news"),
    ];
    for (text, field, hit) in cases {
        let hits = store.search_tickets(&search(text)).await.unwrap();
        assert_eq!(hits.len(), 1, "{text}");
        assert_eq!(hits[0].ticket.number, number);
        let snippet = hits[0].snippet.as_ref().expect("a snippet");
        assert_eq!(snippet.field, field, "{text}");
        assert_eq!(marked(snippet)[0], hit, "{text}");
    }
    // The snippet is the original text around the hit, on one line.
    let hits = store.search_tickets(&search("warehouse")).await.unwrap();
    assert_eq!(
        hits[0].snippet.as_ref().unwrap().text(),
        "On Monday you wrote: > the warehouse in Rotterdam has it"
    );
    // All words in one mail: "parcel" and "rotterdam" are in two.
    assert!(found(store, "parcel rotterdam").await.is_empty());
    assert!(found(store, "bob parcel").await.is_empty());
}

/// What FTS5 or tsquery would read as syntax is searched as text and never fails.
async fn query_syntax_in_a_search_is_only_text(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let number = ticket(
        store,
        mailbox.id,
        &[Mail {
            subject: "NEAR the AND gate: OR not?",
            reply: "a*b 'quoted' \"double\" (paren) ^caret -minus col:on",
            ..Mail::default()
        }],
    )
    .await;
    for text in [
        "\"", "\"\"", "(", ")", "*", "-", "^", ":", "'", "\\", "&", "|", "!", "<->", ":*", "%",
        "_", "NEAR(", "a:b", "-minus", "OR", "AND", "NOT", "col:on", "'quoted'", "(paren",
        "\"double", "a*b", "gate:", "&|!",
    ] {
        let result = store.search_tickets(&search(text)).await;
        assert!(result.is_ok(), "{text}: {result:?}");
        store.count_tickets(&search(text)).await.unwrap();
        store.count_tickets_by_status(&search(text)).await.unwrap();
    }
    for text in [
        "NEAR",
        "near gate",
        "OR",
        "AND",
        "a*b",
        "-minus",
        "col:on",
        "'quoted'",
        "(paren)",
    ] {
        assert_eq!(found(store, text).await, [number], "{text}");
    }
    // Only punctuation: nothing to look for, nothing filtered.
    assert_eq!(found(store, "(*)").await, [number]);
}

/// A search with a status, mailbox or assignee filter finds only what both allow, and
/// the per-status counts count the search's results.
async fn a_search_combines_with_the_lists_filters_and_its_counts(db: &TestDb) {
    let store = &db.store;
    let support = add_mailbox(store, "support").await;
    let sales = add_mailbox(store, "sales").await;
    let mail = |reply| Mail {
        reply,
        ..Mail::default()
    };
    let a = ticket(store, support.id, &[mail("The app crashes on start.")]).await;
    let b = ticket(store, support.id, &[mail("It crashes when I print.")]).await;
    let c = ticket(store, sales.id, &[mail("Your shop crashes at checkout.")]).await;
    ticket(store, support.id, &[mail("All good, thanks.")]).await;
    let b_ticket = store.ticket_by_number(b).await.unwrap().unwrap();
    store
        .set_ticket_status(b_ticket.id, TicketStatus::Closed, T0)
        .await
        .unwrap();

    assert_eq!(found_set(store, "crashes").await, [a, b, c]);
    let only = |f: TicketFilter| TicketFilter {
        text: Some("crashes".into()),
        ..f
    };
    let closed = only(TicketFilter {
        status: Some(TicketStatus::Closed),
        ..TicketFilter::default()
    });
    assert_eq!(found_with(store, &closed).await, [b]);
    let in_sales = only(TicketFilter {
        mailbox_id: Some(sales.id),
        ..TicketFilter::default()
    });
    assert_eq!(found_with(store, &in_sales).await, [c]);
    let scoped = only(TicketFilter {
        scope: store::MailboxScope::Only(vec![support.id]),
        ..TicketFilter::default()
    });
    let mut in_scope = found_with(store, &scoped).await;
    in_scope.sort();
    assert_eq!(in_scope, [a, b]);
    let nobody = only(TicketFilter {
        assignee: AssigneeFilter::User(9999),
        ..TicketFilter::default()
    });
    assert!(found_with(store, &nobody).await.is_empty());

    let counts = store.count_tickets_by_status(&closed).await.unwrap();
    let count = |status| counts.iter().find(|(s, _)| *s == status).unwrap().1;
    assert_eq!(count(TicketStatus::New), 2, "a and c");
    assert_eq!(count(TicketStatus::Closed), 1, "b");
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 3);
    // A page of a search.
    let page = TicketFilter {
        limit: 2,
        offset: 2,
        ..search("crashes")
    };
    assert_eq!(store.search_tickets(&page).await.unwrap().len(), 1);
}

/// "1996", "#1996" and "[#1996]" find ticket 1996, before tickets that mention the
/// number; a number no ticket has finds those that mention it.
async fn a_ticket_number_finds_its_ticket_first(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let first = ticket(store, mailbox.id, &[Mail::default()]).await;
    let second = ticket(store, mailbox.id, &[Mail::default()]).await;
    let mentions = ticket(
        store,
        mailbox.id,
        &[Mail {
            subject: format!("About order {first}").leak(),
            ..Mail::default()
        }],
    )
    .await;
    for text in [
        format!("{first}"),
        format!("#{first}"),
        format!("[#{first}]"),
    ] {
        let numbers = found(store, &text).await;
        assert_eq!(numbers, [first, mentions], "{text}");
        let hits = store.search_tickets(&search(&text)).await.unwrap();
        assert_eq!(hits[0].snippet, None, "found by number, not by text");
    }
    assert_eq!(found(store, &format!("#{second}")).await, [second]);
    assert!(found(store, "#987654").await.is_empty());
    assert_eq!(
        store::ticket_number(&format!("#{first}")),
        Some(first),
        "what the web jumps to"
    );
}

/// A word in the subject ranks its ticket above one that has it only in quoted text.
async fn the_subject_ranks_above_the_quoted_history(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let quoted = ticket(
        store,
        mailbox.id,
        &[Mail {
            subject: "Question",
            reply: "See below, please answer soon.",
            quoted: "> Forwarded: your warranty has questions about it and more words here",
            ..Mail::default()
        }],
    )
    .await;
    let subject = ticket(
        store,
        mailbox.id,
        &[Mail {
            subject: "Warranty",
            reply: "Is my kettle still covered?",
            ..Mail::default()
        }],
    )
    .await;
    // The quoted one is newer: without ranking it would come first.
    let quoted_id = store.ticket_by_number(quoted).await.unwrap().unwrap().id;
    store
        .set_ticket_status(quoted_id, TicketStatus::Open, T0 + 1_000_000)
        .await
        .unwrap();
    assert_eq!(found(store, "warranty").await, [subject, quoted]);
    let listed: Vec<i64> = store
        .tickets(&search("warranty"))
        .await
        .unwrap()
        .iter()
        .map(|t| t.number)
        .collect();
    assert_eq!(listed, [quoted, subject], "the plain list: newest first");
}

/// Search rows belong to entries: entries moved to another ticket (as a merge moves
/// them) are found on that ticket with nothing else to do.
async fn entries_moved_to_another_ticket_are_found_there(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let from = ticket(
        store,
        mailbox.id,
        &[Mail {
            reply: "My toaster sings opera.",
            ..Mail::default()
        }],
    )
    .await;
    let into = ticket(store, mailbox.id, &[Mail::default()]).await;
    assert_eq!(found(store, "toaster").await, [from]);
    let from_id = store.ticket_by_number(from).await.unwrap().unwrap().id;
    let into_id = store.ticket_by_number(into).await.unwrap().unwrap().id;
    let mut conn = db.raw_connection().await;
    sqlx::query("UPDATE ticket_entries SET ticket_id = $1 WHERE ticket_id = $2")
        .bind(into_id)
        .bind(from_id)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_eq!(found(store, "toaster opera").await, [into]);
}

/// Entries with no search row (as an upgrade leaves them) below the backfill bookmark
/// are indexed when the store opens, in several batches, and the bookmark goes.
async fn entries_without_a_search_row_are_indexed_when_the_store_opens(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    let oldest = ticket(
        store,
        mailbox.id,
        &[Mail {
            reply: "oldest of all",
            ..Mail::default()
        }],
    )
    .await;
    // More entries than one batch holds, in one ticket.
    let replies: Vec<String> = (0..1_100).map(|i| format!("reply number{i}")).collect();
    let mails: Vec<Mail> = replies
        .iter()
        .map(|reply| Mail {
            reply,
            ..Mail::default()
        })
        .collect();
    let many = ticket(store, mailbox.id, &mails).await;
    let mut conn = db.raw_connection().await;
    for sql in [
        "DELETE FROM entry_search",
        "INSERT INTO entry_search_backfill (id, up_to) SELECT 1, MAX(id) FROM ticket_entries",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    assert!(found(store, "oldest").await.is_empty(), "not indexed");

    let reopened = db.reopen().await;
    assert_eq!(found(&reopened, "oldest").await, [oldest]);
    assert_eq!(found(&reopened, "number0").await, [many]);
    assert_eq!(found(&reopened, "number1099").await, [many]);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM entry_search_backfill")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the bookmark is gone");
    conn.close().await.unwrap();
    reopened.close().await;
}

/// A database migrated only as far as before search (0012), with a ticket written the
/// way that version wrote it, opens searchable.
async fn a_database_from_before_search_becomes_searchable(db: &TestDb) {
    // A database of its own, made at the old version.
    let backend = db.backend;
    let (dir, url, _pg) = fresh(backend).await;
    let url_or_file = url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("popdesk.db").display()
        )
    });
    let mut conn = AnyConnection::connect(&url_or_file).await.unwrap();
    let migrator = match backend {
        store::Backend::Sqlite => &SQLITE_MIGRATIONS,
        store::Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    migrator
        .run_to(12, &mut conn)
        .await
        .expect("the old schema");
    for sql in [
        "INSERT INTO raw_messages (id, mailbox_id, uid, sha256, size, server_size, message_id, \
         status, received_at) VALUES (1, 1, 'u1', 'aaaa', 8, 10, '<old-1@example.org>', 'stored', 1)",
        "INSERT INTO people (id, address, name, created_at) VALUES (1, 'customer@example.org', 'Carla Ölmann', 1)",
        "INSERT INTO tickets (id, number, mailbox_id, subject, requester_id, status, created_at, updated_at) \
         VALUES (1, 1, 1, 'Old question', 1, 'open', 1, 1)",
        "INSERT INTO ticket_entries (ticket_id, mailbox_id, raw_message_id, message_id, kind, \
         from_address, from_name, subject, sent_at, reply_text, text_body, html_body, attachments, created_at) \
         VALUES (1, 1, 1, 'old-1@example.org', 'message', 'customer@example.org', 'Carla Ölmann', \
         'Old question', 1, 'Is this kept?', 'Is this kept?\n\n> the garden gnome', NULL, \
         '[{\"name\":\"Gartenzwerg.jpg\",\"content_type\":\"image/jpeg\",\"size\":3,\"sha256\":\"bbbb\",\"content_id\":null,\"inline\":false}]', 1)",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
    conn.close().await.unwrap();
    let store = Store::open_with(dir.path(), url.as_deref(), options(backend))
        .await
        .expect("opens and migrates");
    for text in ["kept", "gnome", "gartenzwerg", "olmann", "old question"] {
        assert_eq!(found(&store, text).await, [1], "{text}");
    }
    store.close().await;
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
