//! Full-text search over tickets, as agents type it: words in any order, accents folded,
//! phrases in quotes, the last word matched as a prefix, a ticket number found by its
//! number, results ranked, and a snippet of the best-matching mail around the first hit.
//!
//! One search row per ticket entry (SQLite FTS5 `entry_search`, PostgreSQL a `tsvector`
//! with a GIN index), written in the processing transaction that adds the entry and
//! keyed by the entry's id: searches reach the ticket through `ticket_entries.ticket_id`,
//! so a merge that moves entries moves their search rows with them. What is indexed is
//! the subject, the new text, the quoted rest, attachment names and the sender.
//!
//! Text is normalized here, in Rust, before it reaches either database, and queries
//! are normalized the same way: lower case, compatibility decomposition with combining
//! marks dropped ("Müller" is "muller"), CJK characters as single-character words (a
//! Japanese subject has no spaces), everything else split at anything that is not a
//! letter or a digit. The databases only split the result at spaces again (FTS5
//! `unicode61`, PostgreSQL's `simple` configuration: no stemming, no stop words), so
//! both find the same tickets, and no query text is ever read as query syntax.

use std::collections::HashMap;
use std::ops::Range;

use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe};
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use crate::db::Backend;
use crate::text::column;
use crate::ticket::{
    Bind, EntryAttachment, Ticket, TicketEntry, TicketFilter, entry_columns, entry_from_row,
    filter_sql, ticket_from_row, ticket_select,
};
use crate::{Store, StoreError};

/// Longer runs of letters and digits are encoded data (base64, hashes), never searched
/// for; leaving them out keeps the index small.
const MAX_WORD_CHARS: usize = 64;

/// How much of one field is indexed, in bytes of its text: a mail's first 256 KiB say
/// what it is about, and PostgreSQL refuses a `tsvector` over 1 MiB.
const MAX_FIELD_BYTES: usize = 256 * 1024;

/// Entries indexed per transaction when a database from before search is brought up
/// to date.
const BACKFILL_BATCH: i64 = 500;

/// Words of a snippet before the first hit, and in all.
const SNIPPET_WORDS_BEFORE: usize = 6;
const SNIPPET_WORDS: usize = 24;

/// The bm25 weights of the FTS5 columns (subject, body, quoted, attachments, sender),
/// as PostgreSQL's weights A, C, D, B, B rank them.
const BM25: &str = "bm25(entry_search, 4.0, 2.0, 1.0, 2.0, 2.0)";

/// A ticket found by a search, with where the search found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketHit {
    pub ticket: Ticket,
    /// A few words around the first hit in the best-matching mail; `None` for a ticket
    /// found by its number alone, or listed without a search.
    pub snippet: Option<Snippet>,
}

/// A few words of a mail around what a search found, the found words marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snippet {
    /// Which part of the mail the words are from.
    pub field: SnippetField,
    /// The words in order; joined, they are the snippet's text.
    pub pieces: Vec<SnippetPiece>,
}

impl Snippet {
    /// The snippet as plain text.
    pub fn text(&self) -> String {
        self.pieces.iter().map(|p| p.text.as_str()).collect()
    }
}

/// Part of a snippet: found words (`hit`), or the text between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnippetPiece {
    pub text: String,
    pub hit: bool,
}

/// The part of a mail a snippet is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnippetField {
    /// The new text of the mail.
    Message,
    /// The quoted history below it.
    Quoted,
    /// The names of its attachments.
    Attachment,
    /// Its sender's name and address.
    Sender,
    Subject,
}

// ---- normalization ----

/// Whether a (normalized) character is written without spaces between words: Han,
/// Hiragana, Katakana, Hangul. Each is a word of its own; a phrase of them finds text.
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x1100..=0x11FF      // Hangul Jamo (decomposed syllables)
        | 0x3040..=0x30FF    // Hiragana, Katakana
        | 0x3130..=0x318F    // Hangul compatibility Jamo
        | 0x31F0..=0x31FF    // Katakana phonetic extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xA960..=0xA97F    // Hangul Jamo extended A
        | 0xAC00..=0xD7FF    // Hangul syllables, Jamo extended B
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x3FFFF) // CJK extensions B and later
        && c.is_alphanumeric()
}

