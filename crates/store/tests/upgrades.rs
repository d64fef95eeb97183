//! Upgrades keep everything: a data folder made by an earlier popdesk — its database
//! migrated only as far as that version went, with its rows written the way that version
//! wrote them — opens with this one, gains the new tables and columns, and keeps its
//! mailboxes (and their sealed secrets), ledger, tickets and history.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use secrecy::ExposeSecret as _;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use store::{EntryKind, NewOutboxMessage, OutboxKind, SecretBox, Store, StoreError, TicketStatus};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const T0: i64 = 1_700_000_000_000;

/// `secret` sealed the way popdesk did before slots (format 1: version byte, nonce,
/// XChaCha20-Poly1305 without associated data) with the folder's key (created if missing).
async fn seal_as_format_1(dir: &Path, secret: &str) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    SecretBox::load(dir).await.expect("the key file");
    let key: [u8; 32] = std::fs::read(dir.join("secret.key"))
        .expect("the key file")
        .try_into()
        .expect("32 bytes");
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&key.into());
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).unwrap();
    let mut sealed = vec![1u8];
    sealed.extend_from_slice(&nonce);
    sealed.extend(
        cipher
            .encrypt(&nonce.into(), secret.as_bytes())
            .expect("sealed"),
    );
    sealed
}

/// A SQLite database in `dir` as popdesk left it at migration `version`, with one
/// mailbox whose password is sealed with the folder's key, one ledger row, and (from
/// version 3 on) a ticket with one entry and a note.
async fn database_at(dir: &Path, version: i64) {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("popdesk.db"))
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("an old database");
    SQLITE_MIGRATIONS
        .run_to(version, &pool)
        .await
        .expect("the old migrations");
    let sealed = seal_as_format_1(dir, "old-password").await;
    sqlx::query(
        "INSERT INTO mailboxes (id, name, host, port, tls, username, auth_method, policy, \
         start_mode, batch_messages, batch_bytes, max_size, oversize, allow_insecure_auth, \
         enabled, secret, started, created_at, updated_at) VALUES (1, 'support', \
         'pop.example.com', 995, 'implicit', 'support@example.com', 'auto', 'delete', 'all', \
         50, 52428800, 25000000, 'skip', 0, 1, ?, 1, ?, ?)",
    )
    .bind(sealed)
    .bind(T0)
    .bind(T0)
    .execute(&pool)
    .await
    .expect("an old mailbox");
    sqlx::query(
        "INSERT INTO raw_messages (id, mailbox_id, uid, sha256, size, server_size, message_id, \
         status, received_at) VALUES (1, 1, 'u1', ?, 8, 10, '<old-1@example.org>', 'stored', ?)",
    )
    .bind("a".repeat(64))
    .bind(T0)
    .execute(&pool)
    .await
    .expect("an old message");
    sqlx::query(
        "INSERT INTO ledger (mailbox_id, uid, state, raw_message_id, first_seen_at, deleted_at) \
         VALUES (1, 'u1', 'stored', 1, ?, ?)",
    )
    .bind(T0)
    .bind(T0)
    .execute(&pool)
    .await
    .expect("an old ledger row");
    if version >= 3 {
        for sql in [
            "INSERT INTO people (id, address, name, created_at) VALUES (1, 'customer@example.org', 'Carla', 1)",
            "UPDATE ticket_counter SET last_number = 1",
            "INSERT INTO tickets (id, number, mailbox_id, subject, requester_id, status, created_at, updated_at) \
             VALUES (1, 1, 1, 'Old question', 1, 'open', 1, 1)",
            "INSERT INTO ticket_entries (ticket_id, mailbox_id, raw_message_id, message_id, kind, \
             from_address, from_name, subject, sent_at, reply_text, text_body, html_body, attachments, created_at) \
             VALUES (1, 1, 1, 'old-1@example.org', 'message', 'customer@example.org', 'Carla', \
             'Old question', 1, 'Is this kept?', 'Is this kept?', NULL, '[]', 1)",
            "UPDATE raw_messages SET process_status = 'processed', process_ticket_id = 1 WHERE id = 1",
            "INSERT INTO ticket_events (ticket_id, kind, author, body, created_at) \
             VALUES (1, 'note', 'Agent', 'an old note', 2)",
        ] {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
    }
    pool.close().await;
}

