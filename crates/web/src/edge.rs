//! Text refused at the edge, before any handler or database sees it: control
//! characters, and query values longer than any search needs.
//!
//! PostgreSQL cannot store U+0000 in text at all ("invalid byte sequence"), and SQLite
//! gives up on a `LIKE` pattern of 50,000 characters; either reached a handler as a 500.
//! Other C0 control characters make no sense in any field popdesk takes. One rule at the
//! edge covers every route, today's and tomorrow's, on both databases, and names the
//! field in the answer: 422 in the API, the error page in the UI.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// The longest value of any query parameter, in characters (a ticket search, the
/// requester filter, ...). Documented in the README.
pub const MAX_QUERY_CHARS: usize = store::MAX_SEARCH_CHARS;

/// The request fields an answer can name by their own name (`field` in the JSON
/// error); any other is named in the sentence only.
const KNOWN_FIELDS: &[&str] = &[
    "q",
    "requester",
    "status",
    "mailbox",
    "page",
    "email",
    "password",
    "name",
    "host",
    "username",
    "subject",
    "body",
    "text",
    "note",
    "display_name",
];

/// What is wrong with one field.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// A control character (its code point) where none belongs.
    Control { field: String, code_point: u32 },
    /// A query value over [`MAX_QUERY_CHARS`].
    TooLong { field: String },
}

impl Refusal {
    fn field(&self) -> &str {
        match self {
            Refusal::Control { field, .. } | Refusal::TooLong { field } => field,
        }
    }

    fn sentence(&self) -> String {
        match self {
            Refusal::Control { field, code_point } => format!(
                "{field} holds a control character (U+{code_point:04X}), which no field accepts; remove it"
            ),
            Refusal::TooLong { field } => {
                format!("{field} is longer than {MAX_QUERY_CHARS} characters; shorten it")
            }
        }
    }

    fn api_error(&self) -> ApiError {
        let error = ApiError::validation(self.sentence());
        let top = self.field().split(['.', '[']).next().unwrap_or_default();
        match KNOWN_FIELDS.iter().find(|known| **known == top) {
            Some(known) => error.about(known),
            None => error,
        }
    }
}

/// A control character no single-line value may hold: all of C0, and DEL.
fn line_control(c: char) -> bool {
    c.is_ascii_control()
}

/// A control character no text may hold: C0 except tab, line feed and carriage return
/// (a reply or a note has lines).
fn text_control(c: char) -> bool {
    c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{7f}')
}

fn control_in(field: &str, value: &str, is_control: fn(char) -> bool) -> Option<Refusal> {
    value
        .chars()
        .find(|c| is_control(*c))
        .map(|c| Refusal::Control {
            field: field.to_string(),
            code_point: u32::from(c),
        })
}

/// The first refused query parameter. A query string that does not decode is left to
/// the handler (it answers 400 with its own words).
fn check_query(query: &str) -> Option<Refusal> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs.iter().find_map(|(name, value)| {
        control_in("a query parameter name", name, line_control)
            .or_else(|| control_in(name, value, line_control))
            .or_else(|| {
                (value.chars().count() > MAX_QUERY_CHARS).then(|| Refusal::TooLong {
                    field: name.clone(),
                })
            })
    })
}

/// The first refused string of a JSON body (keys too), named by its path.
fn check_json(value: &serde_json::Value, path: &str) -> Option<Refusal> {
    use serde_json::Value;
    match value {
        Value::String(text) => control_in(path, text, text_control),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| check_json(item, &format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let inner = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            control_in("a field name", key, line_control).or_else(|| check_json(item, &inner))
        }),
        _ => None,
    }
}

/// The first refused field of an HTML form body.
fn check_form(body: &[u8]) -> Option<Refusal> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.iter().find_map(|(name, value)| {
        control_in("a form field name", name, line_control)
            .or_else(|| control_in(name, value, text_control))
    })
}

/// The kind of body this module reads.
enum BodyKind {
    Json,
    Form,
}