/// The characters `c` stands for when searching: decomposed, without combining marks,
/// lower case, with the letters that have no decomposition folded as people type them
/// ("ß" is "ss", "ø" is "o").
fn fold(c: char, out: &mut Vec<char>) {
    decompose_compatible(c, |d| {
        if is_combining_mark(d) {
            return;
        }
        for l in d.to_lowercase() {
            match l {
                'ß' => out.extend(['s', 's']),
                'æ' => out.extend(['a', 'e']),
                'œ' => out.extend(['o', 'e']),
                'ø' => out.push('o'),
                'ł' => out.push('l'),
                'đ' => out.push('d'),
                'ı' => out.push('i'),
                l if is_combining_mark(l) => {}
                l => out.push(l),
            }
        }
    });
}

/// The words of `text`, normalized, each with the byte range of `text` it came from.
fn words(text: &str) -> Vec<(String, Range<usize>)> {
    let mut found = Vec::new();
    each_word(text, |word, span| found.push((word.to_string(), span)));
    found
}

/// Calls `found` with each normalized word of `text` and the byte range it came from.
fn each_word(text: &str, mut found: impl FnMut(&str, Range<usize>)) {
    let mut word = String::new();
    let mut chars = 0usize;
    let mut span = 0..0;
    let mut folded = Vec::with_capacity(4);
    let mut flush = |word: &mut String, chars: &mut usize, span: &Range<usize>| {
        if !word.is_empty() && *chars <= MAX_WORD_CHARS {
            found(word, span.clone());
        }
        word.clear();
        *chars = 0;
    };
    for (at, c) in text.char_indices() {
        let next = at + c.len_utf8();
        folded.clear();
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                folded.push(c.to_ascii_lowercase());
            }
        } else if is_combining_mark(c) {
            // A mark written apart from its letter ("e" + U+0301) belongs to the word.
            span.end = next.max(span.end);
            continue;
        } else {
            fold(c, &mut folded);
        }
        if folded.is_empty() {
            flush(&mut word, &mut chars, &span);
            continue;
        }
        for &f in &folded {
            if is_cjk(f) {
                flush(&mut word, &mut chars, &span);
                word.push(f);
                chars = 1;
                flush(&mut word, &mut chars, &(at..next));
            } else if f.is_alphanumeric() {
                if word.is_empty() {
                    span = at..next;
                }
                word.push(f);
                chars += 1;
                span.end = next;
            } else {
                flush(&mut word, &mut chars, &span);
            }
        }
    }
    flush(&mut word, &mut chars, &span);
}

/// `text` as it is indexed: its normalized words separated by single spaces.
pub(crate) fn normalized(text: &str) -> String {
    let text = head(text, MAX_FIELD_BYTES);
    let mut out = String::with_capacity(text.len());
    each_word(text, |word, _| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    });
    out
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

// ---- what an entry is searched by ----

/// The searchable text of a ticket entry, as it is stored.
pub(crate) struct EntryText<'a> {
    pub subject: Option<&'a str>,
    pub from_name: Option<&'a str>,
    pub from_address: Option<&'a str>,
    pub reply_text: &'a str,
    pub text_body: &'a str,
    pub attachments: &'a [EntryAttachment],
}

impl<'a> EntryText<'a> {
    fn of(entry: &'a TicketEntry) -> EntryText<'a> {
        EntryText {
            subject: entry.subject.as_deref(),
            from_name: entry.from_name.as_deref(),
            from_address: entry.from_address.as_deref(),
            reply_text: &entry.reply_text,
            text_body: &entry.text_body,
            attachments: &entry.attachments,
        }
    }

    /// The whole text after the new part: the quoted history. When the new part is not
    /// at the top (answers between quotes), all of it, as the ticket page folds it.
    fn quoted(&self) -> &'a str {
        let reply = self.reply_text.trim();
        let body = self.text_body.trim();
        if reply.is_empty() {
            return body;
        }
        if body == reply {
            return "";
        }
        body.strip_prefix(reply).unwrap_or(body)
    }

