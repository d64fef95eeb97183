//! Telling the new part of a reply from the quoted history.
//!
//! Linear in the number of lines: every check looks at most a few lines ahead.

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

/// At most this many characters in an attribution line group: longer is a paragraph.
const MAX_ATTRIBUTION: usize = 400;

/// Splits a plain-text body into new text, quoted history and signature.
///
/// Agents read a ticket as a conversation; every reply repeating the whole thread
/// below it buries what the customer just said. This finds where the history
/// starts, line by line, with the markers clients actually write:
///
/// - an attribution line, "On Mon, 2 Apr 2012 at 18:26, Bob <bob@x> wrote:", in
///   several languages, also when the client wrapped it over two or three lines;
/// - Outlook's "-----Original Message-----" and its header block
///   ("From: … Sent: … To: … Subject: …", localised, often under a rule of
///   underscores);
/// - a block of `>` quotes that runs to the end; quotes interleaved with answers
///   are removed and the answers kept;
/// - a signature: the `-- ` delimiter, or a "Sent from my iPhone" line at the end.
///
/// A forwarded message is not history: at a "Forwarded message" marker the scan
/// stops and everything is kept. The caller keeps the full body either way; this is
/// for the ticket view only.
pub fn split_reply(text: &str) -> ReplySplit {
    let lines: Vec<&str> = text.lines().collect();
    let quoted_to_end = quoted_or_blank_to_end(&lines);

    let mut cut = lines.len();
    let mut interleaved = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if is_forward_marker(line) {
            break;
        }
        if is_quote_line(lines[i]) {
            if quoted_to_end[i] {
                cut = i;
                break;
            }
            interleaved = true;
            i += 1;
            continue;
        }
        if is_original_message_marker(line) || is_attribution(&lines, i) {
            cut = i;
            break;
        }
        if is_header_block(&lines, i) {
            cut = separator_before(&lines, i).unwrap_or(i);
            break;
        }
        i += 1;
    }

    let (mut body, mut quoted): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for line in &lines[..cut] {
        if interleaved && is_quote_line(line) {
            quoted.push(line);
        } else {
            body.push(line);
        }
    }
    quoted.extend_from_slice(&lines[cut..]);
    if interleaved {
        body = collapse_blank_runs(body);
    }

    let (body, signature) = split_signature(&body);
    ReplySplit {
        reply: join_trimmed(body),
        quoted: Some(join_trimmed(&quoted)).filter(|q| !q.is_empty()),
        signature: signature.map(join_trimmed).filter(|s| !s.is_empty()),
    }
}

fn is_quote_line(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// For each line: is it and everything after it quoted or blank?
fn quoted_or_blank_to_end(lines: &[&str]) -> Vec<bool> {
    let mut out = vec![false; lines.len()];
    let mut all = true;
    for (i, line) in lines.iter().enumerate().rev() {
        all = all && (line.trim().is_empty() || is_quote_line(line));
        out[i] = all;
    }
    out
}

fn is_forward_marker(line: &str) -> bool {
    let lower = line.to_lowercase();
    let core = lower.trim_matches(|c: char| c == '-' || c == '_' || c.is_whitespace());
    [
        "forwarded message",
        "begin forwarded message:",
        "weitergeleitete nachricht",
        "message transféré",
        "mensaje reenviado",
        "messaggio inoltrato",
        "doorgestuurd bericht",
        "vidarebefordrat meddelande",
        "пересылаемое сообщение",
    ]
    .iter()
    .any(|m| core.starts_with(m))
        || lower.starts_with("----- forwarded by")
}

fn is_original_message_marker(line: &str) -> bool {
    if !(line.starts_with("--") || line.starts_with("__")) {
        return false;
    }
    let core = line
        .to_lowercase()
        .trim_matches(|c: char| c == '-' || c == '_' || c.is_whitespace())
        .to_owned();
    [
        "original message",
        "ursprüngliche nachricht",
        "original-nachricht",
        "message d'origine",
        "mensaje original",
        "messaggio originale",
        "oorspronkelijk bericht",
        "originalt meddelande",
        "opprinnelig melding",
        "original meddelelse",
        "alkuperäinen viesti",
        "původní zpráva",
        "wiadomość oryginalna",
        "исходное сообщение",
        "mensagem original",
        "reply message",
    ]
    .contains(&core.as_str())
}

/// "On … wrote:" starting at line `i`, possibly wrapped over up to three lines.
fn is_attribution(lines: &[&str], i: usize) -> bool {
    let first = lines[i].trim();
    if first.is_empty() {
        return false;
    }
    let mut group = String::new();
    for n in 0..3 {
        let Some(line) = lines.get(i + n) else {
            return false;
        };
        let line = line.trim();
        if line.is_empty() || (n > 0 && is_quote_line(line)) {
            return false;
        }
        if !group.is_empty() {
            group.push(' ');
        }
        group.push_str(line);
        if group.len() > MAX_ATTRIBUTION {
            return false;
        }
        // Yandex and some webmails write just `date, "Name" <address>:`.
        let bare_address_colon = group.trim_end().ends_with(">:") && group.contains('@');
        if ends_like_attribution(&group) || (bare_address_colon && has_date_or_time(first)) {
            // A wrapped group must start like an attribution; a one-line one may also
            // be confirmed by dates or by quotes right after it.
            let next_quoted = lines[i + n + 1..]
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| is_quote_line(l));
            let first =
                first.trim_start_matches(|c: char| c == '-' || c == '*' || c.is_whitespace());
            return starts_like_attribution(first)
                || has_date_or_time(first)
                || (n == 0 && next_quoted);
        }
    }
    false
}

