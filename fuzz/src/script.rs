//! The client's side of a fuzz run: which commands are pipelined before the server speaks.

use pop3::CommandKind;
use pop3::codec::Command;

/// The reply a command waits for, as the fuzz model tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Greeting,
    /// `+OK`/`-ERR` on one line.
    Status(CommandKind),
    /// `AUTH`: challenges, then `+OK`/`-ERR`.
    Auth,
    Stat,
    /// `LIST n`
    Scan,
    /// `UIDL n`
    Unique,
    /// `LIST`
    Listing,
    /// `UIDL`
    UniqueIds,
    Capa,
    /// `RETR n` or `TOP n 0`.
    Body(CommandKind),
}

impl Reply {
    pub fn command(self) -> CommandKind {
        match self {
            Reply::Greeting => CommandKind::Greeting,
            Reply::Status(kind) | Reply::Body(kind) => kind,
            Reply::Auth => CommandKind::Auth,
            Reply::Stat => CommandKind::Stat,
            Reply::Scan | Reply::Listing => CommandKind::List,
            Reply::Unique | Reply::UniqueIds => CommandKind::Uidl,
            Reply::Capa => CommandKind::Capa,
        }
    }

    /// Whether the session drops the command from its queue at the status line, before
    /// the reply's event (the listing lines are still to come).
    pub fn is_listing(self) -> bool {
        matches!(self, Reply::Listing | Reply::UniqueIds | Reply::Capa)
    }
}

/// Most commands read from a script line; a longer pipeline finds nothing new.
const MAX_COMMANDS: usize = 48;

/// Reads a script line: one command per byte.
///
/// `C` CAPA, `U` USER, `P` PASS, `S` STAT, `L` LIST, `l` LIST n, `I` UIDL, `i` UIDL n,
/// `R` RETR n, `T` TOP n 0, `D` DELE n, `A` AUTH LOGIN, `Q` QUIT, `N` NOOP, `E` RSET.
/// Digits set `n` for the commands after them (default 1); any other byte picks a
/// command by its value, so every byte string is a script.
pub fn parse(line: &[u8]) -> Vec<(Command, Reply)> {
    const BY_VALUE: &[u8] = b"CUPSLlIiRTDAQNE";
    let mut n: u32 = 1;
    let mut digits = false;
    let mut commands = Vec::new();
    for &b in line {
        if commands.len() == MAX_COMMANDS {
            break;
        }
        if b.is_ascii_digit() {
            let digit = u32::from(b - b'0');
            n = if digits {
                n.wrapping_mul(10).wrapping_add(digit)
            } else {
                digit
            };
            digits = true;
            continue;
        }
        digits = false;
        let letter = if BY_VALUE.contains(&b) {
            b
        } else {
            BY_VALUE[usize::from(b) % BY_VALUE.len()]
        };
        commands.push(command(letter, n));
    }
    commands
}

fn command(letter: u8, n: u32) -> (Command, Reply) {
    use CommandKind as K;
    match letter {
        b'C' => (Command::Capa, Reply::Capa),
        b'U' => (Command::User("support".into()), Reply::Status(K::User)),
        b'P' => (Command::Pass("secret".into()), Reply::Status(K::Pass)),
        b'S' => (Command::Stat, Reply::Stat),
        b'L' => (Command::List(None), Reply::Listing),
        b'l' => (Command::List(Some(n)), Reply::Scan),
        b'I' => (Command::Uidl(None), Reply::UniqueIds),
        b'i' => (Command::Uidl(Some(n)), Reply::Unique),
        b'R' => (Command::Retr(n), Reply::Body(K::Retr)),
        b'T' => (Command::Top { msg: n, lines: 0 }, Reply::Body(K::Top)),
        b'D' => (Command::Dele(n), Reply::Status(K::Dele)),
        b'A' => (
            Command::Auth {
                mechanism: "LOGIN".into(),
                initial: None,
            },
            Reply::Auth,
        ),
        b'Q' => (Command::Quit, Reply::Status(K::Quit)),
        b'N' => (Command::Noop, Reply::Status(K::Noop)),
        _ => (Command::Rset, Reply::Status(K::Rset)),
    }
}
