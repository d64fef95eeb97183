//! A Postfix lookup table served by the test itself (Postfix's `socketmap` protocol).
//!
//! The reply tests switch recipient rules on and off ("450 for customer@example.com",
//! then lifted) while popdesk keeps its SMTP connection open. A file table (`texthash`)
//! is read once per smtpd process, so a change would need `postfix reload`, and an smtpd
//! already talking to popdesk would keep the old rule for the rest of that connection.
//! Postfix asks a socketmap server on every lookup instead, so a rule changed here holds
//! from the next `RCPT TO`, on every connection, with no reload and no race.
//!
//! The protocol (from Sendmail; Postfix's `socketmap_table(5)`): each request and reply
//! is a netstring `LEN:DATA,`; a request is `NAME KEY`, a reply `OK VALUE`, `NOTFOUND `
//! or `PERM reason`. Postfix keeps the connection open for more lookups.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Postfix's own requests are an address or a domain; anything longer is not Postfix.
const MAX_REQUEST: usize = 4096;
/// Postfix drops idle socketmap connections by itself; this only bounds a stuck peer.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A table of lower-cased keys to values, served to Postfix on a loopback port until
/// dropped.
pub(crate) struct SocketmapTable {
    addr: SocketAddr,
    entries: Arc<Mutex<BTreeMap<String, String>>>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl SocketmapTable {
    /// Starts serving an empty table.
    ///
    /// # Panics
    /// If no loopback port can be bound or no thread started.
    pub(crate) fn start() -> SocketmapTable {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("testkit: bind the socketmap table's port");
        let addr = listener
            .local_addr()
            .expect("testkit: the socketmap table's address");
        let entries = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept_thread = {
            let entries = Arc::clone(&entries);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("testkit-socketmap".into())
                .spawn(move || accept_loop(&listener, &entries, &stop))
                .expect("testkit: start the socketmap table's thread")
        };
        SocketmapTable {
            addr,
            entries,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    /// Where Postfix reaches the table: `socketmap:inet:ADDR:NAME` (any NAME).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the value for `key` (matched without regard to case), replacing any.
    pub(crate) fn insert(&self, key: &str, value: &str) {
        self.lock().insert(key.to_lowercase(), value.to_owned());
    }

    /// Removes every entry.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SocketmapTable {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    entries: &Arc<Mutex<BTreeMap<String, String>>>,
    stop: &AtomicBool,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let entries = Arc::clone(entries);
        // One thread per Postfix connection: each smtpd process holds its own, and
        // they all end when Postfix closes them (at the latest when it is stopped).
        let _ = std::thread::Builder::new()
            .name("testkit-socketmap-conn".into())
            .spawn(move || {
                let _ = serve(stream, &entries);
            });
    }
}

fn serve(stream: TcpStream, entries: &Mutex<BTreeMap<String, String>>) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_netstring(&mut reader)? {
        let reply = match request.split_once(' ') {
            Some((_name, key)) => {
                let entries = entries.lock().unwrap_or_else(|e| e.into_inner());
                match lookup(&entries, key) {
                    Some(value) => format!("OK {value}"),
                    None => "NOTFOUND ".to_owned(),
                }
            }
            None => "PERM request is not \"NAME KEY\"".to_owned(),
        };
        writer.write_all(format!("{}:{reply},", reply.len()).as_bytes())?;
        writer.flush()?;
    }
    Ok(())
}

/// The entry for `key`, or else for its domain when `key` is an address: what a file
/// table gives in an access(5) lookup. Postfix treats a socketmap as a pattern table and
/// asks for the full address only, so the domain is looked up here.
fn lookup<'a>(entries: &'a BTreeMap<String, String>, key: &str) -> Option<&'a String> {
    let key = key.to_lowercase();
    entries.get(&key).or_else(|| {
        key.rsplit_once('@')
            .and_then(|(_, domain)| entries.get(domain))
    })
}

/// Reads one netstring; `None` at a clean end of the connection.
fn read_netstring(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut length = Vec::new();
    reader.by_ref().take(8).read_until(b':', &mut length)?;
    if length.is_empty() {
        return Ok(None);
    }
    if length.pop() != Some(b':') {
        return Err(invalid("netstring length without ':'"));
    }
    let length: usize = std::str::from_utf8(&length)
        .ok()
        .and_then(|digits| digits.parse().ok())
        .filter(|&n| n <= MAX_REQUEST)
        .ok_or_else(|| invalid("bad netstring length"))?;
    let mut data = vec![0; length + 1];
    reader.read_exact(&mut data)?;
    if data.pop() != Some(b',') {
        return Err(invalid("netstring without ','"));
    }
    String::from_utf8(data)
        .map(Some)
        .map_err(|_| invalid("request is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(stream: &mut TcpStream, request: &str) -> String {
        stream
            .write_all(format!("{}:{request},", request.len()).as_bytes())
            .expect("write");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        read_netstring(&mut reader).expect("read").expect("a reply")
    }

    #[test]
    fn answers_lookups_with_the_current_entries_on_one_connection() {
        let table = SocketmapTable::start();
        let mut stream = TcpStream::connect(table.addr()).expect("connect");
        assert_eq!(ask(&mut stream, "rules a@example.com"), "NOTFOUND ");
        table.insert("A@Example.com", "450 4.7.1 later");
        assert_eq!(
            ask(&mut stream, "rules a@example.COM"),
            "OK 450 4.7.1 later"
        );
        table.insert("example.org", "550 5.7.1 not there");
        assert_eq!(
            ask(&mut stream, "rules b@Example.org"),
            "OK 550 5.7.1 not there"
        );
        table.clear();
        assert_eq!(ask(&mut stream, "rules a@example.com"), "NOTFOUND ");
        assert_eq!(ask(&mut stream, "rules b@example.org"), "NOTFOUND ");
    }

    #[test]
    fn a_malformed_request_ends_the_connection() {
        let table = SocketmapTable::start();
        let mut stream = TcpStream::connect(table.addr()).expect("connect");
        stream.write_all(b"x:bad,").expect("write");
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).expect("read to the end");
        assert!(rest.is_empty());
    }
}
