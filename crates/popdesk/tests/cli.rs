//! The `popdesk` command line as users and scripts drive it, against a real Dovecot.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;
use testkit::Dovecot;

const PASSWORD: &str = "pw-never-printed-7731";

fn popdesk(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popdesk"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("SUPPORT_PASSWORD", PASSWORD)
        .env_remove("POPDESK_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run popdesk")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn add_support(data: &Path, dovecot: &Dovecot, extra: &[&str]) -> Output {
    let port = dovecot.pop3s_addr().port().to_string();
    let ca = dovecot.ca_pem_path().display().to_string();
    let mut args = vec![
        "mailbox",
        "add",
        "support",
        "--host",
        dovecot.host(),
        "--port",
        &port,
        "--tls",
        "implicit",
        "--user",
        "support",
        "--password-env",
        "SUPPORT_PASSWORD",
        "--ca-file",
        &ca,
    ];
    args.extend_from_slice(extra);
    popdesk(data, &args)
}

/// Asserts a failure is one clear sentence on stderr: no panic, no backtrace, no secret.
fn assert_clean_failure(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    let stderr = text(&output.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "secret in output: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn add_test_fetch_and_inspect_a_mailbox() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", PASSWORD);
    for i in 0..3 {
        dovecot.deliver(
            "support",
            format!("Message-ID: <cli{i}@example.net>\r\nSubject: {i}\r\n\r\nhi\r\n").as_bytes(),
        );
    }
    let data = TempDir::new().expect("temp dir");

    let added = add_support(data.path(), &dovecot, &["--batch", "2"]);
    assert!(added.status.success(), "{}", text(&added.stderr));

    let tested = popdesk(data.path(), &["mailbox", "test", "support"]);
    assert!(tested.status.success(), "{}", text(&tested.stderr));
    let out = text(&tested.stdout);
    assert!(
        out.contains("3 messages") && out.contains("encrypted"),
        "{out}"
    );
    assert!(out.contains("UIDL"), "{out}");
    assert_eq!(dovecot.message_count("support"), 3, "test changes nothing");

    let fetched = popdesk(data.path(), &["mailbox", "fetch", "support"]);
    assert!(fetched.status.success(), "{}", text(&fetched.stderr));
    let summary = text(&fetched.stdout);
    assert_eq!(summary.trim().lines().count(), 1, "{summary}");
    assert!(
        summary.contains("3 downloaded") && summary.contains("3 deleted"),
        "{summary}"
    );
    assert_eq!(dovecot.message_count("support"), 0);

    let shown = popdesk(data.path(), &["mailbox", "show", "support", "--json"]);
    let show: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("show --json");
    assert_eq!(show["name"], "support");
    assert_eq!(show["batch"], 2);
    assert_eq!(show["last_run"]["outcome"], "success");
    assert!(show["needs_attention"].is_null());

    let listed = popdesk(data.path(), &["mailbox", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("list --json");
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    let runs = popdesk(data.path(), &["mailbox", "runs", "support", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("runs --json");
    assert_eq!(runs[0]["downloaded"], 3);
    assert_eq!(runs[0]["listed"], 3);

    for output in [&added, &tested, &fetched, &shown, &listed] {
        assert!(!text(&output.stdout).contains(PASSWORD));
        assert!(!text(&output.stderr).contains(PASSWORD));
    }
    // The secret is not stored in clear anywhere in the data folder.
    for entry in std::fs::read_dir(data.path()).expect("data dir").flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).expect("read");
            assert!(
                !bytes
                    .windows(PASSWORD.len())
                    .any(|w| w == PASSWORD.as_bytes()),
                "{} holds the password in clear",
                entry.path().display()
            );
        }
    }

    let removed = popdesk(data.path(), &["mailbox", "remove", "support"]);
    assert!(removed.status.success());
    let listed = popdesk(data.path(), &["mailbox", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("list --json");
    assert_eq!(list.as_array().map(Vec::len), Some(0));
}

#[test]
fn a_wrong_password_fails_permanently_in_one_sentence() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", "the-real-password");
    dovecot.deliver("support", b"Subject: x\r\n\r\nx\r\n");
    let data = TempDir::new().expect("temp dir");
    assert!(add_support(data.path(), &dovecot, &[]).status.success());

    let fetched = popdesk(data.path(), &["mailbox", "fetch", "support"]);
    assert_eq!(fetched.status.code(), Some(1), "permanent errors exit 1");
    let stderr = assert_clean_failure(&fetched);
    assert!(stderr.contains("refused the login"), "{stderr}");
    assert_eq!(dovecot.message_count("support"), 1);

    let shown = popdesk(data.path(), &["mailbox", "show", "support", "--json"]);
    let show: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("show --json");
    assert!(
        show["needs_attention"]
            .as_str()
            .is_some_and(|r| r.contains("login"))
    );

    let tested = popdesk(data.path(), &["mailbox", "test", "support"]);
    assert_clean_failure(&tested);
}

#[test]
fn a_server_that_is_down_fails_as_temporary() {
    let data = TempDir::new().expect("temp dir");
    // A port nothing listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = free.local_addr().expect("addr").port().to_string();
    drop(free);
    let added = popdesk(
        data.path(),
        &[
            "mailbox",
            "add",
            "down",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            "u",
            "--password-env",
            "SUPPORT_PASSWORD",
        ],
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let fetched = popdesk(data.path(), &["mailbox", "fetch", "down"]);
    assert_eq!(fetched.status.code(), Some(75), "transient errors exit 75");
    let stderr = text(&fetched.stderr);
    assert!(stderr.contains("could not connect"), "{stderr}");
}

#[test]
fn mistakes_get_one_clear_sentence() {
    let data = TempDir::new().expect("temp dir");
    let missing = popdesk(data.path(), &["mailbox", "fetch", "nope"]);
    let stderr = assert_clean_failure(&missing);
    assert!(stderr.contains("no mailbox named"), "{stderr}");

    // No password source and no terminal to ask on.
    let no_secret = popdesk(
        data.path(),
        &["mailbox", "add", "x", "--host", "127.0.0.1", "--user", "u"],
    );
    let stderr = assert_clean_failure(&no_secret);
    assert!(stderr.contains("--password-env"), "{stderr}");

    let unset = popdesk(
        data.path(),
        &[
            "mailbox",
            "add",
            "x",
            "--host",
            "127.0.0.1",
            "--user",
            "u",
            "--password-env",
            "POPDESK_TEST_UNSET_VARIABLE",
        ],
    );
    let stderr = assert_clean_failure(&unset);
    assert!(stderr.contains("POPDESK_TEST_UNSET_VARIABLE"), "{stderr}");

    let dovecot = Dovecot::start();
    assert!(add_support(data.path(), &dovecot, &[]).status.success());
    let twice = add_support(data.path(), &dovecot, &[]);
    assert_clean_failure(&twice);
}

#[test]
fn fetched_mail_becomes_tickets_that_can_be_read_and_reprocessed() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", PASSWORD);
    let first = b"From: Alice <alice@example.org>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\n\
Message-ID: <p1@example.org>\r\n\r\nIt is on fire.\r\n"
        .to_vec();
    let reply = b"From: Alice <alice@example.org>\r\nTo: support@example.com\r\nSubject: Re: Printer on fire\r\n\
Message-ID: <p2@example.org>\r\nIn-Reply-To: <p1@example.org>\r\n\r\nStill burning.\r\n\r\n\
On Thu, Support wrote:\r\n> It is on fire.\r\n"
        .to_vec();
    let other =
        b"From: bob@example.org\r\nSubject: VPN\r\nMessage-ID: <v1@example.org>\r\n\r\nDown.\r\n"
            .to_vec();
    dovecot.deliver_many("support", [&first, &reply, &other]);
    let data = TempDir::new().expect("temp dir");
    assert!(add_support(data.path(), &dovecot, &[]).status.success());

    let fetched = popdesk(data.path(), &["mailbox", "fetch", "support"]);
    assert!(fetched.status.success(), "{}", text(&fetched.stderr));
    let summary = text(&fetched.stdout);
    assert!(summary.contains("3 to tickets (2 new)"), "{summary}");

    let listed = popdesk(data.path(), &["ticket", "list", "--json"]);
    let tickets: serde_json::Value =
        serde_json::from_slice(&listed.stdout).expect("ticket list --json");
    let tickets = tickets.as_array().expect("an array");
    assert_eq!(tickets.len(), 2);
    let printer = tickets
        .iter()
        .find(|t| t["subject"] == "Printer on fire")
        .expect("the printer ticket");
    assert_eq!(printer["messages"], 2);
    assert_eq!(printer["requester"], "alice@example.org");
    assert_eq!(printer["status"], "new");
    let number = printer["number"].as_i64().expect("a number").to_string();

    let shown = popdesk(data.path(), &["ticket", "show", &number, "--json"]);
    let ticket: serde_json::Value =
        serde_json::from_slice(&shown.stdout).expect("ticket show --json");
    let thread = ticket["thread"].as_array().expect("a thread");
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1]["message_id"], "p2@example.org");
    let reply_text = thread[1]["reply_text"].as_str().expect("reply text");
    assert!(
        reply_text.contains("Still burning") && !reply_text.contains("It is on fire"),
        "{reply_text}"
    );
    let human = text(&popdesk(data.path(), &["ticket", "show", &number]).stdout);
    assert!(
        human.contains("Printer on fire") && human.contains("Still burning"),
        "{human}"
    );

    let open = popdesk(
        data.path(),
        &["ticket", "list", "--status", "open", "--json"],
    );
    let open: serde_json::Value = serde_json::from_slice(&open.stdout).expect("filtered list");
    assert_eq!(open.as_array().map(Vec::len), Some(0));

    let messages = popdesk(data.path(), &["message", "list", "--json"]);
    let messages: serde_json::Value =
        serde_json::from_slice(&messages.stdout).expect("message list --json");
    let messages = messages.as_array().expect("an array");
    assert_eq!(messages.len(), 3);
    assert!(messages.iter().all(|m| m["status"] == "processed"));
    let first_id = messages
        .iter()
        .find(|m| m["message_id"] == "p1@example.org")
        .and_then(|m| m["id"].as_i64())
        .expect("the first message")
        .to_string();

    // The exact stored bytes.
    let raw = popdesk(data.path(), &["message", "raw", &first_id]);
    assert!(raw.status.success());
    assert_eq!(raw.stdout, first);
    let show = text(&popdesk(data.path(), &["message", "show", &first_id]).stdout);
    assert!(
        show.contains("processed") && show.contains(&format!("#{number}")),
        "{show}"
    );

    // Reprocessing changes nothing: still two tickets, the thread still two long.
    let again = popdesk(data.path(), &["message", "reprocess", &first_id]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("0 new tickets"),
        "{}",
        text(&again.stdout)
    );
    let listed = popdesk(data.path(), &["ticket", "list", "--json"]);
    let tickets: serde_json::Value =
        serde_json::from_slice(&listed.stdout).expect("ticket list --json");
    assert_eq!(tickets.as_array().map(Vec::len), Some(2));
    let processed = popdesk(data.path(), &["process"]);
    assert!(
        text(&processed.stdout).contains("0 to tickets"),
        "{}",
        text(&processed.stdout)
    );

    let missing = popdesk(data.path(), &["ticket", "show", "999"]);
    let stderr = assert_clean_failure(&missing);
    assert!(stderr.contains("no ticket #999"), "{stderr}");
}

fn popdesk_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popdesk"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("SUPPORT_PASSWORD", PASSWORD)
        .env_remove("POPDESK_DATABASE_URL")
        .env_remove("POPDESK_SECRET_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run popdesk")
}

