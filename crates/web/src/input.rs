//! Request input that fails as an [`ApiError`]: axum's own extractors answer plain text
//! (and a few of their rejections are 500s for what is really bad input), so every
//! handler reads its body, path and query through these wrappers instead.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize as _;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body. Request types deny unknown fields, so a typo is an error rather
/// than a silently ignored setting.
///
/// Read by hand rather than through `axum::Json` to tell the two kinds of bad body
/// apart reliably: text that is not JSON at all is `invalid_json` (400), JSON of the
/// wrong shape (a number where a status belongs, a missing or unknown field) is
/// `validation` (422). (Reading straight into the type, serde_json reports some shape
/// errors, such as an enum given a number, as syntax errors.)
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the request body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    payload_too_large()
                } else {
                    ApiError::bad_request(format!(
                        "the request body cannot be read: {}",
                        rejection.body_text()
                    ))
                }
            })?;
        let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(error) => return Err(invalid_json(&error)),
        };
        integral_floats_as_integers(&mut value);
        match serde_path_to_error::deserialize(value) {
            Ok(value) => Ok(ApiJson(value)),
            Err(error) => {
                let path = error.path().to_string();
                let at = if path == "." {
                    String::new()
                } else {
                    format!(" (at {path})")
                };
                Err(ApiError::validation(format!(
                    "the request body does not fit: {}{at}",
                    error.into_inner()
                )))
            }
        }
    }
}

/// `995.0` is the integer 995 to JSON Schema (and to JavaScript, which cannot tell them
/// apart), but serde refuses a float for a `u16`. Whole floats become integers before the
/// typed read, so the API accepts what its schema promises.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(number) if number.is_f64() => {
            if let Some(float) = number.as_f64()
                && float.fract() == 0.0
                && float.abs() < 9.0e15
            {
                // Below 2^53 every whole float is exact, so the cast loses nothing.
                *value = Value::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

fn invalid_json(error: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_json",
        format!("the request body is not valid JSON: {error}"),
    )
}

/// `application/json` or any `+json` type, parameters aside.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"))
}

pub(crate) fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than this server accepts",
    )
}

/// Path parameters (`/tickets/{number}`): a non-number is a 400, not a 404.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    if rejection.status().is_client_error() {
        ApiError::bad_request(format!("the path is not valid: {}", rejection.body_text()))
    } else {
        // A route and its handler disagree about the parameters: a bug of ours.
        ApiError::internal(&rejection.body_text())
    }
}

/// Query parameters; a value of the wrong type is a 400.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(format!(
        "the query string is not valid: {}",
        rejection.body_text()
    ))
}

/// Deserializes an empty query value (`?status=`, as an HTML form sends it) as absent.
pub(crate) fn empty_as_none<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value: Option<String> = serde::Deserialize::deserialize(deserializer)?;
    Ok(value.filter(|v| !v.trim().is_empty()))
}

/// Deserializes a query value through `FromStr`: empty is absent, and a value that does
/// not parse fails with the type's own sentence (e.g. the list of valid statuses).
pub(crate) fn parsed<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match empty_as_none(deserializer)? {
        None => Ok(None),
        Some(value) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|error| serde::de::Error::custom(format!("{value:?}: {error}"))),
    }
}

/// For request fields that distinguish "not given" (leave as is) from `null` (clear):
/// `Option<Option<T>>` with `#[serde(default, deserialize_with = "input::nullable")]`.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The client's IP address, when the server was started with connect info (the sign-in
/// limit is then also per network, not only per address).
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(crate::client_ip(parts)))
    }
}
