//! Noticing what the provider does with deleted mail, and saying it in the admin's words.
//!
//! No POP3 client can switch off what Gmail and others do to mail after `DELE`, and
//! popdesk already survives it (the ledger, the per-mailbox content hash: promise 2).
//! What it can do is notice, from what the server lists and hands over, and tell the
//! admin calmly — the provider's mailbox keeps filling up, old mail came back — with
//! what it means for that provider. A notice never stops polling: it is not an error.

use std::collections::HashSet;

use store::{NoticeKind, ProviderNotice};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// What one run saw of the provider's behaviours: messages showing each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderSigns {
    /// Messages whose deletion the server confirmed, listed again under the same UIDL.
    pub kept_after_delete: u64,
    /// Messages already stored, offered again under a new UIDL and recognised by content.
    pub reoffered_under_new_uidl: u64,
    /// Messages listed without UIDL (the largest listing of the run).
    pub no_uidl: u64,
    /// Messages sharing their UIDL with another in one listing (the largest listing).
    pub duplicate_uidls: u64,
    /// Whether the server listed its messages at all in this run: a run that never got
    /// that far says nothing about the provider, so it neither adds nor clears a notice.
    pub listed: bool,
    /// Whether the server lacked UIDL in a listing of this run, even an empty one.
    pub without_uidl: bool,
}

impl ProviderSigns {
    /// Messages showing each behaviour, in the order of [`NoticeKind`].
    pub fn counts(&self) -> [(NoticeKind, u64); 4] {
        [
            (NoticeKind::KeptAfterDelete, self.kept_after_delete),
            (
                NoticeKind::ReofferedUnderNewUidl,
                self.reoffered_under_new_uidl,
            ),
            (NoticeKind::NoUidl, self.no_uidl),
            (NoticeKind::DuplicateUidls, self.duplicate_uidls),
        ]
    }

    /// Whether this run saw `kind` (a server without UIDL is one, even when empty).
    fn saw(&self, kind: NoticeKind) -> bool {
        match kind {
            NoticeKind::NoUidl => self.without_uidl,
            _ => self.counts().iter().any(|(k, n)| *k == kind && *n > 0),
        }
    }

    /// The notices that a successful run which listed the mailbox clears: those it did
    /// not see, once they have been quiet long enough (see [`quiet_period_ms`]).
    pub fn stopped(&self, notices: &[ProviderNotice], now: i64) -> Vec<NoticeKind> {
        if !self.listed {
            return Vec::new();
        }
        notices
            .iter()
            .filter(|n| !self.saw(n.kind) && now - n.last_seen_at >= quiet_period_ms(n.kind))
            .map(|n| n.kind)
            .collect()
    }
}

/// How long a behaviour must go unseen before its notice goes. Kept mail, a missing
/// UIDL and duplicate UIDLs show in every listing while they happen, so one listing
/// without them means they stopped. Mail offered again under new UIDLs comes in one
/// burst and is known from then on: its notice stays a day, long enough to be read.
pub fn quiet_period_ms(kind: NoticeKind) -> i64 {
    match kind {
        NoticeKind::ReofferedUnderNewUidl => DAY_MS,
        NoticeKind::KeptAfterDelete | NoticeKind::NoUidl | NoticeKind::DuplicateUidls => 0,
    }
}

/// Counts the messages of one listing whose UIDL another message shares, and takes
/// their UIDLs away for this session: a UIDL that names two messages names neither, and
/// trusting it could have the ledger skip (and delete) the second one undownloaded.
/// Without a UIDL they are downloaded and recognised by their content, like mail from a
/// server without UIDL.
pub fn drop_duplicate_uidls(listed: &mut [crate::plan::Listed]) -> u64 {
    let mut seen = HashSet::new();
    let mut twice = HashSet::new();
    for uid in listed.iter().filter_map(|m| m.uid.as_deref()) {
        if !seen.insert(uid) {
            twice.insert(uid.to_string());
        }
    }
    let mut dropped = 0;
    for message in listed.iter_mut() {
        if message.uid.as_ref().is_some_and(|uid| twice.contains(uid)) {
            message.uid = None;
            dropped += 1;
        }
    }
    dropped
}