/// `popdesk secret rotate` (promise 7): a new key in secret.key, and the mailbox still
/// signs in with its password, now sealed with that key.
#[test]
fn secret_rotate_replaces_the_key_and_every_mailbox_still_signs_in() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", PASSWORD);
    let data = TempDir::new().expect("temp dir");
    let added = add_support(data.path(), &dovecot, &[]);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let key_file = data.path().join("secret.key");
    let old_key = std::fs::read(&key_file).expect("the key file");

    let rotated = popdesk_with_env(data.path(), &["secret", "rotate"], &[]);
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    let said = text(&rotated.stdout);
    assert!(
        said.starts_with("re-sealed 1 secret with a new key in "),
        "{said}"
    );
    assert!(said.contains("restart"), "{said}");
    let new_key = std::fs::read(&key_file).expect("the key file");
    assert_eq!(new_key.len(), 32);
    assert_ne!(new_key, old_key);
    assert!(!data.path().join("secret.key.new").exists());

    let tested = popdesk(data.path(), &["mailbox", "test", "support"]);
    assert!(tested.status.success(), "{}", text(&tested.stderr));
}

/// With the key in POPDESK_SECRET_KEY, popdesk cannot replace it: a bare rotate refuses
/// and says how; `--new-key-env` re-seals with the admin's new key.
#[test]
fn secret_rotate_with_the_key_in_the_environment_needs_the_new_key_from_the_admin() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", PASSWORD);
    let data = TempDir::new().expect("temp dir");
    // base64 of 32 bytes of 1, and of 32 bytes of 2.
    let (old, new) = (
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".to_string(),
        "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=".to_string(),
    );
    let with_old = [("POPDESK_SECRET_KEY", old.as_str())];
    let port = dovecot.pop3s_addr().port().to_string();
    let ca = dovecot.ca_pem_path().display().to_string();
    let added = popdesk_with_env(
        data.path(),
        &[
            "mailbox",
            "add",
            "support",
            "--host",
            dovecot.host(),
            "--port",
            &port,
            "--tls",
            "implicit",
            "--user",
            "support",
            "--password-env",
            "SUPPORT_PASSWORD",
            "--ca-file",
            &ca,
        ],
        &with_old,
    );
    assert!(added.status.success(), "{}", text(&added.stderr));

    let refused = popdesk_with_env(data.path(), &["secret", "rotate"], &with_old);
    let sentence = assert_clean_failure(&refused);
    assert!(
        sentence.contains("POPDESK_SECRET_KEY")
            && sentence.contains("--new-key-env")
            && sentence.contains("head -c 32 /dev/urandom | base64"),
        "{sentence}"
    );
    let bad = popdesk_with_env(
        data.path(),
        &["secret", "rotate", "--new-key-env", "NEW_KEY"],
        &[("POPDESK_SECRET_KEY", &old), ("NEW_KEY", "short")],
    );
    assert!(assert_clean_failure(&bad).contains("NEW_KEY is not the base64 form of 32 bytes"));

    let rotated = popdesk_with_env(
        data.path(),
        &["secret", "rotate", "--new-key-env", "NEW_KEY"],
        &[("POPDESK_SECRET_KEY", &old), ("NEW_KEY", &new)],
    );
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    assert!(
        text(&rotated.stdout).contains("now set POPDESK_SECRET_KEY to that key"),
        "{}",
        text(&rotated.stdout)
    );
    let tested = popdesk_with_env(
        data.path(),
        &["mailbox", "test", "support"],
        &[("POPDESK_SECRET_KEY", &new)],
    );
    assert!(tested.status.success(), "{}", text(&tested.stderr));
    let stale = popdesk_with_env(
        data.path(),
        &["mailbox", "test", "support"],
        &[("POPDESK_SECRET_KEY", &old)],
    );
    assert!(!stale.status.success(), "the old key no longer opens it");
}

