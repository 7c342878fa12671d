//! Attacks on `stella-kit verify`, one named fixture each (tough-style: the crafted kit file is named
//! after the attack), once per crypto profile. Each asserts the exact exit code and that the error names
//! the entry, payload, volume file or kit concerned.
//!
//! Malicious kits are made from a good one: decompress, edit the tar (raw headers for `..` and absolute
//! names, link entry types, duplicates, extra entries), recompress. Attacks that must get past the
//! signature check keep `kit.json` and `kit.dsse.json` byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use stella_tests::craft::{self, pack, Ent};
use stella_tests::{digest_of, gen_key, kit, noise, osv, Run, AT, EXPIRES};

/// A temp dir with a site key and a good kit `good.kit` (channel stable, sequence 1) carrying a feed
/// document, a 384 KiB file (several zstd blocks) and a second small file.
struct Fx {
    t: tempfile::TempDir,
    profile: &'static str,
    site: String,
}

impl Fx {
    fn new(profile: &'static str) -> Fx {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let site = gen_key(d, profile, None, "site");
        fs::write(d.join("GHSA-1.json"), osv("GHSA-1", "2023-01-01T00:00:00Z")).unwrap();
        fs::write(d.join("noise.bin"), noise(384 << 10, 11)).unwrap();
        fs::write(d.join("readme.txt"), b"appliance update notes\n").unwrap();
        let fx = Fx { t, profile, site };
        fx.build(&[
            "--feeds",
            "GHSA-1.json",
            "--file",
            "noise.bin",
            "--file",
            "readme.txt",
            "--key",
            "site.key.pem",
            "--out",
            "good.kit",
        ])
        .ok();
        fx.verify("good.kit", &[]).ok();
        fx
    }

    fn d(&self) -> &Path {
        self.t.path()
    }

    fn build(&self, args: &[&str]) -> Run {
        let mut all = vec!["build", "--channel", "stable", "--quiet"];
        all.extend_from_slice(args);
        kit(self.d(), &all)
    }

    /// `verify --trust site.pub.pem --at AT EXTRA... KIT`.
    fn verify(&self, kit_file: &str, extra: &[&str]) -> Run {
        let mut all = vec!["verify", "--trust", "site.pub.pem", "--at", AT];
        all.extend_from_slice(extra);
        all.push(kit_file);
        kit(self.d(), &all)
    }

    fn good(&self) -> Vec<Ent> {
        craft::entries_of(&self.d().join("good.kit"))
    }

    /// Writes a crafted kit named after the attack; returns its file name.
    fn craft(&self, attack: &str, entries: &[Ent]) -> String {
        let name = format!("{attack}.kit");
        pack(&self.d().join(&name), entries);
        name
    }

    /// The tar path of a payload, from the good kit's manifest.
    fn path_of(&self, payload: &str) -> String {
        craft::path_of(&self.good(), payload)
    }

    fn index_of(entries: &[Ent], path: &str) -> usize {
        craft::index_of(entries, path)
    }

    fn alg(&self) -> &'static str {
        digest_of(self.profile)
    }
}

fn flipped_bit_payload(profile: &'static str) {
    let fx = Fx::new(profile);
    let path = fx.path_of("files/noise.bin");
    let mut e = fx.good();
    craft::flip_payload(&mut e, &path);
    let k = fx.craft("flipped-bit-payload", &e);
    fx.verify(&k, &[]).fails(
        1,
        &format!(
            "kit flipped-bit-payload.kit rejected: payload 'files/noise.bin' ({path}): {} digest mismatch",
            fx.alg()
        ),
    );
}

fn flipped_bit_manifest(profile: &'static str) {
    let fx = Fx::new(profile);
    let mut e = fx.good();
    // "channel": "stable" -> "stabld": still a well-formed manifest, no longer the one signed.
    craft::flip_manifest_channel(&mut e);
    let k = fx.craft("flipped-bit-manifest", &e);
    fx.verify(&k, &[]).fails(
        1,
        "entry 'kit.json': differs from the manifest signed in kit.dsse.json",
    );
}

