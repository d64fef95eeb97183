//! Finding one reply line in a read buffer, leniently.

use bytes::{Buf, BytesMut};

/// Why a line could not be taken from the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// More than `limit` octets arrived without a line end. A server that does this is
    /// broken or hostile; buffering on would let it grow our memory without bound.
    TooLong { limit: usize },
}

/// Takes one line off the front of `buf`, without its line end.
///
/// Real servers end lines with CRLF, but some send a bare LF: both are accepted, and a
/// trailing CR is dropped. Returns `Ok(None)` when no full line is buffered yet — that is
/// the normal "read more" outcome, not an error.
pub fn take_line(buf: &mut BytesMut, limit: usize) -> Result<Option<BytesMut>, LineError> {
    match memchr::memchr(b'\n', buf) {
        Some(lf) if lf > limit => Err(LineError::TooLong { limit }),
        Some(lf) => {
            let mut line = buf.split_to(lf);
            buf.advance(1);
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > limit => Err(LineError::TooLong { limit }),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_bare_lf_both_end_a_line() {
        let mut buf = BytesMut::from(&b"+OK one\r\n+OK two\n+OK thr"[..]);
        assert_eq!(take_line(&mut buf, 512).unwrap().unwrap(), &b"+OK one"[..]);
        assert_eq!(take_line(&mut buf, 512).unwrap().unwrap(), &b"+OK two"[..]);
        assert_eq!(take_line(&mut buf, 512).unwrap(), None);
        assert_eq!(&buf[..], b"+OK thr");
    }

    #[test]
    fn an_endless_line_is_refused_not_buffered() {
        let mut buf = BytesMut::from(&[b'x'; 600][..]);
        assert_eq!(
            take_line(&mut buf, 512),
            Err(LineError::TooLong { limit: 512 })
        );
    }
}
