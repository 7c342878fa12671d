#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Language-ecosystem analysers over the shared corpus (`shared/corpus/pkgdb`, upstream scanner
//! fixtures) and over binaries and archives built here from the formats' specifications.
//!
//! Each suite has one `check` helper: the file is offered to the analysers at an image path, as the
//! layer walker would, and the packages found are compared as `(name, version, purl)` triples.

use appliance::scan::analyzers::{
    analyze, analyze_executable, is_executable, wants, AnalyzeError, FileAccess, FileResult,
};
use appliance::scan::package::{Ecosystem, Package};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

fn corpus() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/pkgdb"
    ));
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping corpus cases: {} is absent", p.display());
        None
    }
}

fn fixture(rel: &str) -> Option<Vec<u8>> {
    let root = corpus()?;
    match std::fs::read(root.join(rel)) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("skipping {rel}: {e}");
            None
        }
    }
}

/// Analyses `bytes` at `image_path` as the walker does; an executable also through random access over a
/// temporary file (the walker's path for large ones), which must give the same result.
fn analyze_both(image_path: &str, bytes: &[u8]) -> Result<FileResult, AnalyzeError> {
    let whole = analyze(image_path, bytes, None);
    if is_executable(image_path, &bytes[..bytes.len().min(512)]) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        let on_disk = analyze_executable(image_path, &FileAccess::new(f, bytes.len() as u64));
        assert_eq!(on_disk, whole, "{image_path}: read from disk");
    }
    whole
}

/// Offers `bytes` at `image_path` and returns the packages, sorted by purl; panics on an analyser error.
fn run(image_path: &str, bytes: &[u8]) -> Vec<Package> {
    let head = &bytes[..bytes.len().min(512)];
    assert!(wants(image_path, head), "{image_path} not wanted");
    let mut pkgs = analyze_both(image_path, bytes)
        .unwrap_or_else(|e| panic!("{image_path}: {e}"))
        .packages;
    pkgs.sort_by(|a, b| a.purl.cmp(&b.purl).then(a.path.cmp(&b.path)));
    pkgs
}

/// The suite-wide check: exactly these `(name, version, purl)` triples, in any order, with the given
/// ecosystem.
fn check(image_path: &str, bytes: &[u8], ecosystem: Ecosystem, want: &[(&str, &str, &str)]) {
    let pkgs = run(image_path, bytes);
    let mut got: Vec<(String, String, String)> = pkgs
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), p.purl.clone()))
        .collect();
    got.sort();
    let mut want: Vec<(String, String, String)> = want
        .iter()
        .map(|(n, v, p)| (n.to_string(), v.to_string(), p.to_string()))
        .collect();
    want.sort();
    assert_eq!(got, want, "{image_path}");
    for p in &pkgs {
        assert_eq!(p.ecosystem, ecosystem, "{image_path}: {p:?}");
        assert!(p.path.starts_with(image_path), "{image_path}: {p:?}");
        assert!(p.arch.is_none());
    }
}

fn check_fixture(rel: &str, image_path: &str, ecosystem: Ecosystem, want: &[(&str, &str, &str)]) {
    if let Some(bytes) = fixture(rel) {
        check(image_path, &bytes, ecosystem, want);
    }
}

fn expect_error(image_path: &str, bytes: &[u8]) {
    let err = analyze_both(image_path, bytes).expect_err(image_path);
    assert_eq!(err.path, image_path);
}

// ---------------------------------------------------------------------------------------------- npm

const LOCKS: &str = "osv-scalibr/language/javascript/packagelockjson/testdata";

