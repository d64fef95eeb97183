//! The metrics each fetch run updates, through the `metrics` facade. A binary that
//! installs a recorder (the web crate's Prometheus exporter) gets them; without one the
//! calls cost next to nothing.
//!
//! Every series has the label `mailbox` (the mailbox's name); the run counter also has
//! `outcome`.
