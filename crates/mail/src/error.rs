//! Why a message could not be parsed.

/// A message that could not be turned into a [`crate::ParsedMessage`].
///
/// Opaque on purpose: callers branch on [`ParseError::is_empty_input`] or
/// [`ParseError::is_parser_panic`] and record [`ParseError::reason`]; the cases behind
/// it can grow. Parsing is best effort, so this is rare: odd charsets, broken MIME
/// and missing headers all still parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    kind: Kind,
    reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Empty,
    Panic,
}

impl ParseError {
    pub(crate) fn empty() -> Self {
        Self {
            kind: Kind::Empty,
            reason: "the message is empty (no bytes other than white space)".to_owned(),
        }
    }

    pub(crate) fn panic(what: &str, payload: &str) -> Self {
        Self {
            kind: Kind::Panic,
            reason: format!("the MIME parser failed on this message ({what}: {payload})"),
        }
    }

    /// The reason in words, for the message's status line.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// True when there was nothing to parse.
    pub fn is_empty_input(&self) -> bool {
        self.kind == Kind::Empty
    }

    /// True when a parser panicked and the panic was caught: a bug to report, with
    /// the raw message kept for reprocessing once it is fixed.
    pub fn is_parser_panic(&self) -> bool {
        self.kind == Kind::Panic
    }
}
