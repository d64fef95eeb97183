//! Many commands at once: pipelined (RFC 2449) when the server allows, lock-step when not,
//! with the same results either way.

use std::collections::VecDeque;
use std::future::Future;
use std::io;

use tokio::io::AsyncWrite;

use super::Client;
use crate::codec::{Command, CommandKind};
use crate::error::{Error, ServerError};
use crate::session::Event;
use crate::types::{ListEntry, Retrieved, UidlEntry};

/// Where [`Client::retr_batch`] puts each message.
///
/// `open` is called when a message's body begins (never for a refused one), `finish` when
/// it is complete — that is where the caller hashes, fsyncs and commits. An error from
/// either stops the batch and leaves the connection unusable, so the caller can drop it
/// without `QUIT` (a session that ends with `QUIT` makes some providers hide what it
/// retrieved).
pub trait MessageSink {
    type Writer: AsyncWrite + Unpin;

    fn open(&mut self, number: u32) -> impl Future<Output = io::Result<Self::Writer>>;

    fn finish(
        &mut self,
        writer: Self::Writer,
        retrieved: Retrieved,
    ) -> impl Future<Output = io::Result<()>>;

    /// The server refused this message (`-ERR` to its RETR). The batch goes on.
    fn refused(&mut self, number: u32, error: ServerError) -> impl Future<Output = io::Result<()>>;

    /// The most octets this message's body may have. A server that sends more (it
    /// announced less in `LIST`, or streams without end) is stopped there with
    /// [`Error::BodyTooLong`] and the connection is not used again, so neither the disk
    /// nor the session deadline is at the server's mercy. `None`: no limit.
    fn max_octets(&self, number: u32) -> Option<u64> {
        let _ = number;
        None
    }

    /// Whether to send the batch's next command. Once this says no, the batch ends
    /// normally as soon as the commands already sent are answered (at most the pipelining
    /// window): the caller learns from what arrived which messages were not asked for,
    /// and the connection stays usable (for `DELE` and `QUIT`). How a caller bounds a
    /// session by time without giving up the pipeline until then.
    fn wants_more(&self) -> bool {
        true
    }
}

impl Client {
    /// `RETR` for each number, in order, into `sink`.
    ///
    /// With PIPELINING, up to the window's worth of RETRs are in flight while bodies
    /// stream in; otherwise one at a time. Memory stays bounded either way: unread replies
    /// wait in the server's socket, not ours.
    pub async fn retr_batch<S: MessageSink>(
        &mut self,
        numbers: &[u32],
        sink: &mut S,
    ) -> Result<(), Error> {
        self.body_batch(numbers, None, sink).await
    }

    /// `TOP n lines` for each number, in order, into `sink`, pipelined like `retr_batch`.
    pub async fn top_batch<S: MessageSink>(
        &mut self,
        numbers: &[u32],
        lines: u32,
        sink: &mut S,
    ) -> Result<(), Error> {
        self.body_batch(numbers, Some(lines), sink).await
    }

    async fn body_batch<S: MessageSink>(
        &mut self,
        numbers: &[u32],
        top_lines: Option<u32>,
        sink: &mut S,
    ) -> Result<(), Error> {
        let window = self.window();
        let mut to_send = numbers.iter().copied();
        let mut in_flight = VecDeque::with_capacity(window);
        loop {
            while in_flight.len() < window && sink.wants_more() {
                let Some(number) = to_send.next() else { break };
                let command = match top_lines {
                    Some(lines) => Command::Top { msg: number, lines },
                    None => Command::Retr(number),
                };
                self.send(&command)?;
                in_flight.push_back(number);
            }
            let Some(number) = in_flight.pop_front() else {
                return Ok(());
            };
            match self.next_event().await? {
                Event::BodyStart { .. } => {
                    let limit = sink.max_octets(number);
                    let mut writer = self.sink_result(sink.open(number).await)?;
                    let retrieved = self.stream_body(number, &mut writer, limit).await?;
                    self.sink_result(sink.finish(writer, retrieved).await)?;
                }
                Event::Err(refused) => self.sink_result(sink.refused(number, refused).await)?,
                other => return Err(self.out_of_step(CommandKind::Retr, other)),
            }
        }
    }

