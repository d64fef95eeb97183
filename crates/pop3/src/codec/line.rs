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
        // The limit is on the line's content, whichever line end it has.
        Some(lf) if lf - usize::from(lf > 0 && buf[lf - 1] == b'\r') > limit => {
            Err(LineError::TooLong { limit })
        }
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
    fn the_limit_is_the_same_for_crlf_and_bare_lf() {
        let mut line = vec![b'x'; 512];
        line.extend_from_slice(b"\r\n");
        let mut crlf = BytesMut::from(&line[..]);
        assert_eq!(take_line(&mut crlf, 512).unwrap().unwrap().len(), 512);
        let mut lf = BytesMut::from(&line[..]);
        lf[512] = b'\n';
        lf.truncate(513);
        assert_eq!(take_line(&mut lf, 512).unwrap().unwrap().len(), 512);
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