    /// Attachment names, and the sender and subject of forwarded messages, one a line.
    fn attachment_names(&self) -> String {
        let mut names = Vec::new();
        for attachment in self.attachments {
            names.extend(attachment.name.as_deref());
            if let Some(forwarded) = &attachment.forwarded {
                names.extend(forwarded.subject.as_deref());
                names.extend(forwarded.from.as_deref());
            }
        }
        names.join("\n")
    }

    fn sender(&self) -> String {
        [self.from_name, self.from_address]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The parts of the entry a snippet may come from, in the order they are tried,
    /// with the weight a hit in each has when choosing a ticket's best entry.
    fn fields(&self) -> [(SnippetField, String, u32); 5] {
        [
            (SnippetField::Message, self.reply_text.to_string(), 2),
            (SnippetField::Quoted, self.quoted().to_string(), 1),
            (SnippetField::Attachment, self.attachment_names(), 2),
            (SnippetField::Sender, self.sender(), 2),
            (
                SnippetField::Subject,
                self.subject.unwrap_or_default().to_string(),
                4,
            ),
        ]
    }
}

/// The search row of one entry, its fields normalized for matching.
#[derive(Debug, Clone)]
pub(crate) struct SearchRow {
    entry_id: i64,
    subject: String,
    body: String,
    quoted: String,
    attachments: String,
    sender: String,
}

impl SearchRow {
    pub(crate) fn new(entry_id: i64, entry: &EntryText<'_>) -> SearchRow {
        SearchRow {
            entry_id,
            subject: normalized(entry.subject.unwrap_or_default()),
            body: normalized(entry.reply_text),
            quoted: normalized(entry.quoted()),
            attachments: normalized(&entry.attachment_names()),
            sender: normalized(&entry.sender()),
        }
    }
}

/// Search rows per statement: six values each, well under either database's limit on
/// bound values.
const ROWS_PER_INSERT: usize = 100;

/// Writes the search rows of new entries (inside the transaction that adds them), many
/// per statement: a batch of processed mail costs one round trip here, not one each.
pub(crate) async fn index_entries(
    conn: &mut AnyConnection,
    backend: Backend,
    rows: &[SearchRow],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        // Only placeholders are formatted in, never data.
        let values = match backend {
            Backend::Sqlite => crate::processing::value_rows(1, chunk.len(), 6),
            Backend::Postgres => (0..chunk.len())
                .map(|i| {
                    let p = |k: usize| format!("${}", i * 6 + k);
                    format!(
                        "({}, setweight(to_tsvector('simple', {}), 'A') \
                         || setweight(to_tsvector('simple', {}), 'C') \
                         || setweight(to_tsvector('simple', {}), 'D') \
                         || setweight(to_tsvector('simple', {} || ' ' || {}), 'B'))",
                        p(1),
                        p(2),
                        p(3),
                        p(4),
                        p(5),
                        p(6)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
        let sql = match backend {
            Backend::Sqlite => format!(
                "INSERT INTO entry_search (rowid, subject, body, quoted, attachments, sender) \
                 VALUES {values}"
            ),
            Backend::Postgres => {
                format!("INSERT INTO entry_search (entry_id, document) VALUES {values}")
            }
        };
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            query = query
                .bind(row.entry_id)
                .bind(row.subject.as_str())
                .bind(row.body.as_str())
                .bind(row.quoted.as_str())
                .bind(row.attachments.as_str())
                .bind(row.sender.as_str());
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("index ticket entries for search"))?;
    }
    Ok(())
}

/// Indexes the entries a database had before search existed, a batch per transaction,
/// newest first (recent tickets are searched most). Resumes where an interrupted run
/// stopped; several processes opening the store at once share the work, each batch
/// claimed by moving the bookmark it starts from. Returns how many it indexed.
pub(crate) async fn backfill(pool: &AnyPool, backend: Backend) -> Result<u64, StoreError> {
    let action = "index earlier ticket entries for search";
    let mut indexed = 0u64;
    loop {
        let row = sqlx::query("SELECT up_to FROM entry_search_backfill WHERE id = 1")
            .fetch_optional(pool)
            .await
            .map_err(StoreError::db(action))?;
        let Some(row) = row else {
            if indexed > 0 {
                tracing::info!(entries = indexed, "earlier ticket entries are searchable");
            }
            return Ok(indexed);
        };
        let up_to: i64 = column(&row, "up_to")?;
        if indexed == 0 {
            tracing::info!(up_to, "indexing earlier ticket entries for search");
        }
        let mut tx = pool.begin().await.map_err(StoreError::db(action))?;
        // Writing first takes SQLite's write lock and PostgreSQL's row lock: whoever
        // gets it with the bookmark unchanged indexes this batch.
        let claimed = sqlx::query(
            "UPDATE entry_search_backfill SET up_to = up_to WHERE id = 1 AND up_to = $1",
        )
        .bind(up_to)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action))?;
        if claimed.rows_affected() == 0 {
            continue;
        }
        let sql = concat!(
            "SELECT ",
            entry_columns!(),
            " FROM ticket_entries WHERE id <= $1 ORDER BY id DESC LIMIT $2"
        );
        let rows = sqlx::query(sql)
            .bind(up_to)
            .bind(BACKFILL_BATCH)
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let entries = rows
            .iter()
            .map(entry_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<SearchRow> = entries
            .iter()
            .map(|entry| SearchRow::new(entry.id, &EntryText::of(entry)))
            .collect();
        index_entries(&mut tx, backend, &rows).await?;
        let lowest = entries.last().map(|e| e.id);
        match lowest {
            Some(lowest) if entries.len() as i64 == BACKFILL_BATCH => {
                sqlx::query("UPDATE entry_search_backfill SET up_to = $1 WHERE id = 1")
                    .bind(lowest - 1)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
            }
            _ => {
                sqlx::query("DELETE FROM entry_search_backfill WHERE id = 1")
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
            }
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        indexed += entries.len() as u64;
    }
}

// ---- queries ----

/// One thing a search looks for: a word, or words in a row (a phrase in quotes, or a
/// word normalization splits, like "e-mail" or a Japanese one).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    words: Vec<String>,
    /// The last word may go on (the agent is still typing it).
    prefix: bool,
}

impl Term {
    /// Whether the term's words are at `words[at..]`.
    fn found_at(&self, words: &[(String, Range<usize>)], at: usize) -> bool {
        let Some(candidates) = words.get(at..at + self.words.len()) else {
            return false;
        };
        let last = self.words.len() - 1;
        self.words
            .iter()
            .zip(candidates)
            .enumerate()
            .all(|(i, (wanted, (word, _)))| {
                if self.prefix && i == last {
                    word.starts_with(wanted.as_str())
                } else {
                    word == wanted
                }
            })
    }
}

/// A search as typed, understood: its terms (all must be found in one mail) and the
/// ticket number it names, if it is one ("1996", "#1996", "[#1996]").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SearchQuery {
    terms: Vec<Term>,
    ticket_number: Option<i64>,
}

impl SearchQuery {
    pub(crate) fn parse(text: &str) -> SearchQuery {
        let mut terms = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
            rest = &rest[start..];
            let (piece, quoted, after) = if let Some(inner) = rest.strip_prefix('"') {
                // An unclosed quote runs to the end, as it would while still typed.
                match inner.find('"') {
                    Some(end) => (&inner[..end], true, &inner[end + 1..]),
                    None => (inner, true, ""),
                }
            } else {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '"')
                    .unwrap_or(rest.len());
                (&rest[..end], false, &rest[end..])
            };
            let words: Vec<String> = words(piece).into_iter().map(|(w, _)| w).collect();
            // The last word, typed up to the end of the box, may still be growing.
            let prefix = !quoted
                && after.is_empty()
                && words
                    .last()
                    .is_some_and(|w| w.chars().count() >= 2 && !w.chars().any(is_cjk));
            if !words.is_empty() {
                terms.push(Term { words, prefix });
            }
            rest = after;
        }
        SearchQuery {
            terms,
            ticket_number: ticket_number(text),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.ticket_number.is_none()
    }