fn flipped_bit_envelope(profile: &'static str) {
    let fx = Fx::new(profile);
    let mut e = fx.good();
    craft::flip_envelope_signature(&mut e);
    let k = fx.craft("flipped-bit-envelope", &e);
    let short = &fx.site[..16];
    let r = fx.verify(&k, &[]).fails(
        1,
        &format!(
            "kit.dsse.json: dsse envelope has 0 valid signature(s) from trusted '{profile}' keys, 1 required (key {short}: "
        ),
    );
    assert!(!r.stderr.contains("not trusted"), "{}", r.stderr);
}

fn truncated_kit(profile: &'static str) {
    let fx = Fx::new(profile);
    let good = fs::read(fx.d().join("good.kit")).unwrap();
    // Cut in half: inside the payloads, after the signed header.
    fs::write(fx.d().join("truncated-kit.kit"), &good[..good.len() / 2]).unwrap();
    fx.verify("truncated-kit.kit", &[])
        .fails(7, "kit truncated-kit.kit rejected: malformed kit: ")
        .fails(7, "(truncated or corrupt kit)");
    // Cut inside the first frame: nothing can be read at all.
    fs::write(fx.d().join("truncated-head.kit"), &good[..100]).unwrap();
    fx.verify("truncated-head.kit", &[])
        .fails(7, "kit truncated-head.kit rejected: malformed kit: ");
    // Cut at the end: only the zstd frame's end (and checksum) is lost.
    fs::write(fx.d().join("truncated-tail.kit"), &good[..good.len() - 4]).unwrap();
    fx.verify("truncated-tail.kit", &[])
        .fails(7, "kit truncated-tail.kit rejected: malformed kit: ");
}

fn missing_payload(profile: &'static str) {
    let fx = Fx::new(profile);
    let path = fx.path_of("files/readme.txt");
    let mut e = fx.good();
    e.remove(Fx::index_of(&e, &path));
    let k = fx.craft("missing-payload", &e);
    fx.verify(&k, &[]).fails(
        7,
        &format!("entry '{path}': payload 'files/readme.txt' is missing from the kit"),
    );
}

fn extra_undeclared_entry(profile: &'static str) {
    let fx = Fx::new(profile);
    let mut e = fx.good();
    let name = format!("blobs/{}/{}", fx.alg(), "0".repeat(64));
    e.push(Ent::raw(
        name.as_bytes(),
        tar::EntryType::Regular,
        b"#!/bin/sh\nrm -rf /\n".to_vec(),
        b"",
    ));
    let k = fx.craft("extra-undeclared-entry", &e);
    fx.verify(&k, &[]).fails(
        7,
        &format!("entry '{name}': is not declared in the signed manifest"),
    );
    // An extra entry before the payloads is caught the same way.
    let mut e = fx.good();
    e.insert(
        2,
        Ent::raw(b"install.sh", tar::EntryType::Regular, b"x".to_vec(), b""),
    );
    let k = fx.craft("extra-undeclared-entry-early", &e);
    fx.verify(&k, &[]).fails(
        7,
        "entry 'install.sh': is not declared in the signed manifest",
    );
    // Anything but zero padding after the end of the archive is refused too.
    craft::pack_with_trailer(
        &fx.d().join("trailing-data.kit"),
        &fx.good(),
        b"trailing junk",
    );
    fx.verify("trailing-data.kit", &[])
        .fails(7, "entry '(after end of archive)': trailing data");
}

fn duplicate_entry(profile: &'static str) {
    let fx = Fx::new(profile);
    let path = fx.path_of("files/readme.txt");
    let mut e = fx.good();
    let dup = e[Fx::index_of(&e, &path)].clone();
    e.push(dup);
    let k = fx.craft("duplicate-entry", &e);
    fx.verify(&k, &[]).fails(
        7,
        &format!("entry '{path}': appears twice (duplicate entry)"),
    );
    // A second manifest later in the stream.
    let mut e = fx.good();
    let m = e[0].clone();
    e.push(m);
    let k = fx.craft("duplicate-manifest", &e);
    fx.verify(&k, &[])
        .fails(7, "entry 'kit.json': appears twice (duplicate entry)");
}

