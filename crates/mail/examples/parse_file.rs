//! Prints what popdesk makes of raw message files: the parsed model (without
//! attachment bytes) and the classification.
//!
//! `cargo run -p mail --example parse_file -- [--kind] FILE...`
//!
//! With `--kind`, one line per file instead: the file, the kind and the reason.

use mail::{ClassifyContext, classify, parse};

fn main() {
    let ctx = ClassifyContext::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind_only = args.iter().any(|a| a == "--kind");
    for path in args.iter().filter(|a| *a != "--kind") {
        if kind_only {
            let raw = std::fs::read(path).unwrap_or_default();
            match parse(&raw) {
                Ok(m) => {
                    let c = classify(&m, &raw, &ctx);
                    println!("{path}\t{:?}\t{}", c.kind, c.reason);
                }
                Err(e) => println!("{path}\terror\t{e}"),
            }
            continue;
        }
        println!("== {path}");
        let raw = match std::fs::read(path) {
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
