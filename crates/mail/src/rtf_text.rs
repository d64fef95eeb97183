//! The text of an RTF message body, as an agent should read it.
//!
//! Outlook's RTF bodies are mostly formatting: font, colour and style tables,
//! revision ids, shape properties, pictures. This reads just the text: groups and
//! control words are tokenised, destinations that hold no message text are
//! skipped, `\par` and `\line` become line breaks, and `\'hh` escapes, raw 8-bit
//! bytes and `\uN` characters are decoded. Escaped bytes are decoded with the
//! current font's `\fcharset` when the font table gives one, else the document's
//! `\ansicpgN`, so double-byte text (Shift_JIS, GBK, Big5) written as escapes
//! reads right.
//!
//! Outlook also wraps HTML mail in RTF (MS-OXRTFEX, `\fromhtml1`): the original
//! markup sits in `{\*\htmltag ...}` groups, and the RTF-only rendering between
//! `\htmlrtf` and `\htmlrtf0` must be dropped. Such a body comes back as
//! [`RtfContent::Html`], for the HTML-to-text path the rest of the crate uses.
//!
//! The input is untrusted: one pass, no recursion, nesting beyond [`MAX_DEPTH`]
//! is skipped (and noted), numbers saturate, and the output grows at most a few
//! bytes per input byte.

use encoding_rs::Encoding;

/// Groups nested deeper than this are skipped. Word writes a dozen levels; only
/// hostile input goes further.
pub(crate) const MAX_DEPTH: usize = 256;

/// What an RTF body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RtfContent {
    /// Plain text, with `\n` line breaks.
    Text(String),
    /// HTML that Outlook encapsulated in RTF (`\fromhtml1`), as it was written.
    Html(String),
}

/// [`RtfContent`] and what was odd about the RTF, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RtfReading {
    /// The text, or the encapsulated HTML.
    pub content: RtfContent,
    /// What was skipped, in words, for the message's processing log.
    pub notes: Vec<String>,
}

/// Reads the text (or the encapsulated HTML) of an RTF document.
pub(crate) fn read_rtf(rtf: &[u8]) -> RtfReading {
    let mut reader = Reader::new(rtf);
    reader.run();
    reader.flush();
    let mut notes = Vec::new();
    if reader.too_deep {
        notes.push(format!(
            "the RTF body nests groups more than {MAX_DEPTH} deep; the deeper part was skipped"
        ));
    }
    let content = if reader.from_html {
        RtfContent::Html(reader.out)
    } else {
        RtfContent::Text(reader.out)
    };
    RtfReading { content, notes }
}

/// What the text inside a group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    /// Message text.
    Text,
    /// Not message text (a table, a picture, an unknown `\*` destination).
    Skip,
    /// The font table: no text, but `\fcharset` tells how each font's bytes read.
    FontTable,
    /// `{\*\htmltag}` in an HTML-encapsulating document: original HTML markup.
    HtmlTag,
}

/// The state a group inherits from its parent and loses at its `}`.
#[derive(Debug, Clone, Copy)]
struct Group {
    destination: Destination,
    /// `\ucN`: how many fallback characters follow each `\uN`.
    fallback_len: u32,
    /// Inside `\htmlrtf` ... `\htmlrtf0`: RTF-only rendering of encapsulated HTML.
    htmlrtf: bool,
    /// The current font (`\fN`); `None` until one is chosen, or after `\plain`.
    font: Option<i32>,
}

/// Destinations that never hold message text. Checked wherever the word appears
/// in a group: these names are never mere formatting.
const SKIPPED: &[&[u8]] = &[
    b"colortbl",
    b"stylesheet",
    b"info",
    b"pict",
    b"shppict",
    b"nonshppict",
    b"listtable",
    b"listoverridetable",
    b"revtbl",
    b"rsidtbl",
    b"generator",
    b"xmlnstbl",
    b"mmathPr",
    b"themedata",
    b"colorschememapping",
    b"datastore",
    b"latentstyles",
    b"filetbl",
    b"pgdsctbl",
    b"fldinst",
    b"objdata",
    b"objclass",
    b"objname",
    b"header",
    b"headerl",
    b"headerr",
    b"headerf",
    b"footer",
    b"footerl",
    b"footerr",
    b"footerf",
    b"ftnsep",
    b"ftnsepc",
    b"ftncn",
    b"aftnsep",
    b"aftnsepc",
    b"aftncn",
    b"sp",
    b"sn",
    b"sv",
    b"xe",
    b"tc",
    b"txe",
    b"template",
    b"userprops",
    b"docvar",
    b"bkmkstart",
    b"bkmkend",
    b"annotation",
    b"atnid",
    b"atnauthor",
];

