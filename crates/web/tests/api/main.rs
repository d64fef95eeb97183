//! The web service's API tests: the real router over a real store (SQLite in a temp
//! dir; a few on PostgreSQL), real mail through the real processor, a real Dovecot for
//! "test connection". One binary, so the workspace links it once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod logs;
mod postgres;

mod assignment;
mod auth;
mod hardening;
mod mailboxes;
mod messages;
mod oauth;
mod ops;
mod replies;
mod routes;
mod search;
mod teams;
mod tickets;
mod users;
