-- Messages the server cannot hand out (issue 13): one whose download failed is tried
-- again on its own in the next runs; one that fails the same way in several runs is set
-- aside: left on the server, no longer retrieved, shown to the admin with each attempt,
-- until the admin asks to try again. A message stored after all loses its row.
-- Timestamps are integer milliseconds since the Unix epoch.

CREATE TABLE failing_messages (
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid           TEXT    NOT NULL,
    -- the size the server announced in LIST at the latest attempt
    size          INTEGER NOT NULL,
    -- the header section from `TOP n 0`, when the server gave it
    headers       TEXT,
    -- 1 once `TOP n 0` was tried, whatever it gave
    headers_tried INTEGER NOT NULL DEFAULT 0,
    first_failed_at INTEGER NOT NULL,
    -- when it was set aside; NULL while it is still being tried
    set_aside_at  INTEGER,
    -- the admin asked to try once more: the next failure sets it aside again at once
    retry_once    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX failing_messages_set_aside ON failing_messages (mailbox_id, set_aside_at);

CREATE TABLE failing_message_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id   INTEGER NOT NULL,
    uid          TEXT    NOT NULL,
    attempted_at INTEGER NOT NULL,
    -- how it failed, for "the same way": connection, timeout, too_long, protocol
    kind         TEXT    NOT NULL,
    error        TEXT    NOT NULL,
    -- octets of the message that arrived before it broke off: "the same way" is also
    -- "at the same place", which a flaky network is not
    octets       INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (mailbox_id, uid) REFERENCES failing_messages (mailbox_id, uid)
        ON DELETE CASCADE
);
CREATE INDEX failing_message_attempts_by_message
    ON failing_message_attempts (mailbox_id, uid, id);
