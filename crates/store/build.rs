//! `sqlx::migrate!` embeds the migration files at compile time, but cargo does not know
//! that the crate depends on them: without this, a new or edited migration would not be
//! picked up until something else in the crate changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
