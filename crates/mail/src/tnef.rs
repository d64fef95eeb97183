//! Taking the files and the body out of `winmail.dat` (TNEF, MS-OXTNEF).
//!
//! Outlook and Exchange wrap a message's attachments in one `application/ms-tnef`
//! part when they think the recipient is Outlook too; every other client shows a
//! useless `winmail.dat`. This reads just enough TNEF to get the files out: the
//! attribute stream (`attAttachRendData` opens an attachment, `attAttachTitle`
//! names it, `attAttachData` holds it) and, from each attachment's MAPI property
//! block, the long file name, MIME type and Content-ID. From the message's own
//! property block (`attMAPIProps`) it keeps the body as Outlook stored it, which is
//! sometimes the only copy of the text (see [`TnefBody`]).
//!
//! Written here rather than taken from the `tnef` crate (0.1): that crate rejects
//! any attribute id it does not know, any checksum mismatch and any attachment
//! missing one of six attributes, and never reads the long file name, so it loses
//! files from real Outlook mail. Everything here is bounds-checked slicing of the
//! input; sizes come from [`TnefLimits`], and nothing allocates more than the
//! input's own length.

use encoding_rs::Encoding;

use crate::TnefBody;

/// Bounds for [`extract_tnef`]: a `winmail.dat` is untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TnefLimits {
    /// At most this many files are taken out.
    pub max_files: usize,
    /// A file larger than this is skipped (and said so in the notes).
    pub max_file_bytes: usize,
    /// At most this many bytes in all; files past it are skipped.
    pub max_total_bytes: usize,
}

impl Default for TnefLimits {
    fn default() -> Self {
        Self {
            max_files: 100,
            max_file_bytes: 50 * 1024 * 1024,
            max_total_bytes: 100 * 1024 * 1024,
        }
    }
}

/// One file found inside a `winmail.dat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TnefFile {
    /// The long file name when present, else the 8.3 title.
    pub name: Option<String>,
    /// The MIME type Outlook recorded, else one guessed from the name's extension.
    pub content_type: Option<String>,
    /// The Content-ID Outlook recorded, if any.
    pub content_id: Option<String>,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// What [`extract_tnef`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TnefExtraction {
    /// The files, in stream order.
    pub files: Vec<TnefFile>,
    /// The message body properties, undecoded until [`TnefBody::text`] is asked.
    pub body: TnefBody,
    /// What was skipped or odd, in words, for the message's processing log.
    pub notes: Vec<String>,
}

/// Why a `winmail.dat` could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TnefError {
    /// The data does not start with the TNEF signature.
    #[error("not a TNEF stream (bad signature)")]
    NotTnef,
}

const SIGNATURE: u32 = 0x223e_9f78;
const LEVEL_MESSAGE: u8 = 0x01;
const LEVEL_ATTACHMENT: u8 = 0x02;

const ATT_OEM_CODEPAGE: u32 = 0x0006_9007;
const ATT_ATTACH_REND_DATA: u32 = 0x0006_9002;
const ATT_ATTACH_TITLE: u32 = 0x0001_8010;
const ATT_ATTACH_DATA: u32 = 0x0006_800f;
const ATT_ATTACHMENT: u32 = 0x0006_9005;
const ATT_BODY: u32 = 0x0002_800c;
const ATT_MAPI_PROPS: u32 = 0x0006_9003;

const PR_BODY: u16 = 0x1000;
const PR_RTF_COMPRESSED: u16 = 0x1009;
const PR_HTML: u16 = 0x1013;
const PR_INTERNET_CPID: u16 = 0x3fde;
const PR_MESSAGE_CODEPAGE: u16 = 0x3ffd;

const PT_LONG: u16 = 0x0003;
const PT_STRING8: u16 = 0x001e;
const PT_UNICODE: u16 = 0x001f;
const PT_BINARY: u16 = 0x0102;

