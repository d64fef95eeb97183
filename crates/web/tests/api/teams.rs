//! Team mailboxes: an agent sees and works only the tickets and mail of the mailboxes an
//! admin granted them. Everything else answers exactly as a missing ticket or message
//! does (404, the same body), so walking numbers tells them nothing; admins see every
//! mailbox. Granting through the API and the Users page; the Users page's edits.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use store::Role;

use crate::common::{AGENT, Desk, PASSWORD, mail, mail_with_attachments};
use crate::postgres::on_both_backends;
use crate::routes::{admin_only, concrete, documented, is_public, session_only};

on_both_backends!(
    every_ticket_and_message_route_is_missing_outside_the_agents_mailboxes,
    lists_show_only_the_agents_mailboxes,
    agents_cannot_read_ignored_messages_by_walking_ids,
    an_agent_token_sees_what_its_maker_sees,
    admins_grant_mailboxes_through_the_api,
    the_users_page_edits_names_roles_passwords_and_mailboxes,
    a_merge_into_a_ticket_of_another_mailbox_is_refused,
);

/// An id no resource has: what a missing one answers is compared with what an
/// invisible one answers.
const MISSING: &str = "987654321";

/// Two mailboxes with a ticket each; the support ticket has mail with attachments, an
/// inline image and HTML, and a reply with an attachment in the outbox.
struct Teams {
    support: i64,
    sales: i64,
    /// The support ticket's number, its stored message, its reply.
    number: i64,
    message: i64,
    outbox: i64,
    /// The sales ticket's number.
    sales_number: i64,
    agent_id: i64,
    /// The agent's session (no mailboxes granted yet).
    agent: String,
    admin: String,
}

async fn teams(desk: &Desk) -> Teams {
    let support = desk.sending_mailbox("support", "support@example.com").await;
    let sales = desk.sending_mailbox("sales", "sales@example.com").await;
    let message = desk
        .deliver(support, &mail_with_attachments("fire@example.com"))
        .await;
    desk.deliver(
        sales,
        &mail(
            "deal@example.com",
            "bob@example.net",
            "Volume discount",
            "How much for 500?",
        ),
    )
    .await;
    desk.process().await;
    let tickets = desk.store.tickets(&Default::default()).await.expect("t");
    let number_of = |mailbox: i64| {
        tickets
            .iter()
            .find(|t| t.mailbox_id == mailbox)
            .expect("a ticket")
            .number
    };
    let admin = desk.admin_session().await;
    let number = number_of(support);
    let reply = desk
        .post(&format!("/api/v1/tickets/{number}/replies"))
        .cookie(&admin)
        .json(json!({"body": "Here it is.", "attachments": [{"name": "a.txt", "data": "aGk="}]}))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    // A new agent: granted no mailbox.
    let agent_id = desk.add_user(AGENT, Role::Agent).await.id;
    let agent = desk.sign_in(AGENT).await;
    assert!(
        desk.store
            .user_mailbox_ids(agent_id)
            .await
            .expect("r")
            .is_empty()
    );
    Teams {
        support,
        sales,
        number,
        message,
        outbox: reply.json()["id"].as_i64().expect("id"),
        sales_number: number_of(sales),
        agent_id,
        agent,
        admin,
    }
}

/// What a route of the API does with ticket or message data.
#[derive(Debug, PartialEq)]
enum Reach {
    /// Names one ticket, stored message or outgoing message: missing outside the
    /// caller's mailboxes.
    One,
    /// Lists them: only the caller's mailboxes (see the list test).
    List,
    /// Holds no ticket or message data.
    None,
}