/// Whose words to use: the two providers whose POP3 quirks admins meet most, and
/// everyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Gmail,
    Microsoft365,
    Other,
}

impl Provider {
    /// The provider of a mailbox, by its POP3 server's host name.
    pub fn for_host(host: &str) -> Provider {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let under = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
        if under("gmail.com") || under("googlemail.com") {
            Provider::Gmail
        } else if under("office365.com") || under("outlook.com") || under("office.com") {
            Provider::Microsoft365
        } else {
            Provider::Other
        }
    }

    /// `gmail`, `microsoft365` or `other`, as the API and `--json` give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Gmail => "gmail",
            Provider::Microsoft365 => "microsoft365",
            Provider::Other => "other",
        }
    }
}

/// A notice in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeWords {
    /// One sentence with the number, for a health line.
    pub headline: String,
    /// What popdesk does about it.
    pub meaning: String,
    /// What the admin can do at this provider, if anything.
    pub advice: String,
}

impl NoticeWords {
    /// The whole notice in one paragraph, for the mailbox page and `mailbox show`.
    pub fn text(&self) -> String {
        format!("{} {} {}", self.headline, self.meaning, self.advice)
    }
}

fn messages(n: u64) -> String {
    match n {
        1 => "1 message".to_string(),
        n => format!("{n} messages"),
    }
}

