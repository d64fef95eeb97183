//! Prints what popdesk makes of raw message files: the parsed model (without
//! attachment bytes) and the classification.
//!
//! `cargo run -p mail --example parse_file -- FILE...`

use mail::{ClassifyContext, classify, parse};

fn main() {
    let ctx = ClassifyContext::default();
    for path in std::env::args().skip(1) {
        println!("== {path}");
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            Err(e) => {
                println!("unreadable: {e}");
                continue;
            }
        };
        match parse(&raw) {
            Ok(message) => {
                println!("{message:#?}");
                println!("{:#?}", classify(&message, &raw, &ctx));
            }
            Err(e) => println!("parse error: {e}"),
        }
    }
}
