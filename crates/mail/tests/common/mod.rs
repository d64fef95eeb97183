//! The shared corpus, read-only: `../shared/corpus` beside the repository.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The corpus directory, found relative to this crate so CI's fresh clone works.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

/// One row of `INDEX.tsv`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: String,
    pub tags: Vec<String>,
}

/// Every row of `INDEX.tsv`, in file order.
pub fn index() -> Vec<Entry> {
    let path = corpus_dir().join("INDEX.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("corpus index {} unreadable: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            Entry {
                file: cols[0].to_owned(),
                tags: cols
                    .get(5)
                    .map(|t| {
                        t.split(',')
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The raw bytes of one corpus file.
pub fn read(file: &str) -> Vec<u8> {
    let path = corpus_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{} unreadable: {e}", path.display()))
}

/// Entries carrying `tag`.
pub fn tagged(tag: &str) -> Vec<Entry> {
    index()
        .into_iter()
        .filter(|e| e.tags.iter().any(|t| t == tag))
        .collect()
}
