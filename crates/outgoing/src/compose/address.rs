//! Which addresses popdesk will put in From, To and Cc.

use super::headers::is_atext;

/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its angle brackets.
const MAX_ADDRESS: usize = 254;
/// RFC 5321 §4.5.3.1.1.
const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2 (a single label may be 63).
const MAX_LABEL: usize = 63;

/// Whether `address` is a plain addr-spec (`local@domain`) that a submission server
/// will accept and that can go into a header untouched.
///
/// Deliberately narrower than RFC 5322: ASCII only (no SMTPUTF8), the local part a
/// dot-atom (no quoted local parts such as `"john doe"@x`), the domain host name labels
/// of letters, digits and hyphens (no address literals like `[192.0.2.1]`), a single
/// label such as `localhost` allowed. What passes can hold no space, control character,
/// angle bracket, comma or quote, so it can never break a header apart.
pub fn is_valid_address(address: &str) -> bool {
    if address.is_empty() || address.len() > MAX_ADDRESS || !address.is_ascii() {
        return false;
    }
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    is_dot_atom(local) && local.len() <= MAX_LOCAL_PART && is_host_name(domain)
}

fn is_dot_atom(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn is_host_name(domain: &str) -> bool {
    !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_valid() {
        for ok in [
            "jane@example.com",
            "j.doe+tickets@mail.example.co.uk",
            "o'brien@example.ie",
            "support@localhost",
            "x@xn--mnchen-3ya.de",
        ] {
            assert!(is_valid_address(ok), "{ok}");
        }
    }

    #[test]
    fn anything_that_could_break_a_header_is_invalid() {
        for bad in [
            "",
            "jane",
            "@example.com",
            "jane@",
            "jane@@example.com",
            "a@b@example.com",
            "jane doe@example.com",
            "jane@example.com\r\nBcc: evil@x",
            "<jane@example.com>",
            "jane@example.com, evil@x",
            "\"jane\"@example.com",
            "jäne@example.com",
            "jane@exämple.com",
            "jane@[192.0.2.1]",
            ".jane@example.com",
            "jane..doe@example.com",
            "jane@example..com",
            "jane@-example.com",
            "jane@example.com.",
        ] {
            assert!(!is_valid_address(bad), "{bad:?}");
        }
        assert!(!is_valid_address(&format!(
            "{}@example.com",
            "a".repeat(65)
        )));
    }
}
