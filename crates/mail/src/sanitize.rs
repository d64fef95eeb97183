//! Making untrusted HTML safe to show an agent.
//!
//! ammonia runs its attribute filter after it has checked URL schemes and before
//! it handles relative URLs, so rewritten URLs are passed out of it as marker
//! schemes and put in place by a small pass over ammonia's serialised output
//! (whose quoting rules are fixed: every attribute value double-quoted, `"`, `&`
//! escaped inside values, `<` and `>` escaped in text).

use std::borrow::Cow;
use std::sync::LazyLock;

/// How [`sanitize_html`] treats references that load something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SanitizeOptions {
    /// Where `cid:` references point, with `{content_id}` replaced by the
    /// percent-encoded Content-ID (without angle brackets), e.g.
    /// `/messages/42/attachments/{content_id}`. `None` leaves them without a source;
    /// the Content-ID is then kept in `data-popdesk-cid`.
    pub cid_url_template: Option<String>,
    /// Load remote (`http`, `https`) images. Off by default: a remote image tells
    /// the sender when, where and that the mail was read.
    pub load_remote_images: bool,
}

/// Marker scheme for a blocked remote image (never in ammonia's scheme list, so
/// the sender cannot write one).
const REMOTE_MARK: &str = "x-popdesk-remote:";
/// Marker scheme for a `cid:` reference, followed by the percent-encoded id.
const CID_MARK: &str = "x-popdesk-cid:";

const TAGS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "article",
    "aside",
    "b",
    "bdi",
    "bdo",
    "big",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "font",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "main",
    "mark",
    "nav",
    "ol",
    "p",
    "pre",
    "q",
    "rp",
    "rt",
    "ruby",
    "s",
    "samp",
    "section",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "time",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
];

/// Elements removed together with everything inside them.
const DROP_WITH_CONTENT: &[&str] = &[
    "script",
    "style",
    "title",
    "template",
    "noscript",
    "noembed",
    "noframes",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "svg",
    "math",
    "textarea",
    "select",
    "option",
    "button",
    "head",
    "xmp",
    "plaintext",
    "audio",
    "video",
    "canvas",
    "dialog",
];

const GENERIC_ATTRIBUTES: &[&str] = &[
    "align", "bgcolor", "border", "dir", "height", "lang", "style", "title", "valign", "width",
];

const STYLE_PROPERTIES: &[&str] = &[
    "background-color",
    "border",
    "border-bottom",
    "border-bottom-color",
    "border-bottom-style",
    "border-bottom-width",
    "border-collapse",
    "border-color",
    "border-left",
    "border-left-color",
    "border-left-style",
    "border-left-width",
    "border-radius",
    "border-right",
    "border-right-color",
    "border-right-style",
    "border-right-width",
    "border-spacing",
    "border-style",
    "border-top",
    "border-top-color",
    "border-top-style",
    "border-top-width",
    "border-width",
    "caption-side",
    "clear",
    "color",
    "direction",
    "display",
    "empty-cells",
    "float",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-variant",
    "font-weight",
    "height",
    "letter-spacing",
    "line-height",
    "list-style-type",
    "margin",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "margin-top",
    "max-height",
    "max-width",
    "min-height",
    "min-width",
    "overflow-wrap",
    "padding",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-top",
    "table-layout",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "vertical-align",
    "white-space",
    "width",
    "word-break",
    "word-spacing",
    "word-wrap",
];

/// Substrings that make a CSS declaration unsafe or able to load something.
const CSS_DENY: &[&str] = &[
    "url(",
    "image(",
    "image-set(",
    "expression",
    "javascript",
    "vbscript",
    "behavior",
    "behaviour",
    "binding",
    "@import",
    "\\",
    "/*",
    "*/",
    "<",
    "var(",
    "attr(",
    "env(",
];

/// Raster image types allowed as `data:` URLs in `<img src>`.
const DATA_IMAGE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/gif",
    "image/webp",
    "image/bmp",
];

/// Deepest element nesting handed to the HTML parser. html5ever's tree building is
/// quadratic in nesting depth (20,000 unclosed `<div>`s take seconds, 200,000 take
/// hours), while real mail stays under a few hundred levels.
pub(crate) const MAX_NESTING: usize = 1000;

