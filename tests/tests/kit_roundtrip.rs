//! `stella-kit build` → `verify` → `inspect` round trips, driven as a user would, once per crypto profile:
//! plain, dual-profile, reproducible, delta, split into volumes, age-encrypted, and sequence continuation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use stella_tests::{corpus, digest_of, gen_key, kit, noise, osv, tool, Run, AT, EXPIRES};

/// Small inputs of every kind; returns the payload names they become.
fn write_inputs(d: &Path) -> Vec<&'static str> {
    fs::create_dir_all(d.join("feeds/osv")).unwrap();
    fs::create_dir_all(d.join("policy/default")).unwrap();
    fs::write(
        d.join("feeds/osv/GHSA-1.json"),
        osv("GHSA-1", "2023-01-01T00:00:00Z"),
    )
    .unwrap();
    fs::write(
        d.join("feeds/osv/GHSA-2.json"),
        osv("GHSA-2", "2023-01-01T00:00:00Z"),
    )
    .unwrap();
    fs::write(
        d.join("policy/default/rules.yaml"),
        b"deny:\n  - severity: critical\n",
    )
    .unwrap();
    fs::write(d.join("noise.bin"), noise(64 << 10, 1)).unwrap();
    vec![
        "feeds/osv/GHSA-1.json",
        "feeds/osv/GHSA-2.json",
        "policy/default/rules.yaml",
        "trust/site.pub.pem",
        "files/noise.bin",
    ]
}

const INPUT_ARGS: &[&str] = &[
    "--feeds",
    "feeds/osv",
    "--policy",
    "policy/default",
    "--trust",
    "site.pub.pem",
    "--file",
    "noise.bin",
];

fn build(d: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["build", "--channel", "stable", "--quiet"];
    args.extend_from_slice(extra);
    kit(d, &args)
}

fn verify(d: &Path, args: &[&str]) -> Run {
    let mut all = vec!["verify", "--at", AT];
    all.extend_from_slice(args);
    kit(d, &all)
}

