//! The UI's static files, built into the binary: nothing to install or build, and a
//! page never loads anything from another host (the content policy says `'self'`).
//!
//! - `htmx.min.js`: htmx 2.0.11 from the npm package `htmx.org` (`dist/htmx.min.js`,
//!   0BSD, sha256 d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717).
//!   To update: `npm pack htmx.org@2`, copy `package/dist/htmx.min.js` here, change
//!   [`HTMX_VERSION`] and the hash above.
//! - `app.css`, `app.js`: written by hand.
//!
//! Pages link them with `?v=` (the htmx version, or a hash of our files), so they are
//! cached for a year and still change the moment a new popdesk serves new ones.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

/// The vendored htmx release (see the module doc).
pub(crate) const HTMX_VERSION: &str = "2.0.11";

const HTMX: &[u8] = include_bytes!("../../assets/htmx.min.js");
const APP_CSS: &[u8] = include_bytes!("../../assets/app.css");
const APP_JS: &[u8] = include_bytes!("../../assets/app.js");

/// A year: the longest cache lifetime browsers honour.
const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";

/// The first hex digits of sha256 over our own assets: changes whenever they do.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    hash.update(APP_CSS);
    hash.update(APP_JS);
    hash.finalize()
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect()
});

/// The `?v=` of app.css and app.js.
pub(crate) fn version() -> &'static str {
    VERSION.as_str()
}

fn asset(bytes: &'static [u8], content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_FOREVER),
            ),
        ],
        bytes,
    )
        .into_response()
}

pub(crate) async fn htmx() -> Response {
    asset(HTMX, "text/javascript; charset=utf-8")
}

pub(crate) async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

pub(crate) async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}
