//! The banner on the ticket list that tells admins a mailbox has stopped bringing in
//! mail: agents look at the ticket list all day, admins rarely at the Mailboxes page,
//! and a mailbox that quietly stopped is mail nobody answers. The same signs the
//! Mailboxes page shows (`mailboxes/health.rs`): stopped on an error, waiting to be
//! reconnected to its OAuth2 provider, or backing off for a long while.

use intake::schedule::ScheduleState;
use store::OAuthState;

use crate::AppState;

/// A backoff shorter than this is a passing hiccup, not worth a banner.
const LONG_BACKOFF_MS: i64 = 10 * 60 * 1000;

/// One mailbox that needs an admin, as the banner names it.
pub(crate) struct IntakeProblem {
    pub(crate) name: String,
    pub(crate) href: String,
    /// What is wrong, completing "… is": "stopped", "waiting to be reconnected", ….
    pub(crate) what: &'static str,
}

/// The enabled mailboxes that need an admin now. A store error shows no banner: the
/// list itself matters more than its banner.
pub(crate) async fn intake_problems(state: &AppState) -> Vec<IntakeProblem> {
    let Ok(mailboxes) = state.store().mailboxes().await else {
        return Vec::new();
    };
    let now = state.now();
    mailboxes
        .iter()
        .filter(|m| m.settings.enabled)
        .filter_map(|mailbox| {
            let schedule = state.scheduler().and_then(|s| s.status(mailbox.id));
            let what = if mailbox.oauth_state == Some(OAuthState::NeedsReconnecting) {
                "waiting to be reconnected to its provider"
            } else if mailbox.needs_attention.is_some()
                || matches!(
                    schedule.as_ref().map(|s| &s.state),
                    Some(ScheduleState::Stopped { .. })
                )
            {
                "stopped on an error"
            } else if let Some(ScheduleState::BackingOff { until }) =
                schedule.as_ref().map(|s| &s.state)
                && *until - now >= LONG_BACKOFF_MS
            {
                "backing off after repeated errors"
            } else {
                return None;
            };
            Some(IntakeProblem {
                name: mailbox.settings.name.clone(),
                href: format!("/mailboxes/{}", mailbox.id),
                what,
            })
        })
        .collect()
}