#[test]
fn npm_lockfiles() {
    let lock = |name: &str, want: &[(&str, &str, &str)]| {
        check_fixture(
            &format!("{LOCKS}/{name}"),
            "/app/package-lock.json",
            Ecosystem::Npm,
            want,
        )
    };
    let wrappy = ("wrappy", "1.0.2", "pkg:npm/wrappy@1.0.2");
    let supports = ("supports-color", "5.5.0", "pkg:npm/supports-color@5.5.0");
    for v in ["v1", "v2"] {
        lock(&format!("one-package.{v}.json"), &[wrappy]);
        lock(&format!("one-package-dev.{v}.json"), &[wrappy]);
        lock(&format!("two-packages.{v}.json"), &[wrappy, supports]);
        lock(&format!("optional-package.{v}.json"), &[wrappy, supports]);
        lock(&format!("empty.{v}.json"), &[]);
        lock(
            &format!("scoped-packages.{v}.json"),
            &[
                wrappy,
                (
                    "@babel/code-frame",
                    "7.0.0",
                    "pkg:npm/%40babel/code-frame@7.0.0",
                ),
            ],
        );
        lock(
            &format!("nested-dependencies.{v}.json"),
            &[
                ("postcss", "6.0.23", "pkg:npm/postcss@6.0.23"),
                ("postcss", "7.0.16", "pkg:npm/postcss@7.0.16"),
                ("postcss-calc", "7.0.1", "pkg:npm/postcss-calc@7.0.1"),
                supports,
                ("supports-color", "6.1.0", "pkg:npm/supports-color@6.1.0"),
            ],
        );
        // Aliases install a package under another directory name; the real name is reported.
        lock(
            &format!("alias.{v}.json"),
            &[
                (
                    "@babel/code-frame",
                    "7.0.0",
                    "pkg:npm/%40babel/code-frame@7.0.0",
                ),
                ("string-width", "4.2.0", "pkg:npm/string-width@4.2.0"),
                ("string-width", "5.1.2", "pkg:npm/string-width@5.1.2"),
            ],
        );
        // The same package at several places in the tree is one package.
        lock(
            &format!("same-package-different-groups.{v}.json"),
            &[
                ("ajv", "5.5.2", "pkg:npm/ajv@5.5.2"),
                ("eslint", "1.2.3", "pkg:npm/eslint@1.2.3"),
                ("table", "1.0.0", "pkg:npm/table@1.0.0"),
            ],
        );
    }
    // Local `file:` packages and workspace directories are not registry packages.
    lock(
        "files.v1.json",
        &[("lodash", "1.3.1", "pkg:npm/lodash@1.3.1")],
    );
    lock(
        "files.v2.json",
        &[
            ("abbrev", "1.0.9", "pkg:npm/abbrev@1.0.9"),
            ("abbrev", "2.3.4", "pkg:npm/abbrev@2.3.4"),
        ],
    );
    lock(
        "bundled-dependencies.v3.json",
        &[
            ("ansi-regex", "6.2.2", "pkg:npm/ansi-regex@6.2.2"),
            ("semver", "7.7.2", "pkg:npm/semver@7.7.2"),
            ("strip-ansi", "7.1.2", "pkg:npm/strip-ansi@7.1.2"),
        ],
    );
    lock(
        "npm-shrinkwrap-only/npm-shrinkwrap.json",
        &[wrappy, supports],
    );

    if let Some(b) = fixture(&format!("{LOCKS}/nested-dependencies-dup.v1.json")) {
        assert_eq!(run("/app/package-lock.json", &b).len(), 39);
    }
    if let Some(b) = fixture(&format!("{LOCKS}/nested-dependencies-dup.v2.json")) {
        assert_eq!(run("/app/package-lock.json", &b).len(), 2);
    }
    // Git dependencies: v1 states the commit, v2 the version from the package's own manifest.
    if let Some(b) = fixture(&format!("{LOCKS}/commits.v1.json")) {
        let pkgs = run("/app/package-lock.json", &b);
        assert_eq!(pkgs.len(), 15);
        assert!(pkgs
            .iter()
            .any(|p| p.name == "is-number-2"
                && p.version == "d5ac0584ee9ae7bd9288220a39780f155b9ad4c8"));
    }
    if let Some(b) = fixture(&format!("{LOCKS}/commits.v2.json")) {
        // raven-js has no version; is-number-1 and -2 appear twice with the same version.
        assert_eq!(run("/app/package-lock.json", &b).len(), 11);
    }
    if let Some(b) = fixture(&format!("{LOCKS}/not-json.txt")) {
        expect_error("/app/package-lock.json", &b);
    }
    if let Some(b) = fixture(&format!("{LOCKS}/null.v2.jsontest")) {
        expect_error("/app/package-lock.json", &b);
    }
}

#[test]
fn npm_installed_packages() {
    let scoped = br#"{"name":"@types/node","version":"20.1.0","license":"MIT"}"#;
    check(
        "/app/node_modules/@types/node/package.json",
        scoped,
        Ecosystem::Npm,
        &[("@types/node", "20.1.0", "pkg:npm/%40types/node@20.1.0")],
    );
    let p = run("/app/node_modules/@types/node/package.json", scoped);
    assert_eq!(p[0].license.as_deref(), Some("MIT"));
    let nested = br#"{"name":"ms","version":"2.1.3","license":{"type":"MIT"}}"#;
    check(
        "/usr/lib/node_modules/npm/node_modules/debug/node_modules/ms/package.json",
        nested,
        Ecosystem::Npm,
        &[("ms", "2.1.3", "pkg:npm/ms@2.1.3")],
    );
    // A manifest without both name and version is not a package.
    check(
        "/app/node_modules/stub/package.json",
        br#"{"name":"stub"}"#,
        Ecosystem::Npm,
        &[],
    );
    check(
        "/app/node_modules/stub/package.json",
        b"[1,2]",
        Ecosystem::Npm,
        &[],
    );
    // Files deeper inside a package, lockfiles inside dependencies and the project's own manifest are
    // not offered.
    assert!(!wants("/app/node_modules/ms/dist/package.json", b"{"));
    assert!(!wants("/app/node_modules/.package-lock.json", b"{"));
    assert!(!wants("/app/package.json", b"{"));
}

// ------------------------------------------------------------------------------------------- python

const WHEELEGG: &str = "osv-scalibr/language/python/wheelegg/testdata";