fn dot_dot_path(profile: &'static str) {
    let fx = Fx::new(profile);
    let mut e = fx.good();
    e.push(Ent::raw(
        b"blobs/../../../etc/cron.d/evil",
        tar::EntryType::Regular,
        b"* * * * * root sh\n".to_vec(),
        b"",
    ));
    let k = fx.craft("dot-dot-path", &e);
    fx.verify(&k, &[]).fails(
        7,
        "entry 'blobs/../../../etc/cron.d/evil': path escapes the kit",
    );
    // Under a declared blob's own name.
    let path = fx.path_of("files/readme.txt");
    let mut e = fx.good();
    let i = Fx::index_of(&e, &path);
    let evil = format!("blobs/../{path}");
    e[i] = Ent::raw(
        evil.as_bytes(),
        tar::EntryType::Regular,
        e[i].data.clone(),
        b"",
    );
    let k = fx.craft("dot-dot-blob", &e);
    fx.verify(&k, &[])
        .fails(7, &format!("entry '{evil}': path escapes the kit"));
}

fn absolute_path(profile: &'static str) {
    let fx = Fx::new(profile);
    let mut e = fx.good();
    e.push(Ent::raw(
        b"/etc/passwd",
        tar::EntryType::Regular,
        b"root::0:0::/root:/bin/sh\n".to_vec(),
        b"",
    ));
    let k = fx.craft("absolute-path", &e);
    fx.verify(&k, &[])
        .fails(7, "entry '/etc/passwd': path escapes the kit");
}

fn symlink_entry(profile: &'static str) {
    let fx = Fx::new(profile);
    // A link under a declared blob's name, pointing out of the kit.
    let path = fx.path_of("files/readme.txt");
    let mut e = fx.good();
    let i = Fx::index_of(&e, &path);
    e[i] = Ent::raw(
        path.as_bytes(),
        tar::EntryType::Symlink,
        Vec::new(),
        b"/etc/shadow",
    );
    let k = fx.craft("symlink-entry", &e);
    fx.verify(&k, &[]).fails(
        7,
        &format!("entry '{path}': is a symbolic link; kits carry regular files only"),
    );
    // The manifest itself as a link.
    let mut e = fx.good();
    e[0] = Ent::raw(
        b"kit.json",
        tar::EntryType::Symlink,
        Vec::new(),
        b"/etc/passwd",
    );
    let k = fx.craft("symlink-manifest", &e);
    fx.verify(&k, &[])
        .fails(7, "entry 'kit.json': is a symbolic link");
}

fn hardlink_entry(profile: &'static str) {
    let fx = Fx::new(profile);
    let path = fx.path_of("files/readme.txt");
    let mut e = fx.good();
    let i = Fx::index_of(&e, &path);
    e[i] = Ent::raw(
        path.as_bytes(),
        tar::EntryType::Link,
        Vec::new(),
        b"/etc/shadow",
    );
    let k = fx.craft("hardlink-entry", &e);
    fx.verify(&k, &[]).fails(
        7,
        &format!("entry '{path}': is a hard link; kits carry regular files only"),
    );
}

fn untrusted_signer(profile: &'static str) {
    let fx = Fx::new(profile);
    let mallory = gen_key(fx.d(), profile, None, "mallory");
    fx.build(&[
        "--feeds",
        "GHSA-1.json",
        "--key",
        "mallory.key.pem",
        "--out",
        "untrusted-signer.kit",
    ])
    .ok();
    fx.verify("untrusted-signer.kit", &[]).fails(
        1,
        &format!(
            "kit untrusted-signer.kit rejected: kit.dsse.json: dsse envelope has 0 valid signature(s) from trusted '{profile}' keys, 1 required (key {}: key is not trusted)",
            &mallory[..16]
        ),
    );
}

