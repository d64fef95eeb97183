//! Any body, dot-stuffed as a server sends it and decoded in reads of any size, comes back
//! octet for octet, and the next pipelined reply after the terminator is left untouched.
//!
//! Input: a read-size line (see `ChunkSizes`), a line that is the pipelined bytes after the
//! body, then the body. Seeds: `fuzz/seeds/body_roundtrip/`.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pop3::codec::{BodyDecoder, dot_stuff};
use pop3_fuzz::chunks::ChunkSizes;
use pop3_fuzz::layout::take_header;
use pop3_fuzz::steer::{BODY_TOKENS, into_tokens};

/// Decodes `wire` arriving in `chunks` the way the session does: a buffer the reads are
/// appended to, and the decoder consuming from its front. Returns body, what was left
/// unconsumed, and whether the terminator was seen.
fn decode(wire: &[u8], chunks: &ChunkSizes) -> (Vec<u8>, Vec<u8>, bool, u64) {
    let mut decoder = BodyDecoder::new();
    let mut out = BytesMut::new();
    let mut buffered: Vec<u8> = Vec::new();
    let mut consumed = 0;
    for piece in chunks.split(wire) {
        buffered.extend_from_slice(piece);
        if decoder.is_done() {
            continue;
        }
        let used = decoder.decode(&buffered, &mut out);
        assert!(used <= buffered.len());
        if !decoder.is_done() {
            // Without a terminator, every octet offered is consumed: nothing is held back
            // in the buffer, only in the decoder's few bits of state.
            assert_eq!(used, buffered.len());
        }
        // Unstuffing only removes octets. (One read may give out more than it took: a
        // `.` CR held over from the read before comes out as CR.)
        consumed += used;
        assert!(out.len() <= consumed);
        buffered.drain(..used);
    }
    (out.to_vec(), buffered, decoder.is_done(), decoder.octets())
}

fn check_round_trip(body: &[u8], after: &[u8], chunks: &ChunkSizes) {
    let mut wire = dot_stuff(body);
    wire.extend_from_slice(after);
    // dot_stuff ends an unterminated last line with CRLF, as a server does.
    let mut expected = body.to_vec();
    if !expected.is_empty() && expected.last() != Some(&b'\n') {
        expected.extend_from_slice(b"\r\n");
    }
    let (decoded, left, done, octets) = decode(&wire, chunks);
    assert!(done, "terminator not found");
    assert_eq!(decoded, expected, "body changed in the round trip");
    assert_eq!(left, after, "bytes after the terminator were touched");
    assert_eq!(octets, decoded.len() as u64);
}

fuzz_target!(|input: &[u8]| {
    let mut rest = input;
    let chunks = ChunkSizes::parse(take_header(&mut rest));
    let mut after = take_header(&mut rest).to_vec();
    after.extend_from_slice(b"\r\n");
    let body = rest;

    check_round_trip(body, &after, &chunks);
    check_round_trip(&into_tokens(body, BODY_TOKENS), &after, &chunks);

    // Arbitrary wire bytes (not produced by dot_stuff): how they were split never matters.
    for wire in [body.to_vec(), into_tokens(body, BODY_TOKENS)] {
        let split = decode(&wire, &chunks);
        let whole = decode(&wire, &ChunkSizes::whole());
        assert_eq!(
            split, whole,
            "the result depends on how the reads were split"
        );
        assert_eq!(split.3, split.0.len() as u64);
    }
});
