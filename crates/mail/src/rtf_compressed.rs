//! Compressed RTF (MS-OXRTFCP, "LZFu"): how Outlook stores a message's RTF body.
//!
//! A `winmail.dat` often carries the message text only as `PR_RTF_COMPRESSED`: a
//! 16-byte header (compressed size, raw size, "LZFu" or "MELA", CRC) and then
//! LZ77-style runs against a 4096-byte ring dictionary that starts out holding a
//! fixed 207-byte RTF preamble. This undoes that, and nothing else.
//!
//! The input is untrusted: the output never grows past the declared raw size nor
//! [`MAX_RTF_BYTES`], every read is bounds-checked, and damage (a bad CRC, a stream
//! cut short) keeps what was decoded and says so, like the rest of the TNEF reader.

/// The most RTF one body may decompress to, whatever its header claims. Real
/// message bodies are kilobytes; this only stops a hostile header from asking for
/// gigabytes.
pub(crate) const MAX_RTF_BYTES: usize = 16 * 1024 * 1024;

/// The dictionary's initial contents (MS-OXRTFCP, "Dictionary"). Writers pick matches
/// against it, so a reader must start from exactly these 207 bytes.
const INITIAL_DICTIONARY: &[u8; 207] = b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}\
{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New \
RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx";

const DICTIONARY_SIZE: usize = 4096;
const HEADER_SIZE: usize = 16;
/// COMPSIZE counts the contents plus the 12 header bytes after itself.
const COMPSIZE_OVERHEAD: usize = 12;
const MAGIC_COMPRESSED: u32 = 0x7546_5a4c; // "LZFu"
const MAGIC_UNCOMPRESSED: u32 = 0x414c_454d; // "MELA"

/// RTF taken out of a `PR_RTF_COMPRESSED` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DecompressedRtf {
    /// The RTF bytes (RTF is 7-bit text with escapes, but nothing here assumes it).
    pub rtf: Vec<u8>,
    /// What was damaged or cut, in words, for the message's processing log.
    pub notes: Vec<String>,
}

/// Why a `PR_RTF_COMPRESSED` value could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RtfCompressedError {
    /// Fewer bytes than the 16-byte header.
    #[error("compressed RTF is {0} bytes, shorter than its 16-byte header")]
    TooShort(usize),
    /// Neither "LZFu" nor "MELA".
    #[error("compressed RTF has an unknown type 0x{0:08x}")]
    UnknownType(u32),
}

/// Decompresses a `PR_RTF_COMPRESSED` value, producing at most `limit` bytes (and
/// never more than the header's raw size or [`MAX_RTF_BYTES`]).
pub(crate) fn decompress_rtf(
    data: &[u8],
    limit: usize,
) -> Result<DecompressedRtf, RtfCompressedError> {
    let header = data
        .get(..HEADER_SIZE)
        .ok_or(RtfCompressedError::TooShort(data.len()))?;
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (comp_size, raw_size, magic, stored_crc) = (word(0), word(4), word(8), word(12));

    let mut notes = Vec::new();
    let declared = (comp_size as usize).saturating_sub(COMPSIZE_OVERHEAD);
    let available = data.len() - HEADER_SIZE;
    if declared > available {
        notes.push(format!(
            "compressed RTF declares {declared} bytes of content but has {available}; read what is there"
        ));
    }
    let contents = &data[HEADER_SIZE..HEADER_SIZE + declared.min(available)];

    let raw_size = raw_size as usize;
    let cap = raw_size.min(limit).min(MAX_RTF_BYTES);
    if cap < raw_size {
        notes.push(format!(
            "compressed RTF declares {raw_size} bytes; only the first {cap} were read"
        ));
    }

    let rtf = match magic {
        MAGIC_COMPRESSED => {
            let crc = crc32(contents);
            if crc != stored_crc {
                notes.push(format!(
                    "compressed RTF fails its CRC (stored 0x{stored_crc:08x}, computed 0x{crc:08x}); read anyway"
                ));
            }
            let (rtf, ended) = expand(contents, cap);
            if !ended && rtf.len() < cap {
                notes.push(format!(
                    "compressed RTF ends without its end marker after {} of {raw_size} bytes",
                    rtf.len()
                ));
            }
            rtf
        }
        MAGIC_UNCOMPRESSED => {
            // "MELA": the contents are the RTF itself, stored as is.
            contents[..contents.len().min(cap)].to_vec()
        }
        other => return Err(RtfCompressedError::UnknownType(other)),
    };
    Ok(DecompressedRtf { rtf, notes })
}

