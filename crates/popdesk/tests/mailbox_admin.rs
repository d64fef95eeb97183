//! Mailbox administration has one set of rules (issue #10): the JSON API, the web UI and
//! the command line refuse the same bad input alike; a stored secret only goes where it
//! was first meant to go (the secret rule); a self-signed server can be trusted by its
//! fingerprint or its own certificate, and a changed certificate is refused.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{PASSWORD, Popdesk};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// The web service in process on a data folder, signed in as an admin.
struct Web {
    app: axum::Router,
    cookie: String,
    csrf: String,
}

struct Reply {
    status: StatusCode,
    body: String,
}

impl Web {
    async fn start(data: &std::path::Path) -> Web {
        let store = store::Store::open(data, None)
            .await
            .expect("open the store");
        let hash = web::hash_password_with(
            ADMIN_PASSWORD,
            web::PasswordCost {
                memory_kib: 64,
                passes: 1,
                lanes: 1,
            },
        )
        .expect("hash");
        store
            .create_user(ADMIN, None, store::Role::Admin, &hash, 0)
            .await
            .expect("admin");
        let app = web::app(web::AppState::new(store, web::WebConfig::default()));
        let mut web = Web {
            app,
            cookie: String::new(),
            csrf: String::new(),
        };
        let request = Request::post("/api/v1/session")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"email": ADMIN, "password": ADMIN_PASSWORD}).to_string(),
            ))
            .expect("request");
        let response = web.send_raw(request).await;
        let cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_string();
        web.cookie = cookie;
        let form = web.get("/mailboxes/new").await;
        web.csrf = form
            .body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the form token")
            .to_string();
        web
    }

    async fn send_raw(&self, mut request: Request<Body>) -> axum::response::Response {
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        self.app.clone().oneshot(request).await.expect("infallible")
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.send_raw(request).await;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        let request = Request::get(uri)
            .header(header::COOKIE, &self.cookie)
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    async fn api(&self, method: &str, uri: &str, body: Value) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, &self.cookie)
            .header("sec-fetch-site", "same-origin")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send(request).await
    }

    async fn form(&self, uri: &str, fields: &[(&str, &str)]) -> Reply {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let body = serde_urlencoded_pairs(&all);
        let request = Request::post(uri)
            .header(header::COOKIE, &self.cookie)
            .header("sec-fetch-site", "same-origin")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request");
        self.send(request).await
    }
}

fn serde_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                b => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One bad input, as each adapter takes it, and what every adapter must say.
struct Case {
    what: &'static str,
    api: Value,
    ui: (&'static str, &'static str),
    cli: [&'static str; 2],
    /// The API's field, the UI's input id, the CLI's flag.
    field: (&'static str, &'static str, &'static str),
    /// The service's words, which every adapter passes on.
    problem: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "blank host",
            api: json!({"host": " "}),
            ui: ("host", " "),
            cli: ["--host", " "],
            field: ("host", "host", "--host"),
            problem: "must be a host name or an IP address",
        },
        Case {
            what: "batch 0",
            api: json!({"batch_messages": 0}),
            ui: ("batch_messages", "0"),
            cli: ["--batch", "0"],
            field: ("batch_messages", "batch_messages", "--batch"),
            problem: "must be between 1 and 100000",
        },
        Case {
            what: "batch over the limit",
            api: json!({"batch_messages": 100_001}),
            ui: ("batch_messages", "100001"),
            cli: ["--batch", "100001"],
            field: ("batch_messages", "batch_messages", "--batch"),
            problem: "must be between 1 and 100000",
        },
        Case {
            what: "max size 0",
            api: json!({"max_size": 0}),
            ui: ("max_size", "0"),
            cli: ["--max-size", "0"],
            field: ("max_size", "max_size", "--max-size"),
            problem: "must be at least 1",
        },
        Case {
            what: "unknown auth method",
            api: json!({"auth_method": "kerberos"}),
            ui: ("auth_method", "kerberos"),
            cli: ["--auth", "kerberos"],
            field: ("auth_method", "auth_method", "--auth"),
            problem: "must be one of: auto, user, apop, plain, login, cram-md5, xoauth2, oauthbearer",
        },
        Case {
            what: "port 0",
            api: json!({"port": 0}),
            ui: ("port", "0"),
            cli: ["--port", "0"],
            field: ("port", "port", "--port"),
            problem: "must be between 1 and 65535",
        },
        Case {
            what: "interval out of range",
            api: json!({"poll_interval_secs": 5}),
            ui: ("poll_interval_secs", "5"),
            cli: ["--poll-interval", "5"],
            field: (
                "poll_interval_secs",
                "poll_interval_secs",
                "--poll-interval",
            ),
            problem: "must be between 10 and 86400",
        },
    ]
}

