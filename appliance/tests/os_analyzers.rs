#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The OS package-database analysers over the shared corpus (`../shared/corpus/pkgdb`, the alpine 3.10
//! image): counts, names and versions against the references that exist (the SLE 15 `rpm -qa` list,
//! osv-scalibr's expectations), and a mutation test that feeds truncated and bit-flipped fixtures to
//! every parser and asserts it never panics.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use appliance::scan::analyzers::{self, os, AnalyzeError};
use appliance::scan::package::{Ecosystem, Package};

/// A corpus file, or `None` (with a note) when the corpus is not checked out.
fn corpus(rel: &str) -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(rel);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("skipping {}: {e}", p.display());
            None
        }
    }
}

fn run(image_path: &str, bytes: &[u8]) -> Result<Vec<Package>, AnalyzeError> {
    assert!(os::wants(image_path), "{image_path} should be wanted");
    os::analyze(image_path, bytes).expect("an OS analyser claims the path")
}

fn name_versions(p: &[Package]) -> Vec<(&str, &str)> {
    p.iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect()
}

const DPKG: &str = "pkgdb/osv-scalibr/os/dpkg/testdata";

/// dpkg suite: the fixture read as `image_path` gives exactly these (name, version)s, in file order.
fn check_dpkg(image_path: &str, fixture: &str, want: &[(&str, &str)]) {
    let Some(bytes) = corpus(fixture) else { return };
    let got = run(image_path, &bytes).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    assert_eq!(name_versions(&got), want, "{fixture}");
    for p in &got {
        assert_eq!(p.ecosystem, Ecosystem::Deb);
        assert_eq!(p.path, image_path);
        assert_eq!(p.license, None, "dpkg records no license");
    }
}

#[test]
fn dpkg_status() {
    const S: &str = "/var/lib/dpkg/status";
    check_dpkg(
        S,
        &format!("{DPKG}/dpkg/valid"),
        &[
            ("accountsservice", "22.08.8-6"),
            ("acl", "2.3.1-3"),
            ("adduser", "3.131"),
            ("admin-session", "2023.06.26.c543406313-00"),
            ("attr", "1:2.5.1-4"),
            ("libacl1", "2.3.1-3"),
            ("util-linux-extra", "2.38.1-5+b1"),
        ],
    );
    check_dpkg(S, &format!("{DPKG}/dpkg/single"), &[("acl", "2.3.1-3")]);
    check_dpkg(
        S,
        &format!("{DPKG}/dpkg/trailingnewlines"),
        &[("acl", "2.3.1-3")],
    );
    check_dpkg(S, &format!("{DPKG}/dpkg/empty"), &[]);
    // Paragraphs without a Package or a Version are skipped, the others kept.
    check_dpkg(
        S,
        &format!("{DPKG}/dpkg/noversion"),
        &[("foo", "1.0"), ("bar", "2.0")],
    );
    check_dpkg(
        S,
        &format!("{DPKG}/dpkg/nopackage"),
        &[("foo", "1.0"), ("bar", "2.0")],
    );
    // The state (third word of Status) decides; no Status in the main file means not installed.
    check_dpkg(
        S,
        &format!("{DPKG}/dpkg/statusfield"),
        &[
            ("wantinstall_installed", "1.0"),
            ("wantdeinstall_installed", "1.0"),
            ("wantpurge_installed", "1.0"),
        ],
    );
    check_dpkg(
        S,
        &format!("{DPKG}/dpkg/transitional_dummy"),
        &[("git-core", "1:2.14.2-1")],
    );

    // Source and purl details.
    if let Some(b) = corpus(&format!("{DPKG}/dpkg/valid")) {
        let got = run(S, &b).unwrap();
        let util = got.iter().find(|p| p.name == "util-linux-extra").unwrap();
        assert_eq!(util.source.as_deref(), Some("util-linux"));
        assert_eq!(util.arch.as_deref(), Some("amd64"));
        assert_eq!(
            util.purl,
            "pkg:deb/debian/util-linux-extra@2.38.1-5%2Bb1?arch=amd64&upstream=util-linux"
        );
        let attr = got.iter().find(|p| p.name == "attr").unwrap();
        assert_eq!(attr.purl, "pkg:deb/debian/attr@1:2.5.1-4?arch=amd64");
        assert_eq!(attr.source, None);
    }

    // Garbage is an error naming the file.
    if let Some(b) = corpus(&format!("{DPKG}/dpkg/invalid")) {
        let e = run(S, &b).unwrap_err();
        assert_eq!((e.analyzer, e.path.as_str()), ("dpkg", S));
    }

    // trivy's Ubuntu status file (inside a txtar): 90 installed of 91 paragraphs.
    if let Some(b) = corpus("pkgdb/trivy/dpkg/valid.txtar") {
        let text = String::from_utf8(b).unwrap();
        let status = text.split("-- var/lib/dpkg/status --\n").nth(1).unwrap();
        let got = run(S, status.as_bytes()).unwrap();
        assert_eq!(got.len(), 90);
        let fdisk = got.iter().find(|p| p.name == "fdisk").unwrap();
        assert_eq!(fdisk.version, "2.31.1-0.4ubuntu3.1");
        assert_eq!(fdisk.source.as_deref(), Some("util-linux"));
    }
}

