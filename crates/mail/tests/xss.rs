//! Sanitizing: known XSS vectors embedded in HTML mail must not survive, with the
//! default options and with the most permissive ones popdesk offers (remote
//! images on, `cid:` pointed at our URLs). Vectors from the OWASP filter-evasion
//! cheat sheet, html5sec.org and mXSS write-ups; assertions are on the output.

use mail::{SanitizeOptions, parse, sanitize_html};

const VECTORS: &[&str] = &[
    // script elements
    r#"<script>alert(1)</script>"#,
    r#"<SCRIPT SRC=http://xss.rocks/xss.js></SCRIPT>"#,
    r#"<SCRIPT/XSS SRC="http://xss.rocks/xss.js"></SCRIPT>"#,
    r#"<<SCRIPT>alert("XSS");//<</SCRIPT>"#,
    r#"<SCRIPT SRC=http://xss.rocks/xss.js?< B >"#,
    r#"</TITLE><SCRIPT>alert("XSS");</SCRIPT>"#,
    r#"<IMG """><SCRIPT>alert("XSS")</SCRIPT>">"#,
    // javascript: URLs, plain and disguised
    r#"<IMG SRC="javascript:alert('XSS');">"#,
    r#"<IMG SRC=JaVaScRiPt:alert('XSS')>"#,
    r#"<IMG SRC=`javascript:alert("RSnake says, 'XSS'")`>"#,
    r#"<IMG SRC=javascript:alert(String.fromCharCode(88,83,83))>"#,
    r#"<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>"#,
    r#"<IMG SRC=&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041>"#,
    r#"<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74&#x28&#x27&#x58&#x53&#x53&#x27&#x29>"#,
    "<IMG SRC=\"jav\tascript:alert('XSS');\">",
    r#"<IMG SRC="jav&#x09;ascript:alert('XSS');">"#,
    r#"<IMG SRC="jav&#x0A;ascript:alert('XSS');">"#,
    r#"<IMG SRC=" &#14;  javascript:alert('XSS');">"#,
    r#"<a href="&#106;avascript:alert(1)">x</a>"#,
    r#"<a href="  javascript:alert(1)">x</a>"#,
    r#"<a href="javascript&colon;alert(1)">x</a>"#,
    r#"<a href="vbscript:msgbox(1)">x</a>"#,
    r#"<IMG SRC="`<javascript:alert>`('XSS')""#,
    r#"<a href="javascript:alert(1)" style="position:fixed;top:0;left:0;width:100%;height:100%">overlay</a>"#,
    // event handlers
    r#"<a onmouseover="alert(document.cookie)">xxs link</a>"#,
    r#"<IMG SRC=# onmouseover="alert('xxs')">"#,
    r#"<IMG SRC=/ onerror="alert(String.fromCharCode(88,83,83))"></img>"#,
    r#"<img src=x onerror="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041">"#,
    r#"<BODY onload!#$%&()*~+-_.,:;?@[/|\]^`=alert("XSS")>"#,
    r#"<body onload=alert(1)>"#,
    r#"<details open ontoggle=alert(1)>"#,
    r#"<video><source onerror="alert(1)"></video>"#,
    r#"<audio src=x onerror=alert(1)>"#,
    r#"<marquee onstart=alert(1)>x</marquee>"#,
    r#"<isindex type=image src=1 onerror=alert(1)>"#,
    r#"<img src=x:alert(alt) onerror=eval(src) alt=0>"#,
    r#"<img src="cid:x" onerror=alert(1)>"#,
    r#"<div onclick="alert(1)" onmouseenter=alert(2)>x</div>"#,
    // data: URLs
    r#"<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>"#,
    r#"<img src="data:image/svg+xml,<svg onload=alert(1)>">"#,
    r#"<img src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">"#,
    r#"<EMBED SRC="data:image/svg+xml;base64,PHN2ZyB4bWxuczpzdmc9Imh0dH A6Ly93d3cudzMub3JnLzIwMDAvc3ZnIj48c2NyaXB0PmFsZXJ0KDEpPC9zY3JpcHQ+PC9zdmc+" type="image/svg+xml" AllowScriptAccess="always"></EMBED>"#,
    // frames, objects, forms
    r#"<iframe src=http://xss.rocks/scriptlet.html <"#,
    r#"<IFRAME SRC="javascript:alert('XSS');"></IFRAME>"#,
    r#"<iframe srcdoc="<script>alert(1)</script>"></iframe>"#,
    r#"<FRAMESET><FRAME SRC="javascript:alert('XSS');"></FRAMESET>"#,
    r#"<OBJECT TYPE="text/x-scriptlet" DATA="http://xss.rocks/scriptlet.html"></OBJECT>"#,
    r#"<object data="javascript:alert(1)"></object>"#,
    r#"<form><button formaction="javascript:alert(1)">X</button></form>"#,
    r#"<form action="javascript:alert(1)"><input type=submit></form>"#,
    r#"<INPUT TYPE="IMAGE" SRC="javascript:alert('XSS');">"#,
    r#"<textarea><script>alert(1)</script></textarea>"#,
    // document-level: base, meta refresh, link
    r#"<BASE HREF="javascript:alert('XSS');//">"#,
    r#"<base href="https://evil.example/">"#,
    r#"<META HTTP-EQUIV="refresh" CONTENT="0;url=javascript:alert('XSS');">"#,
    r#"<META HTTP-EQUIV="refresh" CONTENT="0;url=data:text/html base64,PHNjcmlwdD5hbGVydCgnWFNTJyk8L3NjcmlwdD4K">"#,
    r#"<meta http-equiv="refresh" content="0; url=https://evil.example">"#,
    r#"<LINK REL="stylesheet" HREF="javascript:alert('XSS');">"#,
    // legacy attributes that load
    r#"<BODY BACKGROUND="javascript:alert('XSS')">"#,
    r#"<IMG DYNSRC="javascript:alert('XSS')">"#,
    r#"<IMG LOWSRC="javascript:alert('XSS')">"#,
    r#"<TABLE BACKGROUND="javascript:alert('XSS')"><tr><td>x</td></tr></TABLE>"#,
    r#"<table><TD BACKGROUND="javascript:alert('XSS')">x</td></table>"#,
    // CSS
    r#"<STYLE>li {list-style-image: url("javascript:alert('XSS')");}</STYLE><UL><LI>XSS</br>"#,
    r#"<DIV STYLE="background-image: url(javascript:alert('XSS'))">x</DIV>"#,
    r#"<DIV STYLE="background-image:\0075\0072\006C\0028'\006a\0061\0076\0061\0073\0063\0072\0069\0070\0074\003a\0061\006c\0065\0072\0074\0028.1027\0058.1053\0053\0027\0029'\0029">x</DIV>"#,
    r#"<DIV STYLE="width: expression(alert('XSS'));">x</DIV>"#,
    r#"<IMG STYLE="xss:expr/*XSS*/ession(alert('XSS'))">"#,
    r#"<div style="color: red; width: exp&#x72;ession(alert(1))">x</div>"#,
    r#"<div style="-moz-binding:url(http://x/xss.xml#xss)">x</div>"#,
    r#"<div style="behavior: url(xss.htc)">x</div>"#,
    r#"<p style="color: red; background: url('http://tracker.example/x')">x</p>"#,
    // SVG and MathML
    r#"<svg/onload=alert('XSS')>"#,
    r#"<svg><script>alert(1)</script></svg>"#,
    r#"<svg><animate onbegin=alert(1) attributeName=x dur=1s>"#,
    r#"<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">XSS</text></a></svg>"#,
    r#"<svg><set attributeName="href" to="javascript:alert(1)"/></svg>"#,
    r#"<math href="javascript:alert(1)">CLICKME</math>"#,
    r#"<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>"#,
    r#"<math><mi xlink:href="data:x,<script>alert(4)</script>">"#,
    // malformed, nested, unclosed markup and mXSS
    r#"<noscript><p title="</noscript><img src=x onerror=alert(1)>">"#,
    r#"<style><img src="</style><img src=x onerror=alert(1)//">"#,
    r#"<!--<img src="--><img src=x onerror=alert(1)//">"#,
    r#"<xmp><img src=x onerror=alert(1)></xmp>"#,
    r#"<div><div><div><img src=x onerror=alert(1)"#,
    r#"<a href="https://ok.example/"><a href="javascript:alert(1)">nested</a></a>"#,
    r#"<title><img src=x onerror=alert(1)></title>"#,
    r#"<template><img src=x onerror=alert(1)></template>"#,
    r#"<select><option><img src=x onerror=alert(1)></option></select>"#,
    r#"<p id="x" class="admin-button" name="clobber">clobber</p>"#,
    // remote loads (privacy, not script): blocked by default
    r#"<img src="https://tracker.example/pixel.gif">"#,
    r#"<img srcset="https://tracker.example/p.gif 1x">"#,
    r#"<table background="https://tracker.example/bg.gif"><tr><td>x</td></tr></table>"#,
    r#"<a href="/relative/admin">relative</a>"#,
];

