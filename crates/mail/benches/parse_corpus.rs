//! How fast popdesk turns raw mail into its model: the whole shared corpus
//! (about 830 real messages, 18 MB, from one-line notes to 5 MB attachments),
//! parsed, classified and sanitized. Issue 4's target is 1,000 messages/s for the
//! whole processor on this 2-core machine; parsing is one part of that budget.
//!
//! `cargo bench -p mail --bench parse_corpus`
//!
//! Prints messages/s and MB/s for a few plain passes first, then divan's
//! per-benchmark statistics (with throughput counters).

use std::path::Path;
use std::time::Instant;

use divan::counter::{BytesCount, ItemsCount};
use mail::{ClassifyContext, SanitizeOptions, classify, parse, sanitize_html};

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).unwrap_or_default();
    index
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').next())
        .filter_map(|file| std::fs::read(dir.join(file)).ok())
        .collect()
}

fn total_bytes(messages: &[Vec<u8>]) -> usize {
    messages.iter().map(Vec::len).sum()
}

fn main() {
    let messages = corpus();
    if messages.is_empty() {
        eprintln!("corpus not found beside the repository (../shared/corpus); nothing to measure");
        return;
    }
    let bytes = total_bytes(&messages);
    let ctx = ClassifyContext {
        own_addresses: vec!["support@popdesk.example".into()],
    };
    // Warm up once, then time a few whole passes.
    for raw in &messages {
        let _ = parse(raw);
    }
    const PASSES: usize = 5;
    let start = Instant::now();
    let mut parsed = 0usize;
    for _ in 0..PASSES {
        for raw in &messages {
            if let Ok(message) = parse(raw) {
                let _ = classify(&message, raw, &ctx);
                parsed += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let count = (messages.len() * PASSES) as f64;
    println!(
        "parse + classify: {} messages ({:.1} MB) x {PASSES} in {secs:.2} s: {:.0} messages/s, {:.1} MB/s ({parsed} parsed)",
        messages.len(),
        bytes as f64 / 1e6,
        count / secs,
        (bytes * PASSES) as f64 / 1e6 / secs,
    );
    divan::main();
}

/// Parsing alone, the whole corpus per iteration.
#[divan::bench(sample_count = 10)]
fn parse_whole_corpus(bencher: divan::Bencher) {
    let messages = corpus();
    bencher
        .counter(ItemsCount::new(messages.len()))
        .counter(BytesCount::new(total_bytes(&messages)))
        .bench(|| {
            for raw in &messages {
                let _ = divan::black_box(parse(divan::black_box(raw)));
            }
        });
}

/// Classification of already parsed messages.
#[divan::bench(sample_count = 10)]
fn classify_whole_corpus(bencher: divan::Bencher) {
    let messages = corpus();
    let parsed: Vec<_> = messages.iter().filter_map(|raw| parse(raw).ok()).collect();
    let ctx = ClassifyContext {
        own_addresses: vec!["support@popdesk.example".into()],
    };
    bencher.counter(ItemsCount::new(parsed.len())).bench(|| {
        for (message, raw) in parsed.iter().zip(&messages) {
            let _ = divan::black_box(classify(message, raw, &ctx));
        }
    });
}

/// Sanitizing the HTML bodies again with an agent's options (cid URLs, remote
/// images on), as a ticket view would.
#[divan::bench(sample_count = 10)]
fn sanitize_corpus_html(bencher: divan::Bencher) {
    let html: Vec<String> = corpus()
        .iter()
        .filter_map(|raw| parse(raw).ok())
        .filter_map(|m| m.html_source)
        .collect();
    let options = SanitizeOptions {
        cid_url_template: Some("/attachments/{content_id}".into()),
        load_remote_images: true,
    };
    bencher
        .counter(ItemsCount::new(html.len()))
        .counter(BytesCount::new(html.iter().map(String::len).sum::<usize>()))
        .bench(|| {
            for h in &html {
                let _ = divan::black_box(sanitize_html(h, &options));
            }
        });
}