/// `tar --zstd -tf`: the entry names in order.
fn tar_list(d: &Path, file: &str) -> Vec<String> {
    tool("tar", d, &["--zstd", "-tf", file])
        .ok()
        .stdout
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `kit.json` as extracted by the standard tool.
fn tar_manifest(d: &Path, file: &str) -> String {
    let r = tool("tar", d, &["--zstd", "-xOf", file, "kit.json"]).ok();
    assert!(r.stdout.starts_with('{'), "{}", r.stdout);
    r.stdout
}

fn inspect_json(d: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["inspect", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&kit(d, &all).ok().stdout).unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn check_roundtrip(profile: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let key_id = gen_key(d, profile, None, "site");
    let names = write_inputs(d);
    let mut args: Vec<String> = INPUT_ARGS.iter().map(|s| s.to_string()).collect();
    let mut with_images = false;
    if let Some(c) = corpus() {
        let v1 = c.join("images/go-containerregistry/pkg/v1");
        let layout = v1.join("layout/testdata/test_index");
        let archive = v1.join("tarball/testdata/test_image_1.tar");
        if layout.is_dir() && archive.is_file() {
            args.push("--image".into());
            args.push(format!("oci-layout:{}", layout.display()));
            args.push("--image".into());
            args.push(format!("docker-archive:{}", archive.display()));
            with_images = true;
        } else {
            eprintln!(
                "skipping the image part: corpus images not found under {}",
                v1.display()
            );
        }
    }
    args.extend(["--key", "site.key.pem", "--out", "k.kit"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let b = build(d, &args).ok();
    assert!(
        b.stdout
            .contains("kit: stable-000001 (channel stable, sequence 1)"),
        "{}",
        b.stdout
    );
    assert!(b.stdout.contains("wrote: k.kit"), "{}", b.stdout);
    assert_eq!(
        mode(&d.join("k.kit")),
        0o644,
        "a kit is a published artifact"
    );

    let v = verify(d, &["--trust", "site.pub.pem", "k.kit"]).ok();
    assert!(
        v.stdout.contains(&format!("signature {key_id}: valid")),
        "{}",
        v.stdout
    );
    assert!(
        v.stdout
            .contains("Verified OK: kit 'stable-000001' channel 'stable' sequence 1, ")
            && v.stdout.contains(&format!("expires {EXPIRES}")),
        "{}",
        v.stdout
    );

    // inspect lists every payload, by name, and the signer.
    let text = kit(d, &["inspect", "k.kit"]).ok().stdout;
    assert!(text.contains(&format!("signer:     {key_id}")), "{text}");
    assert!(text.contains(&format!("profiles:   {profile}\n")), "{text}");
    assert!(text.contains("base:       none (full kit)"), "{text}");
    let json = inspect_json(d, &["k.kit"]);
    let payloads = json["manifest"]["payloads"].as_array().unwrap();
    for n in &names {
        assert!(
            payloads.iter().any(|p| p["name"] == *n),
            "payload {n} missing from {json}"
        );
    }
    for p in payloads {
        let name = p["name"].as_str().unwrap();
        assert!(text.contains(name), "inspect does not list {name}:\n{text}");
        assert!(
            p["path"]
                .as_str()
                .unwrap()
                .starts_with(&format!("blobs/{}/", digest_of(profile))),
            "{p}"
        );
    }
    if with_images {
        let images = json["manifest"]["images"].as_array().unwrap();
        assert!(images
            .iter()
            .any(|i| i["source"].as_str().unwrap().starts_with("oci-layout:")));
        assert!(images
            .iter()
            .any(|i| i["source"].as_str().unwrap().starts_with("docker-archive:")));
        assert_eq!(
            text.matches("\nimage:      ").count(),
            images.len(),
            "{text}"
        );
        assert!(payloads.iter().any(|p| p["kind"] == "oci-blob"), "{json}");
    } else {
        assert_eq!(payloads.len(), names.len(), "{json}");
    }

    // Standard tools read it: kit.json first, kit.dsse.json second, then each carried blob once.
    let list = tar_list(d, "k.kit");
    assert_eq!(list[0], "kit.json", "{list:?}");
    assert_eq!(list[1], "kit.dsse.json", "{list:?}");
    let blobs: BTreeSet<&str> = list[2..].iter().map(String::as_str).collect();
    assert_eq!(blobs.len(), list.len() - 2, "duplicate entries: {list:?}");
    let declared: BTreeSet<&str> = payloads
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(blobs, declared);
    // The payload bytes come back unchanged.
    fs::create_dir(d.join("x")).unwrap();
    tool("tar", d, &["--zstd", "-xf", "k.kit", "-C", "x"]).ok();
    let noise_path = payloads
        .iter()
        .find(|p| p["name"] == "files/noise.bin")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        fs::read(d.join("x").join(&noise_path)).unwrap(),
        fs::read(d.join("noise.bin")).unwrap()
    );
    assert_eq!(
        fs::read_to_string(d.join("x/kit.json")).unwrap(),
        tar_manifest(d, "k.kit")
    );
}

fn check_dual_profile(profile: &str, foreign: &str, absent: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let site = gen_key(d, profile, None, "site");
    let other = gen_key(d, foreign, None, "other");
    gen_key(d, absent, None, "absent");
    write_inputs(d);
    let mut args = INPUT_ARGS.to_vec();
    args.extend([
        "--key",
        "site.key.pem",
        "--key",
        "other.key.pem",
        "--out",
        "dual.kit",
    ]);
    build(d, &args).ok();
    let text = kit(d, &["inspect", "dual.kit"]).ok().stdout;
    assert!(
        text.contains(&format!("profiles:   {profile}, {foreign}\n")),
        "{text}"
    );
    // Each payload carries a digest per profile.
    let json = inspect_json(d, &["dual.kit"]);
    for p in json["manifest"]["payloads"].as_array().unwrap() {
        let digests = p["digests"].as_object().unwrap();
        assert!(digests.contains_key(digest_of(profile)), "{p}");
        assert!(digests.contains_key(digest_of(foreign)), "{p}");
    }

    let v = verify(d, &["--trust", "site.pub.pem", "dual.kit"]).ok();
    assert!(
        v.stdout.contains(&format!("signature {site}: valid")),
        "{}",
        v.stdout
    );
    assert!(
        v.stdout
            .contains(&format!("signature {other}: key is not trusted")),
        "{}",
        v.stdout
    );
    let v = verify(d, &["--trust", "other.pub.pem", "dual.kit"]).ok();
    assert!(
        v.stdout.contains(&format!("signature {other}: valid")),
        "{}",
        v.stdout
    );
    verify(
        d,
        &["--trust", "other.pub.pem", "--profile", foreign, "dual.kit"],
    )
    .ok();
    // Not signed for the third profile: no trusted signature under it.
    verify(
        d,
        &["--trust", "absent.pub.pem", "--profile", absent, "dual.kit"],
    )
    .fails(
        1,
        &format!("0 valid signature(s) from trusted '{absent}' keys, 1 required"),
    );
}

/// A FIPS signature is a valid eIDAS-scheme signature (ECDSA P-256), but the kit does not claim eIDAS.
#[test]
fn fips_kit_verified_under_eidas_is_not_signed_for_it() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, "fips", None, "site");
    write_inputs(d);
    let mut args = INPUT_ARGS.to_vec();
    args.extend(["--key", "site.key.pem", "--out", "k.kit"]);
    build(d, &args).ok();
    verify(
        d,
        &["--trust", "site.pub.pem", "--profile", "eidas", "k.kit"],
    )
    .fails(1, "kit is signed for profiles [\"fips\"], not for 'eidas'");
}

fn check_rebuild(profile: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, profile, None, "site");
    write_inputs(d);
    let mut a = INPUT_ARGS.to_vec();
    a.extend(["--sequence", "5", "--key", "site.key.pem", "--out", "a.kit"]);
    build(d, &a).ok();
    // The same inputs given in another order.
    let mut b: Vec<&str> = INPUT_ARGS.chunks(2).rev().flatten().copied().collect();
    b.extend(["--sequence", "5", "--key", "site.key.pem", "--out", "b.kit"]);
    build(d, &b).ok();
    assert_eq!(tar_manifest(d, "a.kit"), tar_manifest(d, "b.kit"));
    assert_eq!(tar_list(d, "a.kit"), tar_list(d, "b.kit"));
    // A different sequence is a different manifest.
    let mut c = INPUT_ARGS.to_vec();
    c.extend(["--sequence", "6", "--key", "site.key.pem", "--out", "c.kit"]);
    build(d, &c).ok();
    assert_ne!(tar_manifest(d, "a.kit"), tar_manifest(d, "c.kit"));
    verify(d, &["--trust", "site.pub.pem", "b.kit"]).ok();
}

