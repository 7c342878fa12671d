//! `stella-kit` key, signature, digest and DSSE commands, driven as a user would, once per profile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use stella_tests::{run, run_env, tool};

fn keygen(dir: &Path, profile: &str, alg: Option<&str>, name: &str) -> String {
    let mut args = vec!["key", "generate", "--profile", profile, "--out", name];
    if let Some(a) = alg {
        args.extend(["--algorithm", a]);
    }
    let r = run("stella-kit", dir, &args).ok();
    let id = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("key id: "))
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 64, "{}", r.stdout);
    id
}

fn check_blob(profile: &str, foreign_profile: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, profile, None, "site");
    keygen(d, profile, None, "other");
    keygen(d, foreign_profile, None, "foreign");
    // The private key is not world-readable.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(d.join("site.key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    fs::write(d.join("kit.json"), b"{\"kit\":\"demo\"}\n").unwrap();
    run(
        "stella-kit",
        d,
        &[
            "sign-blob",
            "--key",
            "site.key.pem",
            "--out",
            "kit.sig",
            "kit.json",
        ],
    )
    .ok();
    let ok = run(
        "stella-kit",
        d,
        &[
            "verify-blob",
            "--pub",
            "site.pub.pem",
            "--sig",
            "kit.sig",
            "kit.json",
        ],
    )
    .ok();
    assert!(ok.stdout.starts_with("Verified OK"), "{}", ok.stdout);

    // Flipped bit in the signed file and in the signature.
    fs::write(d.join("tampered.json"), b"{\"kit\":\"demO\"}\n").unwrap();
    run(
        "stella-kit",
        d,
        &[
            "verify-blob",
            "--pub",
            "site.pub.pem",
            "--sig",
            "kit.sig",
            "tampered.json",
        ],
    )
    .fails(1, "kit.sig: verification failed: bad signature");
    let mut sig = fs::read(d.join("kit.sig")).unwrap();
    let n = sig.len();
    sig[n / 2] ^= 0x01;
    fs::write(d.join("flipped.sig"), &sig).unwrap();
    run(
        "stella-kit",
        d,
        &[
            "verify-blob",
            "--pub",
            "site.pub.pem",
            "--sig",
            "flipped.sig",
            "kit.json",
        ],
    )
    .fails(1, "bad signature");
    // Truncated signature.
    fs::write(d.join("short.sig"), &sig[..n - 3]).unwrap();
    run(
        "stella-kit",
        d,
        &[
            "verify-blob",
            "--pub",
            "site.pub.pem",
            "--sig",
            "short.sig",
            "kit.json",
        ],
    )
    .fails(1, "bad signature");
    // Wrong key of the same profile.
    run(
        "stella-kit",
        d,
        &[
            "verify-blob",
            "--pub",
            "other.pub.pem",
            "--sig",
            "kit.sig",
            "kit.json",
        ],
    )
    .fails(1, "bad signature");
    // Strict mode: another profile's key under this profile is refused by name.
    run(
        "stella-kit",
        d,
        &[
            "verify-blob",
            "--pub",
            "foreign.pub.pem",
            "--profile",
            profile,
            "--sig",
            "kit.sig",
            "kit.json",
        ],
    )
    .fails(1, &format!("is not allowed under profile '{profile}'"));
    // Malformed PEM names the file.
    fs::write(
        d.join("broken.pub.pem"),
        b"-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    run(
        "stella-kit",
        d,
        &[
            "verify-blob",
            "--pub",
            "broken.pub.pem",
            "--sig",
            "kit.sig",
            "kit.json",
        ],
    )
    .fails(2, "broken.pub.pem: malformed public key: bad base64");
    run(
        "stella-kit",
        d,
        &[
            "verify-blob",
            "--pub",
            "missing.pem",
            "--sig",
            "kit.sig",
            "kit.json",
        ],
    )
    .fails(2, "missing.pem: No such file");
}