#[test]
fn python_metadata() {
    let site = "/usr/local/lib/python3.11/site-packages";
    let meta = |fixture: &str, image: &str, want: (&str, &str, &str), license: Option<&str>| {
        let Some(b) = self::fixture(&format!("{WHEELEGG}/{fixture}")) else {
            return;
        };
        check(image, &b, Ecosystem::Pypi, &[want]);
        assert_eq!(run(image, &b)[0].license.as_deref(), license, "{fixture}");
    };
    meta(
        "distinfo_meta",
        &format!("{site}/pip-22.2.2.dist-info/METADATA"),
        ("pip", "22.2.2", "pkg:pypi/pip@22.2.2"),
        Some("MIT"),
    );
    meta(
        "egginfo_pkginfo",
        &format!("{site}/setuptools-57.4.0-py3.9.egg/EGG-INFO/PKG-INFO"),
        ("setuptools", "57.4.0", "pkg:pypi/setuptools@57.4.0"),
        None,
    );
    meta(
        "egginfo",
        "/usr/lib/python3/dist-packages/pycups-2.0.1.egg-info",
        ("pycups", "2.0.1", "pkg:pypi/pycups@2.0.1"),
        Some("GPLv2+"),
    );
    meta(
        "pkginfo",
        &format!("{site}/httplib2-0.20.4.egg-info/PKG-INFO"),
        ("httplib2", "0.20.4", "pkg:pypi/httplib2@0.20.4"),
        Some("MIT"),
    );
    meta(
        "malformed_pkginfo",
        &format!("{site}/passlib-1.7.4.egg-info/PKG-INFO"),
        ("passlib", "1.7.4", "pkg:pypi/passlib@1.7.4"),
        Some("BSD"),
    );
    // Header names are case-insensitive.
    meta(
        "mixed_case",
        &format!("{site}/httplib2-1.0.dist-info/METADATA"),
        ("httplib2", "1.0", "pkg:pypi/httplib2@1.0"),
        None,
    );
    // PEP 503 normalisation in the purl; the name as stated.
    meta(
        "special_chars",
        &format!("{site}/backports.ssl_match_hostname-3.5.0.1.dist-info/METADATA"),
        (
            "backports.ssl_match_hostname",
            "3.5.0.1",
            "pkg:pypi/backports-ssl-match-hostname@3.5.0.1",
        ),
        None,
    );
    meta(
        "pyopenssl-26.0.0.dist-info",
        &format!("{site}/pyOpenSSL-26.0.0.dist-info/METADATA"),
        ("pyOpenSSL", "26.0.0", "pkg:pypi/pyopenssl@26.0.0"),
        Some("Apache License, Version 2.0"),
    );
    // The first of repeated headers wins.
    meta(
        "repeated_pkginfo",
        &format!("{site}/root-1.0.0.dist-info/METADATA"),
        ("root", "1.0.0", "pkg:pypi/root@1.0.0"),
        None,
    );
    if let Some(b) = fixture(&format!("{WHEELEGG}/empty")) {
        expect_error(&format!("{site}/x-1.dist-info/METADATA"), &b);
    }
    // Metadata 2.4 `License-Expression` is preferred; only headers before the body count.
    let m = b"Metadata-Version: 2.4\nName: Foo.Bar__baz\nVersion: 1.0\nLicense: long text\nLicense-Expression: MIT OR Apache-2.0\n\nName: body\n";
    let p = run(&format!("{site}/Foo.Bar__baz-1.0.dist-info/METADATA"), m);
    assert_eq!(p[0].purl, "pkg:pypi/foo-bar-baz@1.0");
    assert_eq!(p[0].license.as_deref(), Some("MIT OR Apache-2.0"));
    assert!(!wants(&format!("{site}/pip-22.2.2.dist-info/RECORD"), b""));
}

// -------------------------------------------------------------------------------------------- cargo

const CARGOLOCK: &str = "osv-scalibr/language/rust/cargolock/testdata";

#[test]
fn cargo_lockfiles() {
    let lock = |name: &str, want: &[(&str, &str, &str)]| {
        check_fixture(
            &format!("{CARGOLOCK}/{name}"),
            "/src/app/Cargo.lock",
            Ecosystem::Cargo,
            want,
        )
    };
    let addr2line = ("addr2line", "0.15.2", "pkg:cargo/addr2line@0.15.2");
    let syn1 = ("syn", "1.0.73", "pkg:cargo/syn@1.0.73");
    lock("one-package.lock", &[addr2line]);
    lock("two-packages.lock", &[addr2line, syn1]);
    lock("package-with-comments.lock", &[addr2line, syn1]);
    lock(
        "two-packages-with-local.lock",
        &[
            addr2line,
            ("local-rust-pkg", "0.1.0", "pkg:cargo/local-rust-pkg@0.1.0"),
        ],
    );
    lock(
        "duplicate.lock",
        &[syn1, ("syn", "2.0.0", "pkg:cargo/syn@2.0.0")],
    );
    lock("empty.lock", &[]);
    lock(
        "package-with-build-string.lock",
        &[(
            "wasi",
            "0.10.2+wasi-snapshot-preview1",
            "pkg:cargo/wasi@0.10.2%2Bwasi-snapshot-preview1",
        )],
    );
    lock(
        "many-packages.lock",
        &[
            ("aho-corasick", "0.7.18", "pkg:cargo/aho-corasick@0.7.18"),
            ("libc", "0.2.140", "pkg:cargo/libc@0.2.140"),
            ("memchr", "2.4.1", "pkg:cargo/memchr@2.4.1"),
            ("syn", "1.0.109", "pkg:cargo/syn@1.0.109"),
            ("syn", "2.0.15", "pkg:cargo/syn@2.0.15"),
            ("zstd", "0.11.2", "pkg:cargo/zstd@0.11.2"),
        ],
    );
    // The source is kept: registry, git, or none for workspace members.
    if let Some(b) = fixture(&format!("{CARGOLOCK}/package-with-comments.lock")) {
        let p = run("/src/Cargo.lock", &b);
        assert!(p[1]
            .source
            .as_deref()
            .unwrap()
            .starts_with("git+https://github.com/rust-lang/cargo"));
        assert_eq!(
            p[0].source.as_deref(),
            Some("registry+https://github.com/rust-lang/crates.io-index")
        );
    }
    if let Some(b) = fixture(&format!("{CARGOLOCK}/not-toml.txt")) {
        expect_error("/src/Cargo.lock", &b);
    }
    if let Some(b) = fixture("spdx-examples/example11/Cargo.lock") {
        let p = run("/src/Cargo.lock", &b);
        assert_eq!(p.len(), 70);
        assert_eq!(p.iter().filter(|p| p.source.is_none()).count(), 1);
    }
    // Version 1 (with a `[metadata]` table) and version 4 lockfiles.
    let v1 = b"[[package]]\nname = \"a\"\nversion = \"0.1.0\"\ndependencies = [\n \"b 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)\",\n]\n\n[[package]]\nname = \"b\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n[metadata]\n\"checksum b 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)\" = \"00\"\n";
    check(
        "/Cargo.lock",
        v1,
        Ecosystem::Cargo,
        &[
            ("a", "0.1.0", "pkg:cargo/a@0.1.0"),
            ("b", "1.0.0", "pkg:cargo/b@1.0.0"),
        ],
    );
    let v4 = b"version = 4\n\n[[package]]\nname = \"c\"\nversion = \"2.0.0\"\nsource = \"sparse+https://index.crates.io/\"\nchecksum = \"00\"\n";
    check(
        "/Cargo.lock",
        v4,
        Ecosystem::Cargo,
        &[("c", "2.0.0", "pkg:cargo/c@2.0.0")],
    );
}