/// Ed25519 signatures are deterministic, so the whole kit (and every volume and the index) is identical.
#[test]
fn ed25519_rebuild_is_byte_identical() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, "fips", Some("ed25519"), "site");
    write_inputs(d);
    fs::write(d.join("big.bin"), noise(1536 << 10, 9)).unwrap();
    for out in ["a", "b"] {
        let mut args = INPUT_ARGS.to_vec();
        let kit_name = format!("{out}.kit");
        let vol_dir = format!("{out}-vol");
        fs::create_dir(d.join(&vol_dir)).unwrap();
        let vol_out = format!("{vol_dir}/v.kit");
        args.extend([
            "--sequence",
            "3",
            "--key",
            "site.key.pem",
            "--out",
            &kit_name,
        ]);
        build(d, &args).ok();
        let mut args = INPUT_ARGS.to_vec();
        args.extend([
            "--file",
            "big.bin",
            "--volume-size",
            "1MiB",
            "--sequence",
            "3",
            "--key",
            "site.key.pem",
            "--out",
            &vol_out,
        ]);
        build(d, &args).ok();
    }
    assert_eq!(
        fs::read(d.join("a.kit")).unwrap(),
        fs::read(d.join("b.kit")).unwrap(),
        "Ed25519 kit rebuilt from the same inputs differs"
    );
    for f in ["v.kit.001", "v.kit.002", "v.kit.index"] {
        assert_eq!(
            fs::read(d.join("a-vol").join(f)).unwrap(),
            fs::read(d.join("b-vol").join(f)).unwrap(),
            "{f} differs"
        );
    }
}