/// At most this many fonts are remembered from the font table.
const MAX_FONTS: usize = 1024;

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Group>,
    group: Group,
    /// Groups opened past [`MAX_DEPTH`] and not yet closed: all skipped.
    overflow: usize,
    too_deep: bool,
    /// The document has been closed: anything after its last `}` is not RTF.
    done: bool,
    /// The last thing read was `\*`: the next control word names a destination
    /// that a reader not knowing it must skip.
    ignorable: bool,
    /// `\ansicpgN`, or `\mac`.
    ansi: &'static Encoding,
    /// Fonts (`\fN`) whose `\fcharset` or `\cpg` named an encoding.
    fonts: Vec<(i32, &'static Encoding)>,
    /// The font being described in the font table.
    table_font: Option<i32>,
    /// `\deffN`: the font of text before any `\fN`.
    default_font: Option<i32>,
    from_html: bool,
    /// Fallback characters still to drop after a `\uN`.
    fallback_left: u32,
    /// A `\uN` high surrogate waiting for its low half.
    high_surrogate: Option<u16>,
    /// Text bytes and `\'hh` bytes not yet decoded: decoded together, so a
    /// double-byte character split over two escapes stays whole.
    pending: Vec<u8>,
    pending_encoding: &'static Encoding,
    out: String,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            pos: 0,
            stack: Vec::new(),
            group: Group {
                destination: Destination::Text,
                fallback_len: 1,
                htmlrtf: false,
                font: None,
            },
            overflow: 0,
            too_deep: false,
            done: false,
            ignorable: false,
            ansi: encoding_rs::WINDOWS_1252,
            fonts: Vec::new(),
            table_font: None,
            default_font: None,
            from_html: false,
            fallback_left: 0,
            high_surrogate: None,
            pending: Vec::new(),
            pending_encoding: encoding_rs::WINDOWS_1252,
            out: String::new(),
        }
    }

    fn run(&mut self) {
        while !self.done {
            let Some(&byte) = self.input.get(self.pos) else {
                break;
            };
            self.pos += 1;
            match byte {
                b'{' => self.open_group(),
                b'}' => self.close_group(),
                b'\\' => self.control(),
                // Line ends in RTF source are not text; `\par` is.
                b'\r' | b'\n' => {}
                _ => self.text_byte(byte),
            }
        }
    }

    /// Bytes outside the document's outer group, or inside a group that holds no
    /// text, are read only for their structure.
    fn reading_text(&self) -> bool {
        if self.stack.is_empty() || self.overflow > 0 {
            return false;
        }
        match self.group.destination {
            Destination::Text => !(self.from_html && self.group.htmlrtf),
            Destination::HtmlTag => true,
            Destination::Skip | Destination::FontTable => false,
        }
    }

    fn open_group(&mut self) {
        self.flush();
        self.fallback_left = 0;
        self.ignorable = false;
        if self.overflow > 0 || self.stack.len() >= MAX_DEPTH {
            self.overflow += 1;
            self.too_deep = true;
            return;
        }
        self.stack.push(self.group);
    }

    fn close_group(&mut self) {
        self.flush();
        self.fallback_left = 0;
        self.ignorable = false;
        if self.overflow > 0 {
            self.overflow -= 1;
            return;
        }
        // A stray `}` before the document opened has nothing to close.
        if let Some(parent) = self.stack.pop() {
            if self.group.destination == Destination::FontTable {
                self.table_font = None;
            }
            self.group = parent;
            if self.stack.is_empty() {
                self.done = true;
            }
        }
    }

    fn text_byte(&mut self, byte: u8) {
        self.ignorable = false;
        if self.fallback_left > 0 {
            self.fallback_left -= 1;
            return;
        }
        if self.reading_text() {
            self.push_pending(byte);
        }
    }

    /// Reads what follows a backslash.
    fn control(&mut self) {
        let Some(&first) = self.input.get(self.pos) else {
            return;
        };
        if !first.is_ascii_alphabetic() {
            self.pos += 1;
            self.symbol(first);
            return;
        }
        let start = self.pos;
        while self
            .input
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphabetic())
        {
            self.pos += 1;
        }
        let word = &self.input[start..self.pos];
        let param = self.parameter();
        // One space after a control word is its delimiter, not text.
        if self.input.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
        self.word(word, param);
    }

    /// A control word's optional signed number; saturates rather than overflows.
    fn parameter(&mut self) -> Option<i32> {
        let negative = self.input.get(self.pos) == Some(&b'-')
            && self.input.get(self.pos + 1).is_some_and(u8::is_ascii_digit);
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        let mut value: i64 = 0;
        while let Some(&d) = self.input.get(self.pos).filter(|b| b.is_ascii_digit()) {
            value = (value * 10 + i64::from(d - b'0')).min(i64::from(i32::MAX) + 1);
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        let value = if negative { -value } else { value };
        Some(value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
    }

    fn symbol(&mut self, symbol: u8) {
        if symbol == b'*' {
            self.ignorable = true;
            return;
        }
        self.ignorable = false;
        if symbol == b'\'' {
            let hex = self.input.get(self.pos..self.pos + 2);
            let byte = hex
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = byte else {
                return;
            };
            self.pos += 2;
            if self.fallback_left > 0 {
                self.fallback_left -= 1;
            } else if self.reading_text() {
                self.push_pending(byte);
            }
            return;
        }
        if self.fallback_left > 0 {
            self.fallback_left -= 1;
            return;
        }
        match symbol {
            b'\\' | b'{' | b'}' => self.text_byte_literal(symbol),
            b'~' => self.emit_str("\u{a0}"),
            b'_' => self.emit_str("\u{2011}"),
            // `\` before a line end is an old spelling of `\par`.
            b'\r' | b'\n' => self.emit_str("\n"),
            b'\t' => self.emit_str("\t"),
            // Optional hyphen, index subentry, formula: no text.
            _ => {}
        }
    }

    fn text_byte_literal(&mut self, byte: u8) {
        if self.reading_text() {
            self.push_pending(byte);
        }
    }

    fn word(&mut self, word: &[u8], param: Option<i32>) {
        let ignorable = std::mem::take(&mut self.ignorable);
        // `\bin N`: N raw bytes that may contain anything, braces included.
        if word == b"bin" {
            let n = usize::try_from(param.unwrap_or(0)).unwrap_or(0);
            self.pos = self.pos.saturating_add(n).min(self.input.len());
            return;
        }
        if self.fallback_left > 0 {
            self.fallback_left -= 1;
            return;
        }
        if ignorable {
            self.flush();
            self.group.destination = if word == b"htmltag" && self.from_html {
                Destination::HtmlTag
            } else {
                Destination::Skip
            };
            return;
        }
        if word == b"fonttbl" {
            self.flush();
            self.group.destination = Destination::FontTable;
            return;
        }
        if SKIPPED.contains(&word) {
            self.flush();
            self.group.destination = Destination::Skip;
            return;
        }
        if self.group.destination == Destination::FontTable {
            self.font_table_word(word, param);
            return;
        }
        match word {
            b"ansicpg" => {
                if let Some(cp) = param.and_then(|p| u32::try_from(p).ok()) {
                    self.ansi = crate::charset::windows_codepage_encoding(cp);
                }
            }
            b"mac" => self.ansi = crate::charset::windows_codepage_encoding(10000),
            b"deff" => self.default_font = param,
            b"fromhtml" => self.from_html = param != Some(0),
            b"htmlrtf" => {
                self.flush();
                self.group.htmlrtf = param != Some(0);
            }
            b"f" => {
                self.flush();
                self.group.font = param;
            }
            b"plain" => {
                self.flush();
                self.group.font = None;
            }
            b"uc" => {
                self.group.fallback_len = u32::try_from(param.unwrap_or(1)).unwrap_or(0).min(16)
            }
            b"u" => {
                if let Some(n) = param {
                    self.unicode(n);
                }
            }
            b"par" | b"line" | b"sect" | b"page" | b"row" | b"lbr" => self.emit_str("\n"),
            b"tab" | b"cell" | b"nestcell" => self.emit_str("\t"),
            b"emdash" => self.emit_str("\u{2014}"),
            b"endash" => self.emit_str("\u{2013}"),
            b"bullet" => self.emit_str("\u{2022}"),
            b"lquote" => self.emit_str("\u{2018}"),
            b"rquote" => self.emit_str("\u{2019}"),
            b"ldblquote" => self.emit_str("\u{201c}"),
            b"rdblquote" => self.emit_str("\u{201d}"),
            b"emspace" | b"enspace" | b"qmspace" => self.emit_str(" "),
            _ => {}
        }
    }

    fn font_table_word(&mut self, word: &[u8], param: Option<i32>) {
        match (word, param) {
            (b"f", Some(f)) => self.table_font = Some(f),
            (b"fcharset", Some(charset)) => {
                if let (Some(font), Some(enc)) = (self.table_font, charset_encoding(charset)) {
                    self.remember_font(font, enc);
                }
            }
            (b"cpg", Some(cp)) => {
                if let (Some(font), Ok(cp)) = (self.table_font, u32::try_from(cp)) {
                    self.remember_font(font, crate::charset::windows_codepage_encoding(cp));
                }
            }
            _ => {}
        }
    }

    fn remember_font(&mut self, font: i32, enc: &'static Encoding) {
        if let Some(entry) = self.fonts.iter_mut().find(|(f, _)| *f == font) {
            entry.1 = enc;
        } else if self.fonts.len() < MAX_FONTS {
            self.fonts.push((font, enc));
        }
    }

    fn font_encoding(&self, font: i32) -> Option<&'static Encoding> {
        self.fonts.iter().find(|(f, _)| *f == font).map(|(_, e)| *e)
    }

    /// `\uN`: a UTF-16 code unit as a signed 16-bit number, then `\ucN` fallback
    /// characters for readers without Unicode, which are dropped.
    fn unicode(&mut self, n: i32) {
        let unit = i64::from(n).rem_euclid(0x1_0000) as u16;
        let c = match (self.high_surrogate.take(), unit) {
            (_, 0xd800..=0xdbff) => {
                self.high_surrogate = Some(unit);
                None
            }
            (Some(high), 0xdc00..=0xdfff) => {
                char::decode_utf16([high, unit]).next().and_then(Result::ok)
            }
            (_, 0xdc00..=0xdfff) => Some(char::REPLACEMENT_CHARACTER),
            (_, unit) => char::from_u32(u32::from(unit)),
        };
        if let Some(c) = c {
            let mut buf = [0u8; 4];
            self.emit_str(c.encode_utf8(&mut buf));
        }
        self.fallback_left = self.group.fallback_len;
    }

    fn current_encoding(&self) -> &'static Encoding {
        self.group
            .font
            .or(self.default_font)
            .and_then(|f| self.font_encoding(f))
            .unwrap_or(self.ansi)
    }

    fn push_pending(&mut self, byte: u8) {
        self.drop_lone_surrogate();
        let enc = self.current_encoding();
        if enc != self.pending_encoding {
            self.flush();
            self.pending_encoding = enc;
        }
        self.pending.push(byte);
    }

    fn emit_str(&mut self, s: &str) {
        if self.reading_text() {
            self.drop_lone_surrogate();
            self.flush();
            self.out.push_str(s);
        }
    }

    /// A `\uN` high surrogate followed by anything but its low half.
    fn drop_lone_surrogate(&mut self) {
        if self.high_surrogate.take().is_some() {
            self.flush();
            self.out.push(char::REPLACEMENT_CHARACTER);
        }
    }

    /// Decodes the pending bytes into the output.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (text, _) = self
            .pending_encoding
            .decode_without_bom_handling(&self.pending);
        self.out.push_str(&text);
        self.pending.clear();
    }
}

