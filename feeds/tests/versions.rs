#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Version ordering against third-party test vectors in `../shared/corpus/versions`:
//! osv-scalibr's per-ecosystem comparison fixtures, rpm's own `rpmvercmp.at` cases and
//! osv.dev's Packagist cases. Every case is checked in both directions, and the number of
//! cases per file is asserted so a fixture that silently shrinks shows.
//!
//! Skipped fixtures: `cran-*`, `hackage-*` and `pub-*` (no such scheme in the appliance).

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use feeds::version::{in_range, Scheme, VersionError};
use feeds::RangeEvent;

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/versions");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: version corpus not found at {}", dir.display());
        None
    }
}

/// One comparison case: `a`, the expected order of `a` against `b`, and `b`.
struct Case {
    line: usize,
    a: String,
    expected: Ordering,
    b: String,
}

/// Reads `A < B` / `A = B` / `A > B` lines (osv-scalibr, osv.dev) or
/// `RPMVERCMP(a, b, -1|0|1)` lines (rpm); blank lines and `#` or `//` comments are skipped.
fn cases(text: &str) -> Vec<Case> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
            continue;
        }
        if let Some(args) = line
            .strip_prefix("RPMVERCMP(")
            .and_then(|l| l.strip_suffix(')'))
        {
            let fields: Vec<&str> = args.split(", ").collect();
            assert_eq!(fields.len(), 3, "line {line_no}: {line}");
            let expected = match fields[2] {
                "-1" => Ordering::Less,
                "0" => Ordering::Equal,
                "1" => Ordering::Greater,
                other => panic!("line {line_no}: unknown result {other}"),
            };
            out.push(Case {
                line: line_no,
                a: fields[0].to_owned(),
                expected,
                b: fields[1].to_owned(),
            });
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "line {line_no}: {line}");
        let expected = match fields[1] {
            "<" => Ordering::Less,
            "=" => Ordering::Equal,
            ">" => Ordering::Greater,
            other => panic!("line {line_no}: unknown comparator {other}"),
        };
        out.push(Case {
            line: line_no,
            a: fields[0].to_owned(),
            expected,
            b: fields[2].to_owned(),
        });
    }
    out
}

