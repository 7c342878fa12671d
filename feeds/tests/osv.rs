#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OSV: the full Go vulndb and PyPA corpora, and the GHSA REST -> OSV pairs.

use std::path::{Path, PathBuf};

fn corpus(rel: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(rel);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} not found", dir.display());
        None
    }
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, ext, out);
        } else if p.to_string_lossy().ends_with(ext) {
            out.push(p);
        }
    }
}

/// Parses every `ext` file under `rel`; every one must be OSV whose id is its file stem.
fn check(rel: &str, ext: &str, expected_files: usize) {
    let Some(dir) = corpus(rel) else { return };
    let mut files = Vec::new();
    walk(&dir, ext, &mut files);
    files.sort();
    let mut failures = Vec::new();
    let mut observations = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        match feeds::parse(&name, &std::fs::read(f).unwrap()) {
            Ok(doc) => {
                assert_eq!(doc.format, feeds::FeedFormat::Osv, "{name}");
                assert_eq!(doc.observations.len(), 1, "{name}");
                let stem = name.trim_end_matches(ext);
                assert_eq!(doc.observations[0].source_id, stem, "{name}");
                observations += 1;
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    for f in &failures {
        println!("failed: {f}");
    }
    println!("{rel}: {observations} parsed, {} failed", failures.len());
    assert_eq!(files.len(), expected_files, "{rel}: file count");
    assert!(
        failures.is_empty(),
        "{rel}: {} documents refused",
        failures.len()
    );
}

#[test]
fn golang_vulndb_parses_entirely() {
    check("osv/golang-vulndb/data/osv", ".json", 4291);
}

#[test]
fn pypa_advisories_parse_entirely() {
    // 2,662 files, of which one is the `.id-allocator`.
    check("osv/pypa-advisory-database/vulns", ".yaml", 2661);
}

#[test]
fn ghsa_osv_pairs_keep_id_and_aliases() {
    let Some(dir) = corpus("osv/osv-schema/tools/ghsa/testdata") else {
        return;
    };
    let mut files = Vec::new();
    walk(&dir, ".osv.json", &mut files);
    files.sort();
    assert_eq!(files.len(), 11);
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let doc = feeds::parse(&name, &std::fs::read(&f).unwrap()).unwrap();
        let o = &doc.observations[0];
        assert_eq!(o.source, "osv:GHSA", "{name}");
        assert_eq!(o.source_id, raw["id"].as_str().unwrap(), "{name}");
        let mut aliases: Vec<String> = raw["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        aliases.sort();
        assert_eq!(o.aliases, aliases, "{name}");
        assert_eq!(
            o.withdrawn.is_some(),
            raw.get("withdrawn").is_some(),
            "{name}"
        );
        // The REST side is GitHub's own format, which is not a feed format here.
        let rest = f.with_file_name(name.replace(".osv.json", ".json"));
        let err = feeds::parse("rest.json", &std::fs::read(rest).unwrap()).unwrap_err();
        assert_eq!(err.code(), "unknown-format", "{name}: {err}");
    }
}
