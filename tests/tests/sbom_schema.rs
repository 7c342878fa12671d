//! Every SBOM the scanner writes validates against the official schemas: CycloneDX 1.6
//! (`bom-1.6.schema.json` with its `spdx.schema.json` and `jsf-0.82.schema.json`) and SPDX 2.3
//! (`spdx-schema.json`), from `../shared/corpus`. The validator is Python's `jsonschema` (the `make test`
//! target installs it when missing): it resolves the local `$ref`s from files, checks `date-time`
//! formats, and costs nothing to build, where the Rust `jsonschema` crate added about 4.5 minutes to a
//! clean test build on two cores. Beyond the schemas, the documents are checked for what the schemas cannot
//! express: unique references, no dangling ones, every named license declared. And they are deterministic:
//! the same record gives the same bytes, across data directories too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use stella_tests::image::{gunzip, layer, layout};
use stella_tests::{corpus, gen_key, run_env, tool};

const NOW: &str = "1700000500";

/// Validates each file given against its schema: CycloneDX or SPDX, told apart by `bomFormat`. Works with
/// `jsonschema` before 4.18 (a `RefResolver` store) and after (a `referencing` registry).
const VALIDATOR: &str = r#"
import json, pathlib, sys
import jsonschema
cdx_dir, spdx_schema = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
load = lambda p: json.loads(pathlib.Path(p).read_text())
cdx = load(cdx_dir / "bom-1.6.schema.json")
parts = [load(cdx_dir / n) for n in ("bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json")]
try:
    from referencing import Registry, Resource
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in parts)
    extra = {"registry": registry}
except ImportError:
    extra = {"resolver": jsonschema.RefResolver.from_schema(cdx, store={d["$id"]: d for d in parts})}
validators = {
    "cyclonedx": jsonschema.Draft7Validator(cdx, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER, **extra),
    "spdx": jsonschema.Draft201909Validator(load(spdx_schema), format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER),
}
errors = 0
for f in sys.argv[3:]:
    doc = load(f)
    kind = "cyclonedx" if doc.get("bomFormat") == "CycloneDX" else "spdx"
    for e in validators[kind].iter_errors(doc):
        errors += 1
        print(f"{f}: {kind} /{'/'.join(map(str, e.absolute_path))}: {e.message[:400]}")
print(f"validated {len(sys.argv) - 3} documents: {errors} errors")
sys.exit(1 if errors else 0)
"#;

/// `stella` on the site in `data` (relative to `dir`).
fn stella(dir: &Path, data: &str, args: &[&str]) -> stella_tests::Run {
    let data = dir.join(data);
    run_env(
        "stella",
        dir,
        args,
        &[("STELLA_DATA", data.to_str().unwrap()), ("STELLA_NOW", NOW)],
    )
}

/// A temp dir with a signer key and an initialised site in `data`.
fn site() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    gen_key(t.path(), "fips", None, "signer");
    init(t.path(), "data");
    t
}

fn init(dir: &Path, data: &str) {
    stella(
        dir,
        data,
        &[
            "init",
            "--profile",
            "fips",
            "--kit-signer",
            "signer.pub.pem",
        ],
    )
    .ok();
}

/// The schemas, or `None` (with a note) when the corpus is absent.
fn schemas() -> Option<(PathBuf, PathBuf)> {
    let c = corpus()?;
    let cdx = c.join("cyclonedx/specification/schema");
    let spdx = c.join("spdx/spdx-spec/v2.3.1/schemas/spdx-schema.json");
    assert!(cdx.join("bom-1.6.schema.json").is_file() && spdx.is_file());
    Some((cdx, spdx))
}

