//! `FaultyServer`: a hand-written fake POP3 server, for fault cases only.
//!
//! This is not a POP3 server and proves nothing about talking to real ones — the Dovecot
//! interop tests do that. It speaks just enough POP3 (greeting, CAPA, USER/PASS, SASL
//! PLAIN and LOGIN, STAT, LIST, UIDL, RETR with dot-stuffing, DELE, RSET, NOOP, QUIT) to
//! bring a client to the point of a fault, then does what no real server can be made to
//! do on demand: cut the connection mid-`RETR`, send garbage or an endless line, stop
//! reading, answer one octet at a time. It records what it received, so a test can assert
//! on what reached the wire.

mod connection;
mod maildrop;
mod script;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pop3::{ConnectOptions, Credentials, Security, Timeouts};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::{JoinHandle, JoinSet};

use connection::{Connection, Faults};
pub use script::{Fault, On, PASSWORD, Script, USER};

/// What the fake saw, across all connections.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Every line received, in order, without its line end (secrets included: this never
    /// leaves the test).
    pub lines: Vec<String>,
    /// The most complete lines that arrived in one read: above 1 means the client
    /// pipelined.
    pub most_lines_in_one_read: usize,
    /// Lines that arrived while an earlier command was still unanswered, on a server that
    /// did not offer PIPELINING. A correct client never causes one.
    pub overtaken: Vec<String>,
    /// How much of an `EndlessLine` the client took (or the kernel buffered for it).
    pub endless_octets_sent: usize,
}

impl Record {
    /// Whether any line began with this verb.
    pub fn saw(&self, verb: &str) -> bool {
        self.lines.iter().any(|line| {
            line.split(' ')
                .next()
                .is_some_and(|first| first.eq_ignore_ascii_case(verb))
        })
    }
}

/// A scripted fake POP3 server on `127.0.0.1`, for as long as it is not dropped.
pub struct FaultyServer {
    address: SocketAddr,
    record: Arc<Mutex<Record>>,
    script: Script,
    task: JoinHandle<()>,
}

impl FaultyServer {
    /// Listens on an ephemeral loopback port and serves every connection by `script`.
    pub async fn start(script: Script) -> FaultyServer {
        let socket = TcpSocket::new_v4().expect("a TCP socket");
        if let Some(octets) = script.socket_buffer {
            // Accepted connections inherit these from the listener.
            socket.set_send_buffer_size(octets).expect("set SO_SNDBUF");
            socket.set_recv_buffer_size(octets).expect("set SO_RCVBUF");
        }
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        socket.bind(loopback).expect("bind to 127.0.0.1:0");
        let listener = socket.listen(64).expect("listen");
        let address = listener.local_addr().expect("the listener's address");
        let record = Arc::new(Mutex::new(Record::default()));
        let faults: Faults = Arc::new(Mutex::new(script.faults.clone()));
        let task = tokio::spawn(accept(listener, script.clone(), record.clone(), faults));
        FaultyServer {
            address,
            record,
            script,
            task,
        }
    }

    /// Options that reach this fake: plaintext, insecure auth allowed (the fake has no
    /// TLS), short time limits so a fault shows quickly.
    pub fn options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new("127.0.0.1", self.address.port(), Security::None);
        options.allow_insecure_auth = true;
        options.timeouts = Timeouts {
            connect: Duration::from_secs(2),
            read: Duration::from_secs(2),
            session: None,
        };
        options
    }

    /// The credentials the fake accepts.
    pub fn credentials(&self) -> Credentials {
        Credentials::password(self.script.user.clone(), self.script.password.clone())
    }

    /// A copy of what the fake saw so far.
    pub fn record(&self) -> Record {
        lock(&self.record).clone()
    }
}

impl Drop for FaultyServer {
    /// Ends the fake and every connection it holds open (silent or draining ones too).
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, script: Script, record: Arc<Mutex<Record>>, faults: Faults) {
    // Dropping the set (when this task is aborted) aborts every connection.
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let connection = Connection::new(stream, &script, record.clone(), faults.clone());
        connections.spawn(async move {
            // A client that vanished mid-write is a normal end in fault tests.
            let _ = connection.serve().await;
        });
    }
}

/// Locks shared fake state; a test that panicked while holding it has already failed.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
