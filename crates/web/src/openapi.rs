//! The OpenAPI 3.1 document of the API, generated from the handlers' annotations and
//! the request and response types, served at `/api/v1/openapi.json`. A test calls
//! every documented route and checks that every route is documented.

use std::sync::OnceLock;

use axum::Json;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, SecurityRequirement};
use utoipa::{Modify, OpenApi};

use crate::api::{
    mailboxes, merge, messages, oauth, preferences, replies, session, setup, tickets, tokens, users,
};
use crate::error::{ErrorBody, ErrorDetail};
use crate::ops;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "popdesk API",
        description = "The JSON API of popdesk, a self-hosted helpdesk that fetches POP3 mailboxes into tickets. \
Authenticate with the session cookie (POST /api/v1/session) or an API token (Authorization: Bearer pd_...). \
Times are milliseconds since the Unix epoch. Errors are {\"error\": {\"code\", \"message\"}}.",
        version = "1"
    ),
    paths(
        tickets::list, tickets::show, tickets::update, tickets::add_note, merge::merge,
        replies::create, replies::list, replies::retry, replies::attachment,
        messages::list, messages::show, messages::raw, messages::reprocess,
        messages::attachment, messages::cid,
        mailboxes::list, mailboxes::create, mailboxes::show, mailboxes::update,
        mailboxes::remove, mailboxes::test, mailboxes::test_sending, mailboxes::fetch_now,
        mailboxes::runs,
        mailboxes::failing, mailboxes::try_again,
        oauth::connect, oauth::device,
        users::list, users::create, users::show, users::update, users::remove,
        tokens::list, tokens::create, tokens::revoke,
        session::sign_in, session::show, session::sign_out, session::change_password,
        preferences::show, preferences::update,
        setup::status, setup::create_admin,
        serve,
        ops::healthz, ops::metrics,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Security, &Refusals),
    security(("session" = []), ("token" = [])),
    tags(
        (name = "tickets", description = "Tickets, their mail, history and replies (agents and admins)"),
        (name = "outbox", description = "What popdesk sends: replies and acknowledgements, their state, Send again (agents and admins)"),
        (name = "messages", description = "Stored mail: raw bytes, attachments, processing (listing and reprocessing: admins)"),
        (name = "mailboxes", description = "POP3 mailboxes, their sending settings and OAuth2 connections (admins)"),
        (name = "users", description = "People who sign in (admins)"),
        (name = "tokens", description = "API tokens (admins)"),
        (name = "session", description = "Signing in and out, one's own password and preferences"),
        (name = "setup", description = "Creating the first admin"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// The two ways to authenticate.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::SESSION_COOKIE,
                "The session cookie set by POST /api/v1/session",
            ))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token: pd_ followed by 43 characters"))
                    .build(),
            ),
        );
    }
}

/// Every operation can refuse what it is sent: a path or query that does not parse
/// (400, `bad_request`) and a value its rules refuse (422, `validation`: a control
/// character, a text too long, a name taken...). Documented once here rather than on
/// each handler, so no operation can forget them.
struct Refusals;

impl Modify for Refusals {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
        let refusal = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                // The API reads an empty query value (`?status=`) as the parameter left
                // out, as HTML forms send it; the document says so.
                for parameter in operation.parameters.iter_mut().flatten() {
                    if parameter.parameter_in != utoipa::openapi::path::ParameterIn::Query {
                        continue;
                    }
                    if let Some(schema) = parameter.schema.take() {
                        let empty = utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::String)
                            .enum_values(Some([""]))
                            .build();
                        parameter.schema = Some(RefOr::T(utoipa::openapi::Schema::AnyOf(
                            utoipa::openapi::schema::AnyOfBuilder::new()
                                .item(schema)
                                .item(empty)
                                .build(),
                        )));
                    }
                }
                let responses = &mut operation.responses.responses;
                responses
                    .entry("400".to_string())
                    .or_insert_with(|| refusal("The path or a query parameter does not parse"));
                responses.entry("422".to_string()).or_insert_with(|| {
                    refusal("A value breaks a rule (the error names the field)")
                });
            }
        }
    }
}

/// The document (built once).
pub fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// Routes that need no credentials, by their OpenAPI `security: [{}]`.
pub fn is_public(security: Option<&Vec<SecurityRequirement>>) -> bool {
    security.is_some_and(|s| s.iter().any(|r| r == &SecurityRequirement::default()))
}

/// This document.
#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "operations",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub(crate) async fn serve() -> impl IntoResponse {
    Json(document())
}
