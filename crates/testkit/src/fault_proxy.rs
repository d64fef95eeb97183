//! A hand-written, fault-injecting TCP proxy in front of a real POP3 server.
//!
//! This is a fake, named as such: it exists only for faults a real Dovecot cannot be made
//! to produce — a connection cut at an exact byte, `QUIT` answered `-ERR`, a provider that
//! does not delete on `DELE`, a server without `UIDL`, a slow link. Everything else passes through
//! untouched to the real server behind it.
//!
//! It reads client commands line by line, so it works on plaintext connections only (a
//! byte cut also works through TLS). Answers it makes up are written at once: they assume
//! no server reply is still outstanding for an earlier pipelined command, which holds for
//! popdesk's fetcher (it sends `DELE`, `UIDL` and `QUIT` only after earlier replies).
//!
//! Like [`OAuthIntrospection`](crate::OAuthIntrospection) it runs on its own thread and
//! runtime, so it keeps serving whatever the test's runtime is doing.

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex as AsyncMutex, oneshot};

/// What the proxy does to connections accepted from now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    /// Pass everything through.
    #[default]
    None,
    /// Cut the connection (both ways, no goodbye) once this many octets went from the
    /// server to the client.
    CutAfterServerBytes(u64),
    /// Cut the connection once this many octets went from the client to the server.
    CutAfterClientBytes(u64),
    /// Answer `QUIT` with `-ERR` and drop the server connection without a `QUIT`, so the
    /// server rolls back the session's deletions.
    QuitErr,
    /// Answer `DELE` with `+OK` without telling the server: a provider that keeps mail.
    IgnoreDele,
    /// A server without UIDL: `UIDL` is removed from `CAPA` and answered `-ERR`.
    HideUidl,
    /// A slow link: the server's octets reach the client at about this rate, a tenth of
    /// a second's worth at a time, so a fetch takes as long as a test needs.
    Slow { bytes_per_sec: u64 },
}

