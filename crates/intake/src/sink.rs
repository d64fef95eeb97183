//! Where retrieved messages go during a batch: straight into the blob store, hashed on
//! the way, with the first octets kept to find the Message-ID.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use pop3::{MessageSink, Retrieved, ServerError};
use store::{BlobStore, BlobWriter, FinishedBlob};
use tokio::io::AsyncWrite;

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
    pub downloaded: Vec<Downloaded>,
    pub refused: Vec<(u32, ServerError)>,
    on_message: &'a mut (dyn FnMut(u64) + Send),
}

impl<'a> BatchSink<'a> {
    pub fn new(blobs: &'a BlobStore, on_message: &'a mut (dyn FnMut(u64) + Send)) -> Self {
        BatchSink {
            blobs,
            downloaded: Vec::new(),
            refused: Vec::new(),
            on_message,
        }
    }
}

impl MessageSink for BatchSink<'_> {
    type Writer = CapturingWriter;

    async fn open(&mut self, number: u32) -> io::Result<CapturingWriter> {
        let blob = self.blobs.writer().await.map_err(io::Error::other)?;
        Ok(CapturingWriter {
            number,
            blob,
            head: Vec::new(),
        })
    }

    async fn finish(&mut self, writer: CapturingWriter, retrieved: Retrieved) -> io::Result<()> {
        let CapturingWriter { number, blob, head } = writer;
        let blob = blob.finish().await.map_err(io::Error::other)?;
        debug_assert_eq!(blob.size, retrieved.octets);
        (self.on_message)(blob.size);
        self.downloaded.push(Downloaded {
            number,
            blob,
            message_id: message_id(&head),
        });
        Ok(())
    }

    async fn refused(&mut self, number: u32, error: ServerError) -> io::Result<()> {
        // The message vanished or the server will not give it out: it stays on the
        // server, nothing is recorded, the next run tries again.
        tracing::warn!(number, %error, "server refused to retrieve a message");
        self.refused.push((number, error));
        Ok(())
    }
}

/// A blob writer that also keeps the message's first octets.
pub struct CapturingWriter {
    number: u32,
    blob: BlobWriter,
    head: Vec<u8>,
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
