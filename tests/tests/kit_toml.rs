//! `stella-kit build --config kit.toml`: the file gives the same kit as the flags, its relative paths are
//! relative to the file (not to the current directory), flags win over it, and a bad file is refused with
//! the file, the key and the problem named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use stella_tests::{gen_key, kit, noise, osv, Run, AT};

/// `d/site/` holds the inputs and `d/site/conf/kit.toml` names them relative to itself; `d/elsewhere/` is
/// where the commands run from.
fn site(d: &Path, profile: &str, algorithm: Option<&str>) {
    let s = d.join("site");
    fs::create_dir_all(s.join("feeds/osv")).unwrap();
    fs::create_dir_all(s.join("policy/default")).unwrap();
    fs::create_dir_all(s.join("conf")).unwrap();
    fs::create_dir_all(s.join("out")).unwrap();
    fs::create_dir_all(d.join("elsewhere")).unwrap();
    fs::write(
        s.join("feeds/osv/GHSA-1.json"),
        osv("GHSA-1", "2023-01-01T00:00:00Z"),
    )
    .unwrap();
    fs::write(
        s.join("policy/default/rules.yaml"),
        b"deny:\n  - severity: critical\n",
    )
    .unwrap();
    fs::write(s.join("update.bin"), noise(1536 << 10, 7)).unwrap();
    fs::write(s.join("notes.txt"), b"release notes\n").unwrap();
    gen_key(&s, profile, algorithm, "signer");
}

const TOML: &str = r#"# the stable channel's kit, built the same way every time
channel = "stable"
sequence = 4
expires = "14d"
keys = ["../signer.key.pem"]
feeds = ["../feeds/osv"]
policy = ["../policy/default"]
trust = ["../signer.pub.pem"]
files = ["../update.bin", "../notes.txt"]
out = "../out/stable.kit"
"#;

/// The same kit from flags, run from `d/site`.
const FLAGS: &[&str] = &[
    "build",
    "--quiet",
    "--channel",
    "stable",
    "--sequence",
    "4",
    "--expires",
    "14d",
    "--key",
    "signer.key.pem",
    "--feeds",
    "feeds/osv",
    "--policy",
    "policy/default",
    "--trust",
    "signer.pub.pem",
    "--file",
    "update.bin",
    "--file",
    "notes.txt",
    "--out",
    "flags.kit",
];