/// Sanitizes an HTML body for display; the result is safe to put inside a page as
/// it is.
///
/// ammonia parses the HTML the way a browser does (html5ever) and keeps only an
/// allow-list of elements, attributes, URL schemes and CSS properties, so what
/// comes out cannot run code. On top of its defaults popdesk:
///
/// - drops forms, frames, objects, SVG, MathML, `<base>`, `<meta>`, `<style>`
///   (with their content), `class` and `id` (no styling or DOM clobbering through
///   our own page's names);
/// - allows only `http`, `https`, `mailto`, `tel` links and denies relative URLs,
///   which would resolve against popdesk's own origin;
/// - allows `data:` URLs only as `<img src>` of raster types (PNG, JPEG, GIF, WebP,
///   BMP): mail clients embed small images that way, an image element cannot run
///   script, and `image/svg+xml` is refused because SVG opened on its own can;
/// - keeps inline `style` but only with layout and typography properties and
///   without `url(`, `expression`, escapes or comments, so no CSS can load
///   anything, run anything or cover the page (`position` is not allowed);
/// - blocks remote images: the `src` is removed and the original kept in
///   `data-popdesk-remote-src` for the UI to restore when an agent asks;
/// - points `cid:` references at the caller's URL for stored attachments.
///
/// HTML nested deeper than any real mail (over 1000 open elements) is not parsed at
/// all: its tags are stripped and the text shown escaped in a `<pre>`, so a
/// hostile body cannot stall the processor.
pub fn sanitize_html(html: &str, options: &SanitizeOptions) -> String {
    if nesting_depth(html) > MAX_NESTING {
        return format!("<pre>{}</pre>", escape_text(&strip_tags(html)));
    }
    let builder = if options.load_remote_images {
        &*LOADING_REMOTE
    } else {
        &*BLOCKING_REMOTE
    };
    let cleaned = builder.clean(html).to_string();
    put_back_markers(&cleaned, options)
}

/// The two sanitizers, built once: building one (sets of tags, attributes, schemes
/// and style properties) cost about as much as cleaning a short mail.
static BLOCKING_REMOTE: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| sanitizer(false));
static LOADING_REMOTE: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| sanitizer(true));

fn sanitizer(load_remote: bool) -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(TAGS.iter().copied().collect())
        .clean_content_tags(DROP_WITH_CONTENT.iter().copied().collect())
        .generic_attributes(GENERIC_ATTRIBUTES.iter().copied().collect())
        .add_tag_attributes("a", &["href", "hreflang"])
        .add_tag_attributes("img", &["src", "alt", "hspace", "vspace"])
        .add_tag_attributes("td", &["colspan", "rowspan", "nowrap"])
        .add_tag_attributes("th", &["colspan", "rowspan", "nowrap", "scope"])
        .add_tag_attributes("table", &["cellpadding", "cellspacing"])
        .add_tag_attributes("col", &["span"])
        .add_tag_attributes("colgroup", &["span"])
        .add_tag_attributes("font", &["color", "face", "size"])
        .add_tag_attributes("ol", &["start", "type"])
        .add_tag_attributes("ul", &["type"])
        .add_tag_attributes("time", &["datetime"])
        .url_schemes(
            ["http", "https", "mailto", "tel", "cid", "data"]
                .into_iter()
                .collect(),
        )
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank")
        .strip_comments(true)
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect())
        .attribute_filter(move |element, attribute, value| {
            filter_attribute(element, attribute, value, load_remote)
        });
    builder
}