/// Payloads of 1 MiB and more are compressed while they are hashed, straight into the kit (one read of
/// each input); the kit is the one a two-pass build writes, and standard tools read it.
fn check_single_read(profile: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, profile, None, "site");
    write_inputs(d);
    fs::write(d.join("big1.bin"), noise(3 << 20, 21)).unwrap();
    // The same bytes under another name: one tar entry for both payloads.
    fs::write(d.join("big2.bin"), noise(3 << 20, 21)).unwrap();
    fs::write(d.join("big3.bin"), noise(1 << 20, 22)).unwrap();
    let mut args = INPUT_ARGS.to_vec();
    args.extend([
        "--file",
        "big3.bin",
        "--file",
        "big2.bin",
        "--file",
        "big1.bin",
        "--key",
        "site.key.pem",
        "--sequence",
        "2",
    ]);
    let mut one = args.clone();
    one.extend(["--single-read", "--out", "one.kit"]);
    build(d, &one).ok();
    let mut two = args.clone();
    two.extend(["--two-pass", "--out", "two.kit"]);
    build(d, &two).ok();
    let mut auto = args.clone();
    auto.extend(["--out", "auto.kit"]);
    build(d, &auto).ok();
    assert_eq!(tar_manifest(d, "one.kit"), tar_manifest(d, "two.kit"));
    assert_eq!(tar_manifest(d, "one.kit"), tar_manifest(d, "auto.kit"));
    let list = tar_list(d, "one.kit");
    assert_eq!(list, tar_list(d, "two.kit"));
    assert_eq!(list, tar_list(d, "auto.kit"));
    // kit.json, kit.dsse.json, the two large entries (big1 = big2, big3) by name, then the small ones.
    let json = inspect_json(d, &["one.kit"]);
    let path = |name: &str| {
        json["manifest"]["payloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["path"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(path("files/big1.bin"), path("files/big2.bin"));
    assert_eq!(list.len(), 2 + 2 + 5, "{list:?}");
    assert_eq!(list[2], path("files/big1.bin"), "{list:?}");
    assert_eq!(list[3], path("files/big3.bin"), "{list:?}");
    for k in ["one.kit", "two.kit", "auto.kit"] {
        verify(d, &["--trust", "site.pub.pem", k]).ok();
    }
    fs::create_dir(d.join("x")).unwrap();
    tool("tar", d, &["--zstd", "-xf", "one.kit", "-C", "x"]).ok();
    assert!(
        fs::read(d.join("x").join(path("files/big1.bin"))).unwrap()
            == fs::read(d.join("big1.bin")).unwrap()
    );
    // No temporary or spill file is left next to the kits.
    let hidden: Vec<String> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

/// With Ed25519 the kit read once, the kit read twice and the concatenated volumes are the same bytes.
#[test]
fn ed25519_single_read_two_pass_and_volumes_are_the_same_bytes() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, "fips", Some("ed25519"), "site");
    write_inputs(d);
    fs::write(d.join("big.bin"), noise(2560 << 10, 31)).unwrap();
    fs::create_dir(d.join("vol")).unwrap();
    let mut args = INPUT_ARGS.to_vec();
    args.extend([
        "--file",
        "big.bin",
        "--key",
        "site.key.pem",
        "--sequence",
        "7",
    ]);
    for extra in [
        &["--single-read", "--out", "one.kit"][..],
        &["--two-pass", "--out", "two.kit"],
        &["--out", "auto.kit"],
        &["--volume-size", "1MiB", "--out", "vol/v.kit"],
    ] {
        let mut a = args.clone();
        a.extend_from_slice(extra);
        build(d, &a).ok();
    }
    let one = fs::read(d.join("one.kit")).unwrap();
    assert!(
        one == fs::read(d.join("two.kit")).unwrap(),
        "one read and two passes differ"
    );
    assert!(
        one == fs::read(d.join("auto.kit")).unwrap(),
        "the default build differs"
    );
    let mut joined = Vec::new();
    for v in volumes_in(&d.join("vol"), "v.kit") {
        joined.extend(fs::read(d.join("vol").join(v)).unwrap());
    }
    assert!(one == joined, "the volumes do not concatenate to the kit");
}