    /// The FTS5 query: every term a quoted phrase (so nothing typed is FTS5 syntax),
    /// all of them required.
    fn fts5(&self) -> String {
        self.terms
            .iter()
            .map(|term| {
                let star = if term.prefix { "*" } else { "" };
                format!("\"{}\"{star}", term.words.join(" "))
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// The same as a PostgreSQL `tsquery`: words of a term follow each other (`<->`),
    /// a prefix is `:*`, all terms required (`&`). The words are letters and digits
    /// only, so quoting them is enough.
    fn tsquery(&self) -> String {
        self.terms
            .iter()
            .map(|term| {
                let mut words: Vec<String> = term.words.iter().map(|w| format!("'{w}'")).collect();
                if term.prefix
                    && let Some(last) = words.last_mut()
                {
                    last.push_str(":*");
                }
                words.join(" <-> ")
            })
            .collect::<Vec<_>>()
            .join(" & ")
    }
}

/// The ticket number a search names, when the whole search is one.
pub fn ticket_number(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text)
        .trim();
    let digits = text.strip_prefix('#').unwrap_or(text);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

/// The tickets with an entry whose search row matches `$n` (a query from
/// [`SearchQuery::fts5`] or [`SearchQuery::tsquery`]), as `ticket_id`.
fn matching_tickets_sql(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => format!(
            "SELECT ticket_id FROM ticket_entries WHERE id IN \
             (SELECT rowid FROM entry_search WHERE entry_search MATCH ${n})"
        ),
        Backend::Postgres => format!(
            "SELECT e.ticket_id FROM entry_search s JOIN ticket_entries e ON e.id = s.entry_id \
             WHERE s.document @@ to_tsquery('simple', ${n})"
        ),
    }
}

/// The same with each matching entry's score (lower is better), as
/// `(ticket_id, score)`.
fn scored_tickets_sql(backend: Backend, n: usize) -> String {
    match backend {
        // bm25() only works while FTS5 runs the match itself: scored in a subquery of
        // its own, which `LIMIT -1` (no limit) keeps SQLite from merging into the join.
        Backend::Sqlite => format!(
            "SELECT e.ticket_id AS ticket_id, m.score AS score FROM \
             (SELECT rowid AS entry_id, {BM25} AS score FROM entry_search \
              WHERE entry_search MATCH ${n} LIMIT -1) m \
             JOIN ticket_entries e ON e.id = m.entry_id"
        ),
        Backend::Postgres => format!(
            "SELECT e.ticket_id AS ticket_id, \
             -ts_rank(s.document, to_tsquery('simple', ${n})) AS score \
             FROM entry_search s JOIN ticket_entries e ON e.id = s.entry_id \
             WHERE s.document @@ to_tsquery('simple', ${n})"
        ),
    }
}

/// The query text for this backend.
fn backend_query(query: &SearchQuery, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => query.fts5(),
        Backend::Postgres => query.tsquery(),
    }
}

/// The condition a search adds to a ticket filter (tickets `t`): a mail of the ticket
/// matches, or the search is the ticket's number. `None` when the search has nothing to
/// look for (only punctuation): then it filters nothing.
pub(crate) fn ticket_condition(
    text: &str,
    backend: Backend,
    binds: &mut Vec<Bind>,
) -> Option<String> {
    let query = SearchQuery::parse(text);
    if query.is_empty() {
        return None;
    }
    let mut alternatives = Vec::new();
    if !query.terms.is_empty() {
        binds.push(Bind::Text(backend_query(&query, backend)));
        alternatives.push(format!(
            "t.id IN ({})",
            matching_tickets_sql(backend, binds.len())
        ));
    }
    if let Some(number) = query.ticket_number {
        binds.push(Bind::Int(number));
        alternatives.push(format!("t.number = ${}", binds.len()));
    }
    Some(format!("({})", alternatives.join(" OR ")))
}

impl Store {
    /// Tickets the filter's search finds, best match first (a ticket named by its
    /// number before all others), each with a snippet of its best-matching mail. Pages
    /// and other filters as [`Store::tickets`]; without a search, the same list.
    pub async fn search_tickets(
        &self,
        filter: &TicketFilter,
    ) -> Result<Vec<TicketHit>, StoreError> {
        let query = filter
            .text
            .as_deref()
            .map(SearchQuery::parse)
            .unwrap_or_default();
        if query.is_empty() {
            let tickets = self.tickets(filter).await?;
            return Ok(tickets
                .into_iter()
                .map(|ticket| TicketHit {
                    ticket,
                    snippet: None,
                })
                .collect());
        }
        let backend = self.backend();
        // Refused as the list refuses it (a search too long).
        filter_sql(filter, backend)?;
        // The rest of the filter as the list has it; the search joins below, where its
        // rank is at hand.
        let unsearched = TicketFilter {
            text: None,
            ..filter.clone()
        };
        let (where_clause, mut binds) = filter_sql(&unsearched, backend)?;
        let mut found = Vec::new();
        if !query.terms.is_empty() {
            binds.push(Bind::Text(backend_query(&query, backend)));
            found.push(format!(
                "SELECT ticket_id, score FROM ({}) matched",
                scored_tickets_sql(backend, binds.len())
            ));
        }
        if let Some(number) = query.ticket_number {
            binds.push(Bind::Int(number));
            found.push(format!(
                "SELECT id AS ticket_id, CAST(-1000000000 AS REAL) AS score FROM tickets \
                 WHERE number = ${}",
                binds.len()
            ));
        }
        let n = binds.len();
        // Only placeholders are formatted in, never data.
        let sql = format!(
            "WITH hits AS (SELECT ticket_id, MIN(score) AS score FROM ({}) found \
             GROUP BY ticket_id) \
             {} JOIN hits h ON h.ticket_id = t.id {where_clause} \
             ORDER BY h.score, t.updated_at DESC, t.id DESC LIMIT ${} OFFSET ${}",
            found.join(" UNION ALL "),
            ticket_select!(),
            n + 1,
            n + 2
        );
        let mut sql_query = sqlx::query(AssertSqlSafe(sql));
        for bind in binds {
            sql_query = match bind {
                Bind::Text(text) => sql_query.bind(text),
                Bind::Int(int) => sql_query.bind(int),
            };
        }
        let rows = sql_query
            .bind(i64::from(filter.limit))
            .bind(i64::from(filter.offset))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("search tickets"))?;
        let tickets = rows
            .iter()
            .map(ticket_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut snippets = self.snippets(&query, &tickets).await?;
        Ok(tickets
            .into_iter()
            .map(|ticket| TicketHit {
                snippet: snippets.remove(&ticket.id),
                ticket,
            })
            .collect())
    }

