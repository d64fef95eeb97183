pub mod blobs;
pub mod mailbox;
pub mod outbox;
pub mod secret;
pub mod tickets;
pub mod users;