const PR_DISPLAY_NAME: u16 = 0x3001;
const PR_ATTACH_DATA: u16 = 0x3701;
const PR_ATTACH_FILENAME: u16 = 0x3704;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
const PR_ATTACH_MIME_TAG: u16 = 0x370e;
const PR_ATTACH_CONTENT_ID: u16 = 0x3712;
const PR_ATTACH_METHOD: u16 = 0x3705;
/// `PR_ATTACH_METHOD` values for an attached Outlook item and an OLE object: their
/// content is a MAPI object, not a file, and `attAttachData` holds only a stub.
const ATTACH_EMBEDDED_MSG: u32 = 5;
const ATTACH_OLE: u32 = 6;

/// Takes the attached files out of a TNEF stream, within `limits`.
///
/// Lenient like the clients people compare us with: a bad checksum or a stream cut
/// short keeps what was read before it (and says so in the notes). Only data
/// without the TNEF signature is an error.
pub fn extract_tnef(data: &[u8], limits: &TnefLimits) -> Result<TnefExtraction, TnefError> {
    let mut r = Reader::new(data);
    if r.u32() != Some(SIGNATURE) {
        return Err(TnefError::NotTnef);
    }
    let _legacy_key = r.u16();

    let mut out = TnefExtraction::default();
    let mut codepage: &'static Encoding = encoding_rs::WINDOWS_1252;
    let mut current: Option<Pending> = None;
    let mut total = 0usize;
    let mut checksum_noted = false;

    loop {
        if r.is_empty() {
            break;
        }
        let Some((level, id, value, checksum)) = r.attribute() else {
            out.notes.push(format!(
                "winmail.dat is cut short at byte {}; files before it were kept",
                r.pos
            ));
            break;
        };
        if !checksum_noted && checksum != byte_sum(value) {
            out.notes
                .push("winmail.dat has attribute checksum mismatches; read anyway".into());
            checksum_noted = true;
        }
        match id {
            ATT_OEM_CODEPAGE => {
                if let Some(cp) = Reader::new(value).u32() {
                    codepage = crate::charset::windows_codepage_encoding(cp);
                }
            }
            ATT_ATTACH_REND_DATA if level == LEVEL_ATTACHMENT => {
                if let Some(done) = current.take() {
                    push_file(&mut out, done, limits, &mut total);
                }
                current = Some(Pending::default());
            }
            ATT_ATTACH_TITLE if level == LEVEL_ATTACHMENT => {
                let pending = current.get_or_insert_with(Pending::default);
                pending.title = decode_string8(value, codepage);
            }
            ATT_ATTACH_DATA if level == LEVEL_ATTACHMENT => {
                let pending = current.get_or_insert_with(Pending::default);
                pending.data = Some(value);
            }
            ATT_ATTACHMENT if level == LEVEL_ATTACHMENT => {
                let pending = current.get_or_insert_with(Pending::default);
                read_mapi_props(value, codepage, pending);
            }
            ATT_MAPI_PROPS if level == LEVEL_MESSAGE => {
                read_body_props(value, codepage, &mut out.body);
            }
            // The older attribute for the plain text; `PR_BODY` wins when both exist.
            ATT_BODY if level == LEVEL_MESSAGE && out.body.plain.is_none() => {
                out.body.plain = decode_text8(value, codepage);
            }
            _ => {}
        }
    }
    if let Some(done) = current.take() {
        push_file(&mut out, done, limits, &mut total);
    }
    Ok(out)
}

/// An attachment being assembled from its attributes.
#[derive(Default)]
struct Pending<'a> {
    title: Option<String>,
    long_name: Option<String>,
    mime: Option<String>,
    content_id: Option<String>,
    data: Option<&'a [u8]>,
    prop_data: Option<&'a [u8]>,
    method: Option<u32>,
}