/// Every agent-callable operation of the document, sorted by what it reaches. A new
/// route fails here until someone decides which it is.
fn reach(path: &str, method: &Method) -> Reach {
    let data = path.starts_with("/api/v1/tickets")
        || path.starts_with("/api/v1/messages")
        || path.starts_with("/api/v1/outbox")
        || path.starts_with("/messages/");
    match (data, path.contains('{')) {
        (true, true) => Reach::One,
        (true, false) => Reach::List,
        (false, _) => match (method.as_str(), path) {
            ("GET", "/api/v1/session" | "/metrics") => Reach::None,
            _ => panic!(
                "{method} {path}: decide whether it shows ticket or message data, and add it \
                 to the team mailboxes test"
            ),
        },
    }
}

/// The body a call sends, so it reaches the handler (a body that does not parse is
/// refused before anything is looked up, for every ticket alike).
fn body_for(path: &str, method: &Method, teams: &Teams) -> Option<Value> {
    match (method.as_str(), path.rsplit('/').next()) {
        // Into itself: refused (409) once the ticket is visible, and nothing changes.
        ("POST", Some("merge")) => Some(json!({"into": teams.number})),
        ("PATCH", Some("{number}")) => Some(json!({"status": "open"})),
        ("POST", Some("notes")) => Some(json!({"body": "A note."})),
        ("POST", Some("replies")) => Some(json!({"body": "An answer."})),
        _ => None,
    }
}

/// The path with ids of the team's resources, or all missing.
fn fill(path: &str, teams: &Teams, missing: bool) -> String {
    let id = |value: i64| {
        if missing {
            MISSING.to_string()
        } else {
            value.to_string()
        }
    };
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    ids.insert("number", id(teams.number));
    ids.insert("index", "0".to_string());
    ids.insert("content_id", "logo@example.com".to_string());
    let id_of = if path.starts_with("/api/v1/outbox/") {
        teams.outbox
    } else {
        teams.message
    };
    ids.insert("id", id(id_of));
    concrete(path, &ids)
}

/// The id a path names, as its 404 sentence says it.
fn named_id(path: &str, teams: &Teams) -> String {
    if path.contains("{number}") {
        teams.number
    } else if path.starts_with("/api/v1/outbox/") {
        teams.outbox
    } else {
        teams.message
    }
    .to_string()
}

/// A UI page or form of one ticket or message.
struct UiRoute {
    method: Method,
    path: String,
    fields: Vec<(&'static str, &'static str)>,
}

/// The UI's pages and forms of one ticket or message (the downloads they link to are
/// the API's routes above).
fn ui_routes(teams: &Teams) -> Vec<UiRoute> {
    let (number, message, outbox) = (teams.number, teams.message, teams.outbox);
    let route = |method: Method, path: String, fields: Vec<(&'static str, &'static str)>| UiRoute {
        method,
        path,
        fields,
    };
    vec![
        route(Method::GET, format!("/tickets/{number}"), vec![]),
        route(Method::GET, format!("/messages/{message}/html"), vec![]),
        route(
            Method::POST,
            format!("/tickets/{number}/status"),
            vec![("status", "open")],
        ),
        route(
            Method::POST,
            format!("/tickets/{number}/notes"),
            vec![("body", "A note.")],
        ),
        route(
            Method::POST,
            format!("/tickets/{number}/replies"),
            vec![("body", "An answer."), ("then", "pending")],
        ),
        route(
            Method::POST,
            format!("/tickets/{number}/replies/{outbox}/retry"),
            vec![],
        ),
    ]
}