#[tokio::test]
async fn the_api_the_ui_and_the_cli_refuse_the_same_bad_input_alike() {
    let dir = tempfile::tempdir().expect("temp dir");
    let web = Web::start(dir.path()).await;
    let cli = Popdesk::new(dir.path());
    for case in cases() {
        // The API: 422 naming the field, in the service's words.
        let mut body = json!({
            "name": "support", "host": "127.0.0.1", "port": 1, "tls": "none",
            "allow_insecure_auth": true, "username": "support", "password": "secret",
        });
        for (key, value) in case.api.as_object().expect("object") {
            body[key] = value.clone();
        }
        let reply = web.api("POST", "/api/v1/mailboxes", body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}: {}",
            case.what,
            reply.body
        );
        let error: Value = serde_json::from_str(&reply.body).expect("json");
        assert_eq!(error["error"]["field"], case.field.0, "{}", case.what);
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(case.problem),
            "{}: API said {message:?}",
            case.what
        );

        // The UI: the form comes back with the sentence and the field marked.
        let mut fields = vec![
            ("preset", "generic"),
            ("name", "support"),
            ("host", "127.0.0.1"),
            ("port", "1"),
            ("tls", "none"),
            ("allow_insecure_auth", "true"),
            ("username", "support"),
            ("password", "secret"),
            ("save_anyway", "enabled"),
        ];
        fields.retain(|(name, _)| *name != case.ui.0);
        fields.push(case.ui);
        let reply = web.form("/mailboxes", &fields).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            case.what
        );
        assert!(
            reply.body.contains(case.problem),
            "{}: the form does not say {:?}",
            case.what,
            case.problem,
        );
        let marked = format!("id=\"{}\" aria-invalid=\"true\"", case.field.1);
        assert!(
            reply.body.contains(&marked),
            "{}: {marked} missing",
            case.what
        );
        assert!(
            !reply.body.contains("value=\"secret\""),
            "the password is never written back"
        );

        // The CLI: one sentence naming the flag, exit 1.
        let mut options = vec![
            ["--host", "127.0.0.1"],
            ["--port", "1"],
            ["--tls", "none"],
            ["--user", "support"],
            ["--password-env", common::PASSWORD_VAR],
        ];
        options.retain(|[flag, _]| *flag != case.cli[0]);
        options.push(case.cli);
        let mut args = vec!["mailbox", "add", "support", "--allow-insecure-auth"];
        args.extend(options.into_iter().flatten());
        let done = cli.run(&args);
        assert_eq!(
            done.status.code(),
            Some(1),
            "{}: {}",
            case.what,
            done.stderr
        );
        assert!(
            done.stderr.contains(case.field.2) && done.stderr.contains(case.problem),
            "{}: the CLI said {:?}",
            case.what,
            done.stderr
        );
    }
    let store = store::Store::open(dir.path(), None).await.expect("store");
    assert!(
        store.mailboxes().await.expect("list").is_empty(),
        "nothing was stored"
    );
}