    /// `DELE` for each number; each message's own outcome, in order. An `Err` of the
    /// whole call means the connection failed and no deletion of this session counts.
    pub async fn dele_batch(
        &mut self,
        numbers: &[u32],
    ) -> Result<Vec<(u32, Result<(), ServerError>)>, Error> {
        self.simple_batch(numbers, Command::Dele, |event| match event {
            Event::Ok { .. } => Some(Ok(())),
            Event::Err(refused) => Some(Err(refused)),
            _ => None,
        })
        .await
    }

    /// `LIST` and `UIDL` together: one round trip when pipelining, two otherwise. The
    /// ids are `None` when the server refuses `UIDL` (an RFC 1939-only server).
    pub async fn list_with_uids(
        &mut self,
    ) -> Result<(Vec<ListEntry>, Option<Vec<UidlEntry>>), Error> {
        if !self.is_pipelining() {
            let listing = self.list().await?;
            let uids = match self.uidl().await {
                Ok(uids) => Some(uids),
                Err(Error::Server(_)) => None,
                Err(error) => return Err(error),
            };
            return Ok((listing, uids));
        }
        self.send(&Command::List(None))?;
        self.send(&Command::Uidl(None))?;
        // Both replies are read before either is judged, so the stream stays in step.
        let listing = match self.next_event().await? {
            Event::Listing(entries) => Ok(entries),
            Event::Err(refused) => Err(refused),
            other => return Err(self.out_of_step(CommandKind::List, other)),
        };
        let uids = match self.next_event().await? {
            Event::UniqueIds(entries) => Some(entries),
            Event::Err(_) => None,
            other => return Err(self.out_of_step(CommandKind::Uidl, other)),
        };
        Ok((listing?, uids))
    }

    /// `LIST n` for each number.
    pub async fn list_batch(
        &mut self,
        numbers: &[u32],
    ) -> Result<Vec<(u32, Result<ListEntry, ServerError>)>, Error> {
        self.simple_batch(
            numbers,
            |n| Command::List(Some(n)),
            |event| match event {
                Event::Scan(entry) => Some(Ok(entry)),
                Event::Err(refused) => Some(Err(refused)),
                _ => None,
            },
        )
        .await
    }

    /// `UIDL n` for each number.
    pub async fn uidl_batch(
        &mut self,
        numbers: &[u32],
    ) -> Result<Vec<(u32, Result<UidlEntry, ServerError>)>, Error> {
        self.simple_batch(
            numbers,
            |n| Command::Uidl(Some(n)),
            |event| match event {
                Event::Unique(entry) => Some(Ok(entry)),
                Event::Err(refused) => Some(Err(refused)),
                _ => None,
            },
        )
        .await
    }

    async fn simple_batch<T>(
        &mut self,
        numbers: &[u32],
        command: impl Fn(u32) -> Command,
        reply: impl Fn(Event) -> Option<Result<T, ServerError>>,
    ) -> Result<Vec<(u32, Result<T, ServerError>)>, Error> {
        let window = self.window();
        let mut results = Vec::with_capacity(numbers.len());
        let mut to_send = numbers.iter().copied();
        let mut in_flight = VecDeque::with_capacity(window);
        loop {
            while in_flight.len() < window {
                let Some(number) = to_send.next() else { break };
                self.send(&command(number))?;
                in_flight.push_back(number);
            }
            let Some(number) = in_flight.pop_front() else {
                return Ok(results);
            };
            let event = self.next_event().await?;
            let kind = command(number).kind();
            match reply(event.clone()) {
                Some(result) => results.push((number, result)),
                None => return Err(self.out_of_step(kind, event)),
            }
        }
    }

    fn sink_result<T>(&mut self, result: io::Result<T>) -> Result<T, Error> {
        result.map_err(|error| {
            self.broken = true;
            Error::Sink(error)
        })
    }
}
