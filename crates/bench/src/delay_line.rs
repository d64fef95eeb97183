//! Added round-trip time between the client and server namespaces.
//!
//! `tc netem` is the usual tool, but many kernels (this one included) are built without it.
//! Then an NFQUEUE delay line does the job: iptables rules in the client namespace hand every
//! packet on the veth, in both directions, to a netfilter queue, and [`serve`] holds each one
//! for the one-way delay before accepting it. The delay is constant, so releasing packets in
//! arrival order keeps them in order.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::netns::{self, BenchNetwork, Namespace};

/// Queue number used by the iptables rules; only our namespace uses it.
const QUEUE: u16 = 7;

/// How the delay was added, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Netem,
    Nfqueue,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Netem => "tc netem",
            Method::Nfqueue => "NFQUEUE delay line",
        })
    }
}

/// Delay between the two namespaces; removed on drop.
pub struct DelayLine {
    pub method: Method,
    client: Namespace,
    server: Namespace,
    child: Option<Child>,
}

impl DelayLine {
    /// Adds `one_way` in each direction between the namespaces of `net`.
    pub fn start(net: &BenchNetwork, one_way: Duration) -> Result<DelayLine> {
        let ms = format!("{}ms", one_way.as_millis());
        let netem = |ns: &Namespace, dev: &str| {
            ns.run(
                "tc",
                &["qdisc", "add", "dev", dev, "root", "netem", "delay", &ms],
            )
        };
        if netem(&net.client, netns::CLIENT_VETH).is_ok() {
            netem(&net.server, netns::SERVER_VETH).context("netem on the server side")?;
            return Ok(DelayLine {
                method: Method::Netem,
                client: net.client.clone(),
                server: net.server.clone(),
                child: None,
            });
        }

        let mut child = net
            .client
            .command(std::env::current_exe()?)
            .args([
                "delay-line",
                "--queue",
                &QUEUE.to_string(),
                "--delay-us",
                &one_way.as_micros().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the NFQUEUE delay line")?;
        // Wait for "ready" so no packet meets a rule before the queue has a listener
        // (it would be dropped).
        let stdout = child.stdout.take().context("delay line stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let line_up = DelayLine {
            method: Method::Nfqueue,
            client: net.client.clone(),
            server: net.server.clone(),
            child: Some(child),
        };
        if line.trim() != "ready" {
            bail!(
                "the NFQUEUE delay line did not start (is the nfnetlink_queue module available?)"
            );
        }
        let queue = QUEUE.to_string();
        for (chain, dir) in [("OUTPUT", "-o"), ("INPUT", "-i")] {
            net.client.run(
                "iptables",
                &[
                    "-I",
                    chain,
                    dir,
                    netns::CLIENT_VETH,
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    &queue,
                ],
            )?;
        }
        Ok(line_up)
    }

    /// Measured round-trip time (ping average), to show that the delay is really there.
    pub fn measured_rtt(&self) -> Result<Duration> {
        let out = self
            .client
            .command("ping")
            // -U: user-to-user time. Without it ping uses the kernel's receive timestamp,
            // taken before the INPUT hook where the reply waits in the delay line.
            .args([
                "-q",
                "-U",
                "-c",
                "10",
                "-i",
                "0.2",
                "-W",
                "2",
                netns::SERVER_ADDR,
            ])
            .stdin(Stdio::null())
            .output()
            .context("running ping (apt-get install iputils-ping)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        // rtt min/avg/max/mdev = 20.1/20.3/20.9/0.2 ms
        let avg = text
            .lines()
            .find(|l| l.contains("min/avg/max"))
            .and_then(|l| l.split('=').nth(1))
            .and_then(|v| v.trim().split('/').nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("no RTT in ping output: {text}"))?;
        Ok(Duration::from_secs_f64(avg / 1000.0))
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        match self.method {
            Method::Netem => {
                let _ = self
                    .client
                    .run("tc", &["qdisc", "del", "dev", netns::CLIENT_VETH, "root"]);
                let _ = self
                    .server
                    .run("tc", &["qdisc", "del", "dev", netns::SERVER_VETH, "root"]);
            }
            Method::Nfqueue => {
                let queue = QUEUE.to_string();
                for (chain, dir) in [("OUTPUT", "-o"), ("INPUT", "-i")] {
                    let _ = self.client.run(
                        "iptables",
                        &[
                            "-D",
                            chain,
                            dir,
                            netns::CLIENT_VETH,
                            "-j",
                            "NFQUEUE",
                            "--queue-num",
                            &queue,
                        ],
                    );
                }
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The delay line itself (`popdesk-bench delay-line`), run inside the client namespace:
/// accept each queued packet `delay` after it arrived, in arrival order. Runs until killed.
pub fn serve(queue_num: u16, delay: Duration) -> Result<()> {
    let mut queue = nfq::Queue::open().context("opening a netfilter queue socket")?;
    queue
        .bind(queue_num)
        .context("binding the netfilter queue")?;
    // Metadata only: we never look at or change the payload.
    queue.set_copy_range(queue_num, 0)?;
    // Whole GSO super-packets, so a 64 KB burst is one verdict, not 45.
    queue.set_recv_gso(queue_num, true)?;
    // Room for everything in flight for `delay` at full speed; the default 1024 would drop.
    queue.set_queue_max_len(queue_num, 1 << 16)?;
    queue.set_nonblocking(true);
    println!("ready");
    std::io::stdout().flush()?;

    // The kernel socket offers no readiness we can wait on through this crate, so poll:
    // a packet waits at most `POLL` beyond its delay (0.1 ms against 10 ms).
    const POLL: Duration = Duration::from_micros(100);
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    loop {
        let mut received = false;
        loop {
            match queue.recv() {
                Ok(mut msg) => {
                    msg.set_verdict(nfq::Verdict::Accept);
                    held.push_back((Instant::now() + delay, msg));
                    received = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("receiving from the netfilter queue"),
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, msg)) = held.pop_front() {
                queue.verdict(msg).context("accepting a delayed packet")?;
            }
        }
        if !received {
            let wait = held.front().map_or(POLL, |(due, _)| {
                due.saturating_duration_since(now).min(POLL)
            });
            std::thread::sleep(wait);
        }
    }
}
