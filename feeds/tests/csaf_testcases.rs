#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The OASIS CSAF validator test data (`csaf_2.0/test/validator/data/testcases.json`).
//!
//! Valid documents must parse. Failing documents of mandatory tests must be refused (all
//! mandatory tests but 6.1.11 are implemented); failing documents of optional (6.2) and
//! informative (6.3) tests are still valid CSAF, so they must parse.

use std::path::Path;

#[derive(Debug, Default)]
struct Tally {
    correct: usize,
    total: usize,
    wrong: Vec<String>,
}

/// Documents of optional tests that also break a mandatory test, so a validator refuses them.
const ALSO_FAIL_MANDATORY: [(&str, &str); 2] = [
    (
        "optional/oasis_csaf_tc-csaf_2_0-2021-6-2-08-02.json",
        "6.1.25",
    ),
    (
        "optional/oasis_csaf_tc-csaf_2_0-2021-6-2-09-02.json",
        "6.1.25",
    ),
];

/// Classifies one test document; `refuse` says whether it must be refused.
fn check(dir: &Path, name: &str, refuse: bool, tally: &mut Tally) {
    let bytes = std::fs::read(dir.join(name)).unwrap();
    let result = feeds::parse(name, &bytes);
    tally.total += 1;
    let refused = match &result {
        Ok(doc) => {
            assert_eq!(doc.format, feeds::FeedFormat::Csaf, "{name}");
            false
        }
        Err(feeds::FeedError::Invalid { .. }) => true,
        Err(e) => panic!("{name}: not recognised as csaf: {e}"),
    };
    let also = ALSO_FAIL_MANDATORY.iter().find(|(n, _)| *n == name);
    let refuse = refuse || also.is_some();
    if let (Some((_, test)), Err(e)) = (also, &result) {
        assert!(e.to_string().contains(test), "{name}: {e}");
    }
    if refused == refuse {
        tally.correct += 1;
    } else {
        let why = match result {
            Ok(_) => "parsed".to_owned(),
            Err(e) => e.to_string(),
        };
        tally.wrong.push(format!(
            "{name} (expected {}): {why}",
            if refuse { "refusal" } else { "parse" }
        ));
    }
}

#[test]
fn validator_testcases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/csaf/csaf/csaf_2.0/test/validator/data");
    let Ok(index) = std::fs::read(dir.join("testcases.json")) else {
        eprintln!(
            "skipping: csaf validator test data not found under {}",
            dir.display()
        );
        return;
    };
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let mut mandatory_failures = Tally::default();
    let mut valid = Tally::default();
    let mut other_failures = Tally::default();
    for t in index["tests"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        let mandatory = t["group"] == "mandatory";
        for f in t["failures"].as_array().into_iter().flatten() {
            let name = f["name"].as_str().unwrap();
            if !mandatory {
                check(&dir, name, false, &mut other_failures);
            } else if id == "6.1.11" {
                // CWE names need the CWE catalogue; not implemented.
                continue;
            } else {
                check(&dir, name, true, &mut mandatory_failures);
            }
        }
        for v in t["valid"].as_array().into_iter().flatten() {
            check(&dir, v["name"].as_str().unwrap(), false, &mut valid);
        }
    }
    for (label, t) in [
        ("mandatory failures refused", &mandatory_failures),
        ("valid documents parsed", &valid),
        ("optional/informative failures parsed", &other_failures),
    ] {
        println!("{label}: {}/{}", t.correct, t.total);
        for w in &t.wrong {
            println!("  wrong: {w}");
        }
    }
    let correct = mandatory_failures.correct + valid.correct + other_failures.correct;
    let total = mandatory_failures.total + valid.total + other_failures.total;
    println!("csaf testcases classified correctly: {correct}/{total}");
    assert!(correct >= 238, "csaf testcases: {correct}/{total}");
}