/// Team mailboxes from the command line: `user mailboxes EMAIL` says what an agent
/// works, `--set` replaces it by names or ids, and a mailbox that does not exist
/// changes nothing.
#[tokio::test]
async fn user_mailboxes_grants_an_agent_the_mailboxes_they_work() {
    let data = TempDir::new().expect("temp dir");
    let added = popdesk(
        data.path(),
        &[
            "user",
            "add",
            "alex@example.org",
            "--role",
            "agent",
            "--password-env",
            "SUPPORT_PASSWORD",
        ],
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let (support, sales) = {
        let store = store::Store::open(data.path(), None)
            .await
            .expect("open the store");
        let mut ids = Vec::new();
        for name in ["support", "sales"] {
            let settings = store::MailboxSettings {
                name: name.to_string(),
                host: "pop.example.com".into(),
                username: name.to_string(),
                ..store::MailboxSettings::default()
            };
            let secret = secrecy::SecretString::from("secret".to_string());
            ids.push(
                store
                    .add_mailbox(&settings, &secret, 0)
                    .await
                    .expect("add")
                    .id,
            );
        }
        (ids[0], ids[1])
    };

    let shown = popdesk(data.path(), &["user", "mailboxes", "alex@example.org"]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert!(
        text(&shown.stdout).contains("works no mailbox, so they see no tickets"),
        "{}",
        text(&shown.stdout)
    );

    let set = format!("support,{sales}");
    let granted = popdesk(
        data.path(),
        &["user", "mailboxes", "alex@example.org", "--set", &set],
    );
    assert!(granted.status.success(), "{}", text(&granted.stderr));
    assert_eq!(
        text(&granted.stdout).trim(),
        // In the mailbox list's order (by name).
        format!("alex@example.org works: sales (#{sales}), support (#{support})")
    );

    let refused = popdesk(
        data.path(),
        &[
            "user",
            "mailboxes",
            "alex@example.org",
            "--set",
            "sales,nope",
        ],
    );
    assert!(assert_clean_failure(&refused).contains("there is no mailbox \"nope\""));
    let unknown = popdesk(data.path(), &["user", "mailboxes", "nobody@example.org"]);
    assert!(assert_clean_failure(&unknown).contains("there is no user nobody@example.org"));

    let store = store::Store::open(data.path(), None)
        .await
        .expect("open the store");
    let alex = store
        .user_by_email("alex@example.org")
        .await
        .expect("read")
        .expect("alex");
    assert_eq!(
        store.user_mailbox_ids(alex.id).await.expect("read"),
        [support, sales],
        "a refused --set changes nothing"
    );

    let emptied = popdesk(
        data.path(),
        &["user", "mailboxes", "alex@example.org", "--set", ""],
    );
    assert!(emptied.status.success(), "{}", text(&emptied.stderr));
    assert!(
        store
            .user_mailbox_ids(alex.id)
            .await
            .expect("read")
            .is_empty()
    );
}

#[test]
fn ticket_assign_gives_a_ticket_to_a_user_and_none_takes_it_back() {
    let dovecot = Dovecot::start();
    dovecot.add_user("support", PASSWORD);
    let mail = b"From: Alice <alice@example.org>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\n\
Message-ID: <p1@example.org>\r\n\r\nIt is on fire.\r\n"
        .to_vec();
    dovecot.deliver_many("support", [&mail]);
    let data = TempDir::new().expect("temp dir");
    assert!(add_support(data.path(), &dovecot, &[]).status.success());
    assert!(
        popdesk(data.path(), &["mailbox", "fetch", "support"])
            .status
            .success()
    );
    let added = popdesk(
        data.path(),
        &[
            "user",
            "add",
            "ann@example.org",
            "--password-env",
            "SUPPORT_PASSWORD",
        ],
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let listed = popdesk(data.path(), &["ticket", "list", "--json"]);
    let tickets: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let number = tickets[0]["number"].as_i64().expect("a number").to_string();
    assert_eq!(tickets[0]["assignee"], serde_json::Value::Null);

    let assigned = popdesk(
        data.path(),
        &["ticket", "assign", &number, "ann@example.org"],
    );
    assert!(assigned.status.success(), "{}", text(&assigned.stderr));
    assert!(text(&assigned.stdout).contains("now assigned to ann@example.org"));
    let listed = popdesk(data.path(), &["ticket", "list", "--json"]);
    let tickets: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(tickets[0]["assignee"], "ann@example.org");

    let unknown = popdesk(
        data.path(),
        &["ticket", "assign", &number, "bob@example.org"],
    );
    let stderr = assert_clean_failure(&unknown);
    assert!(
        stderr.contains("no user with the address bob@example.org"),
        "{stderr}"
    );
    let neither = popdesk(data.path(), &["ticket", "assign", &number]);
    assert!(!neither.status.success(), "an address or --none is needed");

    let none = popdesk(data.path(), &["ticket", "assign", &number, "--none"]);
    assert!(none.status.success(), "{}", text(&none.stderr));
    assert!(text(&none.stdout).contains("now assigned to nobody"));
    let listed = popdesk(data.path(), &["ticket", "list", "--json"]);
    let tickets: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(tickets[0]["assignee"], serde_json::Value::Null);
}
