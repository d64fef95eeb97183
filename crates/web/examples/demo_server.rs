//! The API on a throwaway store with a little data in it, for trying the API by hand and
//! for schemathesis (`cargo run -p web --example demo_server -- 127.0.0.1:8090`). Prints
//! an admin API token; everything is forgotten when it stops.

use std::net::SocketAddr;
use std::sync::Arc;

use intake::{Processor, ProcessorConfig, SystemClock};
use secrecy::SecretString;
use store::{MailboxSettings, NewRawMessage, RawStatus, Role, Store};
use tokio::io::AsyncWriteExt as _;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_string())
        .parse()?;
    let data = tempfile::TempDir::new()?;
    let store = Store::open(data.path(), None).await?;
    let now = 1_800_000_000_000;

    let hash = web::hash_password("demo password 1")?;
    store
        .create_user(
            "admin@example.com",
            Some("Demo Admin"),
            Role::Admin,
            &hash,
            now,
        )
        .await?;
    let token = seed_token(&store, now).await?;

    let settings = MailboxSettings {
        name: "support".into(),
        host: "127.0.0.1".into(),
        port: 1,
        username: "support@example.com".into(),
        enabled: false,
        ..MailboxSettings::default()
    };
    let mailbox = store
        .add_mailbox(&settings, &SecretString::from("x".to_string()), now)
        .await?;
    let mail = "From: Alice <alice@example.com>\r\nTo: support@example.com\r\n\
Subject: Printer on fire\r\nMessage-ID: <demo@example.com>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n\
It burns.\r\n--B\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"a.pdf\"\r\n\r\n%PDF-1.4\r\n--B--\r\n";
    let mut writer = store.blobs().writer().await?;
    writer.write_all(mail.as_bytes()).await?;
    let blob = writer.finish().await?;
    let item = NewRawMessage {
        uid: None,
        sha256: blob.sha256.clone(),
        size: blob.size,
        server_size: Some(blob.size),
        message_id: intake::message_id(mail.as_bytes()),
        status: RawStatus::Stored,
    };
    store.blobs().persist(vec![blob]).await?;
    store.commit_batch(mailbox.id, &[item], now).await?;
    Processor::new(
        store.clone(),
        Arc::new(SystemClock),
        ProcessorConfig::default(),
    )
    .process_pending()
    .await?;

    let clock = Arc::new(SystemClock);
    let processor = Processor::new(store.clone(), clock.clone(), ProcessorConfig::default());
    let fetcher = intake::Fetcher::new(store.clone(), clock.clone()).with_processor(processor);
    let (scheduler, handle) = intake::schedule::Scheduler::new(
        store.clone(),
        fetcher,
        clock,
        intake::schedule::SchedulerConfig::default(),
    );
    tokio::spawn(scheduler.run(tokio_util::sync::CancellationToken::new()));
    let state = web::AppState::new(store, web::WebConfig::default())
        .with_scheduler(handle)
        .with_metrics(web::install_metrics_recorder());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("serving http://{listen}/ ; admin token: {token}");
    axum::serve(
        listener,
        web::app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// An admin API token, made as the API makes them.
async fn seed_token(store: &Store, now: i64) -> Result<String, Box<dyn std::error::Error>> {
    let token = web::auth::token::new_token()?;
    store
        .create_api_token(
            "demo",
            Role::Admin,
            &token.hash,
            &token.prefix,
            None,
            now,
            None,
        )
        .await?;
    Ok(token.secret)
}
