#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Parsers never panic on input: one small document of each feed kind, mutated in a fixed,
//! deterministic way (truncations, byte flips, duplicated spans, deleted brackets, and JSON values
//! replaced by values of other types), must make `feeds::parse` return `Ok` or `Err`, never panic.
//!
//! This is the stable, fast part of fuzzing (the `cargo fuzz` targets live in `feeds/fuzz`): every
//! run tries the same few thousand inputs. A crash found by the fuzzers gets its own test below.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One small document of each kind the corpus test sees parse, under `../shared/corpus`.
const DOCUMENTS: &[(&str, &str)] = &[
    ("osv", "advisories/vunnel/govulndb/GO-2023-1989.json"),
    (
        "osv",
        "osv/osv-schema/tools/ghsa/testdata/multiple_ranges_in_package.osv.json",
    ),
    (
        "nvd-cve5",
        "advisories/osv.dev/cvelistV5/cves/2023/23xxx/CVE-2023-23127.json",
    ),
    (
        "nvd-api2",
        "advisories/osv.dev/nvdcve-2.0/CVE-2023-5341.json",
    ),
    (
        "csaf",
        "csaf/csaf/csaf_2.0/examples/csaf/rhsa-2019_1862.json",
    ),
    (
        "csaf",
        "csaf/csaf/csaf_2.0/examples/csaf/csaf_vex/2022-evd-uc-04-001.json",
    ),
    ("openvex", "openvex/go-vex/pkg/vex/testdata/v001-1.vex.json"),
    ("openvex", "openvex/go-vex/pkg/vex/testdata/v020-1.vex.json"),
    (
        "cyclonedx",
        "cyclonedx/bom-examples/VEX/CISA-Use-Cases/Case-5/vex.json",
    ),
    (
        "debian-tracker",
        "advisories/osv.dev/debian/debian_security_tracker_mock.json",
    ),
    (
        "alpine-secdb",
        "advisories/vuln-list-update/alpine/testdata/edge-main.json",
    ),
    ("alpine-secdb", "advisories/vunnel/alpine/main.yaml"),
    ("cisa-kev", "advisories/vunnel/kev/example1.json"),
    ("epss-csv", "advisories/vunnel/epss/example-1.csv"),
];

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: shared corpus not found at {}", dir.display());
        None
    }
}