    /// The snippet of each ticket's best-matching entry (by ticket id): the entries the
    /// database says match, the best chosen and cut here from their original text.
    async fn snippets(
        &self,
        query: &SearchQuery,
        tickets: &[Ticket],
    ) -> Result<HashMap<i64, Snippet>, StoreError> {
        if tickets.is_empty() || query.terms.is_empty() {
            return Ok(HashMap::new());
        }
        let backend = self.backend();
        let mut placeholders = Vec::with_capacity(tickets.len());
        for i in 0..tickets.len() {
            placeholders.push(format!("${}", i + 2));
        }
        // Looked up entry by entry (a page's worth), not by scanning every match of a
        // common word.
        let matches = match backend {
            Backend::Sqlite => {
                "EXISTS (SELECT 1 FROM entry_search WHERE entry_search MATCH $1 \
                 AND entry_search.rowid = ticket_entries.id)"
            }
            Backend::Postgres => {
                "EXISTS (SELECT 1 FROM entry_search s WHERE s.entry_id = ticket_entries.id \
                 AND s.document @@ to_tsquery('simple', $1))"
            }
        };
        let sql = format!(
            "SELECT {} FROM ticket_entries WHERE ticket_id IN ({}) AND {matches} ORDER BY id",
            entry_columns!(),
            placeholders.join(", ")
        );
        let mut sql_query = sqlx::query(AssertSqlSafe(sql)).bind(backend_query(query, backend));
        for ticket in tickets {
            sql_query = sql_query.bind(ticket.id);
        }
        let rows = sql_query
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("read the snippets of a search"))?;
        let mut best: HashMap<i64, (u32, Snippet)> = HashMap::new();
        for row in &rows {
            let entry = entry_from_row(row)?;
            let Some((score, snippet)) = best_snippet(&EntryText::of(&entry), &query.terms) else {
                continue;
            };
            // Later entries win ties: the newest mail says where the ticket stands.
            match best.get(&entry.ticket_id) {
                Some((kept, _)) if *kept > score => {}
                _ => {
                    best.insert(entry.ticket_id, (score, snippet));
                }
            }
        }
        Ok(best
            .into_iter()
            .map(|(ticket_id, (_, snippet))| (ticket_id, snippet))
            .collect())
    }
}

