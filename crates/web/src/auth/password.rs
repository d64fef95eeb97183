//! Passwords in request handlers: the rules and argon2id hashing are the administration
//! service's ([`admin::password`]); here they run on a blocking thread, never on the
//! async workers that serve everyone else, and fail as API errors.

pub use admin::password::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordCost, PasswordError, check_password,
    hash_password, hash_password_with, verify_password,
};

use crate::error::ApiError;

/// [`hash_password_with`] on a blocking thread; a broken rule is a validation error.
pub(crate) async fn hash_blocking(
    password: String,
    cost: PasswordCost,
) -> Result<String, ApiError> {
    match tokio::task::spawn_blocking(move || hash_password_with(&password, cost)).await {
        Ok(Ok(hash)) => Ok(hash),
        Ok(Err(error @ (PasswordError::TooShort | PasswordError::TooLong))) => {
            Err(ApiError::validation(error.to_string()).about("password"))
        }
        Ok(Err(error)) => Err(ApiError::internal(&error)),
        Err(join) => Err(ApiError::internal(&join)),
    }
}

/// The bound on argon2 work at once. Each check holds about 19 MiB for tens of
/// milliseconds; unbounded, a few hundred anonymous sign-ins at once reach gigabytes.
/// Checks run on a few threads of their own, not on tokio's blocking pool: the
/// allocator keeps a freed 19 MiB buffer in the arena of the thread that used it, so
/// memory grows with the number of distinct threads that ever hashed, and the blocking
/// pool has hundreds. Past the bound a check waits a little for a thread, then the
/// caller is told to come back (429).
#[derive(Debug)]
pub(crate) struct PasswordChecks {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    jobs: std::sync::mpsc::Sender<PasswordJob>,
    wait: std::time::Duration,
}

/// One check for the hashing threads, and where its answer goes.
struct PasswordJob {
    password: String,
    stored: String,
    answer: tokio::sync::oneshot::Sender<bool>,
    /// Held until the check has run, even if the client hung up meanwhile.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl std::fmt::Debug for PasswordJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordJob")
    }
}

/// How long a password check waits for a free thread before the caller gets 429.
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the caller of a refused check is told to wait, in seconds.
const SLOT_RETRY_AFTER_SECS: u64 = 1;

impl PasswordChecks {
    /// `at_once` threads checking passwords; 0 means one per core. They end when this
    /// value is dropped.
    pub(crate) fn new(at_once: usize) -> PasswordChecks {
        let at_once = if at_once == 0 {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        } else {
            at_once
        };
        let (jobs, queue) = std::sync::mpsc::channel::<PasswordJob>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for n in 0..at_once {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{n}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let queue = queue
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            queue.recv()
                        };
                        let Ok(job) = job else { return };
                        let matches = verify_password(&job.password, &job.stored);
                        // The requester may have hung up; nothing to tell then.
                        let _ = job.answer.send(matches);
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "could not start a password-checking thread");
            }
        }
        PasswordChecks {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(at_once)),
            jobs,
            wait: SLOT_WAIT,
        }
    }

    /// [`verify_password`] on one of the checking threads, once one is free.
    pub(crate) async fn verify(&self, password: String, stored: String) -> Result<bool, ApiError> {
        let slot = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            // Closed never happens (the semaphore is never closed); treat it as busy.
            Ok(Err(_)) | Err(_) => {
                tracing::info!("password check refused: every checking thread is busy");
                return Err(ApiError::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "the server is busy checking other sign-ins; try again in a moment",
                )
                .retry_after(SLOT_RETRY_AFTER_SECS));
            }
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = PasswordJob {
            password,
            stored,
            answer,
            _slot: slot,
        };
        if self.jobs.send(job).is_err() {
            return Err(ApiError::internal(
                &"the password-checking threads have stopped",
            ));
        }
        answered
            .await
            .map_err(|_| ApiError::internal(&"a password-checking thread stopped mid-check"))
    }
}
