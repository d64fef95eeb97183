pub mod blobs;
pub mod mailbox;
pub mod outbox;
pub mod tickets;
pub mod users;
