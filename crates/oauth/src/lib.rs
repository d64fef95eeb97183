//! OAuth2 connections for mailboxes (Microsoft 365, Google, any provider by its
//! endpoints): a mailbox holds a *connection*, not a token.
