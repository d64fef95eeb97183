//! "Is the POP3 server up?": connect and read the greeting.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::netns::Namespace;

/// Connects to `host:port` from this process's namespace and expects `+OK`.
pub fn greeting(host: &str, port: u16) -> Result<String> {
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .context("no address")?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    // Greetings are short; never read more than this from a server we only probe.
    BufReader::new(stream.take(512)).read_line(&mut line)?;
    if !line.starts_with("+OK") {
        bail!("unexpected greeting {line:?}");
    }
    Ok(line.trim_end().to_string())
}

/// Same, from inside `ns`, by running this binary's `probe` there.
pub fn greeting_in(ns: &Namespace, host: &str, port: u16) -> Result<()> {
    let status = ns
        .command(std::env::current_exe()?)
        .args(["probe", host, &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("no POP3 greeting from {host}:{port} in {}", ns.name);
    }
    Ok(())
}