fn check_delta(profile: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, profile, None, "site");
    write_inputs(d);
    let mut args = INPUT_ARGS.to_vec();
    args.extend(["--key", "site.key.pem", "--out", "base.kit"]);
    build(d, &args).ok();
    // One changed feed document and one new one.
    fs::write(
        d.join("feeds/osv/GHSA-2.json"),
        osv("GHSA-2", "2023-02-02T00:00:00Z"),
    )
    .unwrap();
    fs::write(
        d.join("feeds/osv/GHSA-3.json"),
        osv("GHSA-3", "2023-02-02T00:00:00Z"),
    )
    .unwrap();
    let mut args = INPUT_ARGS.to_vec();
    args.extend([
        "--base",
        "base.kit",
        "--key",
        "site.key.pem",
        "--out",
        "delta.kit",
    ]);
    let b = build(d, &args).ok();
    assert!(b.stdout.contains("sequence 2"), "{}", b.stdout);
    let text = kit(d, &["inspect", "delta.kit"]).ok().stdout;
    assert!(
        text.contains("base:       stable-000001 (delta; 2 of 6 payloads carried)"),
        "{text}"
    );
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_end().ends_with(name) || l.contains(&format!("{name}  (")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{text}"))
            .to_owned()
    };
    for unchanged in [
        "feeds/osv/GHSA-1.json",
        "policy/default/rules.yaml",
        "trust/site.pub.pem",
        "files/noise.bin",
    ] {
        assert!(line(unchanged).ends_with("(in base)"), "{text}");
    }
    for carried in ["feeds/osv/GHSA-2.json", "feeds/osv/GHSA-3.json"] {
        assert!(!line(carried).contains("(in base)"), "{text}");
    }
    let json = inspect_json(d, &["delta.kit"]);
    assert_eq!(json["manifest"]["base"]["id"], "stable-000001");
    assert!(json["manifest"]["base"]["digests"][digest_of(profile)].is_string());
    assert_eq!(tar_list(d, "delta.kit").len(), 2 + 2);
    verify(d, &["--trust", "site.pub.pem", "delta.kit"]).ok();
    let (base, delta) = (
        fs::metadata(d.join("base.kit")).unwrap().len(),
        fs::metadata(d.join("delta.kit")).unwrap().len(),
    );
    assert!(delta < base / 4, "delta {delta} bytes, base {base}");
}