/// A UI form's body: the reply box is multipart (it carries files), the others are
/// URL-encoded; the form token first, as the pages put it.
fn encoded(path: &str, fields: &[(&str, &str)], token: &str) -> (String, String) {
    if !path.ends_with("/replies") {
        return (FORM.to_string(), form(fields, token));
    }
    const BOUNDARY: &str = "teams-test-boundary";
    let mut body = String::new();
    for (name, value) in std::iter::once(&("csrf", token)).chain(fields) {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// The form token of a signed-in page.
async fn form_token(desk: &Desk, session: &str) -> String {
    let page = desk.get("/tickets").cookie(session).send().await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let text = page.text();
    let at = text.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    text[at..].split('"').next().expect("value").to_string()
}

fn form(fields: &[(&str, &str)], token: &str) -> String {
    let mut all: Vec<(&str, &str)> = vec![("csrf", token)];
    all.extend_from_slice(fields);
    serde_urlencoded::to_string(all).expect("form")
}

const FORM: &str = "application/x-www-form-urlencoded";

async fn every_ticket_and_message_route_is_missing_outside_the_agents_mailboxes(desk: Desk) {
    let teams = teams(&desk).await;
    let operations = documented(&desk).await;
    let mut one = Vec::new();
    for ((path, method), operation) in &operations {
        if is_public(operation) || admin_only(path, method) || session_only(path, method) {
            continue;
        }
        if reach(path, method) == Reach::One {
            one.push((path.clone(), method.clone()));
        }
    }
    assert!(
        one.len() >= 10,
        "the document's ticket and message routes: {one:?}"
    );
    let send = |path: &str, method: &Method, missing: bool| {
        let mut call = desk
            .call(method.clone(), &fill(path, &teams, missing))
            .cookie(&teams.agent);
        if let Some(body) = body_for(path, method, &teams) {
            call = call.json(body);
        }
        call.send()
    };

    // No mailbox granted: every one is as missing as a ticket that never existed.
    for (path, method) in &one {
        let invisible = send(path, method, false).await;
        let missing = send(path, method, true).await;
        missing.assert_error(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            invisible.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            invisible.text()
        );
        assert_eq!(
            invisible.text(),
            missing.text().replace(MISSING, &named_id(path, &teams)),
            "{method} {path} tells an invisible resource from a missing one"
        );
    }
    let token = form_token(&desk, &teams.agent).await;
    let missing_ui = |path: &str| {
        path.replace(&format!("/{}", teams.number), &format!("/{MISSING}"))
            .replace(&format!("/{}/", teams.message), &format!("/{MISSING}/"))
    };
    for UiRoute {
        method,
        path,
        fields,
    } in ui_routes(&teams)
    {
        let call = |path: &str| {
            let call = desk.call(method.clone(), path).cookie(&teams.agent);
            if method == Method::POST {
                let (content_type, body) = encoded(path, &fields, &token);
                call.body(&content_type, body)
            } else {
                call
            }
        };
        let invisible = call(&path).send().await;
        assert_eq!(
            invisible.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            invisible.text()
        );
        let missing = call(&missing_ui(&path)).send().await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text());
        let id = if path.starts_with("/messages/") {
            teams.message
        } else {
            teams.number
        };
        assert_eq!(
            invisible.text(),
            missing.text().replace(MISSING, &id.to_string()),
            "{method} {path} tells an invisible page from a missing one"
        );
    }
    // Another mailbox granted changes nothing.
    desk.store
        .set_user_mailboxes(teams.agent_id, &[teams.sales])
        .await
        .expect("grant");
    for (path, method) in &one {
        send(path, method, false)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }

    // Support granted: every one answers.
    desk.store
        .set_user_mailboxes(teams.agent_id, &[teams.sales, teams.support])
        .await
        .expect("grant");
    for (path, method) in &one {
        let reply = send(path, method, false).await;
        if *method == Method::GET {
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{method} {path}: {}",
                reply.text()
            );
        } else {
            // Changes answer what they answer for anyone: done, or (retry of a reply
            // still queued) a conflict; never missing or forbidden.
            assert!(
                reply.status.is_success() || reply.status == StatusCode::CONFLICT,
                "{method} {path}: {} {}",
                reply.status,
                reply.text()
            );
        }
    }
    for UiRoute {
        method,
        path,
        fields,
    } in ui_routes(&teams)
    {
        let mut call = desk.call(method.clone(), &path).cookie(&teams.agent);
        if method == Method::POST {
            let (content_type, body) = encoded(&path, &fields, &token);
            call = call.body(&content_type, body);
        }
        let reply = call.send().await;
        let expected = if method == Method::GET {
            StatusCode::OK
        } else {
            StatusCode::SEE_OTHER
        };
        assert_eq!(reply.status, expected, "{method} {path}: {}", reply.text());
    }
}