// ---- snippets ----

/// How well an entry matches (each term counted once, at the weight of the best field
/// it is in) and the snippet of the first field with a hit.
fn best_snippet(entry: &EntryText<'_>, terms: &[Term]) -> Option<(u32, Snippet)> {
    let mut term_weights = vec![0u32; terms.len()];
    let mut snippet = None;
    for (field, text, weight) in entry.fields() {
        let text = head(&text, MAX_FIELD_BYTES);
        let words = words(text);
        let mut hits: Vec<Range<usize>> = Vec::new();
        for (t, term) in terms.iter().enumerate() {
            for at in 0..words.len() {
                if term.found_at(&words, at) {
                    term_weights[t] = term_weights[t].max(weight);
                    hits.push(at..at + term.words.len());
                }
            }
        }
        if snippet.is_none() && !hits.is_empty() {
            snippet = Some(cut_snippet(field, text, &words, hits));
        }
    }
    snippet.map(|s| (term_weights.iter().sum(), s))
}

/// A few words of `text` around the first hit (`hits` are ranges of word indexes), the
/// hits inside them marked, whitespace made single spaces.
fn cut_snippet(
    field: SnippetField,
    text: &str,
    words: &[(String, Range<usize>)],
    mut hits: Vec<Range<usize>>,
) -> Snippet {
    hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
    let first = hits[0].start;
    let from = first.saturating_sub(SNIPPET_WORDS_BEFORE);
    let to = (from + SNIPPET_WORDS).max(hits[0].end).min(words.len());
    let mut pieces = Vec::new();
    let mut push = |text: &str, hit: bool| {
        let text = single_spaced(text);
        if !text.is_empty() {
            pieces.push(SnippetPiece { text, hit });
        }
    };
    if from > 0 {
        push("… ", false);
    }
    let mut at = words[from].1.start;
    for hit in hits {
        if hit.start < from || hit.end > to || words[hit.start].1.start < at {
            continue; // outside the words shown, or inside the previous hit
        }
        let start = words[hit.start].1.start;
        let end = words[hit.end - 1].1.end;
        push(&text[at..start], false);
        push(&text[start..end], true);
        at = end;
    }
    if to < words.len() {
        push(&text[at..words[to - 1].1.end], false);
        push(" …", false);
    } else {
        push(&text[at..], false);
    }
    Snippet { field, pieces }
}