/// The encoding an RTF `\fcharsetN` names; `None` for ANSI, default and symbol
/// fonts, whose bytes follow the document's `\ansicpg`.
fn charset_encoding(charset: i32) -> Option<&'static Encoding> {
    let cp = match charset {
        77 => 10000,
        128 => 932,
        129 => 949,
        134 => 936,
        136 => 950,
        161 => 1253,
        162 => 1254,
        163 => 1258,
        177 => 1255,
        178 => 1256,
        186 => 1257,
        204 => 1251,
        222 => 874,
        238 => 1250,
        _ => return None,
    };
    Some(crate::charset::windows_codepage_encoding(cp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(rtf: &str) -> String {
        match read_rtf(rtf.as_bytes()).content {
            RtfContent::Text(t) => t,
            RtfContent::Html(h) => panic!("expected text, got HTML {h:?}"),
        }
    }

    #[test]
    fn paragraphs_lines_and_tabs_become_text() {
        assert_eq!(
            text(
                "{\\rtf1\\ansi\\ansicpg1252\\pard hello world\\par second\\line third\\tab x}\r\n"
            ),
            "hello world\nsecond\nthird\tx"
        );
    }

    #[test]
    fn tables_and_properties_are_not_text() {
        let rtf = "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0\\froman Times New Roman;}}\
            {\\colortbl;\\red255\\green0\\blue0;}{\\stylesheet{\\s0 Normal;}}\
            {\\info{\\author Someone}{\\title Secret}}{\\*\\generator Riched20;}\
            {\\pict\\wmetafile8 0102abcdef}\\f0\\fs20 Body {\\b bold} text\\par}";
        assert_eq!(text(rtf), "Body bold text\n");
    }

    #[test]
    fn unknown_ignorable_destinations_are_skipped() {
        assert_eq!(
            text("{\\rtf1 a{\\*\\unknownthing {nested text} more}b}"),
            "ab"
        );
    }

    #[test]
    fn escaped_bytes_read_with_the_ansi_code_page() {
        assert_eq!(
            text("{\\rtf1\\ansi\\ansicpg1252 caf\\'e9 \\'93q\\'94}"),
            "café “q”"
        );
        assert_eq!(
            text("{\\rtf1\\ansi\\ansicpg1251 \\'cf\\'f0\\'e8\\'e2\\'e5\\'f2}"),
            "Привет"
        );
    }

    #[test]
    fn double_byte_escapes_stay_whole_across_escapes() {
        // Shift_JIS "日本" is 93 fa 96 7b: the second trail byte is ASCII '{'
        // escaped, and a writer may also leave a trail byte unescaped.
        assert_eq!(
            text("{\\rtf1\\ansi\\ansicpg932 \\'93\\'fa\\'96\\'7b}"),
            "日本"
        );
        assert_eq!(
            text("{\\rtf1\\ansi\\ansicpg932 \\'83e\\'83X\\'83g}"),
            "テスト"
        );
    }

    #[test]
    fn font_charset_decides_how_escapes_read() {
        let rtf = "{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0\\fswiss\\fcharset0 Arial;}\
            {\\f1\\fnil\\fcharset204 Arial Cyr;}}\\f0 caf\\'e9 {\\f1 \\'cf\\'f0\\'e8}}";
        assert_eq!(text(rtf), "café При");
    }

    #[test]
    fn unicode_escapes_drop_their_fallback() {
        assert_eq!(text("{\\rtf1\\uc1 gr\\u252?n \\u8364\\'80}"), "grün €");
        assert_eq!(text("{\\rtf1\\uc2 \\u26085\\'93\\'fa!}"), "日!");
        assert_eq!(text("{\\rtf1\\uc0 \\u-3913 x}"), "\u{f0b7}x");
        // A surrogate pair written as two negative numbers.
        assert_eq!(text("{\\rtf1\\uc1 \\u-10179?\\u-8704?}"), "😀");
    }

    #[test]
    fn fallback_skipping_ends_at_a_group_boundary() {
        assert_eq!(text("{\\rtf1\\uc3 {\\u233}abc}"), "éabc");
    }

    #[test]
    fn escaped_braces_and_backslashes_are_text() {
        assert_eq!(text("{\\rtf1 a\\{b\\}c\\\\d\\~e\\-f}"), "a{b}c\\d\u{a0}ef");
    }

    #[test]
    fn text_after_the_document_is_ignored() {
        assert_eq!(text("junk{\\rtf1 inside}after"), "inside");
    }

    #[test]
    fn binary_data_is_skipped_whatever_it_holds() {
        assert_eq!(text("{\\rtf1 a{\\bin4 }{x\\}b}"), "ab");
    }

    #[test]
    fn fields_show_their_result_not_their_instruction() {
        let rtf = "{\\rtf1 see {\\field{\\*\\fldinst HYPERLINK \"https://x.test\"}\
            {\\fldrslt the site}} now}";
        assert_eq!(text(rtf), "see the site now");
    }

    #[test]
    fn encapsulated_html_comes_back_as_html() {
        let rtf = "{\\rtf1\\ansi\\ansicpg1252\\fromhtml1 \\deff0{\\fonttbl{\\f0\\fswiss Arial;}}\
            {\\*\\htmltag19 <html>}{\\*\\htmltag34 <head>}\\htmlrtf {\\htmlrtf0 \
            {\\*\\htmltag64 <p>}\\htmlrtf {\\htmlrtf0 Hello caf\\'e9\\htmlrtf }\\htmlrtf0 \
            {\\*\\htmltag72 </p>}\\htmlrtf \\par \\htmlrtf0 {\\*\\htmltag0 \\par }\
            {\\*\\htmltag27 </html>}}}";
        assert_eq!(
            read_rtf(rtf.as_bytes()).content,
            RtfContent::Html("<html><head><p>Hello café</p>\n</html>".into())
        );
    }

    #[test]
    fn nesting_past_the_limit_is_skipped_and_noted() {
        let deep = format!(
            "{{\\rtf1 top{}deep{} end}}",
            "{".repeat(MAX_DEPTH + 10),
            "}".repeat(MAX_DEPTH + 10)
        );
        let reading = read_rtf(deep.as_bytes());
        assert_eq!(reading.content, RtfContent::Text("top end".into()));
        assert_eq!(reading.notes.len(), 1);
    }

    /// Pieces RTF is made of, so random input reaches every state of the reader.
    const PIECES: &[&str] = &[
        "{",
        "}",
        "{\\rtf1 ",
        "\\par ",
        "\\'e9",
        "\\'8",
        "\\u-3913?",
        "\\u-10179",
        "\\uc3 ",
        "\\*",
        "\\htmltag4 ",
        "\\fromhtml1 ",
        "\\htmlrtf ",
        "\\htmlrtf0 ",
        "\\bin3 ",
        "\\bin99999999999 ",
        "{\\fonttbl",
        "\\f1 ",
        "\\fcharset128 ",
        "\\cpg65001 ",
        "\\ansicpg932 ",
        "\\plain ",
        "\\deff1 ",
        "\\~",
        "\\_",
        "\\",
        "text ",
        "\r\n",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..Default::default() })]

        #[test]
        fn any_rtf_shaped_bytes_read_within_bounds(
            parts in prop::collection::vec(
                prop_oneof![
                    3 => prop::sample::select(PIECES).prop_map(|p| p.as_bytes().to_vec()),
                    1 => prop::collection::vec(any::<u8>(), 0..8),
                ],
                0..200,
            ),
        ) {
                    let input = parts.concat();
            let reading = read_rtf(&input);
            let len = match &reading.content {
                RtfContent::Text(t) | RtfContent::Html(t) => t.len(),
            };
            // No input byte becomes more than one UTF-8 character.
            prop_assert!(len <= 3 * input.len() + 3, "{} from {}", len, input.len());
        }
    }

    #[test]
    fn huge_numbers_saturate() {
        assert_eq!(
            text("{\\rtf1\\uc99999999999999999 \\u99999999999999999xyz{}end}"),
            "\u{ffff}end"
        );
    }
}
