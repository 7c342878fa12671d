//! `stella import` end to end, once per crypto profile: the happy path, every attack fixture of
//! `kit_attacks.rs` now at import (each proving the store unchanged: `stella dump` byte-identical, the
//! refusal quarantined, the audit chain and `fsck` whole), replay and rollback, staleness and the clock,
//! delta kits, volumes and encryption, kit-signer rotation, watching a directory, and importing with no
//! network at all.
//!
//! Every test has its own temp dir and runs the appliance at `STELLA_NOW` ([`NOW`], one day after the
//! kits' `SOURCE_DATE_EPOCH`): no wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use stella_tests::craft::{self, pack, Ent};
use stella_tests::{
    corpus, digest_of, gen_key, kit, kit_at, noise, osv, run, run_env, tool, Run, EPOCH, EXPIRES,
};

const DAY: i64 = 86_400;
/// The appliance clock in these tests: one day after the kits were built.
const NOW: i64 = EPOCH + DAY;

/// A temp dir with a trusted kit-signer key `signer` and kit inputs: two OSV documents, a 384 KiB file
/// and a small one.
struct Fx {
    t: tempfile::TempDir,
    profile: &'static str,
    signer: String,
}

impl Fx {
    fn new(profile: &'static str) -> Fx {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let signer = gen_key(d, profile, None, "signer");
        fs::write(d.join("GHSA-1.json"), osv("GHSA-1", "2023-01-01T00:00:00Z")).unwrap();
        fs::write(d.join("GHSA-2.json"), osv("GHSA-2", "2023-02-01T00:00:00Z")).unwrap();
        fs::write(d.join("noise.bin"), noise(384 << 10, 11)).unwrap();
        fs::write(d.join("readme.txt"), b"appliance update notes\n").unwrap();
        Fx { t, profile, signer }
    }

    fn d(&self) -> &Path {
        self.t.path()
    }

    /// `stella-kit build --channel stable --quiet ARGS...` at [`EPOCH`].
    fn build(&self, args: &[&str]) -> Run {
        self.build_at(EPOCH, args)
    }

    fn build_at(&self, epoch: i64, args: &[&str]) -> Run {
        let mut all = vec!["build", "--channel", "stable", "--quiet"];
        all.extend_from_slice(args);
        kit_at(self.d(), epoch, &all)
    }

    /// A kit on channel stable at `sequence` with both feeds, both files, signed by `signer`.
    fn good(&self, sequence: &str, out: &str) {
        self.build(&[
            "--feeds",
            "GHSA-1.json",
            "--feeds",
            "GHSA-2.json",
            "--file",
            "noise.bin",
            "--file",
            "readme.txt",
            "--sequence",
            sequence,
            "--key",
            "signer.key.pem",
            "--out",
            out,
        ])
        .ok();
    }

    /// `stella init` of a site in `d/NAME` trusting `signer` (plus `extra` arguments).
    fn site(&self, name: &str, extra: &[&str]) -> Site {
        let s = Site {
            dir: self.d().to_owned(),
            data: self.d().join(name),
        };
        let mut args = vec![
            "init",
            "--profile",
            self.profile,
            "--kit-signer",
            "signer.pub.pem",
        ];
        args.extend_from_slice(extra);
        let r = s.run(&args).ok();
        assert!(r.stdout.contains(&format!("profile: {}", self.profile)));
        s
    }

    fn alg(&self) -> &'static str {
        digest_of(self.profile)
    }
}

/// A site's data directory, and the directory the commands run in.
struct Site {
    dir: PathBuf,
    data: PathBuf,
}

impl Site {
    /// `stella --data DATA ARGS...` with `STELLA_NOW` at `now`.
    fn at(&self, now: i64, args: &[&str]) -> Run {
        let mut all = vec!["--data", self.data.to_str().unwrap()];
        all.extend_from_slice(args);
        run_env(
            "stella",
            &self.dir,
            &all,
            &[("STELLA_NOW", &now.to_string())],
        )
    }

    fn run(&self, args: &[&str]) -> Run {
        self.at(NOW, args)
    }

    fn import(&self, inputs: &[&str]) -> Run {
        let mut all = vec!["import"];
        all.extend_from_slice(inputs);
        self.run(&all)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let r = self.run(args).ok();
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
    }