/// xorshift64: deterministic, and good enough to pick positions.
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Rng {
        // FNV-1a of the file name, so each document gets its own positions.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// A named variant of a document.
struct Mutant {
    what: String,
    bytes: Vec<u8>,
}

fn mutant(what: impl Into<String>, bytes: Vec<u8>) -> Mutant {
    Mutant {
        what: what.into(),
        bytes,
    }
}

/// Byte-level mutations: truncations, flips, duplicated spans, deleted brackets.
fn byte_mutations(doc: &[u8], rng: &mut Rng) -> Vec<Mutant> {
    let mut out = Vec::new();
    let n = doc.len();
    // Truncations at eighths of the document, and one byte short of the end.
    for k in 0..8 {
        let at = n * k / 8;
        out.push(mutant(format!("truncated at {at}"), doc[..at].to_vec()));
    }
    out.push(mutant(
        format!("truncated at {}", n.saturating_sub(1)),
        doc[..n.saturating_sub(1)].to_vec(),
    ));
    // Single-byte flips at random positions: random bits, and a few bytes that matter to parsers.
    const SPECIAL: &[u8] = b"\"{}[],:\\-0\n\x00\xff";
    for i in 0..32 {
        let at = rng.below(n);
        let mut m = doc.to_vec();
        if let Some(b) = m.get_mut(at) {
            *b = if i % 2 == 0 {
                *b ^ (1 << (rng.next() % 8))
            } else {
                SPECIAL[rng.below(SPECIAL.len())]
            };
        }
        out.push(mutant(format!("byte {at} changed to {:#04x}", m[at]), m));
    }
    // Duplicated spans: a slice inserted again right after itself.
    for _ in 0..6 {
        let start = rng.below(n);
        let len = 1 + rng.below(64.min(n - start));
        let mut m = doc[..start + len].to_vec();
        m.extend_from_slice(&doc[start..]);
        out.push(mutant(
            format!("bytes {start}..{} duplicated", start + len),
            m,
        ));
    }
    // Deleted brackets: a few single ones, and every closing one.
    let brackets: Vec<usize> = (0..n)
        .filter(|&i| matches!(doc[i], b'{' | b'}' | b'[' | b']'))
        .collect();
    for _ in 0..8.min(brackets.len()) {
        let at = brackets[rng.below(brackets.len())];
        let mut m = doc.to_vec();
        m.remove(at);
        out.push(mutant(format!("bracket at {at} deleted"), m));
    }
    out.push(mutant(
        "every closing bracket deleted",
        doc.iter()
            .copied()
            .filter(|b| !matches!(b, b'}' | b']'))
            .collect(),
    ));
    out
}

/// Values of the wrong type, or at the edge of their type, that a parser must refuse or accept.
fn replacements() -> Vec<(&'static str, Value)> {
    vec![
        ("null", Value::Null),
        ("true", Value::Bool(true)),
        ("0", Value::from(0)),
        ("-1", Value::from(-1)),
        ("u64::MAX", Value::from(u64::MAX)),
        ("1e308", Value::from(1e308)),
        ("0.5", Value::from(0.5)),
        ("\"\"", Value::from("")),
        ("\"x\"", Value::from("x")),
        ("a multi-byte string", Value::from("é€😀")),
        ("a string of digits", Value::from("99999999999999999999999")),
        ("[]", Value::Array(Vec::new())),
        ("[null]", Value::Array(vec![Value::Null])),
        ("{}", Value::Object(serde_json::Map::new())),
    ]
}

/// JSON pointers of every node of `v`, the root first.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let key = k.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Tree-level mutations of a JSON or YAML document: sampled nodes replaced by each replacement
/// value, sampled object members removed. Serialised back in the document's own syntax.
fn value_mutations(tree: &Value, yaml: bool, rng: &mut Rng) -> Vec<Mutant> {
    let serialise = |v: &Value| -> Vec<u8> {
        if yaml {
            serde_yaml_ng::to_string(v).unwrap().into_bytes()
        } else {
            serde_json::to_vec(v).unwrap()
        }
    };
    let mut all = Vec::new();
    pointers(tree, String::new(), &mut all);
    let mut out = Vec::new();
    for _ in 0..24.min(all.len()) {
        let ptr = &all[rng.below(all.len())];
        for (name, value) in replacements() {
            let mut m = tree.clone();
            *m.pointer_mut(ptr).unwrap() = value;
            out.push(mutant(format!("'{ptr}' replaced by {name}"), serialise(&m)));
        }
        // The member removed, when the node is one.
        if let Some((parent, key)) = ptr.rsplit_once('/') {
            let mut m = tree.clone();
            if let Some(Value::Object(obj)) = m.pointer_mut(parent) {
                obj.remove(&key.replace("~1", "/").replace("~0", "~"));
                out.push(mutant(format!("'{ptr}' removed"), serialise(&m)));
            }
        }
    }
    out
}

/// Parses every mutant of `doc` under `name`; returns one line per panic.
fn check_document(name: &str, doc: &[u8]) -> (usize, Vec<String>) {
    let mut rng = Rng::new(name);
    let mut mutants = byte_mutations(doc, &mut rng);
    let yaml = name.ends_with(".yaml");
    let tree: Option<Value> = if yaml {
        serde_yaml_ng::from_slice(doc).ok()
    } else {
        serde_json::from_slice(doc).ok()
    };
    if let Some(tree) = &tree {
        mutants.extend(value_mutations(tree, yaml, &mut rng));
    }
    let mut panics = Vec::new();
    for m in &mutants {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| feeds::parse(name, &m.bytes)));
        if let Err(cause) = outcome {
            let message = cause
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| cause.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            panics.push(format!("{name}: {}: panicked: {message}", m.what));
        }
    }
    (mutants.len(), panics)
}

/// The same document in OSV's YAML form (PyPA publishes OSV as YAML).
fn as_yaml(json: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(json).unwrap();
    serde_yaml_ng::to_string(&v).unwrap().into_bytes()
}

