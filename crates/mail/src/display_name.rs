//! Display names of address headers, read again from the raw header when they hold
//! encoded words.
//!
//! mail-parser finds addresses well, but joins the pieces of a display name without
//! the white space between an encoded word and a quoted string
//! (`=?ISO-8859-1?Q?Gabr=EDel?= "A." =?ISO-8859-1?Q?P=E9tursson?=` becomes
//! `GabríelA. Pétursson`) and decodes each encoded word on its own. This splits the
//! raw address list just enough to pair each `phrase <address>` and decodes the
//! phrase as mail clients do ([`crate::encoded_word`]). The address itself always
//! comes from mail-parser; only the name is replaced, and only for an address found
//! here.

use crate::encoded_word::decode_unstructured;
use crate::parse::one_line;

/// `(address, display name)` for every mailbox in a raw address-list header value
/// written as `phrase <address>`, names decoded. Addresses are lower-cased for
/// matching.
pub(crate) fn display_names(raw: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for mailbox in split_mailboxes(raw) {
        let Some((phrase, address)) = phrase_and_address(&mailbox) else {
            continue;
        };
        let name = one_line(&decode_phrase(&phrase));
        if !name.is_empty() {
            found.push((address.trim().to_lowercase(), name));
        }
    }
    found
}

/// Splits at commas (and the `:`/`;` of groups) outside quoted strings, comments and
/// angle brackets.
fn split_mailboxes(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut comment = 0usize;
    let mut angle = false;
    for c in raw.chars() {
        if escaped {
            escaped = false;
            current.push(c);
            continue;
        }
        match c {
            '\\' if quoted || comment > 0 => escaped = true,
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted => comment = comment.saturating_sub(1),
            '<' if !quoted && comment == 0 => angle = true,
            '>' if !quoted && comment == 0 => angle = false,
            ',' | ';' if !quoted && comment == 0 && !angle => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            // A group's name ends at its colon; its members follow.
            ':' if !quoted && comment == 0 && !angle => {
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out
}

/// The phrase before `<address>` and the address, or `None` for a bare address.
fn phrase_and_address(mailbox: &str) -> Option<(String, String)> {
    let mut quoted = false;
    let mut escaped = false;
    let mut comment = 0usize;
    for (i, c) in mailbox.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || comment > 0 => escaped = true,
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted => comment = comment.saturating_sub(1),
            '<' if !quoted && comment == 0 => {
                let rest = &mailbox[i + 1..];
                let end = rest.find('>')?;
                return Some((mailbox[..i].to_owned(), rest[..end].to_owned()));
            }
            _ => {}
        }
    }
    None
}

/// A phrase as mail clients show it: quoted strings unquoted (encoded words inside
/// them decoded too, as Thunderbird and mail-parser do), comments left out, and
/// white space kept everywhere except between two encoded words.
fn decode_phrase(phrase: &str) -> String {
    let mut out = String::new();
    let mut rest = phrase;
    while !rest.is_empty() {
        let Some(start) = rest.find(['"', '(']) else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..start]);
        let open = rest.as_bytes()[start];
        let (inner, after) = if open == b'"' {
            take_quoted(&rest[start + 1..])
        } else {
            let (_, after) = take_comment(&rest[start + 1..]);
            (String::new(), after)
        };
        out.push_str(&inner);
        rest = after;
    }
    decode_unstructured(&out)
}

/// The content of a quoted string (escapes undone) and what follows its closing quote.
fn take_quoted(s: &str) -> (String, &str) {
    let mut inner = String::new();
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            inner.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => return (inner, &s[i + 1..]),
            _ => inner.push(c),
        }
    }
    (inner, "")
}

/// Skips a comment, nested ones included; returns it and what follows it.
fn take_comment(s: &str) -> (&str, &str) {
    let mut depth = 1usize;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return (&s[..i], &s[i + 1..]);
                }
            }
            _ => {}
        }
    }
    (s, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_space_between_an_encoded_word_and_a_quoted_string_is_kept() {
        let raw = " =?ISO-8859-1?Q?Gabr=EDel?= \"A.\" =?ISO-8859-1?Q?P=E9tursson?= <g@example.is>";
        assert_eq!(
            display_names(raw),
            vec![("g@example.is".to_owned(), "Gabríel A. Pétursson".to_owned())]
        );
    }

    #[test]
    fn every_mailbox_of_a_list_and_group_is_paired_with_its_name() {
        let raw = "\"Meier, J=?utf-8?Q?=C3=B6?=rg\" <J@Example.de>, plain@example.org,\n team: =?utf-8?B?w4Rrw6Q=?= (work) <a@b.c>;";
        assert_eq!(
            display_names(raw),
            vec![
                ("j@example.de".to_owned(), "Meier, Jörg".to_owned()),
                ("a@b.c".to_owned(), "Äkä".to_owned()),
            ]
        );
    }

    #[test]
    fn an_emoji_split_across_words_survives() {
        let raw = "=?utf-8?Q?Sender_Name_=F0=9F?= =?utf-8?Q?=91=BB?= <s@example.org>";
        assert_eq!(
            display_names(raw),
            vec![("s@example.org".to_owned(), "Sender Name 👻".to_owned())]
        );
    }
}