/// Every tag ammonia is allowed to emit (kept in step with the sanitizer by this
/// test failing when something else appears).
const ALLOWED_TAGS: &[&str] = &[
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

/// Attributes that only exist to load or run something.
const FORBIDDEN_ATTRIBUTES: &[&str] = &[
    "srcdoc",
    "formaction",
    "action",
    "background",
    "dynsrc",
    "lowsrc",
    "srcset",
    "poster",
    "data",
    "xlink:href",
    "id",
    "class",
    "name",
    "http-equiv",
    "content",
];

/// Decodes character references the way a browser would in an attribute.
fn decode_entities(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .unwrap_or(rest.len());
        let entity = &rest[..end];
        let decoded = if let Some(num) = entity.strip_prefix("#x").or(entity.strip_prefix("#X")) {
            u32::from_str_radix(num, 16).ok().and_then(char::from_u32)
        } else if let Some(num) = entity.strip_prefix('#') {
            num.parse().ok().and_then(char::from_u32)
        } else {
            match entity.to_ascii_lowercase().as_str() {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "nbsp" => Some('\u{a0}'),
                "colon" => Some(':'),
                "tab" => Some('\t'),
                "newline" => Some('\n'),
                _ => None,
            }
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = rest[end..].strip_prefix(';').unwrap_or(&rest[end..]);
            }
            None => out.push('&'),
        }
    }
    out.push_str(rest);
    out
}

