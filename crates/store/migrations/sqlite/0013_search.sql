-- Full-text search over tickets (issue 15): one row per ticket entry, keyed by the
-- entry's id, so a ticket's rows are found through ticket_entries.ticket_id when
-- searching and a merge (which moves entries) needs nothing here.
--
-- The text is normalized by popdesk before it gets here (lower case, accents removed,
-- CJK split into single characters, words separated by single spaces), the same for
-- SQLite and PostgreSQL; unicode61 only splits it again. Contentless: the words are
-- all a search needs, the text itself is in ticket_entries.
CREATE VIRTUAL TABLE entry_search USING fts5(
    subject,
    body,
    quoted,
    attachments,
    sender,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
-- An entry that goes takes its search row with it (PostgreSQL has a foreign key).
CREATE TRIGGER entry_search_forget AFTER DELETE ON ticket_entries BEGIN
    DELETE FROM entry_search WHERE rowid = old.id;
END;

-- Entries made before this migration have no search row yet: the store indexes those
-- up to `up_to` when it opens, newest first, in batches, lowering `up_to` as it goes,
-- and removes the row when none are left.
CREATE TABLE entry_search_backfill (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    up_to INTEGER NOT NULL
);
INSERT INTO entry_search_backfill (id, up_to)
    SELECT 1, MAX(id) FROM ticket_entries HAVING MAX(id) IS NOT NULL;
