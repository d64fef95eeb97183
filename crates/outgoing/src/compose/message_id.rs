//! Message-IDs: popdesk's own, and the thread they join (In-Reply-To, References).
//!
//! Ids are handled without angle brackets, as the `mail` crate stores them; the
//! brackets are added when the header is written.

use super::random::random_128;

/// How many ids a reply's References carries at most.
///
/// Long threads would otherwise grow the header without bound; twenty keeps the
/// root and enough recent history for every client's threading.
pub const MAX_REFERENCES: usize = 20;

/// The longest id popdesk writes. RFC 5322 sets no limit, but an id cannot be folded,
/// so its line must stay far below 998 octets; real ids are well under 100 characters.
pub const MAX_MESSAGE_ID: usize = 250;

/// Domain used in [`new_message_id`] when the one given is not a host name.
const FALLBACK_DOMAIN: &str = "popdesk.invalid";

/// A new, unique Message-ID for a message popdesk sends, without angle brackets:
/// `popdesk.<ms since epoch, base 36>.<128 random bits, base 32>@<domain>`.
///
/// `domain` is normally the sending mailbox's domain; a whole address is accepted
/// (the part after the last `@` is used). A domain that is not a plain host name is
/// replaced by `popdesk.invalid`, so the result always passes [`is_valid_message_id`].
/// The time part keeps ids roughly sortable when reading logs; the random part makes
/// them unique across processes and nodes sharing one outbox.
pub fn new_message_id(domain: &str) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    new_message_id_from(domain, now_ms, random_128())
}

fn new_message_id_from(domain: &str, now_ms: u128, random: [u8; 16]) -> String {
    let domain = domain
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let domain = if is_host_name(&domain) && domain.len() <= 200 {
        domain
    } else {
        FALLBACK_DOMAIN.to_owned()
    };
    format!("popdesk.{}.{}@{domain}", base36(now_ms), base32(&random))
}

fn is_host_name(domain: &str) -> bool {
    !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 4648 base 32, lower case, no padding: 26 characters for 16 bytes, safe in any
/// id and in a case-insensitive comparison.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Whether `id` (without angle brackets) can be written as `<id>` in a header.
///
/// The RFC 5322 `msg-id` characters: atext, `.`, `@`, and `[`/`]` for domain literals,
/// 1 to [`MAX_MESSAGE_ID`] of them. No space, control character, angle bracket, quote,
/// comma or parenthesis (which parsers would read as a comment). An `@` is not
/// required: old mail has ids without one, and threading should still follow them.
pub fn is_valid_message_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MESSAGE_ID
        && id
            .chars()
            .all(|c| super::headers::is_atext(c) || matches!(c, '.' | '@' | '[' | ']'))
}

/// The References for a reply: the customer's References followed by the customer's
/// Message-ID, oldest first, at most `max` ids.
///
/// Ids are taken without angle brackets (surrounding brackets and spaces are
/// tolerated and removed); ids that fail [`is_valid_message_id`] are dropped rather than
/// failing the reply, and repeats are kept once, at their first place. When trimming,
/// the first id (the thread's root) and the newest ones are kept, as RFC 5322 §3.6.4
/// suggests; with `max == 1` only the newest (the message answered) is kept.
pub fn references_chain(
    customer_references: &[String],
    customer_message_id: Option<&str>,
    max: usize,
) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    let ids = customer_references
        .iter()
        .map(String::as_str)
        .chain(customer_message_id);
    for id in ids {
        let id = id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if is_valid_message_id(id) && !chain.iter().any(|seen| seen == id) {
            chain.push(id.to_owned());
        }
    }
    match max {
        0 => Vec::new(),
        _ if chain.len() <= max => chain,
        1 => chain.split_off(chain.len() - 1),
        _ => {
            let newest = chain.split_off(chain.len() - (max - 1));
            chain.truncate(1);
            chain.extend(newest);
            chain
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn new_ids_have_the_documented_shape_and_are_unique() {
        let a = new_message_id("example.com");
        let b = new_message_id("example.com");
        assert_ne!(a, b);
        assert!(is_valid_message_id(&a), "{a}");
        let (local, domain) = a.split_once('@').unwrap();
        assert_eq!(domain, "example.com");
        let parts: Vec<&str> = local.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "popdesk");
        assert_eq!(parts[2].len(), 26);
    }

    #[test]
    fn new_id_formats_time_and_random_part() {
        assert_eq!(
            new_message_id_from("Support@Example.COM", 35, [0xff; 16]),
            "popdesk.z.77777777777777777777777774@example.com"
        );
        assert_eq!(
            new_message_id_from("", 0, [0; 16]),
            "popdesk.0.aaaaaaaaaaaaaaaaaaaaaaaaaa@popdesk.invalid"
        );
    }

    #[test]
    fn a_domain_that_is_not_a_host_name_never_reaches_the_id() {
        for bad in ["exa mple.com", "x\r\nBcc: evil", "<x>", "ex..com", "é.com"] {
            let id = new_message_id(bad);
            assert!(id.ends_with("@popdesk.invalid"), "{id}");
            assert!(is_valid_message_id(&id));
        }
        // Only what follows the last `@` counts, and it must be a host name by itself.
        let id = new_message_id("x\r\nBcc: evil@example.com");
        assert!(
            id.ends_with("@example.com") && is_valid_message_id(&id),
            "{id}"
        );
    }

    #[test]
    fn message_ids_with_spaces_brackets_or_controls_are_invalid() {
        assert!(is_valid_message_id("CAF=x+y_1@mail.gmail.com"));
        assert!(is_valid_message_id("abc@[192.0.2.1]"));
        assert!(is_valid_message_id("no-at-sign"));
        for bad in [
            "",
            "a b@x",
            "<a@x>",
            "a@x\r\nBcc: e@x",
            "a(b)@x",
            "a\"b@x",
            "ä@x",
        ] {
            assert!(!is_valid_message_id(bad), "{bad:?}");
        }
        assert!(!is_valid_message_id(&"a".repeat(MAX_MESSAGE_ID + 1)));
    }

    #[test]
    fn references_end_with_the_customers_message_id() {
        assert_eq!(
            references_chain(&ids(&["r1@x", "r2@x"]), Some("m@x"), MAX_REFERENCES),
            ids(&["r1@x", "r2@x", "m@x"])
        );
        assert_eq!(
            references_chain(&[], None, MAX_REFERENCES),
            Vec::<String>::new()
        );
    }

    #[test]
    fn trimming_keeps_the_thread_root_and_the_newest_ids() {
        let refs: Vec<String> = (0..30).map(|i| format!("r{i}@x")).collect();
        let chain = references_chain(&refs, Some("m@x"), 5);
        assert_eq!(chain, ids(&["r0@x", "r27@x", "r28@x", "r29@x", "m@x"]));
        assert_eq!(references_chain(&refs, Some("m@x"), 1), ids(&["m@x"]));
        assert!(references_chain(&refs, Some("m@x"), 0).is_empty());
        assert_eq!(
            references_chain(&refs, None, MAX_REFERENCES).len(),
            MAX_REFERENCES
        );
    }

    #[test]
    fn unusable_and_repeated_references_are_dropped() {
        let refs = ids(&["<a@x>", "bad id@x", "a@x", " b@x ", "c@x\r\nBcc: e@x"]);
        assert_eq!(
            references_chain(&refs, Some("b@x"), 20),
            ids(&["a@x", "b@x"])
        );
    }
}