fn filter_attribute<'u>(
    element: &str,
    attribute: &str,
    value: &'u str,
    load_remote: bool,
) -> Option<Cow<'u, str>> {
    match attribute {
        "style" => filter_style(value),
        "href" | "src" => {
            let trimmed = value.trim();
            let lower = trimmed.to_ascii_lowercase();
            if let Some(id) = lower.strip_prefix("cid:").map(|_| &trimmed[4..]) {
                let id = percent_decode(id);
                let id = id.trim().trim_start_matches('<').trim_end_matches('>');
                return Some(Cow::Owned(format!("{CID_MARK}{}", percent_encode(id))));
            }
            if lower.starts_with("data:") {
                let allowed = element == "img"
                    && attribute == "src"
                    && DATA_IMAGE_TYPES.iter().any(|t| {
                        lower[5..].starts_with(t)
                            && matches!(lower.as_bytes().get(5 + t.len()), Some(b';' | b','))
                    });
                return allowed.then_some(Cow::Borrowed(value));
            }
            if attribute == "src" {
                let remote = lower.starts_with("http:") || lower.starts_with("https:");
                if !remote || element != "img" {
                    return None;
                }
                if load_remote {
                    return Some(Cow::Borrowed(value));
                }
                return Some(Cow::Owned(format!("{REMOTE_MARK}{trimmed}")));
            }
            Some(Cow::Borrowed(value))
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

/// Keeps the declarations of a `style` attribute that cannot load or run
/// anything; ammonia then drops properties not on the allow-list.
fn filter_style(value: &str) -> Option<Cow<'_, str>> {
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|decl| !decl.is_empty())
        .filter(|decl| {
            let lower = decl.to_ascii_lowercase();
            !CSS_DENY.iter().any(|bad| lower.contains(bad)) && !lower.contains('&')
        })
        .collect();
    if kept.is_empty() {
        None
    } else {
        Some(Cow::Owned(kept.join("; ")))
    }
}

/// Replaces the marker URLs left by [`filter_attribute`] in ammonia's output.
fn put_back_markers(html: &str, options: &SanitizeOptions) -> String {
    if !html.contains("x-popdesk-") {
        return html.to_owned();
    }
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        rest = &rest[lt..];
        let end = tag_end(rest);
        out.push_str(&rewrite_tag(&rest[..end], options));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Length of the tag starting at `s[0] == '<'`, through its `>`, honouring
/// double-quoted attribute values (the only quoting ammonia's serialiser uses).
pub(crate) fn tag_end(s: &str) -> usize {
    let mut in_quotes = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '>' if !in_quotes => return i + 1,
            _ => {}
        }
    }
    s.len()
}

/// Rewrites marker attributes inside one serialised tag, attribute by attribute.
fn rewrite_tag(tag: &str, options: &SanitizeOptions) -> String {
    let mut out = String::with_capacity(tag.len() + 32);
    let mut rest = tag;
    // Copy the tag name.
    let name_end = rest
        .find(|c: char| c.is_whitespace() || c == '>')
        .unwrap_or(rest.len());
    out.push_str(&rest[..name_end]);
    rest = &rest[name_end..];
    loop {
        let ws_end = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        let ws = &rest[..ws_end];
        rest = &rest[ws_end..];
        if rest.is_empty() || rest.starts_with('>') || rest.starts_with("/>") {
            out.push_str(ws);
            out.push_str(rest);
            return out;
        }
        let Some(eq_quote) = rest.find("=\"") else {
            // Not the shape ammonia writes: keep the rest as it is.
            out.push_str(ws);
            out.push_str(rest);
            return out;
        };
        let name = &rest[..eq_quote];
        let after = &rest[eq_quote + 2..];
        let value_end = after.find('"').unwrap_or(after.len());
        let value = &after[..value_end];
        rest = after.get(value_end + 1..).unwrap_or("");
        out.push_str(ws);
        match (name, value) {
            ("src", v) if v.starts_with(REMOTE_MARK) => {
                out.push_str("data-popdesk-remote-src=\"");
                out.push_str(&v[REMOTE_MARK.len()..]);
                out.push('"');
            }
            ("src" | "href", v) if v.starts_with(CID_MARK) => {
                let id = &v[CID_MARK.len()..];
                match &options.cid_url_template {
                    Some(template) => {
                        out.push_str(name);
                        out.push_str("=\"");
                        out.push_str(&escape_attribute(&template.replace("{content_id}", id)));
                        out.push_str("\" data-popdesk-cid=\"");
                    }
                    None => out.push_str("data-popdesk-cid=\""),
                }
                out.push_str(id);
                out.push('"');
            }
            _ => {
                out.push_str(name);
                out.push_str("=\"");
                out.push_str(value);
                out.push('"');
            }
        }
    }
}