fn ends_like_attribution(group: &str) -> bool {
    let lower = group.to_lowercase();
    let lower = lower.trim_end();
    [
        "wrote:",
        "wrote :",
        "writes:",
        "schrieb:",
        "geschrieben:",
        "a écrit :",
        "a écrit:",
        "escribió:",
        "ha scritto:",
        "schreef:",
        "geschreven:",
        "skrev:",
        "napisał:",
        "napisał(a):",
        "napisała:",
        "kirjoitti:",
        "написал:",
        "написал(а):",
        "написала:",
        "escreveu:",
        "yazdı:",
        "írta:",
        "napsal:",
        "napsal(a):",
        "a scris:",
        "έγραψε:",
        "写道：",
        "写道:",
        "のメッセージ:",
    ]
    .iter()
    .any(|s| lower.ends_with(s))
}

fn starts_like_attribution(first: &str) -> bool {
    let lower = first.to_lowercase();
    [
        "on ",
        "am ",
        "le ",
        "el ",
        "il ",
        "op ",
        "den ",
        "w dniu",
        "em ",
        "på ",
        "dne ",
        "pada ",
        "в ",
        "στις ",
        "quoting ",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

fn has_date_or_time(line: &str) -> bool {
    let bytes = line.as_bytes();
    let time = bytes.windows(4).any(|w| {
        w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit() && w[3].is_ascii_digit()
    });
    let year = bytes
        .windows(4)
        .any(|w| w.iter().all(u8::is_ascii_digit) && (w[0] == b'1' || w[0] == b'2'));
    let slash_date = bytes
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && (w[1] == b'/' || w[1] == b'.') && w[2].is_ascii_digit());
    time || year || slash_date
}

/// Outlook's header block (and GMX's, Hotmail's): From, date and To/Subject lines
/// together, localised.
fn is_header_block(lines: &[&str], i: usize) -> bool {
    const FROM: &[&str] = &[
        "from:",
        "von:",
        "de:",
        "de :",
        "da:",
        "van:",
        "från:",
        "fra:",
        "od:",
        "от:",
        "lähettäjä:",
        "feladó:",
    ];
    const DATE: &[&str] = &[
        "sent:",
        "date:",
        "gesendet:",
        "datum:",
        "envoyé :",
        "envoyé:",
        "date :",
        "enviado:",
        "enviado el:",
        "fecha:",
        "inviato:",
        "data:",
        "verzonden:",
        "skickat:",
        "sendt:",
        "wysłano:",
        "отправлено:",
        "lähetetty:",
        "elküldve:",
    ];
    const TO: &[&str] = &[
        "to:",
        "subject:",
        "an:",
        "betreff:",
        "à :",
        "à:",
        "objet :",
        "objet:",
        "para:",
        "asunto:",
        "a:",
        "oggetto:",
        "aan:",
        "onderwerp:",
        "till:",
        "ämne:",
        "til:",
        "emne:",
        "do:",
        "temat:",
        "кому:",
        "тема:",
        "cc:",
        "címzett:",
        "tárgy:",
    ];
    let label = |line: &str, set: &[&str]| {
        let lower = line.trim().trim_start_matches('*').to_lowercase();
        set.iter().any(|l| lower.starts_with(l))
    };
    // The block starts with From or the date (GMX, Hotmail put the date first) and
    // has a From, a date and a To or Subject line within seven lines.
    if !(label(lines[i], FROM) || label(lines[i], DATE)) {
        return false;
    }
    let window = &lines[i..lines.len().min(i + 7)];
    window.iter().any(|l| label(l, FROM))
        && window.iter().any(|l| label(l, DATE))
        && window.iter().any(|l| label(l, TO))
}

/// The rule line (or "Original Message" marker) just above a header block.
fn separator_before(lines: &[&str], i: usize) -> Option<usize> {
    let j = (0..i).rev().find(|&j| !lines[j].trim().is_empty())?;
    let line = lines[j].trim();
    let rule = line.len() >= 5 && line.chars().all(|c| c == '_' || c == '-' || c == '—');
    (rule || is_original_message_marker(line)).then_some(j)
}

/// Cuts a signature off the end of the reply lines.
fn split_signature<'a, 'b>(body: &'b [&'a str]) -> (&'b [&'a str], Option<&'b [&'a str]>) {
    if let Some(s) = body.iter().position(|l| l.trim_end() == "--") {
        return (&body[..s], Some(&body[s..]));
    }
    let last = body.iter().rposition(|l| !l.trim().is_empty());
    if let Some(last) = last
        && is_mobile_signature(body[last])
    {
        return (&body[..last], Some(&body[last..]));
    }
    (body, None)
}