/// What `notice` means for a mailbox at `provider`.
pub fn words(notice: &ProviderNotice, provider: Provider) -> NoticeWords {
    let (headline, meaning, advice) = match notice.kind {
        NoticeKind::KeptAfterDelete => (
            format!(
                "The server keeps messages after popdesk deletes them ({} kept).",
                notice.last_count
            ),
            "popdesk will not download them again.".to_string(),
            match provider {
                Provider::Gmail => "For Gmail: Settings → Forwarding and POP/IMAP → “When \
                                    messages are accessed with POP” → “delete Gmail's copy” \
                                    frees the space."
                    .to_string(),
                Provider::Microsoft365 => "For Microsoft 365: messages deleted over POP \
                                           normally go; if they stay, ask your Microsoft 365 \
                                           admin whether a retention policy or hold applies \
                                           to this mailbox."
                    .to_string(),
                Provider::Other => "The provider keeps a copy of what POP3 deletes; its \
                                    settings may offer to delete mail fetched over POP3, \
                                    which frees the space."
                    .to_string(),
            },
        ),
        NoticeKind::ReofferedUnderNewUidl => (
            format!(
                "Messages popdesk already had came back under new UIDLs ({} in all).",
                notice.total
            ),
            "popdesk recognised them by their content: no new tickets, nothing stored twice."
                .to_string(),
            match provider {
                Provider::Gmail => "For Gmail: this is what recent mode (a username starting \
                                    with recent:) and “Enable POP for all mail” do — Gmail \
                                    shows mail again that was downloaded before. Sign in \
                                    without recent: unless you need it."
                    .to_string(),
                Provider::Microsoft365 => "For Microsoft 365: this can follow a mailbox move \
                                           or restore; nothing to do unless it keeps \
                                           happening."
                    .to_string(),
                Provider::Other => "The provider may have restored or re-imported the \
                                    mailbox; nothing to do unless it keeps happening."
                    .to_string(),
            },
        ),
        NoticeKind::NoUidl => (
            format!(
                "The server gives its messages no UIDL ({} listed).",
                messages(notice.last_count)
            ),
            "popdesk recognises a message only after downloading it, by its content; this \
             works with the delete policy, not with keeping mail on the server."
                .to_string(),
            match provider {
                Provider::Gmail | Provider::Microsoft365 => "This provider normally has UIDL: \
                                                             check the mailbox's host."
                    .to_string(),
                Provider::Other => {
                    "Ask the provider to enable UIDL (RFC 1939) for POP3.".to_string()
                }
            },
        ),
        NoticeKind::DuplicateUidls => (
            format!(
                "The server gives one UIDL to several messages ({} in the last listing).",
                messages(notice.last_count)
            ),
            "popdesk cannot tell those apart by UIDL, so it downloads them and recognises \
             them by their content."
                .to_string(),
            match provider {
                Provider::Gmail | Provider::Microsoft365 => "Tell the provider's support: \
                                                             its UIDLs should be unique."
                    .to_string(),
                Provider::Other => "Servers that keep mail in mbox files do this after \
                                    copies; the provider can repair the mailbox."
                    .to_string(),
            },
        ),
    };
    NoticeWords {
        headline,
        meaning,
        advice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Listed;

    fn notice(kind: NoticeKind, last_count: u64, total: u64, last_seen_at: i64) -> ProviderNotice {
        ProviderNotice {
            mailbox_id: 1,
            kind,
            first_seen_at: 0,
            last_seen_at,
            last_count,
            total,
        }
    }

    #[test]
    fn gmail_and_microsoft_365_are_known_by_their_pop3_host() {
        assert_eq!(Provider::for_host("pop.gmail.com"), Provider::Gmail);
        assert_eq!(Provider::for_host("POP.GMAIL.COM."), Provider::Gmail);
        assert_eq!(
            Provider::for_host("outlook.office365.com"),
            Provider::Microsoft365
        );
        assert_eq!(Provider::for_host("mail.example.com"), Provider::Other);
        // A look-alike is not Gmail.
        assert_eq!(Provider::for_host("pop.notgmail.com"), Provider::Other);
    }

    #[test]
    fn kept_mail_is_explained_with_each_providers_own_words() {
        let kept = notice(NoticeKind::KeptAfterDelete, 412, 412, 0);
        let gmail = words(&kept, Provider::Gmail).text();
        assert!(
            gmail.starts_with("The server keeps messages after popdesk deletes them (412 kept).")
        );
        assert!(gmail.contains("popdesk will not download them again."));
        assert!(gmail.contains("delete Gmail's copy"), "{gmail}");
        let microsoft = words(&kept, Provider::Microsoft365).text();
        assert!(microsoft.contains("Microsoft 365") && microsoft.contains("retention"));
        let other = words(&kept, Provider::Other).text();
        assert!(
            !other.contains("Gmail") && !other.contains("Microsoft"),
            "{other}"
        );
    }

    #[test]
    fn mail_offered_again_is_counted_in_all_and_gmail_names_recent_mode() {
        let again = notice(NoticeKind::ReofferedUnderNewUidl, 3, 30, 0);
        let gmail = words(&again, Provider::Gmail);
        assert!(gmail.headline.contains("30 in all"), "{}", gmail.headline);
        assert!(gmail.advice.contains("recent:"));
    }

    #[test]
    fn a_uidl_shared_by_two_messages_names_neither() {
        let listed = |n: u32, uid: &str| Listed {
            number: n,
            size: 10,
            uid: Some(uid.to_string()),
        };
        let mut messages = vec![listed(1, "a"), listed(2, "b"), listed(3, "a")];
        assert_eq!(drop_duplicate_uidls(&mut messages), 2);
        let uids: Vec<Option<&str>> = messages.iter().map(|m| m.uid.as_deref()).collect();
        assert_eq!(uids, [None, Some("b"), None]);
    }

    #[test]
    fn a_notice_goes_when_a_listing_no_longer_shows_it_and_mail_offered_again_after_a_day() {
        let notices = [
            notice(NoticeKind::KeptAfterDelete, 5, 5, 1000),
            notice(NoticeKind::ReofferedUnderNewUidl, 5, 5, 1000),
        ];
        let clean = ProviderSigns {
            listed: true,
            ..ProviderSigns::default()
        };
        assert_eq!(clean.stopped(&notices, 2000), [NoticeKind::KeptAfterDelete]);
        assert_eq!(
            clean.stopped(&notices, 1000 + DAY_MS),
            [
                NoticeKind::KeptAfterDelete,
                NoticeKind::ReofferedUnderNewUidl
            ]
        );
        // A run that never listed (a refused login) says nothing.
        assert!(
            ProviderSigns::default()
                .stopped(&notices, 1000 + DAY_MS)
                .is_empty()
        );
        // Still keeping: stays.
        let keeping = ProviderSigns {
            listed: true,
            kept_after_delete: 5,
            ..ProviderSigns::default()
        };
        assert!(keeping.stopped(&notices[..1], 2000).is_empty());
    }
}
