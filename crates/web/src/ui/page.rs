//! What every page shares: the layout (title, navigation, flash, form token), the
//! response it goes out in, the error pages, and redirects.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::ui::assets;
use crate::ui::display::sentence;
use crate::ui::flash::{self, Flash};
use crate::ui::viewer::Viewer;

/// Which part of the site a page belongs to: its navigation link is marked current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Tickets,
    Mailboxes,
    Messages,
    Users,
    Tokens,
    /// The viewer's own preferences and password.
    Preferences,
    /// Sign-in, setup, error pages: no navigation link is current.
    None,
}

/// What the layout template (`base.html`) needs from every page.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The page's name; the `<title>` is "{title} · popdesk".
    pub title: String,
    pub section: Section,
    /// The signed-in viewer's name; `None` on public pages (no navigation).
    pub user: Option<String>,
    pub is_admin: bool,
    /// The hidden `csrf` field of every form on the page.
    pub csrf: String,
    pub flash: Option<Flash>,
}

impl Layout {
    /// The layout of a page for a signed-in viewer.
    pub(crate) fn signed_in(viewer: &Viewer, title: impl Into<String>, section: Section) -> Layout {
        Layout {
            title: title.into(),
            section,
            user: Some(viewer.name()),
            is_admin: viewer.is_admin(),
            csrf: viewer.form_token.clone(),
            flash: viewer.flash.clone(),
        }
    }

    /// The layout of a page anyone may see (sign-in, setup).
    pub(crate) fn public(title: impl Into<String>, flash: Option<Flash>) -> Layout {
        Layout {
            title: title.into(),
            section: Section::None,
            user: None,
            is_admin: false,
            csrf: String::new(),
            flash,
        }
    }

    /// Whether the navigation link `name` is this page's section (for
    /// `aria-current="page"`).
    pub(crate) fn current(&self, name: &str) -> bool {
        let mine = match self.section {
            Section::Tickets => "tickets",
            Section::Mailboxes => "mailboxes",
            Section::Messages => "messages",
            Section::Users => "users",
            Section::Tokens => "tokens",
            Section::Preferences => "preferences",
            Section::None => return false,
        };
        mine == name
    }

    /// The query string that busts caches of the stylesheet and script when they change.
    pub(crate) fn asset_version(&self) -> &'static str {
        assets::version()
    }

    /// The `?v=` of htmx: its release.
    pub(crate) fn htmx_version(&self) -> &'static str {
        assets::HTMX_VERSION
    }
}

/// A page template: something with a [`Layout`] that askama renders.
pub(crate) trait Page: IntoResponse {
    fn layout(&self) -> &Layout;
}

/// Implements [`Page`] for template structs with a `layout` field.
macro_rules! impl_page {
    ($($page:ty),+ $(,)?) => {
        $(impl $crate::ui::page::Page for $page {
            fn layout(&self) -> &$crate::ui::page::Layout {
                &self.layout
            }
        })+
    };
}
pub(crate) use impl_page;

/// A rendered page with its status. A flash the page showed is cleared, so a reload
/// does not show it again. The content policy is added by the UI router's layer.
pub(crate) fn show(state: &AppState, status: StatusCode, page: impl Page) -> Response {
    let shown_flash = page.layout().flash.is_some();
    let mut response = (status, page).into_response();
    if shown_flash {
        response.headers_mut().append(
            header::SET_COOKIE,
            Flash::removal(state.config().secure_cookies),
        );
    }
    response
}

/// The error page (403, 404, ...), in the same layout as every other page.
#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub layout: Layout,
    pub message: String,
}
impl_page!(ErrorPage);

/// An error page with this status and sentence; with the viewer's navigation when
/// someone is signed in.
pub(crate) fn error(
    state: &AppState,
    viewer: Option<&Viewer>,
    status: StatusCode,
    message: impl Into<String>,
) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::UNAUTHORIZED => "Not signed in",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        status if status.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    let layout = match viewer {
        Some(viewer) => Layout::signed_in(viewer, title, Section::None),
        None => Layout::public(title, None),
    };
    show(
        state,
        status,
        ErrorPage {
            layout,
            message: message.into(),
        },
    )
}

pub(crate) fn not_found(
    state: &AppState,
    viewer: Option<&Viewer>,
    message: impl Into<String>,
) -> Response {
    error(state, viewer, StatusCode::NOT_FOUND, message)
}

pub(crate) fn forbidden(
    state: &AppState,
    viewer: Option<&Viewer>,
    message: impl Into<String>,
) -> Response {
    error(state, viewer, StatusCode::FORBIDDEN, message)
}

/// An API error as a page: its status and its sentence (internal errors already say
/// nothing more than "see the log").
pub(crate) fn api_error(state: &AppState, viewer: Option<&Viewer>, api: &ApiError) -> Response {
    error(
        state,
        viewer,
        api.status(),
        sentence(&api.body().error.message),
    )
}

/// The sentence of an API error, for a form's `role="alert"`.
pub(crate) fn api_message(api: &ApiError) -> String {
    sentence(&api.body().error.message)
}

/// `303 See Other`: after a form, the browser GETs the next page (a reload does not
/// post the form again).
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
        }
        Err(_) => {
            // Only our own paths are redirected to; one that is not a header value is
            // a bug, and the home page is a safe landing.
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
        }
    }
    response
}

/// [`see_other`] with a flash for the next page.
pub(crate) fn see_other_with(state: &AppState, location: &str, flash: Flash) -> Response {
    let mut response = see_other(location);
    flash::set(
        response.headers_mut(),
        Some(&flash),
        state.config().secure_cookies,
    );
    response
}

/// Tells htmx to load another page (a whole page load, not a swap).
pub(crate) fn htmx_redirect(location: &str) -> Response {
    let mut response = StatusCode::OK.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert("hx-redirect", value);
    }
    response
}