/// Before replies (migrations up to 0005): the mailbox opens without sending settings
/// and with its secret, the ticket keeps its entry and note, and a reply can be queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_replies_opens_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    database_at(dir.path(), 5).await;
    let store = Store::open(dir.path(), None)
        .await
        .expect("opens and migrates");
    let mailbox = store.mailbox("support").await.unwrap().expect("kept");
    assert_eq!(
        mailbox.settings.sending, None,
        "sending is off until set up"
    );
    assert_eq!(mailbox.settings.username, "support@example.com");
    assert!(mailbox.started);
    assert_eq!(
        store
            .mailbox_secret(mailbox.id)
            .await
            .unwrap()
            .expose_secret(),
        "old-password"
    );
    assert_eq!(
        store.smtp_secret(mailbox.id).await.unwrap().expose_secret(),
        "old-password",
        "SMTP reuses the POP3 password"
    );
    assert_eq!(store.ledger(mailbox.id).await.unwrap().len(), 1);
    let ticket = store.ticket_by_number(1).await.unwrap().expect("kept");
    assert_eq!(
        (ticket.subject.as_str(), ticket.status),
        ("Old question", TicketStatus::Open)
    );
    let entries = store.ticket_entries(ticket.id).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, EntryKind::Message);
    assert_eq!(entries[0].reply_text, "Is this kept?");
    let events = store.ticket_events(ticket.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].body.as_deref(), Some("an old note"));
    assert_eq!(events[0].outbox_id, None);
    let (queued, _) = store
        .queue_reply(
            &NewOutboxMessage {
                ticket_id: ticket.id,
                mailbox_id: mailbox.id,
                kind: OutboxKind::Reply,
                message_id: "popdesk.1@example.com".into(),
                sha256: "b".repeat(64),
                size: 10,
                envelope_from: "support@example.com".into(),
                to: vec!["customer@example.org".into()],
                cc: Vec::new(),
                subject: "Re: Old question [#1]".into(),
                body: "Yes.".into(),
                attachments: Vec::new(),
                author_id: None,
                author: "Agent".into(),
            },
            Some(TicketStatus::Pending),
            T0,
        )
        .await
        .expect("a reply on an upgraded database");
    assert_eq!(queued.ticket_number, 1);
}

/// Before set-aside messages (migrations up to 0004): opens, gains the new tables and
/// keeps its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_set_aside_messages_opens_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    database_at(dir.path(), 4).await;
    let store = Store::open(dir.path(), None)
        .await
        .expect("opens and migrates");
    let mailbox = store.mailbox("support").await.unwrap().expect("kept");
    assert_eq!(store.ledger(mailbox.id).await.unwrap().len(), 1);
    assert!(store.failing_messages(mailbox.id).await.unwrap().is_empty());
    assert_eq!(store.ticket_entries(1).await.unwrap().len(), 1);
}