/// Checks every case of `file` in `scheme`, both ways round; returns the number of cases.
/// Each version is parsed once per line.
fn check(scheme: Scheme, file: &Path) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    let cases = cases(&text);
    let name = file.file_name().unwrap().to_string_lossy();
    let mut failures = Vec::new();
    for case in &cases {
        let parsed = scheme
            .parse(&case.a)
            .and_then(|a| Ok((a, scheme.parse(&case.b)?)));
        match parsed {
            Err(e) => failures.push(format!("{name}:{}: {e}", case.line)),
            Ok((a, b)) => {
                let (forward, backward) = (a.cmp(&b), b.cmp(&a));
                if forward != case.expected || backward != case.expected.reverse() {
                    failures.push(format!(
                        "{name}:{}: expected {} {:?} {}, got {forward:?} (and {backward:?} reversed)",
                        case.line, case.a, case.expected, case.b
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{scheme}: {} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    cases.len()
}

/// Runs `check` over `files` (relative to the corpus) and asserts the case count of each.
fn check_files(scheme: Scheme, files: &[(&str, usize)]) {
    let Some(dir) = corpus() else { return };
    let mut total = 0;
    let mut names = Vec::new();
    for (file, expected) in files {
        let count = check(scheme, &dir.join(file));
        assert_eq!(count, *expected, "{scheme}: case count of {file}");
        total += count;
        names.push(file.rsplit('/').next().unwrap_or(file));
    }
    eprintln!("{scheme}: {total}/{total} ({})", names.join(", "));
}

const SCALIBR: &str = "osv-scalibr/semantic/testdata";

#[test]
fn dpkg() {
    check_files(
        Scheme::Dpkg,
        &[
            (&format!("{SCALIBR}/debian-versions.txt"), 30),
            (&format!("{SCALIBR}/debian-versions-generated.txt"), 14442),
        ],
    );
}

#[test]
fn rpm() {
    check_files(
        Scheme::Rpm,
        &[
            (&format!("{SCALIBR}/redhat-versions.txt"), 165),
            ("rpm/rpmvercmp.at.cases.txt", 91),
        ],
    );
}

#[test]
fn apk() {
    check_files(
        Scheme::Apk,
        &[
            (&format!("{SCALIBR}/alpine-versions.txt"), 778),
            (&format!("{SCALIBR}/alpine-versions-generated.txt"), 13979),
        ],
    );
}

#[test]
fn semver() {
    check_files(
        Scheme::Semver,
        &[(&format!("{SCALIBR}/semver-versions.txt"), 86)],
    );
}

#[test]
fn go() {
    check_files(
        Scheme::Go,
        &[(&format!("{SCALIBR}/semver-versions.txt"), 86)],
    );
}

#[test]
fn pep440() {
    check_files(
        Scheme::Pep440,
        &[
            (&format!("{SCALIBR}/pypi-versions.txt"), 37),
            (&format!("{SCALIBR}/pypi-versions-generated.txt"), 12375),
        ],
    );
}

#[test]
fn maven() {
    check_files(
        Scheme::Maven,
        &[
            (&format!("{SCALIBR}/maven-versions.txt"), 102),
            (&format!("{SCALIBR}/maven-versions-generated.txt"), 14752),
        ],
    );
}

#[test]
fn nuget() {
    check_files(
        Scheme::NuGet,
        &[(&format!("{SCALIBR}/nuget-versions.txt"), 35)],
    );
}

#[test]
fn rubygems() {
    check_files(
        Scheme::RubyGems,
        &[
            (&format!("{SCALIBR}/rubygems-versions.txt"), 25),
            (&format!("{SCALIBR}/rubygems-versions-generated.txt"), 4098),
        ],
    );
}

#[test]
fn packagist() {
    check_files(
        Scheme::Packagist,
        &[
            (&format!("{SCALIBR}/packagist-versions.txt"), 95),
            (
                &format!("{SCALIBR}/packagist-versions-generated.txt"),
                10630,
            ),
            ("osv.dev/packagist_test_cases.txt", 85),
        ],
    );
}

fn introduced(v: &str) -> RangeEvent {
    RangeEvent::Introduced(v.to_owned())
}

fn fixed(v: &str) -> RangeEvent {
    RangeEvent::Fixed(v.to_owned())
}

fn last_affected(v: &str) -> RangeEvent {
    RangeEvent::LastAffected(v.to_owned())
}

fn limit(v: &str) -> RangeEvent {
    RangeEvent::Limit(v.to_owned())
}

#[test]
fn in_range_introduced_fixed() {
    let events = [introduced("1.2.0"), fixed("1.2.5")];
    let cases = [
        ("1.1.9", false),
        ("1.2.0-rc.1", false),
        ("1.2.0", true),
        ("1.2.4", true),
        ("1.2.5-beta", true),
        ("1.2.5", false),
        ("2.0.0", false),
    ];
    for (v, expected) in cases {
        assert_eq!(in_range(Scheme::Semver, v, &events), Ok(expected), "{v}");
    }
}

#[test]
fn in_range_introduced_zero_and_several_intervals() {
    // Events in the source's order, not sorted: the evaluation sorts them.
    let events = [
        introduced("2:1.0-1"),
        fixed("1:2.0-1"),
        introduced("0"),
        fixed("1:1.5-1~deb11u1"),
    ];
    let cases = [
        ("0.1", true),
        ("1:1.5-1~deb11u1", false),
        ("1:1.5-1", false),
        ("1:1.9", false),
        ("1:2.0-1", false),
        ("2:0.9", false),
        ("2:1.0-1", true),
        ("3:0", true),
    ];
    for (v, expected) in cases {
        assert_eq!(in_range(Scheme::Dpkg, v, &events), Ok(expected), "{v}");
    }
}

#[test]
fn in_range_last_affected_and_limit() {
    let events = [introduced("0"), last_affected("1.4.2")];
    assert_eq!(in_range(Scheme::Pep440, "1.4.2", &events), Ok(true));
    assert_eq!(in_range(Scheme::Pep440, "1.4.2.post1", &events), Ok(false));
    assert_eq!(in_range(Scheme::Pep440, "1.4.3rc1", &events), Ok(false));

    let events = [introduced("1.0"), limit("2.0")];
    assert_eq!(in_range(Scheme::Maven, "1.5", &events), Ok(true));
    assert_eq!(in_range(Scheme::Maven, "2.0.0", &events), Ok(false));

    // An interval that opens and closes at the same version affects nothing.
    let events = [fixed("1.0"), introduced("1.0")];
    assert_eq!(in_range(Scheme::Rpm, "1.0", &events), Ok(false));

    let events = [
        RangeEvent::IntroducedAfter("v1.2.0".to_owned()),
        RangeEvent::Below("v1.3.0".to_owned()),
    ];
    assert_eq!(in_range(Scheme::Go, "v1.2.0", &events), Ok(false));
    assert_eq!(in_range(Scheme::Go, "v1.2.1", &events), Ok(true));
    assert_eq!(
        in_range(Scheme::Go, "v1.3.0-0.20230101000000-abcdefabcdef", &events),
        Ok(true)
    );
    assert_eq!(in_range(Scheme::Go, "v1.3.0", &events), Ok(false));
    assert_eq!(in_range(Scheme::Semver, "1.0.0", &[]), Ok(false));
}

#[test]
fn in_range_refuses_bad_event_version() {
    let events = [introduced("0"), fixed("1.2.3-not-a-debian:version!@#$")];
    let err = in_range(Scheme::Dpkg, "1.0", &events).unwrap_err();
    assert_eq!(err.code(), "invalid-version");
    assert!(matches!(
        &err,
        VersionError::Invalid { scheme: Scheme::Dpkg, version, .. }
            if version == "1.2.3-not-a-debian:version!@#$"
    ));
}

#[test]
fn invalid_versions_are_refused() {
    let cases = [
        (
            Scheme::Dpkg,
            "1.2.3-not-a-debian:version!@#$",
            "epoch '1.2.3-not-a-debian' is not a number",
        ),
        (
            Scheme::Dpkg,
            "abc",
            "upstream version does not start with a digit",
        ),
        (Scheme::Dpkg, "1.0-", "empty revision after '-'"),
        (
            Scheme::Dpkg,
            "1.0_1",
            "invalid character '_' in upstream version",
        ),
        (Scheme::Rpm, "", "empty version"),
        (Scheme::Apk, "1.0 r1", "contains ' '"),
        (Scheme::Semver, "1.2.x", "'x' is not a version number"),
        (Scheme::Semver, "1.2.3-", "empty pre-release identifier"),
        (
            Scheme::Semver,
            "1.2.3+b@d",
            "invalid character '@' in build metadata",
        ),
        (Scheme::Go, "latest", "'latest' is not a version number"),
        (Scheme::NuGet, "1.2.3.4.5", "more than four version numbers"),
        (Scheme::NuGet, "1.2-beta..1", "empty pre-release label"),
        (Scheme::RubyGems, "1.2.3-", "invalid pre-release part ''"),
        (Scheme::RubyGems, "beta", "does not start with a digit"),
        (Scheme::Pep440, " ", "empty version"),
        (Scheme::Maven, "1.0\n", "contains '\\n'"),
        (Scheme::Packagist, "...", "no version parts"),
    ];
    for (scheme, version, reason) in cases {
        let err = scheme.parse(version).unwrap_err();
        assert_eq!(
            err,
            VersionError::Invalid {
                scheme,
                version: version.to_owned(),
                reason: reason.to_owned(),
            },
            "{scheme} {version:?}"
        );
        assert!(err.to_string().starts_with(&format!("{scheme} version '")));
    }
    assert_eq!(
        "cran".parse::<Scheme>(),
        Err(VersionError::UnknownScheme("cran".to_owned()))
    );
}

#[test]
fn schemes_for_ecosystems_and_purl_types() {
    let ecosystems = [
        ("Debian:12", Some(Scheme::Dpkg)),
        ("Ubuntu:22.04:LTS", Some(Scheme::Dpkg)),
        ("Red Hat", Some(Scheme::Rpm)),
        ("Rocky Linux:9", Some(Scheme::Rpm)),
        ("AlmaLinux:8", Some(Scheme::Rpm)),
        ("openSUSE", Some(Scheme::Rpm)),
        ("SUSE:Linux Enterprise Server 15", Some(Scheme::Rpm)),
        ("Alpine:v3.19", Some(Scheme::Apk)),
        ("Wolfi", Some(Scheme::Apk)),
        ("Chainguard", Some(Scheme::Apk)),
        ("npm", Some(Scheme::Semver)),
        ("crates.io", Some(Scheme::Semver)),
        ("PyPI", Some(Scheme::Pep440)),
        ("Maven", Some(Scheme::Maven)),
        ("Go", Some(Scheme::Go)),
        ("NuGet", Some(Scheme::NuGet)),
        ("RubyGems", Some(Scheme::RubyGems)),
        ("Packagist", Some(Scheme::Packagist)),
        ("CRAN", None),
        ("GIT", None),
    ];
    for (ecosystem, scheme) in ecosystems {
        assert_eq!(Scheme::for_ecosystem(ecosystem), scheme, "{ecosystem}");
    }
    let purls = [
        ("deb", Scheme::Dpkg),
        ("rpm", Scheme::Rpm),
        ("apk", Scheme::Apk),
        ("npm", Scheme::Semver),
        ("cargo", Scheme::Semver),
        ("pypi", Scheme::Pep440),
        ("maven", Scheme::Maven),
        ("golang", Scheme::Go),
        ("nuget", Scheme::NuGet),
        ("gem", Scheme::RubyGems),
        ("composer", Scheme::Packagist),
    ];
    for (purl_type, scheme) in purls {
        assert_eq!(
            Scheme::for_purl_type(purl_type),
            Some(scheme),
            "{purl_type}"
        );
    }
    assert_eq!(Scheme::for_purl_type("generic"), None);
}

#[test]
fn versions_sort_within_a_scheme() {
    let mut versions: Vec<_> = ["1.10.0", "1.2.0", "1.2.0-rc.1", "v1.9.9"]
        .into_iter()
        .map(|v| Scheme::Semver.parse(v).unwrap())
        .collect();
    versions.sort();
    let sorted: Vec<&str> = versions.iter().map(|v| v.as_str()).collect();
    assert_eq!(sorted, ["1.2.0-rc.1", "1.2.0", "v1.9.9", "1.10.0"]);
    assert_eq!(
        Scheme::Maven.parse("1.0").unwrap(),
        Scheme::Maven.parse("1.0.0.ga").unwrap()
    );
    assert_eq!(
        Scheme::NuGet.compare("1.0.0-BETA", "1.0.0-beta"),
        Ok(Ordering::Equal)
    );
}

#[test]
fn odd_input_never_panics() {
    let odd = [
        "",
        " ",
        "-",
        ".",
        "..",
        ":",
        "~",
        "^",
        "+",
        "_",
        "-r",
        "1-",
        "1:",
        ":1",
        "v",
        "V",
        "1.0-",
        "1..0",
        "!",
        "1!",
        "1!!1",
        "1+",
        "1.0+",
        "é",
        "1.0é",
        "1é.2",
        "é1",
        "0x10",
        "1-r-r-r",
        "1_",
        "1_pre_",
        "1~",
        "1~g",
        "1.0.",
        "99999999999999999999999999999999",
        "1\u{0}",
        "1.2.3-α.β",
        "1^~",
        "~1",
        "1--1",
        "1.-1",
        "-1",
        "1a1b1c1",
        "a.b.c",
    ];
    for scheme in Scheme::ALL {
        let parsed: Vec<_> = odd.iter().filter_map(|v| scheme.parse(v).ok()).collect();
        for a in &parsed {
            for b in &parsed {
                assert_eq!(a.cmp(b), b.cmp(a).reverse(), "{scheme}: {a} vs {b}");
            }
        }
    }
}
