//! Server certificates made the way admins really make them: with the `openssl` command.
//!
//! The common recipe for a quick Dovecot certificate is `openssl req -x509`, and
//! OpenSSL's default config marks the result CA:TRUE, which is exactly what trips up
//! clients. Certificates from rcgen can be made to look alike, but only the real command
//! proves the client copes with what admins deploy.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ca::ServerCert;

/// How long one `openssl` run may take before the test fails.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(20);

impl ServerCert {
    /// A fresh self-signed P-256 certificate for `localhost` and `127.0.0.1`, valid for
    /// 30 days, made by the real `openssl req -x509` with the system's default config
    /// (which marks it CA:TRUE on Debian):
    ///
    /// ```text
    /// openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    ///     -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    ///     -keyout server.key -out server.pem
    /// ```
    ///
    /// # Panics
    /// If `openssl` is missing (run `scripts/install-test-deps`) or fails.
    pub fn openssl_self_signed() -> ServerCert {
        let dir = tempfile::tempdir().expect("testkit: a temp dir for openssl");
        let key = dir.path().join("server.key");
        let cert = dir.path().join("server.pem");
        let mut command = Command::new(openssl_bin());
        command
            .args(["req", "-x509", "-newkey", "ec"])
            .args([
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "30",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert);
        run(command);
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("testkit: read {}: {e}", path.display()))
        };
        ServerCert {
            cert_pem: read(&cert),
            key_pem: read(&key),
        }
    }
}

/// The certificate a TLS server at `addr` presents, PEM, as `openssl s_client` sees it:
/// a check independent of the client under test.
pub(crate) fn served_certificate_pem(addr: SocketAddr) -> Option<String> {
    let mut command = Command::new(openssl_bin());
    command
        .args(["s_client", "-connect", &addr.to_string()])
        .args(["-servername", "localhost"]);
    let output = run_allowing_failure(command);
    let begin = output.find("-----BEGIN CERTIFICATE-----")?;
    let end = output[begin..].find("-----END CERTIFICATE-----")? + begin;
    Some(format!(
        "{}-----END CERTIFICATE-----\n",
        &output[begin..end]
    ))
}

/// Whether two PEM texts hold the same bytes, whatever their line breaks.
pub(crate) fn same_pem(a: &str, b: &str) -> bool {
    let squeeze = |text: &str| text.split_whitespace().collect::<String>();
    squeeze(a) == squeeze(b)
}

/// The `openssl` command: from `PATH`, else Debian's `/usr/bin/openssl`.
pub fn openssl_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("openssl"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("testkit: openssl is not installed; run scripts/install-test-deps")
        })
}

fn run(command: Command) {
    let (ok, output) = run_bounded(command);
    assert!(ok, "testkit: openssl failed:\n{output}");
}

fn run_allowing_failure(command: Command) -> String {
    run_bounded(command).1
}

/// Runs `command` with no input, for at most [`OPENSSL_TIMEOUT`]; whether it succeeded,
/// and its stdout followed by its stderr.
fn run_bounded(mut command: Command) -> (bool, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("testkit: run openssl: {e}"));
    let deadline = Instant::now() + OPENSSL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("testkit: openssl did not finish within {OPENSSL_TIMEOUT:?}");
            }
            Err(e) => panic!("testkit: wait for openssl: {e}"),
        }
    };
    // The outputs are a few kilobytes, well within a pipe's buffer, so reading after the
    // exit cannot have blocked the child.
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut output);
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut output);
    }
    (status.success(), output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_openssl_certificate_is_new_and_comes_with_its_key() {
        let first = ServerCert::openssl_self_signed();
        let second = ServerCert::openssl_self_signed();
        assert!(!same_pem(&first.cert_pem, &second.cert_pem));
        assert!(first.key_pem.contains("PRIVATE KEY"), "{}", first.key_pem);
        assert!(!first.cert_der().is_empty());
    }

    #[test]
    fn pem_texts_compare_by_content_not_line_breaks() {
        assert!(same_pem(
            "-----BEGIN X-----\nAB\nCD\n",
            "-----BEGIN X-----\nABCD"
        ));
        assert!(!same_pem("AB", "AC"));
    }
}