/// The proxy; stopped on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    connections: Arc<AtomicU64>,
    cuts: Arc<AtomicU64>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`.
    ///
    /// # Panics
    /// If no loopback port can be bound or the thread cannot start.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = StdTcpListener::bind("127.0.0.1:0")
            .expect("testkit: bind the fault proxy on 127.0.0.1");
        let addr = listener.local_addr().expect("testkit: fault proxy address");
        listener
            .set_nonblocking(true)
            .expect("testkit: make the fault proxy listener non-blocking");
        let fault = Arc::new(Mutex::new(Fault::None));
        let connections = Arc::new(AtomicU64::new(0));
        let cuts = Arc::new(AtomicU64::new(0));
        let (shutdown, stopped) = oneshot::channel();
        let shared = Shared {
            upstream,
            fault: Arc::clone(&fault),
            connections: Arc::clone(&connections),
            cuts: Arc::clone(&cuts),
        };
        let thread = std::thread::Builder::new()
            .name("testkit-fault-proxy".into())
            .spawn(move || serve(listener, shared, stopped))
            .expect("testkit: spawn the fault proxy thread");
        FaultProxy {
            addr,
            fault,
            connections,
            cuts,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the fault for connections accepted from now on.
    pub fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Connections the proxy cut so far.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Clone)]
struct Shared {
    upstream: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    connections: Arc<AtomicU64>,
    cuts: Arc<AtomicU64>,
}

fn serve(listener: StdTcpListener, shared: Shared, stopped: oneshot::Receiver<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => panic!("testkit: fault proxy runtime: {error}"),
    };
    runtime.block_on(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => panic!("testkit: fault proxy listener: {error}"),
        };
        let accept_loop = async {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let fault = *shared.fault.lock().unwrap_or_else(|e| e.into_inner());
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    if let Ok(server) = TcpStream::connect(shared.upstream).await {
                        proxy(client, server, fault, &shared).await;
                    }
                });
            }
        };
        tokio::select! {
            _ = accept_loop => {}
            _ = stopped => {}
        }
    });
}

/// Shared by both directions of one proxied connection.
struct Connection {
    client_out: AsyncMutex<OwnedWriteHalf>,
    /// The client asked for CAPA: filter the next multi-line reply.
    filter_capa: AtomicBool,
}

async fn proxy(client: TcpStream, server: TcpStream, fault: Fault, shared: &Shared) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_in, client_out) = client.into_split();
    let (server_in, mut server_out) = server.into_split();
    let connection = Arc::new(Connection {
        client_out: AsyncMutex::new(client_out),
        filter_capa: AtomicBool::new(false),
    });

    let upward = {
        let connection = Arc::clone(&connection);
        async move {
            let mut reader = BufReader::new(client_in);
            let mut line = Vec::new();
            let mut sent = 0u64;
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                }
                let command = String::from_utf8_lossy(&line).trim().to_ascii_uppercase();
                let local_answer: Option<&[u8]> = match fault {
                    Fault::QuitErr if command == "QUIT" => {
                        Some(b"-ERR [SYS/TEMP] fault proxy: QUIT refused\r\n")
                    }
                    Fault::IgnoreDele if command.starts_with("DELE ") => {
                        Some(b"+OK fault proxy: pretending to delete\r\n")
                    }
                    Fault::HideUidl if command.starts_with("UIDL") => {
                        Some(b"-ERR fault proxy: this server has no UIDL\r\n")
                    }
                    _ => None,
                };
                if let Some(answer) = local_answer {
                    let mut out = connection.client_out.lock().await;
                    if out.write_all(answer).await.is_err() {
                        return false;
                    }
                    if command == "QUIT" {
                        // Drop the server side without its QUIT: it rolls back.
                        return false;
                    }
                    continue;
                }
                if fault == Fault::HideUidl && command == "CAPA" {
                    connection.filter_capa.store(true, Ordering::SeqCst);
                }
                let mut chunk: &[u8] = &line;
                if let Fault::CutAfterClientBytes(limit) = fault {
                    let room = limit.saturating_sub(sent) as usize;
                    if room < chunk.len() {
                        chunk = &chunk[..room];
                        let _ = server_out.write_all(chunk).await;
                        return true;
                    }
                }
                sent += chunk.len() as u64;
                if server_out.write_all(chunk).await.is_err() {
                    return false;
                }
            }
        }
    };

    let downward = {
        let connection = Arc::clone(&connection);
        async move {
            let mut reader = BufReader::new(server_in);
            let mut received = 0u64;
            let mut buffer = vec![0u8; 64 * 1024];
            if fault == Fault::HideUidl {
                // Line by line, so the CAPA reply is recognised however reads split.
                let mut line = Vec::new();
                let mut in_capa = false;
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => return false,
                        Ok(_) => {}
                    }
                    let text = String::from_utf8_lossy(&line).trim().to_ascii_uppercase();
                    let starts_capa =
                        !in_capa && connection.filter_capa.swap(false, Ordering::SeqCst);
                    if starts_capa {
                        in_capa = text.starts_with("+OK");
                    } else if in_capa && text == "." {
                        in_capa = false;
                    } else if in_capa && text == "UIDL" {
                        continue;
                    }
                    let mut out = connection.client_out.lock().await;
                    if out.write_all(&line).await.is_err() {
                        return false;
                    }
                }
            }
            let slow = match fault {
                Fault::Slow { bytes_per_sec } => Some(bytes_per_sec.max(1)),
                _ => None,
            };
            loop {
                // A slow link passes a tenth of a second's worth at a time.
                let room = slow.map_or(buffer.len(), |rate| {
                    usize::try_from(rate / 10)
                        .unwrap_or(usize::MAX)
                        .clamp(1, buffer.len())
                });
                let read = match reader.read(&mut buffer[..room]).await {
                    Ok(0) | Err(_) => return false,
                    Ok(read) => read,
                };
                let mut chunk = &buffer[..read];
                let mut cut = false;
                if let Fault::CutAfterServerBytes(limit) = fault {
                    let room = limit.saturating_sub(received) as usize;
                    if room < chunk.len() {
                        chunk = &chunk[..room];
                        cut = true;
                    }
                }
                received += chunk.len() as u64;
                {
                    let mut out = connection.client_out.lock().await;
                    if out.write_all(chunk).await.is_err() || cut {
                        return cut;
                    }
                }
                if let Some(rate) = slow {
                    let pause =
                        std::time::Duration::from_secs_f64(chunk.len() as f64 / rate as f64);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    };

    // Whichever direction ends first ends the connection; a cut drops both sockets
    // without any goodbye.
    let cut = tokio::select! {
        cut = upward => cut,
        cut = downward => cut,
    };
    if cut {
        shared.cuts.fetch_add(1, Ordering::SeqCst);
    }
}
