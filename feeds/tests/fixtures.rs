#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Hand-made edge cases in `tests/data/`, each checked against its exact error message.

use std::path::Path;

/// Parses `tests/data/<file>` and compares the error message (or `ok`) with `expected`.
fn check(file: &str, expected: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file);
    let bytes = std::fs::read(&path).unwrap();
    let got = match feeds::parse(file, &bytes) {
        Ok(doc) => format!(
            "ok: {} observation(s) of {}",
            doc.observations.len(),
            doc.format
        ),
        Err(e) => e.to_string(),
    };
    assert_eq!(got, expected, "{file}");
}

#[test]
fn osv_missing_id() {
    check(
        "osv-missing-id.json",
        "osv-missing-id.json: osv: missing required field 'id'",
    );
}

#[test]
fn osv_wrong_type() {
    check(
        "osv-aliases-wrong-type.json",
        "osv-aliases-wrong-type.json: osv: /aliases: expected an array, found a string",
    );
}

#[test]
fn osv_bad_time() {
    check(
        "osv-bad-modified-time.json",
        "osv-bad-modified-time.json: osv: /modified: '2024-13-01T00:00:00Z' is not an RFC 3339 date-time",
    );
}

#[test]
fn osv_yaml_unquoted_number_is_not_silently_rewritten() {
    // YAML reads `1.0` as a number; turning it back into "1.0" or "1" would be a guess.
    check(
        "osv-yaml-number-version.yaml",
        "osv-yaml-number-version.yaml: osv: /affected/0/ranges/0/events/0/fixed: expected a string, found a number",
    );
}

#[test]
fn osv_truncated_json() {
    check(
        "osv-truncated.json",
        "osv-truncated.json: json: line 4: EOF while parsing a list at line 4 column 0",
    );
}

#[test]
fn csaf_bad_status() {
    check(
        "csaf-bad-status.json",
        "csaf-bad-status.json: csaf: /document/tracking/status: 'finalx' is not one of draft, final, interim",
    );
}

#[test]
fn openvex_not_affected_needs_justification() {
    check(
        "openvex-not-affected-without-justification.json",
        "openvex-not-affected-without-justification.json: openvex: /statements/0: a not_affected statement needs 'justification' or 'impact_statement'",
    );
}

#[test]
fn epss_out_of_range() {
    check(
        "epss-score-out-of-range.csv",
        "epss-score-out-of-range.csv: epss-csv: line 3: epss '1.5' is not a number between 0 and 1",
    );
}

#[test]
fn kev_bad_date() {
    check(
        "kev-bad-date.json",
        "kev-bad-date.json: cisa-kev: /dateAdded: '2025-02-30x' is not a YYYY-MM-DD date",
    );
}

#[test]
fn osv_ok_is_normalised() {
    check("osv-ok.json", "ok: 1 observation(s) of osv");
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv-ok.json"))
        .unwrap();
    let doc = feeds::parse("osv-ok.json", &bytes).unwrap();
    let o = &doc.observations[0];
    assert_eq!(o.source, "osv:GHSA");
    assert_eq!(o.aliases, ["CVE-2024-0001", "CVE-2024-0002"]);
    assert_eq!(o.published.as_deref(), Some("2024-01-01T00:00:00+01:00"));
    assert_eq!(o.affected[0].fixed, ["1.3.0"]);
    assert_eq!(
        o.affected[0].package.purl.as_deref(),
        Some("pkg:npm/left-pad")
    );
    // Serialisation is deterministic: field order is declaration order.
    let json = serde_json::to_string(&doc).unwrap();
    assert!(json.starts_with(r#"{"format":"osv","observations":[{"source":"osv:GHSA","source_id":"GHSA-aaaa-bbbb-cccc""#), "{json}");
    assert_eq!(
        feeds::detect("osv-ok.json", &bytes).unwrap(),
        feeds::FeedFormat::Osv
    );
}

#[test]
fn not_a_feed() {
    let e = feeds::parse("x.json", br#"{"hello": "world"}"#).unwrap_err();
    assert_eq!(e.code(), "unknown-format");
    assert_eq!(
        e.to_string(),
        "x.json: not a recognised advisory or VEX format (no known advisory or vex structure)"
    );
}
