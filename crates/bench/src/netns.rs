//! The two network namespaces the benchmark creates: a server side and a client side joined
//! by a veth pair, so that delay can be added between them without touching the host.
//!
//! Traffic stays on addresses inside these namespaces (10.200.0.1 and 10.200.0.2) and on
//! their own loopback. Everything is removed on drop; `scripts/bench-pop3` removes it too if
//! the process is killed.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

pub const SERVER_NS: &str = "popdesk-bench-srv";
pub const CLIENT_NS: &str = "popdesk-bench-cli";
pub const SERVER_ADDR: &str = "10.200.0.1";
pub const CLIENT_ADDR: &str = "10.200.0.2";
pub const SERVER_VETH: &str = "pdbench-s";
pub const CLIENT_VETH: &str = "pdbench-c";

/// A network namespace by name; commands run in it through `ip netns exec`.
#[derive(Clone, Debug)]
pub struct Namespace {
    pub name: &'static str,
}

impl Namespace {
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.name]).arg(program);
        cmd
    }

    /// Runs a setup command in the namespace and fails with its stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        let mut cmd = self.command(program);
        cmd.args(args);
        checked(&mut cmd)
    }
}

/// Server and client namespaces, veth-connected; torn down on drop.
pub struct BenchNetwork {
    pub server: Namespace,
    pub client: Namespace,
}

impl BenchNetwork {
    pub fn create() -> Result<BenchNetwork> {
        remove_all();
        let net = BenchNetwork {
            server: Namespace { name: SERVER_NS },
            client: Namespace { name: CLIENT_NS },
        };
        for ns in [SERVER_NS, CLIENT_NS] {
            ip(&["netns", "add", ns])?;
        }
        ip(&[
            "link",
            "add",
            SERVER_VETH,
            "type",
            "veth",
            "peer",
            "name",
            CLIENT_VETH,
        ])?;
        ip(&["link", "set", SERVER_VETH, "netns", SERVER_NS])?;
        ip(&["link", "set", CLIENT_VETH, "netns", CLIENT_NS])?;
        for (ns, dev, addr) in [
            (SERVER_NS, SERVER_VETH, SERVER_ADDR),
            (CLIENT_NS, CLIENT_VETH, CLIENT_ADDR),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }
}

impl Drop for BenchNetwork {
    fn drop(&mut self) {
        remove_all();
    }
}

/// Ends what still runs in our namespaces (only processes we started live there) and deletes
/// them; deleting a namespace also removes its veth end and its iptables rules.
pub fn remove_all() {
    for ns in [SERVER_NS, CLIENT_NS] {
        if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
    }
}

fn ip(args: &[&str]) -> Result<()> {
    checked(Command::new("ip").args(args))
}

pub fn checked(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
