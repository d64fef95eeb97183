-- Answering the customer (issue 12): each mailbox's sending settings, the outbox of
-- replies and acknowledgements, and the tickets still waiting for an acknowledgement.
-- Timestamps are integer milliseconds since the Unix epoch.

-- Sending is set up when send_address is not NULL. The SMTP username and secret are
-- NULL when the POP3 ones are reused (the usual case: one account, two protocols).
ALTER TABLE mailboxes ADD COLUMN send_address TEXT;
ALTER TABLE mailboxes ADD COLUMN send_display_name TEXT;
ALTER TABLE mailboxes ADD COLUMN smtp_host TEXT;
ALTER TABLE mailboxes ADD COLUMN smtp_port INTEGER;
ALTER TABLE mailboxes ADD COLUMN smtp_tls TEXT;
ALTER TABLE mailboxes ADD COLUMN smtp_auth TEXT;
ALTER TABLE mailboxes ADD COLUMN smtp_username TEXT;
-- sealed like `secret`
ALTER TABLE mailboxes ADD COLUMN smtp_secret BLOB;
ALTER TABLE mailboxes ADD COLUMN smtp_allow_insecure_auth INTEGER NOT NULL DEFAULT 0;
-- acknowledge new tickets ("we got your message")
ALTER TABLE mailboxes ADD COLUMN acknowledge INTEGER NOT NULL DEFAULT 0;

-- Every message popdesk sends, committed before any SMTP (promise 8). Its exact bytes
-- are in the blob store under sha256; its Message-ID is fixed here, so a resend after a
-- crash is the identical message, and mail that comes back is known as ours (promise 9).
-- No foreign key to mailboxes: the record of what was sent outlives a mailbox's settings.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id       INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    mailbox_id      INTEGER NOT NULL,
    -- reply | acknowledgement
    kind            TEXT    NOT NULL,
    message_id      TEXT    NOT NULL UNIQUE,
    sha256          TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    envelope_from   TEXT    NOT NULL,
    -- JSON arrays of addresses
    to_addresses    TEXT    NOT NULL,
    cc_addresses    TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    -- what the agent wrote, for the ticket's thread (the bytes hold the quoted part too)
    body            TEXT    NOT NULL,
    -- JSON array of attachment descriptions, as ticket entries keep them
    attachments     TEXT    NOT NULL,
    author_id       INTEGER REFERENCES users (id) ON DELETE SET NULL,
    author          TEXT    NOT NULL,
    -- queued | sent | failed
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- a sender is working on it until then; after that another may take it
    claimed_until   INTEGER,
    -- the server's words (or the network's) at the last failed attempt
    last_error      TEXT,
    queued_at       INTEGER NOT NULL,
    -- retries stop this long after it (reset by "Send again")
    retry_from      INTEGER NOT NULL,
    sent_at         INTEGER,
    failed_at       INTEGER
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_by_ticket ON outbox (ticket_id, id);

-- A reply is also an event in the ticket's history.
ALTER TABLE ticket_events ADD COLUMN outbox_id INTEGER REFERENCES outbox (id) ON DELETE SET NULL;

-- New tickets whose mailbox acknowledges them, until the acknowledgement is queued or
-- deliberately not sent. Written in the processing transaction that opens the ticket.
CREATE TABLE acknowledgements_wanted (
    ticket_id  INTEGER PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    mailbox_id INTEGER NOT NULL,
    address    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- When each address last got an acknowledgement from each mailbox (promise 10: at most
-- one per sender per period).
CREATE TABLE acknowledged_senders (
    mailbox_id   INTEGER NOT NULL,
    address      TEXT    NOT NULL,
    last_sent_at INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, address)
);