    /// The imported kit ids, in import order.
    fn kits(&self) -> Vec<String> {
        self.json(&["kits", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn quarantine(&self) -> Vec<serde_json::Value> {
        self.json(&["kits", "--quarantine", "--json"])
            .as_array()
            .unwrap()
            .clone()
    }

    fn dump(&self) -> String {
        self.run(&["dump"]).ok().stdout
    }

    fn audit_kinds(&self) -> Vec<String> {
        self.json(&["audit", "log", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    }

    /// `fsck` and `audit verify` both pass.
    fn whole(&self) {
        let f = self.run(&["fsck"]).ok();
        assert!(f.stdout.starts_with("fsck: ok"), "{}", f.stdout);
        let a = self.run(&["audit", "verify"]).ok();
        assert!(a.stdout.starts_with("audit chain ok"), "{}", a.stdout);
    }

    /// Imports `inputs` at `now` expecting refusal with `code` and `needle` in the message; proves the
    /// knowledge trees and blobs unchanged, the refusal quarantined and audited, the store whole.
    #[track_caller]
    fn refused_at(&self, now: i64, inputs: &[&str], code: i32, needle: &str) -> Run {
        let before = self.dump();
        let quarantined = self.quarantine().len();
        let mut all = vec!["import"];
        all.extend_from_slice(inputs);
        let r = self.at(now, &all).fails(code, needle);
        assert_eq!(
            before,
            self.dump(),
            "a refused import changed the store\nstderr: {}",
            r.stderr
        );
        let q = self.quarantine();
        assert_eq!(q.len(), quarantined + 1, "{q:#?}");
        let last = q.last().unwrap();
        assert!(
            last["reason"].as_str().unwrap().contains(needle),
            "quarantine reason lacks {needle:?}: {last:#}"
        );
        assert_eq!(last["exit_code"], code, "{last:#}");
        assert_eq!(self.audit_kinds().last().unwrap(), "kit-rejected");
        self.whole();
        r
    }

    #[track_caller]
    fn refused(&self, inputs: &[&str], code: i32, needle: &str) -> Run {
        self.refused_at(NOW, inputs, code, needle)
    }
}

// ---------------------------------------------------------------------------------------------------
// 1. The happy path.

fn happy_path(profile: &'static str) {
    let fx = Fx::new(profile);
    let d = fx.d();
    let site = fx.site("data", &[]);
    let mut args: Vec<String> = [
        "--feeds",
        "GHSA-1.json",
        "--feeds",
        "GHSA-2.json",
        "--file",
        "noise.bin",
    ]
    .map(String::from)
    .to_vec();
    let mut images = 0;
    if let Some(c) = corpus() {
        let archive =
            c.join("images/go-containerregistry/pkg/v1/tarball/testdata/test_image_1.tar");
        if archive.is_file() {
            args.push("--image".into());
            args.push(format!("docker-archive:{}", archive.display()));
            images = 1;
        } else {
            eprintln!("skipping the image part: {} not found", archive.display());
        }
    }
    args.extend(["--key", "signer.key.pem", "--out", "k.kit"].map(String::from));
    fx.build(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();

    let r = site.import(&["--json", "k.kit"]).ok();
    let signed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let receipt = &signed["receipt"];
    assert_eq!(receipt["result"], "accepted", "{receipt:#}");
    assert_eq!(receipt["kit"], "stable-000001");
    assert_eq!(receipt["channel"], "stable");
    assert_eq!(receipt["sequence"], 1);
    assert_eq!(receipt["exit_code"], 0);
    assert_eq!(receipt["number"], 1);
    assert_eq!(receipt["time"], "2023-11-15T22:13:20Z");
    assert_eq!(receipt["counts"]["feed_documents"], 2, "{receipt:#}");
    assert_eq!(receipt["counts"]["images"], images, "{receipt:#}");
    assert_eq!(receipt["warnings"], serde_json::json!([]));
    assert!(receipt["manifest_digest"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}:", fx.alg())));
    for c in receipt["checks"].as_array().unwrap() {
        assert!(c["result"].as_str().unwrap().starts_with("ok"), "{c}");
    }
    // The receipt's envelope verifies under the appliance's public key.
    fs::write(
        d.join("receipt.dsse.json"),
        serde_json::to_vec(&signed["envelope"]).unwrap(),
    )
    .unwrap();
    let pubkey = site.data.join("keys/appliance.pub.pem");
    let v = kit(
        d,
        &[
            "dsse",
            "verify",
            "--pub",
            pubkey.to_str().unwrap(),
            "--payload-out",
            "receipt.json",
            "receipt.dsse.json",
        ],
    )
    .ok();
    assert!(v.stdout.contains("import-receipt"), "{}", v.stdout);
    let payload: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("receipt.json")).unwrap()).unwrap();
    assert_eq!(&payload, receipt);
    // Not under a kit-signer key.
    kit(
        d,
        &[
            "dsse",
            "verify",
            "--pub",
            "signer.pub.pem",
            "receipt.dsse.json",
        ],
    )
    .fails(1, "0 valid signature(s)");

    let kits = site.json(&["kits", "--json"]);
    assert_eq!(kits.as_array().unwrap().len(), 1, "{kits:#}");
    assert_eq!(kits[0]["id"], "stable-000001");
    assert_eq!(kits[0]["sequence"], 1);
    assert_eq!(kits[0]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(kits[0]["expires"], EXPIRES);
    assert_eq!(kits[0]["imported"], "2023-11-15T22:13:20Z");
    assert_eq!(kits[0]["manifest_digest"], receipt["manifest_digest"]);
    assert!(kits[0]["base"].is_null() && kits[0]["forced"].is_null());

    let status = site.json(&["status", "--json"]);
    assert_eq!(status["profile"], profile);
    assert_eq!(status["signer_set_version"], 1);
    assert_eq!(status["threshold"], 1);
    assert!(status["kit_signers"][0]
        .as_str()
        .unwrap()
        .starts_with(&fx.signer));
    assert_eq!(status["kits"], 1);
    assert_eq!(status["quarantined"], 0);
    assert_eq!(status["feed_documents"], 2);
    assert_eq!(status["images"], images);
    assert_eq!(status["clock_high_water"], "2023-11-15T22:13:20Z");
    let ch = &status["channels"][0];
    assert_eq!(ch["channel"], "stable");
    assert_eq!(ch["sequence"], 1);
    assert_eq!(ch["latest_kit"], "stable-000001");
    assert_eq!(ch["age_days"], 1.0);
    assert_eq!(ch["stale"], false);

    // The next kit on the channel moves the high-water mark; the shared blobs are not duplicated.
    fx.good("2", "k2.kit");
    let text = site.import(&["k2.kit"]).ok().stdout;
    assert!(
        text.contains("imported kit 'stable-000002' (channel stable, sequence 2)"),
        "{text}"
    );
    assert!(
        text.contains("receipt 2 signed by the appliance key"),
        "{text}"
    );
    let status = site.json(&["status", "--json"]);
    assert_eq!(status["channels"][0]["sequence"], 2);
    assert_eq!(status["channels"][0]["latest_kit"], "stable-000002");
    assert_eq!(site.kits(), ["stable-000001", "stable-000002"]);
    let dump: serde_json::Value = serde_json::from_str(&site.dump()).unwrap();
    let blobs = dump["blobs"].as_array().unwrap();
    // GHSA-1, GHSA-2, noise.bin (+ image blobs), readme.txt: each once.
    assert!(blobs.len() >= 4, "{blobs:#?}");
    assert!(blobs
        .iter()
        .all(|b| b.as_str().unwrap().starts_with(&format!("{}/", fx.alg()))));
    assert!(dump["trees"]["feeds"].as_array().unwrap().len() == 2);
    assert!(
        dump["trees"].get("receipts").is_none(),
        "records only with --all"
    );
    let all: serde_json::Value =
        serde_json::from_str(&site.run(&["dump", "--all"]).ok().stdout).unwrap();
    assert_eq!(all["trees"]["receipts"].as_array().unwrap().len(), 2);

    site.whole();
    let f = site.json(&["fsck", "--json"]);
    assert_eq!(f["ok"], true, "{f}");
    assert_eq!(
        site.audit_kinds(),
        ["site-init", "kit-imported", "kit-imported"]
    );
    // The audit log names the kits and their receipts.
    let log = site.run(&["audit", "log"]).ok().stdout;
    assert!(log.contains("\"kit\":\"stable-000002\""), "{log}");
}

// ---------------------------------------------------------------------------------------------------
// 2. Every attack fixture of kit_attacks.rs, at import.

/// A site `data` that imported `first.kit` (stable 1: GHSA-1 and readme.txt, so blobs are shared with
/// the next kit), and `good.kit` (stable 2) to craft attacks from.
fn attacked(profile: &'static str) -> (Fx, Site) {
    let fx = Fx::new(profile);
    let site = fx.site("data", &[]);
    fx.build(&[
        "--feeds",
        "GHSA-1.json",
        "--file",
        "readme.txt",
        "--sequence",
        "1",
        "--key",
        "signer.key.pem",
        "--out",
        "first.kit",
    ])
    .ok();
    site.import(&["first.kit"]).ok();
    fx.good("2", "good.kit");
    (fx, site)
}

impl Fx {
    fn entries(&self) -> Vec<Ent> {
        craft::entries_of(&self.d().join("good.kit"))
    }

    fn path_of(&self, payload: &str) -> String {
        craft::path_of(&self.entries(), payload)
    }

    fn craft(&self, attack: &str, entries: &[Ent]) -> String {
        let name = format!("{attack}.kit");
        pack(&self.d().join(&name), entries);
        name
    }
}

/// After the refusals, the genuine kit still imports: nothing of the attack lingered.
fn still_good(site: &Site) {
    site.import(&["good.kit"]).ok();
    assert_eq!(site.kits(), ["stable-000001", "stable-000002"]);
    site.whole();
}

fn flipped_bit_payload(profile: &'static str) {
    let (fx, site) = attacked(profile);
    let path = fx.path_of("files/noise.bin");
    let mut e = fx.entries();
    craft::flip_payload(&mut e, &path);
    let k = fx.craft("flipped-bit-payload", &e);
    site.refused(
        &[&k],
        1,
        &format!(
            "payload 'files/noise.bin' ({path}): {} digest mismatch",
            fx.alg()
        ),
    );
    still_good(&site);
}

fn flipped_bit_manifest(profile: &'static str) {
    let (fx, site) = attacked(profile);
    let mut e = fx.entries();
    craft::flip_manifest_channel(&mut e);
    let k = fx.craft("flipped-bit-manifest", &e);
    site.refused(
        &[&k],
        1,
        "entry 'kit.json': differs from the manifest signed in kit.dsse.json",
    );
    still_good(&site);
}

fn flipped_bit_envelope(profile: &'static str) {
    let (fx, site) = attacked(profile);
    let mut e = fx.entries();
    craft::flip_envelope_signature(&mut e);
    let k = fx.craft("flipped-bit-envelope", &e);
    site.refused(
        &[&k],
        1,
        &format!(
            "dsse envelope has 0 valid signature(s) from trusted '{profile}' keys, 1 required (key {}: ",
            &fx.signer[..16]
        ),
    );
    still_good(&site);
}

fn truncated_kit(profile: &'static str) {
    let (fx, site) = attacked(profile);
    let good = fs::read(fx.d().join("good.kit")).unwrap();
    for (name, cut) in [
        ("truncated-kit.kit", good.len() / 2),
        ("truncated-head.kit", 100),
        ("truncated-tail.kit", good.len() - 4),
    ] {
        fs::write(fx.d().join(name), &good[..cut]).unwrap();
        site.refused(&[name], 7, "malformed kit: ");
    }
    still_good(&site);
}

fn missing_payload(profile: &'static str) {
    let (fx, site) = attacked(profile);
    // readme.txt is already in the store (from first.kit): a kit that leaves it out is still malformed.
    for payload in ["files/readme.txt", "files/noise.bin"] {
        let path = fx.path_of(payload);
        let mut e = fx.entries();
        e.remove(craft::index_of(&e, &path));
        let k = fx.craft(&format!("missing-payload-{}", &payload[6..]), &e);
        site.refused(
            &[&k],
            7,
            &format!("entry '{path}': payload '{payload}' is missing from the kit"),
        );
    }
    still_good(&site);
}

fn extra_undeclared_entry(profile: &'static str) {
    let (fx, site) = attacked(profile);
    let mut e = fx.entries();
    let name = format!("blobs/{}/{}", fx.alg(), "0".repeat(64));
    e.push(Ent::raw(
        name.as_bytes(),
        tar::EntryType::Regular,
        b"#!/bin/sh\nrm -rf /\n".to_vec(),
        b"",
    ));
    let k = fx.craft("extra-undeclared-entry", &e);
    site.refused(
        &[&k],
        7,
        &format!("entry '{name}': is not declared in the signed manifest"),
    );
    let mut e = fx.entries();
    e.insert(
        2,
        Ent::raw(b"install.sh", tar::EntryType::Regular, b"x".to_vec(), b""),
    );
    let k = fx.craft("extra-undeclared-entry-early", &e);
    site.refused(
        &[&k],
        7,
        "entry 'install.sh': is not declared in the signed manifest",
    );
    craft::pack_with_trailer(
        &fx.d().join("trailing-data.kit"),
        &fx.entries(),
        b"trailing junk",
    );
    site.refused(
        &["trailing-data.kit"],
        7,
        "entry '(after end of archive)': trailing data",
    );
    still_good(&site);
}

fn duplicate_entry(profile: &'static str) {
    let (fx, site) = attacked(profile);
    let path = fx.path_of("files/readme.txt");
    let mut e = fx.entries();
    let dup = e[craft::index_of(&e, &path)].clone();
    e.push(dup);
    let k = fx.craft("duplicate-entry", &e);
    site.refused(
        &[&k],
        7,
        &format!("entry '{path}': appears twice (duplicate entry)"),
    );
    let mut e = fx.entries();
    let m = e[0].clone();
    e.push(m);
    let k = fx.craft("duplicate-manifest", &e);
    site.refused(
        &[&k],
        7,
        "entry 'kit.json': appears twice (duplicate entry)",
    );
    still_good(&site);
}

fn dot_dot_path(profile: &'static str) {
    let (fx, site) = attacked(profile);
    let mut e = fx.entries();
    e.push(Ent::raw(
        b"blobs/../../../etc/cron.d/evil",
        tar::EntryType::Regular,
        b"* * * * * root sh\n".to_vec(),
        b"",
    ));
    let k = fx.craft("dot-dot-path", &e);
    site.refused(
        &[&k],
        7,
        "entry 'blobs/../../../etc/cron.d/evil': path escapes the kit",
    );
    let path = fx.path_of("files/noise.bin");
    let mut e = fx.entries();
    let i = craft::index_of(&e, &path);
    let evil = format!("blobs/../{path}");
    e[i] = Ent::raw(
        evil.as_bytes(),
        tar::EntryType::Regular,
        e[i].data.clone(),
        b"",
    );
    let k = fx.craft("dot-dot-blob", &e);
    site.refused(&[&k], 7, &format!("entry '{evil}': path escapes the kit"));
    assert!(!fx.d().join("etc").exists());
    still_good(&site);
}

fn absolute_path(profile: &'static str) {
    let (fx, site) = attacked(profile);
    let mut e = fx.entries();
    e.push(Ent::raw(
        b"/etc/passwd",
        tar::EntryType::Regular,
        b"root::0:0::/root:/bin/sh\n".to_vec(),
        b"",
    ));
    let k = fx.craft("absolute-path", &e);
    site.refused(&[&k], 7, "entry '/etc/passwd': path escapes the kit");
    still_good(&site);
}

fn symlink_entry(profile: &'static str) {
    let (fx, site) = attacked(profile);
    let path = fx.path_of("files/noise.bin");
    let mut e = fx.entries();
    let i = craft::index_of(&e, &path);
    e[i] = Ent::raw(
        path.as_bytes(),
        tar::EntryType::Symlink,
        Vec::new(),
        b"/etc/shadow",
    );
    let k = fx.craft("symlink-entry", &e);
    site.refused(
        &[&k],
        7,
        &format!("entry '{path}': is a symbolic link; kits carry regular files only"),
    );
    let mut e = fx.entries();
    e[0] = Ent::raw(
        b"kit.json",
        tar::EntryType::Symlink,
        Vec::new(),
        b"/etc/passwd",
    );
    let k = fx.craft("symlink-manifest", &e);
    site.refused(&[&k], 7, "entry 'kit.json': is a symbolic link");
    still_good(&site);
}

fn hardlink_entry(profile: &'static str) {
    let (fx, site) = attacked(profile);
    let path = fx.path_of("files/noise.bin");
    let mut e = fx.entries();
    let i = craft::index_of(&e, &path);
    e[i] = Ent::raw(
        path.as_bytes(),
        tar::EntryType::Link,
        Vec::new(),
        b"/etc/shadow",
    );
    let k = fx.craft("hardlink-entry", &e);
    site.refused(
        &[&k],
        7,
        &format!("entry '{path}': is a hard link; kits carry regular files only"),
    );
    still_good(&site);
}

fn untrusted_signer(profile: &'static str) {
    let (fx, site) = attacked(profile);
    let mallory = gen_key(fx.d(), profile, None, "mallory");
    fx.build(&[
        "--feeds",
        "GHSA-2.json",
        "--file",
        "noise.bin",
        "--sequence",
        "2",
        "--key",
        "mallory.key.pem",
        "--out",
        "untrusted-signer.kit",
    ])
    .ok();
    site.refused(
        &["untrusted-signer.kit"],
        1,
        &format!(
            "dsse envelope has 0 valid signature(s) from trusted '{profile}' keys, 1 required (key {}: key is not trusted)",
            &mallory[..16]
        ),
    );
    still_good(&site);
}

fn other_profile_only(profile: &'static str, foreign: &'static str) {
    let (fx, site) = attacked(profile);
    let other = gen_key(fx.d(), foreign, None, "other");
    fx.build(&[
        "--feeds",
        "GHSA-2.json",
        "--sequence",
        "2",
        "--key",
        "other.key.pem",
        "--out",
        "other-profile-only.kit",
    ])
    .ok();
    site.refused(
        &["other-profile-only.kit"],
        1,
        &format!(
            "dsse envelope has 0 valid signature(s) from trusted '{profile}' keys, 1 required (key {}: ",
            &other[..16]
        ),
    );
    still_good(&site);
}

fn below_threshold(profile: &'static str) {
    let fx = Fx::new(profile);
    gen_key(fx.d(), profile, None, "second");
    let site = fx.site(
        "data",
        &["--kit-signer", "second.pub.pem", "--threshold", "2"],
    );
    let status = site.json(&["status", "--json"]);
    assert_eq!(status["threshold"], 2);
    assert_eq!(status["kit_signers"].as_array().unwrap().len(), 2);
    let both = ["--key", "signer.key.pem", "--key", "second.key.pem"];
    let mut args = vec![
        "--feeds",
        "GHSA-1.json",
        "--sequence",
        "1",
        "--out",
        "first.kit",
    ];
    args.extend(both);
    fx.build(&args).ok();
    site.import(&["first.kit"]).ok();
    fx.good("2", "good.kit");
    site.refused(
        &["good.kit"],
        1,
        &format!(
            "dsse envelope has 1 valid signature(s) from trusted '{profile}' keys, 2 required"
        ),
    );
    // The same signature twice is still one signer.
    let mut e = fx.entries();
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
    site.refused(&[&k], 1, "1 valid signature(s)");
    let mut args = vec![
        "--feeds",
        "GHSA-2.json",
        "--sequence",
        "2",
        "--out",
        "both.kit",
    ];
    args.extend(both);
    fx.build(&args).ok();
    site.import(&["both.kit"]).ok();
    assert_eq!(site.kits(), ["stable-000001", "stable-000002"]);
    site.whole();
}

fn expired_kit(profile: &'static str) {
    let (fx, site) = attacked(profile);
    // good.kit was built at EPOCH with the default 30 days: it expires at EPOCH + 30 days.
    let r = site.refused_at(
        EPOCH + 30 * DAY,
        &["good.kit"],
        4,
        &format!("kit 'stable-000002' expired at {EXPIRES} (now 2023-12-14T22:13:20Z)"),
    );
    assert!(r.stderr.contains("good.kit"), "{}", r.stderr);
    fx.build(&[
        "--feeds",
        "GHSA-2.json",
        "--expires",
        "1h",
        "--sequence",
        "3",
        "--id",
        "hotfix-1",
        "--key",
        "signer.key.pem",
        "--out",
        "expired-kit.kit",
    ])
    .ok();
    site.refused(
        &["expired-kit.kit"],
        4,
        "kit 'hotfix-1' expired at 2023-11-14T23:13:20Z",
    );
    // One second before its expiry it is accepted.
    site.at(EPOCH + 30 * DAY - 1, &["import", "good.kit"]).ok();
    // Winding the clock back does not revive an expired kit: checks use the latest time seen.
    let r = site.refused_at(
        EPOCH + 1800,
        &["--json", "expired-kit.kit"],
        4,
        "kit 'hotfix-1' expired at 2023-11-14T23:13:20Z (now 2023-12-14T22:13:19Z)",
    );
    let signed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        signed["receipt"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("the clock went backwards"),
        "{signed:#}"
    );
    site.whole();
}

fn zstd_bomb(profile: &'static str) {
    let (fx, site) = attacked(profile);
    craft::sparse_zeros(&fx.d().join("zeros.img"), 100 << 20);
    fx.build(&[
        "--file",
        "zeros.img",
        "--sequence",
        "2",
        "--key",
        "signer.key.pem",
        "--out",
        "zstd-bomb.kit",
    ])
    .ok();
    assert!(fs::metadata(fx.d().join("zstd-bomb.kit")).unwrap().len() < 64 << 10);
    site.refused(
        &["zstd-bomb.kit"],
        8,
        "limit exceeded: decompression ratio above 250",
    );
    still_good(&site);
}

/// A kit `split-1` (stable 2) split into 3 volumes of 1 MiB: `v.kit.001`…`003` and `v.kit.index`.
fn volumes(fx: &Fx) {
    fs::write(fx.d().join("big.bin"), noise(2560 << 10, 21)).unwrap();
    fx.build(&[
        "--file",
        "big.bin",
        "--volume-size",
        "1MiB",
        "--sequence",
        "2",
        "--key",
        "signer.key.pem",
        "--id",
        "split-1",
        "--out",
        "v.kit",
    ])
    .ok();
    assert!(fx.d().join("v.kit.003").is_file());
    assert!(!fx.d().join("v.kit.004").exists());
}

/// The genuine volumes still import after the refusals.
fn volumes_still_good(site: &Site) {
    site.import(&["v.kit.002", "v.kit.003", "v.kit.001"]).ok();
    assert_eq!(site.kits(), ["stable-000001", "split-1"]);
    site.whole();
}

fn missing_volume(profile: &'static str) {
    let (fx, site) = attacked(profile);
    volumes(&fx);
    site.refused(
        &["v.kit.001", "v.kit.003"],
        7,
        "volume 2 of 3 (v.kit.002) of kit 'split-1' is missing",
    );
    site.refused(
        &["v.kit.001", "v.kit.index", "v.kit.002"],
        7,
        "volume 3 of 3 (v.kit.003) of kit 'split-1' is missing",
    );
    fs::create_dir(fx.d().join("noindex")).unwrap();
    fs::copy(fx.d().join("v.kit.001"), fx.d().join("noindex/v.kit.001")).unwrap();
    site.refused(
        &["noindex/v.kit.001"],
        7,
        "no volume index given or found next to the volumes (expected noindex/v.kit.index)",
    );
    volumes_still_good(&site);
}

fn duplicated_volume(profile: &'static str) {
    let (fx, site) = attacked(profile);
    volumes(&fx);
    fs::create_dir(fx.d().join("copy")).unwrap();
    fs::copy(fx.d().join("v.kit.002"), fx.d().join("copy/v.kit.002")).unwrap();
    site.refused(
        &["v.kit.003", "v.kit.001", "v.kit.002", "copy/v.kit.002"],
        7,
        "volume 2 of kit 'split-1' is given twice: v.kit.002 and copy/v.kit.002",
    );
    volumes_still_good(&site);
}

fn foreign_volume(profile: &'static str) {
    let (fx, site) = attacked(profile);
    volumes(&fx);
    fs::write(fx.d().join("other.bin"), noise(2200 << 10, 22)).unwrap();
    kit(
        fx.d(),
        &[
            "build",
            "--channel",
            "other",
            "--quiet",
            "--file",
            "other.bin",
            "--volume-size",
            "1MiB",
            "--key",
            "signer.key.pem",
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
    site.refused(
        &["v.kit.002", "v.kit.001", "foreign-volume/v.kit.003"],
        7,
        &format!(
            "foreign-volume/v.kit.003: not a volume of kit 'split-1' (it is from another kit: neither its {} digest nor its first or last bytes match any volume in the index)",
            fx.alg()
        ),
    );
    site.refused(
        &["v.kit.002", "v.kit.001", "good.kit", "v.kit.003"],
        7,
        "good.kit: not a volume of kit 'split-1'",
    );
    site.refused(
        &["v.kit.003", "other.kit.index", "v.kit.001", "v.kit.002"],
        7,
        "v.kit.003: not a volume of kit 'other-000001'",
    );
    volumes_still_good(&site);
}

/// A volume of another kit with the same number and size as ours (two kits of the same size, other
/// bytes): refused as foreign (7), naming the file, the store unchanged.
fn foreign_same_size_volume(profile: &'static str) {
    let (fx, site) = attacked(profile);
    volumes(&fx);
    fs::write(fx.d().join("big2.bin"), noise(2560 << 10, 23)).unwrap();
    fs::create_dir(fx.d().join("other")).unwrap();
    fx.build(&[
        "--file",
        "big2.bin",
        "--volume-size",
        "1MiB",
        "--sequence",
        "2",
        "--key",
        "signer.key.pem",
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
    site.refused(
        &["swapped/v.kit.001", "swapped/v.kit.002", "swapped/v.kit.003"],
        7,
        &format!(
            "swapped/v.kit.002: not a volume of kit 'split-1' (it is from another kit: neither its {} digest nor its first or last bytes match any volume in the index)",
            fx.alg()
        ),
    );
    volumes_still_good(&site);
}

fn corrupt_volume(profile: &'static str) {
    let (fx, site) = attacked(profile);
    volumes(&fx);
    fs::create_dir(fx.d().join("bad")).unwrap();
    for n in ["001", "002", "003", "index"] {
        fs::copy(
            fx.d().join(format!("v.kit.{n}")),
            fx.d().join(format!("bad/v.kit.{n}")),
        )
        .unwrap();
    }
    let p = fx.d().join("bad/v.kit.002");
    let mut b = fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    fs::write(&p, b).unwrap();
    site.refused(
        &["bad/v.kit.001", "bad/v.kit.002", "bad/v.kit.003"],
        1,
        &format!(
            "bad/v.kit.002: volume 2 of kit 'split-1' is corrupt ({} digest mismatch; its first and last 64 KiB match the index, it differs between them)",
            fx.alg()
        ),
    );
    volumes_still_good(&site);
}

fn truncated_volume(profile: &'static str) {
    let (fx, site) = attacked(profile);
    volumes(&fx);
    fs::create_dir(fx.d().join("cut")).unwrap();
    for n in ["001", "002", "index"] {
        fs::copy(
            fx.d().join(format!("v.kit.{n}")),
            fx.d().join(format!("cut/v.kit.{n}")),
        )
        .unwrap();
    }
    let b = fs::read(fx.d().join("v.kit.003")).unwrap();
    let half = b.len() / 2;
    fs::write(fx.d().join("cut/v.kit.003"), &b[..half]).unwrap();
    site.refused(
        &["cut/v.kit.001", "cut/v.kit.002", "cut/v.kit.003"],
        7,
        &format!(
            "cut/v.kit.003: volume 3 of kit 'split-1' is truncated ({half} of {} bytes; its first 64 KiB match the index)",
            b.len()
        ),
    );
    volumes_still_good(&site);
}

fn untrusted_volume_index(profile: &'static str) {
    let (fx, site) = attacked(profile);
    volumes(&fx);
    gen_key(fx.d(), profile, None, "mallory");
    let env: serde_json::Value =
        serde_json::from_slice(&fs::read(fx.d().join("v.kit.index")).unwrap()).unwrap();
    fs::write(fx.d().join("index.b64"), env["payload"].as_str().unwrap()).unwrap();
    let decoded = tool("base64", fx.d(), &["-d", "index.b64"]).ok();
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
    site.refused(
        &["v.kit.001", "forged/v.kit.index", "v.kit.002", "v.kit.003"],
        1,
        &format!(
            "volume index forged/v.kit.index: dsse envelope has 0 valid signature(s) from trusted '{profile}' keys"
        ),
    );
    volumes_still_good(&site);
}

// ---------------------------------------------------------------------------------------------------
// 3. Replay, rollback, forced imports.

fn replay_and_rollback(profile: &'static str) {
    let fx = Fx::new(profile);
    let site = fx.site("data", &[]);
    for seq in ["1", "2", "3"] {
        fx.build(&[
            "--feeds",
            "GHSA-1.json",
            "--file",
            "readme.txt",
            "--sequence",
            seq,
            "--key",
            "signer.key.pem",
            "--out",
            &format!("s{seq}.kit"),
        ])
        .ok();
    }
    site.import(&["s1.kit"]).ok();
    site.import(&["s3.kit"]).ok();
    let r = site.refused(
        &["s3.kit"],
        5,
        "kit 'stable-000003' was already imported at 2023-11-15T22:13:20Z (replay)",
    );
    assert!(r.stderr.contains("s3.kit"), "{}", r.stderr);
    // The refusal names the kit in its record too.
    assert_eq!(site.quarantine().last().unwrap()["kit"], "stable-000003");
    // With --json a refusal still prints its signed receipt.
    let r = site.run(&["import", "--json", "s3.kit"]);
    assert_eq!(r.code, 5, "{r:?}");
    let signed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(signed["receipt"]["result"], "rejected");
    assert_eq!(signed["receipt"]["exit_code"], 5);
    assert_eq!(signed["receipt"]["kit"], "stable-000003");
    assert!(signed["receipt"]["reason"]
        .as_str()
        .unwrap()
        .contains("(replay)"));
    fs::write(
        fx.d().join("rejected.dsse.json"),
        serde_json::to_vec(&signed["envelope"]).unwrap(),
    )
    .unwrap();
    let pubkey = site.data.join("keys/appliance.pub.pem");
    kit(
        fx.d(),
        &[
            "dsse",
            "verify",
            "--pub",
            pubkey.to_str().unwrap(),
            "rejected.dsse.json",
        ],
    )
    .ok();
    site.refused(
        &["s2.kit"],
        5,
        "sequence 2 is not above the last imported 3 on channel 'stable'",
    );
    // --force needs --reason (a usage error, nothing recorded).
    let before = site.run(&["dump", "--all"]).ok().stdout;
    let r = site.run(&["import", "--force", "s2.kit"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--reason"), "{}", r.stderr);
    assert_eq!(before, site.run(&["dump", "--all"]).ok().stdout);
    // Forced, with a reason: accepted, flagged, audited; the high-water mark stays at 3.
    let reason = "roll back to 2: regression in 3 (ticket OPS-42)";
    let r = site
        .run(&["import", "--json", "--force", "--reason", reason, "s2.kit"])
        .ok();
    let signed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let warnings = signed["receipt"]["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains(reason)),
        "{warnings:?}"
    );
    assert!(signed["receipt"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["result"]
            .as_str()
            .unwrap()
            .starts_with("overridden: sequence 2")));
    let kits = site.json(&["kits", "--json"]);
    assert_eq!(kits[2]["id"], "stable-000002");
    assert_eq!(kits[2]["forced"], reason);
    assert_eq!(
        site.json(&["status", "--json"])["channels"][0]["sequence"],
        3
    );
    let log = site.json(&["audit", "log", "--json"]);
    let forced: Vec<_> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "import-forced")
        .collect();
    assert_eq!(forced.len(), 1, "{log:#}");
    assert_eq!(forced[0]["data"]["reason"], reason);
    assert_eq!(forced[0]["data"]["kit"], "stable-000002");
    let text = site.run(&["audit", "log"]).ok().stdout;
    assert!(
        text.contains("import-forced") && text.contains(reason),
        "{text}"
    );
    // Forcing a replay of a kit already imported is an explicit operator decision too.
    site.run(&["import", "--force", "--reason", "re-import", "s3.kit"])
        .ok();
    site.whole();
}

// ---------------------------------------------------------------------------------------------------
// 4. Staleness and the clock.

fn staleness_and_clock(profile: &'static str) {
    let fx = Fx::new(profile);
    let site = fx.site("data", &[]);
    // Built 200 days before the appliance clock, with a lifetime long enough not to have expired.
    fx.build_at(
        NOW - 200 * DAY,
        &[
            "--feeds",
            "GHSA-1.json",
            "--expires",
            "365d",
            "--sequence",
            "1",
            "--key",
            "signer.key.pem",
            "--out",
            "stale.kit",
        ],
    )
    .ok();
    site.refused(
        &["stale.kit"],
        4,
        "kit 'stable-000001' was created 2023-04-29T22:13:20Z and is older than the staleness budget of 90 days",
    );
    // --force overrides the sequence only, never staleness.
    site.refused(
        &[
            "--force",
            "--reason",
            "old data is better than none",
            "stale.kit",
        ],
        4,
        "older than the staleness budget of 90 days",
    );
    // Created an hour in the future of the appliance clock (skew tolerance 5 minutes).
    fx.build_at(
        NOW + 3600,
        &[
            "--feeds",
            "GHSA-1.json",
            "--sequence",
            "1",
            "--key",
            "signer.key.pem",
            "--out",
            "future.kit",
        ],
    )
    .ok();
    site.refused(
        &["future.kit"],
        4,
        "kit 'stable-000001' was created 2023-11-15T23:13:20Z in the future of the appliance clock 2023-11-15T22:13:20Z: check the clock",
    );
    // Within the skew: fine.
    fx.build_at(
        NOW + 60,
        &[
            "--feeds",
            "GHSA-1.json",
            "--sequence",
            "1",
            "--key",
            "signer.key.pem",
            "--out",
            "k1.kit",
        ],
    )
    .ok();
    site.import(&["k1.kit"]).ok();
    // The clock goes back a day: accepted, with a warning; the checks keep the latest time seen.
    fx.good("2", "k2.kit");
    let r = site.at(NOW - DAY, &["import", "--json", "k2.kit"]).ok();
    let signed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let warnings = signed["receipt"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = warnings[0].as_str().unwrap();
    assert!(
        w.contains("appliance clock 2023-11-14T22:13:20Z is behind the latest time seen 2023-11-15T22:13:20Z: the clock went backwards"),
        "{w}"
    );
    assert_eq!(signed["receipt"]["time"], "2023-11-15T22:13:20Z");
    let text = site.at(NOW - DAY, &["status"]).ok().stdout;
    assert!(
        text.contains("clock:      latest seen 2023-11-15T22:13:20Z"),
        "{text}"
    );
    assert_eq!(site.kits(), ["stable-000001", "stable-000002"]);
    site.whole();
}

// ---------------------------------------------------------------------------------------------------
// 5. Delta kits.

/// `base.kit` (stable 1) and `delta.kit` (stable 2, a delta on it carrying only the changed GHSA-2).
fn base_and_delta(fx: &Fx) {
    fx.good("1", "base.kit");
    fs::write(
        fx.d().join("GHSA-2.json"),
        osv("GHSA-2", "2023-03-03T00:00:00Z"),
    )
    .unwrap();
    fx.build(&[
        "--feeds",
        "GHSA-1.json",
        "--feeds",
        "GHSA-2.json",
        "--file",
        "noise.bin",
        "--file",
        "readme.txt",
        "--base",
        "base.kit",
        "--sequence",
        "2",
        "--key",
        "signer.key.pem",
        "--out",
        "delta.kit",
    ])
    .ok();
}

fn delta(profile: &'static str) {
    let fx = Fx::new(profile);
    base_and_delta(&fx);
    let site = fx.site("data", &[]);
    site.import(&["base.kit"]).ok();
    let r = site.import(&["--json", "delta.kit"]).ok();
    let signed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let receipt = &signed["receipt"];
    assert_eq!(receipt["counts"]["new_blobs"], 1, "{receipt:#}");
    assert!(receipt["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "base" && c["result"] == "ok: stable-000001"));
    let kits = site.json(&["kits", "--json"]);
    assert_eq!(kits[1]["id"], "stable-000002");
    assert_eq!(kits[1]["base"], "stable-000001");
    let text = site.run(&["kits"]).ok().stdout;
    assert!(text.contains("delta of stable-000001"), "{text}");
    site.whole();

    // A fresh site without the base: refused, naming it.
    let fresh = fx.site("fresh", &[]);
    let r = fresh.refused(
        &["delta.kit"],
        6,
        "delta kit 'stable-000002' needs base kit 'stable-000001' (",
    );
    assert!(
        r.stderr.contains("which this site has not imported"),
        "{}",
        r.stderr
    );
    assert!(fresh.kits().is_empty());
}

/// Several whole kits in one `stella import`: a delta named before its base is imported after it, each with
/// its own receipt.
fn several_kits(profile: &'static str) {
    let fx = Fx::new(profile);
    base_and_delta(&fx);
    let site = fx.site("data", &[]);
    let r = site.import(&["delta.kit", "base.kit"]).ok();
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        [
            "base.kit: imported kit 'stable-000001' (channel stable, sequence 1, receipt 1)",
            "delta.kit: imported kit 'stable-000002' (channel stable, sequence 2, receipt 2)",
        ],
        "{}",
        r.stdout
    );
    assert_eq!(site.kits(), ["stable-000001", "stable-000002"]);
    let kits = site.json(&["kits", "--json"]);
    assert_eq!(kits[0]["receipt"], 1, "{kits:#}");
    assert_eq!(kits[1]["receipt"], 2, "{kits:#}");
    assert_eq!(kits[1]["base"], "stable-000001", "{kits:#}");
    site.whole();

    // --json: every receipt, in import order.
    let other = fx.site("other", &[]);
    let r = other.import(&["--json", "delta.kit", "base.kit"]).ok();
    let receipts: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let receipts = receipts.as_array().unwrap();
    assert_eq!(receipts.len(), 2, "{receipts:#?}");
    for (signed, (kit, number)) in receipts
        .iter()
        .zip([("stable-000001", 1), ("stable-000002", 2)])
    {
        assert_eq!(signed["receipt"]["kit"], kit, "{signed:#}");
        assert_eq!(signed["receipt"]["number"], number, "{signed:#}");
        assert_eq!(signed["receipt"]["result"], "accepted", "{signed:#}");
    }

    // Usage errors before anything is read or recorded: --force with several kits.
    let fresh = fx.site("fresh", &[]);
    let before = fresh.dump();
    fresh
        .import(&["--force", "--reason", "x", "base.kit", "delta.kit"])
        .fails(2, "--force applies to one kit");
    assert_eq!(before, fresh.dump());
    assert!(fresh.quarantine().is_empty());
}

/// Several kits, one bad and one replayed among them: the others are imported, each rejected kit is
/// quarantined with its own receipt, and the exit code is the first failure's.
fn several_kits_one_bad(profile: &'static str) {
    let fx = Fx::new(profile);
    let d = fx.d();
    fx.good("1", "k1.kit");
    fx.good("2", "k2.kit");
    fx.good("3", "k3.kit");
    let mut e = craft::entries_of(&d.join("k2.kit"));
    let path = craft::path_of(&e, "files/noise.bin");
    craft::flip_payload(&mut e, &path);
    pack(&d.join("bad.kit"), &e);
    let site = fx.site("data", &[]);
    site.import(&["k1.kit"]).ok();
    // bad.kit: digest mismatch (1); k1.kit again: replay (5); k3.kit: fine.
    let r = site
        .import(&["bad.kit", "k1.kit", "k3.kit"])
        .fails(1, "kit bad.kit rejected: payload 'files/noise.bin'");
    assert!(
        r.stderr
            .contains("kit k1.kit rejected: kit 'stable-000001' was already imported"),
        "{}",
        r.stderr
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(
        lines[0].starts_with("bad.kit: rejected: payload 'files/noise.bin'")
            && lines[0].contains("digest mismatch"),
        "{}",
        r.stdout
    );
    assert!(
        lines[1].starts_with("k1.kit: rejected: kit 'stable-000001' was already imported"),
        "{}",
        r.stdout
    );
    assert_eq!(
        lines[2],
        "k3.kit: imported kit 'stable-000003' (channel stable, sequence 3, receipt 4)"
    );
    assert_eq!(site.kits(), ["stable-000001", "stable-000003"]);
    let q = site.quarantine();
    assert_eq!(q.len(), 2, "{q:#?}");
    assert_eq!(
        (q[0]["input"].as_str(), &q[0]["exit_code"]),
        (Some("bad.kit"), &1.into())
    );
    assert_eq!(
        (q[1]["input"].as_str(), &q[1]["exit_code"]),
        (Some("k1.kit"), &5.into())
    );
    assert_eq!((&q[0]["receipt"], &q[1]["receipt"]), (&2.into(), &3.into()));
    let kinds = site.audit_kinds();
    assert_eq!(
        kinds[kinds.len() - 3..],
        ["kit-rejected", "kit-rejected", "kit-imported"],
        "{kinds:?}"
    );
    site.whole();
}

// ---------------------------------------------------------------------------------------------------
// 6. Volumes and encryption.

fn volumes_shuffled(profile: &'static str) {
    let fx = Fx::new(profile);
    volumes(&fx);
    let d = fx.d();
    for (dir, files) in [
        ("a", ["v.kit.003", "v.kit.index"]),
        ("b", ["v.kit.001", "v.kit.002"]),
    ] {
        fs::create_dir(d.join(dir)).unwrap();
        for f in files {
            fs::copy(d.join(f), d.join(dir).join(f)).unwrap();
        }
    }
    let site = fx.site("data", &[]);
    let r = site
        .import(&["b/v.kit.002", "a/v.kit.003", "a/v.kit.index", "b/v.kit.001"])
        .ok();
    assert!(r.stdout.contains("imported kit 'split-1'"), "{}", r.stdout);
    assert_eq!(site.kits(), ["split-1"]);
    site.whole();
}

fn encrypted(profile: &'static str) {
    let fx = Fx::new(profile);
    let d = fx.d();
    let recipient = kit(d, &["key", "age-generate", "--out", "site.age"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    fx.build(&[
        "--feeds",
        "GHSA-1.json",
        "--file",
        "noise.bin",
        "--encrypt-to",
        &recipient,
        "--key",
        "signer.key.pem",
        "--out",
        "e.kit",
    ])
    .ok();
    assert!(fs::read(d.join("e.kit"))
        .unwrap()
        .starts_with(b"age-encryption.org/v1"));
    // A site without the identity cannot read it: a usage error, nothing stored.
    let plain = fx.site("plain", &[]);
    plain.refused(&["e.kit"], 2, "kit is encrypted with age");
    assert!(plain.kits().is_empty());
    // A site initialised with the identity imports it.
    let site = fx.site("data", &["--age-identity", "site.age"]);
    let r = site.import(&["e.kit"]).ok();
    assert!(
        r.stdout.contains("imported kit 'stable-000001'"),
        "{}",
        r.stdout
    );
    assert_eq!(site.kits(), ["stable-000001"]);
    assert_eq!(site.json(&["status", "--json"])["feed_documents"], 1);
    site.whole();
}

// ---------------------------------------------------------------------------------------------------
// 7. Kit-signer rotation.

fn signers_sign(fx: &Fx, new_keys: &[&str], version: &str, keys: &[&str], out: &str) {
    let mut args = vec!["signers", "sign", "--version", version, "--out", out];
    for k in new_keys {
        args.extend(["--new-key", k]);
    }
    for k in keys {
        args.extend(["--key", k]);
    }
    kit(fx.d(), &args).ok();
}

fn rotation(profile: &'static str) {
    let fx = Fx::new(profile);
    let next = gen_key(fx.d(), profile, None, "next");
    let site = fx.site("data", &[]);
    fs::create_dir(fx.d().join("v2")).unwrap();
    signers_sign(
        &fx,
        &["next.pub.pem"],
        "2",
        &["signer.key.pem"],
        "v2/kit-signers.dsse.json",
    );
    fx.build(&[
        "--feeds",
        "GHSA-1.json",
        "--trust",
        "v2/kit-signers.dsse.json",
        "--sequence",
        "1",
        "--key",
        "signer.key.pem",
        "--out",
        "rotate.kit",
    ])
    .ok();
    let r = site.import(&["--json", "rotate.kit"]).ok();
    let signed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(signed["receipt"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "kit-signer rotation" && c["result"] == "ok: version 2"));
    let status = site.json(&["status", "--json"]);
    assert_eq!(status["signer_set_version"], 2);
    let signers = status["kit_signers"].as_array().unwrap();
    assert_eq!(signers.len(), 1);
    assert!(signers[0].as_str().unwrap().starts_with(&next));
    assert!(site
        .audit_kinds()
        .contains(&"kit-signers-rotated".to_owned()));

    // The old key is no longer trusted; the new one is.
    fx.good("2", "old.kit");
    site.refused(
        &["old.kit"],
        1,
        &format!(
            "0 valid signature(s) from trusted '{profile}' keys, 1 required (key {}: key is not trusted)",
            &fx.signer[..16]
        ),
    );
    fx.build(&[
        "--feeds",
        "GHSA-2.json",
        "--sequence",
        "2",
        "--key",
        "next.key.pem",
        "--out",
        "new.kit",
    ])
    .ok();
    site.import(&["new.kit"]).ok();
    assert_eq!(site.kits(), ["stable-000001", "stable-000002"]);
    // Replaying the rotation kit: its signer is no longer trusted, so it is refused before anything else.
    site.refused(&["rotate.kit"], 1, "key is not trusted");
    site.whole();
}

fn unauthorised_rotation(profile: &'static str) {
    let fx = Fx::new(profile);
    gen_key(fx.d(), profile, None, "stranger");
    let site = fx.site("data", &[]);
    signers_sign(
        &fx,
        &["stranger.pub.pem"],
        "2",
        &["stranger.key.pem"],
        "kit-signers.dsse.json",
    );
    // The kit itself is signed by the trusted signer; the set it carries is not.
    fx.build(&[
        "--feeds",
        "GHSA-1.json",
        "--trust",
        "kit-signers.dsse.json",
        "--sequence",
        "1",
        "--key",
        "signer.key.pem",
        "--out",
        "rogue-rotation.kit",
    ])
    .ok();
    site.refused(
        &["rogue-rotation.kit"],
        1,
        "unauthorised kit-signer set 'trust/kit-signers.dsse.json': ",
    );
    let status = site.json(&["status", "--json"]);
    assert_eq!(status["signer_set_version"], 1);
    assert!(status["kit_signers"][0]
        .as_str()
        .unwrap()
        .starts_with(&fx.signer));
    assert!(site.kits().is_empty());
    // A set signed by the current signer but not newer than the current version: refused too.
    signers_sign(
        &fx,
        &["stranger.pub.pem"],
        "1",
        &["signer.key.pem"],
        "kit-signers.dsse.json",
    );
    fx.build(&[
        "--feeds",
        "GHSA-1.json",
        "--trust",
        "kit-signers.dsse.json",
        "--sequence",
        "1",
        "--key",
        "signer.key.pem",
        "--out",
        "same-version.kit",
    ])
    .ok();
    site.refused(
        &["same-version.kit"],
        1,
        "kit-signer set version 1 is not above the current 1",
    );
    assert_eq!(site.json(&["status", "--json"])["signer_set_version"], 1);
}

// ---------------------------------------------------------------------------------------------------
// 8. Watching a directory.

fn watch(profile: &'static str) {
    let fx = Fx::new(profile);
    let d = fx.d();
    let site = fx.site("data", &[]);
    fx.good("1", "k1.kit");
    fx.good("2", "k2.kit");
    fs::create_dir(d.join("media")).unwrap();
    fs::copy(d.join("k1.kit"), d.join("media/k1.kit")).unwrap();
    fs::write(d.join("media/notes.txt"), b"not a kit\n").unwrap();
    let scan = || {
        site.run(&["import", "--watch", "media", "--once"])
            .ok()
            .stdout
    };
    let out = scan();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["k1.kit: imported kit 'stable-000001' (receipt 1)"],
        "{out}"
    );
    assert_eq!(scan(), "", "a second scan imports nothing new");
    assert_eq!(site.kits(), ["stable-000001"]);
    // A new good kit and a bad one.
    fs::copy(d.join("k2.kit"), d.join("media/k2.kit")).unwrap();
    let mut e = craft::entries_of(&d.join("k2.kit"));
    let path = craft::path_of(&e, "files/noise.bin");
    craft::flip_payload(&mut e, &path);
    pack(&d.join("media/bad.kit"), &e);
    let before_bad = site.dump();
    let out = scan();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("bad.kit: rejected: ") && lines[0].contains("digest mismatch"),
        "{out}"
    );
    assert_eq!(lines[1], "k2.kit: imported kit 'stable-000002' (receipt 3)");
    assert_ne!(before_bad, site.dump());
    assert_eq!(scan(), "", "each kit is handled once");
    assert_eq!(site.kits(), ["stable-000001", "stable-000002"]);
    let q = site.quarantine();
    assert_eq!(q.len(), 1, "{q:#?}");
    assert!(
        q[0]["input"].as_str().unwrap().ends_with("bad.kit"),
        "{q:#?}"
    );
    // Both outcomes are in the audit log, by the watcher.
    let log = site.json(&["audit", "log", "--json"]);
    let by_watch: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "watch")
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["data"].to_string(),
            )
        })
        .collect();
    assert_eq!(by_watch.len(), 3, "{log:#}");
    assert_eq!(by_watch[0].0, "kit-imported");
    assert_eq!(by_watch[1].0, "kit-rejected");
    assert!(by_watch[1].1.contains("bad.kit"), "{by_watch:?}");
    assert_eq!(by_watch[2].0, "kit-imported");
    site.whole();
}

/// A delta watched before its base: rejected for the missing base, retried once the base is imported (on a
/// later stick, in a later pass), while a kit rejected for another reason is not retried.
fn watch_waits_for_base(profile: &'static str) {
    let fx = Fx::new(profile);
    let d = fx.d();
    base_and_delta(&fx);
    fx.good("3", "k3.kit");
    let mut e = craft::entries_of(&d.join("k3.kit"));
    let path = craft::path_of(&e, "files/noise.bin");
    craft::flip_payload(&mut e, &path);
    pack(&d.join("bad.kit"), &e);
    let site = fx.site("data", &[]);
    fs::create_dir(d.join("media")).unwrap();
    let scan = || {
        site.run(&["import", "--watch", "media", "--once"])
            .ok()
            .stdout
    };
    // The delta alone, and a bad kit: both rejected.
    fs::copy(d.join("delta.kit"), d.join("media/a-delta.kit")).unwrap();
    fs::copy(d.join("bad.kit"), d.join("media/c-bad.kit")).unwrap();
    let out = scan();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(
            "a-delta.kit: rejected: delta kit 'stable-000002' needs base kit 'stable-000001' ("
        ) && lines[0].ends_with("which this site has not imported (retried after the next import)"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("c-bad.kit: rejected: ") && lines[1].contains("digest mismatch"),
        "{out}"
    );
    assert!(site.kits().is_empty());
    assert_eq!(scan(), "", "nothing was imported since: nothing is retried");
    // The base arrives on a later stick: imported, then the waiting delta; the bad kit stays rejected.
    fs::copy(d.join("base.kit"), d.join("media/b-base.kit")).unwrap();
    let out = scan();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "b-base.kit: imported kit 'stable-000001' (receipt 3)",
            "a-delta.kit: imported kit 'stable-000002' (receipt 4)",
        ],
        "{out}"
    );
    assert_eq!(site.kits(), ["stable-000001", "stable-000002"]);
    assert_eq!(scan(), "");
    let q = site.quarantine();
    assert_eq!(q.len(), 2, "{q:#?}");
    site.whole();

    // A base imported some other way (here `stella import`) also releases a waiting delta.
    let other = fx.site("other", &[]);
    let watch_other = || {
        other
            .run(&["import", "--watch", "media2", "--once"])
            .ok()
            .stdout
    };
    fs::create_dir(d.join("media2")).unwrap();
    fs::copy(d.join("delta.kit"), d.join("media2/delta.kit")).unwrap();
    assert!(watch_other().contains("delta.kit: rejected: "));
    other.import(&["base.kit"]).ok();
    assert_eq!(
        watch_other(),
        "delta.kit: imported kit 'stable-000002' (receipt 3)\n"
    );

    // Base and delta new in the same pass: the base first, whatever their names.
    let third = fx.site("third", &[]);
    fs::create_dir(d.join("media3")).unwrap();
    fs::copy(d.join("delta.kit"), d.join("media3/a-delta.kit")).unwrap();
    fs::copy(d.join("base.kit"), d.join("media3/b-base.kit")).unwrap();
    let out = third
        .run(&["import", "--watch", "media3", "--once"])
        .ok()
        .stdout;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "b-base.kit: imported kit 'stable-000001' (receipt 1)",
            "a-delta.kit: imported kit 'stable-000002' (receipt 2)",
        ],
        "{out}"
    );
    assert!(third.quarantine().is_empty());
}

// ---------------------------------------------------------------------------------------------------
// 9. Offline: no network namespace at all.

fn offline(profile: &'static str) {
    let probe = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipping the offline test: `unshare -n true` does not work here ({:?})",
            probe.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        );
        return;
    }
    let fx = Fx::new(profile);
    let site = fx.site("data", &[]);
    fx.good("1", "k.kit");
    let stella = stella_tests::bin("stella");
    let data = site.data.to_str().unwrap();
    let now = NOW.to_string();
    let offline = |args: &[&str]| {
        let mut all = vec!["-n", stella.to_str().unwrap(), "--data", data];
        all.extend_from_slice(args);
        let out = std::process::Command::new("unshare")
            .args(&all)
            .current_dir(fx.d())
            .env("STELLA_NOW", &now)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "unshare -n stella {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Only a loopback interface, and it is down: no route anywhere.
    let ip = tool("unshare", fx.d(), &["-n", "cat", "/proc/net/dev"]).ok();
    assert!(!ip.stdout.contains("eth0"), "{}", ip.stdout);
    let out = offline(&["import", "k.kit"]);
    assert!(out.contains("imported kit 'stable-000001'"), "{out}");
    let out = offline(&["status"]);
    assert!(out.contains("channel stable: sequence 1"), "{out}");
    site.whole();
}

macro_rules! per_profile {
    ($($name:ident: $profile:expr, $foreign:expr;)*) => {$(
        mod $name {
            #[test] fn happy_path() { super::happy_path($profile) }
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
            #[test] fn replay_and_rollback() { super::replay_and_rollback($profile) }
            #[test] fn staleness_and_clock() { super::staleness_and_clock($profile) }
            #[test] fn delta() { super::delta($profile) }
            #[test] fn several_kits() { super::several_kits($profile) }
            #[test] fn several_kits_one_bad() { super::several_kits_one_bad($profile) }
            #[test] fn volumes_shuffled() { super::volumes_shuffled($profile) }
            #[test] fn encrypted() { super::encrypted($profile) }
            #[test] fn rotation() { super::rotation($profile) }
            #[test] fn unauthorised_rotation() { super::unauthorised_rotation($profile) }
            #[test] fn watch() { super::watch($profile) }
            #[test] fn watch_waits_for_base() { super::watch_waits_for_base($profile) }
            #[test] fn offline() { super::offline($profile) }
        }
    )*};
}

per_profile! {
    fips: "fips", "gost";
    eidas: "eidas", "sm";
    gost: "gost", "fips";
    sm: "sm", "eidas";
}

#[test]
fn usage_errors() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let data = d.join("data");
    let data = data.to_str().unwrap();
    // No site yet.
    let r = run_env(
        "stella",
        d,
        &["--data", data, "import", "x.kit"],
        &[("STELLA_NOW", "1700000000")],
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("no site at"), "{}", r.stderr);
    // A clock that is not a time.
    let r = run_env(
        "stella",
        d,
        &["--data", data, "status"],
        &[("STELLA_NOW", "yesterday")],
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("STELLA_NOW") || r.stderr.contains("no site"),
        "{}",
        r.stderr
    );
    let r = run("stella", d, &["import"]);
    assert_eq!(r.code, 2, "{r:?}");
}
