//! Serving bytes that came from strangers (attachments, raw mail) without letting them
//! run in popdesk's origin: always a download, never a page.
//!
//! The content type is kept only when it is on a short list of types a browser will not
//! execute; anything else (HTML, SVG, XML, JavaScript, unknown types) goes out as
//! `application/octet-stream`. Together with `Content-Disposition: attachment` and
//! `X-Content-Type-Options: nosniff` (set on every response) a hostile attachment can
//! only be saved, not rendered.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};

/// Types that are safe to label as what they are: the browser either shows them as
/// inert media/text or hands them to another program.
const SAFE_TYPES: &[&str] = &[
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/ms-tnef",
    "message/rfc822",
    "text/plain",
    "text/csv",
    "text/calendar",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "video/mp4",
    "video/webm",
];

/// Images that may be shown inline (for `cid:` references in sanitized HTML). Not SVG:
/// an SVG is a document that can carry script.
const INLINE_IMAGE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
];

/// The type without parameters, lower-cased.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The content type to send for a download: the declared one if it is safe, else
/// `application/octet-stream`.
pub(crate) fn download_type(declared: &str) -> &'static str {
    let essence = essence(declared);
    SAFE_TYPES
        .iter()
        .find(|safe| **safe == essence)
        .copied()
        .unwrap_or("application/octet-stream")
}

/// The type to send for an inline image, or None when it is not a safe image.
pub(crate) fn inline_image_type(declared: &str) -> Option<&'static str> {
    let essence = essence(declared);
    INLINE_IMAGE_TYPES
        .iter()
        .find(|safe| **safe == essence)
        .copied()
}

/// Unicode's format characters (general category Cf, Unicode 15.1): invisible, and some
/// of them reorder what follows. U+202E turns `x\u{202e}fdp.exe` into a name that shows
/// (and, in some file managers, saves) as `xexe.pdf`; zero-width ones make two different
/// names look alike. None belongs in a file name.
const FORMAT_CHARACTERS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `c` is a Unicode format character (category Cf).
pub(crate) fn is_format_character(c: char) -> bool {
    FORMAT_CHARACTERS
        .iter()
        .any(|(first, last)| (*first..=*last).contains(&c))
}

