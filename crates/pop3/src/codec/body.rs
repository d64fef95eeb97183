//! Streaming decoder for multi-line bodies (`RETR`, `TOP`): strips dot-stuffing and finds
//! the terminating `.` line across any read boundary, holding two bits of state.

use bytes::BytesMut;

/// Where in the current line the decoder stands. Only this survives between reads, so a
/// message of any size decodes in constant memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first octet of a line: a `.` here is either stuffing or the terminator.
    LineStart,
    /// Inside a line: copy through to the next LF.
    InLine,
    /// Saw `.` at a line start.
    Dot,
    /// Saw `.` CR at a line start: an LF next ends the body.
    DotCr,
    /// The terminator was seen.
    Done,
}

/// Decodes one multi-line body as it arrives.
///
/// Output keeps the server's line ends (CRLF, or a bare LF from a sloppy server) so the
/// octets stored are the octets of the message. The terminator is `.` CRLF, or `.` LF from
/// servers that send bare LFs.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    octets: u64,
}

impl Default for BodyDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BodyDecoder {
    /// A decoder positioned just after the `+OK` line.
    pub fn new() -> Self {
        BodyDecoder {
            state: State::LineStart,
            octets: 0,
        }
    }

    /// Octets of body produced so far (after unstuffing).
    pub fn octets(&self) -> u64 {
        self.octets
    }

    /// Whether the terminating line has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input` into `out`; returns how many input octets were consumed. Stops
    /// right after the terminator, leaving what follows (the next pipelined reply) unread.
    pub fn decode(&mut self, input: &[u8], out: &mut BytesMut) -> usize {
        let start_len = out.len();
        let mut at = 0;
        while at < input.len() {
            match self.state {
                State::Done => break,
                State::InLine => match memchr::memchr(b'\n', &input[at..]) {
                    Some(lf) => {
                        out.extend_from_slice(&input[at..=at + lf]);
                        at += lf + 1;
                        self.state = State::LineStart;
                    }
                    None => {
                        out.extend_from_slice(&input[at..]);
                        at = input.len();
                    }
                },
                State::LineStart => {
                    if input[at] == b'.' {
                        at += 1;
                        self.state = State::Dot;
                    } else {
                        self.state = State::InLine;
                    }
                }
                State::Dot => match input[at] {
                    b'\r' => {
                        at += 1;
                        self.state = State::DotCr;
                    }
                    b'\n' => {
                        at += 1;
                        self.state = State::Done;
                    }
                    // A stuffed line: the leading dot is dropped, the rest is content.
                    _ => self.state = State::InLine,
                },
                State::DotCr => {
                    if input[at] == b'\n' {
                        at += 1;
                        self.state = State::Done;
                    } else {
                        // `.` CR then something else: a stuffed line whose content
                        // begins with a CR. Keep the CR, drop the dot.
                        out.extend_from_slice(b"\r");
                        self.state = State::InLine;
                    }
                }
            }
        }
        self.octets += (out.len() - start_len) as u64;
        at
    }
}

/// Dot-stuffs `body` the way a server sends it, terminator included. Used by tests and
/// fuzzing to check that decoding undoes it exactly.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(body.len() + 8);
    let mut line_start = true;
    for &octet in body {
        if line_start && octet == b'.' {
            wire.push(b'.');
        }
        wire.push(octet);
        line_start = octet == b'\n';
    }
    if !line_start {
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b".\r\n");
    wire
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `wire` delivered in chunks of `chunk` octets; returns body and leftover.
    fn decode_chunked(wire: &[u8], chunk: usize) -> (Vec<u8>, Vec<u8>, bool) {
        let mut decoder = BodyDecoder::new();
        let mut out = BytesMut::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut leftover = Vec::new();
        for piece in wire.chunks(chunk) {
            if decoder.is_done() {
                leftover.extend_from_slice(piece);
                continue;
            }
            pending.extend_from_slice(piece);
            let used = decoder.decode(&pending, &mut out);
            if decoder.is_done() {
                leftover.extend_from_slice(&pending[used..]);
            }
            pending.drain(..used);
        }
        (out.to_vec(), leftover, decoder.is_done())
    }

    const CHUNKS: [usize; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

    #[test]
    fn dot_stuffed_lines_and_terminator_at_every_chunk_size() {
        let wire = b"From: a@example.org\r\n\r\n..leading dot\r\n...two\r\n..\r\n.\r\n+OK next";
        for chunk in CHUNKS {
            let (body, leftover, done) = decode_chunked(wire, chunk);
            assert!(done, "chunk {chunk}");
            assert_eq!(
                body, b"From: a@example.org\r\n\r\n.leading dot\r\n..two\r\n.\r\n",
                "chunk {chunk}"
            );
            assert_eq!(leftover, b"+OK next", "chunk {chunk}");
        }
    }

    #[test]
    fn empty_body_and_bare_lf_terminator() {
        for chunk in CHUNKS {
            assert_eq!(decode_chunked(b".\r\n", chunk), (vec![], vec![], true));
            let (body, _, done) = decode_chunked(b"line one\nline two\n.\n", chunk);
            assert!(done);
            assert_eq!(body, b"line one\nline two\n");
        }
    }

    #[test]
    fn unterminated_body_is_not_done() {
        let (body, _, done) = decode_chunked(b"half a message\r\n..", 3);
        assert!(!done);
        // The second dot is content of a stuffed line, not part of a terminator.
        assert_eq!(body, b"half a message\r\n.");
    }

    #[test]
    fn a_dot_line_with_a_stray_cr_keeps_its_content() {
        let (body, _, done) = decode_chunked(b".\rx\r\n.\r\n", 1);
        assert!(done);
        assert_eq!(body, b"\rx\r\n");
    }

    #[test]
    fn eight_bit_and_nul_octets_pass_through() {
        let wire = b"caf\xc3\xa9 \x00\xff\r\n.\r\n";
        for chunk in CHUNKS {
            assert_eq!(decode_chunked(wire, chunk).0, b"caf\xc3\xa9 \x00\xff\r\n");
        }
    }

    proptest! {
        /// Any body whose lines end in CRLF survives stuffing and decoding byte for byte,
        /// at any chunk size.
        #[test]
        fn any_body_round_trips(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![Just(b'.'), Just(b'\r'), Just(b'a'), Just(0u8), Just(0xffu8), any::<u8>()]
                        .prop_filter("no LF inside a line", |b| *b != b'\n'),
                    0..40),
                0..30),
            chunk in 1usize..64,
        ) {
            let mut body = Vec::new();
            for line in &lines {
                body.extend_from_slice(line);
                body.extend_from_slice(b"\r\n");
            }
            let wire = dot_stuff(&body);
            let (decoded, leftover, done) = decode_chunked(&wire, chunk);
            prop_assert!(done);
            prop_assert!(leftover.is_empty());
            prop_assert_eq!(decoded, body);
        }

        /// Arbitrary bytes never panic, and decoding in chunks equals decoding whole.
        #[test]
        fn chunking_never_changes_the_result(wire in proptest::collection::vec(any::<u8>(), 0..400), chunk in 1usize..32) {
            let whole = decode_chunked(&wire, wire.len().max(1));
            let pieces = decode_chunked(&wire, chunk);
            prop_assert_eq!(whole, pieces);
        }
    }
}