fn check_encrypted_key(profile: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs::write(d.join("pass"), "s3cret passphrase\n").unwrap();
    fs::write(d.join("wrong"), "guess\n").unwrap();
    run(
        "stella-kit",
        d,
        &[
            "key",
            "generate",
            "--profile",
            profile,
            "--out",
            "k",
            "--passphrase-file",
            "pass",
        ],
    )
    .ok();
    assert!(fs::read_to_string(d.join("k.key.pem"))
        .unwrap()
        .contains("ENCRYPTED PRIVATE KEY"));
    fs::write(d.join("f"), b"x").unwrap();
    run(
        "stella-kit",
        d,
        &["sign-blob", "--key", "k.key.pem", "--out", "f.sig", "f"],
    )
    .fails(
        2,
        "k.key.pem: private key is encrypted: passphrase missing or wrong",
    );
    run(
        "stella-kit",
        d,
        &[
            "sign-blob",
            "--key",
            "k.key.pem",
            "--passphrase-file",
            "wrong",
            "--out",
            "f.sig",
            "f",
        ],
    )
    .fails(2, "passphrase missing or wrong");
    run(
        "stella-kit",
        d,
        &[
            "sign-blob",
            "--key",
            "k.key.pem",
            "--passphrase-file",
            "pass",
            "--out",
            "f.sig",
            "f",
        ],
    )
    .ok();
    run(
        "stella-kit",
        d,
        &["verify-blob", "--pub", "k.pub.pem", "--sig", "f.sig", "f"],
    )
    .ok();
    // Existing files are not overwritten without --force.
    run(
        "stella-kit",
        d,
        &["key", "generate", "--profile", profile, "--out", "k"],
    )
    .fails(2, "file exists");
}

/// `stella-kit digest` prints what the standard tool prints for the same digest.
fn check_digest(profile: &str, tool_args: &[&str]) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(d.join("blob.bin"), &data).unwrap();
    let ours = run(
        "stella-kit",
        d,
        &["digest", "--profile", profile, "blob.bin"],
    )
    .ok();
    let (hex, name) = ours.stdout.trim_end().split_once("  ").unwrap();
    assert_eq!(name, "blob.bin");
    let mut args: Vec<&str> = tool_args.to_vec();
    args.push("blob.bin");
    let theirs = tool(args[0], d, &args[1..]).ok();
    assert!(
        theirs.stdout.contains(hex),
        "ours {hex}, theirs {}",
        theirs.stdout
    );
}

fn check_dsse(profile: &str, foreign_profile: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, profile, None, "a");
    keygen(d, profile, None, "b");
    keygen(d, foreign_profile, None, "f");
    fs::write(
        d.join("statement.json"),
        b"{\"_type\":\"https://in-toto.io/Statement/v1\"}",
    )
    .unwrap();
    let env = run(
        "stella-kit",
        d,
        &[
            "dsse",
            "sign",
            "--key",
            "a.key.pem",
            "--key",
            "b.key.pem",
            "--key",
            "f.key.pem",
            "--payload-type",
            "application/vnd.in-toto+json",
            "--out",
            "env.json",
            "statement.json",
        ],
    )
    .ok();
    assert!(env.stdout.is_empty());
    let out = run(
        "stella-kit",
        d,
        &[
            "dsse",
            "verify",
            "--pub",
            "a.pub.pem",
            "--pub",
            "b.pub.pem",
            "--pub",
            "f.pub.pem",
            "--profile",
            profile,
            "--threshold",
            "2",
            "--payload-out",
            "payload.json",
            "env.json",
        ],
    )
    .ok();
    assert!(out.stdout.contains("Verified OK: 2 of 2"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("of profile {foreign_profile}")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("not counted"), "{}", out.stdout);
    assert_eq!(
        fs::read(d.join("payload.json")).unwrap(),
        fs::read(d.join("statement.json")).unwrap()
    );
    // One trusted key of the profile cannot meet threshold 2, whatever else signed.
    run(
        "stella-kit",
        d,
        &[
            "dsse",
            "verify",
            "--pub",
            "a.pub.pem",
            "--pub",
            "f.pub.pem",
            "--profile",
            profile,
            "--threshold",
            "2",
            "env.json",
        ],
    )
    .fails(2, "threshold 2 exceeds the 1 trusted key(s) usable");
    // Tampered payload: threshold not met, exit 1.
    let mut v: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("env.json")).unwrap()).unwrap();
    v["payload"] = serde_json::Value::String("eyJfdHlwZSI6ImV2aWwifQ==".into());
    fs::write(d.join("evil.json"), serde_json::to_vec(&v).unwrap()).unwrap();
    run(
        "stella-kit",
        d,
        &[
            "dsse",
            "verify",
            "--pub",
            "a.pub.pem",
            "--profile",
            profile,
            "evil.json",
        ],
    )
    .fails(1, "0 valid signature(s)");
    fs::write(d.join("garbage.json"), b"{\"payload\": 3}").unwrap();
    run(
        "stella-kit",
        d,
        &["dsse", "verify", "--pub", "a.pub.pem", "garbage.json"],
    )
    .fails(2, "garbage.json: malformed dsse envelope");
}