fn body_kind(headers: &HeaderMap) -> Option<BodyKind> {
    let essence = headers
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .split(';')
        .next()?
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Some(BodyKind::Json)
    } else if essence == "application/x-www-form-urlencoded" {
        Some(BodyKind::Form)
    } else {
        None
    }
}

/// Middleware: refuses a request whose query or body holds text no field accepts.
pub(crate) async fn refuse_bad_text(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(refusal) = request.uri().query().and_then(check_query) {
        return refuse(&state, request, &refusal).await;
    }
    let Some(kind) = body_kind(request.headers()) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    // The same bound the handlers' own extractors apply; over it, they would answer
    // 413 anyway. A reply carries its attachments and has a larger one of its own.
    let limit = if parts.uri.path().ends_with("/replies") {
        state.reply_body_limit()
    } else {
        state.config().max_body_bytes
    };
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => return too_large(&state, Request::from_parts(parts, Body::empty())).await,
    };
    let refusal = match kind {
        // Text that is not JSON is left to the handler, which says so.
        BodyKind::Json => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|value| check_json(&value, "")),
        BodyKind::Form => check_form(&bytes),
    };
    let request = Request::from_parts(parts, Body::from(Bytes::clone(&bytes)));
    match refusal {
        Some(refusal) => refuse(&state, request, &refusal).await,
        None => next.run(request).await,
    }
}

async fn refuse(state: &AppState, request: Request, refusal: &Refusal) -> Response {
    tracing::info!(
        field = refusal.field(),
        "refused a request: {}",
        refusal.sentence()
    );
    if crate::error::wants_json(request.uri().path()) {
        return refusal.api_error().into_response();
    }
    let (mut parts, _body) = request.into_parts();
    crate::ui::error_page(
        state,
        &mut parts,
        StatusCode::UNPROCESSABLE_ENTITY,
        sentence_case(&refusal.sentence()),
    )
    .await
}

async fn too_large(state: &AppState, request: Request) -> Response {
    if crate::error::wants_json(request.uri().path()) {
        return crate::input::payload_too_large().into_response();
    }
    let (mut parts, _body) = request.into_parts();
    crate::ui::error_page(
        state,
        &mut parts,
        StatusCode::PAYLOAD_TOO_LARGE,
        "What you sent is larger than this server accepts.".to_string(),
    )
    .await
}

/// The UI's sentences start with a capital and end with a full stop.
fn sentence_case(text: &str) -> String {
    let mut chars = text.chars();
    let mut sentence: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    sentence.push('.');
    sentence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_in_a_search_is_refused_with_the_field_named() {
        assert_eq!(
            check_query("q=a%00b&status=open"),
            Some(Refusal::Control {
                field: "q".into(),
                code_point: 0
            })
        );
        assert_eq!(check_query("q=plain+words%C3%A9"), None);
    }

    #[test]
    fn a_search_over_the_cap_is_refused() {
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert_eq!(
            check_query(&format!("q={long}")),
            Some(Refusal::TooLong { field: "q".into() })
        );
        assert_eq!(check_query(&format!("q={}", &long[1..])), None);
    }

    #[test]
    fn json_strings_are_checked_at_any_depth_but_lines_are_allowed() {
        let value = serde_json::json!({"email": "a\u{0}@example.com"});
        let refusal = check_json(&value, "").expect("refused");
        assert_eq!(refusal.field(), "email");
        assert_eq!(refusal.api_error().field(), Some("email"));
        let nested = serde_json::json!({"smtp": {"names": ["ok", "b\u{1b}"]}});
        assert_eq!(
            check_json(&nested, "").map(|r| r.field().to_string()),
            Some("smtp.names[1]".into())
        );
        let reply = serde_json::json!({"body": "Hello,\r\n\tthanks.\n"});
        assert_eq!(check_json(&reply, ""), None);
    }

    #[test]
    fn form_fields_are_checked() {
        assert_eq!(
            check_form(b"email=a%00%40example.com&password=x").map(|r| r.field().to_string()),
            Some("email".into())
        );
        assert_eq!(check_form(b"text=two%0D%0Alines"), None);
    }
}