/// The volume files a split build wrote, in name order.
fn volumes_in(dir: &Path, name: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            n.strip_prefix(&format!("{name}."))
                .is_some_and(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    v.sort();
    v
}

fn check_volumes(profile: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, profile, None, "site");
    fs::write(d.join("big.bin"), noise(3584 << 10, 3)).unwrap();
    fs::write(d.join("small.json"), osv("GHSA-9", "2023-01-01T00:00:00Z")).unwrap();
    let b = build(
        d,
        &[
            "--file",
            "big.bin",
            "--feeds",
            "small.json",
            "--volume-size",
            "1MiB",
            "--key",
            "site.key.pem",
            "--out",
            "v.kit",
        ],
    )
    .ok();
    let vols = volumes_in(d, "v.kit");
    assert!(vols.len() >= 4, "{vols:?}\n{}", b.stdout);
    assert!(
        !d.join("v.kit").exists(),
        "a split kit writes no whole file"
    );
    assert!(d.join("v.kit.index").is_file());
    for (i, v) in vols.iter().enumerate() {
        assert_eq!(v, &format!("v.kit.{:03}", i + 1));
        let len = fs::metadata(d.join(v)).unwrap().len();
        assert!(len <= 1 << 20, "{v}: {len}");
        if i + 1 < vols.len() {
            assert_eq!(len, 1 << 20, "{v}");
        }
        assert_eq!(mode(&d.join(v)), 0o644, "{v}");
        assert!(b.stdout.contains(v.as_str()), "{}", b.stdout);
    }
    let n = vols.len();
    let ok = format!("volumes: {n} verified");

    // Shuffled, the index found beside the first volume.
    let mut shuffled: Vec<&str> = vols.iter().map(String::as_str).collect();
    shuffled.reverse();
    shuffled.swap(0, n / 2);
    let mut args = vec!["--trust", "site.pub.pem"];
    args.extend(&shuffled);
    let v = verify(d, &args).ok();
    assert!(v.stdout.contains(&ok), "{}", v.stdout);
    assert!(
        v.stdout.contains("Verified OK: kit 'stable-000001'"),
        "{}",
        v.stdout
    );
    // Shuffled, the index named explicitly among them.
    let mut args = vec!["--trust", "site.pub.pem"];
    args.extend(&shuffled[..n / 2]);
    args.push("v.kit.index");
    args.extend(&shuffled[n / 2..]);
    verify(d, &args).ok();

    // From two directories (two USB sticks), the index beside the first volume named.
    fs::create_dir(d.join("A")).unwrap();
    fs::create_dir(d.join("B")).unwrap();
    fs::copy(d.join("v.kit.index"), d.join("A/v.kit.index")).unwrap();
    let mut spread = Vec::new();
    for (i, v) in vols.iter().enumerate() {
        let dir = if i % 2 == 0 { "A" } else { "B" };
        fs::copy(d.join(v), d.join(dir).join(v)).unwrap();
        spread.push(format!("{dir}/{v}"));
    }
    spread.rotate_left(2); // A/v.kit.003 first
    let mut args = vec!["--trust", "site.pub.pem"];
    args.extend(spread.iter().map(String::as_str));
    let v = verify(d, &args).ok();
    assert!(v.stdout.contains(&ok), "{}", v.stdout);
    // A volume from B first: its directory has no index, so name it.
    spread.rotate_left(1);
    assert!(spread[0].starts_with("B/"));
    let mut args = vec!["--trust", "site.pub.pem", "A/v.kit.index"];
    args.extend(spread.iter().map(String::as_str));
    verify(d, &args).ok();

    // Concatenated volumes are the plain kit.
    let mut whole = Vec::new();
    for v in &vols {
        whole.extend(fs::read(d.join(v)).unwrap());
    }
    fs::write(d.join("whole.kit"), whole).unwrap();
    let v = verify(d, &["--trust", "site.pub.pem", "whole.kit"]).ok();
    assert!(!v.stdout.contains("volumes:"), "{}", v.stdout);
    assert_eq!(tar_list(d, "whole.kit")[..2], ["kit.json", "kit.dsse.json"]);
    // inspect reads the volumes too.
    let mut args = vec!["inspect"];
    args.extend(&shuffled);
    let text = kit(d, &args).ok().stdout;
    assert!(text.contains("kit:        stable-000001"), "{text}");
    assert!(text.contains("files/big.bin"), "{text}");

    // The index samples each volume's ends: 64 KiB, or a quarter of a smaller last volume, hashed under
    // the profile (checked here with `stella-kit digest`).
    let env: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("v.kit.index")).unwrap()).unwrap();
    fs::write(d.join("index.b64"), env["payload"].as_str().unwrap()).unwrap();
    let index = tool("base64", d, &["-d", "index.b64"]).ok().stdout;
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    let alg = digest_of(profile);
    for (entry, v) in index["volumes"].as_array().unwrap().iter().zip(&vols) {
        let bytes = fs::read(d.join(v)).unwrap();
        let window = (bytes.len() / 4).min(64 << 10);
        let samples = &entry["samples"];
        assert_eq!(samples["window"], window, "{entry:#}");
        let keys: Vec<&String> = samples.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["head", "tail", "window"], "{entry:#}");
        for (end, part) in [
            ("head", &bytes[..window]),
            ("tail", &bytes[bytes.len() - window..]),
        ] {
            fs::write(d.join("part"), part).unwrap();
            let out = kit(d, &["digest", "--profile", profile, "part"])
                .ok()
                .stdout;
            let hex = out.split_whitespace().next().unwrap();
            assert_eq!(samples[end][alg], hex, "{v} {end}: {entry:#}");
        }
    }
}

