//! Read sizes taken from the fuzz input, so the fuzzer picks where the network splits.

/// Sizes of successive reads, used in turn and then again from the first.
///
/// Written as one header line: `1`–`9` are those sizes, `0` means "everything left in one
/// read", and any other byte is a read of that many octets (`A` = 65, `\xff` = 255). An
/// empty line means one read of the whole input.
#[derive(Debug, Clone)]
pub struct ChunkSizes(Vec<usize>);

impl ChunkSizes {
    /// Most sizes read from a header; more would only slow each run.
    const MAX: usize = 32;

    pub fn parse(header: &[u8]) -> ChunkSizes {
        ChunkSizes(
            header
                .iter()
                .take(Self::MAX)
                .map(|&b| match b {
                    b'0' => usize::MAX,
                    b'1'..=b'9' => usize::from(b - b'0'),
                    other => usize::from(other).max(1),
                })
                .collect(),
        )
    }

    /// One read of everything.
    pub fn whole() -> ChunkSizes {
        ChunkSizes(Vec::new())
    }

    /// Cuts `bytes` into the reads, in order; together they are exactly `bytes`.
    pub fn split<'a>(&self, bytes: &'a [u8]) -> Vec<&'a [u8]> {
        if self.0.is_empty() {
            return vec![bytes];
        }
        let mut pieces = Vec::new();
        let mut rest = bytes;
        for &size in self.0.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            pieces.push(piece);
            rest = tail;
        }
        pieces
    }
}
