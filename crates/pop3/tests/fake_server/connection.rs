//! One client connection to the fake: read a line, answer it (or spoil the answer as
//! scripted), and record what arrived and how.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::maildrop::{After, Maildrop, split_command};
use super::script::{Fault, On, Script};
use super::{Record, lock};

/// Faults still to fire, shared by every connection to one server.
pub(super) type Faults = Arc<Mutex<Vec<(On, Fault)>>>;

/// Whether the conversation goes on after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Go,
    Stop,
}

pub(super) struct Connection {
    stream: TcpStream,
    input: Vec<u8>,
    maildrop: Maildrop,
    record: Arc<Mutex<Record>>,
    faults: Faults,
    pipelining: bool,
    read_chunk: usize,
    read_pause: Option<Duration>,
}

impl Connection {
    pub(super) fn new(
        stream: TcpStream,
        script: &Script,
        record: Arc<Mutex<Record>>,
        faults: Faults,
    ) -> Connection {
        Connection {
            stream,
            input: Vec::new(),
            maildrop: Maildrop::new(script),
            record,
            faults,
            pipelining: script
                .capabilities
                .iter()
                .any(|line| line.eq_ignore_ascii_case("PIPELINING")),
            read_chunk: script.read_chunk,
            read_pause: script.read_pause,
        }
    }

    /// Runs the conversation until the client leaves, `QUIT`, or a fault ends it.
    pub(super) async fn serve(mut self) -> io::Result<()> {
        let greeting = self.maildrop.greeting();
        if self.answer(None, greeting).await? == Next::Stop {
            return Ok(());
        }
        while let Some(line) = self.next_line().await? {
            let continues_sasl = self.maildrop.in_sasl();
            let (reply, after) = self.maildrop.answer(&line);
            // A SASL response line is not a command; no fault aims at it.
            let moment = (!continues_sasl).then(|| split_command(&line));
            if self.answer(Some(moment.unwrap_or(("", ""))), reply).await? == Next::Stop
                || after == After::Close
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The next line from the client, without its line end; `None` when it hung up.
    async fn next_line(&mut self) -> io::Result<Option<String>> {
        let mut chunk = vec![0; self.read_chunk];
        loop {
            if let Some(lf) = self.input.iter().position(|octet| *octet == b'\n') {
                let line: Vec<u8> = self.input.drain(..=lf).collect();
                let line = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                let mut record = lock(&self.record);
                // Without PIPELINING a client must wait for each answer, so nothing may
                // follow a command until the fake has answered it.
                if !self.pipelining && !self.input.is_empty() {
                    record.overtaken.push(line.clone());
                }
                record.lines.push(line.clone());
                return Ok(Some(line));
            }
            if let Some(pause) = self.read_pause {
                tokio::time::sleep(pause).await;
            }
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                return Ok(None);
            }
            let lines = chunk[..read]
                .iter()
                .filter(|octet| **octet == b'\n')
                .count();
            let mut record = lock(&self.record);
            record.most_lines_in_one_read = record.most_lines_in_one_read.max(lines);
            drop(record);
            self.input.extend_from_slice(&chunk[..read]);
        }
    }

    /// Sends `reply` for this moment (`None`: the greeting), or spoils it as scripted.
    async fn answer(&mut self, moment: Option<(&str, &str)>, reply: Vec<u8>) -> io::Result<Next> {
        let fault = {
            let mut faults = lock(&self.faults);
            let at = faults.iter().position(|(on, _)| on.matches(moment));
            at.map(|at| faults.remove(at).1)
        };
        let Some(fault) = fault else {
            self.stream.write_all(&reply).await?;
            return Ok(Next::Go);
        };
        match fault {
            Fault::Replace(octets) => self.stream.write_all(&octets).await?,
            Fault::Append(extra) => {
                let mut both = reply;
                both.extend_from_slice(&extra);
                self.stream.write_all(&both).await?;
            }
            Fault::CutAfter(octets) => {
                self.stream
                    .write_all(&reply[..octets.min(reply.len())])
                    .await?;
                self.hang_up().await;
                return Ok(Next::Stop);
            }
            Fault::CutInBody(octets) => {
                let end = (first_line_len(&reply) + octets).min(reply.len());
                self.stream.write_all(&reply[..end]).await?;
                self.hang_up().await;
                return Ok(Next::Stop);
            }
            Fault::ResetInBody(octets) => {
                let end = (first_line_len(&reply) + octets).min(reply.len());
                self.stream.write_all(&reply[..end]).await?;
                // Linger zero: closing sends RST, not FIN.
                self.stream.set_zero_linger()?;
                return Ok(Next::Stop);
            }
            Fault::GoSilent => {
                std::future::pending::<()>().await;
                return Ok(Next::Stop);
            }
            Fault::Trickle { head, interval } => {
                let head = (first_line_len(&reply) + head).min(reply.len());
                self.stream.write_all(&reply[..head]).await?;
                for octet in &reply[head..] {
                    tokio::time::sleep(interval).await;
                    self.stream.write_all(&[*octet]).await?;
                }
            }
            Fault::EndlessLine { octets } => {
                let filler = vec![b'x'; 64 * 1024];
                let mut sent = 0;
                while sent < octets {
                    let piece = (octets - sent).min(filler.len());
                    if self.stream.write_all(&filler[..piece]).await.is_err() {
                        break;
                    }
                    sent += piece;
                    lock(&self.record).endless_octets_sent = sent;
                }
                return Ok(Next::Stop);
            }
        }
        Ok(Next::Go)
    }

    /// Closes the fake's sending side, then keeps reading until the client leaves, so
    /// commands it already sent do not turn the close into a reset.
    async fn hang_up(&mut self) {
        let _ = self.stream.shutdown().await;
        let mut drain = [0; 4096];
        while matches!(self.stream.read(&mut drain).await, Ok(read) if read > 0) {}
    }
}

/// Octets up to and including the first LF.
fn first_line_len(reply: &[u8]) -> usize {
    reply
        .iter()
        .position(|octet| *octet == b'\n')
        .map_or(reply.len(), |lf| lf + 1)
}