/// Runs of whitespace (line breaks included) as one space.
fn single_spaced(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    if space {
        out.push(' ');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_of(text: &str) -> Vec<String> {
        words(text).into_iter().map(|(w, _)| w).collect()
    }

    #[test]
    fn accents_and_case_are_folded() {
        assert_eq!(normalized("Müller, Straße"), "muller strasse");
        assert_eq!(normalized("Ŝtéfan SØREN"), "stefan soren");
        // A mark written apart from its letter stays in the word.
        assert_eq!(normalized("Mu\u{308}ller"), "muller");
        assert_eq!(normalized("Привет, Мир"), "привет мир");
    }

    #[test]
    fn punctuation_splits_words() {
        assert_eq!(
            words_of("Refund request (urgent)!"),
            ["refund", "request", "urgent"]
        );
        assert_eq!(
            words_of("john.doe@example.com"),
            ["john", "doe", "example", "com"]
        );
    }

    #[test]
    fn cjk_characters_are_words_of_their_own() {
        assert_eq!(
            words_of("日本語のテスト"),
            ["日", "本", "語", "の", "テ", "ス", "ト"]
        );
        assert_eq!(words_of("abc日本"), ["abc", "日", "本"]);
        // Full-width letters are letters.
        assert_eq!(normalized("ＡＢＣ"), "abc");
    }

    #[test]
    fn words_keep_where_they_came_from() {
        let text = "Hello, Müller!";
        let found = words(text);
        assert_eq!(&text[found[1].1.clone()], "Müller");
    }

    #[test]
    fn encoded_data_is_not_a_word() {
        let blob = "A".repeat(MAX_WORD_CHARS + 1);
        assert_eq!(normalized(&format!("before {blob} after")), "before after");
    }

    #[test]
    fn a_query_is_words_phrases_and_a_growing_last_word() {
        let query = SearchQuery::parse("refund \"order 12\" urg");
        assert_eq!(query.fts5(), "\"refund\" AND \"order 12\" AND \"urg\"*");
        assert_eq!(query.tsquery(), "'refund' & 'order' <-> '12' & 'urg':*");
        // A space after the last word: it is complete.
        assert_eq!(SearchQuery::parse("urg ").fts5(), "\"urg\"");
        assert_eq!(SearchQuery::parse("\"urg").fts5(), "\"urg\"");
    }

    #[test]
    fn query_syntax_characters_are_only_text() {
        let query = SearchQuery::parse("a:b OR (NEAR\" * ^x -y 'z'");
        assert_eq!(
            query.fts5(),
            "\"a b\" AND \"or\" AND \"near\" AND \"x y z\""
        );
        assert!(SearchQuery::parse("!!! ( ) \"\"").is_empty());
        assert_eq!(SearchQuery::parse("日本").fts5(), "\"日 本\"");
    }

    #[test]
    fn a_ticket_number_is_recognised_with_or_without_its_sign() {
        for text in ["1996", "#1996", " [#1996] "] {
            assert_eq!(ticket_number(text), Some(1996), "{text}");
        }
        for text in [
            "1996 printer",
            "#",
            "0",
            "-3",
            "12a",
            "99999999999999999999",
        ] {
            assert_eq!(ticket_number(text), None, "{text}");
        }
    }

    #[test]
    fn a_snippet_marks_hits_around_the_first_one() {
        let entry = EntryText {
            subject: Some("Printer"),
            from_name: None,
            from_address: Some("a@example.org"),
            reply_text: "One two three four five six seven eight nine ten. The Printer is \
                         on fire,\n\nthe printer again.",
            text_body: "",
            attachments: &[],
        };
        let terms = SearchQuery::parse("printer").terms;
        let (score, snippet) = best_snippet(&entry, &terms).expect("found");
        assert_eq!(score, 4, "the subject holds it too");
        assert_eq!(snippet.field, SnippetField::Message);
        assert_eq!(
            snippet.text(),
            "… six seven eight nine ten. The Printer is on fire, the printer again."
        );
        let hits: Vec<&str> = snippet
            .pieces
            .iter()
            .filter(|p| p.hit)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(hits, ["Printer", "printer"]);
    }

    #[test]
    fn a_phrase_is_marked_whole_and_accents_match_folded() {
        let entry = EntryText {
            subject: None,
            from_name: Some("Jürgen Müller"),
            from_address: None,
            reply_text: "",
            text_body: "",
            attachments: &[],
        };
        let terms = SearchQuery::parse("\"jurgen muller\"").terms;
        let (_, snippet) = best_snippet(&entry, &terms).expect("found");
        assert_eq!(snippet.field, SnippetField::Sender);
        assert_eq!(
            snippet.pieces,
            [SnippetPiece {
                text: "Jürgen Müller".into(),
                hit: true
            }]
        );
    }
}