macro_rules! per_profile {
    ($($name:ident: $profile:expr, $foreign:expr, [$($tool:expr),*];)*) => {$(
        mod $name {
            use super::*;
            #[test] fn sign_and_verify_blob() { check_blob($profile, $foreign) }
            #[test] fn encrypted_private_key() { check_encrypted_key($profile) }
            #[test] fn digest_matches_standard_tool() { check_digest($profile, &[$($tool),*]) }
            #[test] fn dsse_threshold_and_foreign_signatures() { check_dsse($profile, $foreign) }
        }
    )*};
}

per_profile! {
    fips: "fips", "gost", ["sha256sum"];
    eidas: "eidas", "sm", ["sha256sum"];
    gost: "gost", "fips", ["openssl", "dgst", "-engine", "gost", "-md_gost12_256"];
    sm: "sm", "eidas", ["openssl", "dgst", "-sm3"];
}

#[test]
fn every_scheme_can_be_generated_by_name() {
    let t = tempfile::tempdir().unwrap();
    for (profile, alg) in [
        ("fips", "p384"),
        ("fips", "ed25519"),
        ("fips", "rsa-pss-sha256"),
        ("eidas", "brainpool384"),
        ("eidas", "ecdsa-p256-sha256"),
        ("gost", "gost2012-512"),
    ] {
        keygen(t.path(), profile, Some(alg), &format!("{profile}-{alg}"));
    }
    run(
        "stella-kit",
        t.path(),
        &[
            "key",
            "generate",
            "--profile",
            "fips",
            "--algorithm",
            "gost512",
            "--out",
            "x",
        ],
    )
    .fails(
        1,
        "algorithm 'gost2012-512' is not allowed under profile 'fips'",
    );
    run(
        "stella-kit",
        t.path(),
        &["key", "generate", "--profile", "nope", "--out", "x"],
    )
    .fails(2, "unknown profile 'nope'");
}

#[test]
fn missing_gost_engine_is_a_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let env = [
        ("OPENSSL_ENGINES", "/nonexistent-engines"),
        ("OPENSSL_CONF", "/dev/null"),
    ];
    run_env(
        "stella-kit",
        t.path(),
        &["key", "generate", "--profile", "gost", "--out", "g"],
        &env,
    )
    .fails(3, "install the Debian package 'libengine-gost-openssl'");
    let r = run_env("stella", t.path(), &["selftest", "--profile", "gost"], &env);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.contains("libengine-gost-openssl"), "{}", r.stdout);
}

#[test]
fn selftest_passes_for_every_profile() {
    let t = tempfile::tempdir().unwrap();
    let r = run("stella", t.path(), &["selftest", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let profiles: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["profile"].as_str().unwrap())
        .collect();
    assert_eq!(profiles, ["fips", "eidas", "gost", "sm"]);
    assert!(
        v.as_array().unwrap().iter().all(|p| p["ok"] == true),
        "{}",
        r.stdout
    );
}