/// Validates documents against the official schemas; fails with every error found.
fn validate(dir: &Path, docs: &[PathBuf]) {
    let Some((cdx, spdx)) = schemas() else { return };
    let probe = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "python3 with jsonschema is needed to validate SBOMs: `make test` installs it (pip install jsonschema)"
    );
    let script = dir.join("validate_sbom.py");
    fs::write(&script, VALIDATOR).unwrap();
    let mut args = vec![
        script.to_str().unwrap().to_owned(),
        cdx.to_str().unwrap().to_owned(),
        spdx.to_str().unwrap().to_owned(),
    ];
    args.extend(docs.iter().map(|d| d.to_str().unwrap().to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = tool("python3", dir, &args);
    assert_eq!(
        r.code, 0,
        "schema validation failed:\n{}{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stdout
            .contains(&format!("validated {} documents: 0 errors", docs.len())),
        "{}",
        r.stdout
    );
}

/// What the schemas cannot say: bom-refs unique and every dependency names one; SPDX ids unique and every
/// relationship names one; every `LicenseRef-` declared; evidence on every package. Returns the number of
/// packages (CycloneDX components other than the OS, SPDX packages other than the image and OS).
fn check_cyclonedx(doc: &Value) -> usize {
    let comps = doc["components"].as_array().unwrap();
    let mut refs = BTreeSet::new();
    assert!(refs.insert(doc["metadata"]["component"]["bom-ref"].as_str().unwrap()));
    for c in comps {
        assert!(refs.insert(c["bom-ref"].as_str().unwrap()), "duplicate {c}");
        if c["type"] == "library" {
            let path = c["evidence"]["occurrences"][0]["location"]
                .as_str()
                .unwrap();
            let props = c["properties"].as_array().unwrap();
            assert!(props.contains(&json!({"name": "stella:path", "value": path})));
            assert!(props.iter().any(|p| p["name"] == "stella:layer"
                && p["value"].as_str().unwrap().starts_with("sha256:")));
            assert!(c["purl"].as_str().unwrap().starts_with("pkg:"));
        }
    }
    let mut listed = BTreeSet::new();
    for d in doc["dependencies"].as_array().unwrap() {
        let r = d["ref"].as_str().unwrap();
        assert!(refs.contains(r), "dangling dependency ref {r}");
        for o in d["dependsOn"].as_array().unwrap() {
            let o = o.as_str().unwrap();
            assert!(refs.contains(o), "dangling dependsOn {o}");
            assert!(listed.insert(o), "{o} depended on twice");
        }
    }
    // Every component hangs off the image, directly or through the OS.
    assert_eq!(listed.len(), comps.len());
    comps.iter().filter(|c| c["type"] == "library").count()
}

fn check_spdx(doc: &Value) -> usize {
    let pkgs = doc["packages"].as_array().unwrap();
    let mut ids = BTreeSet::from(["SPDXRef-DOCUMENT"]);
    for p in pkgs {
        assert!(ids.insert(p["SPDXID"].as_str().unwrap()), "duplicate {p}");
    }
    let mut contained = BTreeSet::new();
    for r in doc["relationships"].as_array().unwrap() {
        for k in ["spdxElementId", "relatedSpdxElement"] {
            assert!(ids.contains(r[k].as_str().unwrap()), "dangling {r}");
        }
        if r["relationshipType"] == "CONTAINS" {
            assert!(contained.insert(r["relatedSpdxElement"].as_str().unwrap()));
        }
    }
    assert_eq!(
        contained.len(),
        pkgs.len() - 1,
        "every package but the image is contained"
    );
    let declared: BTreeSet<&str> = doc["hasExtractedLicensingInfos"]
        .as_array()
        .map(|a| a.iter().map(|l| l["licenseId"].as_str().unwrap()).collect())
        .unwrap_or_default();
    let mut packages = 0;
    for p in pkgs {
        let l = p["licenseDeclared"].as_str().unwrap();
        if l.starts_with("LicenseRef-") {
            assert!(declared.contains(l), "{l} is not declared");
        }
        if p["primaryPackagePurpose"] == "LIBRARY" {
            packages += 1;
            let purl = &p["externalRefs"][0];
            assert_eq!(purl["referenceType"], "purl");
            assert!(p["sourceInfo"]
                .as_str()
                .unwrap()
                .contains(" of layer sha256:"));
        }
    }
    packages
}

/// Scans `image` and writes both SBOMs (from `scan --sbom` and from `sbom DIGEST`, which must agree) to
/// `out/NAME.{cdx,spdx}.json`; checks them and returns the paths and the package count.
fn scan_and_write(dir: &Path, image: &str, name: &str) -> (Vec<PathBuf>, usize) {
    let out = dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let r: Value =
        serde_json::from_str(&stella(dir, "data", &["scan", "--json", image]).ok().stdout).unwrap();
    let digest = r["record"]["digest"].as_str().unwrap().to_owned();
    let n = r["record"]["packages"].as_array().unwrap().len();
    let mut paths = Vec::new();
    for (format, ext) in [("cyclonedx", "cdx"), ("spdx", "spdx")] {
        let via_scan = stella(dir, "data", &["scan", "--sbom", format, image])
            .ok()
            .stdout;
        let a = stella(dir, "data", &["sbom", &digest, "--format", format])
            .ok()
            .stdout;
        let b = stella(dir, "data", &["sbom", &digest, "--format", format])
            .ok()
            .stdout;
        assert_eq!(a, b, "{name} {format}: same record, different bytes");
        assert_eq!(via_scan.trim_end(), a.trim_end(), "{name} {format}");
        let doc: Value = serde_json::from_str(&a).unwrap();
        let found = if ext == "cdx" {
            check_cyclonedx(&doc)
        } else {
            check_spdx(&doc)
        };
        assert_eq!(found, n, "{name} {format}: every package is in the SBOM");
        let p = out.join(format!("{name}.{ext}.json"));
        fs::write(&p, a).unwrap();
        paths.push(p);
    }
    (paths, n)
}

const DPKG_STATUS: &str = "\
Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: perl-base
Status: install ok installed
Architecture: amd64
Source: perl
Version: 1:5.36.0-7+deb12u1

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
";

/// A jar with Maven coordinates, built with the system `zip`.
fn jar(dir: &Path) -> Vec<u8> {
    let src = dir.join("jar-src");
    let props = src.join("META-INF/maven/org.example/demo-lib");
    fs::create_dir_all(&props).unwrap();
    fs::write(
        props.join("pom.properties"),
        "groupId=org.example\nartifactId=demo-lib\nversion=1.2.3\n",
    )
    .unwrap();
    fs::write(
        src.join("META-INF/MANIFEST.MF"),
        "Manifest-Version: 1.0\r\nImplementation-Title: demo-lib\r\n\r\n",
    )
    .unwrap();
    tool(
        "zip",
        &src,
        &["-q", "-X", "-r", "../demo-lib.jar", "META-INF"],
    )
    .ok();
    fs::read(dir.join("demo-lib.jar")).unwrap()
}

/// A two-layer Debian image with dpkg, npm, Python and Maven packages and a whiteout; licenses of every
/// kind (SPDX ids, expressions, free text).
fn mixed_image(dir: &Path) -> PathBuf {
    let os = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n";
    let npm = |name: &str, version: &str, license: &str| {
        json!({"name": name, "version": version, "license": license})
            .to_string()
            .into_bytes()
    };
    let meta = |name: &str, version: &str, license: &str| {
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{license}\n").into_bytes()
    };
    let jar = jar(dir);
    let base_files: Vec<(String, Vec<u8>)> = vec![
        ("/etc/os-release".into(), os.to_vec()),
        (
            "/var/lib/dpkg/status".into(),
            DPKG_STATUS.as_bytes().to_vec(),
        ),
        (
            "/usr/lib/node_modules/npm/node_modules/semver/package.json".into(),
            npm("semver", "7.5.4", "ISC"),
        ),
        (
            "/usr/lib/node_modules/npm/node_modules/gone/package.json".into(),
            npm("gone", "1.0.0", "MIT"),
        ),
    ];
    let top_files: Vec<(String, Vec<u8>)> = vec![
        (
            "/app/node_modules/@types/node/package.json".into(),
            npm("@types/node", "20.11.5", "MIT"),
        ),
        (
            "/app/node_modules/dual/package.json".into(),
            npm("dual", "2.0.0", "(MIT OR Apache-2.0)"),
        ),
        (
            "/app/node_modules/odd/package.json".into(),
            npm("odd", "0.1.0", "SEE LICENSE IN LICENSE.txt"),
        ),
        (
            "/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA".into(),
            meta("requests", "2.31.0", "License: Apache 2.0"),
        ),
        (
            "/usr/lib/python3/dist-packages/idna-3.6.dist-info/METADATA".into(),
            meta("idna", "3.6", "License-Expression: BSD-3-Clause"),
        ),
        (
            "/usr/local/lib/python3.11/site-packages/Flask_Cors-4.0.0.dist-info/METADATA".into(),
            meta("Flask-Cors", "4.0.0", "License: MIT"),
        ),
        ("/opt/app/lib/demo-lib.jar".into(), jar),
    ];
    let as_refs = |v: &[(String, Vec<u8>)]| -> Vec<(String, Option<Vec<u8>>)> {
        v.iter()
            .map(|(p, b)| (p.clone(), Some(b.clone())))
            .collect()
    };
    let build = |entries: Vec<(String, Option<Vec<u8>>)>| {
        let refs: Vec<(&str, Option<&[u8]>)> = entries
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_deref()))
            .collect();
        layer(&refs)
    };
    let base = build(as_refs(&base_files));
    let mut top = as_refs(&top_files);
    top.push(("/usr/lib/node_modules/npm/node_modules/gone".into(), None));
    let top = build(top);
    let d = dir.join("mixed");
    layout(&d, &[base, top], Some("2026.11"));
    d
}

