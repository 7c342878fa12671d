//! Knowledge through kits: append-only observations, alias-closure linksets with conflicts, matching, and
//! per-source freshness, driven through `stella-kit build` and `stella import`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use stella_tests::{gen_key, kit, run_env, EPOCH};

const NOW: &str = "1700000500";

fn stella(dir: &Path, args: &[&str]) -> stella_tests::Run {
    stella_tests::stella_at(dir, NOW, args)
}

/// An OSV advisory for an npm package with one fixed version, and aliases.
fn advisory(
    id: &str,
    aliases: &[&str],
    fixed: &str,
    modified: &str,
    score: Option<&str>,
) -> String {
    let aliases: Vec<String> = aliases.iter().map(|a| format!("\"{a}\"")).collect();
    let severity = score
        .map(|v| format!(",\"severity\":[{{\"type\":\"CVSS_V3\",\"score\":\"{v}\"}}]"))
        .unwrap_or_default();
    format!(
        "{{\"id\":\"{id}\",\"modified\":\"{modified}\",\"aliases\":[{}],\"summary\":\"{id}\",\
         \"affected\":[{{\"package\":{{\"ecosystem\":\"npm\",\"name\":\"left-pad\",\"purl\":\"pkg:npm/left-pad\"}},\
         \"ranges\":[{{\"type\":\"SEMVER\",\"events\":[{{\"introduced\":\"0\"}},{{\"fixed\":\"{fixed}\"}}]}}]}}]{severity}}}\n",
        aliases.join(",")
    )
}

fn build(dir: &Path, feeds: &Path, seq: &str, out: &str) {
    kit(
        dir,
        &[
            "build",
            "--channel",
            "feeds",
            "--sequence",
            seq,
            "--key",
            "signer.key.pem",
            "--feeds",
            feeds.to_str().unwrap(),
            "--out",
            out,
        ],
    )
    .ok();
}

