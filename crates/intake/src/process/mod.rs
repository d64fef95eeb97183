//! The processor: stored raw messages become ticket entries (DESIGN.md "processor").
//!
//! Separate from fetching on purpose: the fetcher only gets bytes off the server safely;
//! this stage can run, fail and run again on any stored message. It keeps promise 2 (one
//! message, one ticket entry: idempotent by raw message, and by Message-ID within a
//! mailbox) and promise 5 (a message that cannot be processed — even one that makes a
//! parser panic, or whose data the database refuses — is marked failed with its reason,
//! and the next one goes on).

mod subject;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mail::{Classification, ClassifyContext, Confidence, MessageKind, ParsedMessage};
use store::{
    BatchKnown, EntryAttachment, EntryKind, FinishedBlob, ForwardedMessage, NewTicketEntry,
    OpenedTicket, ProcessRecord, ProcessStatus, ProcessingTx, RawMessage, RawStatus, Store,
    StoreError, Ticket, TicketStatus,
};
use tokio::io::AsyncWriteExt as _;

pub use subject::{ticket_number, ticket_subject};

use crate::clock::Clock;

/// How the processor behaves.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// What stands before the number in a subject's ticket reference: `[#1234]`.
    pub ticket_prefix: String,
    /// Messages per transaction: one commit (one fsync) per batch.
    pub batch: u32,
    /// Addresses popdesk itself receives at; mail from them is never made a ticket (loop
    /// guard). The mailboxes' user names that are addresses are added automatically.
    pub own_addresses: Vec<String>,
    /// Larger messages are kept raw and not parsed: parsing holds a message in memory
    /// several times over, and one huge mail must not take the machine's memory.
    pub max_parse_size: u64,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            ticket_prefix: "#".to_string(),
            batch: 100,
            own_addresses: Vec::new(),
            max_parse_size: 64 * 1024 * 1024,
        }
    }
}

/// What one call of [`Processor::process_pending`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessReport {
    /// Messages now on a ticket.
    pub processed: u64,
    /// Messages deliberately not put on a ticket (with a reason).
    pub ignored: u64,
    /// Messages that could not be processed (with a reason); reprocess them later.
    pub failed: u64,
    /// Tickets opened.
    pub tickets_opened: u64,
}

impl ProcessReport {
    /// Adds another report's counts to this one.
    pub fn add(&mut self, other: &ProcessReport) {
        self.processed += other.processed;
        self.ignored += other.ignored;
        self.failed += other.failed;
        self.tickets_opened += other.tickets_opened;
    }
}

/// Turns pending raw messages into ticket entries.
#[derive(Clone)]
pub struct Processor {
    store: Store,
    clock: Arc<dyn Clock>,
    config: ProcessorConfig,
}

/// What one processing run knows about the mailboxes.
struct RunContext {
    classify: ClassifyContext,
    /// Mailboxes that acknowledge new tickets.
    acknowledging: HashSet<i64>,
    /// Mailboxes where a `[#N]` from an address new to ticket N opens a ticket of its own.
    new_ticket_for_new_address: HashSet<i64>,
}

/// How a message found its ticket.
struct FoundBy {
    /// For the log: `subject reference [#12]`, `In-Reply-To <id>`.
    text: String,
    /// By the subject's `[#N]` alone.
    by_subject: bool,
}

/// A batch read and parsed: the messages in arrival order, and the attachments each
/// stored (not yet persisted).
type PreparedBatch = (Vec<Prepared>, HashMap<i64, Vec<FinishedBlob>>);

/// One message read and parsed, ready for the threading decision.
struct Prepared {
    raw: RawMessage,
    outcome: Outcome,
    log: Vec<String>,
}

enum Outcome {
    Parsed(Box<Parsed>),
    /// Over the size limit: only its headers were stored, and it stays on the server.
    HeadersOnly,
    /// Over the processing limit: kept raw, not parsed.
    TooLargeToParse,
    /// Cannot be processed; the reason in words.
    Failed(String),
}

struct Parsed {
    message: ParsedMessage,
    classification: Classification,
    attachments: Vec<EntryAttachment>,
}

/// How a batch guards each message's writes (see [`Processor::decide_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Care {
    /// No savepoints: one refused message rolls the batch back.
    Fast,
    /// A savepoint per message: a refused message is taken back on its own.
    PerMessage,
}

/// What was decided for one message, as the batch needs it.
struct Decided {
    status: ProcessStatus,
    /// The ticket of the entry it added, if it added one.
    new_entry: Option<i64>,
}

/// The Message-ID a batch looks up for a parsed message: none for a synthetic one (made
/// from the bytes), which only the raw message's own entry can have.
fn real_message_id(prepared: &Prepared) -> Option<&str> {
    match &prepared.outcome {
        Outcome::Parsed(parsed) if !parsed.message.message_id_synthetic => {
            Some(parsed.message.message_id.as_str())
        }
        _ => None,
    }
}

/// The decision for one message, to be written in the batch's transaction.
struct Decision {
    status: ProcessStatus,
    reason: String,
    ticket_id: Option<i64>,
    /// Whether this decision added a ticket entry (whose attachments must then be kept).
    new_entry: bool,
}

