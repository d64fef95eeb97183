pub mod mailbox;
pub mod tickets;
