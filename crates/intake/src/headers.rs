//! Just enough header reading for the intake: the Message-ID, for the per-mailbox
//! duplicate check. Full parsing belongs to the processor.

/// How much of a message's start is kept to find its header block.
pub const HEADER_CAPTURE: usize = 64 * 1024;

/// The Message-ID of a message whose first octets are `head`, without angle brackets,
/// or `None` if it has none (or it lies beyond the captured part).
pub fn message_id(head: &[u8]) -> Option<String> {
    let headers = header_block(head);
    let mut lines = headers.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        if !line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"message-id")
        {
            continue;
        }
        // Unfold continuation lines (RFC 5322 2.2.3).
        let mut value = line[colon + 1..].to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                value.push(b' ');
                value.extend_from_slice(next.strip_suffix(b"\r").unwrap_or(next));
                lines.next();
            } else {
                break;
            }
        }
        let value = String::from_utf8_lossy(&value);
        let value = value.trim();
        let id = match (value.find('<'), value.rfind('>')) {
            (Some(start), Some(end)) if start < end => &value[start + 1..end],
            _ => value,
        };
        let id = id.trim();
        return (!id.is_empty()).then(|| id.to_string());
    }
    None
}

/// The header block: everything before the first empty line.
fn header_block(head: &[u8]) -> &[u8] {
    let mut at = 0;
    while at < head.len() {
        let end = memchr::memchr(b'\n', &head[at..]).map_or(head.len(), |lf| at + lf);
        let line = &head[at..end];
        if line.is_empty() || line == b"\r" {
            return &head[..at];
        }
        at = end + 1;
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_folded_and_bracketed_ids() {
        assert_eq!(
            message_id(b"From: a\r\nMessage-ID: <abc@example.org>\r\n\r\nbody").as_deref(),
            Some("abc@example.org")
        );
        assert_eq!(
            message_id(b"message-id:\r\n  <folded@example.org>\r\nSubject: x\r\n\r\n").as_deref(),
            Some("folded@example.org")
        );
        assert_eq!(
            message_id(b"Subject: none\n\nMessage-ID: <in-body@x>\n"),
            None
        );
        assert_eq!(
            message_id(b"Message-Id: bare-id\n\n").as_deref(),
            Some("bare-id")
        );
    }
}