#[test]
fn mutated_documents_never_panic() {
    let mut docs: Vec<(String, Vec<u8>)> = Vec::new();
    // The hand-made fixtures are always there.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    fixtures.sort();
    for p in fixtures {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        docs.push((name, std::fs::read(&p).unwrap()));
    }
    if let Some(root) = corpus() {
        for (kind, rel) in DOCUMENTS {
            let bytes = std::fs::read(root.join(rel)).unwrap();
            let name = Path::new(rel).file_name().unwrap().to_string_lossy();
            // The unmutated document parses: otherwise its mutants test little.
            let doc = feeds::parse(&name, &bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert_eq!(doc.format.name(), *kind, "{rel}");
            if *kind == "osv" {
                let yaml_name = name.replace(".json", ".yaml");
                let yaml = as_yaml(&bytes);
                let doc = feeds::parse(&yaml_name, &yaml).unwrap_or_else(|e| panic!("{rel}: {e}"));
                assert_eq!(doc.format.name(), "osv", "{rel} as YAML");
                docs.push((yaml_name, yaml));
            }
            docs.push((name.into_owned(), bytes));
        }
    }
    let mut tried = 0;
    let mut panics = Vec::new();
    for (name, bytes) in &docs {
        let (n, p) = check_document(name, bytes);
        tried += n;
        panics.extend(p);
    }
    println!("{} documents, {tried} mutants", docs.len());
    assert!(
        panics.is_empty(),
        "{} mutant(s) panicked:\n{}",
        panics.len(),
        panics.join("\n")
    );
}

// Crashes found by the fuzz targets in `feeds/fuzz`, each with its minimal input.

/// `fuzz/public_key_pem`, `fuzz/private_key_pem`: a PEM whose END line starts inside the BEGIN line's
/// dashes made the PEM reader slice backwards (`begin > end`) and panic.
#[test]
fn pem_end_line_overlapping_begin_line_is_refused() {
    let public = b"-----BEGIN PUBLIC KEY------END PUBLIC KEY-----\n";
    let private = b"-----BEGIN PRIVATE KEY--------END PRIVATE KEY-----\n";
    let got = panic::catch_unwind(|| crypto_profiles::PublicKey::from_pem(public).is_err());
    assert!(matches!(got, Ok(true)), "public key PEM: {got:?}");
    let got = panic::catch_unwind(|| crypto_profiles::PrivateKey::from_pem(private, None).is_err());
    assert!(matches!(got, Ok(true)), "private key PEM: {got:?}");
}

/// Parses an OSV record about package `name` with one range of alternating `introduced`/`fixed`
/// events over `versions`, then judges `purl` against it; `Err` when judging panicked.
fn judge_range(ecosystem: &str, name: &str, purl: &str, versions: &[&str]) -> Result<(), String> {
    let events: Vec<Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let kind = if i % 2 == 0 { "introduced" } else { "fixed" };
            serde_json::json!({ kind: v })
        })
        .collect();
    let doc = serde_json::json!({
        "id": "GHSA-0000-0000-0000",
        "modified": "2024-01-02T00:00:00Z",
        "affected": [{
            "package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": events}],
        }],
    });
    let bytes = serde_json::to_vec(&doc).unwrap();
    let Ok(parsed) = feeds::parse("GHSA-0000-0000-0000.json", &bytes) else {
        // Refusing such versions at parse time is a fix too.
        return Ok(());
    };
    let parsed_purl = feeds::matching::parse_purl(purl).unwrap();
    let verdict =
        panic::catch_unwind(|| feeds::matching::judge(&parsed.observations[0], &parsed_purl))
            .map_err(|_| format!("judging {ecosystem} {versions:?} panicked"))?;
    // The package must be the one named, or the range is never evaluated.
    assert!(
        verdict.is_some(),
        "{purl}: not matched to {ecosystem} '{name}'"
    );
    Ok(())
}

/// `fuzz/version_parse`: Packagist versions are not totally ordered when a part starts with `#`
/// (PHP's `version_compare` ranks a number like the word `#`, so `1 = # = 2` while `1 < 2`). An OSV
/// range of 21 such events, which `feeds::parse` accepts, makes `in_range` (called by
/// `matching::judge`) panic in `sort_by`: "user-provided comparison function does not correctly
/// implement a total order".
#[test]
fn packagist_range_with_hash_versions_does_not_panic_matching() {
    let versions = [
        "#", "7", "1", "#", "2", "9", "#", "10", "4", "#", "5", "12", "#", "0", "7", "#", "8", "2",
        "#", "3", "10",
    ];
    judge_range(
        "Packagist",
        "vendor/pkg",
        "pkg:composer/vendor/pkg@1",
        &versions,
    )
    .unwrap();
}

/// `fuzz/version_parse`: Maven's order (like Maven's own `ComparableVersion`) is not transitive:
/// `1 < 1.foo` and `1-beta-2 < 1`, yet `1.foo < 1-beta-2` (a string item ranks below a list item).
/// A range of 22 plausible events, which `feeds::parse` accepts, then makes `in_range` panic in
/// `sort_by` like the Packagist one.
#[test]
fn maven_range_with_intransitive_versions_does_not_panic_matching() {
    let versions = [
        "1.2", "1.1.foo", "1", "3.foo", "0.9", "1.1.foo", "3", "1-beta-2", "1", "1.bar", "1.5",
        "1-beta-2", "1.1", "1.1-rc1", "1", "1.1.foo", "3", "3.foo", "1", "1-rc1", "1.5",
        "2-beta-1",
    ];
    judge_range(
        "Maven",
        "org.example:lib",
        "pkg:maven/org.example/lib@1",
        &versions,
    )
    .unwrap();
}
