//! `popdesk serve`: the web service, the scheduler and the processor in one process.
//!
//! Shutdown (SIGTERM or Ctrl-C) cancels one token. The HTTP server stops accepting and
//! finishes the requests in flight; the scheduler cancels its fetches, which stop at a
//! safe point (nothing half-stored, nothing deleted that is not committed) and are
//! recorded as cancelled; then the database is closed. A second signal, or a shutdown
//! that takes longer than [`SHUTDOWN_GRACE`], ends the process at once: what is committed
//! is safe, and the server keeps every message whose deletion was not committed.
//!
//! The scheduler and the processor run under [`supervise`]: when one of their tasks ends
//! unexpectedly (a panic, an early return) the cause is logged, `/healthz` answers 503
//! naming it, and it is started again with backoff. Shutdown stops them for good.
//!
//! Test fault: with `POPDESK_TEST_PANIC_SCHEDULER=after-first-run` in the environment
//! the scheduler's task panics once, as soon as its first fetch run has finished, so a
//! test can watch it being restarted (`crates/popdesk/tests/serve.rs`). Nothing else
//! reads that variable, and popdesk says at start-up when it is set.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use intake::schedule::{Scheduler, SchedulerConfig, SchedulerHandle};
use intake::supervise::{RestartPolicy, supervise};
use intake::{Clock as _, Fetcher, HealthBoard, SystemClock};
use store::Store;
use tokio_util::sync::CancellationToken;

use crate::config::{Common, ConnectionLimits, Service};

/// How long a clean shutdown may take before the process ends anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How often stored messages that wait for processing are looked for, besides after
/// every fetch batch (reprocess requests and messages stored by `mailbox fetch
/// --no-process` are picked up this way).
const PROCESS_EVERY: Duration = Duration::from_secs(5);

/// How often expired sign-in sessions are forgotten.
const SESSION_CLEANUP_EVERY: Duration = Duration::from_secs(3600);

/// The test fault described in the module's documentation.
const PANIC_SCHEDULER_VAR: &str = "POPDESK_TEST_PANIC_SCHEDULER";
const PANIC_SCHEDULER_AFTER_FIRST_RUN: &str = "after-first-run";