fn other_profile_only(profile: &'static str, foreign: &'static str) {
    let fx = Fx::new(profile);
    let other = gen_key(fx.d(), foreign, None, "other");
    fx.build(&[
        "--feeds",
        "GHSA-1.json",
        "--key",
        "other.key.pem",
        "--out",
        "other-profile-only.kit",
    ])
    .ok();
    let r = fx.verify("other-profile-only.kit", &[]).fails(
        1,
        &format!(
            "dsse envelope has 0 valid signature(s) from trusted '{profile}' keys, 1 required (key {}: ",
            &other[..16]
        ),
    );
    assert!(r.stderr.contains("other-profile-only.kit"), "{}", r.stderr);
}

fn below_threshold(profile: &'static str) {
    let fx = Fx::new(profile);
    gen_key(fx.d(), profile, None, "second");
    fx.verify(
        "good.kit",
        &["--trust", "second.pub.pem", "--threshold", "2"],
    )
    .fails(
        1,
        &format!(
            "kit good.kit rejected: kit.dsse.json: dsse envelope has 1 valid signature(s) from trusted '{profile}' keys, 2 required"
        ),
    );
    // Signed by both: accepted at threshold 2.
    fx.build(&[
        "--feeds",
        "GHSA-1.json",
        "--key",
        "site.key.pem",
        "--key",
        "second.key.pem",
        "--sequence",
        "2",
        "--out",
        "both.kit",
    ])
    .ok();
    fx.verify(
        "both.kit",
        &["--trust", "second.pub.pem", "--threshold", "2"],
    )
    .ok();
    // The same key twice in the envelope is still one signer.
    let mut e = fx.good();
    let mut env: serde_json::Value = serde_json::from_slice(&e[1].data).unwrap();
    let sig = env["signatures"][0].clone();
    env["signatures"].as_array_mut().unwrap().push(sig);
    e[1] = Ent::raw(
        b"kit.dsse.json",
        tar::EntryType::Regular,
        serde_json::to_vec(&env).unwrap(),
        b"",
    );
    let k = fx.craft("repeated-signature", &e);
    fx.verify(&k, &["--trust", "second.pub.pem", "--threshold", "2"])
        .fails(1, "1 valid signature(s)");
}

fn expired_kit(profile: &'static str) {
    let fx = Fx::new(profile);
    // Built at 1700000000 with the default 30 days: expires at 1702592000.
    kit(
        fx.d(),
        &[
            "verify",
            "--trust",
            "site.pub.pem",
            "--at",
            "1702591999",
            "good.kit",
        ],
    )
    .ok();
    let r = kit(
        fx.d(),
        &[
            "verify",
            "--trust",
            "site.pub.pem",
            "--at",
            "1702592000",
            "good.kit",
        ],
    )
    .fails(
        4,
        &format!("kit 'stable-000001' expired at {EXPIRES} (now 2023-12-14T22:13:20Z)"),
    );
    assert!(r.stderr.contains("good.kit"), "{}", r.stderr);
    kit(
        fx.d(),
        &[
            "verify",
            "--trust",
            "site.pub.pem",
            "--at",
            "2024-06-01T00:00:00Z",
            "good.kit",
        ],
    )
    .fails(4, &format!("kit 'stable-000001' expired at {EXPIRES}"));
    // A short lifetime.
    fx.build(&[
        "--feeds",
        "GHSA-1.json",
        "--key",
        "site.key.pem",
        "--expires",
        "1h",
        "--id",
        "hotfix-1",
        "--out",
        "expired-kit.kit",
    ])
    .ok();
    kit(
        fx.d(),
        &[
            "verify",
            "--trust",
            "site.pub.pem",
            "--at",
            "1700003600",
            "expired-kit.kit",
        ],
    )
    .fails(4, "kit 'hotfix-1' expired at 2023-11-14T23:13:20Z");
}

