-- Notifications by mail to agents (issue 15): what happened that an agent asked to hear
-- about, until the sender turns it into an outbox message. Written in the transaction
-- of the event itself (processing, assignment), so an event that did not commit
-- notifies nobody and one that did cannot be forgotten.
-- Timestamps are integer milliseconds since the Unix epoch.
CREATE TABLE notifications_wanted (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    -- new_ticket | customer_reply | assigned
    event      TEXT    NOT NULL,
    -- what the event is about: the ticket entry of a new ticket or a customer's reply,
    -- the history event of an assignment. With the user and the event it is the key
    -- that keeps a retried transaction from asking twice.
    source_id  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, event, source_id)
);
CREATE INDEX notifications_wanted_by_age ON notifications_wanted (created_at, id);
