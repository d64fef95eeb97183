//! Users through the API: CRUD for admins, and always an admin left who can sign in.

use axum::http::StatusCode;
use serde_json::{Value, json};
use store::Role;

use crate::common::{ADMIN, Desk, PASSWORD};

#[tokio::test]
async fn admins_manage_users() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let created = desk
        .post("/api/v1/users")
        .cookie(&admin)
        .json(json!({"email": "Carol@Example.com", "name": " Carol ", "role": "agent", "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let body = created.json();
    assert_eq!(body["email"], "carol@example.com");
    assert_eq!(body["name"], "Carol");
    assert_eq!(body["role"], "agent");
    assert!(!created.text().contains("argon2") && !created.text().contains(PASSWORD));
    let id = body["id"].as_i64().expect("id");
    // Carol can sign in with the password the admin set.
    desk.sign_in("carol@example.com").await;

    let list = desk.get("/api/v1/users").cookie(&admin).send().await;
    assert_eq!(list.json().as_array().expect("users").len(), 2);
    assert!(!list.text().contains("argon2"));

    let url = format!("/api/v1/users/{id}");
    assert_eq!(
        desk.get(&url).cookie(&admin).send().await.json()["email"],
        "carol@example.com"
    );
    let changed = desk
        .patch(&url)
        .cookie(&admin)
        .json(json!({"role": "admin", "name": null}))
        .send()
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    assert_eq!(changed.json()["role"], "admin");
    assert_eq!(changed.json()["name"], Value::Null);

    // An admin resets Carol's password: her sessions end, the new one works.
    let carol = desk.sign_in("carol@example.com").await;
    let reset = desk
        .patch(&url)
        .cookie(&admin)
        .json(json!({"password": "reset by the admin"}))
        .send()
        .await;
    assert_eq!(reset.status, StatusCode::OK);
    desk.get("/api/v1/session")
        .cookie(&carol)
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let signed_in = desk
        .post("/api/v1/session")
        .json(json!({"email": "carol@example.com", "password": "reset by the admin"}))
        .send()
        .await;
    assert_eq!(signed_in.status, StatusCode::OK);

    assert_eq!(
        desk.delete(&url).cookie(&admin).send().await.status,
        StatusCode::NO_CONTENT
    );
    desk.get(&url)
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn user_input_is_validated() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    for body in [
        json!({"email": "no-at-sign", "role": "agent", "password": PASSWORD}),
        json!({"email": "a b@example.com", "role": "agent", "password": PASSWORD}),
        json!({"email": "x@example.com", "role": "agent", "password": "short"}),
        json!({"email": "x@example.com", "role": "owner", "password": PASSWORD}),
        json!({"email": "x@example.com", "role": "agent"}),
        json!({"email": "x@example.com", "role": "agent", "password": PASSWORD, "admin": true}),
        json!({"email": "x@example.com", "role": "agent", "password": PASSWORD, "name": "n".repeat(201)}),
    ] {
        desk.post("/api/v1/users")
            .cookie(&admin)
            .json(body)
            .send()
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    }
    desk.post("/api/v1/users")
        .cookie(&admin)
        .json(json!({"email": "ADMIN@example.com", "role": "agent", "password": PASSWORD}))
        .send()
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    desk.patch("/api/v1/users/999")
        .cookie(&admin)
        .json(json!({"role": "agent"}))
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    desk.delete("/api/v1/users/999")
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_last_admin_stays() {
    let desk = Desk::new().await;
    let admin = desk.admin_session().await;
    let id = desk
        .store
        .user_by_email(ADMIN)
        .await
        .expect("r")
        .expect("admin")
        .id;
    let url = format!("/api/v1/users/{id}");
    for change in [json!({"role": "agent"}), json!({"disabled": true})] {
        desk.patch(&url)
            .cookie(&admin)
            .json(change)
            .send()
            .await
            .assert_error(StatusCode::CONFLICT, "conflict");
    }
    desk.delete(&url)
        .cookie(&admin)
        .send()
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    // A disabled admin does not count as one who can sign in.
    let other = desk.add_user("other-admin@example.com", Role::Admin).await;
    desk.store
        .update_user(other.id, None, Role::Admin, true, crate::common::NOW)
        .await
        .expect("disable");
    desk.patch(&url)
        .cookie(&admin)
        .json(json!({"role": "agent"}))
        .send()
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    // With a second active admin, the first may step down.
    desk.patch(&format!("/api/v1/users/{}", other.id))
        .cookie(&admin)
        .json(json!({"disabled": false}))
        .send()
        .await;
    let demoted = desk
        .patch(&url)
        .cookie(&admin)
        .json(json!({"role": "agent"}))
        .send()
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text());
}
