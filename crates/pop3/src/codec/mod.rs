//! The I/O-free half of the client: bytes in, typed replies out; commands in, bytes out.
//!
//! Nothing here touches a socket or a clock, so every protocol case — pipelined replies
//! split at any byte, a SASL continuation, a body cut mid-line — is a plain unit test.

mod body;
mod command;
mod line;
mod listing;
mod reply;

pub use body::{BodyDecoder, dot_stuff};
pub use command::{Command, CommandKind};
pub use line::{LineError, take_line};
pub use listing::{parse_list_entry, parse_stat, parse_uidl_entry};
pub use reply::{RespCode, StatusLine, parse_status_line};
