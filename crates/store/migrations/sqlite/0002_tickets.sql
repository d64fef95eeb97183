-- Tickets and the processing of raw messages into them (issue 4).
-- Timestamps are integer milliseconds since the Unix epoch.

-- Requesters, one per address (stored trimmed and lower-cased by the store).
CREATE TABLE people (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    address    TEXT    NOT NULL UNIQUE,
    name       TEXT,
    created_at INTEGER NOT NULL
);

-- Ticket numbers are handed out by this one row, inside the processing transaction
-- (SQLite has one writer at a time, so this serialises nothing that was not already
-- serialised). PostgreSQL uses a sequence instead.
CREATE TABLE ticket_counter (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    last_number INTEGER NOT NULL
);
INSERT INTO ticket_counter (id, last_number) VALUES (1, 0);

-- No foreign key to mailboxes: tickets outlive a mailbox's settings, as raw messages do.
CREATE TABLE tickets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    number       INTEGER NOT NULL UNIQUE,
    mailbox_id   INTEGER NOT NULL,
    subject      TEXT    NOT NULL,
    requester_id INTEGER NOT NULL REFERENCES people (id),
    status       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
-- The ticket list: newest activity first, optionally one status or one mailbox.
CREATE INDEX tickets_by_updated ON tickets (updated_at, id);
CREATE INDEX tickets_by_status ON tickets (status, updated_at, id);
CREATE INDEX tickets_by_mailbox ON tickets (mailbox_id, updated_at, id);

-- One entry per raw message at most (promise 2): reprocessing finds it again.
CREATE TABLE ticket_entries (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id      INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    mailbox_id     INTEGER NOT NULL,
    raw_message_id INTEGER NOT NULL UNIQUE REFERENCES raw_messages (id),
    message_id     TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    from_address   TEXT,
    from_name      TEXT,
    subject        TEXT,
    sent_at        INTEGER,
    reply_text     TEXT    NOT NULL,
    text_body      TEXT    NOT NULL,
    html_body      TEXT,
    -- JSON array of attachment descriptions (the bytes are in the blob store)
    attachments    TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX ticket_entries_by_ticket ON ticket_entries (ticket_id, id);
-- Threading (In-Reply-To/References) and per-mailbox dedupe by Message-ID.
CREATE INDEX ticket_entries_by_message_id ON ticket_entries (mailbox_id, message_id);

-- Every stored message has a processing status; those stored before this migration are
-- pending like new ones.
ALTER TABLE raw_messages ADD COLUMN process_status TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE raw_messages ADD COLUMN process_reason TEXT;
ALTER TABLE raw_messages ADD COLUMN process_ticket_id INTEGER REFERENCES tickets (id) ON DELETE SET NULL;
-- the processing log, one line per step, joined by newlines
ALTER TABLE raw_messages ADD COLUMN process_log TEXT;
ALTER TABLE raw_messages ADD COLUMN processed_at INTEGER;
CREATE INDEX raw_messages_by_process_status ON raw_messages (process_status, id);
