//! The scanner end to end: layer cache across images, whiteouts, SBOM output, findings and their
//! re-evaluation when a feed kit arrives (no rescan), driven through `stella`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use stella_tests::image::{gunzip, layer, layout};
use stella_tests::{corpus, gen_key, kit, EPOCH};

const NOW: &str = "1700000500";

fn stella(dir: &Path, args: &[&str]) -> stella_tests::Run {
    stella_tests::stella_at(dir, NOW, args)
}

const OS: &str =
    "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n";

fn apk_db(pkgs: &[(&str, &str, &str)]) -> String {
    pkgs.iter()
        .map(|(n, v, o)| format!("C:Q1aaaa=\nP:{n}\nV:{v}\nA:x86_64\nL:MIT\no:{o}\n\n"))
        .collect()
}

#[test]
fn layer_cache_whiteouts_sbom_and_reevaluation() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    site(d);

    let base = layer(&[
        ("/etc/os-release", Some(OS.as_bytes())),
        (
            "/lib/apk/db/installed",
            Some(
                apk_db(&[
                    ("musl", "1.2.4_git20230717-r4", "musl"),
                    ("zlib", "1.3.1-r0", "zlib"),
                ])
                .as_bytes(),
            ),
        ),
        ("/opt/extra/note.txt", Some(b"x")),
    ]);
    let top = layer(&[
        (
            "/lib/apk/db/installed",
            Some(
                apk_db(&[
                    ("musl", "1.2.4_git20230717-r4", "musl"),
                    ("zlib", "1.3.1-r0", "zlib"),
                    ("libcrypto3", "3.1.4-r1", "openssl"),
                ])
                .as_bytes(),
            ),
        ),
        ("/opt/extra", None),
    ]);
    let a = layout(&d.join("img-a"), std::slice::from_ref(&base), None);
    let b = layout(&d.join("img-b"), &[base.clone(), top], None);

    let ra: Value = serde_json::from_str(
        &stella(d, &["scan", "--json", "oci-layout:img-a"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(ra["layers_analysed"], 1);
    assert_eq!(ra["record"]["digest"], a.as_str());
    assert_eq!(ra["record"]["packages"].as_array().unwrap().len(), 2);
    // The second image shares the base layer: only its new layer is analysed.
    let rb: Value =
        serde_json::from_str(&stella(d, &["scan", "--json", "img-b"]).ok().stdout).unwrap();
    assert_eq!(
        (rb["layers_analysed"].as_u64(), rb["layers_cached"].as_u64()),
        (Some(1), Some(1)),
        "{rb}"
    );
    let purls: Vec<&str> = rb["record"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["purl"].as_str().unwrap())
        .collect();
    assert!(
        purls
            .iter()
            .any(|p| p.starts_with("pkg:apk/alpine/libcrypto3@3.1.4-r1")
                && p.contains("distro=alpine-3.19.1")),
        "{purls:?}"
    );
    assert_eq!(purls.len(), 3);
    // Rescanning analyses nothing and keeps the SBOM byte-identical.
    let again: Value =
        serde_json::from_str(&stella(d, &["scan", "--json", "img-b"]).ok().stdout).unwrap();
    assert_eq!(again["layers_analysed"], 0);
    // An image listing one new layer twice analyses it once.
    let twice = layer(&[("/opt/twice.txt", Some(b"y"))]);
    layout(&d.join("img-twice"), &[twice.clone(), twice], None);
    let rt: Value = serde_json::from_str(
        &stella(d, &["scan", "--json", "oci-layout:img-twice"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        (rt["layers_analysed"].as_u64(), rt["layers_cached"].as_u64()),
        (Some(1), Some(1)),
        "{rt}"
    );
    let cdx1 = stella(d, &["sbom", &b, "--format", "cyclonedx"])
        .ok()
        .stdout;
    let cdx2 = stella(d, &["sbom", &b[7..19], "--format", "cyclonedx"])
        .ok()
        .stdout;
    assert_eq!(cdx1, cdx2);
    let cdx: Value = serde_json::from_str(&cdx1).unwrap();
    assert_eq!(cdx["specVersion"], "1.6");
    // Three packages and the operating-system component.
    assert_eq!(cdx["components"].as_array().unwrap().len(), 4);
    let spdx: Value =
        serde_json::from_str(&stella(d, &["scan", "--sbom", "spdx", "img-b"]).ok().stdout).unwrap();
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    // The image, the operating system and three packages.
    assert_eq!(spdx["packages"].as_array().unwrap().len(), 5);
    stella(d, &["sbom", &b, "--format", "swid"]).fails(2, "unknown SBOM format 'swid'");

    // No knowledge yet: no findings.
    let f: Value =
        serde_json::from_str(&stella(d, &["findings", &b, "--json"]).ok().stdout).unwrap();
    assert_eq!(f["findings"].as_array().unwrap().len(), 0);

    // A feed kit arrives: findings appear without a rescan, attributed to that kit.
    let feeds = d.join("feeds");
    fs::create_dir_all(&feeds).unwrap();
    let adv = |id: &str, pkg: &str, fixed: &str| {
        json!({"id": id, "modified": "2023-11-01T00:00:00Z", "aliases": [format!("CVE-2023-{}", &id[4..])],
            "affected": [{"package": {"ecosystem": "Alpine:v3.19", "name": pkg},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]}).to_string()
    };
    fs::write(
        feeds.join("ALP-0001.json"),
        adv("ALP-0001", "openssl", "3.1.4-r5"),
    )
    .unwrap();
    fs::write(
        feeds.join("ALP-0002.json"),
        adv("ALP-0002", "musl", "1.2.4_git20230717-r5"),
    )
    .unwrap();
    kit(
        d,
        &[
            "build",
            "--channel",
            "feeds",
            "--sequence",
            "1",
            "--key",
            "signer.key.pem",
            "--feeds",
            feeds.to_str().unwrap(),
            "--out",
            "f1.kit",
        ],
    )
    .ok();
    stella(d, &["import", "f1.kit"]).ok();
    let f: Value =
        serde_json::from_str(&stella(d, &["findings", &b, "--json"]).ok().stdout).unwrap();
    let found: Vec<(&str, &str)> = f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["vulnerability"].as_str().unwrap(),
                x["package"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [("CVE-2023-0001", "libcrypto3"), ("CVE-2023-0002", "musl")],
        "{f}"
    );
    let events: Vec<(&str, &str)> = f["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["change"].as_str().unwrap(), e["cause"].as_str().unwrap()))
        .collect();
    assert_eq!(events, [("new", "feeds-000001"), ("new", "feeds-000001")]);
    // Image A has musl but not libcrypto3.
    let fa: Value =
        serde_json::from_str(&stella(d, &["findings", &a, "--json"]).ok().stdout).unwrap();
    assert_eq!(fa["findings"].as_array().unwrap().len(), 1);

    // The next kit says musl was fixed earlier (resolved) and changes the openssl fix (changed).
    fs::write(
        feeds.join("ALP-0001.json"),
        adv("ALP-0001", "openssl", "3.1.4-r6"),
    )
    .unwrap();
    fs::write(
        feeds.join("ALP-0002.json"),
        adv("ALP-0002", "musl", "1.2.4_git20230717-r3"),
    )
    .unwrap();
    kit(
        d,
        &[
            "build",
            "--channel",
            "feeds",
            "--sequence",
            "2",
            "--key",
            "signer.key.pem",
            "--feeds",
            feeds.to_str().unwrap(),
            "--out",
            "f2.kit",
        ],
    )
    .ok();
    stella(d, &["import", "f2.kit"]).ok();
    let f: Value =
        serde_json::from_str(&stella(d, &["findings", &b, "--json"]).ok().stdout).unwrap();
    assert_eq!(f["findings"].as_array().unwrap().len(), 1);
    assert_eq!(f["findings"][0]["fixed"], json!(["3.1.4-r6"]));
    let last: Vec<(&str, &str, &str)> = f["events"].as_array().unwrap()[2..]
        .iter()
        .map(|e| {
            (
                e["change"].as_str().unwrap(),
                e["vulnerability"].as_str().unwrap(),
                e["cause"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        last,
        [
            ("changed", "CVE-2023-0001", "feeds-000002"),
            ("resolved", "CVE-2023-0002", "feeds-000002")
        ],
        "{f}"
    );
    let _ = EPOCH;
}

#[test]
fn alpine_corpus_image_gives_its_14_packages() {
    let Some(c) = corpus() else { return };
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    site(d);
    let gz = fs::read(c.join("images/trivy/alpine-310.docker-archive.tar.gz")).unwrap();
    fs::write(d.join("alpine.tar"), gunzip(&gz)).unwrap();
    let r: Value = serde_json::from_str(
        &stella(d, &["scan", "--json", "docker-archive:alpine.tar"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(r["record"]["packages"].as_array().unwrap().len(), 14, "{r}");
    assert_eq!(r["record"]["os"]["version_id"], "3.10.4");
}

/// A site in `d` that trusts a fresh FIPS kit signer.
fn site(d: &Path) {
    gen_key(d, "fips", None, "signer");
    stella_tests::init_fips_site(d, NOW);
}

#[test]
fn corpus_docker_archive_whose_second_image_links_to_a_shared_layer_scans() {
    let Some(c) = corpus() else { return };
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    site(d);
    // go-containerregistry's test_link.tar: two images; the second names its first layer through a
    // symbolic link to the first image's layer.tar (`../6e77…/layer.tar`), as `docker save` writes a
    // layer two images share. Every image of the archive is read, so the link must resolve for the
    // first image to be scanned; before links were followed this failed with "entry … is missing".
    let archive = c.join("images/go-containerregistry/pkg/v1/tarball/testdata/test_link.tar");
    let spec = format!("docker-archive:{}", archive.display());
    let r: Value =
        serde_json::from_str(&stella(d, &["scan", "--json", &spec]).ok().stdout).unwrap();
    assert_eq!(r["record"]["name"], "bazel/v1/tarball:test_image_1", "{r}");
    assert_eq!(
        r["record"]["layers"],
        json!(["sha256:8897395fd26dc44ad0e2a834335b33198cb41ac4d98dfddf58eced3853fa7b17"]),
        "{r}"
    );
    // The second image, by index or by its tag (skopeo's syntax): its first layer is the first image's
    // (cached), its second its own (analysed the first time only).
    for (pick, analysed) in [("@1", 1), ("bazel/v1/tarball:test_image_3", 0)] {
        let r: Value = serde_json::from_str(
            &stella(d, &["scan", "--json", &format!("{spec}:{pick}")])
                .ok()
                .stdout,
        )
        .unwrap();
        assert_eq!(r["record"]["name"], "bazel/v1/tarball:test_image_3", "{r}");
        assert_eq!(r["record"]["source"], format!("{spec}:{pick}"), "{r}");
        assert_eq!(
            r["record"]["layers"][0],
            "sha256:8897395fd26dc44ad0e2a834335b33198cb41ac4d98dfddf58eced3853fa7b17",
            "{r}"
        );
        assert_eq!(
            r["record"]["layers"].as_array().map(Vec::len),
            Some(2),
            "{r}"
        );
        assert_eq!(r["layers_analysed"], analysed, "{r}");
    }
    stella(d, &["scan", &format!("{spec}:@2")]).fails(
        2,
        "no image '@2' here; there are: @0 bazel/v1/tarball:test_image_1, @1 bazel/v1/tarball:test_image_3",
    );
}

/// An extra entry of a test docker-archive; names and link targets are written as given.
#[derive(Clone, Copy)]
enum Entry<'a> {
    File(&'a [u8]),
    Symlink(&'a str),
    HardLink(&'a str),
}

/// Writes a docker-archive of one image (config `c.json`, one layer named `layer`) with `extra` entries.
fn linked_archive(path: &Path, layer: &str, extra: &[(&str, Entry<'_>)]) {
    let manifest = serde_json::to_vec(&json!([{"Config": "c.json", "Layers": [layer]}])).unwrap();
    let mut entries = vec![
        ("manifest.json", Entry::File(&manifest)),
        ("c.json", Entry::File(b"{}")),
    ];
    entries.extend_from_slice(extra);
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    for (name, e) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        let (kind, data, target): (_, &[u8], &str) = match e {
            Entry::File(data) => (tar::EntryType::Regular, data, ""),
            Entry::Symlink(t) => (tar::EntryType::Symlink, b"", t),
            Entry::HardLink(t) => (tar::EntryType::Link, b"", t),
        };
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn docker_archive_links_that_loop_or_leave_the_archive_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    site(d);
    let tar_layer = layer(&[("/etc/os-release", Some(OS.as_bytes()))]);
    let cases = [
        (
            "symlink-loop",
            "a/layer.tar",
            vec![
                ("a/layer.tar", Entry::Symlink("../b/layer.tar")),
                ("b/layer.tar", Entry::HardLink("a/layer.tar")),
            ],
            "entry 'a/layer.tar' named by manifest.json is a link loop: 'a/layer.tar' -> \
             'b/layer.tar' -> 'a/layer.tar'",
        ),
        (
            "symlink-escape",
            "a/layer.tar",
            vec![
                ("a/layer.tar", Entry::Symlink("../../layer.tar")),
                ("layer.tar", Entry::File(&tar_layer)),
            ],
            "entry 'a/layer.tar' named by manifest.json leaves the archive: link 'a/layer.tar' \
             points to '../../layer.tar'",
        ),
        (
            "absolute-symlink",
            "a/layer.tar",
            vec![("a/layer.tar", Entry::Symlink("/etc/passwd"))],
            "entry 'a/layer.tar' named by manifest.json leaves the archive: link 'a/layer.tar' \
             points to '/etc/passwd'",
        ),
        (
            "dot-dot-path",
            "../layer.tar",
            vec![("../layer.tar", Entry::File(&tar_layer))],
            "entry '../layer.tar' named by manifest.json is outside the archive",
        ),
    ];
    for (attack, layer_name, extra, message) in cases {
        let path = d.join(format!("{attack}.tar"));
        linked_archive(&path, layer_name, &extra);
        stella(d, &["scan", &format!("docker-archive:{attack}.tar")]).fails(2, message);
    }
    // The same layer named through links that stay inside resolves: a symbolic link relative to its
    // directory, a hard link relative to the root.
    linked_archive(
        &d.join("links.tar"),
        "b/layer.tar",
        &[
            ("a/layer.tar", Entry::File(&tar_layer)),
            ("c/layer.tar", Entry::HardLink("./a/layer.tar")),
            ("b/layer.tar", Entry::Symlink("../c/layer.tar")),
        ],
    );
    let r: Value = serde_json::from_str(
        &stella(d, &["scan", "--json", "docker-archive:links.tar"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(r["record"]["os"]["version_id"], "3.19.1", "{r}");
}

#[test]
fn an_image_of_an_oci_layout_is_chosen_by_ref_name_or_index() {
    let Some(c) = corpus() else { return };
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    site(d);
    // go-containerregistry's layout test_index: refs 1 and 2 are images, 3 and 4 indexes.
    let dir = c.join("images/go-containerregistry/pkg/v1/layout/testdata/test_index");
    let spec = format!("oci-layout:{}", dir.display());
    let scan = |pick: &str| -> Value {
        serde_json::from_str(
            &stella(d, &["scan", "--json", &format!("{spec}:{pick}")])
                .ok()
                .stdout,
        )
        .unwrap()
    };
    let one = scan("1");
    assert_eq!(
        one["record"]["digest"],
        "sha256:eebff607b1628d67459b0596643fc07de70d702eccf030f0bc7bb6fc2b278650",
        "{one}"
    );
    assert_eq!(one["record"]["name"], "test_index:1", "{one}");
    assert_eq!(scan("@0")["record"]["digest"], one["record"]["digest"]);
    let two = scan("2");
    assert_eq!(
        two["record"]["digest"],
        "sha256:32589985702551b6c56033bb3334432a0a513bf9d6aceda0f67c42b003850720",
        "{two}"
    );
    // An index: the image is chosen inside it (ref 3's index holds image 1 again).
    let three = scan("3");
    assert_eq!(three["record"]["name"], "test_index:3", "{three}");
    assert_eq!(
        three["record"]["digest"], one["record"]["digest"],
        "{three}"
    );
    stella(d, &["scan", &format!("{spec}:9")])
        .fails(2, "no image '9' here; there are: @0 1, @1 2, @2 3, @3 4");
}
