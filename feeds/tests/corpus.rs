#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Data-driven tests over the shared third-party corpus (`../shared/corpus`).
//!
//! Every file under the advisory and VEX folders is classified as parsed, refused (with the
//! error) or not a feed format; per-folder counts are asserted so a regression shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use feeds::{FeedError, FeedFormat};

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: shared corpus not found at {}", dir.display());
        None
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Parsed(FeedFormat),
    Refused(FeedFormat, String),
    NotAFeed,
}

fn outcome(path: &Path) -> Outcome {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = std::fs::read(path).unwrap();
    match feeds::parse(&name, &bytes) {
        Ok(doc) => {
            // Serialisation round-trips.
            let json = serde_json::to_string(&doc).unwrap();
            let back: feeds::Document = serde_json::from_str(&json).unwrap();
            assert_eq!(back.format, doc.format);
            Outcome::Parsed(doc.format)
        }
        Err(e @ FeedError::Invalid { format, .. }) => Outcome::Refused(format, e.to_string()),
        Err(FeedError::UnknownFormat { .. } | FeedError::Syntax { .. }) => Outcome::NotAFeed,
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    parsed: usize,
    refused: usize,
    not_a_feed: usize,
}

/// Classifies every file under `folder` and checks the counts; prints every refusal.
fn check(folder: &str, expected: Counts) -> BTreeMap<String, Outcome> {
    let Some(root) = corpus() else {
        return BTreeMap::new();
    };
    let mut paths = Vec::new();
    files(&root.join(folder), &mut paths);
    let mut counts = Counts::default();
    let mut all = BTreeMap::new();
    for p in paths {
        let rel = p
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let o = outcome(&p);
        match &o {
            Outcome::Parsed(f) => {
                counts.parsed += 1;
                println!("parsed   {f:<14} {rel}");
            }
            Outcome::Refused(_, e) => {
                counts.refused += 1;
                println!("refused  {rel}: {e}");
            }
            Outcome::NotAFeed => {
                counts.not_a_feed += 1;
                println!("skipped  {rel}");
            }
        }
        all.insert(rel, o);
    }
    assert_eq!(counts, expected, "{folder}: counts changed");
    all
}

fn counts(parsed: usize, refused: usize, not_a_feed: usize) -> Counts {
    Counts {
        parsed,
        refused,
        not_a_feed,
    }
}

fn refused_with(all: &BTreeMap<String, Outcome>, path: &str, needle: &str) {
    match all.get(path) {
        Some(Outcome::Refused(_, e)) => assert!(e.contains(needle), "{path}: {e}"),
        other => panic!("{path}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn advisories() {
    // Not feeds: Debian's raw data/*/list files, distributions.json, the Arch list, the Red
    // Hat hydra CVE record and the OVAL XML files.
    let all = check("advisories", counts(76, 0, 9));
    let by_format = |f: FeedFormat| all.values().filter(|o| **o == Outcome::Parsed(f)).count();
    assert_eq!(by_format(FeedFormat::NvdCve5), 24);
    assert_eq!(by_format(FeedFormat::NvdApi2), 25);
    assert_eq!(by_format(FeedFormat::Osv), 8);
    assert_eq!(by_format(FeedFormat::Csaf), 2);
    assert_eq!(by_format(FeedFormat::OpenVex), 1);
    assert_eq!(by_format(FeedFormat::DebianTracker), 2);
    assert_eq!(by_format(FeedFormat::AlpineSecdb), 11);
    assert_eq!(by_format(FeedFormat::CisaKev), 2);
    assert_eq!(by_format(FeedFormat::EpssCsv), 1);
}

#[test]
fn openvex() {
    // The one refusal is go-vex's CSAF test input, whose branch holds both a product and
    // branches (and an invalid purl copied from the CSAF test suite).
    let all = check("openvex", counts(30, 1, 9));
    refused_with(
        &all,
        "openvex/go-vex/pkg/csaf/testdata/csaf.json",
        "exactly one of 'product' or 'branches'",
    );
}

#[test]
fn cyclonedx() {
    // Refused: the 41 JSON invalid-* test files we detect, plus two bom-examples written for
    // spec 1.2 and 1.3, which are older than the 1.4-1.6 supported here. Not feeds: the XML
    // files, schemas and READMEs.
    let all = check("cyclonedx", counts(131, 45, 182));
    // These need the SPDX license list, which this crate does not carry.
    const NEEDS_SPDX_LIST: [&str; 2] = ["invalid-license-id-", "invalid-metadata-license-"];
    for (path, o) in &all {
        let file = path.rsplit('/').next().unwrap();
        if !file.ends_with(".json") {
            continue;
        }
        if file.starts_with("invalid-") {
            if NEEDS_SPDX_LIST.iter().any(|p| file.starts_with(p)) {
                assert_eq!(*o, Outcome::Parsed(FeedFormat::CycloneDx), "{path}");
            } else {
                assert!(
                    matches!(o, Outcome::Refused(FeedFormat::CycloneDx, _)),
                    "{path}: {o:?}"
                );
            }
        } else if file.starts_with("valid-") {
            assert_eq!(*o, Outcome::Parsed(FeedFormat::CycloneDx), "{path}");
        }
    }
    refused_with(
        &all,
        "cyclonedx/bom-examples/VEX/bom.json",
        "'1.3' is not one of 1.4, 1.5, 1.6",
    );
}

#[test]
fn csaf() {
    // Refused: the 86 failing mandatory validator cases we test for (the 6.1.11 CWE case
    // parses: it needs the CWE catalogue), the two optional cases that also break 6.1.25 (see csaf_testcases.rs), and Red Hat's RHSA-2003:315, whose
    // revision 2 is dated before revision 1 (6.1.14). Not feeds: ROLIE feeds, aggregator and
    // provider metadata, schemas and the testcases index.
    let all = check("csaf", counts(180, 89, 20));
    refused_with(
        &all,
        "csaf/osv-schema/tools/redhat/testdata/CSAF/rhsa-2003_315.json",
        "(csaf 6.1.14)",
    );
    assert_eq!(
        all["csaf/osv-schema/tools/redhat/testdata/CSAF/rhsa-2024_4546.json"],
        Outcome::Parsed(FeedFormat::Csaf)
    );
}

#[test]
fn osv_schema() {
    // The osv-linter's broken records are refused, except `nopackage-*`: its package name
    // does not exist in PyPI, which only a registry lookup can tell. The GHSA REST inputs
    // are GitHub's own format, not a feed format here.
    let all = check("osv/osv-schema", counts(21, 2, 16));
    let linter = "osv/osv-schema/tools/osv-linter/testdata/";
    refused_with(
        &all,
        &format!("{linter}nointroduced-CVE-2023-41045.json"),
        "at least one 'introduced'",
    );
    refused_with(
        &all,
        &format!("{linter}nondistinct-CVE-2018-5407.json"),
        "the interval is empty",
    );
    assert_eq!(
        all[&format!("{linter}nopackage-GHSA-9v2f-6vcg-3hgv.json")],
        Outcome::Parsed(FeedFormat::Osv)
    );
}