async fn lists_show_only_the_agents_mailboxes(desk: Desk) {
    let teams = teams(&desk).await;
    let numbers = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|t| t["number"].as_i64().expect("number"))
            .collect()
    };
    let tickets = |session: String| {
        let desk = &desk;
        async move {
            let reply = desk.get("/api/v1/tickets").cookie(&session).send().await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
            reply.json()
        }
    };
    let outbox = |session: String| {
        let desk = &desk;
        async move {
            let reply = desk.get("/api/v1/outbox").cookie(&session).send().await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
            reply.json().as_array().expect("list").len()
        }
    };

    // A new agent sees nothing until given a mailbox.
    let page = tickets(teams.agent.clone()).await;
    assert_eq!(numbers(&page), Vec::<i64>::new());
    assert_eq!(page["total"], 0);
    assert_eq!(page["status_counts"]["new"], 0);
    assert_eq!(outbox(teams.agent.clone()).await, 0);
    let list = desk.get("/tickets").cookie(&teams.agent).send().await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.text().contains("Printer on fire"));
    assert!(!list.text().contains(">support</option>"));
    assert!(!list.text().contains(">sales</option>"));

    desk.store
        .set_user_mailboxes(teams.agent_id, &[teams.sales])
        .await
        .expect("grant");
    let page = tickets(teams.agent.clone()).await;
    assert_eq!(numbers(&page), [teams.sales_number]);
    assert_eq!(page["total"], 1);
    assert_eq!(page["status_counts"]["new"], 1);
    // Asking for another mailbox's tickets finds none.
    let other = desk
        .get(&format!("/api/v1/tickets?mailbox={}", teams.support))
        .cookie(&teams.agent)
        .send()
        .await;
    assert_eq!(numbers(&other.json()), Vec::<i64>::new());
    // The support ticket's reply is not in the sales agent's outbox.
    assert_eq!(outbox(teams.agent.clone()).await, 0);
    let list = desk.get("/tickets").cookie(&teams.agent).send().await;
    assert!(list.text().contains("Volume discount"));
    assert!(!list.text().contains("Printer on fire"));
    assert!(list.text().contains(">sales</option>"));
    assert!(!list.text().contains(">support</option>"));

    desk.store
        .set_user_mailboxes(teams.agent_id, &[teams.support])
        .await
        .expect("grant");
    assert_eq!(numbers(&tickets(teams.agent.clone()).await), [teams.number]);
    assert_eq!(outbox(teams.agent.clone()).await, 1);

    // Admins see every mailbox.
    let mut all = numbers(&tickets(teams.admin.clone()).await);
    all.sort_unstable();
    let mut both = vec![teams.number, teams.sales_number];
    both.sort_unstable();
    assert_eq!(all, both);
    assert_eq!(outbox(teams.admin.clone()).await, 1);
    let list = desk.get("/tickets").cookie(&teams.admin).send().await;
    assert!(list.text().contains(">sales</option>") && list.text().contains(">support</option>"));
}