#[test]
fn dpkg_status_d_and_opkg() {
    // Distroless: no Status means installed; an explicit non-installed Status still excludes.
    check_dpkg(
        "/var/lib/dpkg/status.d/foo",
        &format!("{DPKG}/dpkg/status.d/foo"),
        &[("foo", "1.2.3")],
    );
    assert!(!os::wants("/var/lib/dpkg/status.d/foo.md5sums"));
    assert!(!analyzers::wants("/var/lib/dpkg/status.d/foo.md5sums", b""));

    const O: &str = "/usr/lib/opkg/status";
    check_dpkg(
        O,
        &format!("{DPKG}/opkg/valid"),
        &[
            ("ubus", "2024.10.20~252a9b0c-r1"),
            ("libuci20130104", "2023.08.10~5781664d-r1"),
            ("busybox", "1.36.1-r2"),
        ],
    );
    check_dpkg(O, &format!("{DPKG}/opkg/empty"), &[]);
    if let Some(b) = corpus(&format!("{DPKG}/opkg/invalid")) {
        assert!(run(O, &b).is_err());
    }
}

const APK: &str = "pkgdb/osv-scalibr/os/apk/testdata";

/// apk suite: the fixture gives `count` packages, the first ones being `first`.
fn check_apk(fixture: &str, count: usize, first: &[(&str, &str)]) -> Vec<Package> {
    let Some(bytes) = corpus(fixture) else {
        return Vec::new();
    };
    let got = run("/lib/apk/db/installed", &bytes).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    assert_eq!(got.len(), count, "{fixture}");
    assert_eq!(&name_versions(&got)[..first.len()], first, "{fixture}");
    assert!(got.iter().all(|p| p.ecosystem == Ecosystem::Apk));
    got
}

#[test]
fn apk_installed() {
    let alpine = check_apk(
        "images/trivy/alpine-310.extracted/lib/apk/db/installed",
        14,
        &[
            ("musl", "1.1.22-r3"),
            ("busybox", "1.30.1-r3"),
            ("alpine-baselayout", "3.1.2-r0"),
            ("alpine-keys", "2.1-r2"),
            ("libcrypto1.1", "1.1.1d-r2"),
            ("libssl1.1", "1.1.1d-r2"),
            ("ca-certificates-cacert", "20190108-r0"),
            ("libtls-standalone", "2.9.1-r0"),
            ("ssl_client", "1.30.1-r3"),
            ("zlib", "1.2.11-r1"),
            ("apk-tools", "2.10.4-r2"),
            ("scanelf", "1.2.3-r0"),
            ("musl-utils", "1.1.22-r3"),
            ("libc-utils", "0.7.1-r0"),
        ],
    );
    if let Some(ssl) = alpine.iter().find(|p| p.name == "libssl1.1") {
        assert_eq!(ssl.source.as_deref(), Some("openssl"));
        assert_eq!(ssl.license.as_deref(), Some("OpenSSL"));
        assert_eq!(
            ssl.purl,
            "pkg:apk/alpine/libssl1.1@1.1.1d-r2?arch=x86_64&upstream=openssl"
        );
    }

    let single = check_apk(
        &format!("{APK}/single"),
        1,
        &[("alpine-baselayout-data", "3.4.3-r1")],
    );
    if let Some(p) = single.first() {
        assert_eq!(p.source.as_deref(), Some("alpine-baselayout"));
        assert_eq!(p.license.as_deref(), Some("GPL-2.0-only"));
        assert_eq!(p.arch.as_deref(), Some("x86_64"));
    }
    let noarch = check_apk(&format!("{APK}/different-arch"), 1, &[]);
    assert!(noarch.iter().all(|p| p.arch.as_deref() == Some("noarch")));
    let no_origin = check_apk(&format!("{APK}/no-origin"), 1, &[("pkgname", "1.2.3")]);
    if let Some(p) = no_origin.first() {
        assert_eq!(p.source, None);
        assert_eq!(p.purl, "pkg:apk/alpine/pkgname@1.2.3?arch=x86_64");
    }
    check_apk(
        &format!("{APK}/installed"),
        15,
        &[("alpine-baselayout", "3.4.3-r1")],
    );
    check_apk(&format!("{APK}/empty"), 0, &[]);
    // trivy's fixture has 16 records, one without a version.
    check_apk("pkgdb/trivy/apk/installed", 15, &[("musl", "1.1.14-r10")]);
    if let Some(b) = corpus(&format!("{APK}/invalid")) {
        let e = run("/lib/apk/db/installed", &b).unwrap_err();
        assert_eq!(e.analyzer, "apk");
    }
}

