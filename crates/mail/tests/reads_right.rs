//! Every mail reads right (issue 18): one made message per fault agents met, each
//! asserting the exact text a ticket shows. The bytes are what old or broken
//! mailers really send; legacy-charset bodies are encoded with encoding_rs, so the
//! fixture is exactly those bytes.

use mail::parse;

/// A message with these header lines and this body (CRLF line ends).
fn message(headers: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    for line in headers {
        raw.extend_from_slice(line);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"Message-ID: <fixture@made.example>\r\n\r\n");
    raw.extend_from_slice(body);
    raw
}

fn encoded(label: &str, text: &str) -> Vec<u8> {
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes()).expect("a known charset");
    let (bytes, _, unmappable) = encoding.encode(text);
    assert!(!unmappable, "{label} cannot write the fixture text");
    bytes.into_owned()
}

fn notes(message: &mail::ParsedMessage) -> String {
    message.notes.join("\n")
}

#[test]
fn raw_8bit_inside_a_q_encoded_word_reads_with_the_words_charset() {
    let raw = message(
        &[
            b"From: a@example.org",
            b"Subject: =?iso-8859-1?Q?Die_Hasen_und_die_Fr\xF6sche?=",
        ],
        b"x\r\n",
    );
    let parsed = parse(&raw).expect("parses");
    assert_eq!(parsed.subject.as_deref(), Some("Die Hasen und die Frösche"));
}

#[test]
fn white_space_between_encoded_words_and_plain_text_is_kept() {
    let raw = message(
        &[
            b"From: =?ISO-8859-1?Q?Gabr=EDel?= \"A.\" =?ISO-8859-1?Q?P=E9tursson?= <gabriel@example.is>",
            b"Subject: =?utf-8?Q?R=C3=A9union?= de =?utf-8?Q?l=27=C3=A9quipe?= =?utf-8?Q?_demain?=",
        ],
        b"x\r\n",
    );
    let parsed = parse(&raw).expect("parses");
    let from = parsed.from.expect("a sender");
    assert_eq!(from.name.as_deref(), Some("Gabríel A. Pétursson"));
    assert_eq!(from.address, "gabriel@example.is");
    assert_eq!(
        parsed.subject.as_deref(),
        Some("Réunion de l'équipe demain")
    );
}

#[test]
fn a_character_split_across_encoded_words_is_joined() {
    // 👻 is F0 9F 91 BB: its bytes are cut between two words, in the name and the
    // subject alike.
    let raw = message(
        &[
            b"From: =?UTF-8?Q?Sender_Name_=F0=9F?= =?UTF-8?Q?=91=BB?= <sender@example.org>",
            b"Subject: =?UTF-8?B?8J+R?= =?UTF-8?B?uyBib28=?=",
        ],
        b"x\r\n",
    );
    let parsed = parse(&raw).expect("parses");
    assert_eq!(
        parsed.from.and_then(|a| a.name).as_deref(),
        Some("Sender Name 👻")
    );
    assert_eq!(parsed.subject.as_deref(), Some("👻 boo"));
}

/// Undeclared legacy bodies of a realistic length, as a customer's old client
/// writes them: no `charset`, no `Content-Type` at all.
fn undeclared(label: &str, text: &str) -> mail::ParsedMessage {
    let raw = message(
        &[
            b"From: customer@example.com",
            b"Subject: help",
            b"MIME-Version: 1.0",
        ],
        &encoded(label, text),
    );
    parse(&raw).expect("parses")
}

#[test]
fn an_undeclared_big5_body_is_detected() {
    let text = "您好，我的電腦昨天開始無法連線到公司的伺服器。\r\n我已經重新開機兩次，但是問題仍然存在。請問應該怎麼處理？\r\n謝謝您的幫忙。";
    let parsed = undeclared("big5", text);
    assert_eq!(parsed.text_body, text.replace("\r\n", "\n"));
    assert!(
        notes(&parsed).contains("Big5, detected"),
        "{}",
        notes(&parsed)
    );
}

#[test]
fn an_undeclared_gbk_body_is_detected() {
    let text = "您好，我们的打印机从昨天开始无法使用。\r\n每次打印都会出现错误信息，请问应该如何解决这个问题？\r\n非常感谢您的帮助。";
    let parsed = undeclared("gbk", text);
    assert_eq!(parsed.text_body, text.replace("\r\n", "\n"));
    assert!(
        notes(&parsed).contains("GBK, detected"),
        "{}",
        notes(&parsed)
    );
}

#[test]
fn an_undeclared_shift_jis_body_is_detected() {
    let text = "お世話になっております。\r\n昨日注文した商品がまだ届いておりません。\r\n配送状況を確認していただけますでしょうか。よろしくお願いいたします。";
    let parsed = undeclared("shift_jis", text);
    assert_eq!(parsed.text_body, text.replace("\r\n", "\n"));
    assert!(
        notes(&parsed).contains("Shift_JIS, detected"),
        "{}",
        notes(&parsed)
    );
}

