#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Data-driven Sigstore bundle verification over the sigstore-conformance `bundle-verify` suite and the
//! sigstore-python / sigstore-go fixtures in `../shared/corpus/sigstore` (read in place, never copied).

use std::path::{Path, PathBuf};

use appliance::sigstore::{
    verify_bundle, Artifact, ExpectedIdentity, Policy, PublicKey, TrustedRoot,
};

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Cases we do not claim to handle, with the reason. Empty means every case is in scope.
const OUT_OF_SCOPE: &[(&str, &str)] = &[];

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/sigstore");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: corpus not found at {}", p.display());
        None
    }
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

/// Verifies one bundle and returns Ok(summary) or Err(error message).
fn check(
    root: &Path,
    bundle: &Path,
    artifact: &[u8],
    identity: Option<(&str, &str)>,
    key: Option<&Path>,
) -> Result<String, String> {
    let root = TrustedRoot::from_json(&std::fs::read(root).unwrap())
        .map_err(|e| format!("[{}] {e}", e.code()))?;
    let mut policy = Policy::default();
    if let Some((san, issuer)) = identity {
        policy.identity = Some(ExpectedIdentity {
            san: san.to_owned(),
            issuer: issuer.to_owned(),
        });
    }
    if let Some(k) = key {
        policy.key =
            Some(PublicKey::from_pem(&std::fs::read(k).unwrap()).map_err(|e| e.to_string())?);
    }
    let bytes = std::fs::read(bundle).unwrap();
    verify_bundle(&root, &bytes, Artifact::Bytes(artifact), &policy)
        .map(|v| format!("{:?}", v.times))
        .map_err(|e| format!("[{}] {e}", e.code()))
}