impl Processor {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: ProcessorConfig) -> Processor {
        Processor {
            store,
            clock,
            config,
        }
    }

    /// Processes every pending message, oldest first, in batches. `Err` only when the
    /// store fails (unreachable, disk full, a lock conflict that outlasted its retries);
    /// a message's own failure, its data refused by the database included, is recorded
    /// and the next one goes on.
    pub async fn process_pending(&self) -> Result<ProcessReport, StoreError> {
        let run = self.run_context().await?;
        let context = run.classify.clone();
        let mut report = ProcessReport::default();
        // Batches follow each other by id: the next one is read and parsed (on the
        // blocking pool) while this one is decided and committed (the database's
        // thread and the disk), so both cores work. Messages set back to pending
        // meanwhile below the cursor wait for the next call.
        let mut next = self.prepare_batch(0, context.clone());
        loop {
            let (mut prepared, mut blobs) = next.await?;
            let Some(last) = prepared.last().map(|p| p.raw.id) else {
                return Ok(report);
            };
            next = self.prepare_batch(last, context.clone());
            let mut attempts = 0;
            let mut care = Care::Fast;
            let decided = loop {
                let mut batch_report = ProcessReport::default();
                match self
                    .decide_batch(&run, &prepared, &mut blobs, &mut batch_report, care)
                    .await
                {
                    Ok(Some(decided)) => {
                        report.add(&batch_report);
                        break decided;
                    }
                    // The database refused one message's data: the batch was rolled
                    // back; run it again, each message's writes on their own.
                    Ok(None) => care = Care::PerMessage,
                    // Another processor's transaction got in the way (PostgreSQL
                    // deadlock, SQLite busy): nothing was committed, so run it again.
                    Err(error) if error.is_retryable() && attempts < 3 => attempts += 1,
                    Err(error) => return Err(error),
                }
            };
            prepared.clear();
            if decided == 0 {
                // Every message of the batch is another processor's right now.
                return Ok(report);
            }
        }
    }

    /// Starts reading and parsing the next batch (pending messages with ids above
    /// `after`) on the runtime, and returns its handle.
    fn prepare_batch(
        &self,
        after: i64,
        context: ClassifyContext,
    ) -> impl std::future::Future<Output = Result<PreparedBatch, StoreError>> + use<> {
        let processor = self.clone();
        let task = tokio::spawn(async move { processor.prepare_batch_now(after, context).await });
        async move {
            task.await.unwrap_or_else(|_| {
                Err(StoreError::from(std::io::Error::other(
                    "reading the next batch of messages failed (a bug in popdesk: please report it)",
                )))
            })
        }
    }

    async fn prepare_batch_now(
        &self,
        after: i64,
        context: ClassifyContext,
    ) -> Result<PreparedBatch, StoreError> {
        let pending = self
            .store
            .pending_raw_messages_after(after, self.config.batch)
            .await?;
        if let Some(files) = self.store.blobs().blocking() {
            return Ok(self.prepare_from_files(pending, context, files).await);
        }
        // A few at a time (both cores busy, memory bounded), without waiting for the
        // slowest of a group before starting the next; decisions are then taken in
        // arrival order.
        let width = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        let permits = Arc::new(tokio::sync::Semaphore::new(width));
        let tasks: Vec<_> = pending
            .iter()
            .map(|raw| {
                let processor = self.clone();
                let context = context.clone();
                let raw = raw.clone();
                let permits = permits.clone();
                tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    processor.prepare(raw, &context).await
                })
            })
            .collect();
        let mut prepared = Vec::with_capacity(pending.len());
        let mut blobs: HashMap<i64, Vec<FinishedBlob>> = HashMap::new();
        for (raw, task) in pending.iter().zip(tasks) {
            match task.await {
                Ok((message, message_blobs)) => {
                    blobs.insert(message.raw.id, message_blobs);
                    prepared.push(message);
                }
                Err(_) => prepared.push(Prepared {
                    raw: raw.clone(),
                    outcome: Outcome::Failed(
                        "processing crashed on this message (a bug in popdesk: please report it)"
                            .to_string(),
                    ),
                    log: Vec::new(),
                }),
            }
        }
        Ok((prepared, blobs))
    }

    /// Reads, parses and stores the attachments of a batch whose blobs are files: one
    /// blocking task per core, each taking a run of the batch's messages in turn. Each
    /// tokio file operation or blocking task is a hand-off between threads, and those
    /// hand-offs were the largest cost of processing; this way a message costs none.
    async fn prepare_from_files(
        &self,
        pending: Vec<RawMessage>,
        context: ClassifyContext,
        files: store::BlockingBlobs,
    ) -> PreparedBatch {
        let width = std::thread::available_parallelism().map_or(2, |n| n.get());
        let run_length = pending.len().div_ceil(width).max(1);
        let max_parse_size = self.config.max_parse_size;
        let tasks: Vec<_> = pending
            .chunks(run_length)
            .map(|run| {
                let run = run.to_vec();
                let context = context.clone();
                let files = files.clone();
                tokio::task::spawn_blocking(move || {
                    run.into_iter()
                        .map(|raw| prepare_from_file(raw, &context, &files, max_parse_size))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut prepared = Vec::with_capacity(pending.len());
        let mut blobs: HashMap<i64, Vec<FinishedBlob>> = HashMap::new();
        for (run, task) in pending.chunks(run_length).zip(tasks) {
            let Ok(results) = task.await else {
                // Each message is guarded on its own; this is a bug outside them.
                for raw in run {
                    prepared.push(failed(raw.clone(), Vec::new(), crashed_text(true)));
                }
                continue;
            };
            for result in results {
                let (message, message_blobs) = match result {
                    FromFile::Prepared(message, message_blobs) => (message, message_blobs),
                    // Not among the files (being moved by `blobs migrate`): the store
                    // finds it in its other place.
                    FromFile::Elsewhere(raw) => self.prepare(raw, &context).await,
                };
                blobs.insert(message.raw.id, message_blobs);
                prepared.push(message);
            }
        }
        (prepared, blobs)
    }

    /// Decides one batch in one transaction; returns how many messages it decided.
    ///
    /// With [`Care::PerMessage`], each message's writes can be taken back on their own:
    /// when the database refuses what one message holds ([`StoreError::is_refused_data`]),
    /// that message is marked failed with the database's words and the batch goes on with
    /// the next (promise 5). That costs two statements per message, so a batch first runs
    /// [`Care::Fast`], without them; a refusal there rolls the whole batch back and
    /// returns `None`, to be run again with care. Any other error ends the batch,
    /// uncommitted: a lock conflict is retried by the caller, anything else is the
    /// store's failure, not a message's.
    async fn decide_batch(
        &self,
        run: &RunContext,
        prepared: &[Prepared],
        blobs: &mut HashMap<i64, Vec<FinishedBlob>>,
        report: &mut ProcessReport,
        care: Care,
    ) -> Result<Option<usize>, StoreError> {
        let mut tx = self.store.begin_processing().await?;
        let ids: Vec<i64> = prepared.iter().map(|p| p.raw.id).collect();
        // Only what is still pending and not in another processor's open batch.
        let claimed = tx.claim_raw_messages(&ids).await?;
        let mine: Vec<&Prepared> = prepared
            .iter()
            .filter(|p| claimed.binary_search(&p.raw.id).is_ok())
            .collect();
        let lookups: Vec<(i64, i64, Option<&str>)> = mine
            .iter()
            .map(|p| (p.raw.id, p.raw.mailbox_id, real_message_id(p)))
            .collect();
        let mut known = tx.known_for_batch(&lookups).await?;
        // Messages whose new entries point at their attachments. Their blobs leave the map
        // only once the batch is about to commit: a batch that fails before that and is
        // run again still has them to persist.
        let mut new_entries = Vec::new();
        // Fast: the decisions are recorded together at the end (one statement, not one
        // per message); with care, each inside its message's savepoint.
        let mut records: Vec<(i64, ProcessRecord)> = Vec::new();
        let now = self.clock.now_ms();
        for message in mine {
            if care == Care::PerMessage {
                tx.begin_message().await?;
            }
            let mut message_report = ProcessReport::default();
            let decided = match self
                .decide(run, &mut tx, &known, message, &mut message_report)
                .await
            {
                Ok(decision) => {
                    let decided = Decided {
                        status: decision.status,
                        new_entry: decision.ticket_id.filter(|_| decision.new_entry),
                    };
                    let record = ProcessRecord {
                        status: decision.status,
                        reason: decision.reason,
                        ticket_id: decision.ticket_id,
                        log: message.log.clone(),
                        processed_at: None,
                    };
                    match care {
                        Care::Fast => {
                            records.push((message.raw.id, record));
                            Ok(decided)
                        }
                        Care::PerMessage => tx
                            .record_processing(message.raw.id, &record, now)
                            .await
                            .map(|()| decided),
                    }
                }
                Err(error) => Err(error),
            };
            let status = match decided {
                Ok(decided) => {
                    if care == Care::PerMessage {
                        tx.keep_message().await?;
                    }
                    report.add(&message_report);
                    if let Some(ticket_id) = decided.new_entry {
                        new_entries.push(message.raw.id);
                        if let Outcome::Parsed(parsed) = &message.outcome {
                            known.entry_added(
                                message.raw.id,
                                message.raw.mailbox_id,
                                &parsed.message.message_id,
                                ticket_id,
                            );
                        }
                    }
                    decided.status
                }
                Err(error) if error.is_refused_data() => {
                    if care == Care::Fast {
                        return Ok(None);
                    }
                    tx.undo_message().await?;
                    self.record_refused(&mut tx, message, &error).await?;
                    ProcessStatus::Failed
                }
                Err(error) => return Err(error),
            };
            match status {
                ProcessStatus::Processed => report.processed += 1,
                ProcessStatus::Ignored => report.ignored += 1,
                ProcessStatus::Failed => report.failed += 1,
                ProcessStatus::Pending => {}
            }
        }
        let records: Vec<(i64, &ProcessRecord)> =
            records.iter().map(|(id, record)| (*id, record)).collect();
        let deferred = async {
            tx.record_processing_of(&records, now).await?;
            tx.write_deferred().await
        };
        match deferred.await {
            Err(error) if error.is_refused_data() && care == Care::Fast => return Ok(None),
            other => other?,
        }
        // The attachments of new entries are on disk before the entries commit, so no
        // entry ever points at a missing file. Those of messages that got no entry are
        // dropped with their temp files: nothing points at them.
        let keep = new_entries
            .iter()
            .flat_map(|id| blobs.remove(id).unwrap_or_default())
            .collect();
        self.store.blobs().persist(keep).await?;
        tx.commit().await?;
        Ok(Some(claimed.len()))
    }

    /// Marks a message failed because the database refused what it holds; its writes
    /// were taken back. Should the log itself be what is refused, the message is failed
    /// without it.
    async fn record_refused(
        &self,
        tx: &mut ProcessingTx,
        message: &Prepared,
        error: &StoreError,
    ) -> Result<(), StoreError> {
        let reason = format!("not made a ticket: {error}");
        let mut log = message.log.clone();
        log.push(format!("failed: {error}"));
        let record = ProcessRecord {
            status: ProcessStatus::Failed,
            reason,
            ticket_id: None,
            log,
            processed_at: None,
        };
        let now = self.clock.now_ms();
        tx.begin_message().await?;
        match tx.record_processing(message.raw.id, &record, now).await {
            Ok(()) => tx.keep_message().await,
            Err(again) if again.is_refused_data() => {
                tx.undo_message().await?;
                let bare = ProcessRecord {
                    reason: "not made a ticket: the database refused what this message holds, and its processing log".to_string(),
                    log: Vec::new(),
                    ..record
                };
                tx.record_processing(message.raw.id, &bare, now).await
            }
            Err(again) => Err(again),
        }
    }

    async fn run_context(&self) -> Result<RunContext, StoreError> {
        let mut own_addresses = self.config.own_addresses.clone();
        let mut acknowledging = HashSet::new();
        let mut new_ticket_for_new_address = HashSet::new();
        for mailbox in self.store.mailboxes().await? {
            if mailbox.settings.new_address_reference == store::NewAddressReference::NewTicket {
                new_ticket_for_new_address.insert(mailbox.id);
            }
            if mailbox.settings.username.contains('@') {
                own_addresses.push(mailbox.settings.username.to_lowercase());
            }
            if let Some(sending) = &mailbox.settings.sending {
                own_addresses.push(sending.address.to_lowercase());
                if sending.acknowledge {
                    acknowledging.insert(mailbox.id);
                }
            }
        }
        Ok(RunContext {
            classify: ClassifyContext { own_addresses },
            acknowledging,
            new_ticket_for_new_address,
        })
    }

    /// Asks for an acknowledgement of a ticket just opened, when the mail that opened it
    /// was written by a person (promise 10: never to automatic mail, bounces or lists;
    /// the sender checks the address and the rate). Returns what to add to the reason.
    async fn want_acknowledgement(
        &self,
        tx: &mut ProcessingTx,
        ticket: &OpenedTicket,
        mailbox_id: i64,
        requester: &str,
        parsed: &Parsed,
        now: i64,
    ) -> Result<String, StoreError> {
        let classification = &parsed.classification;
        if classification.kind != MessageKind::Normal || !classification.signals.is_empty() {
            return Ok("; no acknowledgement: not a person's mail".to_string());
        }
        if requester.ends_with("@popdesk.invalid") {
            return Ok("; no acknowledgement: no sender address".to_string());
        }
        tx.want_acknowledgement(ticket.id, mailbox_id, requester, now)
            .await?;
        Ok("; acknowledgement wanted".to_string())
    }

    /// Reads and parses one message and stores its attachments' bytes (not yet
    /// persisted). Never fails: trouble becomes the message's failure reason.
    async fn prepare(
        &self,
        raw: RawMessage,
        context: &ClassifyContext,
    ) -> (Prepared, Vec<FinishedBlob>) {
        let mut blobs = Vec::new();
        let prepared = self.prepare_into(raw, context, &mut blobs).await;
        (prepared, blobs)
    }

    async fn prepare_into(
        &self,
        raw: RawMessage,
        context: &ClassifyContext,
        blobs: &mut Vec<FinishedBlob>,
    ) -> Prepared {
        if let Some(outcome) = not_parsed(&raw, self.config.max_parse_size) {
            return Prepared {
                raw,
                outcome,
                log: Vec::new(),
            };
        }
        let bytes = match self.store.blobs().read(&raw.sha256).await {
            Ok(bytes) => bytes,
            Err(error) => return failed(raw, Vec::new(), unreadable(&error)),
        };
        let context = context.clone();
        // On a blocking thread: parsing is CPU work, and a panic inside a parser ends
        // that thread's task, not the processor.
        let raw_id = raw.id;
        let read =
            tokio::task::spawn_blocking(move || read_message(&bytes, raw_id, &context)).await;
        let mut read = match read {
            Ok(Ok(read)) => read,
            Ok(Err(failure)) => return failed(raw, Vec::new(), failure.to_string()),
            Err(join) => return failed(raw, Vec::new(), crashed_text(join.is_panic())),
        };
        for attachment in &mut read.message.attachments {
            let data = std::mem::take(&mut attachment.data);
            match self.store_blob(&data).await {
                Ok(blob) => blobs.push(blob),
                Err(error) => {
                    let failure = ReadFailure::Attachment(error);
                    return failed(raw, Vec::new(), failure.to_string());
                }
            }
        }
        parsed(raw, read)
    }

    async fn store_blob(&self, data: &[u8]) -> Result<FinishedBlob, StoreError> {
        let mut writer = self.store.blobs().writer().await?;
        writer.write_all(data).await.map_err(StoreError::from)?;
        writer.finish().await
    }

    /// Where the message goes: threading and ticket rules, inside the batch's transaction.
    async fn decide(
        &self,
        run: &RunContext,
        tx: &mut ProcessingTx,
        known: &BatchKnown,
        prepared: &Prepared,
        report: &mut ProcessReport,
    ) -> Result<Decision, StoreError> {
        let raw = &prepared.raw;
        // Idempotent: a message already on a ticket stays exactly where it is.
        if let Some(ticket_id) = known.ticket_of_raw_message(raw.id) {
            return Ok(Decision {
                status: ProcessStatus::Processed,
                reason: "already on its ticket; nothing changed".to_string(),
                ticket_id: Some(ticket_id),
                new_entry: false,
            });
        }
        let parsed = match &prepared.outcome {
            Outcome::Parsed(parsed) => parsed,
            Outcome::HeadersOnly => {
                return Ok(ignored(
                    "over the size limit: only its headers were stored and it stays on the server",
                ));
            }
            Outcome::TooLargeToParse => {
                return Ok(ignored(&format!(
                    "larger than the processing limit ({} MB): kept as raw mail (`popdesk message raw {}`), not made a ticket",
                    self.config.max_parse_size / 1_000_000,
                    raw.id
                )));
            }
            Outcome::Failed(reason) => {
                return Ok(Decision {
                    status: ProcessStatus::Failed,
                    reason: reason.clone(),
                    ticket_id: None,
                    new_entry: false,
                });
            }
        };
        let message = &parsed.message;
        let mailbox_id = raw.mailbox_id;
        if !message.message_id_synthetic
            && let Some(ticket_id) = known.ticket_with_message_id(mailbox_id, &message.message_id)
        {
            return Ok(Decision {
                status: ProcessStatus::Ignored,
                reason: format!(
                    "the same message (Message-ID <{}>) is already on this mailbox's ticket",
                    message.message_id
                ),
                ticket_id: Some(ticket_id),
                new_entry: false,
            });
        }

        // Our own reply coming back (Gmail serves sent mail over POP3, a Bcc to
        // ourselves, a list that echoes): already in the thread as the reply it is.
        if !message.message_id_synthetic
            && let Some((outbox_id, ticket_id)) = known.sent_by_us(&message.message_id)
        {
            return Ok(Decision {
                status: ProcessStatus::Ignored,
                reason: format!(
                    "popdesk sent this message itself (outgoing message #{outbox_id}, Message-ID <{}>); it is already on its ticket as a reply",
                    message.message_id
                ),
                ticket_id: Some(ticket_id),
                new_entry: false,
            });
        }

        let kind = match &parsed.classification.kind {
            MessageKind::FromOurselves => {
                return Ok(ignored(&parsed.classification.reason));
            }
            MessageKind::Bounce {
                original_message_id,
                ..
            } => {
                let mut ids: Vec<String> = original_message_id.iter().cloned().collect();
                ids.extend(references_newest_first(message));
                return self
                    .attach_automatic(tx, prepared, parsed, &ids, EntryKind::Bounce)
                    .await;
            }
            MessageKind::AutoReply { confidence } if *confidence >= Confidence::Medium => {
                let ids = references_newest_first(message);
                return self
                    .attach_automatic(tx, prepared, parsed, &ids, EntryKind::AutoReply)
                    .await;
            }
            _ => EntryKind::Message,
        };

        let now = self.clock.now_ms();
        let (mut ticket, how) = self.find_ticket(tx, mailbox_id, message).await?;
        // A subject reference alone, from someone the ticket never heard from: anyone can
        // write a number. It joins marked (and reopens nothing), or opens its own ticket.
        let mut new_address_note = None;
        if let Some(found) = &ticket
            && how.by_subject
            && self.sender_is_new_to(tx, found, message).await?
        {
            if run.new_ticket_for_new_address.contains(&mailbox_id) {
                new_address_note = Some(format!(
                    "; its subject names ticket #{} but its sender is new to that ticket, and this mailbox opens a ticket of its own for such mail",
                    found.number
                ));
                ticket = None;
            } else {
                new_address_note = Some(String::new());
            }
        }
        let from_new_address = new_address_note.as_deref() == Some("");
        let how = how.text;
        let ticket = match ticket {
            Some(ticket) if ticket.status == TicketStatus::Closed => {
                // A closed ticket stays closed: the follow-up is a new request.
                let (opened, _) = self
                    .open_ticket(tx, mailbox_id, message, entry(raw, parsed, kind), now)
                    .await?;
                report.tickets_opened += 1;
                let notified = if known.someone_hears_of_new_tickets() {
                    tx.want_new_ticket_notifications(opened.id, opened.entry_id, now)
                        .await?
                } else {
                    0
                };
                return Ok(Decision {
                    status: ProcessStatus::Processed,
                    reason: format!(
                        "ticket #{} is closed; opened ticket #{} for this follow-up{}",
                        ticket.number,
                        opened.number,
                        notified_note(notified)
                    ),
                    ticket_id: Some(opened.id),
                    new_entry: true,
                });
            }
            Some(ticket) => ticket,
            None => {
                let (opened, requester) = self
                    .open_ticket(tx, mailbox_id, message, entry(raw, parsed, kind), now)
                    .await?;
                report.tickets_opened += 1;
                let notified = if known.someone_hears_of_new_tickets() {
                    tx.want_new_ticket_notifications(opened.id, opened.entry_id, now)
                        .await?
                } else {
                    0
                };
                let mut reason = format!("opened ticket #{}", opened.number);
                reason.push_str(new_address_note.as_deref().unwrap_or_default());
                reason.push_str(&notified_note(notified));
                if run.acknowledging.contains(&mailbox_id) {
                    reason.push_str(
                        &self
                            .want_acknowledgement(tx, &opened, mailbox_id, &requester, parsed, now)
                            .await?,
                    );
                }
                return Ok(Decision {
                    status: ProcessStatus::Processed,
                    reason,
                    ticket_id: Some(opened.id),
                    new_entry: true,
                });
            }
        };
        let entry_id = tx
            .add_entry(ticket.id, mailbox_id, &entry(raw, parsed, kind), now)
            .await?;
        // The assignee hears of any mail a person wrote on their ticket, a stranger's
        // marked one too: it is on their ticket either way.
        let notified = notified_note(if known.someone_hears_of_customer_replies() {
            tx.want_customer_reply_notification(ticket.id, entry_id, now)
                .await?
        } else {
            0
        });
        if from_new_address {
            tx.mark_from_new_address(entry_id).await?;
            return Ok(Decision {
                status: ProcessStatus::Processed,
                reason: format!(
                    "added to ticket #{} ({how}) marked as from a new address: its sender never took part in the ticket and it replies to none of its messages; the ticket's status is left as it was ({}){notified}",
                    ticket.number, ticket.status
                ),
                ticket_id: Some(ticket.id),
                new_entry: true,
            });
        }
        // The person record keeps the latest name they wrote under; the ticket keeps
        // the name of the mail that opened it.
        if let Some(from) = &message.from
            && from.name.is_some()
        {
            tx.person(&from.normalized(), from.name.as_deref()).await?;
        }
        let mut reason = format!("added to ticket #{} ({how}){notified}", ticket.number);
        if matches!(
            ticket.status,
            TicketStatus::Resolved | TicketStatus::Pending
        ) {
            tx.set_ticket_status(ticket.id, TicketStatus::Open, now)
                .await?;
            reason.push_str(&format!(
                "; the customer's reply reopened it (was {})",
                ticket.status
            ));
        }
        Ok(Decision {
            status: ProcessStatus::Processed,
            reason,
            ticket_id: Some(ticket.id),
            new_entry: true,
        })
    }

    /// The ticket a normal message belongs to: the subject's reference wins, then
    /// In-Reply-To and References. Never the subject text alone.
    async fn find_ticket(
        &self,
        tx: &mut ProcessingTx,
        mailbox_id: i64,
        message: &ParsedMessage,
    ) -> Result<(Option<Ticket>, FoundBy), StoreError> {
        if let Some((ticket, reference)) = self.ticket_in_subject(tx, mailbox_id, message).await? {
            return Ok((
                Some(ticket),
                FoundBy {
                    text: format!("subject reference {reference}"),
                    by_subject: true,
                },
            ));
        }
        let ids = references_newest_first(message);
        if let Some((ticket, matched)) = tx.ticket_for_message_ids(mailbox_id, &ids).await? {
            let header = if message.in_reply_to.contains(&matched) {
                "In-Reply-To"
            } else {
                "References"
            };
            return Ok((
                Some(ticket),
                FoundBy {
                    text: format!("{header} <{matched}>"),
                    by_subject: false,
                },
            ));
        }
        Ok((
            None,
            FoundBy {
                text: String::new(),
                by_subject: false,
            },
        ))
    }

    /// Whether a message that names `ticket` in its subject comes from an address new to
    /// it: not a participant, and replying to none of its messages (or our replies).
    async fn sender_is_new_to(
        &self,
        tx: &mut ProcessingTx,
        ticket: &Ticket,
        message: &ParsedMessage,
    ) -> Result<bool, StoreError> {
        let ids = references_newest_first(message);
        if let Some((replied, _)) = tx.ticket_for_message_ids(ticket.mailbox_id, &ids).await?
            && replied.id == ticket.id
        {
            return Ok(false);
        }
        // From only: Reply-To is whatever the writer chose, so naming the customer there
        // must not make a stranger a participant.
        match &message.from {
            Some(from) => Ok(!tx.is_participant(ticket.id, &from.normalized()).await?),
            None => Ok(true),
        }
    }

    /// The mailbox's ticket named by the subject's `[#N]` reference, with the reference
    /// as written for the log.
    async fn ticket_in_subject(
        &self,
        tx: &mut ProcessingTx,
        mailbox_id: i64,
        message: &ParsedMessage,
    ) -> Result<Option<(Ticket, String)>, StoreError> {
        let prefix = &self.config.ticket_prefix;
        let Some(number) = message
            .subject
            .as_deref()
            .and_then(|subject| ticket_number(subject, prefix))
        else {
            return Ok(None);
        };
        Ok(tx
            .ticket_by_number(mailbox_id, number)
            .await?
            .map(|ticket| (ticket, format!("[{prefix}{number}]"))))
    }

    /// Opens a ticket with `first` as its first entry; returns it and the requester's
    /// address as the ticket keeps it.
    async fn open_ticket(
        &self,
        tx: &mut ProcessingTx,
        mailbox_id: i64,
        message: &ParsedMessage,
        first: NewTicketEntry,
        now: i64,
    ) -> Result<(OpenedTicket, String), StoreError> {
        let sender = message.from.as_ref().or(message.reply_to.first());
        let sender = match sender {
            Some(address) if !address.address.trim().is_empty() => {
                (address.normalized(), address.name.as_deref())
            }
            _ => (
                "unknown@popdesk.invalid".to_string(),
                Some("Unknown sender"),
            ),
        };
        let opened = tx
            .open_ticket_in_batch(
                mailbox_id,
                &ticket_subject(message.subject.as_deref()),
                (&sender.0, sender.1),
                first,
                now,
            )
            .await?;
        Ok((opened, sender.0))
    }

    /// Bounces and auto-replies join the ticket they are about, never open one, and
    /// never change its status.
    async fn attach_automatic(
        &self,
        tx: &mut ProcessingTx,
        prepared: &Prepared,
        parsed: &Parsed,
        ids: &[String],
        kind: EntryKind,
    ) -> Result<Decision, StoreError> {
        let raw = &prepared.raw;
        let what = match kind {
            EntryKind::Bounce => "bounce",
            _ => "auto-reply",
        };
        let mut found = tx.ticket_for_message_ids(raw.mailbox_id, ids).await?;
        if found.is_none()
            && let Some(found_in_subject) = self
                .ticket_in_subject(tx, raw.mailbox_id, &parsed.message)
                .await?
        {
            found = Some(found_in_subject);
        }
        match found {
            Some((ticket, matched)) => {
                tx.add_entry(
                    ticket.id,
                    raw.mailbox_id,
                    &entry(raw, parsed, kind),
                    self.clock.now_ms(),
                )
                .await?;
                Ok(Decision {
                    status: ProcessStatus::Processed,
                    reason: format!(
                        "{what} added to ticket #{} (about {matched}); {}",
                        ticket.number, parsed.classification.reason
                    ),
                    ticket_id: Some(ticket.id),
                    new_entry: true,
                })
            }
            None => Ok(ignored(&format!(
                "{what} not about any known ticket, so no ticket was opened: {}",
                parsed.classification.reason
            ))),
        }
    }
}

/// What the processing reason says about agents' notifications asked for.
fn notified_note(agents: u64) -> String {
    match agents {
        0 => String::new(),
        1 => "; a notification for 1 agent".to_string(),
        n => format!("; notifications for {n} agents"),
    }
}

fn ignored(reason: &str) -> Decision {
    Decision {
        status: ProcessStatus::Ignored,
        reason: reason.to_string(),
        ticket_id: None,
        new_entry: false,
    }
}

/// In-Reply-To first, then References from the newest back: the closest ancestor that
/// popdesk knows decides.
fn references_newest_first(message: &ParsedMessage) -> Vec<String> {
    let mut ids: Vec<String> = message.in_reply_to.clone();
    for id in message.references.iter().rev() {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

fn entry(raw: &RawMessage, parsed: &Parsed, kind: EntryKind) -> NewTicketEntry {
    let message = &parsed.message;
    NewTicketEntry {
        raw_message_id: raw.id,
        message_id: message.message_id.clone(),
        kind,
        from_address: message.from.as_ref().map(|a| a.normalized()),
        from_name: message.from.as_ref().and_then(|a| a.name.clone()),
        subject: message.subject.clone(),
        sent_at: message.date,
        reply_text: message.reply_text.clone(),
        text_body: message.text_body.clone(),
        html_body: message.html_body.clone(),
        attachments: parsed.attachments.clone(),
    }
}

/// A message parsed and classified on a blocking thread.
struct ReadMessage {
    message: ParsedMessage,
    classification: Classification,
}

enum ReadFailure {
    Parse(mail::ParseError),
    Attachment(StoreError),
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFailure::Parse(error) => write!(f, "the message cannot be parsed: {error}"),
            ReadFailure::Attachment(error) => {
                write!(f, "an attachment cannot be stored: {error}")
            }
        }
    }
}

/// What [`prepare_from_file`] made of one message.
enum FromFile {
    Prepared(Prepared, Vec<FinishedBlob>),
    /// Its blob is not among the files: prepare it the async way.
    Elsewhere(RawMessage),
}

/// Prepares one message whose blob is a file, on the caller's blocking thread: read,
/// parse, classify, and write its attachments as blobs (not yet persisted). Never fails:
/// trouble, a parser's panic included, becomes the message's failure reason.
fn prepare_from_file(
    raw: RawMessage,
    context: &ClassifyContext,
    files: &store::BlockingBlobs,
    max_parse_size: u64,
) -> FromFile {
    if let Some(outcome) = not_parsed(&raw, max_parse_size) {
        let prepared = Prepared {
            raw,
            outcome,
            log: Vec::new(),
        };
        return FromFile::Prepared(prepared, Vec::new());
    }
    let bytes = match files.read(&raw.sha256) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return FromFile::Elsewhere(raw),
        Err(error) => {
            return FromFile::Prepared(failed(raw, Vec::new(), unreadable(&error)), Vec::new());
        }
    };
    // A panic inside a parser fails this message only; the run of messages this thread
    // works on goes on with the next one. Nothing shared is left half-changed: the
    // closure owns what it writes, and a half-written blob is removed when dropped.
    let work = std::panic::AssertUnwindSafe(|| {
        let mut read = read_message(&bytes, raw.id, context)?;
        let mut written = Vec::with_capacity(read.message.attachments.len());
        for attachment in &mut read.message.attachments {
            let data = std::mem::take(&mut attachment.data);
            let blob = files.write_digested(&data, attachment.sha256.clone());
            written.push(blob.map_err(ReadFailure::Attachment)?);
        }
        Ok::<_, ReadFailure>((read, written))
    });
    match std::panic::catch_unwind(work) {
        Ok(Ok((read, written))) => FromFile::Prepared(parsed(raw, read), written),
        Ok(Err(failure)) => {
            FromFile::Prepared(failed(raw, Vec::new(), failure.to_string()), Vec::new())
        }
        Err(_) => FromFile::Prepared(failed(raw, Vec::new(), crashed_text(true)), Vec::new()),
    }
}

/// Parses, sanitizes and classifies one message. Runs on a blocking thread.
fn read_message(
    bytes: &[u8],
    raw_id: i64,
    context: &ClassifyContext,
) -> Result<ReadMessage, ReadFailure> {
    // Inline images point at this message's stored attachments, by Content-ID (the web
    // layer serves that path).
    let options = mail::SanitizeOptions {
        cid_url_template: Some(format!("/messages/{raw_id}/cid/{{content_id}}")),
        ..mail::SanitizeOptions::default()
    };
    let message = mail::parse_with(bytes, &options).map_err(ReadFailure::Parse)?;
    let classification = mail::classify(&message, bytes, context);
    Ok(ReadMessage {
        message,
        classification,
    })
}

/// Why a message is not parsed at all, if it is not: only its headers were stored, or
/// it is over the processing limit.
fn not_parsed(raw: &RawMessage, max_parse_size: u64) -> Option<Outcome> {
    if raw.status == RawStatus::TooLarge && raw.size < raw.server_size.unwrap_or(0) {
        return Some(Outcome::HeadersOnly);
    }
    (raw.size > max_parse_size).then_some(Outcome::TooLargeToParse)
}

/// A parsed message (its attachments' data already stored) ready for its decision.
fn parsed(raw: RawMessage, read: ReadMessage) -> Prepared {
    let ReadMessage {
        mut message,
        classification,
    } = read;
    let mut log = std::mem::take(&mut message.notes);
    log.push(format!("classified: {}", classification.reason));
    let attachments = message
        .attachments
        .iter()
        .map(|attachment| EntryAttachment {
            name: attachment.name.clone(),
            content_type: attachment.content_type.clone(),
            size: attachment.size as u64,
            sha256: attachment.sha256.clone(),
            content_id: attachment.content_id.clone(),
            inline: attachment.inline,
            forwarded: attachment.forwarded.as_ref().map(|f| ForwardedMessage {
                from: f.from.as_ref().map(|a| a.normalized()),
                subject: f.subject.clone(),
                date: f.date,
                message_id: f.message_id.clone(),
            }),
        })
        .collect();
    Prepared {
        raw,
        outcome: Outcome::Parsed(Box::new(Parsed {
            message,
            classification,
            attachments,
        })),
        log,
    }
}

/// A message that cannot be processed, with the reason in words.
fn failed(raw: RawMessage, log: Vec<String>, reason: String) -> Prepared {
    Prepared {
        raw,
        outcome: Outcome::Failed(reason),
        log,
    }
}

fn unreadable(error: &StoreError) -> String {
    format!("the stored message cannot be read: {error}")
}

/// Why parsing ended without its result.
fn crashed_text(panicked: bool) -> String {
    if panicked {
        "the parser crashed on this message (a bug in popdesk: please report it)".to_string()
    } else {
        "parsing was cancelled".to_string()
    }
}