#[test]
fn corpus_images_give_schema_valid_sboms() {
    let Some(c) = corpus() else { return };
    let t = site();
    let d = t.path();
    let mut docs = Vec::new();

    let gz = fs::read(c.join("images/trivy/alpine-310.docker-archive.tar.gz")).unwrap();
    fs::write(d.join("alpine.tar"), gunzip(&gz)).unwrap();
    let (paths, n) = scan_and_write(d, "docker-archive:alpine.tar", "alpine");
    assert_eq!(n, 14);
    let cdx: Value = serde_json::from_slice(&fs::read(&paths[0]).unwrap()).unwrap();
    // The distribution is a component of its own, and Alpine's SPDX-id licenses are ids.
    assert_eq!(
        cdx["components"][0],
        json!({"type": "operating-system", "bom-ref": "os:alpine@3.10.4", "name": "alpine",
               "version": "3.10.4", "description": "Alpine Linux v3.10"})
    );
    let musl = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "musl")
        .unwrap();
    assert_eq!(
        musl["licenses"],
        json!([{"license": {"id": "MIT", "acknowledgement": "declared"}}])
    );
    docs.extend(paths);

    let ggcr = c.join("images/go-containerregistry/pkg/v1");
    let images = [
        "tarball/testdata/test_image_1.tar",
        "tarball/testdata/test_image_2.tar",
        "tarball/testdata/test_bundle.tar",
        "tarball/testdata/test_load_manifest.tar",
        "tarball/testdata/hello-world-v25.tar",
        "layout/testdata/test_index",
        "layout/testdata/test_index_one_image",
        "layout/testdata/test_index_media_type",
        "layout/testdata/test_gc_index",
    ];
    for (i, rel) in images.iter().enumerate() {
        let p = ggcr.join(rel);
        let (paths, _) = scan_and_write(d, p.to_str().unwrap(), &format!("ggcr-{i}"));
        docs.extend(paths);
    }
    validate(d, &docs);
}