fn is_mobile_signature(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    lower.chars().count() <= 80
        && [
            "sent from my ",
            "sent from mail for windows",
            "sent from outlook",
            "sent from yahoo mail",
            "sent from samsung",
            "get outlook for ",
            "sent with ",
            "sent via ",
            "von meinem ",
            "gesendet von ",
            "envoyé de mon ",
            "enviado desde mi ",
            "enviado do meu ",
            "inviato da ",
            "verzonden vanaf ",
            "verstuurd vanaf ",
            "skickat från ",
            "sendt fra ",
            "wysłane z ",
            "отправлено с ",
        ]
        .iter()
        .any(|p| lower.starts_with(p))
}

fn collapse_blank_runs(lines: Vec<&str>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    for line in lines {
        let blank = line.trim().is_empty();
        if blank && out.last().is_some_and(|l| l.trim().is_empty()) {
            continue;
        }
        out.push(line);
    }
    out
}

/// Joins lines, dropping leading and trailing blank lines and trailing spaces.
fn join_trimmed(lines: &[&str]) -> String {
    let start = lines.iter().position(|l| !l.trim().is_empty());
    let end = lines.iter().rposition(|l| !l.trim().is_empty());
    match (start, end) {
        (Some(s), Some(e)) => lines[s..=e]
            .iter()
            .map(|l| l.trim_end())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_attribution_wrapped_over_two_lines() {
        let s = split_reply(
            "Thanks, that fixed it.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan One <\nmegan@example.com> wrote:\n\n> Hi\n",
        );
        assert_eq!(s.reply, "Thanks, that fixed it.");
        assert!(s.quoted.as_deref().is_some_and(|q| q.starts_with("On Mon")));
    }

    #[test]
    fn outlook_header_block_under_a_rule() {
        let s = split_reply(
            "Please see below.\n\n________________________________\nFrom: Bob <bob@example.com>\nSent: Monday, April 2, 2012 5:44 PM\nTo: Support\nSubject: Test\n\nHi\n",
        );
        assert_eq!(s.reply, "Please see below.");
        assert!(s.quoted.as_deref().is_some_and(|q| q.starts_with("____")));
    }

    #[test]
    fn german_outlook_block_and_original_message_marker() {
        let s = split_reply(
            "Danke!\n\n-----Ursprüngliche Nachricht-----\nVon: Bob\nGesendet: Montag\nAn: Support\nBetreff: Test\n\nHallo\n",
        );
        assert_eq!(s.reply, "Danke!");
    }

    #[test]
    fn header_block_may_start_with_the_date() {
        let s = split_reply(
            "Test\nGesendet: Freitag, 04. Dezember 2020 um 18:46 Uhr\nVon: \"Bob\" <bob@gmx.de>\nAn: alice@gmx.de\nBetreff: test\ntest\n",
        );
        assert_eq!(s.reply, "Test");
    }

    #[test]
    fn interleaved_quotes_keep_the_answers() {
        let s = split_reply("> Does it work?\nYes.\n\n> And the invoice?\nSent yesterday.\n");
        assert_eq!(s.reply, "Yes.\n\nSent yesterday.");
        assert_eq!(
            s.quoted.as_deref(),
            Some("> Does it work?\n> And the invoice?")
        );
    }

    #[test]
    fn signature_and_mobile_footer_are_cut() {
        let s = split_reply("Hello\n\n-- \nJane Doe\nACME\n");
        assert_eq!(s.reply, "Hello");
        assert_eq!(s.signature.as_deref(), Some("--\nJane Doe\nACME"));
        let s = split_reply("Hello\n\nSent from my iPhone\n");
        assert_eq!(s.reply, "Hello");
        assert_eq!(s.signature.as_deref(), Some("Sent from my iPhone"));
    }

    #[test]
    fn forward_is_not_history() {
        let text = "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nDate: Mon, Apr 2, 2012\nSubject: Test\nTo: me\n\nHi\n";
        assert_eq!(split_reply(text).reply, text.trim());
    }

    #[test]
    fn a_sentence_ending_in_wrote_is_not_an_attribution() {
        let text = "Here is what I wrote:\nthe server is down\n";
        assert_eq!(split_reply(text).reply, text.trim());
    }

    #[test]
    fn nothing_but_quotes_leaves_an_empty_reply() {
        let s = split_reply("> a\n> b\n");
        assert_eq!(s.reply, "");
        assert_eq!(s.quoted.as_deref(), Some("> a\n> b"));
    }
}
