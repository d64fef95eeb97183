-- Several popdesk nodes (issue 16): the sign-in limits live in the database, so every
-- process on it shares them. (Raw messages in the database are PostgreSQL only.)
-- Timestamps are integer milliseconds since the Unix epoch.

-- Failed sign-ins per key in the current window: "address:<sha256 of the normal form>"
-- or "network:<address or /64>". at_limit = 1 once the key reached its limit in its
-- window; such keys are evicted last when the table is full.
CREATE TABLE sign_in_failures (
    limit_key TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    at_limit INTEGER NOT NULL DEFAULT 0,
    touched_at INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_eviction ON sign_in_failures (at_limit, touched_at);

-- Which process ran a fetch ("host:pid", as its lease names it): with several nodes, the
-- fetch log says where each run happened, and a run left unfinished by a node that died
-- is told apart from one still going elsewhere.
ALTER TABLE fetch_runs ADD COLUMN fetcher TEXT;