/// A hand-written POP3 server (a real one would not tell us which passwords it was sent)
/// that records every PASS it receives and refuses it.
struct PasswordRecorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl PasswordRecorder {
    fn start() -> PasswordRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut writer = match stream.try_clone() {
                        Ok(w) => w,
                        Err(_) => return,
                    };
                    let _ = writer.write_all(b"+OK recorder ready\r\n");
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { return };
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("CAPA") {
                            b"+OK\r\nUSER\r\n.\r\n"
                        } else if upper.starts_with("USER") {
                            b"+OK\r\n"
                        } else if upper.starts_with("PASS ") {
                            record.lock().expect("lock").push(line[5..].to_string());
                            b"-ERR [AUTH] no\r\n"
                        } else if upper.starts_with("QUIT") {
                            let _ = writer.write_all(b"+OK\r\n");
                            return;
                        } else {
                            b"-ERR unknown\r\n"
                        };
                        if writer.write_all(reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        PasswordRecorder { addr, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

#[tokio::test]
async fn a_stored_secret_is_never_sent_to_a_server_it_was_not_meant_for() {
    let dir = tempfile::tempdir().expect("temp dir");
    let web = Web::start(dir.path()).await;
    let first = PasswordRecorder::start();
    let second = PasswordRecorder::start();
    let created = web
        .api(
            "POST",
            "/api/v1/mailboxes",
            json!({
                "name": "support", "host": "127.0.0.1", "port": first.addr.port(),
                "tls": "none", "allow_insecure_auth": true, "auth_method": "user",
                "username": "support", "password": "original-secret",
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = serde_json::from_str::<Value>(&created.body).expect("json")["id"]
        .as_i64()
        .expect("id");

    // The API: another port without the secret is refused, naming the field.
    let moved = web
        .api(
            "PATCH",
            &format!("/api/v1/mailboxes/{id}"),
            json!({"port": second.addr.port()}),
        )
        .await;
    assert_eq!(
        moved.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        moved.body
    );
    let error: Value = serde_json::from_str(&moved.body).expect("json");
    assert_eq!(error["error"]["field"], "port");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("needs the password or token again"),
        "{error}"
    );

    // The UI: the edit form with a new port and a blank password is refused alike.
    let port = second.addr.port().to_string();
    let edit = web
        .form(
            &format!("/mailboxes/{id}"),
            &[
                ("name", "support"),
                ("host", "127.0.0.1"),
                ("port", &port),
                ("tls", "none"),
                ("allow_insecure_auth", "true"),
                ("auth_method", "user"),
                ("username", "support"),
                ("password", ""),
                ("policy", "delete"),
                ("start", "all"),
                ("batch_messages", "50"),
                ("max_size", "25000000"),
                ("poll_interval_secs", "60"),
                ("enabled", "true"),
            ],
        )
        .await;
    assert_eq!(
        edit.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        edit.body
    );
    assert!(
        edit.body.contains("needs the password again"),
        "the form says why"
    );

    // A connection test still goes where the secret was meant to go.
    let test = web
        .api("POST", &format!("/api/v1/mailboxes/{id}/test"), json!({}))
        .await;
    assert_eq!(test.status, StatusCode::OK, "{}", test.body);
    wait_for(|| !first.seen().is_empty());
    assert_eq!(first.seen(), vec!["original-secret".to_string()]);
    assert!(second.seen().is_empty(), "no PASS reached the other server");

    // With the secret typed again the change is accepted, and only that secret goes there.
    let moved = web
        .api(
            "PATCH",
            &format!("/api/v1/mailboxes/{id}"),
            json!({"port": second.addr.port(), "password": "typed-again"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let test = web
        .api("POST", &format!("/api/v1/mailboxes/{id}/test"), json!({}))
        .await;
    assert_eq!(test.status, StatusCode::OK, "{}", test.body);
    wait_for(|| !second.seen().is_empty());
    assert_eq!(second.seen(), vec!["typed-again".to_string()]);
    assert!(
        !second.seen().contains(&"original-secret".to_string()),
        "the stored secret never reached the new server"
    );
}

fn wait_for(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_self_signed_ca_true_server_is_trusted_by_fingerprint_or_its_own_certificate() {
    let cert = testkit::ServerCert::openssl_self_signed();
    let dovecot = testkit::Dovecot::builder()
        .server_cert(cert.clone())
        .start();
    dovecot.add_user(common::USER, PASSWORD);
    let fingerprint = pop3::CertFingerprint::of(cert.cert_der().as_ref()).to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let cli = Popdesk::new(dir.path());
    let port = dovecot.pop3s_addr().port().to_string();
    let add = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "mailbox",
            "add",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--tls",
            "implicit",
            "--user",
            common::USER,
            "--password-env",
            common::PASSWORD_VAR,
        ];
        args.extend(extra);
        cli.run_ok(&args);
    };

    // By default: refused, and the refusal shows the fingerprint to compare.
    add("plain", &[]);
    let refused = cli.run(&["mailbox", "test", "plain"]);
    assert!(!refused.status.success());
    assert!(refused.stderr.contains(&fingerprint), "{}", refused.stderr);

    // Pinned by fingerprint (as openssl prints it, or plain hex): accepted.
    add(
        "pinned",
        &[
            "--trust-fingerprint",
            &fingerprint.replace(':', "").to_lowercase(),
        ],
    );
    cli.run_ok(&["mailbox", "test", "pinned"]);
    let shown = cli.show("pinned");
    assert_eq!(shown["trusted_certificate"], fingerprint.as_str());

    // Its own certificate as the CA file: accepted, CA:TRUE or not.
    let pem = dovecot.server_cert_pem_path().display().to_string();
    add("own-cert", &["--ca-file", &pem]);
    cli.run_ok(&["mailbox", "test", "own-cert"]);

    // The server switches to another self-signed certificate: refused, naming both.
    let other = testkit::ServerCert::openssl_self_signed();
    let new_fingerprint = pop3::CertFingerprint::of(other.cert_der().as_ref()).to_string();
    dovecot.replace_server_cert(&other);
    let changed = cli.run(&["mailbox", "test", "pinned"]);
    assert!(!changed.status.success());
    assert!(
        changed.stderr.contains(&fingerprint) && changed.stderr.contains(&new_fingerprint),
        "{}",
        changed.stderr
    );

    // Trusting the new one needs the password again (the secret rule), then works.
    let no_secret = cli.run(&[
        "mailbox",
        "update",
        "pinned",
        "--trust-fingerprint",
        &new_fingerprint,
    ]);
    assert_eq!(no_secret.status.code(), Some(1));
    assert!(
        no_secret.stderr.contains("needs the password again"),
        "{}",
        no_secret.stderr
    );
    cli.run_ok(&[
        "mailbox",
        "update",
        "pinned",
        "--trust-fingerprint",
        &new_fingerprint,
        "--password-env",
        common::PASSWORD_VAR,
    ]);
    cli.run_ok(&["mailbox", "test", "pinned"]);
}
