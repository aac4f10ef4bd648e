//! Replays every file of the fuzz corpus (`fuzz/corpus/<target>/`: seeds from the fixtures and the inputs
//! that once crashed a normalizer, `crash-*`) through its normalizer, as the fuzz target reads it (one
//! record per line), so a fixed crash stays fixed in a plain `cargo test`.

mod common;

use std::path::PathBuf;

use vigil_normalize::Format;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// The records of one fuzz input, split as `fuzz/src/lib.rs` splits them.
fn records(data: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = data.split(|&b| b == b'\n').take(16).map(<[u8]>::to_vec).collect();
    if lines.len() > 1 && lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    lines
}

#[test]
fn every_corpus_file_is_a_row_or_a_dead_letter_per_line() {
    let mut targets = 0;
    let mut files = 0;
    let mut crashers = 0;
    for dir in std::fs::read_dir(corpus()).unwrap() {
        let dir = dir.unwrap().path();
        let target = dir.file_name().unwrap().to_str().unwrap().to_string();
        let format = (target != "scan").then(|| target.parse::<Format>().unwrap_or_else(|e| panic!("{target}: {e}")));
        targets += 1;
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            files += 1;
            crashers += usize::from(path.file_name().unwrap().to_string_lossy().starts_with("crash-"));
            match format {
                None => common::check_scan(&data),
                Some(format) => {
                    // in chunks of 3 as the fuzz target, and one by one
                    common::check_records(format, &records(&data), 3);
                    common::check_records(format, &records(&data), 1);
                }
            }
        }
    }
    assert_eq!(targets, 9, "one corpus directory per fuzz target");
    assert!(files > 100 && crashers >= 2, "{files} files, {crashers} crashers");
}

#[test]
fn the_crashers_of_issue_16_are_rows_now() {
    // GET http:/éé: split_absolute sliced the target inside `é`
    let out = common::check_records(
        Format::ApacheCombined,
        &[r#"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET http:/éé HTTP/1.1" 200 12 "-" "x""#.as_bytes().to_vec()],
        1,
    );
    assert_eq!(out.rows(), 1, "{:?}", out.dead_letters);
}
