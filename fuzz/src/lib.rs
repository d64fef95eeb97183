//! Shared pieces of the POP3 fuzz targets.
//!
//! Every target reads its input as a few LF-ended header lines and a rest, so a seed can be
//! written by hand in a text editor (`fuzz/seeds/<target>/`) and every byte string is still
//! a valid input. Following mail-parser's fuzz targets, each input is tried twice: as raw
//! bytes, and mapped onto an alphabet of POP3 tokens so that random bytes become replies
//! that get past the first `+OK` check.

#![forbid(unsafe_code)]

pub mod chunks;
pub mod layout;
pub mod replay;
pub mod script;
pub mod steer;
