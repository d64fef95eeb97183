//! The first line of every reply: `+OK`, `-ERR [CODE]`, or a SASL `+ ` continuation.

use std::fmt;

/// An extended response code (RFC 2449 RESP-CODES, RFC 3206 SYS and AUTH).
///
/// These tell the caller what to do about an `-ERR`: wait, back off, or stop and tell a
/// person. Servers only promise them when they advertise `RESP-CODES` or `AUTH-RESP-CODE`,
/// but a well-formed `[CODE]` is read wherever it appears.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RespCode {
    /// `[IN-USE]`: another session holds the maildrop lock. Retry later.
    InUse,
    /// `[LOGIN-DELAY]`: logged in too recently. Wait before the next attempt.
    LoginDelay,
    /// `[SYS/TEMP]`: a temporary server-side failure. Back off and retry.
    SysTemp,
    /// `[SYS/PERM]`: a permanent server-side failure. Retrying will not help.
    SysPerm,
    /// `[AUTH]`: the credentials were refused. Retrying will not help.
    Auth,
    /// Any other code, kept verbatim (upper-cased) so nothing the server said is lost.
    Other(String),
}

impl RespCode {
    fn parse(code: &str) -> RespCode {
        let code = code.trim().to_ascii_uppercase();
        match code.as_str() {
            "IN-USE" => RespCode::InUse,
            "LOGIN-DELAY" => RespCode::LoginDelay,
            "SYS/TEMP" => RespCode::SysTemp,
            "SYS/PERM" => RespCode::SysPerm,
            "AUTH" => RespCode::Auth,
            _ => RespCode::Other(code),
        }
    }

    /// Whether the same request may well succeed later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RespCode::InUse | RespCode::LoginDelay | RespCode::SysTemp
        )
    }
}

impl fmt::Display for RespCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespCode::InUse => f.write_str("IN-USE"),
            RespCode::LoginDelay => f.write_str("LOGIN-DELAY"),
            RespCode::SysTemp => f.write_str("SYS/TEMP"),
            RespCode::SysPerm => f.write_str("SYS/PERM"),
            RespCode::Auth => f.write_str("AUTH"),
            RespCode::Other(code) => f.write_str(code),
        }
    }
}

/// A parsed status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusLine {
    /// `+OK` and the rest of the line.
    Ok(String),
    /// `-ERR`, its response code if it had one, and the rest of the line.
    Err {
        code: Option<RespCode>,
        text: String,
    },
    /// `+ ` followed by a (base64) SASL challenge, raw.
    Continuation(Vec<u8>),
}

/// Parses a status line (without its line end). `None` means the line is neither `+OK`,
/// `-ERR` nor a continuation: the server is not speaking POP3 (or we lost our place).
pub fn parse_status_line(line: &[u8]) -> Option<StatusLine> {
    // Servers are case-sloppy in the wild; RFC 1939 spells them upper case.
    if starts_with_ignore_case(line, b"+OK") && is_end_or_space(line, 3) {
        return Some(StatusLine::Ok(text_after(line, 3)));
    }
    if starts_with_ignore_case(line, b"-ERR") && is_end_or_space(line, 4) {
        let text = text_after(line, 4);
        let (code, text) = split_resp_code(&text);
        return Some(StatusLine::Err { code, text });
    }
    if line == b"+" {
        return Some(StatusLine::Continuation(Vec::new()));
    }
    if let Some(rest) = line.strip_prefix(b"+ ") {
        return Some(StatusLine::Continuation(rest.trim_ascii().to_vec()));
    }
    None
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn is_end_or_space(line: &[u8], at: usize) -> bool {
    matches!(line.get(at), None | Some(b' ') | Some(b'\t'))
}

fn text_after(line: &[u8], at: usize) -> String {
    String::from_utf8_lossy(&line[at..]).trim().to_string()
}

fn split_resp_code(text: &str) -> (Option<RespCode>, String) {
    if let Some(rest) = text.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        let code = &rest[..end];
        // A code is an atom: no spaces inside the brackets (RFC 2449 section 8).
        if !code.is_empty() && !code.contains(char::is_whitespace) {
            return (
                Some(RespCode::parse(code)),
                rest[end + 1..].trim().to_string(),
            );
        }
    }
    (None, text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_and_err_with_codes() {
        assert_eq!(
            parse_status_line(b"+OK"),
            Some(StatusLine::Ok(String::new()))
        );
        assert_eq!(
            parse_status_line(b"+OK 2 320"),
            Some(StatusLine::Ok("2 320".into()))
        );
        assert_eq!(
            parse_status_line(b"-ERR [IN-USE] Mailbox locked"),
            Some(StatusLine::Err {
                code: Some(RespCode::InUse),
                text: "Mailbox locked".into()
            })
        );
        assert_eq!(
            parse_status_line(b"-err [sys/temp] later"),
            Some(StatusLine::Err {
                code: Some(RespCode::SysTemp),
                text: "later".into()
            })
        );
        assert_eq!(
            parse_status_line(b"-ERR [not a code] text"),
            Some(StatusLine::Err {
                code: None,
                text: "[not a code] text".into()
            })
        );
        assert_eq!(
            parse_status_line(b"-ERR [AUTH] Authentication failed."),
            Some(StatusLine::Err {
                code: Some(RespCode::Auth),
                text: "Authentication failed.".into()
            })
        );
    }

    #[test]
    fn continuation_and_garbage() {
        assert_eq!(
            parse_status_line(b"+ eyJzdGF0dXMiOiI0MDEifQ=="),
            Some(StatusLine::Continuation(
                b"eyJzdGF0dXMiOiI0MDEifQ==".to_vec()
            ))
        );
        assert_eq!(
            parse_status_line(b"+"),
            Some(StatusLine::Continuation(vec![]))
        );
        assert_eq!(parse_status_line(b"+OKAY"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 400 Bad Request"), None);
        assert_eq!(parse_status_line(b""), None);
    }
}