fn zstd_bomb(profile: &'static str) {
    let fx = Fx::new(profile);
    // 100 MiB of zeros, as a sparse file: nothing on disk, a few KiB once compressed.
    craft::sparse_zeros(&fx.d().join("zeros.img"), 100 << 20);
    fx.build(&[
        "--file",
        "zeros.img",
        "--key",
        "site.key.pem",
        "--out",
        "zstd-bomb.kit",
    ])
    .ok();
    assert!(fs::metadata(fx.d().join("zstd-bomb.kit")).unwrap().len() < 64 << 10);
    fx.verify("zstd-bomb.kit", &[]).fails(
        8,
        "kit zstd-bomb.kit rejected: limit exceeded: decompression ratio above 250",
    );
    fx.verify("zstd-bomb.kit", &["--max-ratio", "100000"]).ok();
    fx.verify(
        "zstd-bomb.kit",
        &["--max-ratio", "100000", "--max-size", "1MiB"],
    )
    .fails(
        8,
        "limit exceeded: 104857600 payload bytes, above the limit of 1048576",
    );
}

/// A kit `split-1` split into 3 volumes of 1 MiB (`v.kit.001`…`003`, `v.kit.index`) next to the good kit.
fn volumes(fx: &Fx) {
    fs::write(fx.d().join("big.bin"), noise(2560 << 10, 21)).unwrap();
    fx.build(&[
        "--file",
        "big.bin",
        "--volume-size",
        "1MiB",
        "--key",
        "site.key.pem",
        "--id",
        "split-1",
        "--out",
        "v.kit",
    ])
    .ok();
    assert!(fx.d().join("v.kit.003").is_file());
    assert!(!fx.d().join("v.kit.004").exists());
    fx.verify("v.kit.001", &["v.kit.003", "v.kit.002"]).ok();
}

fn missing_volume(profile: &'static str) {
    let fx = Fx::new(profile);
    volumes(&fx);
    fx.verify("v.kit.001", &["v.kit.003"]).fails(
        7,
        "kit v.kit.003 rejected: volume 2 of 3 (v.kit.002) of kit 'split-1' is missing",
    );
    fx.verify("v.kit.001", &["v.kit.index", "v.kit.002"])
        .fails(7, "volume 3 of 3 (v.kit.003) of kit 'split-1' is missing");
    // Volumes without their index.
    fs::create_dir(fx.d().join("noindex")).unwrap();
    fs::copy(fx.d().join("v.kit.001"), fx.d().join("noindex/v.kit.001")).unwrap();
    fx.verify("noindex/v.kit.001", &[]).fails(
        7,
        "no volume index given or found next to the volumes (expected noindex/v.kit.index)",
    );
}

fn duplicated_volume(profile: &'static str) {
    let fx = Fx::new(profile);
    volumes(&fx);
    fs::create_dir(fx.d().join("copy")).unwrap();
    fs::copy(fx.d().join("v.kit.002"), fx.d().join("copy/v.kit.002")).unwrap();
    fx.verify("v.kit.003", &["v.kit.001", "v.kit.002", "copy/v.kit.002"])
        .fails(
            7,
            "volume 2 of kit 'split-1' is given twice: v.kit.002 and copy/v.kit.002",
        );
}

fn foreign_volume(profile: &'static str) {
    let fx = Fx::new(profile);
    volumes(&fx);
    // The last volume of another kit (another channel, other bytes) in place of ours.
    fs::write(fx.d().join("other.bin"), noise(2200 << 10, 22)).unwrap();
    kit(
        fx.d(),
        &[
            "build",
            "--channel",
            "other",
            "--file",
            "other.bin",
            "--volume-size",
            "1MiB",
            "--key",
            "site.key.pem",
            "--out",
            "other.kit",
        ],
    )
    .ok();
    fs::create_dir(fx.d().join("foreign-volume")).unwrap();
    fs::copy(
        fx.d().join("other.kit.003"),
        fx.d().join("foreign-volume/v.kit.003"),
    )
    .unwrap();
    fx.verify("v.kit.002", &["v.kit.001", "foreign-volume/v.kit.003"])
        .fails(
            7,
            &format!(
                "foreign-volume/v.kit.003: not a volume of kit 'split-1' (it is from another kit: neither its {} digest nor its first or last bytes match any volume in the index)",
                fx.alg()
            ),
        );
    // A plain kit among volumes.
    fx.verify("v.kit.002", &["v.kit.001", "good.kit", "v.kit.003"])
        .fails(7, "good.kit: not a volume of kit 'split-1'");
    // The other kit's index with our volumes: they are not its volumes.
    fx.verify("v.kit.002", &["other.kit.index", "v.kit.003", "v.kit.001"])
        .fails(7, "v.kit.003: not a volume of kit 'other-000001'");
}