/// A file name stripped of what could hurt where it is saved or shown: directories,
/// control and format characters (bidirectional overrides, zero-width marks), leading
/// dots; at most 150 characters.
pub(crate) fn safe_filename(name: Option<&str>, fallback: &str) -> String {
    let name = name.unwrap_or("");
    // Only the last path component: "../../etc/passwd" saves as "passwd".
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !is_format_character(*c))
        .map(|c| match c {
            '"' | ':' | '*' | '?' | '<' | '>' | '|' => '_',
            c => c,
        })
        .take(150)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if cleaned.is_empty() {
        fallback.to_string()
    } else {
        cleaned
    }
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266): old
/// clients read the ASCII form, current ones the exact name.
pub(crate) fn content_disposition(disposition: &str, filename: &str) -> HeaderValue {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in filename.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// What a download sends: bytes in memory, or a stored blob streamed from the blob store in small
/// chunks, so a 200 MB raw message costs the server a buffer, not 200 MB.
pub(crate) struct Download {
    body: Body,
    length: u64,
}

/// How much of a blob is read per chunk of a streamed download.
const CHUNK: usize = 64 * 1024;

impl From<Vec<u8>> for Download {
    fn from(bytes: Vec<u8>) -> Download {
        Download {
            length: bytes.len() as u64,
            body: Body::from(bytes),
        }
    }
}

impl From<store::BlobReader> for Download {
    fn from(blob: store::BlobReader) -> Download {
        Download {
            length: blob.size,
            body: Body::from_stream(tokio_util::io::ReaderStream::with_capacity(blob, CHUNK)),
        }
    }
}

/// A response that makes the browser save the content as `filename`.
pub(crate) fn attachment(
    content: impl Into<Download>,
    content_type: &'static str,
    filename: &str,
) -> Response {
    file_response(
        content.into(),
        content_type,
        content_disposition("attachment", filename),
    )
}

/// A response showing an image inline.
pub(crate) fn inline_image(
    content: impl Into<Download>,
    content_type: &'static str,
    filename: &str,
) -> Response {
    file_response(
        content.into(),
        content_type,
        content_disposition("inline", filename),
    )
}

fn file_response(
    content: Download,
    content_type: &'static str,
    disposition: HeaderValue,
) -> Response {
    let mut response = (StatusCode::OK, content.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content.length));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    // Customer mail: kept out of shared caches, fine in the user's own.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    // Other sites cannot embed it (e.g. as an <img> to probe whether it exists).
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    // The sandbox keeps a document that a browser renders anyway from running script
    // in popdesk's origin.
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scriptable_types_download_as_octet_stream() {
        for risky in [
            "text/html",
            "TEXT/HTML; charset=utf-8",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/xml",
            "application/javascript",
            "text/javascript",
            "application/x-shockwave-flash",
            "multipart/related",
            "",
            "nonsense",
        ] {
            assert_eq!(download_type(risky), "application/octet-stream", "{risky}");
        }
        assert_eq!(
            download_type("application/PDF; name=x.pdf"),
            "application/pdf"
        );
        assert_eq!(download_type("image/png"), "image/png");
        assert_eq!(inline_image_type("image/svg+xml"), None);
        assert_eq!(inline_image_type("image/jpeg"), Some("image/jpeg"));
    }

    #[test]
    fn filenames_lose_paths_and_controls() {
        assert_eq!(safe_filename(Some("../../etc/passwd"), "x"), "passwd");
        assert_eq!(safe_filename(Some("C:\\Users\\a\\b.doc"), "x"), "b.doc");
        assert_eq!(
            safe_filename(Some("evil\r\nSet-Cookie: a"), "x"),
            "evilSet-Cookie_ a"
        );
        assert_eq!(safe_filename(Some(".htaccess"), "x"), "htaccess");
        assert_eq!(safe_filename(None, "attachment-1"), "attachment-1");
        assert_eq!(safe_filename(Some("  "), "attachment-1"), "attachment-1");
    }

    #[test]
    fn filenames_lose_format_characters() {
        // Right-to-left override: would show and save as "xexe.pdf".
        assert_eq!(safe_filename(Some("x\u{202e}fdp.exe"), "x"), "xfdp.exe");
        // Isolates, zero-width space and joiner, BOM, soft hyphen, tag characters.
        assert_eq!(
            safe_filename(
                Some("\u{2067}in\u{200b}voice\u{200d}\u{feff}\u{ad}\u{e0041}\u{2069}.pdf"),
                "x"
            ),
            "invoice.pdf"
        );
        assert_eq!(
            safe_filename(Some("\u{202e}\u{200f}"), "attachment-1"),
            "attachment-1"
        );
        // Letters of right-to-left scripts are not format characters and stay.
        assert_eq!(
            safe_filename(Some("\u{05e9}\u{05dc}.txt"), "x"),
            "\u{05e9}\u{05dc}.txt"
        );
        let disposition =
            content_disposition("attachment", &safe_filename(Some("a\u{202e}b"), "x"));
        assert!(!disposition.to_str().unwrap_or("").contains("%E2%80%AE"));
    }

    #[test]
    fn disposition_carries_an_ascii_and_an_exact_name() {
        let value = content_disposition("attachment", "Rechnung März \"2026\".pdf");
        assert_eq!(
            value.to_str().expect("ascii header"),
            "attachment; filename=\"Rechnung M_rz _2026_.pdf\"; \
             filename*=UTF-8''Rechnung%20M%C3%A4rz%20%222026%22.pdf"
        );
    }
}