#[test]
fn an_undeclared_koi8_r_body_is_detected() {
    let text = "Здравствуйте! Я не могу войти в свою учётную запись уже второй день.\r\nПароль я не менял, но система пишет, что он неверный. Помогите, пожалуйста.";
    let parsed = undeclared("koi8-r", text);
    assert_eq!(parsed.text_body, text.replace("\r\n", "\n"));
    assert!(notes(&parsed).contains("KOI8"), "{}", notes(&parsed));
}

#[test]
fn utf8_declared_as_gb2312_reads_as_utf8() {
    let raw = message(
        &[
            b"From: customer@example.com",
            b"Subject: =?gb2312?B?xOO6ww==?=",
            b"MIME-Version: 1.0",
            b"Content-Type: text/plain; charset=gb2312",
            b"Content-Transfer-Encoding: 8bit",
        ],
        "你好，我的账户无法登录。\r\n".as_bytes(),
    );
    let parsed = parse(&raw).expect("parses");
    assert_eq!(parsed.text_body, "你好，我的账户无法登录。");
    // The subject really is GB2312, and stays so.
    assert_eq!(parsed.subject.as_deref(), Some("你好"));
    assert!(notes(&parsed).contains("valid UTF-8"), "{}", notes(&parsed));
}

#[test]
fn a_body_declared_utf8_that_is_not_is_detected() {
    let raw = message(
        &[
            b"From: kunde@example.de",
            b"Subject: Rechnung",
            b"MIME-Version: 1.0",
            b"Content-Type: text/plain; charset=utf-8",
            b"Content-Transfer-Encoding: 8bit",
        ],
        &encoded(
            "windows-1252",
            "Sehr geehrte Damen und Herren,\r\nbitte schicken Sie mir die Rechnung für März noch einmal – die erste ist nicht angekommen.\r\nMit freundlichen Grüßen\r\n",
        ),
    );
    let parsed = parse(&raw).expect("parses");
    assert_eq!(
        parsed.text_body,
        "Sehr geehrte Damen und Herren,\nbitte schicken Sie mir die Rechnung für März noch einmal – die erste ist nicht angekommen.\nMit freundlichen Grüßen"
    );
    assert!(
        notes(&parsed).contains("declares \"utf-8\", but the bytes are not valid utf-8"),
        "{}",
        notes(&parsed)
    );
}

#[test]
fn a_word_document_labelled_text_plain_is_offered_as_a_file() {
    // The start of a real .doc: the OLE2 signature, a header full of NULs and
    // control bytes, and the directory entry naming the WordDocument stream.
    let mut doc = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
    doc.extend_from_slice(&[0u8; 16]);
    doc.extend_from_slice(b"\x3E\x00\x03\x00\xFE\xFF\x09\x00\x06\x00");
    doc.extend_from_slice(&[0u8; 480]);
    doc.extend("WordDocument".encode_utf16().flat_map(u16::to_le_bytes));
    doc.extend_from_slice(&[0u8; 40]);
    let body = base64_lines(&doc);
    let raw = message(
        &[
            b"From: scanner@example.com",
            b"Subject: the contract",
            b"MIME-Version: 1.0",
            b"Content-Type: multipart/mixed; boundary=\"b\"",
        ],
        format!(
            "--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nPlease find the contract.\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b--\r\n"
        )
        .as_bytes(),
    );
    let parsed = parse(&raw).expect("parses");
    assert_eq!(
        parsed.text_body,
        "Please find the contract.\n[This part of the message is not text but a Word document: it is attached as \"document.doc\".]"
    );
    let file = parsed
        .attachments
        .iter()
        .find(|a| a.content_type == "application/msword")
        .expect("the document is an attachment");
    assert_eq!(file.name.as_deref(), Some("document.doc"));
    assert_eq!(file.data, doc);
    assert!(!parsed.text_body.contains('\0'));
}

#[test]
fn a_utf16_part_reads_as_text() {
    let text = "Hello, this part is UTF-16 without a byte order mark.";
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let raw = message(
        &[
            b"From: a@example.org",
            b"Subject: utf-16",
            b"MIME-Version: 1.0",
            b"Content-Type: text/plain; charset=iso-8859-1",
            b"Content-Transfer-Encoding: base64",
        ],
        base64_lines(&utf16).as_bytes(),
    );
    let parsed = parse(&raw).expect("parses");
    assert_eq!(parsed.text_body, text);
    assert!(parsed.attachments.is_empty());
    assert!(notes(&parsed).contains("UTF-16LE"), "{}", notes(&parsed));
}

/// Base64 in 76-character lines.
fn base64_lines(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out.as_bytes()
        .chunks(76)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}
