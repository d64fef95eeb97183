//! Messages the server cannot hand out: how much of a body popdesk accepts, which errors
//! are one message's failure rather than the mailbox's, and when such a message is set
//! aside (promise 5 for mail still on the server, promise 6 for bodies without end).
//!
//! A download that breaks off mid-message (connection closed or reset, the server silent
//! until the read timeout, more octets than announced, garbage) is charged to that
//! message. The next run retrieves it first, on its own and lock-step, which tells a
//! message that fails every time from a network that failed once. After
//! [`SET_ASIDE_AFTER`] runs in a row that failed it the same way it is set aside: left on
//! the server, no longer retrieved, listed for the admin, and the rest of the mailbox
//! flows again.

use store::FailureKind;

/// Runs in a row that must fail a message the same way before it is set aside, unless
/// the fetcher is told otherwise ([`crate::Fetcher::with_set_aside_after`]).
pub const SET_ASIDE_AFTER: u32 = 3;

/// The most header octets kept from `TOP n 0` of a failing message.
pub const HEADER_LIMIT: u64 = 256 * 1024;

/// Allowance over the announced size, fixed part: servers that count bare LF line ends
/// in `LIST` send a little more than they announce.
const MARGIN_FIXED: u64 = 16 * 1024;

/// The most octets accepted for a body the server announced as `announced` octets: half
/// as much again plus 16 KiB. Beyond that the server is not sending the message it
/// listed, and reading on would let it fill the disk until the session deadline.
pub fn body_limit(announced: u64) -> u64 {
    announced
        .saturating_add(announced / 2)
        .saturating_add(MARGIN_FIXED)
}

/// The kind of failure when `error` broke off one message's download, `None` when it is
/// not the message's doing (a refused login, a full disk, a cancelled run).
pub fn failure_kind(error: &pop3::Error) -> Option<FailureKind> {
    match error {
        pop3::Error::ConnectionClosed | pop3::Error::ConnectionLost(_) => {
            Some(FailureKind::Connection)
        }
        pop3::Error::Timeout(pop3::TimeoutKind::Read | pop3::TimeoutKind::Session) => {
            Some(FailureKind::Timeout)
        }
        pop3::Error::BodyTooLong { .. } => Some(FailureKind::TooLong),
        pop3::Error::Protocol(_) => Some(FailureKind::Protocol),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_twice_its_announced_size_is_over_the_limit() {
        for announced in [0, 1, 1000, 200_000, 40_000_000] {
            assert!(body_limit(announced) >= announced + MARGIN_FIXED);
            if announced >= 2 * MARGIN_FIXED {
                assert!(2 * announced > body_limit(announced), "{announced}");
            }
        }
        assert_eq!(body_limit(u64::MAX), u64::MAX);
    }

    #[test]
    fn only_a_broken_off_download_is_the_messages_failure() {
        assert_eq!(
            failure_kind(&pop3::Error::ConnectionClosed),
            Some(FailureKind::Connection)
        );
        assert_eq!(
            failure_kind(&pop3::Error::Timeout(pop3::TimeoutKind::Read)),
            Some(FailureKind::Timeout)
        );
        assert_eq!(
            failure_kind(&pop3::Error::BodyTooLong {
                number: 2,
                limit: 10
            }),
            Some(FailureKind::TooLong)
        );
        assert_eq!(
            failure_kind(&pop3::Error::Timeout(pop3::TimeoutKind::Connect)),
            None
        );
        assert_eq!(
            failure_kind(&pop3::Error::Sink(std::io::Error::other("disk full"))),
            None
        );
    }
}
