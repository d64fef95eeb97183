//! Where retrieved messages go during a batch: straight into the blob store, hashed on
//! the way, with the first octets kept to find the Message-ID.

use std::collections::{HashMap, HashSet};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use pop3::{MessageSink, Retrieved, ServerError};
use store::{BlobStore, BlobWriter, FinishedBlob};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::headers::{HEADER_CAPTURE, message_id};

/// A message fully written and fsync'd to a temp file, not yet committed.
pub struct Downloaded {
    pub number: u32,
    pub blob: FinishedBlob,
    pub message_id: Option<String>,
}

/// Collects one batch's messages.
pub struct BatchSink<'a> {
    blobs: &'a BlobStore,
    /// Messages that arrived whole and were not handed over.
    pub downloaded: Vec<Downloaded>,
    /// Numbers of every message that arrived whole, handed over or not.
    arrived: Vec<u32>,
    /// Where whole messages go in parts while the download goes on, if anywhere.
    handoff: Option<Handoff>,
    pub refused: Vec<(u32, ServerError)>,
    on_message: &'a mut (dyn FnMut(u64) + Send),
    /// The most octets each message may have (see [`crate::failing::body_limit`]).
    limits: Option<&'a HashMap<u32, u64>>,
    /// Octets written of the message opened last: where a failure broke it off.
    in_progress: Arc<AtomicU64>,
    /// Asks for no more messages once this time budget is spent.
    budget: Option<Budget<'a>>,
}

/// See [`BatchSink::with_budget`].
struct Budget<'a> {
    clock: &'a dyn Clock,
    started_ms: i64,
    budget_ms: i64,
}

impl<'a> BatchSink<'a> {
    pub fn new(blobs: &'a BlobStore, on_message: &'a mut (dyn FnMut(u64) + Send)) -> Self {
        BatchSink {
            blobs,
            downloaded: Vec::new(),
            arrived: Vec::new(),
            handoff: None,
            refused: Vec::new(),
            on_message,
            limits: None,
            in_progress: Arc::new(AtomicU64::new(0)),
            budget: None,
        }
    }

    /// Asks the server for no further message once `budget` has passed on `clock` from
    /// now; the messages already asked for (the pipelining window) still arrive, and the
    /// batch then ends as if it were whole. A clock that goes back counts as the budget
    /// spent: a session is never stretched by a clock change.
    pub fn with_budget(mut self, clock: &'a dyn Clock, budget: std::time::Duration) -> Self {
        self.budget = Some(Budget {
            clock,
            started_ms: clock.now_ms(),
            budget_ms: i64::try_from(budget.as_millis()).unwrap_or(i64::MAX),
        });
        self
    }

    /// Octets of the message opened last that were written: after a failure, how far
    /// into the message it broke off.
    pub fn octets_in_progress(&self) -> u64 {
        self.in_progress.load(Ordering::Relaxed)
    }

    /// Bodies longer than these are cut off ([`pop3::Error::BodyTooLong`]).
    pub fn with_limits(mut self, limits: &'a HashMap<u32, u64>) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Hands whole messages to `parts` every `messages` messages or `octets` octets,
    /// whichever comes first; what is left stays in [`BatchSink::downloaded`]. A closed
    /// channel (its receiver failed) stops the download with a sink error.
    pub fn with_handoff(
        mut self,
        parts: mpsc::Sender<Vec<Downloaded>>,
        messages: usize,
        octets: u64,
    ) -> Self {
        self.handoff = Some(Handoff {
            parts,
            messages,
            octets,
            pending_octets: 0,
        });
        self
    }

    /// The first of `numbers` that neither arrived whole nor was refused: the message
    /// whose download a failure broke off (`retr_batch` goes in order).
    pub fn unfinished(&self, numbers: &[u32]) -> Option<u32> {
        let arrived: HashSet<u32> = self.arrived.iter().copied().collect();
        numbers.iter().copied().find(|number| {
            !arrived.contains(number) && !self.refused.iter().any(|(n, _)| n == number)
        })
    }
}

/// See [`BatchSink::with_handoff`].
struct Handoff {
    parts: mpsc::Sender<Vec<Downloaded>>,
    messages: usize,
    octets: u64,
    /// Octets of the messages in `downloaded`.
    pending_octets: u64,
}

impl MessageSink for BatchSink<'_> {
    type Writer = CapturingWriter;