/// `kit.json` of a kit, as `tar` extracts it.
fn manifest(kit_path: &Path) -> Vec<u8> {
    let out = std::process::Command::new("tar")
        .args(["--zstd", "-xOf"])
        .arg(kit_path)
        .arg("kit.json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

fn from_toml(d: &Path, extra: &[&str]) -> Run {
    let config = d.join("site/conf/kit.toml");
    let mut args = vec!["build", "--quiet", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    kit(&d.join("elsewhere"), &args)
}

fn check_same_manifest(profile: &str) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    site(d, profile, None);
    fs::write(d.join("site/conf/kit.toml"), TOML).unwrap();
    let b = from_toml(d, &[]).ok();
    assert!(
        b.stdout
            .contains("kit: stable-000004 (channel stable, sequence 4)"),
        "{}",
        b.stdout
    );
    // The output path is relative to the file too: nothing lands in the current directory.
    assert!(d.join("site/out/stable.kit").is_file(), "{}", b.stdout);
    assert_eq!(
        fs::read_dir(d.join("elsewhere"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "state")
            .count(),
        0
    );
    kit(&d.join("site"), FLAGS).ok();
    assert_eq!(
        manifest(&d.join("site/out/stable.kit")),
        manifest(&d.join("site/flags.kit")),
        "kit.json from kit.toml differs from kit.json from flags"
    );
    kit(
        &d.join("site"),
        &[
            "verify",
            "--at",
            AT,
            "--trust",
            "signer.pub.pem",
            "out/stable.kit",
        ],
    )
    .ok();
}

/// With Ed25519 (deterministic signatures) the whole kit file is the same, byte for byte.
#[test]
fn ed25519_kit_from_toml_is_byte_identical_to_flags() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    site(d, "fips", Some("ed25519"));
    fs::write(d.join("site/conf/kit.toml"), TOML).unwrap();
    from_toml(d, &[]).ok();
    kit(&d.join("site"), FLAGS).ok();
    assert!(
        fs::read(d.join("site/out/stable.kit")).unwrap()
            == fs::read(d.join("site/flags.kit")).unwrap(),
        "the kit built from kit.toml differs from the one built from flags"
    );
}

#[test]
fn flags_win_over_the_file() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    site(d, "fips", None);
    fs::write(d.join("site/conf/kit.toml"), TOML).unwrap();
    fs::write(d.join("elsewhere/extra.txt"), b"one more\n").unwrap();
    // A single value replaces the file's (sequence, out: relative to the current directory as flags are);
    // a repeatable flag adds to the file's list.
    let b = from_toml(
        d,
        &[
            "--sequence",
            "9",
            "--file",
            "extra.txt",
            "--out",
            "mine.kit",
        ],
    )
    .ok();
    assert!(b.stdout.contains("sequence 9"), "{}", b.stdout);
    assert!(d.join("elsewhere/mine.kit").is_file());
    assert!(!d.join("site/out/stable.kit").exists());
    let text = kit(&d.join("elsewhere"), &["inspect", "mine.kit"])
        .ok()
        .stdout;
    for name in [
        "files/update.bin",
        "files/notes.txt",
        "files/extra.txt",
        "feeds/osv/GHSA-1.json",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
}

#[test]
fn unknown_key_is_refused_naming_it() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    site(d, "fips", None);
    fs::write(
        d.join("site/conf/kit.toml"),
        TOML.replace(
            "expires = \"14d\"",
            "expires = \"14d\"\nvolume_size = \"4GiB\"",
        ),
    )
    .unwrap();
    let r = from_toml(d, &[]).fails(
        2,
        "kit.toml: line 5, column 1: unknown field `volume_size`, expected one of",
    );
    assert!(r.stderr.contains("`volume-size`"), "{}", r.stderr);
    assert!(!d.join("site/out/stable.kit").exists());
}

#[test]
fn bad_values_name_the_file_and_the_key() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    site(d, "fips", None);
    let cases = [
        (
            "sequence = 4",
            "sequence = \"four\"",
            "kit.toml: line 3, column 12: invalid type: string \"four\", expected u64",
        ),
        (
            "expires = \"14d\"",
            "expires = \"14 fortnights\"",
            "kit.toml: key 'expires'",
        ),
        (
            "channel = \"stable\"",
            "channel = \"../stable\"",
            "kit.toml: key 'channel': '../stable' is not valid",
        ),
        (
            "out = \"../out/stable.kit\"",
            "out = \"../out/stable.kit\"\nvolume-size = \"1KiB\"",
            "kit.toml: key 'volume-size': volume size 1024 is below the minimum of 1 MiB",
        ),
        (
            "channel = \"stable\"\n",
            "",
            "no channel: give --channel or set `channel` in",
        ),
    ];
    for (from, to, needle) in cases {
        fs::write(d.join("site/conf/kit.toml"), TOML.replace(from, to)).unwrap();
        from_toml(d, &[]).fails(2, needle);
    }
    // Not TOML at all.
    fs::write(d.join("site/conf/kit.toml"), "channel = stable\n").unwrap();
    from_toml(d, &[]).fails(2, "kit.toml: line 1, column 11:");
    // Missing file.
    kit(&d.join("elsewhere"), &["build", "--config", "nope.toml"])
        .fails(2, "nope.toml: cannot read");
}

/// A path in the file that does not exist is reported with the path resolved against the file.
#[test]
fn relative_paths_are_resolved_against_the_file() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    site(d, "fips", None);
    fs::write(
        d.join("site/conf/kit.toml"),
        TOML.replace("../notes.txt", "notes.txt"),
    )
    .unwrap();
    let r = from_toml(d, &[]);
    let expected = d.join("site/conf/notes.txt");
    r.fails(2, &expected.display().to_string());
    // From the file's own directory, with the file named relatively, the same paths work.
    fs::write(d.join("site/conf/kit.toml"), TOML).unwrap();
    kit(
        &d.join("site/conf"),
        &["build", "--quiet", "--config", "kit.toml"],
    )
    .ok();
    assert!(d.join("site/out/stable.kit").is_file());
}

macro_rules! per_profile {
    ($($name:ident: $profile:expr;)*) => {$(
        mod $name {
            #[test] fn toml_and_flags_give_the_same_manifest() { super::check_same_manifest($profile) }
        }
    )*};
}

per_profile! {
    fips: "fips";
    eidas: "eidas";
    gost: "gost";
    sm: "sm";
}