fn push_file(out: &mut TnefExtraction, p: Pending<'_>, limits: &TnefLimits, total: &mut usize) {
    let name = p.long_name.or(p.title).filter(|n| !n.is_empty());
    if matches!(p.method, Some(ATTACH_EMBEDDED_MSG | ATTACH_OLE)) {
        out.notes.push(format!(
            "winmail.dat entry {:?} is an embedded Outlook item, not a file; not extracted (it stays inside winmail.dat)",
            name.as_deref().unwrap_or("(unnamed)")
        ));
        return;
    }
    let Some(data) = p.data.or(p.prop_data) else {
        if name.is_some() {
            out.notes.push(format!(
                "winmail.dat entry {:?} has no file data (an embedded message or OLE object); skipped",
                name.as_deref().unwrap_or_default()
            ));
        }
        return;
    };
    let label = name.as_deref().unwrap_or("(unnamed)");
    if out.files.len() >= limits.max_files {
        out.notes.push(format!(
            "winmail.dat holds more than {} files; {label:?} and later ones skipped",
            limits.max_files
        ));
        return;
    }
    if data.len() > limits.max_file_bytes {
        out.notes.push(format!(
            "winmail.dat file {label:?} is {} bytes, over the {} byte limit; skipped",
            data.len(),
            limits.max_file_bytes
        ));
        return;
    }
    if total.saturating_add(data.len()) > limits.max_total_bytes {
        out.notes.push(format!(
            "winmail.dat files exceed {} bytes in all; {label:?} skipped",
            limits.max_total_bytes
        ));
        return;
    }
    *total += data.len();
    let content_type = p
        .mime
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| m.contains('/'))
        .or_else(|| name.as_deref().and_then(guess_type).map(str::to_owned));
    out.files.push(TnefFile {
        name,
        content_type,
        content_id: p
            .content_id
            .map(|c| {
                c.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
            .filter(|c| !c.is_empty()),
        data: data.to_vec(),
    });
}

/// One single-valued MAPI property from a TNEF property block.
struct MapiProp<'a> {
    id: u16,
    /// The property type without the multi-value flag, e.g. `PT_BINARY`.
    kind: u16,
    /// The value's bytes without padding (the first, for the variable types).
    value: &'a [u8],
}

/// Walks a MAPI property block (MS-OXTNEF 2.1.3.4), handing `f` every
/// single-valued property; multi-valued ones are stepped over, as popdesk uses
/// none. Stops quietly at the first malformed property.
fn walk_mapi_props<'a>(data: &'a [u8], mut f: impl FnMut(MapiProp<'a>)) {
    let mut r = Reader::new(data);
    let Some(count) = r.u32() else { return };
    for _ in 0..count {
        let (Some(kind), Some(id)) = (r.u16(), r.u16()) else {
            return;
        };
        if id >= 0x8000 {
            // Named property: GUID, then a numeric id or a UTF-16 name.
            if r.take(16).is_none() {
                return;
            }
            match r.u32() {
                Some(0) => {
                    if r.u32().is_none() {
                        return;
                    }
                }
                Some(_) => {
                    let Some(len) = r.u32() else { return };
                    if r.take_padded(len as usize).is_none() {
                        return;
                    }
                }
                None => return,
            }
        }
        let multi = kind & 0x1000 != 0;
        let base = kind & !0x1000;
        match base {
            // Variable length: PT_STRING8, PT_UNICODE, PT_BINARY, PT_OBJECT.
            0x001e | 0x001f | 0x0102 | 0x000d => {
                let Some(n) = r.u32() else { return };
                for i in 0..n {
                    let Some(len) = r.u32() else { return };
                    let Some(value) = r.take_padded(len as usize) else {
                        return;
                    };
                    if i == 0 && !multi {
                        f(MapiProp {
                            id,
                            kind: base,
                            value,
                        });
                    }
                }
            }
            _ => {
                let Some(size) = fixed_size(base) else { return };
                let n = if multi {
                    match r.u32() {
                        Some(n) => n as usize,
                        None => return,
                    }
                } else {
                    1
                };
                let Some(bytes) = n.checked_mul(size) else {
                    return;
                };
                let Some(value) = r.take_padded(bytes) else {
                    return;
                };
                if !multi {
                    f(MapiProp {
                        id,
                        kind: base,
                        value,
                    });
                }
            }
        }
    }
}