async fn agents_cannot_read_ignored_messages_by_walking_ids(desk: Desk) {
    let teams = teams(&desk).await;
    // Mail from popdesk's own address is ignored (loop guard): on no ticket.
    let ignored = desk
        .deliver(
            teams.support,
            &mail(
                "loop@example.com",
                "support@example.com",
                "Re: your ticket",
                "...",
            ),
        )
        .await;
    desk.process().await;
    desk.store
        .set_user_mailboxes(teams.agent_id, &[teams.support])
        .await
        .expect("grant");
    for path in [
        format!("/api/v1/messages/{ignored}"),
        format!("/api/v1/messages/{ignored}/raw"),
    ] {
        let invisible = desk.get(&path).cookie(&teams.agent).send().await;
        invisible.assert_error(StatusCode::NOT_FOUND, "not_found");
        let missing = desk
            .get(&path.replace(&ignored.to_string(), MISSING))
            .cookie(&teams.agent)
            .send()
            .await;
        assert_eq!(
            invisible.text(),
            missing.text().replace(MISSING, &ignored.to_string())
        );
        // An admin sorts them out.
        let admin = desk.get(&path).cookie(&teams.admin).send().await;
        assert_eq!(admin.status, StatusCode::OK, "{path}: {}", admin.text());
    }
    // The mail of the agent's ticket they read.
    let ticket_mail = desk
        .get(&format!("/api/v1/messages/{}/raw", teams.message))
        .cookie(&teams.agent)
        .send()
        .await;
    assert_eq!(ticket_mail.status, StatusCode::OK);
}

async fn an_agent_token_sees_what_its_maker_sees(desk: Desk) {
    let teams = teams(&desk).await;
    let lead = "lead@example.com";
    desk.add_user(lead, Role::Admin).await;
    let lead_session = desk.sign_in(lead).await;
    let made = desk
        .post("/api/v1/tokens")
        .cookie(&lead_session)
        .json(json!({"name": "lead's script", "role": "agent"}))
        .send()
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
    let token = made.json()["token"].as_str().expect("token").to_string();
    let sees = |number: i64| {
        let desk = &desk;
        let token = token.clone();
        async move {
            desk.get(&format!("/api/v1/tickets/{number}"))
                .bearer(&token)
                .send()
                .await
                .status
        }
    };
    // Made by an admin: an agent token that sees every mailbox.
    assert_eq!(sees(teams.number).await, StatusCode::OK);
    assert_eq!(sees(teams.sales_number).await, StatusCode::OK);

    // Its maker becomes an agent who works sales: the token sees what they see, at once.
    let lead_id = desk
        .store
        .user_by_email(lead)
        .await
        .expect("r")
        .expect("lead")
        .id;
    let demoted = desk
        .patch(&format!("/api/v1/users/{lead_id}"))
        .cookie(&teams.admin)
        .json(json!({"role": "agent", "mailboxes": [teams.sales]}))
        .send()
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text());
    assert_eq!(sees(teams.sales_number).await, StatusCode::OK);
    assert_eq!(sees(teams.number).await, StatusCode::NOT_FOUND);
    let listed = desk.get("/api/v1/tickets").bearer(&token).send().await;
    assert_eq!(listed.json()["total"], 1);

    // An agent token an admin made (or the command line, with no maker) sees everything.
    let (_, admins_agent_token) = desk.token("agent").await;
    for number in [teams.number, teams.sales_number] {
        let reply = desk
            .get(&format!("/api/v1/tickets/{number}"))
            .bearer(&admins_agent_token)
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
}

