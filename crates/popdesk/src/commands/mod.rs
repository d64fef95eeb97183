pub mod mailbox;
pub mod tickets;
pub mod users;