    async fn open(&mut self, number: u32) -> io::Result<CapturingWriter> {
        let blob = self.blobs.writer().await.map_err(io::Error::other)?;
        self.in_progress.store(0, Ordering::Relaxed);
        Ok(CapturingWriter {
            number,
            blob,
            head: Vec::new(),
            written: Arc::clone(&self.in_progress),
        })
    }

    async fn finish(&mut self, writer: CapturingWriter, retrieved: Retrieved) -> io::Result<()> {
        let CapturingWriter {
            number, blob, head, ..
        } = writer;
        // Whole: a failure from here on strikes the next message, before its first octet.
        self.in_progress.store(0, Ordering::Relaxed);
        let blob = blob.finish().await.map_err(io::Error::other)?;
        debug_assert_eq!(blob.size, retrieved.octets);
        (self.on_message)(blob.size);
        let size = blob.size;
        self.arrived.push(number);
        self.downloaded.push(Downloaded {
            number,
            blob,
            message_id: message_id(&head),
        });
        if let Some(handoff) = &mut self.handoff {
            handoff.pending_octets += size;
            if self.downloaded.len() >= handoff.messages || handoff.pending_octets >= handoff.octets
            {
                handoff.pending_octets = 0;
                let part = std::mem::take(&mut self.downloaded);
                handoff.parts.send(part).await.map_err(|_| {
                    io::Error::other("storing the messages failed; the download stops")
                })?;
            }
        }
        Ok(())
    }

    async fn refused(&mut self, number: u32, error: ServerError) -> io::Result<()> {
        // The message vanished or the server will not give it out: it stays on the
        // server, nothing is recorded, the next run tries again.
        tracing::warn!(number, %error, "server refused to retrieve a message");
        self.refused.push((number, error));
        Ok(())
    }

    fn max_octets(&self, number: u32) -> Option<u64> {
        self.limits.and_then(|limits| limits.get(&number).copied())
    }

    fn wants_more(&self) -> bool {
        self.budget.as_ref().is_none_or(|budget| {
            let elapsed = budget.clock.now_ms().saturating_sub(budget.started_ms);
            (0..budget.budget_ms).contains(&elapsed)
        })
    }
}

/// `TOP n 0` of a failing message, kept in memory up to a limit: what the admin sees of
/// a message that cannot be downloaded.
pub struct HeaderSink {
    limit: u64,
    /// The header section, when the server gave it.
    pub headers: Option<Vec<u8>>,
    /// The server refused `TOP` (or does not have it).
    pub refused: bool,
}

impl HeaderSink {
    pub fn new(limit: u64) -> HeaderSink {
        HeaderSink {
            limit,
            headers: None,
            refused: false,
        }
    }
}

impl MessageSink for HeaderSink {
    type Writer = Vec<u8>;

    async fn open(&mut self, _number: u32) -> io::Result<Vec<u8>> {
        Ok(Vec::new())
    }

    async fn finish(&mut self, writer: Vec<u8>, _retrieved: Retrieved) -> io::Result<()> {
        self.headers = Some(writer);
        Ok(())
    }

    async fn refused(&mut self, _number: u32, _error: ServerError) -> io::Result<()> {
        self.refused = true;
        Ok(())
    }

    fn max_octets(&self, _number: u32) -> Option<u64> {
        Some(self.limit)
    }
}

/// A blob writer that also keeps the message's first octets.
pub struct CapturingWriter {
    number: u32,
    blob: BlobWriter,
    head: Vec<u8>,
    written: Arc<AtomicU64>,
}

impl AsyncWrite for CapturingWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.blob).poll_write(cx, buf) {
            Poll::Ready(Ok(written)) => {
                let room = HEADER_CAPTURE.saturating_sub(this.head.len());
                this.head.extend_from_slice(&buf[..written.min(room)]);
                this.written.fetch_add(written as u64, Ordering::Relaxed);
                Poll::Ready(Ok(written))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.blob).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.blob).poll_shutdown(cx)
    }
}