/// What is wrong with one sanitized output, if anything.
fn problems(output: &str, remote_allowed: bool) -> Vec<String> {
    let mut found = Vec::new();
    let lower = output.to_ascii_lowercase();
    for needle in [
        "<script",
        "<iframe",
        "<object",
        "<embed",
        "<form",
        "<base",
        "<meta",
        "<link",
        "<style",
        "<svg",
        "<math",
        "<input",
        "<button",
        "<frame",
        "<textarea",
        "<template",
        "<noscript",
    ] {
        if lower.contains(needle) {
            found.push(format!("contains {needle}"));
        }
    }
    // Walk every tag: in sanitized output a raw '<' only ever starts a tag.
    let mut rest = output;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let end = {
            let mut quoted = false;
            rest.char_indices()
                .find(|&(_, c)| {
                    if c == '"' {
                        quoted = !quoted;
                    }
                    c == '>' && !quoted
                })
                .map_or(rest.len(), |(i, _)| i)
        };
        let tag = &rest[..end];
        rest = &rest[end..];
        let body = tag.trim_start_matches('/');
        let name_end = body
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(body.len());
        let name = body[..name_end].to_ascii_lowercase();
        if !ALLOWED_TAGS.contains(&name.as_str()) {
            found.push(format!("tag <{name}> not allowed"));
        }
        // Attributes: name="value" pairs.
        let mut attrs = &body[name_end..];
        while let Some(eq) = attrs.find("=\"") {
            let attr_name = attrs[..eq].trim().to_ascii_lowercase();
            let after = &attrs[eq + 2..];
            let close = after.find('"').unwrap_or(after.len());
            let value = decode_entities(&after[..close]);
            attrs = after.get(close + 1..).unwrap_or("");
            let squashed: String = value
                .chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .collect::<String>()
                .to_ascii_lowercase();
            if attr_name.starts_with("on") {
                found.push(format!("event handler {attr_name}"));
            }
            if FORBIDDEN_ATTRIBUTES.contains(&attr_name.as_str()) {
                found.push(format!("attribute {attr_name}"));
            }
            for scheme in ["javascript:", "vbscript:", "livescript:", "mocha:"] {
                if squashed.contains(scheme) {
                    found.push(format!("{scheme} in {attr_name}"));
                }
            }
            if squashed.starts_with("data:")
                && !(name == "img"
                    && attr_name == "src"
                    && [
                        "data:image/png",
                        "data:image/jpeg",
                        "data:image/gif",
                        "data:image/webp",
                    ]
                    .iter()
                    .any(|t| squashed.starts_with(t)))
            {
                found.push(format!("data: URL in {attr_name}"));
            }
            if attr_name == "style" {
                for bad in [
                    "expression",
                    "url(",
                    "\\",
                    "behavior",
                    "binding",
                    "position",
                    "/*",
                ] {
                    if squashed.contains(bad) {
                        found.push(format!("style with {bad}"));
                    }
                }
            }
            let loads = matches!(attr_name.as_str(), "src" | "srcset" | "background");
            if loads
                && !remote_allowed
                && (squashed.starts_with("http") || squashed.starts_with("//"))
            {
                found.push(format!("remote load in {attr_name}"));
            }
            if attr_name == "href"
                && (squashed.starts_with('/') && !squashed.starts_with("//attachments"))
            {
                found.push("relative link".into());
            }
        }
    }
    found
}

