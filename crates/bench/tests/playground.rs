//! `popdesk-bench playground` as someone trying popdesk runs it: the commands it prints
//! use the data folder it really made, and Ctrl-C or SIGTERM leaves nothing behind (no
//! Dovecot running, no temp folder). Needs root, like every Dovecot fixture.

#![allow(clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the playground printed, until its last line of instructions.
struct Printed {
    lines: Vec<String>,
}

impl Printed {
    /// The rest of the first line that starts with `prefix`.
    fn after(&self, prefix: &str) -> &str {
        self.lines
            .iter()
            .find_map(|line| line.trim_start().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line starts with {prefix:?}:\n{}", self.text()))
    }

    fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Every port the guide names ("on port N").
    fn ports(&self) -> Vec<u16> {
        let text = self.text();
        text.match_indices("on port ")
            .filter_map(|(at, found)| {
                text[at + found.len()..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|digits| digits.parse().ok())
            })
            .collect()
    }
}

fn start_playground() -> (Child, Printed, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_popdesk-bench"))
        .args([
            "playground",
            "--messages",
            "3",
            "--megabytes",
            "1",
            "--minutes",
            "30",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start popdesk-bench");
    let stdout = child.stdout.take().expect("its stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Printed { lines: Vec::new() };
    // Generous: Dovecot's start and the mail generation share the machine with builds.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => {
                let last = line.starts_with("Runs for");
                printed.lines.push(line);
                if last {
                    return (child, printed, received);
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the playground did not finish its instructions in time:\n{}",
                    printed.text()
                );
            }
        }
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

fn wait(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the playground") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the playground did not stop within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

fn check_then_stop(signal_name: &str) {
    let (mut child, printed, more) = start_playground();
    let data = PathBuf::from(printed.after("popdesk's data folder: "));
    let dovecot_dir = PathBuf::from(printed.after("Dovecot's folder (config, log): "));
    let pid: u32 = printed
        .after("A private Dovecot (pid ")
        .split(')')
        .next()
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no Dovecot pid in:\n{}", printed.text()));
    let folder = data
        .parent()
        .expect("the data folder is in the playground's folder");
    assert!(
        folder
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("popdesk-playground-")),
        "{}",
        folder.display()
    );

    // Every command names the data folder the playground made, and nothing else.
    let text = printed.text();
    let uses: Vec<&str> = text
        .match_indices("--data ")
        .map(|(at, found)| {
            text[at + found.len()..]
                .split_whitespace()
                .next()
                .unwrap_or("")
        })
        .collect();
    assert!(uses.len() >= 5, "{text}");
    assert!(
        uses.iter().all(|used| Path::new(used) == data),
        "a command uses another data folder than {}:\n{text}",
        data.display()
    );
    for expected in [
        "mailbox add",
        "serve --listen 127.0.0.1:",
        "user add",
        "--ca-file",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    let ca = dovecot_dir.join("tls/ca.pem");
    assert!(text.contains(&ca.display().to_string()), "{text}");
    assert!(ca.is_file(), "{}", ca.display());

    let ports = printed.ports();
    assert_eq!(ports.len(), 2, "POP3S and plain POP3 ports: {text}");
    assert!(ports.iter().all(|port| answers(*port)), "Dovecot answers");
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    signal(&child, signal_name);
    let status = wait(&mut child, Duration::from_secs(60));
    assert!(status.success(), "exit {status} after SIG{signal_name}");
    // Until the reader sees the end of the output (the process is gone).
    let mut farewell = Vec::new();
    while let Ok(line) = more.recv_timeout(Duration::from_secs(30)) {
        farewell.push(line);
    }
    assert!(
        farewell.iter().any(|line| line == "playground stopped"),
        "{farewell:?}"
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "Dovecot (pid {pid}) still runs after SIG{signal_name}"
    );
    assert!(
        !ports.iter().any(|port| answers(*port)),
        "something still answers on {ports:?}"
    );
    assert!(!folder.exists(), "{} was left behind", folder.display());
    assert!(
        !dovecot_dir.exists(),
        "{} was left behind",
        dovecot_dir.display()
    );
}

#[test]
fn sigterm_stops_dovecot_and_removes_the_playground_folders() {
    check_then_stop("TERM");
}

#[test]
fn ctrl_c_stops_dovecot_and_removes_the_playground_folders() {
    check_then_stop("INT");
}