/// Before sealed secrets named their slot (migrations up to 0008, secrets in format 1):
/// the old secrets still open, the store re-seals every one of them for its row and
/// column when it opens, and from then on a ciphertext copied from one mailbox's row into
/// another's is refused with a sentence that says to type the password again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_before_slots_open_are_resealed_and_cannot_be_moved() {
    let dir = tempfile::tempdir().unwrap();
    database_at(dir.path(), 8).await;
    // A second mailbox with a password and an SMTP password of its own, also format 1.
    let b_secret = seal_as_format_1(dir.path(), "b-password").await;
    let b_smtp = seal_as_format_1(dir.path(), "b-smtp").await;
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("popdesk.db").display()
    ))
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO mailboxes (id, name, host, port, tls, username, auth_method, policy, \
         start_mode, batch_messages, batch_bytes, max_size, oversize, allow_insecure_auth, \
         enabled, secret, smtp_secret, started, created_at, updated_at) VALUES (2, 'sales', \
         'pop.attacker.example', 995, 'implicit', 'sales@example.com', 'auto', 'delete', 'all', \
         50, 52428800, 25000000, 'skip', 0, 1, ?, ?, 1, ?, ?)",
    )
    .bind(b_secret)
    .bind(b_smtp)
    .bind(T0)
    .bind(T0)
    .execute(&pool)
    .await
    .unwrap();
    let stored = async |id: i64, column: &str| -> Vec<u8> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {column} FROM mailboxes WHERE id = ?"
        )))
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = stored(1, "secret").await;
    assert_eq!(before[0], 1, "the old format");

    let store = Store::open(dir.path(), None).await.expect("opens");
    for (id, column) in [(1, "secret"), (2, "secret"), (2, "smtp_secret")] {
        assert_eq!(
            stored(id, column).await[0],
            2,
            "mailbox {id}'s {column} is re-sealed for its slot at open"
        );
    }
    assert_eq!(
        store.mailbox_secret(1).await.unwrap().expose_secret(),
        "old-password"
    );
    assert_eq!(
        store.mailbox_secret(2).await.unwrap().expose_secret(),
        "b-password"
    );
    assert_eq!(
        store.smtp_secret(2).await.unwrap().expose_secret(),
        "b-smtp"
    );

    // Someone with write access moves mailbox 1's password into mailbox 2, whose server
    // they control, and into mailbox 2's SMTP slot.
    let a_sealed = stored(1, "secret").await;
    sqlx::query("UPDATE mailboxes SET secret = ?, smtp_secret = ? WHERE id = 2")
        .bind(&a_sealed)
        .bind(&a_sealed)
        .execute(&pool)
        .await
        .unwrap();
    let err = store.mailbox_secret(2).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SecretUndecryptable {
                field: "mailboxes.secret",
                row_id: 2
            }
        ),
        "{err:?}"
    );
    let sentence = err.to_string();
    assert!(
        sentence.starts_with("the password of mailbox #2 cannot be decrypted here")
            && sentence.contains("copied from another row?")
            && sentence.ends_with("type the password again to store it anew"),
        "{sentence}"
    );
    let err = store.smtp_secret(2).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SecretUndecryptable {
                field: "mailboxes.smtp_secret",
                row_id: 2
            }
        ),
        "{err:?}"
    );
    // Opening again does not "upgrade" the moved ciphertext into place either.
    drop(store);
    let store = Store::open(dir.path(), None).await.expect("opens again");
    assert!(store.mailbox_secret(2).await.is_err());
    assert_eq!(
        store.mailbox_secret(1).await.unwrap().expose_secret(),
        "old-password"
    );
    pool.close().await;
}

/// Before team mailboxes (migrations up to 0011): an agent who saw every mailbox keeps
/// seeing them, admins get no grants (they see everything anyway), the old ticket is
/// unassigned and not merged, and says when its mail was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_from_before_team_mailboxes_keep_every_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    database_at(dir.path(), 11).await;
    {
        let options = SqliteConnectOptions::new().filename(dir.path().join("popdesk.db"));
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        use sqlx::Connection as _;
        for sql in [
            "INSERT INTO mailboxes (id, name, host, port, tls, username, auth_method, policy, \
             start_mode, batch_messages, batch_bytes, max_size, oversize, allow_insecure_auth, \
             enabled, secret, started, created_at, updated_at) SELECT 2, 'sales', host, port, \
             tls, 'sales@example.com', auth_method, policy, start_mode, batch_messages, \
             batch_bytes, max_size, oversize, allow_insecure_auth, enabled, secret, started, \
             created_at, updated_at FROM mailboxes WHERE id = 1",
            "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at) \
             VALUES (1, 'boss@example.com', NULL, 'admin', 'x', 1, 1)",
            "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at) \
             VALUES (2, 'agent@example.com', 'Ann', 'agent', 'x', 1, 1)",
        ] {
            sqlx::query(sql).execute(&mut conn).await.expect(sql);
        }
        conn.close().await.unwrap();
    }
    let store = Store::open(dir.path(), None)
        .await
        .expect("opens and migrates");
    assert_eq!(store.user_mailbox_ids(2).await.unwrap(), vec![1, 2]);
    assert_eq!(store.user_mailbox_ids(1).await.unwrap(), Vec::<i64>::new());
    let ticket = store.ticket_by_number(1).await.unwrap().expect("kept");
    assert_eq!(ticket.assignee, None);
    assert_eq!(ticket.merged_into, None);
    assert_eq!(ticket.first_mail_sent_at, Some(1));
    assert_eq!(ticket.last_mail_sent_at, Some(1));
    store.close().await;
}