/// Runs the LZFu token stream (MS-OXRTFCP, "Decompression") until the end marker,
/// the end of the input, or `cap` output bytes. Returns the output and whether the
/// end marker was seen.
fn expand(contents: &[u8], cap: usize) -> (Vec<u8>, bool) {
    let mut dictionary = [0u8; DICTIONARY_SIZE];
    dictionary[..INITIAL_DICTIONARY.len()].copy_from_slice(INITIAL_DICTIONARY);
    let mut write = INITIAL_DICTIONARY.len();
    // Nine control and token bytes expand to at most 8 * 17 bytes: reserve the
    // smaller of that and the cap, so a lying raw size allocates nothing.
    let mut out = Vec::with_capacity(cap.min(contents.len().saturating_mul(16)));
    let mut input = contents.iter().copied();

    while let Some(control) = input.next() {
        for bit in 0..8 {
            if out.len() >= cap {
                return (out, false);
            }
            if control & (1 << bit) == 0 {
                let Some(literal) = input.next() else {
                    return (out, false);
                };
                out.push(literal);
                dictionary[write] = literal;
                write = (write + 1) % DICTIONARY_SIZE;
                continue;
            }
            let (Some(high), Some(low)) = (input.next(), input.next()) else {
                return (out, false);
            };
            let reference = u16::from_be_bytes([high, low]);
            let offset = usize::from(reference >> 4);
            // A reference to the write position itself is the end marker.
            if offset == write {
                return (out, true);
            }
            let length = usize::from(reference & 0xf) + 2;
            for step in 0..length {
                if out.len() >= cap {
                    return (out, false);
                }
                // Byte by byte, so a reference that overlaps the bytes it is
                // writing repeats them, as the format requires (spec example 2).
                let byte = dictionary[(offset + step) % DICTIONARY_SIZE];
                out.push(byte);
                dictionary[write] = byte;
                write = (write + 1) % DICTIONARY_SIZE;
            }
        }
    }
    (out, false)
}