fn check_encryption(profile: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, profile, None, "site");
    let names = write_inputs(d);
    let recipient = kit(d, &["key", "age-generate", "--out", "site.age"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");
    assert_eq!(mode(&d.join("site.age")), 0o600);
    kit(d, &["key", "age-generate", "--out", "other.age"]).ok();
    kit(d, &["key", "age-generate", "--out", "site.age"]).fails(2, "site.age");
    let mut args = INPUT_ARGS.to_vec();
    args.extend([
        "--encrypt-to",
        &recipient,
        "--key",
        "site.key.pem",
        "--out",
        "e.kit",
    ]);
    build(d, &args).ok();
    let bytes = fs::read(d.join("e.kit")).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1"));
    assert!(
        !bytes.windows(8).any(|w| w == b"GHSA-1.j"),
        "manifest in clear"
    );

    verify(d, &["--trust", "site.pub.pem", "e.kit"]).fails(2, "kit is encrypted with age");
    verify(
        d,
        &["--trust", "site.pub.pem", "--identity", "site.age", "e.kit"],
    )
    .ok();
    verify(
        d,
        &[
            "--trust",
            "site.pub.pem",
            "--identity",
            "other.age",
            "e.kit",
        ],
    )
    .fails(2, "kit is encrypted with age: cannot decrypt");
    kit(d, &["inspect", "e.kit"]).fails(2, "kit is encrypted with age");
    let text = kit(d, &["inspect", "--identity", "site.age", "e.kit"])
        .ok()
        .stdout;
    for n in names {
        assert!(text.contains(n), "{text}");
    }

    // Encrypted and split: the volumes carry the age stream.
    fs::write(d.join("big.bin"), noise(1536 << 10, 5)).unwrap();
    build(
        d,
        &[
            "--file",
            "big.bin",
            "--encrypt-to",
            &recipient,
            "--volume-size",
            "1MiB",
            "--key",
            "site.key.pem",
            "--out",
            "ev.kit",
        ],
    )
    .ok();
    verify(
        d,
        &[
            "--trust",
            "site.pub.pem",
            "--identity",
            "site.age",
            "ev.kit.002",
            "ev.kit.001",
        ],
    )
    .ok();
    verify(d, &["--trust", "site.pub.pem", "ev.kit.002", "ev.kit.001"])
        .fails(2, "kit is encrypted with age");
}

fn check_sequence(profile: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, profile, None, "site");
    fs::write(d.join("a.json"), osv("GHSA-1", "2023-01-01T00:00:00Z")).unwrap();
    let b = |channel: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "build",
            "--channel",
            channel,
            "--feeds",
            "a.json",
            "--key",
            "site.key.pem",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        kit(d, &args).ok().stdout
    };
    let s = b("feeds-daily", "1.kit", &[]);
    assert!(
        s.contains("kit: feeds-daily-000001 (channel feeds-daily, sequence 1)"),
        "{s}"
    );
    let s = b("feeds-daily", "2.kit", &[]);
    assert!(
        s.contains("kit: feeds-daily-000002 (channel feeds-daily, sequence 2)"),
        "{s}"
    );
    let s = b("stable", "3.kit", &[]);
    assert!(s.contains("(channel stable, sequence 1)"), "{s}");
    let s = b(
        "stable",
        "4.kit",
        &["--sequence", "10", "--id", "stable-ten"],
    );
    assert!(
        s.contains("kit: stable-ten (channel stable, sequence 10)"),
        "{s}"
    );
    let s = b("stable", "5.kit", &[]);
    assert!(s.contains("sequence 11"), "{s}");
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("state/sequences.json")).unwrap()).unwrap();
    assert_eq!(state, serde_json::json!({"feeds-daily": 2, "stable": 11}));
    let v = verify(d, &["--trust", "site.pub.pem", "2.kit"]).ok();
    assert!(
        v.stdout
            .contains("Verified OK: kit 'feeds-daily-000002' channel 'feeds-daily' sequence 2"),
        "{}",
        v.stdout
    );
}

macro_rules! per_profile {
    ($($name:ident: $profile:expr, $foreign:expr, $absent:expr;)*) => {$(
        mod $name {
            use super::*;
            #[test] fn build_verify_inspect() { check_roundtrip($profile) }
            #[test] fn dual_profile_kit() { check_dual_profile($profile, $foreign, $absent) }
            #[test] fn rebuild_gives_identical_manifest() { check_rebuild($profile) }
            #[test] fn large_payloads_are_read_once() { check_single_read($profile) }
            #[test] fn delta_against_base() { check_delta($profile) }
            #[test] fn volumes_in_any_order() { check_volumes($profile) }
            #[test] fn age_encryption() { check_encryption($profile) }
            #[test] fn sequence_continues_per_channel() { check_sequence($profile) }
        }
    )*};
}

per_profile! {
    fips: "fips", "gost", "sm";
    eidas: "eidas", "sm", "gost";
    gost: "gost", "fips", "sm";
    sm: "sm", "eidas", "gost";
}