/// An upper estimate of how deep `html` nests elements, in one linear pass: open
/// elements counted per name, an end tag closing one only if one of its name is
/// open (a stray `</span>` closes nothing), void elements and elements HTML closes
/// by itself (`p`, `li`, `td`, ...) not counted, since they never deepen the tree.
pub(crate) fn nesting_depth(html: &str) -> usize {
    const FLAT: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "p", "li", "td", "th", "tr", "dt", "dd", "option", "optgroup",
        "thead", "tbody", "tfoot", "colgroup", "caption", "rb", "rt", "rp", "html", "head", "body",
        "frame", "keygen",
    ];
    let bytes = html.as_bytes();
    let mut open: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let (mut depth, mut max) = (0usize, 0usize);
    let mut i = 0;
    while let Some(offset) = bytes
        .get(i..)
        .and_then(|b| b.iter().position(|&c| c == b'<'))
    {
        i += offset + 1;
        let closing = bytes.get(i) == Some(&b'/');
        let start = if closing { i + 1 } else { i };
        let len = bytes.get(start..).map_or(0, |b| {
            b.iter().take_while(|c| c.is_ascii_alphanumeric()).count()
        });
        if len == 0 {
            continue;
        }
        let name = html
            .get(start..start + len)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let self_closing = bytes
            .get(start + len..)
            .and_then(|b| b.iter().position(|&c| c == b'>').map(|p| (b, p)))
            .is_some_and(|(b, p)| p > 0 && b.get(p - 1) == Some(&b'/'));
        if FLAT.contains(&name.as_str()) || self_closing {
            continue;
        }
        if closing {
            if let Some(n) = open.get_mut(&name).filter(|n| **n > 0) {
                *n -= 1;
                depth -= 1;
            }
        } else {
            *open.entry(name).or_default() += 1;
            depth += 1;
            max = max.max(depth);
        }
    }
    max
}

/// Removes everything between `<` and `>`: the text of a document too deep to parse.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn escape_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `@`, so a
/// Content-ID is safe in any URL path segment and in an attribute.
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Removes each `<img>` of HTML from [`sanitize_html`] whose `cid:` reference names none
/// of the `carried` Content-IDs (with or without angle brackets): the mail refers to an
/// inline image it does not carry, and a browser would show a broken-image icon in its
/// place. Relies on the sanitizer's output: lower-case tags, double-quoted attribute
/// values with `"` escaped, the reference kept in `data-popdesk-cid`.
pub fn drop_missing_inline_images(html: &str, carried: &[&str]) -> String {
    let bare = |id: &str| {
        let id = id.trim();
        id.strip_prefix('<')
            .and_then(|id| id.strip_suffix('>'))
            .unwrap_or(id)
            .to_string()
    };
    let carried: Vec<String> = carried.iter().map(|id| bare(id)).collect();
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<img") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        // The tag ends at the first `>` outside a quoted value.
        let mut quoted = false;
        let end = tag
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c == '>' && !quoted
            })
            .map_or(tag.len(), |(i, _)| i + 1);
        let element = &tag[..end];
        const MARK: &str = " data-popdesk-cid=\"";
        let missing = element.find(MARK).is_some_and(|at| {
            let value = &element[at + MARK.len()..];
            let value = &value[..value.find('"').unwrap_or(value.len())];
            let id = bare(&percent_decode(value));
            !carried.contains(&id)
        });
        if !missing {
            out.push_str(element);
        }
        rest = &tag[end..];
    }
    out.push_str(rest);
    out
}