/// A volume of another kit with the same number and the same size as ours: named foreign (malformed, 7),
/// not taken for a corrupt volume of this kit.
fn foreign_same_size_volume(profile: &'static str) {
    let fx = Fx::new(profile);
    volumes(&fx);
    // Same build but other bytes in big.bin: the same volume sizes, every volume different.
    fs::write(fx.d().join("big2.bin"), noise(2560 << 10, 23)).unwrap();
    fs::create_dir(fx.d().join("other")).unwrap();
    fx.build(&[
        "--file",
        "big2.bin",
        "--volume-size",
        "1MiB",
        "--key",
        "site.key.pem",
        "--id",
        "split-2",
        "--out",
        "other/v.kit",
    ])
    .ok();
    let size = |p: &str| fs::metadata(fx.d().join(p)).unwrap().len();
    assert_eq!(size("v.kit.002"), size("other/v.kit.002"));
    fs::create_dir(fx.d().join("swapped")).unwrap();
    for (from, to) in [
        ("v.kit.001", "swapped/v.kit.001"),
        ("other/v.kit.002", "swapped/v.kit.002"),
        ("v.kit.003", "swapped/v.kit.003"),
        ("v.kit.index", "swapped/v.kit.index"),
    ] {
        fs::copy(fx.d().join(from), fx.d().join(to)).unwrap();
    }
    fx.verify("swapped/v.kit.001", &["swapped/v.kit.002", "swapped/v.kit.003"])
        .fails(
            7,
            &format!(
                "kit swapped/v.kit.002 rejected: swapped/v.kit.002: not a volume of kit 'split-1' (it is from another kit: neither its {} digest nor its first or last bytes match any volume in the index)",
                fx.alg()
            ),
        );
}

/// A flipped byte in a volume: corrupt (a digest mismatch, 1), naming the volume and where it differs, also
/// when the file is not named after it.
fn corrupt_volume(profile: &'static str) {
    let fx = Fx::new(profile);
    volumes(&fx);
    let good = fs::read(fx.d().join("v.kit.002")).unwrap();
    let flipped = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x01;
        b
    };
    let alg = fx.alg();
    for (at, name, detail) in [
        (
            good.len() / 2,
            "v.kit.002",
            "its first and last 64 KiB match the index, it differs between them",
        ),
        (
            100,
            "v.kit.002",
            "its first 64 KiB differ, its last 64 KiB match the index",
        ),
        (
            good.len() - 100,
            "v.kit.002",
            "its first 64 KiB match the index, its last 64 KiB differ",
        ),
        (
            good.len() / 2,
            "v.kit.009",
            "its first and last 64 KiB match the index, it differs between them",
        ),
    ] {
        let dir = tempfile::tempdir_in(fx.d()).unwrap();
        let file = dir.path().join(name);
        fs::write(&file, flipped(at)).unwrap();
        let file = file.to_str().unwrap();
        fx.verify("v.kit.001", &["v.kit.index", file, "v.kit.003"])
            .fails(
                1,
                &format!(
                    "{file}: volume 2 of kit 'split-1' is corrupt ({alg} digest mismatch; {detail})"
                ),
            );
    }
}

