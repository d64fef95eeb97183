//! The I/O-free session replays whole server transcripts delivered in chunks of 1, 2, 4
//! … 512 octets and must produce identical events every time: real networks split replies
//! anywhere, and a pipelining client sees many replies in one read.

use pop3::codec::Command;
use pop3::{CommandKind, Event, RespCode, ServerError, Session};

const CHUNKS: [usize; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/// Feeds `server` to a session that sent `commands`, `chunk` octets at a time, and
/// collects every event (body chunks joined per message).
fn replay(commands: &[Command], server: &[u8], chunk: usize) -> Vec<Event> {
    let mut session = Session::new();
    for command in commands {
        session.send(command).expect("commands are well-formed");
    }
    let mut events = Vec::new();
    let mut body = Vec::new();
    for piece in server.chunks(chunk) {
        session.input().extend_from_slice(piece);
        while let Some(event) = session.poll_event().expect("transcript is valid POP3") {
            match event {
                Event::BodyData => body.extend_from_slice(&session.take_body()),
                Event::BodyEnd { command, octets } => {
                    assert_eq!(octets as usize, body.len());
                    events.push(Event::Ok {
                        command,
                        text: String::from_utf8_lossy(&body).into_owned(),
                    });
                    body.clear();
                    events.push(Event::BodyEnd { command, octets });
                }
                other => events.push(other),
            }
        }
    }
    assert_eq!(
        session.in_flight(),
        0,
        "every reply was matched at chunk {chunk}"
    );
    events
}

fn assert_same_at_every_chunk_size(commands: &[Command], server: &[u8]) -> Vec<Event> {
    let whole = replay(commands, server, server.len());
    for chunk in CHUNKS {
        assert_eq!(replay(commands, server, chunk), whole, "chunk size {chunk}");
    }
    whole
}

#[test]
fn pipelined_session_decodes_identically_at_every_chunk_size() {
    let commands = [
        Command::Capa,
        Command::User("alice".into()),
        Command::Pass("secret".into()),
        Command::Stat,
        Command::List(None),
        Command::Uidl(None),
        Command::Retr(1),
        Command::Retr(2),
        Command::Top { msg: 1, lines: 0 },
        Command::Dele(1),
        Command::Dele(2),
        Command::Quit,
    ];
    let server = b"+OK Dovecot ready. <1.2@host>\r\n\
+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nSASL PLAIN LOGIN\r\n.\r\n\
+OK\r\n+OK Logged in.\r\n+OK 2 57\r\n\
+OK 2 messages:\r\n1 30\r\n2 27\r\n.\r\n\
+OK\r\n1 000000015e5f7a2b\r\n2 odd uid with spaces\r\n.\r\n\
+OK 30 octets\r\nSubject: a\r\n\r\n..dot line\r\n.\r\n\
+OK 27 octets\r\nSubject: b\r\n\r\nbody\r\n.\r\n\
+OK\r\nSubject: a\r\n\r\n.\r\n\
+OK Marked to be deleted.\r\n-ERR [SYS/TEMP] try later\r\n+OK Logging out, messages deleted.\r\n";
    let events = assert_same_at_every_chunk_size(&commands, server);
    assert!(
        matches!(&events[0], Event::Greeting(g) if g.apop_timestamp.as_deref() == Some("<1.2@host>"))
    );
    assert!(matches!(&events[1], Event::Capabilities(c) if c.pipelining() && c.has_sasl("LOGIN")));
    assert!(matches!(&events[4], Event::Stat(s) if s.count == 2 && s.size == 57));
    assert!(matches!(&events[5], Event::Listing(l) if l.len() == 2 && l[1].size == 27));
    assert!(
        matches!(&events[6], Event::UniqueIds(u) if u[1].uid.as_str() == "odd%20uid%20with%20spaces")
    );
    assert!(
        matches!(&events[8], Event::Ok { text, .. } if text == "Subject: a\r\n\r\n.dot line\r\n")
    );
    assert!(matches!(&events[9], Event::BodyEnd { octets: 25, .. }));
    assert!(events.contains(&Event::Err(ServerError {
        command: CommandKind::Dele,
        code: Some(RespCode::SysTemp),
        text: "try later".into(),
    })));
    assert!(matches!(
        events.last(),
        Some(Event::Ok {
            command: CommandKind::Quit,
            ..
        })
    ));
}

#[test]
fn sloppy_server_with_bare_lf_and_failed_retr_decodes_identically() {
    let commands = [
        Command::Retr(1),
        Command::Retr(2),
        Command::Uidl(None),
        Command::Noop,
    ];
    // Bare LFs throughout, a refused RETR with no body, an 8-bit body, a 120-octet UIDL.
    let long_uid = "u".repeat(120);
    let server =
        format!("+OK hi\n-ERR [IN-USE] locked\n+OK\ncaf\u{e9}\n..\n.\n+OK\n1 {long_uid}\n.\n+OK\n");
    let events = assert_same_at_every_chunk_size(&commands, server.as_bytes());
    assert!(matches!(&events[1], Event::Err(e) if e.code == Some(RespCode::InUse)));
    assert!(matches!(&events[3], Event::Ok { text, .. } if text == "caf\u{e9}\n.\n"));
    assert!(matches!(&events[5], Event::UniqueIds(u) if u[0].uid.as_str() == long_uid));
}

#[test]
fn sasl_continuations_stay_with_their_auth() {
    let commands = [Command::Auth {
        mechanism: "LOGIN".into(),
        initial: None,
    }];
    let server = b"+OK ready\r\n+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n+OK Logged in.\r\n";
    let events = assert_same_at_every_chunk_size(&commands, server);
    assert_eq!(events[1], Event::Challenge(b"VXNlcm5hbWU6".to_vec()));
    assert_eq!(events[2], Event::Challenge(b"UGFzc3dvcmQ6".to_vec()));
    assert!(matches!(
        &events[3],
        Event::Ok {
            command: CommandKind::Auth,
            ..
        }
    ));
}

#[test]
fn garbage_breaks_the_session_for_good() {
    let mut session = Session::new();
    session
        .input()
        .extend_from_slice(b"HTTP/1.1 200 OK\r\n+OK\r\n");
    assert!(session.poll_event().is_err());
    // Never reused: the next bytes could be read as the wrong reply.
    assert!(session.poll_event().is_err());
    assert!(session.send(&Command::Noop).is_err());
}

#[test]
fn an_over_long_status_line_is_refused() {
    let mut session = Session::new();
    session
        .input()
        .extend_from_slice(&vec![b'+'; pop3::MAX_STATUS_LINE + 1]);
    assert!(session.poll_event().is_err());
}

#[test]
fn a_reply_nobody_asked_for_is_a_protocol_error() {
    let mut session = Session::new();
    session
        .input()
        .extend_from_slice(b"+OK hello\r\n+OK surprise\r\n");
    assert!(matches!(session.poll_event(), Ok(Some(Event::Greeting(_)))));
    assert!(session.poll_event().is_err());
}

#[test]
fn a_listing_larger_than_any_real_mailbox_is_refused_in_bounded_memory() {
    let mut session = Session::new();
    session.input().extend_from_slice(b"+OK hi\r\n");
    session.send(&Command::Uidl(None)).expect("send");
    assert!(matches!(session.poll_event(), Ok(Some(Event::Greeting(_)))));
    session.input().extend_from_slice(b"+OK\r\n");
    // 4,000-octet uids: few entries, many octets.
    let line = format!("1 {}\r\n", "u".repeat(4_000));
    let mut fed = 0;
    let result = loop {
        session.input().extend_from_slice(line.as_bytes());
        fed += line.len();
        match session.poll_event() {
            Ok(None) => assert!(
                fed <= pop3::MAX_LISTING_OCTETS + line.len(),
                "never refused"
            ),
            other => break other,
        }
    };
    assert!(
        matches!(result, Err(pop3::ProtocolError::TooManyLines { .. })),
        "{result:?}"
    );
}
