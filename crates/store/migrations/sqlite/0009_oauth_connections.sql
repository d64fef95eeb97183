-- OAuth2 connections (issue 11): a mailbox that signs in with OAuth2 holds a connection,
-- not a token. Its settings are part of the mailbox; its tokens and their state live on
-- the same row, so one UPDATE commits a rotated refresh token together with the access
-- token it came with. Timestamps are integer milliseconds since the Unix epoch.

-- NULL provider: the mailbox signs in with a password (or a token pasted by hand).
ALTER TABLE mailboxes ADD COLUMN oauth_provider TEXT;
ALTER TABLE mailboxes ADD COLUMN oauth_tenant TEXT;
ALTER TABLE mailboxes ADD COLUMN oauth_issuer TEXT;
-- The endpoints, resolved when the settings are saved (presets, or the issuer's discovery
-- document), so fetching never depends on discovery.
ALTER TABLE mailboxes ADD COLUMN oauth_authorize_url TEXT;
ALTER TABLE mailboxes ADD COLUMN oauth_token_url TEXT;
ALTER TABLE mailboxes ADD COLUMN oauth_device_url TEXT;
ALTER TABLE mailboxes ADD COLUMN oauth_client_id TEXT;
-- sealed like `secret`; NULL for a public client
ALTER TABLE mailboxes ADD COLUMN oauth_client_secret BLOB;
-- space-separated, as OAuth2 sends them
ALTER TABLE mailboxes ADD COLUMN oauth_scopes TEXT;
-- authorization-code | device-code | client-credentials
ALTER TABLE mailboxes ADD COLUMN oauth_flow TEXT;

-- not-connected | connected | needs-reconnecting
ALTER TABLE mailboxes ADD COLUMN oauth_state TEXT;
-- sealed
ALTER TABLE mailboxes ADD COLUMN oauth_access_token BLOB;
ALTER TABLE mailboxes ADD COLUMN oauth_expires_at INTEGER;
-- sealed; NULL for client credentials
ALTER TABLE mailboxes ADD COLUMN oauth_refresh_token BLOB;
ALTER TABLE mailboxes ADD COLUMN oauth_connected_at INTEGER;
ALTER TABLE mailboxes ADD COLUMN oauth_refreshed_at INTEGER;
-- Who is refreshing the tokens, until when: a short claim on the row, so two workers
-- (a fetch and a send, or two nodes) never spend one refresh token twice, which a
-- provider that rotates refresh tokens answers by revoking the whole grant.
ALTER TABLE mailboxes ADD COLUMN oauth_refreshing_by TEXT;
ALTER TABLE mailboxes ADD COLUMN oauth_refreshing_until INTEGER;

-- Authorization-code flows under way: one row per "Connect", taken (deleted) by the
-- first callback that names its state, so a state works once. Only hashes of the state
-- and of the admin's session are kept; the PKCE verifier is sealed, bound to its row id.
CREATE TABLE oauth_authorizations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    state_hash   TEXT    NOT NULL UNIQUE,
    mailbox_id   INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    session_hash TEXT    NOT NULL,
    verifier     BLOB    NOT NULL,
    redirect_uri TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