async fn admins_grant_mailboxes_through_the_api(desk: Desk) {
    let teams = teams(&desk).await;
    let user = format!("/api/v1/users/{}", teams.agent_id);
    let shown = desk.get(&user).cookie(&teams.admin).send().await;
    assert_eq!(shown.json()["mailboxes"], json!([]));

    let granted = desk
        .patch(&user)
        .cookie(&teams.admin)
        .json(json!({"mailboxes": [teams.support, teams.sales, teams.support]}))
        .send()
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text());
    let mut both = vec![teams.support, teams.sales];
    both.sort_unstable();
    assert_eq!(granted.json()["mailboxes"], json!(both));
    let listed = desk.get("/api/v1/users").cookie(&teams.admin).send().await;
    let me = listed
        .json()
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["id"] == teams.agent_id)
        .cloned()
        .expect("the agent");
    assert_eq!(me["mailboxes"], json!(both));

    // A mailbox that does not exist refuses the whole change.
    let refused = desk
        .patch(&user)
        .cookie(&teams.admin)
        .json(json!({"name": "Renamed", "mailboxes": [teams.support, 4242]}))
        .send()
        .await;
    refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(refused.json()["error"]["field"], "mailboxes");
    let after = desk.get(&user).cookie(&teams.admin).send().await.json();
    assert_eq!(after["mailboxes"], json!(both));
    assert_eq!(after["name"], Value::Null);

    // Only admins grant.
    desk.patch(&user)
        .cookie(&teams.agent)
        .json(json!({"mailboxes": []}))
        .send()
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // `[]` takes them all away.
    let none = desk
        .patch(&user)
        .cookie(&teams.admin)
        .json(json!({"mailboxes": []}))
        .send()
        .await;
    assert_eq!(none.json()["mailboxes"], json!([]));

    // A new agent is made with none: they see nothing until granted.
    let made = desk
        .post("/api/v1/users")
        .cookie(&teams.admin)
        .json(json!({"email": "new@example.com", "role": "agent", "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
    assert_eq!(made.json()["mailboxes"], json!([]));
    let newcomer = desk.sign_in("new@example.com").await;
    let page = desk.get("/api/v1/tickets").cookie(&newcomer).send().await;
    assert_eq!(page.json()["total"], 0);
    let me = desk.get("/api/v1/session").cookie(&newcomer).send().await;
    assert_eq!(me.json()["user"]["mailboxes"], json!([]));
}

async fn the_users_page_edits_names_roles_passwords_and_mailboxes(desk: Desk) {
    let teams = teams(&desk).await;
    let token = form_token(&desk, &teams.admin).await;
    let id = teams.agent_id;
    let post = |path: String, fields: Vec<(&'static str, String)>, with_token: bool| {
        let desk = &desk;
        let admin = teams.admin.clone();
        let token = token.clone();
        async move {
            let mut all: Vec<(&str, String)> = Vec::new();
            if with_token {
                all.push(("csrf", token));
            }
            all.extend(fields);
            desk.post(&path)
                .cookie(&admin)
                .body(FORM, serde_urlencoded::to_string(all).expect("form"))
                .send()
                .await
        }
    };

    // The list links to each user's page and says a new agent sees nothing yet.
    let list = desk.get("/users").cookie(&teams.admin).send().await;
    assert!(list.text().contains(&format!("action=\"/users/{id}\"")));
    assert!(
        list.text()
            .contains("sees no tickets until given a mailbox")
    );
    let page = desk
        .get(&format!("/users/{id}"))
        .cookie(&teams.admin)
        .send()
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    for part in [
        format!("action=\"/users/{id}/profile\""),
        format!("action=\"/users/{id}/mailboxes\""),
        format!("action=\"/users/{id}/password\""),
        format!(
            "name=\"mailbox\" type=\"checkbox\" value=\"{}\"",
            teams.support
        ),
        ">Save name and role</button>".to_string(),
        ">Save mailboxes</button>".to_string(),
        ">Set new password</button>".to_string(),
    ] {
        assert!(page.text().contains(&part), "{part}");
    }

    // Name and role.
    let saved = post(
        format!("/users/{id}/profile"),
        vec![("name", "Alex Agent".into()), ("role", "admin".into())],
        true,
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(
        saved.header("location"),
        Some(format!("/users/{id}").as_str())
    );
    let user = desk.store.user_by_id(id).await.expect("r").expect("u");
    assert_eq!(user.name.as_deref(), Some("Alex Agent"));
    assert_eq!(user.role, Role::Admin);
    post(
        format!("/users/{id}/profile"),
        vec![("name", "Alex Agent".into()), ("role", "agent".into())],
        true,
    )
    .await;
    // Without the form token nothing changes.
    let forged = post(
        format!("/users/{id}/profile"),
        vec![("name", "Mallory".into()), ("role", "admin".into())],
        false,
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let user = desk.store.user_by_id(id).await.expect("r").expect("u");
    assert_eq!(
        (user.name.as_deref(), user.role),
        (Some("Alex Agent"), Role::Agent)
    );

    // Mailboxes: the ticked ones, the others taken away.
    let saved = post(
        format!("/users/{id}/mailboxes"),
        vec![
            ("mailbox", teams.sales.to_string()),
            ("mailbox", teams.support.to_string()),
        ],
        true,
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let mut both = vec![teams.support, teams.sales];
    both.sort_unstable();
    assert_eq!(desk.store.user_mailbox_ids(id).await.expect("r"), both);
    post(
        format!("/users/{id}/mailboxes"),
        vec![("mailbox", teams.sales.to_string())],
        true,
    )
    .await;
    assert_eq!(
        desk.store.user_mailbox_ids(id).await.expect("r"),
        [teams.sales]
    );
    let page = desk
        .get(&format!("/users/{id}"))
        .cookie(&teams.admin)
        .send()
        .await;
    assert!(
        page.text()
            .contains(&format!("value=\"{}\" checked>", teams.sales))
    );
    let list = desk.get("/users").cookie(&teams.admin).send().await;
    assert!(
        !list
            .text()
            .contains("sees no tickets until given a mailbox")
    );

    // A password reset: too short is refused and changes nothing; then the new one
    // signs in and the old one does not.
    let short = post(
        format!("/users/{id}/password"),
        vec![("password", "short".into())],
        true,
    )
    .await;
    assert_eq!(short.status, StatusCode::SEE_OTHER);
    desk.sign_in(AGENT).await;
    let new_password = "a brand new password 42";
    let reset = post(
        format!("/users/{id}/password"),
        vec![("password", new_password.into())],
        true,
    )
    .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER);
    desk.post("/api/v1/session")
        .json(json!({"email": AGENT, "password": PASSWORD}))
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let signed_in = desk
        .post("/api/v1/session")
        .json(json!({"email": AGENT, "password": new_password}))
        .send()
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text());
    // The agent's old session ended with the reset.
    let old = desk
        .get("/api/v1/tickets")
        .cookie(&teams.agent)
        .send()
        .await;
    old.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    // Adding an address that has an account says so and links to that user's page.
    let taken = post(
        "/users".to_string(),
        vec![
            ("email", AGENT.into()),
            ("name", "Again".into()),
            ("role", "agent".into()),
            ("password", PASSWORD.into()),
        ],
        true,
    )
    .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(
        taken
            .text()
            .contains(&format!("<a href=\"/users/{id}\">Edit that user</a>")),
        "{}",
        taken.text()
    );

    // An agent cannot open it.
    let agent = signed_in.session_cookie().expect("a session");
    let refused = desk
        .get(&format!("/users/{id}"))
        .cookie(&agent)
        .send()
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

/// Merging is refused across mailboxes the agent cannot see: the other ticket is as
/// missing as one that never existed, and neither ticket changes.
async fn a_merge_into_a_ticket_of_another_mailbox_is_refused(desk: Desk) {
    let teams = teams(&desk).await;
    desk.store
        .set_user_mailboxes(teams.agent_id, &[teams.support])
        .await
        .expect("grant");
    let reply = desk
        .call(
            Method::POST,
            &format!("/api/v1/tickets/{}/merge", teams.number),
        )
        .cookie(&teams.agent)
        .json(json!({"into": teams.sales_number}))
        .send()
        .await;
    reply.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert!(
        reply.text().contains(&format!("#{}", teams.sales_number)),
        "{}",
        reply.text()
    );
    for number in [teams.number, teams.sales_number] {
        let ticket = desk
            .store
            .ticket_by_number(number)
            .await
            .expect("read")
            .expect("kept");
        assert_eq!(ticket.merged_into, None, "#{number} is not merged");
    }
}