fn html_mail(html: &str) -> Vec<u8> {
    format!(
        "From: Mallory <mallory@evil.example>\r\nTo: support@popdesk.example\r\nSubject: hi\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <html><head><title>t</title></head><body><p>Hello</p>{html}<p>Bye</p></body></html>\r\n"
    )
    .into_bytes()
}

#[test]
fn xss_vectors_in_html_mail_do_not_survive() {
    assert!(VECTORS.len() >= 50, "only {} vectors", VECTORS.len());
    let permissive = SanitizeOptions {
        cid_url_template: Some("/attachments/{content_id}".into()),
        load_remote_images: true,
    };
    let mut failures = Vec::new();
    for (i, vector) in VECTORS.iter().enumerate() {
        let message = parse(&html_mail(vector)).expect("HTML mail parses");
        let by_default = message.html_body.clone().unwrap_or_default();
        for p in problems(&by_default, false) {
            failures.push(format!(
                "#{i} {vector}\n   default: {p}\n   output: {by_default}"
            ));
        }
        let source = message.html_source.clone().unwrap_or_default();
        let opened = sanitize_html(&source, &permissive);
        for p in problems(&opened, true) {
            failures.push(format!(
                "#{i} {vector}\n   permissive: {p}\n   output: {opened}"
            ));
        }
        // The text made from the HTML is plain text; it is never rendered as HTML,
        // but it must not have lost the surrounding content either.
        assert!(
            message.text_body.contains("Hello"),
            "#{i}: {:?}",
            message.text_body
        );
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn vectors_survive_transfer_encodings_no_better() {
    // The same vectors hidden behind quoted-printable and base64 are decoded
    // before sanitizing, and come out just as clean.
    for vector in VECTORS {
        let qp: String = vector
            .bytes()
            .map(|b| format!("={b:02X}"))
            .collect::<Vec<_>>()
            .chunks(20)
            .map(|c| c.concat())
            .collect::<Vec<_>>()
            .join("=\r\n");
        let raw = format!(
            "From: m@evil.example\r\nSubject: qp\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n{qp}\r\n"
        );
        let message = parse(raw.as_bytes()).expect("parses");
        let html = message.html_body.unwrap_or_default();
        let p = problems(&html, false);
        assert!(p.is_empty(), "{vector}: {p:?}\n{html}");
    }
}

#[test]
fn the_checker_itself_catches_what_it_should() {
    assert!(!problems(r#"<img src="x" onerror="alert(1)">"#, false).is_empty());
    assert!(!problems(r#"<a href="jav&#x09;ascript:alert(1)">x</a>"#, false).is_empty());
    assert!(!problems(r#"<script>x</script>"#, false).is_empty());
    assert!(!problems(r#"<img src="https://t.example/p.gif">"#, false).is_empty());
    assert!(problems(r#"<p>&lt;script&gt; is text</p>"#, false).is_empty());
}
