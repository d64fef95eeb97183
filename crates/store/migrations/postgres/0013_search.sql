-- Full-text search over tickets (issue 15): one row per ticket entry, keyed by the
-- entry's id, so a ticket's rows are found through ticket_entries.ticket_id when
-- searching and a merge (which moves entries) needs nothing here.
--
-- The text is normalized by popdesk before it gets here (lower case, accents removed,
-- CJK split into single characters, words separated by single spaces), the same for
-- SQLite and PostgreSQL, and turned into a tsvector with the 'simple' configuration:
-- no stemming and no stop words, so both databases find the same tickets. Weights:
-- A subject, B sender and attachment names, C the new text, D the quoted rest.
CREATE TABLE entry_search (
    entry_id BIGINT PRIMARY KEY REFERENCES ticket_entries (id) ON DELETE CASCADE,
    document TSVECTOR NOT NULL
);
CREATE INDEX entry_search_by_word ON entry_search USING GIN (document);

-- Entries made before this migration have no search row yet: the store indexes those
-- up to `up_to` when it opens, newest first, in batches, lowering `up_to` as it goes,
-- and removes the row when none are left.
CREATE TABLE entry_search_backfill (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    up_to BIGINT  NOT NULL
);
INSERT INTO entry_search_backfill (id, up_to)
    SELECT 1, MAX(id) FROM ticket_entries HAVING MAX(id) IS NOT NULL;
