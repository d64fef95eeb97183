//! Composing outgoing messages (filled in by the composer work).