/// Reads the MAPI property block of `attAttachment`, keeping the properties
/// popdesk uses.
fn read_mapi_props<'a>(data: &'a [u8], codepage: &'static Encoding, p: &mut Pending<'a>) {
    walk_mapi_props(data, |prop| {
        let text = || match prop.kind {
            PT_STRING8 => decode_string8(prop.value, codepage),
            PT_UNICODE => decode_utf16(prop.value),
            _ => None,
        };
        match prop.id {
            PR_ATTACH_LONG_FILENAME => p.long_name = text().or(p.long_name.take()),
            PR_ATTACH_FILENAME | PR_DISPLAY_NAME if p.long_name.is_none() => {
                p.long_name = text();
            }
            PR_ATTACH_MIME_TAG => p.mime = text(),
            PR_ATTACH_CONTENT_ID => p.content_id = text(),
            PR_ATTACH_DATA if prop.kind == PT_BINARY => p.prop_data = Some(prop.value),
            PR_ATTACH_METHOD if prop.kind == PT_LONG => p.method = Reader::new(prop.value).u32(),
            _ => {}
        }
    });
}

/// Reads the message's own MAPI property block (`attMAPIProps`) for its body.
/// Code pages may follow the text they describe, so bytes are decoded last.
fn read_body_props(data: &[u8], oem: &'static Encoding, body: &mut TnefBody) {
    let mut plain8 = None;
    let mut plain16 = None;
    let mut html8 = None;
    let mut html16 = None;
    let mut internet_cpid = None;
    let mut message_cpid = None;
    walk_mapi_props(data, |prop| match (prop.id, prop.kind) {
        (PR_BODY, PT_STRING8) => plain8 = Some(prop.value),
        (PR_BODY, PT_UNICODE) => plain16 = Some(prop.value),
        (PR_RTF_COMPRESSED, PT_BINARY) => body.rtf_compressed = Some(prop.value.to_vec()),
        // PidTagHtml is binary; some writers store it as a string.
        (PR_HTML, PT_BINARY | PT_STRING8) => html8 = Some(prop.value),
        (PR_HTML, PT_UNICODE) => html16 = Some(prop.value),
        (PR_INTERNET_CPID, PT_LONG) => internet_cpid = Reader::new(prop.value).u32(),
        (PR_MESSAGE_CODEPAGE, PT_LONG) => message_cpid = Reader::new(prop.value).u32(),
        _ => {}
    });
    let text_codepage = message_cpid
        .or(internet_cpid)
        .map_or(oem, crate::charset::windows_codepage_encoding);
    if let Some(plain) = plain16
        .and_then(decode_utf16_text)
        .or_else(|| plain8.and_then(|b| decode_text8(b, text_codepage)))
    {
        body.plain = Some(plain);
    }
    // The HTML's bytes are in the code page it was sent in, which a `<meta
    // charset>` inside may say better than the MAPI properties.
    let html_codepage = internet_cpid
        .map(crate::charset::windows_codepage_encoding)
        .or_else(|| {
            html8
                .and_then(|h| crate::charset::find_charset_label(&h[..h.len().min(2048)]))
                .and_then(|l| crate::charset::encoding_for_label(&l))
        })
        .unwrap_or(text_codepage);
    if let Some(html) = html16
        .and_then(decode_utf16_text)
        .or_else(|| html8.and_then(|b| decode_text8(b, html_codepage)))
    {
        body.html = Some(html);
    }
}

/// Size of one value of a fixed-size MAPI property type, padded as TNEF stores it.
fn fixed_size(kind: u16) -> Option<usize> {
    match kind {
        0x0001..=0x0004 | 0x000a | 0x000b => Some(4),
        0x0005..=0x0007 | 0x0014 | 0x0040 => Some(8),
        0x0048 => Some(16),
        _ => None,
    }
}

fn decode_string8(bytes: &[u8], codepage: &'static Encoding) -> Option<String> {
    let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
    let (text, _) = crate::charset::decode_or_fallback(bytes, codepage);
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn decode_utf16(bytes: &[u8]) -> Option<String> {
    let text = decode_utf16_text(bytes)?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// A text value (a body) up to its NUL terminator, decoded but not trimmed: its
/// leading indentation is the sender's. `None` when there is no text at all.
fn decode_text8(bytes: &[u8], codepage: &'static Encoding) -> Option<String> {
    let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
    let (text, _) = crate::charset::decode_or_fallback(bytes, codepage);
    (!text.trim().is_empty()).then_some(text)
}

/// [`decode_text8`] for UTF-16LE values.
fn decode_utf16_text(bytes: &[u8]) -> Option<String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let text = String::from_utf16_lossy(&units);
    (!text.trim().is_empty()).then_some(text)
}

fn byte_sum(bytes: &[u8]) -> u16 {
    bytes
        .iter()
        .fold(0u16, |s, &b| s.wrapping_add(u16::from(b)))
}

fn guess_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "rtf" => "application/rtf",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "htm" | "html" => "text/html",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "zip" => "application/zip",
        "msg" => "application/vnd.ms-outlook",
        "eml" => "message/rfc822",
        _ => return None,
    })
}