/// Decodes `%XX` escapes (RFC 2392 `cid:` URLs are percent-encoded Content-IDs).
pub(crate) fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(decoded) = hex {
                out.push(decoded);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(html: &str) -> String {
        sanitize_html(html, &SanitizeOptions::default())
    }

    #[test]
    fn remote_image_is_blocked_and_kept_for_later() {
        let out = clean(r#"<img src="https://tracker.example/p.gif?a=1&b=2" alt="logo">"#);
        assert_eq!(
            out,
            r#"<img data-popdesk-remote-src="https://tracker.example/p.gif?a=1&amp;b=2" alt="logo">"#
        );
    }

    #[test]
    fn remote_image_loads_when_asked() {
        let opts = SanitizeOptions {
            load_remote_images: true,
            ..SanitizeOptions::default()
        };
        let out = sanitize_html(r#"<img src="https://x.example/a.png">"#, &opts);
        assert_eq!(out, r#"<img src="https://x.example/a.png">"#);
    }

    #[test]
    fn cid_points_at_the_callers_url() {
        let opts = SanitizeOptions {
            cid_url_template: Some("/attachments/{content_id}".into()),
            ..SanitizeOptions::default()
        };
        let out = sanitize_html(r#"<img src="cid:part1.06090408@example.com">"#, &opts);
        assert_eq!(
            out,
            r#"<img src="/attachments/part1.06090408@example.com" data-popdesk-cid="part1.06090408@example.com">"#
        );
        let out = sanitize_html(r#"<img src="CID:a%20b&quot;c">"#, &opts);
        assert_eq!(
            out,
            r#"<img src="/attachments/a%20b%22c" data-popdesk-cid="a%20b%22c">"#
        );
    }

    #[test]
    fn an_inline_image_the_mail_does_not_carry_is_dropped() {
        let opts = SanitizeOptions {
            cid_url_template: Some("/messages/7/cid/{content_id}".into()),
            ..SanitizeOptions::default()
        };
        let html = sanitize_html(
            r#"<p>Logo: <img src="cid:logo@x" alt="a>b"> and <img src="cid:gone%40x" alt="gone"> and <img src="data:image/png;base64,AA==">.</p>"#,
            &opts,
        );
        let out = drop_missing_inline_images(&html, &["<logo@x>"]);
        assert!(out.contains(r#"data-popdesk-cid="logo@x""#), "{out}");
        assert!(!out.contains("gone"), "{out}");
        assert!(out.contains("data:image/png"), "other images stay: {out}");
        assert!(out.ends_with(".</p>"), "{out}");
        // Nothing carried at all: every cid image goes, the text stays.
        let none = drop_missing_inline_images(&html, &[]);
        assert!(!none.contains("<img src=\"/messages"), "{none}");
        assert!(none.contains("Logo: "), "{none}");
    }

    #[test]
    fn cid_without_template_has_no_source() {
        assert_eq!(
            clean(r#"<img src="cid:logo">"#),
            r#"<img data-popdesk-cid="logo">"#
        );
    }

    #[test]
    fn data_images_only_raster() {
        let png = clean(r#"<img src="data:image/png;base64,iVBORw0KGgo=">"#);
        assert!(png.contains("src=\"data:image/png"), "{png}");
        let svg = clean(r#"<img src="data:image/svg+xml;base64,PHN2Zz4=">"#);
        assert!(!svg.contains("data:"), "{svg}");
        let link = clean(r#"<a href="data:text/html,<script>alert(1)</script>">x</a>"#);
        assert!(!link.contains("data:"), "{link}");
    }

    #[test]
    fn style_keeps_layout_and_drops_loads() {
        let out = clean(
            r#"<p style="color: red; background: url(http://x/y.png); position: fixed; font-weight: bold">x</p>"#,
        );
        assert!(out.contains("color"), "{out}");
        assert!(out.contains("font-weight"), "{out}");
        assert!(!out.contains("url"), "{out}");
        assert!(!out.contains("position"), "{out}");
    }

    #[test]
    fn links_open_elsewhere_without_referrer() {
        let out = clean(r#"<a href="https://example.com/">x</a>"#);
        assert!(out.contains(r#"target="_blank""#), "{out}");
        assert!(out.contains("noreferrer"), "{out}");
        assert_eq!(
            clean(r#"<a href="/admin">x</a>"#),
            r#"<a target="_blank" rel="noopener noreferrer nofollow">x</a>"#
        );
    }

    #[test]
    fn nesting_deeper_than_mail_is_not_parsed() {
        assert_eq!(
            nesting_depth("<div><p>a<p>b<br><img src=x><span>c</span></div>"),
            2
        );
        let deep = "<div></span>".repeat(50_000) + "<script>x</script>&";
        let start = std::time::Instant::now();
        let out = clean(&deep);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(out, "<pre>x&amp;</pre>");
    }

    #[test]
    fn marker_text_in_content_is_left_alone() {
        let out = clean(r#"<p title='src="x-popdesk-remote:a'>src="x-popdesk-cid:b"</p>"#);
        assert!(!out.contains("data-popdesk"), "{out}");
    }
}
