//! Who may call the API: passwords, sign-in sessions, API tokens, the sign-in limit, the
//! cross-site check for cookie requests, and [`Actor`], the caller of a request.

pub mod actor;
pub(crate) mod csrf;
pub mod password;
pub mod rate_limit;
pub(crate) mod scope;
pub(crate) mod secret;
pub mod session;
pub mod setup_code;
pub mod token;

pub use actor::{Actor, Admin, Credential, SignedIn};
