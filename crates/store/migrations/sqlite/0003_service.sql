-- The always-on service (issue 5): people who sign in, their sessions and API tokens,
-- what people do on tickets (internal notes, status changes), and each mailbox's own
-- poll interval. Timestamps are integer milliseconds since the Unix epoch.

ALTER TABLE mailboxes ADD COLUMN poll_interval_secs INTEGER NOT NULL DEFAULT 60;

-- Agents and admins. Addresses are stored trimmed and lower-cased; the password only as
-- an argon2id PHC string.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Sign-in sessions. Only the sha256 of the cookie's random token is kept: a copy of the
-- database does not let anyone sign in.
CREATE TABLE user_sessions (
    token_hash   TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);

-- API tokens: shown once, kept as sha256, revocable. A token acts with its own role.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    -- the first characters of the token, so a list can tell tokens apart
    prefix       TEXT    NOT NULL,
    created_by   INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- What people did on a ticket: internal notes and status changes. The author's label is
-- kept as text so the history reads the same after a user is removed.
CREATE TABLE ticket_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id    INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,
    author_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    author       TEXT    NOT NULL,
    body         TEXT,
    from_status  TEXT,
    to_status    TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX ticket_events_by_ticket ON ticket_events (ticket_id, id);
