//! Deciding, for one session, what to download, what to delete and what to leave — from
//! the server's listing, the ledger and the mailbox's policy. Pure: no I/O, no clock.

use std::collections::HashMap;

use store::{LedgerEntry, LedgerState, Oversize, Policy};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// One message as the server lists it in this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub number: u32,
    pub size: u64,
    /// `None` when the server has no UIDL.
    pub uid: Option<String>,
}

/// What the mailbox's settings say about this run.
#[derive(Debug, Clone)]
pub struct Rules {
    pub policy: Policy,
    pub max_size: u64,
    pub oversize: Oversize,
    /// The mailbox's session bounds: the batch this plan picks. The fetcher may end a
    /// session earlier still, on its time budget; what is left goes to the next session.
    pub batch_messages: u32,
    pub batch_bytes: u64,
    pub now: i64,
}

/// The work of one session.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// New messages to download now (one batch), in server order.
    pub download: Vec<Listed>,
    /// New messages over the size limit whose headers are stored instead (`TOP n 0`).
    pub headers_only: Vec<Listed>,
    /// Messages already stored that the policy says to delete from the server.
    pub delete_known: Vec<Listed>,
    /// Known messages left alone (keep policy, seeded, too large).
    pub already_known: u64,
    /// New messages left for a later session of this run (beyond this batch).
    pub remaining: usize,
}

/// Plans one session. `ledger` maps uid → entry.
pub fn plan_session(
    listed: &[Listed],
    ledger: &HashMap<String, LedgerEntry>,
    rules: &Rules,
) -> Plan {
    let mut plan = Plan::default();
    let mut batch_bytes = 0u64;
    for message in listed {
        if let Some(entry) = message.uid.as_ref().and_then(|uid| ledger.get(uid)) {
            plan.already_known += 1;
            if may_delete_known(entry, rules) {
                plan.delete_known.push(message.clone());
            }
            continue;
        }
        if message.size > rules.max_size && rules.oversize == Oversize::Skip {
            // Without a uid we could not remember having stored its headers.
            if message.uid.is_some() {
                plan.headers_only.push(message.clone());
            }
            continue;
        }
        let full = plan.download.len() as u32 >= rules.batch_messages.max(1)
            || (!plan.download.is_empty() && batch_bytes + message.size > rules.batch_bytes);
        if full {
            plan.remaining += 1;
        } else {
            batch_bytes += message.size;
            plan.download.push(message.clone());
        }
    }
    plan
}

/// Whether a message the ledger knows may be deleted from the server now.
fn may_delete_known(entry: &LedgerEntry, rules: &Rules) -> bool {
    match entry.state {
        // Seeded: it was there before popdesk started ("from now on") — never ours to
        // delete. Too large: it stays on the server for the admin to deal with.
        LedgerState::Seeded | LedgerState::TooLarge => false,
        LedgerState::Stored | LedgerState::Duplicate => match rules.policy {
            Policy::Delete => true,
            Policy::Keep {
                delete_after_days: None,
            } => false,
            Policy::Keep {
                delete_after_days: Some(days),
            } => rules.now - entry.first_seen_at >= i64::from(days) * DAY_MS,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(number: u32, size: u64, uid: &str) -> Listed {
        Listed {
            number,
            size,
            uid: Some(uid.to_string()),
        }
    }

    fn entry(uid: &str, state: LedgerState, first_seen_at: i64) -> (String, LedgerEntry) {
        (
            uid.to_string(),
            LedgerEntry {
                uid: uid.to_string(),
                state,
                raw_message_id: Some(1),
                first_seen_at,
                deleted_at: None,
            },
        )
    }

    fn rules(policy: Policy) -> Rules {
        Rules {
            policy,
            max_size: 1000,
            oversize: Oversize::Skip,
            batch_messages: 2,
            batch_bytes: 10_000,
            now: 10 * DAY_MS,
        }
    }

    #[test]
    fn known_messages_are_deleted_not_downloaded_again() {
        let ledger = HashMap::from([entry("a", LedgerState::Stored, 0)]);
        let plan = plan_session(
            &[listed(1, 10, "a"), listed(2, 10, "b")],
            &ledger,
            &rules(Policy::Delete),
        );
        assert_eq!(plan.download, vec![listed(2, 10, "b")]);
        assert_eq!(plan.delete_known, vec![listed(1, 10, "a")]);
        assert_eq!(plan.already_known, 1);
    }

    #[test]
    fn batches_are_bounded_by_count_and_bytes() {
        let all: Vec<Listed> = (1..=5).map(|n| listed(n, 10, &format!("u{n}"))).collect();
        let plan = plan_session(&all, &HashMap::new(), &rules(Policy::Delete));
        assert_eq!(plan.download.len(), 2);
        assert_eq!(plan.remaining, 3);
        let mut by_bytes = rules(Policy::Delete);
        by_bytes.batch_messages = 50;
        by_bytes.batch_bytes = 25;
        let plan = plan_session(&all, &HashMap::new(), &by_bytes);
        assert_eq!(plan.download.len(), 2);
        // A single message larger than the byte budget still goes, alone.
        let big = [listed(1, 900, "big")];
        assert_eq!(
            plan_session(&big, &HashMap::new(), &by_bytes)
                .download
                .len(),
            1
        );
    }

    #[test]
    fn seeded_and_too_large_are_never_deleted() {
        let ledger = HashMap::from([
            entry("seeded", LedgerState::Seeded, 0),
            entry("large", LedgerState::TooLarge, 0),
        ]);
        let plan = plan_session(
            &[listed(1, 10, "seeded"), listed(2, 5000, "large")],
            &ledger,
            &rules(Policy::Delete),
        );
        assert!(plan.delete_known.is_empty() && plan.download.is_empty());
        assert_eq!(plan.already_known, 2);
    }

    #[test]
    fn keep_with_delete_after_deletes_only_old_enough_mail() {
        let ledger = HashMap::from([
            entry("old", LedgerState::Stored, 0),
            entry("young", LedgerState::Stored, 9 * DAY_MS),
        ]);
        let messages = [listed(1, 10, "old"), listed(2, 10, "young")];
        let keep_forever = plan_session(
            &messages,
            &ledger,
            &rules(Policy::Keep {
                delete_after_days: None,
            }),
        );
        assert!(keep_forever.delete_known.is_empty());
        let keep_7_days = plan_session(
            &messages,
            &ledger,
            &rules(Policy::Keep {
                delete_after_days: Some(7),
            }),
        );
        assert_eq!(keep_7_days.delete_known, vec![listed(1, 10, "old")]);
    }

    #[test]
    fn oversize_messages_get_headers_only_or_download() {
        let messages = [listed(1, 5000, "big"), listed(2, 10, "small")];
        let plan = plan_session(&messages, &HashMap::new(), &rules(Policy::Delete));
        assert_eq!(plan.headers_only, vec![listed(1, 5000, "big")]);
        assert_eq!(plan.download, vec![listed(2, 10, "small")]);
        let mut download = rules(Policy::Delete);
        download.oversize = Oversize::Download;
        let plan = plan_session(&messages, &HashMap::new(), &download);
        assert!(plan.headers_only.is_empty());
        assert_eq!(plan.download.len(), 2);
    }
}
