//! The outbox sender: works the queued messages over one reused SMTP connection per
//! mailbox, and records for each what the server said (promise 8).
//!
//! - Accepted: sent.
//! - A 4xx, the network, a timeout: tried again with growing pauses until `retry_for`
//!   after it was queued (default 24 h), then failed with the last words.
//! - A 5xx: failed at once, with the server's words; "Send again" queues it once more.
//!
//! A message is claimed before it is sent and its result recorded right after, so a
//! sender that dies between the server's acceptance and the record leaves the one
//! unavoidable window: the identical bytes (same Message-ID) go out again once the claim
//! runs out, which mail clients fold into one.

use std::collections::BTreeMap;
use std::time::Duration;

use store::{OutboxMessage, Store, StoreError};

use crate::acknowledge::Acknowledger;
use crate::now_ms;
use crate::smtp::{Failure, SmtpSession, SmtpTarget, SmtpTimeouts};

/// How the sender behaves.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Temporary failures are retried until this long after the message was queued.
    pub retry_for: Duration,
    /// The pause after the first temporary failure; it doubles after each one.
    pub first_retry: Duration,
    /// The longest pause between two attempts.
    pub max_retry: Duration,
    /// Messages claimed at a time.
    pub batch: u32,
    /// How long a claim keeps other senders off a message: longer than one batch can
    /// take, so a live sender never loses its claim mid-send.
    pub claim: Duration,
    pub timeouts: SmtpTimeouts,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            retry_for: Duration::from_secs(24 * 3600),
            first_retry: Duration::from_secs(60),
            max_retry: Duration::from_secs(3600),
            batch: 50,
            claim: Duration::from_secs(15 * 60),
            timeouts: SmtpTimeouts::default(),
        }
    }
}

/// What one pass over the outbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendReport {
    pub sent: u64,
    /// Temporary failures, queued for a later attempt.
    pub retrying: u64,
    pub failed: u64,
    /// SMTP connections opened.
    pub connections: u64,
}

impl SendReport {
    fn add(&mut self, other: SendReport) {
        self.sent += other.sent;
        self.retrying += other.retrying;
        self.failed += other.failed;
        self.connections += other.connections;
    }
}

/// Sends what the outbox holds.
#[derive(Clone)]
pub struct Sender {
    store: Store,
    config: SenderConfig,
    /// Access tokens for mailboxes that send with OAuth2.
    oauth: oauth::Connections,
}

impl Sender {
    pub fn new(store: Store, config: SenderConfig) -> Sender {
        Sender {
            oauth: oauth::Connections::new(store.clone()),
            store,
            config,
        }
    }

    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// One pass: queues wanted acknowledgements, then sends every message due now.
    /// `Err` only when the store fails; a message's own trouble is recorded on it.
    pub async fn run_once(&self, acknowledger: &Acknowledger) -> Result<SendReport, StoreError> {
        acknowledger.queue_wanted().await?;
        self.send_due().await
    }

