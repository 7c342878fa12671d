//! Benchmarks that print tables and compare, in the same run, against a standard tool on the same machine.
//! Targets live here, never in timed tests.

use crypto_profiles::{
    DigestAlg, PrivateKey, Profile, ProfileId, SigAlg, Signer as _, Verifier as _,
};
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `f` repeatedly for about `budget`; returns operations per second.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget || n < 3 {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// `openssl speed` arguments for a scheme, and which `+F` record holds its sign/s and verify/s.
fn openssl_speed_sig(alg: SigAlg) -> Option<&'static str> {
    match alg {
        SigAlg::EcdsaP256Sha256 => Some("ecdsap256"),
        SigAlg::EcdsaP384Sha384 => Some("ecdsap384"),
        SigAlg::Ed25519 => Some("ed25519"),
        SigAlg::RsaPssSha256 => Some("rsa3072"),
        SigAlg::EcdsaBrainpoolP256r1Sha256 => Some("ecdsabrp256r1"),
        SigAlg::EcdsaBrainpoolP384r1Sha384 => Some("ecdsabrp384r1"),
        SigAlg::Sm2Sm3 => Some("sm2"),
        // `openssl speed` has no GOST R 34.10 test, with the engine or the provider.
        _ => None,
    }
}

fn run_openssl(args: &[&str]) -> Option<String> {
    let out = Command::new("openssl").args(args).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// (sign/s, verify/s) from `openssl speed -mr` for one scheme.
fn openssl_sig_rates(test: &str, seconds: u64) -> Option<(f64, f64)> {
    let secs = seconds.to_string();
    let text = run_openssl(&["speed", "-mr", "-seconds", &secs, test])?;
    // Records: +F2:i:bits:sign/s:verify/s (RSA), +F4:i:bits:sign/s:verify/s (ECDSA),
    // +F6:i:bits:name:sign/s:verify/s (EdDSA), +F7:i:bits:name:sign/s:verify/s (SM2).
    let line = text.lines().find(|l| {
        l.starts_with("+F2:")
            || l.starts_with("+F4:")
            || l.starts_with("+F6:")
            || l.starts_with("+F7:")
    })?;
    let fields: Vec<&str> = line.split(':').collect();
    let n = fields.len();
    Some((
        fields.get(n - 2)?.parse().ok()?,
        fields.get(n - 1)?.parse().ok()?,
    ))
}

/// Bytes per second from `openssl speed -evp` at 64 KiB blocks.
fn openssl_digest_rate(alg: DigestAlg, seconds: u64) -> Option<f64> {
    let secs = seconds.to_string();
    let name = match alg {
        DigestAlg::Sha256 => "sha256",
        DigestAlg::Sha384 => "sha384",
        DigestAlg::Sm3 => "sm3",
        DigestAlg::Streebog256 => "md_gost12_256",
        DigestAlg::Streebog512 => "md_gost12_512",
        _ => return None,
    };
    let mut args = vec!["speed"];
    if matches!(alg, DigestAlg::Streebog256 | DigestAlg::Streebog512) {
        args.extend(["-provider", "default", "-provider", "gostprov"]);
    }
    args.extend(["-mr", "-seconds", &secs, "-bytes", "65536", "-evp", name]);
    let text = run_openssl(&args)?;
    let line = text.lines().find(|l| l.starts_with("+F:"))?;
    line.rsplit(':').next()?.parse().ok()
}

fn ratio(ours: f64, theirs: Option<f64>) -> String {
    match theirs {
        Some(t) if t > 0.0 => format!("{:.2}", ours / t),
        _ => "n/a".into(),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.0}"))
}

/// The crypto benchmark table: per profile and scheme sign/s and verify/s, per digest MiB/s, each next to
/// `openssl speed` measured in the same run, with the ratio ours / openssl.
pub fn crypto(budget: Duration) -> anyhow::Result<String> {
    let secs = budget.as_secs().max(1);
    let mut out = String::new();
    writeln!(
        out,
        "# stella-kit bench crypto ({:.1}s per measurement; openssl speed in the same run)",
        budget.as_secs_f64()
    )?;
    writeln!(out, "# ours: sign or verify of a 64-byte message, hashing included; openssl speed: of a digest.")?;
    writeln!(out, "# rsa-pss-sha256 is compared with `openssl speed rsa3072` (PKCS#1 v1.5 padding, same RSA cost).")?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<8} {:<30} {:>10} {:>10} {:>6} {:>10} {:>10} {:>6}",
        "profile", "scheme", "sign/s", "openssl", "ratio", "verify/s", "openssl", "ratio"
    )?;
    let msg = [0x5au8; 64];
    let mut seen = std::collections::BTreeSet::new();
    for id in ProfileId::ALL {
        let profile = Profile::new(id)?;
        for &alg in profile.signatures() {
            if !seen.insert(alg) {
                continue;
            }
            let key = PrivateKey::generate(&profile, Some(alg))?;
            let public = key.public_key().clone();
            let signer = profile.signer(key)?;
            let verifier = profile.verifier(&public)?;
            let sig = signer.sign(&msg)?;
            let sign_rate = rate(budget, || {
                let _ = signer.sign(&msg);
            });
            let verify_rate = rate(budget, || {
                let _ = verifier.verify(&msg, &sig);
            });
            let theirs = openssl_speed_sig(alg).and_then(|t| openssl_sig_rates(t, secs));
            writeln!(
                out,
                "{:<8} {:<30} {:>10.0} {:>10} {:>6} {:>10.0} {:>10} {:>6}",
                id.name(),
                alg.name(),
                sign_rate,
                opt(theirs.map(|t| t.0)),
                ratio(sign_rate, theirs.map(|t| t.0)),
                verify_rate,
                opt(theirs.map(|t| t.1)),
                ratio(verify_rate, theirs.map(|t| t.1)),
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<8} {:<12} {:>10} {:>10} {:>6}",
        "profile", "digest", "MiB/s", "openssl", "ratio"
    )?;
    let block = vec![0xa5u8; 64 * 1024];
    let mut seen = std::collections::BTreeSet::new();
    for id in ProfileId::ALL {
        let profile = Profile::new(id)?;
        for &d in profile.digests() {
            if !seen.insert(d) {
                continue;
            }
            let mut h = profile.hasher_for(d)?;
            let blocks_per_s = rate(budget, || {
                let _ = h.update(&block);
            });
            let ours = blocks_per_s * block.len() as f64 / (1024.0 * 1024.0);
            let theirs = openssl_digest_rate(d, secs).map(|b| b / (1024.0 * 1024.0));
            writeln!(
                out,
                "{:<8} {:<12} {:>10.0} {:>10} {:>6}",
                id.name(),
                d.name(),
                ours,
                opt(theirs),
                ratio(ours, theirs)
            )?;
        }
    }
    Ok(out)
}