fn truncated_volume(profile: &'static str) {
    let fx = Fx::new(profile);
    volumes(&fx);
    let p = fx.d().join("v.kit.003");
    let b = fs::read(&p).unwrap();
    let half = b.len() / 2;
    fs::write(&p, &b[..half]).unwrap();
    fx.verify("v.kit.001", &["v.kit.002", "v.kit.003"]).fails(
        7,
        &format!(
            "v.kit.003: volume 3 of kit 'split-1' is truncated ({half} of {} bytes; its first 64 KiB match the index)",
            b.len()
        ),
    );
}

fn untrusted_volume_index(profile: &'static str) {
    let fx = Fx::new(profile);
    volumes(&fx);
    // Same volumes, the index re-signed by a key the site does not trust.
    gen_key(fx.d(), profile, None, "mallory");
    let env: serde_json::Value =
        serde_json::from_slice(&fs::read(fx.d().join("v.kit.index")).unwrap()).unwrap();
    let payload = env["payload"].as_str().unwrap();
    fs::write(fx.d().join("index.b64"), payload).unwrap();
    let decoded = stella_tests::tool("base64", fx.d(), &["-d", "index.b64"]).ok();
    fs::write(fx.d().join("index.json"), decoded.stdout).unwrap();
    let forged = kit(
        fx.d(),
        &[
            "dsse",
            "sign",
            "--key",
            "mallory.key.pem",
            "--payload-type",
            "application/vnd.stella.kit.volumes+json",
            "index.json",
        ],
    )
    .ok();
    fs::create_dir(fx.d().join("forged")).unwrap();
    fs::write(fx.d().join("forged/v.kit.index"), forged.stdout).unwrap();
    fx.verify(
        "v.kit.001",
        &["forged/v.kit.index", "v.kit.002", "v.kit.003"],
    )
    .fails(
        1,
        &format!(
            "volume index forged/v.kit.index: dsse envelope has 0 valid signature(s) from trusted '{profile}' keys"
        ),
    );
}

macro_rules! per_profile {
    ($($name:ident: $profile:expr, $foreign:expr;)*) => {$(
        mod $name {
            #[test] fn flipped_bit_payload() { super::flipped_bit_payload($profile) }
            #[test] fn flipped_bit_manifest() { super::flipped_bit_manifest($profile) }
            #[test] fn flipped_bit_envelope() { super::flipped_bit_envelope($profile) }
            #[test] fn truncated_kit() { super::truncated_kit($profile) }
            #[test] fn missing_payload() { super::missing_payload($profile) }
            #[test] fn extra_undeclared_entry() { super::extra_undeclared_entry($profile) }
            #[test] fn duplicate_entry() { super::duplicate_entry($profile) }
            #[test] fn dot_dot_path() { super::dot_dot_path($profile) }
            #[test] fn absolute_path() { super::absolute_path($profile) }
            #[test] fn symlink_entry() { super::symlink_entry($profile) }
            #[test] fn hardlink_entry() { super::hardlink_entry($profile) }
            #[test] fn untrusted_signer() { super::untrusted_signer($profile) }
            #[test] fn other_profile_only() { super::other_profile_only($profile, $foreign) }
            #[test] fn below_threshold() { super::below_threshold($profile) }
            #[test] fn expired_kit() { super::expired_kit($profile) }
            #[test] fn zstd_bomb() { super::zstd_bomb($profile) }
            #[test] fn missing_volume() { super::missing_volume($profile) }
            #[test] fn duplicated_volume() { super::duplicated_volume($profile) }
            #[test] fn foreign_volume() { super::foreign_volume($profile) }
            #[test] fn foreign_same_size_volume() { super::foreign_same_size_volume($profile) }
            #[test] fn corrupt_volume() { super::corrupt_volume($profile) }
            #[test] fn truncated_volume() { super::truncated_volume($profile) }
            #[test] fn untrusted_volume_index() { super::untrusted_volume_index($profile) }
        }
    )*};
}

per_profile! {
    fips: "fips", "gost";
    eidas: "eidas", "sm";
    gost: "gost", "fips";
    sm: "sm", "eidas";
}