#[test]
fn mixed_ecosystem_image_gives_schema_valid_sboms() {
    let t = site();
    let d = t.path();
    let img = mixed_image(d);
    let (paths, n) = scan_and_write(d, &format!("oci-layout:{}", img.display()), "mixed");
    let cdx: Value = serde_json::from_slice(&fs::read(&paths[0]).unwrap()).unwrap();
    let purls: BTreeSet<&str> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    for want in [
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4",
        "pkg:deb/debian/perl-base@1:5.36.0-7%2Bdeb12u1",
        "pkg:npm/%40types/node@20.11.5",
        "pkg:npm/dual@2.0.0",
        "pkg:pypi/requests@2.31.0",
        "pkg:pypi/flask-cors@4.0.0",
        "pkg:maven/org.example/demo-lib@1.2.3",
    ] {
        assert!(
            purls.iter().any(|p| p.starts_with(want)),
            "{want} not in {purls:?}"
        );
    }
    // The whiteout removed `gone`; the deinstalled dpkg entry is not a package.
    assert!(!purls
        .iter()
        .any(|p| p.contains("/gone@") || p.contains("removed-thing")));
    assert_eq!(n, 4 + 3 + 1 + 3 + 1, "{purls:?}");
    let by_name = |name: &str| -> Value {
        cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        by_name("dual")["licenses"],
        json!([{"expression": "(MIT OR Apache-2.0)", "acknowledgement": "declared"}])
    );
    assert_eq!(
        by_name("odd")["licenses"],
        json!([{"license": {"name": "SEE LICENSE IN LICENSE.txt", "acknowledgement": "declared"}}])
    );
    assert_eq!(by_name("debian")["type"], "operating-system");
    let libc = by_name("libc6");
    assert_eq!(
        libc["evidence"]["occurrences"][0]["location"],
        "/var/lib/dpkg/status"
    );
    // The OS packages hang off the OS component, the language packages off the image.
    let deps = cdx["dependencies"].as_array().unwrap();
    let os_deps = deps.iter().find(|d| d["ref"] == "os:debian@12").unwrap();
    assert_eq!(os_deps["dependsOn"].as_array().unwrap().len(), 4);
    assert_eq!(
        cdx["metadata"]["component"]["purl"].as_str().unwrap(),
        format!(
            "pkg:oci/mixed@sha256%3A{}?tag=2026.11",
            &cdx["metadata"]["component"]["bom-ref"].as_str().unwrap()[7..]
        )
    );

    let spdx: Value = serde_json::from_slice(&fs::read(&paths[1]).unwrap()).unwrap();
    let pkg = |name: &str| -> Value {
        spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(pkg("debian")["primaryPackagePurpose"], "OPERATING_SYSTEM");
    assert_eq!(pkg("idna")["licenseDeclared"], "BSD-3-Clause");
    assert_eq!(pkg("dual")["licenseDeclared"], "(MIT OR Apache-2.0)");
    let odd = pkg("odd")["licenseDeclared"].as_str().unwrap().to_owned();
    assert!(odd.starts_with("LicenseRef-"), "{odd}");
    validate(d, &paths);
}

#[test]
fn sboms_are_byte_identical_across_data_dirs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, "fips", None, "signer");
    init(d, "data");
    init(d, "data-2");
    let img = mixed_image(d);
    let spec = format!("oci-layout:{}", img.display());
    for format in ["cyclonedx", "spdx"] {
        let a = stella(d, "data", &["scan", "--sbom", format, &spec])
            .ok()
            .stdout;
        let b = stella(d, "data-2", &["scan", "--sbom", format, &spec])
            .ok()
            .stdout;
        assert_eq!(a, b, "{format}");
        assert!(a.len() > 1000);
    }
}
