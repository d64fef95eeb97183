//! Binary is never text: a "text" part that is really a file.
//!
//! Mailers label attachments `text/plain` more often than one would think (a Word
//! document sent by a script, a PDF through a web form, a zip with no type), and
//! shown as text such a part is a screen of NULs and mojibake in front of the agent.
//! A part is taken for a file when it starts with a known file signature, or when
//! it is full of control characters that no text has (NUL, the C0 controls other
//! than tab, line ends, form feed and escape). UTF-16 text, half NULs, is text: it
//! is recognised first by [`crate::detect::utf16_without_bom`].

/// At most this much of a part is looked at.
const SAMPLE: usize = 64 * 1024;

/// More than this share of control bytes (in percent) makes a part a file, once
/// there are at least [`MIN_CONTROLS`] of them. Real text has none; the issue's
/// own scan calls text with more than 2 % control characters broken.
const MAX_CONTROL_PERCENT: usize = 2;
/// A couple of stray NULs (a `=00` in quoted-printable) do not make a file.
const MIN_CONTROLS: usize = 8;

/// What a binary "text" part was taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BinaryKind {
    /// In words, for the line shown in its place: "a Word document".
    pub description: &'static str,
    /// The MIME type it is offered as.
    pub content_type: &'static str,
    /// The file name it is offered under when the sender gave none.
    pub file_name: &'static str,
}

const OLE2: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// Known signatures at the start of a file, with what they are.
const SIGNATURES: &[(&[u8], BinaryKind)] = &[
    (
        b"%PDF-",
        BinaryKind {
            description: "a PDF document",
            content_type: "application/pdf",
            file_name: "document.pdf",
        },
    ),
    (
        b"PK\x03\x04",
        BinaryKind {
            description: "a zip archive (or an Office document, which is one)",
            content_type: "application/zip",
            file_name: "archive.zip",
        },
    ),
    (
        b"\x89PNG\r\n\x1a\n",
        BinaryKind {
            description: "a PNG image",
            content_type: "image/png",
            file_name: "image.png",
        },
    ),
    (
        b"\xFF\xD8\xFF",
        BinaryKind {
            description: "a JPEG image",
            content_type: "image/jpeg",
            file_name: "image.jpg",
        },
    ),
    (
        b"GIF87a",
        BinaryKind {
            description: "a GIF image",
            content_type: "image/gif",
            file_name: "image.gif",
        },
    ),
    (
        b"GIF89a",
        BinaryKind {
            description: "a GIF image",
            content_type: "image/gif",
            file_name: "image.gif",
        },
    ),
    (
        b"\x1F\x8B\x08",
        BinaryKind {
            description: "a gzip archive",
            content_type: "application/gzip",
            file_name: "archive.gz",
        },
    ),
    (
        b"Rar!\x1A\x07",
        BinaryKind {
            description: "a RAR archive",
            content_type: "application/vnd.rar",
            file_name: "archive.rar",
        },
    ),
    (
        b"7z\xBC\xAF\x27\x1C",
        BinaryKind {
            description: "a 7-Zip archive",
            content_type: "application/x-7z-compressed",
            file_name: "archive.7z",
        },
    ),
    (
        b"\x7FELF",
        BinaryKind {
            description: "an executable program",
            content_type: "application/x-executable",
            file_name: "program.bin",
        },
    ),
    (
        b"\x78\x9F\x3E\x22",
        BinaryKind {
            description: "an Outlook winmail.dat",
            content_type: "application/ms-tnef",
            file_name: "winmail.dat",
        },
    ),
];

const WORD: BinaryKind = BinaryKind {
    description: "a Word document",
    content_type: "application/msword",
    file_name: "document.doc",
};
const EXCEL: BinaryKind = BinaryKind {
    description: "an Excel workbook",
    content_type: "application/vnd.ms-excel",
    file_name: "workbook.xls",
};
const POWERPOINT: BinaryKind = BinaryKind {
    description: "a PowerPoint presentation",
    content_type: "application/vnd.ms-powerpoint",
    file_name: "presentation.ppt",
};
const OFFICE: BinaryKind = BinaryKind {
    description: "a Microsoft Office (OLE2) file",
    content_type: "application/x-ole-storage",
    file_name: "document.ole",
};
const UNKNOWN: BinaryKind = BinaryKind {
    description: "binary data",
    content_type: "application/octet-stream",
    file_name: "data.bin",
};

/// What `bytes` (a text part after its transfer encoding) are, when they are a file
/// and not text.
pub(crate) fn sniff_binary(bytes: &[u8]) -> Option<BinaryKind> {
    if bytes.starts_with(OLE2) {
        return Some(ole2_kind(bytes));
    }
    if let Some((_, kind)) = SIGNATURES.iter().find(|(sig, _)| bytes.starts_with(sig)) {
        return Some(*kind);
    }
    if encoding_rs::Encoding::for_bom(bytes).is_some()
        || crate::detect::utf16_without_bom(bytes).is_some()
    {
        return None;
    }
    let sample = bytes.get(..SAMPLE).unwrap_or(bytes);
    let controls = sample.iter().filter(|&&b| is_binary_control(b)).count();
    (controls >= MIN_CONTROLS && controls * 100 > sample.len() * MAX_CONTROL_PERCENT)
        .then_some(UNKNOWN)
}

/// Control bytes no text holds: C0 other than tab, line ends, vertical tab, form
/// feed and escape (ISO-2022-JP and terminal colours use it), and DEL.
fn is_binary_control(b: u8) -> bool {
    matches!(b, 0x00..=0x08 | 0x0E..=0x1A | 0x1C..=0x1F | 0x7F)
}

/// An OLE2 compound file names its streams in UTF-16LE in its directory: Word,
/// Excel and PowerPoint each have a stream by which they are known.
fn ole2_kind(bytes: &[u8]) -> BinaryKind {
    let has = |name: &str| {
        let needle: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        bytes.windows(needle.len()).any(|w| w == needle.as_slice())
    };
    if has("WordDocument") {
        WORD
    } else if has("Workbook") || has("Book") {
        EXCEL
    } else if has("PowerPoint Document") {
        POWERPOINT
    } else {
        OFFICE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_document_is_recognised_by_its_signature_and_directory() {
        let mut doc = OLE2.to_vec();
        doc.extend_from_slice(&[0u8; 512]);
        doc.extend("WordDocument".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(sniff_binary(&doc), Some(WORD));
        assert_eq!(sniff_binary(OLE2), Some(OFFICE));
    }

    #[test]
    fn text_with_a_few_stray_nuls_is_still_text() {
        assert_eq!(sniff_binary(b"body\0with\0nuls\r\n"), None);
        assert_eq!(sniff_binary(b"\x1b$B%-%8%H%i\x1b(B"), None);
        let mut long = "ordinary text. ".repeat(100).into_bytes();
        long.extend_from_slice(&[0; 10]);
        assert_eq!(sniff_binary(&long), None);
    }

    #[test]
    fn utf16_text_is_not_binary() {
        let bytes: Vec<u8> = "UTF-16 text without a byte order mark"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(sniff_binary(&bytes), None);
    }

    #[test]
    fn data_full_of_control_bytes_is_binary() {
        let data: Vec<u8> = (0..=255u8).cycle().take(2048).collect();
        assert_eq!(sniff_binary(&data), Some(UNKNOWN));
    }
}
