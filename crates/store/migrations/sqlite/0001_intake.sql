-- Mailboxes, leases, the UIDL ledger, raw messages and fetch runs (issue 3).
-- Timestamps are integer milliseconds since the Unix epoch. Booleans are 0/1 integers.
-- AUTOINCREMENT so that an id is never given out twice: raw messages keep the id of a
-- removed mailbox.

CREATE TABLE mailboxes (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT    NOT NULL UNIQUE,
    host                TEXT    NOT NULL,
    port                INTEGER NOT NULL,
    tls                 TEXT    NOT NULL,
    username            TEXT    NOT NULL,
    auth_method         TEXT    NOT NULL,
    policy              TEXT    NOT NULL,
    delete_after_days   INTEGER,
    start_mode          TEXT    NOT NULL,
    batch_messages      INTEGER NOT NULL,
    batch_bytes         INTEGER NOT NULL,
    max_size            INTEGER NOT NULL,
    oversize            TEXT    NOT NULL,
    ca_file             TEXT,
    allow_insecure_auth INTEGER NOT NULL,
    enabled             INTEGER NOT NULL,
    -- version byte, 24-byte nonce, XChaCha20-Poly1305 ciphertext and tag
    secret              BLOB    NOT NULL,
    needs_attention     TEXT,
    started             INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE mailbox_leases (
    mailbox_id  INTEGER PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
    holder_host TEXT    NOT NULL,
    holder_pid  INTEGER NOT NULL,
    token       TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- No foreign key to mailboxes: customers' mail outlives the mailbox's settings.
CREATE TABLE raw_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id  INTEGER NOT NULL,
    uid         TEXT,
    sha256      TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    server_size INTEGER,
    message_id  TEXT,
    status      TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    -- the per-mailbox dedupe; never across mailboxes
    UNIQUE (mailbox_id, sha256)
);
CREATE INDEX raw_messages_by_mailbox ON raw_messages (mailbox_id, id);
CREATE INDEX raw_messages_by_message_id ON raw_messages (mailbox_id, message_id);

CREATE TABLE ledger (
    mailbox_id     INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid            TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    raw_message_id INTEGER REFERENCES raw_messages (id) ON DELETE SET NULL,
    first_seen_at  INTEGER NOT NULL,
    deleted_at     INTEGER,
    PRIMARY KEY (mailbox_id, uid)
);

CREATE TABLE fetch_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    listed        INTEGER NOT NULL,
    downloaded    INTEGER NOT NULL,
    deleted       INTEGER NOT NULL,
    already_known INTEGER NOT NULL,
    too_large     INTEGER NOT NULL,
    duplicates    INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,
    outcome       TEXT    NOT NULL,
    error         TEXT
);
CREATE INDEX fetch_runs_by_mailbox ON fetch_runs (mailbox_id, id);