pub async fn run(store: Store, common: &Common, service: Service) -> anyhow::Result<ExitCode> {
    let metrics = web::install_metrics_recorder();
    // The # HELP lines of the fetch metrics, so /metrics explains itself.
    intake::schedule::metrics::describe();
    intake::supervise::describe_metrics();
    oauth::describe_metrics();
    let clock = Arc::new(SystemClock);
    let processor = crate::commands::tickets::processor(&store, common);
    let shutdown = CancellationToken::new();
    let fetcher = Fetcher::new(store.clone(), clock.clone())
        .with_processor(processor.clone())
        .with_lease_ttl(service.lease_ttl);
    let (scheduler, handle) = Scheduler::new(
        store.clone(),
        fetcher,
        clock,
        SchedulerConfig {
            max_concurrent: service.max_concurrent_fetches,
            backoff_max: service.backoff_max,
            ..SchedulerConfig::default()
        },
    );
    let web_config = web::WebConfig {
        secure_cookies: service.secure_cookies,
        session_ttl: service.session_ttl,
        session_idle_timeout: service.session_idle_timeout,
        metrics_public: service.metrics_public,
        trusted_origins: service.trusted_origins.clone(),
        trusted_proxies: service.trusted_proxies.clone(),
        public_url: service.public_url.clone(),
        ..web::WebConfig::default()
    };
    let health = HealthBoard::new();
    let outgoing = common
        .outgoing(&store)
        .with_public_url(service.public_url.as_ref().map(web::PublicUrl::as_str));
    let state = web::AppState::new(store.clone(), web_config)
        .with_outgoing(outgoing.clone())
        .with_scheduler(handle.clone())
        .with_metrics(metrics)
        .with_health(health.clone());
    let state_setup_code = state.setup_code().clone();
    let app = web::app(state);

    let listener = tokio::net::TcpListener::bind(service.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is another popdesk (or another program) using it? choose another with --listen",
                service.listen
            )
        })?;
    let address = listener.local_addr().unwrap_or(service.listen);
    tracing::info!(%address, data = %common.data.display(), "popdesk is serving on http://{address}/");
    announce_setup_code(&store, &state_setup_code, address).await?;

    let scheduler_task = tokio::spawn(supervise(
        "scheduler",
        health.clone(),
        RestartPolicy::default(),
        shutdown.clone(),
        scheduler_runs(scheduler, handle, shutdown.clone()),
    ));
    let processing_task = tokio::spawn(supervise(
        "processor",
        health.clone(),
        RestartPolicy::default(),
        shutdown.clone(),
        {
            let shutdown = shutdown.clone();
            move || process_loop(processor.clone(), shutdown.clone())
        },
    ));
    let sending_task = tokio::spawn(supervise(
        "sender",
        health.clone(),
        RestartPolicy::default(),
        shutdown.clone(),
        {
            let shutdown = shutdown.clone();
            move || {
                let outgoing = outgoing.clone();
                let shutdown = shutdown.clone();
                async move { outgoing.run(shutdown.cancelled_owned()).await }
            }
        },
    ));
    let cleanup_task = tokio::spawn(session_cleanup(
        store.clone(),
        i64::try_from(service.session_idle_timeout.as_millis()).unwrap_or(i64::MAX),
        shutdown.clone(),
    ));
    tokio::spawn(wait_for_signals(shutdown.clone()));

    serve_connections(listener, app, &service.connections, shutdown.clone()).await;
    // The server also ends when its listener fails; everything else stops with it.
    shutdown.cancel();
    let stopped = tokio::time::timeout(SHUTDOWN_GRACE, async {
        // The supervisors log what their parts did; they only fail if they panic.
        for (part, task) in [
            ("scheduler", scheduler_task),
            ("processor", processing_task),
            ("sender", sending_task),
            ("session cleanup", cleanup_task),
        ] {
            if let Err(error) = task.await {
                tracing::error!(part, %error, "a background task failed while stopping");
            }
        }
    })
    .await;
    if stopped.is_err() {
        tracing::warn!(
            "shutdown took longer than {}s; stopping now (committed mail is safe, uncommitted mail stays on the server)",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    store.close().await;
    tracing::info!("popdesk stopped");
    Ok(ExitCode::SUCCESS)
}

/// Accepts and serves HTTP connections until `shutdown`, then lets the open ones finish.
///
/// Not `axum::serve`: it runs hyper without a timer, so a client that sends its
/// headers a byte every few seconds (or opens a connection and says nothing) holds it
/// for ever, and a few hundred such clients hold the service. Here hyper has a timer and
/// a header-read timeout, which also ends keep-alive connections that sit idle (waiting
/// for the next request is waiting for its headers), and at most
/// `max_connections` are served at once; more wait in the listen queue.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: &ConnectionLimits,
    shutdown: CancellationToken,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_timeout))
        .keep_alive_timeout(limits.header_timeout);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut warned_full = false;
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // never closed
            },
        };
        if slots.available_permits() == 0 && !warned_full {
            warned_full = true;
            tracing::warn!(
                max_connections = limits.max_connections,
                "every connection slot is taken; new connections wait until one frees (raise max_connections if this is normal load)"
            );
        }
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(%error, "could not accept a connection; trying again shortly");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if slots.available_permits() > limits.max_connections / 2 {
            warned_full = false;
        }
        let service = app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Timeouts and clients hanging up land here; nothing for an admin.
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish in time; closing them");
    }
}

/// What [`supervise`] starts for the scheduler: a run of the same scheduler each time,
/// so the web's handle keeps working across restarts. Carries the test fault.
fn scheduler_runs(
    scheduler: Scheduler,
    handle: SchedulerHandle,
    shutdown: CancellationToken,
) -> impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    let fault = Arc::new(AtomicBool::new(panic_scheduler_requested()));
    move || {
        let run = scheduler.clone().run(shutdown.clone());
        if !fault.swap(false, Ordering::SeqCst) {
            return Box::pin(run);
        }
        let handle = handle.clone();
        Box::pin(async move {
            let started_at = SystemClock.now_ms();
            tokio::select! {
                () = run => {}
                () = first_run_finished(&handle, started_at) => {
                    panic!("{PANIC_SCHEDULER_VAR}={PANIC_SCHEDULER_AFTER_FIRST_RUN}: the scheduler panics once, as the test asked");
                }
            }
        })
    }
}