    /// Sends every message due now, batch by batch, keeping each mailbox's SMTP
    /// connection open across batches: one connection per mailbox and pass.
    pub async fn send_due(&self) -> Result<SendReport, StoreError> {
        let mut report = SendReport::default();
        let mut sessions = Sessions::new();
        let result = loop {
            let claimed = match self
                .store
                .claim_due_outbox(now_ms(), self.config.batch, self.claim_ms())
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => break Err(error),
            };
            if claimed.is_empty() {
                break Ok(report);
            }
            let batch = claimed.len();
            match self.send_claimed(claimed, &mut sessions).await {
                Ok(sent) => report.add(sent),
                Err(error) => break Err(error),
            }
            if batch < self.config.batch as usize {
                break Ok(report);
            }
        };
        for (_, session) in sessions {
            session.quit().await;
        }
        result
    }

    /// Sends one message now if it is queued (the CLI's `ticket reply`); returns how it
    /// stands afterwards. Another sender holding it leaves it as it is.
    pub async fn send_now(&self, outbox_id: i64) -> Result<OutboxMessage, StoreError> {
        if let Some(message) = self
            .store
            .claim_outbox_message(outbox_id, now_ms(), self.claim_ms())
            .await?
        {
            let mut sessions = Sessions::new();
            let sent = self.send_claimed(vec![message], &mut sessions).await;
            for (_, session) in sessions {
                session.quit().await;
            }
            sent?;
        }
        self.store
            .outbox_message(outbox_id)
            .await?
            .ok_or(StoreError::OutboxMessageNotFound(outbox_id))
    }

    fn claim_ms(&self) -> i64 {
        i64::try_from(self.config.claim.as_millis()).unwrap_or(i64::MAX)
    }

    /// Sends claimed messages, one SMTP session per mailbox, in queue order.
    async fn send_claimed(
        &self,
        claimed: Vec<OutboxMessage>,
        sessions: &mut Sessions,
    ) -> Result<SendReport, StoreError> {
        let mut by_mailbox: BTreeMap<i64, Vec<OutboxMessage>> = BTreeMap::new();
        for message in claimed {
            by_mailbox
                .entry(message.mailbox_id)
                .or_default()
                .push(message);
        }
        let mut report = SendReport::default();
        for (mailbox_id, messages) in by_mailbox {
            report.add(
                self.send_for_mailbox(mailbox_id, messages, sessions)
                    .await?,
            );
        }
        Ok(report)
    }

    async fn send_for_mailbox(
        &self,
        mailbox_id: i64,
        messages: Vec<OutboxMessage>,
        sessions: &mut Sessions,
    ) -> Result<SendReport, StoreError> {
        let mut report = SendReport::default();
        let mailbox = self.store.mailbox_by_id(mailbox_id).await?;
        // Whether SMTP signs in with the mailbox's OAuth2 token (renewed once if refused).
        let token_mailbox = mailbox.as_ref().filter(|m| {
            m.settings.oauth.is_some()
                && m.settings
                    .sending
                    .as_ref()
                    .is_some_and(|s| s.smtp_username.is_none())
        });
        let mut renewed = false;
        let target = match mailbox.as_ref() {
            None => Err(Failure::Permanent(
                "its mailbox was removed, so there is nothing to send it through; add the mailbox again and send it again".to_string(),
            )),
            Some(mailbox) => match SmtpTarget::for_mailbox(&self.store, &self.oauth, mailbox).await {
                Ok(Some(target)) => Ok(target),
                Ok(None) => Err(Failure::Permanent(format!(
                    "sending is not set up for the mailbox {:?}; set its SMTP server and send it again",
                    mailbox.settings.name
                ))),
                Err(error) => Err(error.into_failure()?),
            },
        };
        let mut target = match target {
            Ok(target) => target,
            Err(failure) => {
                for message in &messages {
                    self.record(message, Err(failure.clone()), &mut report)
                        .await?;
                }
                return Ok(report);
            }
        };
        let mut session: Option<SmtpSession> = sessions.remove(&mailbox_id);
        for message in &messages {
            let bytes = match self.store.blobs().read(&message.sha256).await {
                Ok(bytes) => bytes,
                Err(error) => {
                    let failure = Failure::Permanent(format!(
                        "its stored bytes cannot be read ({error}); write the reply again"
                    ));
                    self.record(message, Err(failure), &mut report).await?;
                    continue;
                }
            };
            if session.as_ref().is_none_or(|s| !s.is_usable()) {
                let mut opened = SmtpSession::open(&target, self.config.timeouts).await;
                if let (Err(Failure::Permanent(refusal)), Some(mailbox), false) =
                    (&opened, token_mailbox, renewed)
                {
                    // A token refused mid-life (revoked early, clocks apart): renewed
                    // once, then tried again.
                    renewed = true;
                    tracing::info!(mailbox = %mailbox.settings.name, %refusal, "the SMTP server refused the OAuth2 token; renewing it once");
                    match self.oauth.access_token(mailbox, Some(&target.secret)).await {
                        Ok(token) => {
                            target.secret = token;
                            opened = SmtpSession::open(&target, self.config.timeouts).await;
                        }
                        Err(error) => {
                            opened = Err(crate::smtp::TargetError::Token(error).into_failure()?);
                        }
                    }
                }
                match opened {
                    Ok(opened) => {
                        report.connections += 1;
                        session = Some(opened);
                    }
                    Err(failure) => {
                        // The server cannot be reached or refuses us: the same holds for
                        // the rest of this mailbox's messages.
                        let index = messages
                            .iter()
                            .position(|m| m.id == message.id)
                            .unwrap_or(0);
                        for rest in &messages[index..] {
                            self.record(rest, Err(failure.clone()), &mut report).await?;
                        }
                        return Ok(report);
                    }
                }
            }
            let Some(open) = session.as_mut() else {
                continue;
            };
            let recipients: Vec<&str> = message.recipients().collect();
            let result = open.send(&message.envelope_from, &recipients, &bytes).await;
            tracing::info!(
                outbox_id = message.id,
                ticket = message.ticket_number,
                message_id = %message.message_id,
                ok = result.is_ok(),
                "sending: {}",
                match &result {
                    Ok(()) => "accepted".to_string(),
                    Err(failure) => failure.to_string(),
                }
            );
            self.record(message, result, &mut report).await?;
        }
        // Kept for the next batch of this pass; closed when the pass ends.
        if let Some(open) = session.filter(SmtpSession::is_usable) {
            sessions.insert(mailbox_id, open);
        }
        Ok(report)
    }

    /// Records one attempt's outcome.
    async fn record(
        &self,
        message: &OutboxMessage,
        result: Result<(), Failure>,
        report: &mut SendReport,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        match result {
            Ok(()) => {
                self.store.outbox_sent(message.id, now).await?;
                report.sent += 1;
            }
            Err(Failure::Permanent(words)) => {
                self.store.outbox_failed(message.id, &words, now).await?;
                report.failed += 1;
            }
            Err(Failure::Temporary(words)) => {
                let retry_for =
                    i64::try_from(self.config.retry_for.as_millis()).unwrap_or(i64::MAX);
                let next = now.saturating_add(self.pause_after(message.attempts + 1));
                if next > message.retry_from.saturating_add(retry_for) {
                    let hours = self.config.retry_for.as_secs_f64() / 3600.0;
                    let words = format!("gave up after trying for {hours:.1} h: {words}");
                    self.store.outbox_failed(message.id, &words, now).await?;
                    report.failed += 1;
                } else {
                    self.store
                        .outbox_retry_later(message.id, &words, next, now)
                        .await?;
                    report.retrying += 1;
                }
            }
        }
        Ok(())
    }

    /// The pause after the `attempts`-th failed attempt: `first_retry`, doubling, at most
    /// `max_retry`.
    fn pause_after(&self, attempts: u32) -> i64 {
        let first = self.config.first_retry.as_millis();
        let doubled = first.saturating_mul(1u128 << attempts.saturating_sub(1).min(30));
        let pause = doubled.min(self.config.max_retry.as_millis());
        i64::try_from(pause).unwrap_or(i64::MAX)
    }
}

/// Open SMTP sessions of one pass, by mailbox.
type Sessions = std::collections::HashMap<i64, SmtpSession>;