/// Bounds-checked little-endian reading.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Takes `n` bytes and skips the padding to the next multiple of four.
    fn take_padded(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.take(n)?;
        let pad = (4 - n % 4) % 4;
        self.pos = self.pos.saturating_add(pad).min(self.data.len());
        Some(s)
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// One TNEF attribute: level, id, value and stored checksum.
    fn attribute(&mut self) -> Option<(u8, u32, &'a [u8], u16)> {
        let level = *self.take(1)?.first()?;
        let id = self.u32()?;
        let len = self.u32()? as usize;
        let value = self.take(len)?;
        let checksum = self.u16()?;
        Some((level, id, value, checksum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(out: &mut Vec<u8>, level: u8, id: u32, value: &[u8]) {
        out.push(level);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
        out.extend_from_slice(&byte_sum(value).to_le_bytes());
    }

    fn stream(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(&SIGNATURE.to_le_bytes());
        s.extend_from_slice(&0u16.to_le_bytes());
        attr(&mut s, 1, 0x0008_9006, &[0, 0, 1, 0]);
        attr(&mut s, 1, ATT_OEM_CODEPAGE, &[0xe4, 0x04, 0, 0, 0, 0, 0, 0]);
        for (name, data) in files {
            attr(
                &mut s,
                2,
                ATT_ATTACH_REND_DATA,
                &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            );
            let mut title = name.as_bytes().to_vec();
            title.push(0);
            attr(&mut s, 2, ATT_ATTACH_TITLE, &title);
            attr(&mut s, 2, ATT_ATTACH_DATA, data);
        }
        s
    }

    #[test]
    fn files_come_out_with_names() {
        let s = stream(&[("a.txt", b"hello"), ("b.pdf", b"%PDF-1.4")]);
        let x = extract_tnef(&s, &TnefLimits::default()).expect("valid stream");
        assert_eq!(x.files.len(), 2);
        assert_eq!(x.files[0].name.as_deref(), Some("a.txt"));
        assert_eq!(x.files[0].data, b"hello");
        assert_eq!(x.files[1].content_type.as_deref(), Some("application/pdf"));
        assert!(x.notes.is_empty(), "{:?}", x.notes);
    }

    #[test]
    fn limits_skip_files_and_say_so() {
        let s = stream(&[
            ("a.txt", b"hello"),
            ("big.bin", &[0u8; 100]),
            ("c.txt", b"c"),
        ]);
        let limits = TnefLimits {
            max_files: 10,
            max_file_bytes: 50,
            max_total_bytes: 1000,
        };
        let x = extract_tnef(&s, &limits).expect("valid stream");
        assert_eq!(x.files.len(), 2);
        assert!(
            x.notes.iter().any(|n| n.contains("big.bin")),
            "{:?}",
            x.notes
        );
        let one = TnefLimits {
            max_files: 1,
            ..limits
        };
        assert_eq!(extract_tnef(&s, &one).expect("valid").files.len(), 1);
    }

    #[test]
    fn truncated_stream_keeps_earlier_files() {
        let s = stream(&[("a.txt", b"hello"), ("b.txt", b"world")]);
        for cut in 6..s.len() {
            let x = extract_tnef(&s[..cut], &TnefLimits::default()).expect("signature present");
            assert!(x.files.len() <= 2);
        }
        assert_eq!(
            extract_tnef(b"nope", &TnefLimits::default()),
            Err(TnefError::NotTnef)
        );
    }

    #[test]
    fn embedded_outlook_items_are_not_files() {
        let mut s = stream(&[("Meeting notes", b"stub")]);
        let mut props = Vec::new();
        props.extend_from_slice(&1u32.to_le_bytes());
        props.extend_from_slice(&0x0003u16.to_le_bytes());
        props.extend_from_slice(&PR_ATTACH_METHOD.to_le_bytes());
        props.extend_from_slice(&ATTACH_EMBEDDED_MSG.to_le_bytes());
        attr(&mut s, 2, ATT_ATTACHMENT, &props);
        let x = extract_tnef(&s, &TnefLimits::default()).expect("valid stream");
        assert!(x.files.is_empty());
        assert!(x.notes[0].contains("Meeting notes"), "{:?}", x.notes);
    }

    /// A one-value variable-length MAPI property as TNEF writes it.
    fn variable_prop(out: &mut Vec<u8>, kind: u16, id: u16, value: &[u8]) {
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
        out.resize(out.len().div_ceil(4) * 4, 0);
    }

    fn long_prop(out: &mut Vec<u8>, id: u16, value: u32) {
        out.extend_from_slice(&PT_LONG.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }

    fn message_props(count: u32, props: &[u8]) -> Vec<u8> {
        let mut s = stream(&[]);
        let mut block = count.to_le_bytes().to_vec();
        block.extend_from_slice(props);
        attr(&mut s, LEVEL_MESSAGE, ATT_MAPI_PROPS, &block);
        s
    }

    #[test]
    fn message_body_properties_are_kept() {
        let mut props = Vec::new();
        let body: Vec<u8> = "Grüße\r\n\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        variable_prop(&mut props, PT_UNICODE, PR_BODY, &body);
        variable_prop(&mut props, PT_BINARY, PR_RTF_COMPRESSED, b"LZFu...");
        variable_prop(&mut props, PT_BINARY, PR_HTML, b"<p>caf\xc3\xa9</p>");
        // The code page comes after the HTML it describes.
        long_prop(&mut props, PR_INTERNET_CPID, 65001);
        let x = extract_tnef(&message_props(4, &props), &TnefLimits::default()).expect("valid");
        assert_eq!(x.body.plain.as_deref(), Some("Grüße\r\n"));
        assert_eq!(x.body.rtf_compressed.as_deref(), Some(&b"LZFu..."[..]));
        assert_eq!(x.body.html.as_deref(), Some("<p>café</p>"));
        assert!(x.files.is_empty());
    }

    #[test]
    fn string8_bodies_read_with_the_message_code_page() {
        let mut props = Vec::new();
        variable_prop(
            &mut props,
            PT_STRING8,
            PR_BODY,
            b"\xcf\xf0\xe8\xe2\xe5\xf2\0",
        );
        long_prop(&mut props, PR_MESSAGE_CODEPAGE, 1251);
        let x = extract_tnef(&message_props(2, &props), &TnefLimits::default()).expect("valid");
        assert_eq!(x.body.plain.as_deref(), Some("Привет"));
    }

    #[test]
    fn att_body_is_the_plain_text_when_pr_body_is_missing() {
        let mut s = stream(&[]);
        attr(&mut s, LEVEL_MESSAGE, ATT_BODY, b"caf\xe9\0");
        let x = extract_tnef(&s, &TnefLimits::default()).expect("valid");
        assert_eq!(x.body.plain.as_deref(), Some("café"));
    }

    #[test]
    fn long_filename_from_mapi_props_wins() {
        let mut s = stream(&[("LONGFI~1.TXT", b"x")]);
        let mut props = Vec::new();
        props.extend_from_slice(&1u32.to_le_bytes());
        props.extend_from_slice(&0x001fu16.to_le_bytes());
        props.extend_from_slice(&PR_ATTACH_LONG_FILENAME.to_le_bytes());
        props.extend_from_slice(&1u32.to_le_bytes());
        let name: Vec<u8> = "long file näme.txt\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        props.extend_from_slice(&(name.len() as u32).to_le_bytes());
        props.extend_from_slice(&name);
        props.resize(props.len().div_ceil(4) * 4, 0);
        attr(&mut s, 2, ATT_ATTACHMENT, &props);
        let x = extract_tnef(&s, &TnefLimits::default()).expect("valid stream");
        assert_eq!(x.files[0].name.as_deref(), Some("long file näme.txt"));
    }
}