/// Whether the test fault is asked for; says so, since it makes popdesk misbehave.
fn panic_scheduler_requested() -> bool {
    match std::env::var(PANIC_SCHEDULER_VAR) {
        Ok(value) if value == PANIC_SCHEDULER_AFTER_FIRST_RUN => {
            tracing::warn!(
                "{PANIC_SCHEDULER_VAR} is set: the scheduler will panic once after its first fetch run (a test fault)"
            );
            true
        }
        Ok(value) => {
            tracing::warn!(
                value,
                "{PANIC_SCHEDULER_VAR} is set to an unknown value and ignored (the test fault is `{PANIC_SCHEDULER_AFTER_FIRST_RUN}`)"
            );
            false
        }
        Err(_) => false,
    }
}

/// Returns once a fetch run started at or after `since` (ms) has finished.
async fn first_run_finished(handle: &SchedulerHandle, since: i64) {
    loop {
        let finished = handle.statuses().iter().any(|schedule| {
            schedule.state != intake::ScheduleState::Running
                && schedule.last_poll_at.is_some_and(|at| at >= since)
        });
        if finished {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first SIGTERM or Ctrl-C starts a clean shutdown; a second one ends the process.
async fn wait_for_signals(shutdown: CancellationToken) {
    let mut terminate = match tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::terminate(),
    ) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops popdesk cleanly");
            None
        }
    };
    let first = next_signal(&mut terminate).await;
    tracing::info!(
        signal = first,
        "shutting down: fetches stop at a safe point"
    );
    shutdown.cancel();
    let second = next_signal(&mut terminate).await;
    tracing::warn!(signal = second, "second signal: stopping now");
    std::process::exit(1);
}

async fn next_signal(terminate: &mut Option<tokio::signal::unix::Signal>) -> &'static str {
    match terminate {
        Some(terminate) => tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
        },
        None => {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

async fn process_loop(processor: intake::Processor, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(PROCESS_EVERY) => {}
        }
        match processor.process_pending().await {
            Ok(report) if report.processed + report.ignored + report.failed > 0 => {
                tracing::info!(
                    processed = report.processed,
                    ignored = report.ignored,
                    failed = report.failed,
                    "processed waiting messages"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "processing waiting messages failed; will retry"),
        }
    }
}

async fn session_cleanup(store: Store, idle_timeout_ms: i64, shutdown: CancellationToken) {
    loop {
        let now = intake::Clock::now_ms(&SystemClock);
        if let Err(error) = store.delete_expired_sessions(now, idle_timeout_ms).await {
            tracing::warn!(%error, "could not remove expired sessions");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SESSION_CLEANUP_EVERY) => {}
        }
    }
}

/// While no user exists: the one-time setup code, in the log and (0600) in the data
/// folder's `setup-code` for an admin who missed the log. Once someone exists, a file
/// left from an earlier start is removed.
async fn announce_setup_code(
    store: &store::Store,
    code: &web::SetupCode,
    address: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let data_dir = store.data_dir();
    if store.count_users().await? > 0 {
        if let Err(error) = web::auth::setup_code::remove_file(data_dir) {
            tracing::warn!(%error, "could not remove the old setup code file {}; delete it", data_dir.join(web::SETUP_CODE_FILE).display());
        }
        return Ok(());
    }
    let file = data_dir.join(web::SETUP_CODE_FILE);
    let written = code.write_file(data_dir);
    tracing::warn!(
        setup_code = %code.display(),
        "no user exists yet. setup code: {} (one-time; it is also in {}). Open http://{address}/setup and type it to create the first admin, or run `popdesk user add EMAIL --role admin`",
        code.display(),
        file.display(),
    );
    if let Err(error) = written {
        tracing::warn!(%error, "could not write the setup code to {}; copy it from the line above", file.display());
    }
    Ok(())
}
