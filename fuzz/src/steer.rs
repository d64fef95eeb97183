//! Steering random bytes toward protocol shape.
//!
//! Like mail-parser's fuzz targets, input bytes pick tokens from an alphabet. For server
//! bytes, printable ASCII, CR, TAB and LF stay as they are, so a seed transcript stays a
//! transcript; every other byte expands to a token: at the start of a line a reply head
//! (`+OK `, `-ERR [IN-USE] `, `+ `, `.`, a message number ...), elsewhere content (numbers
//! at the edges of `u32` and `u64`, `%` escapes, 8-bit text). One mutated byte then
//! rewrites a line into another reply shape, which random bytes alone rarely do.

/// How a server's line starts.
pub const LINE_HEADS: &[&[u8]] = &[
    b"+OK",
    b"+OK ",
    b"+OK ",
    b"+OK ",
    b"+ok ",
    b"-ERR",
    b"-ERR ",
    b"-ERR [IN-USE] ",
    b"-ERR [AUTH] ",
    b"-ERR [SYS/TEMP] ",
    b"-ERR [SYS/PERM] ",
    b"-err [login-delay] ",
    b"-ERR [",
    b"+ ",
    b"+",
    b".",
    b".",
    b"..",
    b"",
    b"1 ",
    b"2 ",
    b"3 ",
    b"0 ",
    b"4294967295 ",
    b"4294967296 ",
    b"SASL ",
    b"\r",
    b" ",
];

/// What follows a line's head: words, numbers at the edges of `u32` and `u64`, escapes a
/// uid must survive, and the odd stray line end.
pub const LINE_CONTENT: &[&[u8]] = &[
    b" ",
    b" ",
    b"\t",
    b"0",
    b"1",
    b"2",
    b"320",
    b"4294967295",
    b"4294967296",
    b"18446744073709551615",
    b"18446744073709551616",
    b"x",
    b"%",
    b"%20",
    b"=",
    b"[",
    b"]",
    b".",
    b"<1896.697170952@dbc.mtview.ca.us>",
    b"VXNlcm5hbWU6",
    b"PLAIN LOGIN XOAUTH2",
    b"TOP",
    b"UIDL",
    b"PIPELINING",
    b"LOGIN-DELAY 900",
    b"EXPIRE NEVER",
    b"From: a@example.org",
    b"\x00",
    b"\x0c",
    b"\x7f",
    b"\xff",
    b"\xc3\xa9",
    b"\xc2\xa0",
    b"\r",
];

/// Tokens a message body is made of: dots and line ends in every arrangement that matters
/// for dot-stuffing, plus ordinary and 8-bit content.
pub const BODY_TOKENS: &[&[u8]] = &[
    b".",
    b"..",
    b".\r\n",
    b".\n",
    b".\r",
    b"\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n.\r\n",
    b"a",
    b"From: a@example.org",
    b" ",
    b"\x00",
    b"\xff",
    b"+OK",
];

fn pick<'a>(alphabet: &[&'a [u8]], b: u8) -> &'a [u8] {
    alphabet[usize::from(b) % alphabet.len()]
}

/// Maps every byte of `input` to a token of `alphabet` and joins them.
pub fn into_tokens(input: &[u8], alphabet: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 4);
    for &b in input {
        out.extend_from_slice(pick(alphabet, b));
    }
    out
}

/// Steers server bytes (see the module doc). `None` when nothing would change: the raw
/// run already covered that input.
pub fn into_replies(input: &[u8]) -> Option<Vec<u8>> {
    let kept = |b: u8| matches!(b, b'\r' | b'\t' | b'\n' | 0x20..=0x7e);
    if input.iter().all(|&b| kept(b)) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 4);
    let mut line_start = true;
    for &b in input {
        match b {
            _ if kept(b) => out.push(b),
            _ if line_start => out.extend_from_slice(pick(LINE_HEADS, b)),
            _ => out.extend_from_slice(pick(LINE_CONTENT, b)),
        }
        line_start = b == b'\n';
    }
    Some(out)
}