#[test]
fn conformance_bundle_verify() {
    let Some(corpus) = corpus() else { return };
    let suite = corpus.join("sigstore-conformance/test/assets/bundle-verify");
    let production_root = corpus.join(
        "sigstore-python/sigstore/_store/production-tuf-repo-cdn.sigstore.dev/trusted_root.json",
    );
    let default_artifact = std::fs::read(suite.join("a.txt")).unwrap();
    let mut cases: Vec<_> = std::fs::read_dir(&suite)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let (mut passed, mut wrong, mut skipped) = (0, Vec::new(), Vec::new());
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if let Some((_, why)) = OUT_OF_SCOPE.iter().find(|(n, _)| *n == name) {
            skipped.push(format!("{name}: {why}"));
            continue;
        }
        let expect_ok = !name.ends_with("_fail");
        let root = Some(case.join("trusted_root.json"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| production_root.clone());
        let artifact =
            std::fs::read(case.join("artifact")).unwrap_or_else(|_| default_artifact.clone());
        let key = Some(case.join("key.pub")).filter(|p| p.exists());
        let san =
            read_trimmed(&case.join("identity")).unwrap_or_else(|| DEFAULT_IDENTITY.to_owned());
        let issuer =
            read_trimmed(&case.join("issuer")).unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
        let identity = key.is_none().then_some((san.as_str(), issuer.as_str()));
        let result = check(
            &root,
            &case.join("bundle.sigstore.json"),
            &artifact,
            identity,
            key.as_deref(),
        );
        match (&result, expect_ok) {
            (Ok(_), true) | (Err(_), false) => passed += 1,
            _ => wrong.push(format!(
                "{name}: expected {}, got {result:?}",
                if expect_ok { "ok" } else { "failure" }
            )),
        }
        eprintln!("{name}: {result:?}");
    }
    eprintln!("out of scope ({}):", skipped.len());
    for s in &skipped {
        eprintln!("  {s}");
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(passed, cases.len() - skipped.len());
    assert_eq!(passed, 70, "conformance cases passing");
}

/// Client fixtures: (bundle, artifact, trusted root, expected error code or "ok"). sigstore-python's
/// fixtures are verified without an identity policy (their tests pin other identities).
const CLIENT_FIXTURES: &[(&str, &str, &str, &str)] = &[
    (
        "sigstore-python/test/assets/bundle.txt.sigstore",
        "sigstore-python/test/assets/bundle.txt",
        STAGING,
        "ok",
    ),
    (
        "sigstore-python/test/assets/bundle_v3.txt.sigstore",
        "sigstore-python/test/assets/bundle_v3.txt",
        STAGING,
        "ok",
    ),
    (
        "sigstore-python/test/assets/bundle_v3_alt.txt.sigstore",
        "sigstore-python/test/assets/bundle_v3_alt.txt",
        STAGING,
        "ok",
    ),
    (
        "sigstore-python/test/assets/integration/bundle_v3.txt.sigstore",
        "sigstore-python/test/assets/integration/bundle_v3.txt",
        STAGING,
        "ok",
    ),
    (
        "sigstore-python/test/assets/staging-rekor-v2.txt.sigstore.json",
        "sigstore-python/test/assets/staging-rekor-v2.txt",
        STAGING,
        "ok",
    ),
    // The DSSE subject is the conformance suite's a.txt.
    (
        "sigstore-python/test/assets/a.dsse.staging-rekor-v2.txt.sigstore.json",
        "sigstore-conformance/test/assets/a.txt",
        STAGING,
        "ok",
    ),
    (
        "sigstore-python/test/assets/bundle_cve_2022_36056.txt.sigstore",
        "sigstore-python/test/assets/bundle_cve_2022_36056.txt",
        STAGING,
        "tlog-entry-mismatch",
    ),
    (
        "sigstore-python/test/assets/bundle_invalid_version.txt.sigstore",
        "sigstore-python/test/assets/bundle_invalid_version.txt",
        STAGING,
        "unsupported-bundle-version",
    ),
    (
        "sigstore-python/test/assets/bundle_no_cert_v1.txt.sigstore",
        "sigstore-python/test/assets/bundle_no_cert_v1.txt",
        PRODUCTION,
        "incomplete-bundle",
    ),
    (
        "sigstore-python/test/assets/bundle_no_checkpoint.txt.sigstore",
        "sigstore-python/test/assets/bundle_no_checkpoint.txt",
        STAGING,
        "tlog-checkpoint",
    ),
    (
        "sigstore-python/test/assets/bundle_no_log_entry.txt.sigstore",
        "sigstore-python/test/assets/bundle_no_log_entry.txt",
        STAGING,
        "incomplete-bundle",
    ),
    (
        "sigstore-python/test/assets/bundle_v3_no_signed_time.txt.sigstore.json",
        "sigstore-python/test/assets/bundle_v3_no_signed_time.txt",
        PRODUCTION,
        "tlog-set",
    ),
    // Old sigstore-js v0.1 bundle that carries the whole chain, root included: refused under the
    // conformance rule `bundle-with-root-cert_fail` (sigstore-go itself ignores bundle intermediates).
    (
        "sigstore-go/pkg/testing/data/bundles/dsse.sigstore.json",
        "sigstore-conformance/test/assets/a.txt",
        "sigstore-go/pkg/testing/data/trusted-roots/public-good.json",
        "bad-certificate",
    ),
    (
        "sigstore-go/pkg/testing/data/bundles/dsse-2sigs.sigstore.json",
        "sigstore-conformance/test/assets/a.txt",
        "sigstore-go/pkg/testing/data/trusted-roots/public-good.json",
        "incomplete-bundle",
    ),
];
const STAGING: &str =
    "sigstore-python/sigstore/_store/staging-tuf-repo-cdn.sigstage.dev/trusted_root.json";
const PRODUCTION: &str =
    "sigstore-python/sigstore/_store/production-tuf-repo-cdn.sigstore.dev/trusted_root.json";

#[test]
fn client_fixtures() {
    let Some(corpus) = corpus() else { return };
    let mut wrong = Vec::new();
    for (bundle, artifact, root, expected) in CLIENT_FIXTURES {
        let artifact = std::fs::read(corpus.join(artifact)).unwrap();
        let got = match check(
            &corpus.join(root),
            &corpus.join(bundle),
            &artifact,
            None,
            None,
        ) {
            Ok(_) => "ok".to_owned(),
            Err(e) => e,
        };
        let ok = if *expected == "ok" {
            got == "ok"
        } else {
            got.starts_with(&format!("[{expected}]"))
        };
        if !ok {
            wrong.push(format!("{bundle}: expected {expected}, got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn stella(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stella"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_exit_codes() {
    let Some(corpus) = corpus() else { return };
    let suite = corpus.join("sigstore-conformance/test/assets/bundle-verify");
    let root = corpus.join(PRODUCTION);
    let root = root.to_str().unwrap();
    let a_txt = suite.join("a.txt");
    let bundle = |case: &str| {
        suite
            .join(case)
            .join("bundle.sigstore.json")
            .to_str()
            .unwrap()
            .to_owned()
    };
    let digest = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
    let ok = bundle("happy-path-v0.3");
    let (code, out, _) = stella(&[
        "verify-bundle",
        "--trusted-root",
        root,
        "--bundle",
        &ok,
        "--digest",
        digest,
        "--identity",
        DEFAULT_IDENTITY,
        "--issuer",
        DEFAULT_ISSUER,
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["ok"], true);
    assert_eq!(j["times"][0]["source"], "tlog");

    let (code, _, err) = stella(&[
        "verify-bundle",
        "--trusted-root",
        root,
        "--bundle",
        &ok,
        "--artifact",
        a_txt.to_str().unwrap(),
        "--identity",
        "https://example.com/someone-else",
        "--issuer",
        DEFAULT_ISSUER,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("[identity-mismatch]"), "{err}");

    let bad = bundle("set-invalid-signature_fail");
    let (code, out, _) = stella(&[
        "verify-bundle",
        "--trusted-root",
        root,
        "--bundle",
        &bad,
        "--digest",
        digest,
        "--json",
    ]);
    assert_eq!(code, 1);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["code"], "tlog-set");

    let (code, _, _) = stella(&[
        "verify-bundle",
        "--trusted-root",
        root,
        "--bundle",
        &ok,
        "--digest",
        "sha256:zz",
    ]);
    assert_eq!(code, 2);
    let (code, _, _) = stella(&["verify-bundle", "--trusted-root", root, "--bundle", &ok]);
    assert_eq!(code, 2);
    let (code, _, _) = stella(&[
        "verify-bundle",
        "--trusted-root",
        &ok,
        "--bundle",
        &ok,
        "--digest",
        digest,
    ]);
    assert_eq!(code, 2, "a bundle is not a trusted root");
}
