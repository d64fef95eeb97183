-- The agent's day (issue 15): who works a ticket, which mailboxes each agent sees,
-- tickets merged into others, each user's preferences, and when the mail behind a
-- ticket was written. Timestamps are integer milliseconds since the Unix epoch.

-- The agent (or admin) who owns the ticket; NULL: nobody. A removed user's tickets
-- become unassigned rather than vanish.
ALTER TABLE tickets ADD COLUMN assignee_id INTEGER REFERENCES users (id) ON DELETE SET NULL;
-- Set on a ticket merged into another: its entries, events and outgoing mail moved
-- there, and mail naming it ([#N] or a reply to one of its messages) lands there.
ALTER TABLE tickets ADD COLUMN merged_into_id INTEGER REFERENCES tickets (id);
-- The Date of the first and of the latest mail on the ticket, beside created_at and
-- updated_at (when popdesk got them): an imported mailbox's tickets were written long
-- before they arrived.
ALTER TABLE tickets ADD COLUMN first_mail_sent_at INTEGER;
ALTER TABLE tickets ADD COLUMN last_mail_sent_at INTEGER;
UPDATE tickets SET
    first_mail_sent_at = (SELECT e.sent_at FROM ticket_entries e
                          WHERE e.ticket_id = tickets.id ORDER BY e.id LIMIT 1),
    last_mail_sent_at = (SELECT e.sent_at FROM ticket_entries e
                         WHERE e.ticket_id = tickets.id ORDER BY e.id DESC LIMIT 1);
-- "Mine" and "Unassigned", newest activity first; the other sort orders of the list.
CREATE INDEX tickets_by_assignee ON tickets (assignee_id, updated_at, id);
CREATE INDEX tickets_by_created ON tickets (created_at, id);
CREATE INDEX tickets_by_requester ON tickets (requester_id, updated_at, id);

-- Assignment and merge events: who the ticket went to (kept as shown then, like
-- `author`), and the other ticket of a merge.
ALTER TABLE ticket_events ADD COLUMN assignee_id INTEGER REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE ticket_events ADD COLUMN assignee TEXT;
ALTER TABLE ticket_events ADD COLUMN other_ticket_number INTEGER;

-- Team mailboxes: the mailboxes each agent works. Admins see every mailbox and have no
-- rows here. Agents who existed before saw every mailbox, and keep seeing them.
CREATE TABLE user_mailboxes (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, mailbox_id)
);
CREATE INDEX user_mailboxes_by_mailbox ON user_mailboxes (mailbox_id, user_id);
INSERT INTO user_mailboxes (user_id, mailbox_id)
    SELECT u.id, m.id FROM users u, mailboxes m WHERE u.role = 'agent';

-- Each user's preferences: the time zone times are shown in (an IANA name), and which
-- mail notifications they get. Nobody was assigned anything before, so the two about
-- assigned tickets start on; new tickets in one's mailboxes would be new mail to
-- everyone after an upgrade, so that one starts off.
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE users ADD COLUMN notify_new_ticket INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN notify_customer_reply INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN notify_assigned INTEGER NOT NULL DEFAULT 1;