// ----------------------------------------------------------------------------- ELF binaries (built)

const BASE: u64 = 0x40_0000;
/// File offset of the first section in [`elf`] images.
const FIRST_SECTION: usize = 256;

/// A minimal ELF image: one `PT_LOAD` segment mapping the whole file at [`BASE`], and the named
/// sections (each 16-aligned, the first at [`FIRST_SECTION`], at virtual address `BASE + offset`).
fn elf(class64: bool, big: bool, e_type: u16, sections: &[(&str, &[u8])]) -> Vec<u8> {
    let put16 = |v: &mut Vec<u8>, x: u16| {
        v.extend(if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let put32 = |v: &mut Vec<u8>, x: u32| {
        v.extend(if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let putw = |v: &mut Vec<u8>, x: u64| {
        if class64 {
            v.extend(if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        } else {
            let x = u32::try_from(x).unwrap();
            v.extend(if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        }
    };
    let mut body = vec![0u8; FIRST_SECTION];
    let mut names = vec![0u8];
    let mut shdrs = Vec::new(); // (name offset, file offset, size)
    for (name, data) in sections {
        while !body.len().is_multiple_of(16) {
            body.push(0);
        }
        shdrs.push((names.len() as u32, body.len() as u64, data.len() as u64));
        names.extend(name.as_bytes());
        names.push(0);
        body.extend(*data);
    }
    let strtab_name = names.len() as u32;
    names.extend(b".shstrtab\0");
    let strtab_off = body.len() as u64;
    body.extend(&names);
    while !body.len().is_multiple_of(8) {
        body.push(0);
    }
    let shoff = body.len() as u64;
    let total = shoff + (sections.len() as u64 + 2) * if class64 { 64 } else { 40 };

    let mut h = Vec::new();
    h.extend(b"\x7fELF");
    h.push(if class64 { 2 } else { 1 });
    h.push(if big { 2 } else { 1 });
    h.push(1);
    h.resize(16, 0);
    put16(&mut h, e_type);
    put16(&mut h, if class64 { 62 } else { 3 });
    put32(&mut h, 1);
    putw(&mut h, 0); // entry
    let ehsize: u16 = if class64 { 64 } else { 52 };
    putw(&mut h, u64::from(ehsize)); // phoff
    putw(&mut h, shoff);
    put32(&mut h, 0);
    put16(&mut h, ehsize);
    put16(&mut h, if class64 { 56 } else { 32 });
    put16(&mut h, 1);
    put16(&mut h, if class64 { 64 } else { 40 });
    put16(&mut h, sections.len() as u16 + 2);
    put16(&mut h, sections.len() as u16 + 1);
    assert_eq!(h.len(), usize::from(ehsize));
    // PT_LOAD, offset 0, whole file.
    put32(&mut h, 1);
    if class64 {
        put32(&mut h, 5);
        putw(&mut h, 0);
        putw(&mut h, BASE);
        putw(&mut h, BASE);
        putw(&mut h, total);
        putw(&mut h, total);
        putw(&mut h, 0x1000);
    } else {
        putw(&mut h, 0);
        putw(&mut h, BASE);
        putw(&mut h, BASE);
        putw(&mut h, total);
        putw(&mut h, total);
        put32(&mut h, 5);
        putw(&mut h, 0x1000);
    }
    body[..h.len()].copy_from_slice(&h);

    let shdr = |v: &mut Vec<u8>, name: u32, ty: u32, off: u64, size: u64| {
        put32(v, name);
        put32(v, ty);
        putw(v, 0); // flags
        putw(v, if ty == 0 { 0 } else { BASE + off });
        putw(v, off);
        putw(v, size);
        put32(v, 0);
        put32(v, 0);
        putw(v, 1);
        putw(v, 0);
    };
    shdr(&mut body, 0, 0, 0, 0);
    for (name, off, size) in shdrs {
        shdr(&mut body, name, 1, off, size);
    }
    shdr(&mut body, strtab_name, 3, strtab_off, names.len() as u64);
    assert_eq!(body.len() as u64, total);
    body
}

const SENTINEL_START: &[u8; 16] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
const SENTINEL_END: &[u8; 16] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";

fn wrapped_modinfo(text: &str) -> Vec<u8> {
    [&SENTINEL_START[..], text.as_bytes(), &SENTINEL_END[..]].concat()
}

fn uvarint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Go ≥ 1.18 build info: header, then both strings inline with uvarint lengths.
fn buildinfo_inline(version: &str, modinfo: &str) -> Vec<u8> {
    let mut b = b"\xff Go buildinf:".to_vec();
    b.push(8);
    b.push(2);
    b.resize(32, 0);
    let m = wrapped_modinfo(modinfo);
    uvarint(version.len(), &mut b);
    b.extend(version.as_bytes());
    uvarint(m.len(), &mut b);
    b.extend(&m);
    b
}

/// Pre-1.18 build info: two pointers to Go string headers, laid out in the same section, which
/// [`elf`] places at `BASE + FIRST_SECTION`.
fn buildinfo_pointers(ptr: usize, big: bool, version: &str, modinfo: &str) -> Vec<u8> {
    let vaddr = BASE + FIRST_SECTION as u64;
    let word = |x: u64| -> Vec<u8> {
        match (ptr, big) {
            (8, false) => x.to_le_bytes().to_vec(),
            (8, true) => x.to_be_bytes().to_vec(),
            (_, false) => u32::try_from(x).unwrap().to_le_bytes().to_vec(),
            (_, true) => u32::try_from(x).unwrap().to_be_bytes().to_vec(),
        }
    };
    let m = wrapped_modinfo(modinfo);
    let hdrs = 32 + 2 * ptr;
    let vhdr = hdrs as u64;
    let mhdr = vhdr + 2 * ptr as u64;
    let vdata = mhdr + 2 * ptr as u64;
    let mdata = vdata + version.len() as u64;
    let mut b = b"\xff Go buildinf:".to_vec();
    b.push(ptr as u8);
    b.push(u8::from(big));
    b.extend(word(vaddr + vhdr));
    b.extend(word(vaddr + mhdr));
    b.resize(vhdr as usize, 0);
    b.extend(word(vaddr + vdata));
    b.extend(word(version.len() as u64));
    b.extend(word(vaddr + mdata));
    b.extend(word(m.len() as u64));
    b.extend(version.as_bytes());
    b.extend(&m);
    b
}

const MODINFO: &str = "path\texample.com/app/cmd/server\n\
mod\texample.com/app\t(devel)\t\n\
dep\tgithub.com/google/uuid\tv1.6.0\th1:abc=\n\
dep\tgolang.org/x/text\tv0.3.0\th1:def=\n\
=>\tgolang.org/x/text\tv0.14.0\th1:ghi=\n\
dep\tgithub.com/pkg/errors\tv0.9.1\th1:jkl=\n\
=>\t../errors\t\t\n\
dep\texample.com/app/internal/legacy\tv0.0.0-00010101000000-000000000000\n\
=>\t./internal/legacy\t(devel)\t\n\
dep\tgopkg.in/yaml.v2\tv2.4.0+incompatible\th1:mno=\n\
build\t-compiler=gc\n";

fn go_want() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("stdlib", "1.21.5", "pkg:golang/stdlib@1.21.5"),
        (
            "github.com/google/uuid",
            "v1.6.0",
            "pkg:golang/github.com/google/uuid@v1.6.0",
        ),
        (
            "golang.org/x/text",
            "v0.14.0",
            "pkg:golang/golang.org/x/text@v0.14.0",
        ),
        (
            "github.com/pkg/errors",
            "v0.9.1",
            "pkg:golang/github.com/pkg/errors@v0.9.1",
        ),
        (
            "gopkg.in/yaml.v2",
            "v2.4.0+incompatible",
            "pkg:golang/gopkg.in/yaml.v2@v2.4.0%2Bincompatible",
        ),
    ]
}

#[test]
fn go_build_info_inline_format() {
    let info = buildinfo_inline("go1.21.5", MODINFO);
    let bin = elf(
        true,
        false,
        2,
        &[(".text", &[0xc3; 64]), (".go.buildinfo", &info)],
    );
    check("/usr/local/bin/server", &bin, Ecosystem::Golang, &go_want());
    // A released main module is reported; an experiment suffix on the toolchain is dropped.
    let released = MODINFO.replacen("(devel)", "v1.2.3", 1);
    let info = buildinfo_inline("go1.22.1 X:boringcrypto", &released);
    let bin = elf(true, false, 3, &[(".go.buildinfo", &info)]);
    let pkgs = run("/app/server", &bin);
    assert!(pkgs
        .iter()
        .any(|p| p.purl == "pkg:golang/example.com/app@v1.2.3"));
    assert!(pkgs.iter().any(|p| p.purl == "pkg:golang/stdlib@1.22.1"));
    assert_eq!(pkgs.len(), 6);
}

#[test]
fn go_build_info_pointer_format() {
    for (class64, big) in [(true, false), (false, false), (true, true), (false, true)] {
        let ptr = if class64 { 8 } else { 4 };
        let info = buildinfo_pointers(ptr, big, "go1.21.5", MODINFO);
        let bin = elf(
            class64,
            big,
            2,
            &[(".go.buildinfo", &info), (".noptrdata", &[0; 32])],
        );
        check("/bin/server", &bin, Ecosystem::Golang, &go_want());
    }
}

#[test]
fn go_build_info_without_section_headers_is_found_by_scanning() {
    let info = buildinfo_inline("go1.21.5", MODINFO);
    let mut bin = elf(true, false, 2, &[(".go.buildinfo", &info)]);
    // Clear e_shoff and e_shnum, as `sstrip` would.
    bin[40..48].fill(0);
    bin[60..62].fill(0);
    check("/bin/server", &bin, Ecosystem::Golang, &go_want());
}

#[test]
fn go_binary_built_by_the_toolchain() {
    let have_go = std::process::Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_go {
        eprintln!("skipping go_binary_built_by_the_toolchain: no `go` toolchain on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("go.mod"),
        "module example.com/hello\n\ngo 1.18\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.go"),
        "package main\n\nfunc main() { println(\"hi\") }\n",
    )
    .unwrap();
    let out = std::process::Command::new("go")
        .args(["build", "-o", "hello", "."])
        .current_dir(dir.path())
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = std::fs::read(dir.path().join("hello")).unwrap();
    let pkgs = run("/usr/bin/hello", &bin);
    assert!(pkgs.iter().any(|p| p.name == "stdlib"), "{pkgs:?}");
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const AUDIT_JSON: &str = r#"{"packages":[
 {"name":"hello","version":"0.1.0","source":"local","kind":"runtime","root":true,"dependencies":[1,2]},
 {"name":"serde","version":"1.0.200","source":"crates.io","kind":"runtime"},
 {"name":"cc","version":"1.0.90","source":"crates.io","kind":"build"}
]}"#;

fn audit_want() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("hello", "0.1.0", "pkg:cargo/hello@0.1.0"),
        ("serde", "1.0.200", "pkg:cargo/serde@1.0.200"),
        ("cc", "1.0.90", "pkg:cargo/cc@1.0.90"),
    ]
}

#[test]
fn cargo_auditable_section_in_a_real_elf() {
    let dir = tempfile::tempdir().unwrap();
    let section = dir.path().join("dep-v0");
    std::fs::write(&section, zlib(AUDIT_JSON.as_bytes())).unwrap();
    let target = dir.path().join("true");
    let Ok(src) = std::fs::read("/bin/true") else {
        eprintln!("skipping cargo_auditable_section_in_a_real_elf: no /bin/true");
        return;
    };
    std::fs::write(&target, src).unwrap();
    let status = std::process::Command::new("objcopy")
        .arg(format!("--add-section=.dep-v0={}", section.display()))
        .arg(&target)
        .status();
    match status {
        Ok(s) if s.success() => {}
        _ => {
            eprintln!(
                "skipping cargo_auditable_section_in_a_real_elf: objcopy (binutils) is unavailable"
            );
            return;
        }
    }
    let bin = std::fs::read(&target).unwrap();
    check(
        "/usr/local/bin/hello",
        &bin,
        Ecosystem::Cargo,
        &audit_want(),
    );
    let pkgs = run("/usr/local/bin/hello", &bin);
    assert!(pkgs
        .iter()
        .any(|p| p.name == "serde" && p.source.as_deref() == Some("crates.io")));
    // The same binary without the section is a plain executable: wanted, nothing found.
    let plain = std::fs::read("/bin/true").unwrap();
    check("/bin/true", &plain, Ecosystem::Cargo, &[]);
}

#[test]
fn cargo_auditable_section_in_a_synthetic_elf() {
    for (class64, big) in [(true, false), (false, false), (false, true)] {
        let bin = elf(
            class64,
            big,
            3,
            &[(".dep-v0", &zlib(AUDIT_JSON.as_bytes()))],
        );
        check("/app/hello", &bin, Ecosystem::Cargo, &audit_want());
    }
    let bad = elf(true, false, 2, &[(".dep-v0", b"not zlib at all")]);
    expect_error("/app/hello", &bad);
    // A zlib bomb is refused at 8 MiB inflated.
    let bomb = zlib(&vec![b' '; 9 << 20]);
    let bin = elf(true, false, 2, &[(".dep-v0", &bomb)]);
    let err = analyze_both("/app/hello", &bin).unwrap_err();
    assert!(err.reason.contains("8 MiB"), "{err}");
}

#[test]
fn elf_wants_executables_not_libraries() {
    let exe = elf(true, false, 2, &[]);
    let pie = elf(true, false, 3, &[]);
    let rel = elf(true, false, 1, &[]);
    assert!(wants("/usr/bin/app", &exe[..512.min(exe.len())]));
    assert!(wants("/app/server", &pie));
    assert!(!wants("/usr/lib/x86_64-linux-gnu/libssl.so.3", &pie));
    assert!(!wants("/lib/modules/6.1/kernel/x.ko", &rel));
    assert!(!wants("/usr/bin/script", b"#!/bin/sh\n"));
}

// --------------------------------------------------------------------------------------------- java

const ARCHIVE: &str = "osv-scalibr/language/java/archive/testdata";

/// A zip with deflated entries, written from the APPNOTE layout (local headers, central directory,
/// end record).
fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        let comp = enc.finish().unwrap();
        let offset = out.len() as u32;
        let fixed = |v: &mut Vec<u8>| {
            v.extend(20u16.to_le_bytes()); // version needed
            v.extend(0u16.to_le_bytes()); // flags
            v.extend(8u16.to_le_bytes()); // deflate
            v.extend(0u32.to_le_bytes()); // time, date
            v.extend(crc.sum().to_le_bytes());
            v.extend((comp.len() as u32).to_le_bytes());
            v.extend((data.len() as u32).to_le_bytes());
            v.extend((name.len() as u16).to_le_bytes());
            v.extend(0u16.to_le_bytes()); // extra
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        fixed(&mut out);
        out.extend(name.as_bytes());
        out.extend(&comp);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // version made by
        fixed(&mut central);
        central.extend([0u8; 8]); // comment length, disk, internal attrs, external attrs (part)
        central.extend([0u8; 2]);
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

#[test]
fn java_archives_from_the_corpus() {
    let pkg = (
        "com.some.package:package-name",
        "1.2.3",
        "pkg:maven/com.some.package/package-name@1.2.3",
    );
    check_fixture(
        &format!("{ARCHIVE}/simple.jar"),
        "/app/simple.jar",
        Ecosystem::Maven,
        &[pkg],
    );
    // pom.properties at the top and in BOOT-INF/lib/inner.jar.
    check_fixture(
        &format!("{ARCHIVE}/complex.jar"),
        "/app/complex.jar",
        Ecosystem::Maven,
        &[
            pkg,
            (
                "com.some.anotherpackage:another-package-name",
                "3.2.1",
                "pkg:maven/com.some.anotherpackage/another-package-name@3.2.1",
            ),
        ],
    );
    if let Some(b) = fixture(&format!("{ARCHIVE}/complex.jar")) {
        let p = run("/app/complex.jar", &b);
        assert!(
            p.iter()
                .any(|p| p.path == "/app/complex.jar!/BOOT-INF/lib/inner.jar"),
            "{p:?}"
        );
    }
    // Nine archives deep.
    check_fixture(
        &format!("{ARCHIVE}/nested_at_10.jar"),
        "/app/nested.jar",
        Ecosystem::Maven,
        &[pkg],
    );
    check_fixture(
        &format!("{ARCHIVE}/no_pom_properties.jar"),
        "/app/x.jar",
        Ecosystem::Maven,
        &[],
    );
    // A pom.properties without groupId names no Maven package.
    check_fixture(
        &format!("{ARCHIVE}/pom_missing_group_id.jar"),
        "/app/x.jar",
        Ecosystem::Maven,
        &[],
    );
    // A Spring Boot "fully executable" jar starts with a launch script.
    if let Some(b) = fixture(&format!("{ARCHIVE}/complex.jar")) {
        let mut exe = b"#!/bin/bash\n# launch script\nexec java -jar \"$0\" \"$@\"\n".to_vec();
        exe.extend(&b);
        assert_eq!(run("/app/complex.jar", &exe).len(), 2);
    }
    // The real joda-time pom.properties, in the place Maven puts it.
    if let Some(props) = fixture("syft/java/joda-time-2.2/pom.properties") {
        let jar = zip(&[
            (
                "META-INF/MANIFEST.MF",
                b"Manifest-Version: 1.0\r\nBundle-SymbolicName: joda-time\r\n",
            ),
            ("META-INF/maven/joda-time/joda-time/pom.properties", &props),
            ("org/joda/time/DateTime.class", &[0xca, 0xfe, 0xba, 0xbe]),
        ]);
        check(
            "/opt/lib/joda-time-2.2.jar",
            &jar,
            Ecosystem::Maven,
            &[(
                "joda-time:joda-time",
                "2.2",
                "pkg:maven/joda-time/joda-time@2.2",
            )],
        );
    }
    if let Some(b) = fixture(&format!("{ARCHIVE}/axis/MANIFEST.MF")) {
        expect_error("/app/not-a-zip.jar", &b);
    }
}

#[test]
fn java_manifest_fallback() {
    let manifest = |dir: &str| fixture(&format!("{ARCHIVE}/{dir}/MANIFEST.MF"));
    let jar = |m: &[u8]| zip(&[("META-INF/MANIFEST.MF", m)]);
    if let Some(m) = manifest("manifest-symbolicname") {
        check(
            "/app/failureaccess-1.0.1.jar",
            &jar(&m),
            Ecosystem::Maven,
            &[(
                "com.google.guava:failureaccess",
                "1.0.1",
                "pkg:maven/com.google.guava/failureaccess@1.0.1",
            )],
        );
    }
    if let Some(m) = manifest("invalid-ids") {
        check(
            "/app/x.jar",
            &jar(&m),
            Ecosystem::Maven,
            &[(
                "test.group:correct.name",
                "1.2.3",
                "pkg:maven/test.group/correct.name@1.2.3",
            )],
        );
    }
    if let Some(m) = manifest("combine-manifest-filename") {
        check(
            "/app/ivy-2.4.0.jar",
            &jar(&m),
            Ecosystem::Maven,
            &[("org.apache:ivy", "2.4.0", "pkg:maven/org.apache/ivy@2.4.0")],
        );
    }
    if let Some(m) = manifest("manifest-implementation-title") {
        check(
            "/app/server.jar",
            &jar(&m),
            Ecosystem::Maven,
            &[(
                "org.elasticsearch:server",
                "8.14.3",
                "pkg:maven/org.elasticsearch/server@8.14.3",
            )],
        );
    }
    if let Some(m) = manifest("known-group-id") {
        check(
            "/app/spring-web.jar",
            &jar(&m),
            Ecosystem::Maven,
            &[("spring-web", "5.3.26", "pkg:maven/spring-web@5.3.26")],
        );
    }
    // Titles with spaces are not identifiers; a bare `Name:` is a per-entry section, not a package.
    if let Some(m) = manifest("axis") {
        check("/app/axis.jar", &jar(&m), Ecosystem::Maven, &[]);
    }
    if let Some(m) = manifest("manifest-no-group-id") {
        check("/app/x.jar", &jar(&m), Ecosystem::Maven, &[]);
    }
}

#[test]
fn java_nesting_and_inflation_are_capped() {
    let props: &[u8] = b"groupId=g\nartifactId=a\nversion=1\n";
    // Twenty archives deep: the walk stops at the depth cap and says so.
    let mut jar = zip(&[("pom.properties", props)]);
    for _ in 0..20 {
        jar = zip(&[("lib/inner.jar", &jar)]);
    }
    let err = analyze("/app/deep.jar", &jar, None).unwrap_err();
    assert!(err.reason.contains("deeper"), "{err}");
    // A compressed bomb posing as a library is cut at the inflation budget: alone, the archive is an
    // error naming the cap; after a real library, that library is still reported.
    let lib = zip(&[("META-INF/maven/g/a/pom.properties", props)]);
    let bomb = vec![0u8; 300 << 20];
    let war = zip(&[("WEB-INF/lib/bomb.jar", &bomb)]);
    assert!(
        war.len() < 2 << 20,
        "bomb compresses to {} bytes",
        war.len()
    );
    let err = analyze("/srv/app.war", &war, None).unwrap_err();
    assert!(err.reason.contains("256 MiB"), "{err}");
    let war = zip(&[("WEB-INF/lib/a.jar", &lib), ("WEB-INF/lib/bomb.jar", &bomb)]);
    check(
        "/srv/app.war",
        &war,
        Ecosystem::Maven,
        &[("g:a", "1", "pkg:maven/g/a@1")],
    );
}

// --------------------------------------------------------------------------------------- robustness

/// Every corpus fixture of the language analysers plus the built binaries and archives, truncated and
/// bit-flipped: analysers may return errors but never panic.
#[test]
fn damaged_inputs_never_panic() {
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(root) = corpus() {
        let dirs = [
            (LOCKS, "/app/package-lock.json"),
            (
                WHEELEGG,
                "/usr/lib/python3/site-packages/x-1.dist-info/METADATA",
            ),
            (CARGOLOCK, "/src/Cargo.lock"),
            (ARCHIVE, "/app/x.jar"),
        ];
        for (dir, image_path) in dirs {
            for entry in std::fs::read_dir(root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(b) = std::fs::read(entry.path()) {
                    cases.push((image_path.to_owned(), b));
                }
            }
        }
    }
    cases.push((
        "/bin/server".into(),
        elf(
            true,
            false,
            2,
            &[(".go.buildinfo", &buildinfo_inline("go1.21.5", MODINFO))],
        ),
    ));
    cases.push((
        "/bin/server".into(),
        elf(
            false,
            true,
            2,
            &[(
                ".go.buildinfo",
                &buildinfo_pointers(4, true, "go1.20", MODINFO),
            )],
        ),
    ));
    cases.push((
        "/bin/server".into(),
        elf(
            true,
            false,
            2,
            &[(
                ".go.buildinfo",
                &buildinfo_pointers(8, false, "go1.20", MODINFO),
            )],
        ),
    ));
    cases.push((
        "/bin/hello".into(),
        elf(true, false, 3, &[(".dep-v0", &zlib(AUDIT_JSON.as_bytes()))]),
    ));
    cases.push((
        "/app/node_modules/a/package.json".into(),
        br#"{"name":"a","version":"1","license":{"type":"MIT"}}"#.to_vec(),
    ));
    let inner = zip(&[(
        "META-INF/MANIFEST.MF",
        b"Bundle-SymbolicName: a.b\nBundle-Version: 1\n",
    )]);
    cases.push((
        "/app/x.jar".into(),
        zip(&[
            ("BOOT-INF/lib/inner.jar", &inner),
            ("pom.properties", b"groupId=g\nartifactId=a\nversion=1\n"),
        ]),
    ));

    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut runs = 0;
    for (path, bytes) in &cases {
        let mut variants: Vec<Vec<u8>> = Vec::new();
        for cut in [
            0,
            1,
            4,
            17,
            33,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len().saturating_sub(1),
        ] {
            variants.push(bytes[..cut.min(bytes.len())].to_vec());
        }
        for _ in 0..24 {
            let mut v = bytes.clone();
            if v.is_empty() {
                break;
            }
            for _ in 0..1 + next() % 4 {
                let i = (next() % v.len() as u64) as usize;
                v[i] ^= 1 << (next() % 8);
            }
            variants.push(v);
        }
        for v in variants {
            let r = catch_unwind(AssertUnwindSafe(|| {
                if wants(path, &v[..v.len().min(512)]) {
                    let _ = analyze_both(path, &v);
                }
            }));
            assert!(r.is_ok(), "panic on a damaged {path} ({} bytes)", v.len());
            runs += 1;
        }
    }
    assert!(runs > 100, "only {runs} runs");
}

/// Go binaries that happen to be installed on this machine (CI images ship some): real linker output.
#[test]
fn go_build_info_of_binaries_on_this_machine() {
    let candidates = [
        "/usr/bin/skopeo",
        "/usr/bin/docker-registry",
        "/usr/local/bin/docker",
        "/usr/local/bin/terraform",
    ];
    let mut seen = 0;
    for path in candidates {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        seen += 1;
        let pkgs = run(path, &bytes);
        eprintln!(
            "{path}: {} packages, e.g. {:?}",
            pkgs.len(),
            pkgs.iter().take(3).map(|p| &p.purl).collect::<Vec<_>>()
        );
        assert!(
            pkgs.iter()
                .any(|p| p.name == "stdlib" && !p.version.is_empty()),
            "{path}: {pkgs:?}"
        );
        assert!(pkgs
            .iter()
            .all(|p| p.ecosystem == Ecosystem::Golang && p.purl.starts_with("pkg:golang/")));
        // The module list must agree with the build info text embedded in the binary.
        let text = String::from_utf8_lossy(&bytes);
        let deps = text.matches("\ndep\t").count();
        assert!(
            pkgs.len() > deps.min(1),
            "{path}: {} packages for {deps} dep lines",
            pkgs.len()
        );
    }
    if seen == 0 {
        eprintln!(
            "skipping go_build_info_of_binaries_on_this_machine: none of {candidates:?} present"
        );
    }
}
