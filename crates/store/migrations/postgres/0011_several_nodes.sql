-- Several popdesk nodes on one PostgreSQL (issue 16): raw messages in the database when
-- blob_store = "postgres", and the sign-in limits shared by every node. Timestamps are
-- integer milliseconds since the Unix epoch.

-- The octets of one message, written as they stream in. `owner` is the writing process's
-- advisory-lock key while the content is unfinished, NULL once a `blobs` row names it:
-- an unfinished content whose owner's lock is free belongs to a process that died.
CREATE TABLE blob_contents (
    id BIGSERIAL PRIMARY KEY,
    owner BIGINT,
    started_at BIGINT NOT NULL
);
CREATE INDEX blob_contents_unfinished ON blob_contents (owner) WHERE owner IS NOT NULL;

CREATE TABLE blob_chunks (
    content_id BIGINT NOT NULL REFERENCES blob_contents (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (content_id, seq)
);
-- Mail is mostly compressed already (attachments) and compressing costs every write:
-- stored out of line, uncompressed.
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- A stored blob by its content address. No cascade from blob_contents: a content a blob
-- names cannot be deleted.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    content_id BIGINT NOT NULL UNIQUE REFERENCES blob_contents (id),
    size BIGINT NOT NULL,
    stored_at BIGINT NOT NULL
);

-- Failed sign-ins per key in the current window: "address:<sha256 of the normal form>"
-- or "network:<address or /64>". at_limit = 1 once the key reached its limit in its
-- window; such keys are evicted last when the table is full.
CREATE TABLE sign_in_failures (
    limit_key TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    at_limit INTEGER NOT NULL DEFAULT 0,
    touched_at BIGINT NOT NULL
);
CREATE INDEX sign_in_failures_eviction ON sign_in_failures (at_limit, touched_at);

-- Which process ran a fetch ("host:pid", as its lease names it): with several nodes, the
-- fetch log says where each run happened, and a run left unfinished by a node that died
-- is told apart from one still going elsewhere.
ALTER TABLE fetch_runs ADD COLUMN fetcher TEXT;
