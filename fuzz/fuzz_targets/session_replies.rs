//! Pipelined commands, then a server's bytes split anywhere: the session must never panic,
//! must match every reply to its command, and must not care where the reads were split.
//!
//! Input: a script line (see `script::parse`), a read-size line (see `ChunkSizes`), then
//! the server's bytes. Seeds: `fuzz/seeds/session_replies/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3_fuzz::chunks::ChunkSizes;
use pop3_fuzz::layout::take_header;
use pop3_fuzz::replay::replay;
use pop3_fuzz::script;
use pop3_fuzz::steer::into_replies;

fuzz_target!(|input: &[u8]| {
    let mut rest = input;
    let script = script::parse(take_header(&mut rest));
    let chunks = ChunkSizes::parse(take_header(&mut rest));
    for server in std::iter::once(rest.to_vec()).chain(into_replies(rest)) {
        let split = replay(&script, &server, &chunks);
        let whole = replay(&script, &server, &ChunkSizes::whole());
        assert_eq!(
            split, whole,
            "the result depends on how the reads were split"
        );
    }
});