/// rpm suite: the fixture read as `image_path` gives `count` packages, among them these
/// (name, `[epoch:]version-release`, arch, purl).
fn check_rpm(
    image_path: &str,
    fixture: &str,
    count: usize,
    some: &[(&str, &str, &str, &str)],
) -> Vec<Package> {
    let Some(bytes) = corpus(fixture) else {
        return Vec::new();
    };
    let got = run(image_path, &bytes).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    assert_eq!(got.len(), count, "{fixture}");
    for (name, version, arch, purl) in some {
        let p = got
            .iter()
            .find(|p| p.name == *name)
            .unwrap_or_else(|| panic!("{fixture}: no {name}"));
        assert_eq!(
            (p.version.as_str(), p.arch.as_deref(), p.purl.as_str()),
            (*version, Some(*arch), *purl),
            "{fixture}: {name}"
        );
    }
    assert!(got
        .iter()
        .all(|p| p.ecosystem == Ecosystem::Rpm && p.name != "gpg-pubkey"));
    got
}

#[test]
fn rpm_ndb_matches_rpm_qa() {
    let got = check_rpm(
        "/usr/lib/sysimage/rpm/Packages.db",
        "pkgdb/go-rpmdb/sle15-bci/Packages.db",
        35,
        &[(
            "glibc",
            "2.31-9.3.2",
            "x86_64",
            "pkg:rpm/redhat/glibc@2.31-9.3.2?arch=x86_64",
        )],
    );
    let Some(expected) = corpus("pkgdb/go-rpmdb/sle15-bci/expected-rpm-qa.json") else {
        return;
    };
    let expected: serde_json::Value = serde_json::from_slice(&expected).unwrap();
    let want: Vec<(String, String, Option<String>, Option<String>)> = expected["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_owned();
            let version = match p["epoch"].as_u64() {
                Some(e) if e > 0 => format!("{e}:{}-{}", s("version"), s("release")),
                _ => format!("{}-{}", s("version"), s("release")),
            };
            let srpm = s("sourcerpm");
            let src = srpm
                .strip_suffix(".src.rpm")
                .and_then(|x| x.rsplitn(3, '-').nth(2))
                .map(str::to_owned)
                .filter(|x| *x != s("name"));
            (s("name"), version, Some(s("arch")), src)
        })
        .collect();
    // Every package, exact NEVRA, in `rpm -qa` order; licenses too.
    let have: Vec<_> = got
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                p.arch.clone(),
                p.source.clone(),
            )
        })
        .collect();
    assert_eq!(have, want);
    for (p, e) in got.iter().zip(expected["packages"].as_array().unwrap()) {
        assert_eq!(p.license.as_deref(), e["license"].as_str(), "{}", p.name);
    }
}

#[test]
fn rpm_sqlite() {
    // 129 rows in the Packages table (cross-checked with SQLite itself when the test was written);
    // curl as go-rpmdb's test states it.
    let got = check_rpm(
        "/var/lib/rpm/rpmdb.sqlite",
        "pkgdb/go-rpmdb/cbl-mariner-2.0/rpmdb.sqlite",
        129,
        &[
            (
                "curl",
                "7.76.0-6.cm2",
                "x86_64",
                "pkg:rpm/redhat/curl@7.76.0-6.cm2?arch=x86_64",
            ),
            (
                "ca-certificates-base",
                "1:2.0.0-1.cm2",
                "noarch",
                "pkg:rpm/redhat/ca-certificates-base@2.0.0-1.cm2?arch=noarch&epoch=1",
            ),
        ],
    );
    if let (Some(first), Some(last)) = (got.first(), got.last()) {
        assert_eq!(
            (first.name.as_str(), last.name.as_str()),
            ("mariner-release", "sqlite")
        );
    }
    if let Some(curl) = got.iter().find(|p| p.name == "curl") {
        assert_eq!(curl.license.as_deref(), Some("MIT"));
    }
    for bad in [
        "pkgdb/osv-scalibr/os/rpm/testdata/empty.sqlite",
        "pkgdb/osv-scalibr/os/rpm/testdata/invalid",
    ] {
        if let Some(b) = corpus(bad) {
            let e = run("/var/lib/rpm/rpmdb.sqlite", &b).unwrap_err();
            assert_eq!(e.analyzer, "rpm", "{bad}");
        }
    }
}

