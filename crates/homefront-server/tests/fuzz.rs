//! Fuzz harnesses (proptest-driven; cargo-fuzz needs a nightly toolchain):
//! the roster readers (xlsx, CSV in UTF-8 or GB18030), phone-number and
//! division-code parsing, and the dispatch instance reader that
//! `homefront dispatch solve` uses. Arbitrary bytes must never panic, every
//! failure must be a typed error with a message, and no message may echo
//! an unbounded amount of the input.
//!
//! Each harness first replays the committed seed corpus
//! (`tests/corpus/<target>/`), then runs a bounded number of generated
//! cases (`PROPTEST_CASES` overrides the count; a failing case is shrunk
//! and its seed saved by proptest under `tests/fuzz.proptest-regressions`).

use std::path::PathBuf;

use homefront_domain::{Adcode, PhoneNumber};
use homefront_server::roster::{self, Format};
use proptest::prelude::*;

/// The longest error message any reader may produce, in characters: bad
/// cells are quoted by a short prefix only.
const MAX_MESSAGE_CHARS: usize = 600;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

fn bounded(what: &str, message: &str) {
    assert!(!message.trim().is_empty(), "{what}: an empty error message");
    assert!(
        message.chars().count() <= MAX_MESSAGE_CHARS,
        "{what}: a {}-character error message",
        message.chars().count()
    );
}

/// The whole roster path a file takes before the database: the table,
/// the header, every row. Returns how many rows parsed.
fn roster_pipeline(bytes: &[u8], format: Format) -> usize {
    let table = match roster::read_table(bytes, format) {
        Ok(t) => t,
        Err(e) => {
            bounded("read_table", &e.to_string());
            return 0;
        }
    };
    for has_default_team in [false, true] {
        match roster::map_header(&table.header, has_default_team) {
            Ok(columns) => {
                assert_eq!(columns.len(), table.header.len());
                let mut ok = 0;
                for (row, cells) in &table.rows {
                    match roster::parse_row(*row, &columns, cells, None) {
                        Ok(_) => ok += 1,
                        Err(errors) => {
                            assert!(!errors.is_empty(), "row {row}: refused without a reason");
                            for e in errors {
                                assert!(!e.field.is_empty() && !e.code.is_empty(), "{e:?}");
                                bounded("parse_row", &e.message);
                            }
                        }
                    }
                }
                if has_default_team {
                    return ok;
                }
            }
            Err(e) => bounded("map_header", &e.to_string()),
        }
    }
    0
}

fn phone(text: &str) {
    match PhoneNumber::parse(text) {
        // A parsed number is E.164 and parses to itself.
        Ok(p) => {
            assert!(p.as_str().starts_with('+'), "{p:?}");
            assert_eq!(PhoneNumber::parse(p.as_str()).unwrap(), p);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn adcode(text: &str) {
    match Adcode::parse(text) {
        Ok(a) => assert_eq!(Adcode::parse(&a.to_string()).unwrap(), a),
        Err(e) => bounded("adcode", &e.to_string()),
    }
}

fn instance(bytes: &[u8]) {
    match homefront_dispatch::read_instance(bytes) {
        Ok(edges) => {
            // A small instance is solved too: what `dispatch solve` does next.
            if edges.len() <= 64 {
                homefront_dispatch::solve_instance(&edges);
            }
        }
        Err(e) => bounded("read_instance", &e.to_string()),
    }
}

#[test]
fn seed_corpus_replays() {
    for (_, bytes) in corpus("roster_csv") {
        roster_pipeline(&bytes, Format::Csv);
    }
    let mut parsed = 0;
    for (_, bytes) in corpus("roster_xlsx") {
        parsed += roster_pipeline(&bytes, Format::Xlsx);
    }
    assert!(parsed > 0, "the xlsx seeds reach the row parser");
    for (_, bytes) in corpus("phone") {
        for line in String::from_utf8_lossy(&bytes).lines() {
            phone(line);
        }
    }
    for (_, bytes) in corpus("adcode") {
        for line in String::from_utf8_lossy(&bytes).lines() {
            adcode(line);
        }
    }
    for (_, bytes) in corpus("instance") {
        instance(&bytes);
    }
}

/// A seed with bytes overwritten, inserted and cut: most stay close enough
/// to the format to reach deep into the parser.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        0..seeds.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(move |(i, writes, inserts, cut, truncate)| {
            let mut b = seeds[i].clone();
            for (at, v) in writes {
                let n = b.len().max(1);
                if let Some(x) = b.get_mut(at.index(n)) {
                    *x = v;
                }
            }
            for (at, v) in inserts {
                let at = at.index(b.len() + 1);
                b.insert(at, v);
            }
            if truncate && !b.is_empty() {
                b.truncate(cut.index(b.len()));
            }
            b
        })
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    corpus(target).into_iter().map(|(_, b)| b).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn roster_xlsx_never_panics(bytes in mutated(seeds("roster_xlsx"))) {
        roster_pipeline(&bytes, Format::Xlsx);
    }

    #[test]
    fn roster_csv_never_panics(bytes in prop_oneof![
        mutated(seeds("roster_csv")),
        prop::collection::vec(any::<u8>(), 0..512),
    ]) {
        roster_pipeline(&bytes, Format::Csv);
        roster_pipeline(&bytes, Format::sniff(&bytes));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn phone_parsing_never_panics(text in prop_oneof![
        any::<String>(),
        "[+＋0-9０-９ ()（）\\-转ext.x]{0,30}",
    ]) {
        phone(&text);
    }

    #[test]
    fn adcode_parsing_never_panics(text in prop_oneof![any::<String>(), "[ 0-9]{0,14}"]) {
        adcode(&text);
    }

    #[test]
    fn instance_reader_never_panics(bytes in prop_oneof![
        mutated(seeds("instance")),
        prop::collection::vec(any::<u8>(), 0..256),
        "request,volunteer,cost\n([0-9 .eE+-]{0,6},[0-9 -]{0,4},[0-9 .eEinfNa+-]{0,8}\n){0,12}"
            .prop_map(String::into_bytes),
    ]) {
        instance(&bytes);
    }
}