/// The CRC of MS-OXRTFCP: the reflected CRC-32 table (polynomial
/// 0xEDB88320), but starting from 0 and without the final inversion.
fn crc32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |crc, &b| {
        CRC_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8)
    })
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// MS-OXRTFCP, "Example 1: Simple Compressed RTF".
    pub(crate) const SPEC_EXAMPLE_1: &[u8] = b"\x2d\x00\x00\x00\x2b\x00\x00\x00LZFu\
\xf1\xc5\xc7\xa7\x03\x00\x0a\x00rcpg125\x42\x32\x0a\xf3\x20hel\x09\x00\x20bw\x05\xb0ld}\
\x0a\x80\x0f\xa0";
    const SPEC_EXAMPLE_1_RTF: &[u8] = b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n";

    /// MS-OXRTFCP, "Example 2: Reading a Token from the Dictionary That
    /// Crosses WritePosition".
    const SPEC_EXAMPLE_2: &[u8] = b"\x1a\x00\x00\x00\x1c\x00\x00\x00LZFu\xe2\xd4\x4b\x51\
\x41\x00\x04\x20WXYZ\x0d\x6e}\x01\x0e\xb0";
    const SPEC_EXAMPLE_2_RTF: &[u8] = b"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}";

    /// A small greedy LZFu writer, for tests only: round trips of long and
    /// repetitive RTF that no spec example covers (dictionary wrap-around,
    /// references that cross the write position, runs of every length).
    pub(crate) fn compress_for_tests(rtf: &[u8]) -> Vec<u8> {
        let mut dictionary = [0u8; DICTIONARY_SIZE];
        dictionary[..INITIAL_DICTIONARY.len()].copy_from_slice(INITIAL_DICTIONARY);
        let mut write = INITIAL_DICTIONARY.len();
        let mut body = Vec::new();
        let mut i = 0;
        let mut ended = false;
        while !ended {
            let control_at = body.len();
            body.push(0u8);
            for bit in 0..8 {
                if i >= rtf.len() {
                    body[control_at] |= 1 << bit;
                    body.extend_from_slice(&((write as u16) << 4).to_be_bytes());
                    ended = true;
                    break;
                }
                // The byte a reference at `offset` yields at `step`, counting the
                // bytes it has itself written so far.
                let yields = |offset: usize, step: usize| {
                    let pos = (offset + step) % DICTIONARY_SIZE;
                    let since_write = (pos + DICTIONARY_SIZE - write) % DICTIONARY_SIZE;
                    if since_write < step {
                        rtf[i + since_write]
                    } else {
                        dictionary[pos]
                    }
                };
                let (mut best_offset, mut best_len) = (0, 0);
                for offset in (0..DICTIONARY_SIZE).filter(|&o| o != write) {
                    let len = (0..17)
                        .take_while(|&s| i + s < rtf.len() && yields(offset, s) == rtf[i + s])
                        .count();
                    if len > best_len {
                        (best_offset, best_len) = (offset, len);
                    }
                }
                let taken = if best_len >= 2 {
                    body[control_at] |= 1 << bit;
                    let token = ((best_offset as u16) << 4) | (best_len as u16 - 2);
                    body.extend_from_slice(&token.to_be_bytes());
                    best_len
                } else {
                    body.push(rtf[i]);
                    1
                };
                for &b in &rtf[i..i + taken] {
                    dictionary[write] = b;
                    write = (write + 1) % DICTIONARY_SIZE;
                }
                i += taken;
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(&((body.len() + COMPSIZE_OVERHEAD) as u32).to_le_bytes());
        out.extend_from_slice(&(rtf.len() as u32).to_le_bytes());
        out.extend_from_slice(&MAGIC_COMPRESSED.to_le_bytes());
        out.extend_from_slice(&crc32(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn initial_dictionary_is_the_207_bytes_of_the_spec() {
        assert_eq!(INITIAL_DICTIONARY.len(), 207);
        assert!(INITIAL_DICTIONARY.ends_with(b"\\b\\i\\u\\tab\\tx"));
    }

    #[test]
    fn spec_example_1_decompresses_byte_exact() {
        let out = decompress_rtf(SPEC_EXAMPLE_1, usize::MAX).expect("valid");
        assert_eq!(out.rtf, SPEC_EXAMPLE_1_RTF);
        assert!(out.notes.is_empty(), "{:?}", out.notes);
    }

    #[test]
    fn spec_example_2_reference_crossing_the_write_position_repeats() {
        let out = decompress_rtf(SPEC_EXAMPLE_2, usize::MAX).expect("valid");
        assert_eq!(out.rtf, SPEC_EXAMPLE_2_RTF);
        assert!(out.notes.is_empty(), "{:?}", out.notes);
    }

    #[test]
    fn crc_is_the_specs_crc_of_the_contents() {
        assert_eq!(crc32(&SPEC_EXAMPLE_1[16..]), 0xa7c7_c5f1);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn test_compressor_reproduces_the_spec_examples() {
        assert_eq!(compress_for_tests(SPEC_EXAMPLE_1_RTF), SPEC_EXAMPLE_1);
        assert_eq!(compress_for_tests(SPEC_EXAMPLE_2_RTF), SPEC_EXAMPLE_2);
    }

    #[test]
    fn long_rtf_round_trips_across_dictionary_wrap_around() {
        let mut rtf = b"{\\rtf1\\ansi\\ansicpg1252 ".to_vec();
        for n in 0..700u32 {
            rtf.extend_from_slice(
                format!("line {n} \\'e9t\\'e9 {}\\par\r\n", n * 7919 % 1000).as_bytes(),
            );
        }
        rtf.push(b'}');
        assert!(rtf.len() > 3 * DICTIONARY_SIZE);
        let out = decompress_rtf(&compress_for_tests(&rtf), usize::MAX).expect("valid");
        assert_eq!(out.rtf, rtf);
        assert!(out.notes.is_empty(), "{:?}", out.notes);
    }

    #[test]
    fn uncompressed_mela_is_taken_as_is() {
        let mut data = Vec::new();
        let rtf = b"{\\rtf1\\ansi\\ansicpg1252\\pard test}";
        data.extend_from_slice(&((rtf.len() + 12) as u32).to_le_bytes());
        data.extend_from_slice(&(rtf.len() as u32).to_le_bytes());
        data.extend_from_slice(b"MELA\0\0\0\0");
        data.extend_from_slice(rtf);
        assert_eq!(decompress_rtf(&data, usize::MAX).expect("valid").rtf, rtf);
    }

    #[test]
    fn output_stops_at_the_limit_and_says_so() {
        let out = decompress_rtf(SPEC_EXAMPLE_1, 10).expect("valid");
        assert_eq!(out.rtf, &SPEC_EXAMPLE_1_RTF[..10]);
        assert!(
            out.notes[0].contains("only the first 10"),
            "{:?}",
            out.notes
        );
    }

    #[test]
    fn a_raw_size_larger_than_the_content_allocates_nothing_for_it() {
        let mut data = SPEC_EXAMPLE_1.to_vec();
        data[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let out = decompress_rtf(&data, usize::MAX).expect("valid");
        assert_eq!(out.rtf, SPEC_EXAMPLE_1_RTF);
        assert!(out.rtf.capacity() < 1024, "{}", out.rtf.capacity());
    }

    #[test]
    fn damaged_streams_keep_what_was_decoded_and_say_so() {
        let mut bad_crc = SPEC_EXAMPLE_1.to_vec();
        bad_crc[12] ^= 1;
        let out = decompress_rtf(&bad_crc, usize::MAX).expect("readable");
        assert_eq!(out.rtf, SPEC_EXAMPLE_1_RTF);
        assert!(out.notes[0].contains("CRC"), "{:?}", out.notes);

        let cut = &SPEC_EXAMPLE_1[..30];
        let out = decompress_rtf(cut, usize::MAX).expect("readable");
        assert!(SPEC_EXAMPLE_1_RTF.starts_with(&out.rtf));
        assert!(
            out.notes.iter().any(|n| n.contains("has 14")),
            "{:?}",
            out.notes
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..Default::default() })]

        #[test]
        fn any_bytes_decompress_within_the_declared_size_and_the_limit(
            comp_size in any::<u32>(),
            raw_size in 0u32..100_000,
            magic in prop_oneof![
                Just(MAGIC_COMPRESSED),
                Just(MAGIC_UNCOMPRESSED),
                any::<u32>(),
            ],
            contents in prop::collection::vec(any::<u8>(), 0..3000),
            limit in 0usize..200_000,
        ) {
            let mut data = Vec::new();
            for word in [comp_size, raw_size, magic, 0] {
                data.extend_from_slice(&word.to_le_bytes());
            }
            data.extend_from_slice(&contents);
            if let Ok(out) = decompress_rtf(&data, limit) {
                prop_assert!(out.rtf.len() <= (raw_size as usize).min(limit));
            }
        }
    }

    proptest! {
        // The test compressor searches the whole dictionary per byte: few, short cases.
        #![proptest_config(ProptestConfig { cases: 24, ..Default::default() })]

        #[test]
        fn whatever_the_test_compressor_writes_decompresses_to_the_input(
            rtf in prop::collection::vec(
                prop_oneof![
                    prop::sample::select(b"{}\\ rtfpa".to_vec()),
                    any::<u8>(),
                ],
                0..300,
            ),
        ) {
            let out = decompress_rtf(&compress_for_tests(&rtf), usize::MAX).expect("valid");
            prop_assert_eq!(out.rtf, rtf);
            prop_assert!(out.notes.is_empty());
        }
    }

    #[test]
    fn unknown_types_and_short_input_are_errors() {
        assert_eq!(
            decompress_rtf(b"0123456789abcde", usize::MAX),
            Err(RtfCompressedError::TooShort(15))
        );
        assert_eq!(
            decompress_rtf(b"\x10\0\0\0\x11\0\0\0ABCD\xff\xff\xff\xff", usize::MAX),
            Err(RtfCompressedError::UnknownType(0x4443_4241))
        );
    }
}