#[test]
fn rpm_berkeley_db() {
    let uuid = check_rpm(
        "/var/lib/rpm/Packages",
        "pkgdb/go-rpmdb/libuuid/Packages",
        1,
        &[(
            "libuuid",
            "2.32.1-42.el8_8",
            "x86_64",
            "pkg:rpm/redhat/libuuid@2.32.1-42.el8_8?arch=x86_64",
        )],
    );
    if let Some(p) = uuid.first() {
        assert_eq!(p.source.as_deref(), Some("util-linux"));
        assert_eq!(p.license.as_deref(), Some("BSD"));
    }
    check_rpm(
        "/var/lib/rpm/Packages",
        "pkgdb/osv-scalibr/os/rpm/testdata/Packages_epoch",
        1,
        &[(
            "hello",
            "1:0.0.1-rls",
            "x86_64",
            "pkg:rpm/redhat/hello@0.0.1-rls?arch=x86_64&epoch=1",
        )],
    );
    if let Some(b) = corpus("pkgdb/osv-scalibr/os/rpm/testdata/invalid") {
        assert!(run("/var/lib/rpm/Packages", &b).is_err());
        assert!(run("/var/lib/rpm/Packages.db", &b).is_err());
    }
}

#[test]
fn dispatch_through_the_analyzers_entry_point() {
    let Some(b) = corpus("images/trivy/alpine-310.extracted/lib/apk/db/installed") else {
        return;
    };
    assert!(analyzers::wants("/lib/apk/db/installed", &b[..64]));
    let r = analyzers::analyze("/lib/apk/db/installed", &b, None).unwrap();
    assert_eq!(r.packages.len(), 14);
    assert!(!os::wants("/var/lib/rpm/Basenames"));
    assert!(os::analyze("/etc/passwd", b"root:x:0:0").is_none());
}

/// A deterministic xorshift, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Feeds truncations and bit flips of a fixture to its analyser; none may panic.
fn check_mutations(image_path: &str, fixture: &str, seed: u64) {
    let Some(orig) = corpus(fixture) else { return };
    let mut rng = Rng(seed);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    let len = orig.len();
    let mut cuts = vec![
        0, 1, 4, 8, 15, 16, 31, 32, 99, 100, 511, 512, 4095, 4096, 4097,
    ];
    cuts.extend((1..24).map(|i| len * i / 24));
    cuts.push(len.saturating_sub(1));
    for c in cuts.into_iter().filter(|c| *c <= len) {
        inputs.push(orig[..c].to_vec());
    }
    for round in 0..160 {
        let mut m = orig.clone();
        // Concentrate on the first pages, where headers, slots and b-tree roots live.
        let span = if round % 2 == 0 { len.min(16384) } else { len };
        for _ in 0..1 + round % 4 {
            let at = rng.below(span);
            if round % 5 == 0 {
                // Overwrite an aligned word with an extreme value.
                let at = at & !3;
                let v = [0u32, 1, 0xffff_ffff, 0x7fff_ffff, 0x8000][rng.below(5)];
                if let Some(w) = m.get_mut(at..at + 4) {
                    w.copy_from_slice(&v.to_le_bytes());
                }
            } else if let Some(b) = m.get_mut(at) {
                *b ^= 1 << rng.below(8);
            }
        }
        inputs.push(m);
    }
    for (i, input) in inputs.iter().enumerate() {
        let r = catch_unwind(AssertUnwindSafe(|| os::analyze(image_path, input)));
        assert!(r.is_ok(), "{fixture}: mutation {i} panicked");
    }
}

#[test]
fn mutated_databases_never_panic() {
    for (seed, (path, fixture)) in [
        (
            "/var/lib/dpkg/status",
            "pkgdb/osv-scalibr/os/dpkg/testdata/dpkg/valid",
        ),
        (
            "/var/lib/dpkg/status.d/foo",
            "pkgdb/osv-scalibr/os/dpkg/testdata/dpkg/status.d/foo",
        ),
        (
            "/usr/lib/opkg/status",
            "pkgdb/osv-scalibr/os/dpkg/testdata/opkg/valid",
        ),
        (
            "/lib/apk/db/installed",
            "pkgdb/osv-scalibr/os/apk/testdata/installed",
        ),
        (
            "/lib/apk/db/installed",
            "images/trivy/alpine-310.extracted/lib/apk/db/installed",
        ),
        (
            "/var/lib/rpm/Packages.db",
            "pkgdb/go-rpmdb/sle15-bci/Packages.db",
        ),
        (
            "/var/lib/rpm/rpmdb.sqlite",
            "pkgdb/go-rpmdb/cbl-mariner-2.0/rpmdb.sqlite",
        ),
        ("/var/lib/rpm/Packages", "pkgdb/go-rpmdb/libuuid/Packages"),
        (
            "/var/lib/rpm/Packages",
            "pkgdb/osv-scalibr/os/rpm/testdata/Packages_epoch",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        check_mutations(path, fixture, 0x9e37_79b9_7f4a_7c15 ^ seed as u64);
    }
}