fn json(run: stella_tests::Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn linksets_conflicts_supersession_and_matching() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, "fips", None, "signer");
    stella(
        d,
        &[
            "init",
            "--profile",
            "fips",
            "--kit-signer",
            "signer.pub.pem",
        ],
    )
    .ok();

    // Two sources about the same vulnerability, linked through the CVE alias, disagreeing on the fix and
    // on severity.
    let f1 = d.join("feeds1");
    fs::create_dir_all(&f1).unwrap();
    let high = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
    let low = "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N";
    fs::write(
        f1.join("GHSA-aaaa-bbbb-cccc.json"),
        advisory(
            "GHSA-aaaa-bbbb-cccc",
            &["CVE-2023-1111"],
            "1.3.0",
            "2023-11-01T00:00:00Z",
            Some(high),
        ),
    )
    .unwrap();
    fs::write(
        f1.join("PYSEC-2023-9.json"),
        advisory(
            "STELLA-2023-9",
            &["CVE-2023-1111"],
            "1.4.0",
            "2023-11-02T00:00:00Z",
            Some(low),
        ),
    )
    .unwrap();
    build(d, &f1, "1", "k1.kit");
    let r = json(stella(d, &["import", "--json", "k1.kit"]).ok());
    assert_eq!(r["receipt"]["counts"]["observations_new"], 2, "{r}");

    // Any alias finds the whole linkset; both statements side by side, conflicts reported, none resolved.
    for id in ["CVE-2023-1111", "ghsa-aaaa-bbbb-cccc", "STELLA-2023-9"] {
        let v = json(stella(d, &["vuln", "show", id, "--json"]).ok());
        assert_eq!(v["linkset"]["id"], "CVE-2023-1111");
        assert_eq!(v["linkset"]["statements"].as_array().unwrap().len(), 2);
        let kinds: Vec<&str> = v["linkset"]["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["fixed-version", "severity"], "{v}");
    }
    let text = stella(d, &["vuln", "show", "CVE-2023-1111"]).ok().stdout;
    assert!(text.contains("fixed-version pkg:npm/left-pad"), "{text}");
    stella(d, &["vuln", "show", "CVE-2099-0001"]).fails(2, "no statement names 'CVE-2099-0001'");

    // Matching: each source judged on its own terms.
    let m = json(stella(d, &["vuln", "affects", "pkg:npm/left-pad@1.3.5", "--json"]).ok());
    let verdicts = m[0]["verdicts"].as_array().unwrap();
    let by: Vec<(&str, &str)> = verdicts
        .iter()
        .map(|v| {
            (
                v["statement"].as_str().unwrap(),
                v["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by,
        [
            ("osv:GHSA|GHSA-aaaa-bbbb-cccc", "not-affected"),
            ("osv:STELLA|STELLA-2023-9", "affected")
        ],
        "{m}"
    );
    let none = json(stella(d, &["vuln", "affects", "pkg:npm/left-pad@1.4.0", "--json"]).ok());
    assert_eq!(none.as_array().unwrap().len(), 0);
    stella(d, &["vuln", "affects", "pkg:npm/left-pad"]).fails(2, "has no version");

    // Re-importing the same documents in a new kit adds nothing.
    build(d, &f1, "2", "k2.kit");
    let r = json(stella(d, &["import", "--json", "k2.kit"]).ok());
    assert_eq!(r["receipt"]["counts"]["observations_new"], 0);
    assert_eq!(r["receipt"]["counts"]["observations_unchanged"], 2);

    // A changed document supersedes; the old revision stays queryable.
    fs::write(
        f1.join("GHSA-aaaa-bbbb-cccc.json"),
        advisory(
            "GHSA-aaaa-bbbb-cccc",
            &["CVE-2023-1111"],
            "1.4.0",
            "2023-11-05T00:00:00Z",
            Some(high),
        ),
    )
    .unwrap();
    build(d, &f1, "3", "k3.kit");
    let r = json(stella(d, &["import", "--json", "k3.kit"]).ok());
    assert_eq!(r["receipt"]["counts"]["observations_superseded"], 1);
    let v = json(stella(d, &["vuln", "show", "CVE-2023-1111", "--json"]).ok());
    let ghsa = v["linkset"]["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "osv:GHSA|GHSA-aaaa-bbbb-cccc")
        .unwrap()
        .clone();
    assert_eq!(ghsa["revision"], 2);
    assert_eq!(ghsa["kit"], "feeds-000003");
    assert_eq!(v["superseded"].as_array().unwrap().len(), 1);
    assert_eq!(v["superseded"][0]["revision"], 1);
    // Now both sources state 1.4.0: no fixed-version conflict any more; severity still disagrees.
    let kinds: Vec<&str> = v["linkset"]["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["severity"]);

    // Per-source freshness.
    let f = json(stella(d, &["feeds", "--json"]).ok());
    let sources: Vec<&str> = f
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["osv:GHSA", "osv:STELLA"]);
    assert_eq!(f[0]["latest_kit"], "feeds-000003");
    assert_eq!(f[0]["stale"], false);
    let stale = run_env(
        "stella",
        d,
        &["feeds", "--json"],
        &[
            ("STELLA_DATA", d.join("data").to_str().unwrap()),
            ("STELLA_NOW", &(EPOCH + 100 * 86_400).to_string()),
        ],
    );
    let stale: serde_json::Value = serde_json::from_str(&stale.stdout).unwrap();
    assert_eq!(stale[0]["stale"], true, "{stale}");
    stella(d, &["fsck"]).ok();
}

#[test]
fn broken_feed_is_refused_at_build_time() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, "fips", None, "signer");
    let f = d.join("feeds");
    fs::create_dir_all(&f).unwrap();
    fs::write(
        f.join("bad.json"),
        "{\"id\": \"X-1\", \"modified\": \"yesterday\"}",
    )
    .unwrap();
    kit(
        d,
        &[
            "build",
            "--channel",
            "feeds",
            "--key",
            "signer.key.pem",
            "--feeds",
            f.to_str().unwrap(),
            "--out",
            "k.kit",
        ],
    )
    .fails(2, "feed document 'feeds/feeds/bad.json' refused");
    assert!(!d.join("k.kit").exists());
}
