//! Interop with the `openssl` command line (OpenSSL 3.0, GOST through Debian's `libengine-gost-openssl`
//! engine), in both directions, once per profile and per scheme:
//!
//! * the library generates a key, writes PKCS#8 / SPKI PEM and signs; the CLI reads the PEMs and verifies,
//!   and rejects a signature with one flipped bit;
//! * the CLI generates a key and signs; the library loads the CLI's PEMs, verifies the CLI's signature and
//!   signs something the CLI verifies;
//! * encrypted PKCS#8 (PBES2, AES-256-CBC) written by either side loads in the other;
//! * the library's key id equals the CLI's digest of the SPKI DER;
//! * eIDAS signer certificates issued with `openssl ca` (fixed validity windows, so the clock never matters)
//!   are checked by `verify_signer_certificate` at explicit times.
//!
//! If there is no `openssl` binary the tests print why and pass; CI installs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crypto_profiles::x509::{certs_from_pem, verify_signer_certificate, CertError};
use crypto_profiles::{
    KeyError, PrivateKey, Profile, ProfileId, PublicKey, SigAlg, Signer as _, VerifyError,
};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::X509;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The message both sides sign: text, a NUL and high bytes, so nothing depends on text mode.
const MSG: &[u8] = b"stella ops kit manifest\n\x00\xff\xfe sequence 42\n";
/// A second message, signed by the library with a key the CLI made.
const MSG2: &[u8] = b"stella ops audit record 7\n";
const PASS: &str = "correct horse battery staple";

/// OpenSSL 3.0 config that activates the GOST engine (see shared/notes/crypto.md, section 2b).
const GOST_CONF: &str = "\
openssl_conf = openssl_init

[openssl_init]
engines = engine_section

[engine_section]
gost = gost_section

[gost_section]
engine_id = gost
default_algorithms = ALL
";

/// The `openssl` command line, run inside one test's temp dir (relative file names), with the GOST engine
/// configured through `OPENSSL_CONF` when the case needs it.
#[derive(Debug)]
struct Cli {
    dir: PathBuf,
    conf: Option<PathBuf>,
}

impl Cli {
    /// `None` (after printing why) when the `openssl` binary is absent.
    fn new(dir: &Path, gost: bool) -> Option<Cli> {
        match Command::new("openssl").arg("version").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "`openssl version` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => {
                eprintln!(
                    "skipping openssl CLI interop test: `openssl` command line not found ({e}); CI installs it"
                );
                return None;
            }
        }
        let conf = gost.then(|| {
            let path = dir.join("gost-engine.cnf");
            std::fs::write(&path, GOST_CONF).unwrap();
            path
        });
        Some(Cli {
            dir: dir.to_owned(),
            conf,
        })
    }

    /// Runs `openssl args...`, whatever the outcome.
    fn try_run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        let mut cmd = Command::new("openssl");
        cmd.args(args).current_dir(&self.dir);
        if let Some(conf) = &self.conf {
            cmd.env("OPENSSL_CONF", conf);
        }
        cmd.output().expect("run openssl")
    }

    /// Runs `openssl args...` and panics, with its stderr, unless it succeeds.
    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        let out = self.try_run(args);
        if !out.status.success() {
            let shown: Vec<_> = args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect();
            panic!(
                "openssl {} failed ({}):\nstdout: {}\nstderr: {}",
                shown.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) {
        std::fs::write(self.path(name), bytes).unwrap();
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn flip_last_bit(sig: &[u8]) -> Vec<u8> {
    let mut bad = sig.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    bad
}

/// One (profile, scheme) pair and how the CLI spells it.
#[derive(Debug, Clone, Copy)]
struct Case {
    profile: ProfileId,
    alg: SigAlg,
    /// A site-specific SM2 distinguishing ID instead of the GM/T 0009 default.
    sm2_id: Option<&'static str>,
}

impl Case {
    const fn new(profile: ProfileId, alg: SigAlg) -> Case {
        Case {
            profile,
            alg,
            sm2_id: None,
        }
    }

    const fn with_sm2_id(self, id: &'static str) -> Case {
        Case {
            sm2_id: Some(id),
            ..self
        }
    }

    fn profile(&self) -> Profile {
        let p = Profile::new(self.profile).unwrap();
        match self.sm2_id {
            Some(id) => p.with_sm2_id(id.as_bytes()).unwrap(),
            None => p,
        }
    }

    fn cli(&self, dir: &Path) -> Option<Cli> {
        Cli::new(
            dir,
            matches!(self.alg, SigAlg::Gost2012_256 | SigAlg::Gost2012_512),
        )
    }

    /// File name prefix.
    fn name(&self) -> String {
        match self.sm2_id {
            Some(_) => format!("{}-{}-custom-id", self.profile, self.alg),
            None => format!("{}-{}", self.profile, self.alg),
        }
    }

    fn genpkey(&self, out: &str) -> Vec<String> {
        let opts: &[&str] = match self.alg {
            SigAlg::EcdsaP256Sha256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            SigAlg::EcdsaP384Sha384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            SigAlg::Ed25519 => &["-algorithm", "ED25519"],
            SigAlg::RsaPssSha256 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
            SigAlg::EcdsaBrainpoolP256r1Sha256 => &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:brainpoolP256r1",
            ],
            SigAlg::EcdsaBrainpoolP384r1Sha384 => &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:brainpoolP384r1",
            ],
            SigAlg::Gost2012_256 => &["-algorithm", "gost2012_256", "-pkeyopt", "paramset:TCA"],
            SigAlg::Gost2012_512 => &["-algorithm", "gost2012_512", "-pkeyopt", "paramset:A"],
            SigAlg::Sm2Sm3 => &["-algorithm", "SM2"],
            other => panic!("no CLI recipe for {other}"),
        };
        let mut args = vec!["genpkey".to_owned()];
        args.extend(opts.iter().map(|s| (*s).to_owned()));
        args.extend(["-out".to_owned(), out.to_owned()]);
        args
    }

    /// `openssl dgst` digest flag, or `None` for Ed25519 (`pkeyutl -rawin`).
    fn dgst_md(&self) -> Option<&'static str> {
        match self.alg {
            SigAlg::Ed25519 => None,
            SigAlg::EcdsaP384Sha384 | SigAlg::EcdsaBrainpoolP384r1Sha384 => Some("-sha384"),
            SigAlg::Gost2012_256 => Some("-md_gost12_256"),
            SigAlg::Gost2012_512 => Some("-md_gost12_512"),
            SigAlg::Sm2Sm3 => Some("-sm3"),
            _ => Some("-sha256"),
        }
    }

    fn sigopts(&self, sm2_id: &str) -> Vec<String> {
        let opts: Vec<String> = match self.alg {
            SigAlg::RsaPssSha256 => vec![
                "rsa_padding_mode:pss".into(),
                "rsa_pss_saltlen:32".into(),
                "rsa_mgf1_md:sha256".into(),
            ],
            SigAlg::Sm2Sm3 => vec![format!("distid:{sm2_id}")],
            _ => vec![],
        };
        opts.into_iter()
            .flat_map(|o| ["-sigopt".to_owned(), o])
            .collect()
    }

    /// The SM2 ID the case signs and verifies with (also the default for the SM profile).
    fn case_sm2_id(&self) -> &'static str {
        self.sm2_id.unwrap_or("1234567812345678")
    }

    fn sign_args(&self, key: &str, msg: &str, sig: &str) -> Vec<String> {
        let s = |x: &str| x.to_owned();
        match self.dgst_md() {
            None => vec![
                s("pkeyutl"),
                s("-sign"),
                s("-inkey"),
                s(key),
                s("-rawin"),
                s("-in"),
                s(msg),
                s("-out"),
                s(sig),
            ],
            Some(md) => {
                let mut a = vec![s("dgst"), s(md), s("-sign"), s(key)];
                a.extend(self.sigopts(self.case_sm2_id()));
                a.extend([s("-out"), s(sig), s(msg)]);
                a
            }
        }
    }

    fn verify_args_with_id(&self, public: &str, msg: &str, sig: &str, sm2_id: &str) -> Vec<String> {
        let s = |x: &str| x.to_owned();
        match self.dgst_md() {
            None => vec![
                s("pkeyutl"),
                s("-verify"),
                s("-pubin"),
                s("-inkey"),
                s(public),
                s("-rawin"),
                s("-in"),
                s(msg),
                s("-sigfile"),
                s(sig),
            ],
            Some(md) => {
                let mut a = vec![s("dgst"), s(md), s("-verify"), s(public)];
                a.extend(self.sigopts(sm2_id));
                a.extend([s("-signature"), s(sig), s(msg)]);
                a
            }
        }
    }

    fn verify_args(&self, public: &str, msg: &str, sig: &str) -> Vec<String> {
        self.verify_args_with_id(public, msg, sig, self.case_sm2_id())
    }

    /// What the CLI prints on success.
    fn verified_marker(&self) -> &'static str {
        match self.dgst_md() {
            None => "Signature Verified Successfully",
            Some(_) => "Verified OK",
        }
    }

    /// The CLI digest flag for key ids: the family's primary digest.
    fn key_id_md(&self) -> &'static str {
        match self.profile {
            ProfileId::Gost => "-md_gost12_256",
            ProfileId::Sm => "-sm3",
            _ => "-sha256",
        }
    }

    /// The CLI must verify; panics with its output otherwise.
    fn cli_verifies(&self, cli: &Cli, public: &str, msg: &str, sig: &str) {
        let out = cli.run(&self.verify_args(public, msg, sig));
        assert!(
            stdout(&out).contains(self.verified_marker()),
            "{}: CLI did not print '{}': {}",
            self.name(),
            self.verified_marker(),
            stdout(&out)
        );
    }

    /// The CLI must refuse (non-zero exit, no success marker).
    fn cli_rejects(&self, cli: &Cli, args: &[String], what: &str) {
        let out = cli.try_run(args);
        assert!(
            !out.status.success() && !stdout(&out).contains(self.verified_marker()),
            "{}: CLI accepted {what}: {}",
            self.name(),
            stdout(&out)
        );
    }
}

/// Direction 1: library key and signature, CLI verification.
fn library_signs_cli_verifies(case: Case) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(cli) = case.cli(tmp.path()) else {
        return;
    };
    let p = case.profile();
    let n = case.name();
    let (key_pem, pub_pem, msg, sig, bad) = (
        format!("{n}.key.pem"),
        format!("{n}.pub.pem"),
        format!("{n}.msg"),
        format!("{n}.sig"),
        format!("{n}.bad.sig"),
    );

    let key = PrivateKey::generate(&p, Some(case.alg)).unwrap();
    let public = key.public_key().clone();
    cli.write(&key_pem, key.to_pkcs8_pem(None).unwrap().as_bytes());
    cli.write(&pub_pem, public.to_pem());
    cli.write(&msg, MSG);
    let signature = p.signer(key).unwrap().sign(MSG).unwrap();
    cli.write(&sig, &signature);

    // The CLI reads the private key PEM and derives the same public key.
    let derived = cli.run(&["pkey", "-in", &key_pem, "-pubout"]);
    assert_eq!(
        stdout(&derived),
        public.to_pem(),
        "{n}: public key from the CLI"
    );

    case.cli_verifies(&cli, &pub_pem, &msg, &sig);

    cli.write(&bad, flip_last_bit(&signature));
    case.cli_rejects(
        &cli,
        &case.verify_args(&pub_pem, &msg, &bad),
        "a flipped-bit signature",
    );

    // SM2: the distinguishing ID is really part of the signature.
    if case.alg == SigAlg::Sm2Sm3 {
        let other_id = if case.sm2_id.is_some() {
            "1234567812345678"
        } else {
            "stella-ops-other-id"
        };
        case.cli_rejects(
            &cli,
            &case.verify_args_with_id(&pub_pem, &msg, &sig, other_id),
            "a signature under another distinguishing id",
        );
    }
}

/// Direction 2: CLI key and signature, library verification, library signature verified by the CLI.
fn cli_signs_library_verifies(case: Case) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(cli) = case.cli(tmp.path()) else {
        return;
    };
    let p = case.profile();
    let n = case.name();
    let (key_pem, pub_pem, msg, sig, msg2, sig2) = (
        format!("{n}.key.pem"),
        format!("{n}.pub.pem"),
        format!("{n}.msg"),
        format!("{n}.sig"),
        format!("{n}.msg2"),
        format!("{n}.lib.sig"),
    );

    cli.run(&case.genpkey(&key_pem));
    cli.run(&["pkey", "-in", &key_pem, "-pubout", "-out", &pub_pem]);
    cli.write(&msg, MSG);
    cli.run(&case.sign_args(&key_pem, &msg, &sig));

    let public = PublicKey::from_pem(&cli.read(&pub_pem)).unwrap();
    assert_eq!(public.algorithm(), case.alg, "{n}: scheme of the CLI's key");
    let key = PrivateKey::from_pem(&cli.read(&key_pem), None).unwrap();
    assert_eq!(key.algorithm(), case.alg);
    assert_eq!(key.key_id(), public.key_id());
    if case.alg == SigAlg::RsaPssSha256 {
        assert_eq!(public.rsa_bits(), Some(3072));
    }

    let signature = cli.read(&sig);
    p.verify(&public, MSG, &signature)
        .unwrap_or_else(|e| panic!("{n}: library refused the CLI's signature: {e}"));
    assert_eq!(
        p.verify(&public, MSG, &flip_last_bit(&signature)),
        Err(VerifyError::BadSignature),
        "{n}: flipped bit"
    );
    if case.alg == SigAlg::Sm2Sm3 {
        // The other ID (default vs. custom) must not verify.
        let other = match case.sm2_id {
            Some(_) => Profile::new(ProfileId::Sm).unwrap(),
            None => p.clone().with_sm2_id(b"stella-ops-other-id").unwrap(),
        };
        assert_eq!(
            other.verify(&public, MSG, &signature),
            Err(VerifyError::BadSignature),
            "{n}: signature verified under another distinguishing id"
        );
    }

    // The library signs with the CLI's key; the CLI verifies.
    cli.write(&msg2, MSG2);
    let lib_sig = p.signer(key).unwrap().sign(MSG2).unwrap();
    cli.write(&sig2, &lib_sig);
    case.cli_verifies(&cli, &pub_pem, &msg2, &sig2);
}

/// Encrypted PKCS#8 both ways: CLI-encrypted loads in the library, library-encrypted loads in the CLI.
fn encrypted_pkcs8_both_ways(case: Case) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(cli) = case.cli(tmp.path()) else {
        return;
    };
    let p = case.profile();
    let n = case.name();
    let passout = format!("pass:{PASS}");

    // CLI -> library.
    let (plain, enc, pub_pem, msg, sig) = (
        format!("{n}.cli.key.pem"),
        format!("{n}.cli.enc.pem"),
        format!("{n}.cli.pub.pem"),
        format!("{n}.msg"),
        format!("{n}.sig"),
    );
    cli.run(&case.genpkey(&plain));
    cli.run(&["pkey", "-in", &plain, "-pubout", "-out", &pub_pem]);
    cli.run(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-passout",
        &passout,
        "-in",
        &plain,
        "-out",
        &enc,
    ]);
    let enc_pem = cli.read(&enc);
    assert!(String::from_utf8_lossy(&enc_pem).contains("BEGIN ENCRYPTED PRIVATE KEY"));
    assert!(matches!(
        PrivateKey::from_pem(&enc_pem, None),
        Err(KeyError::Passphrase)
    ));
    assert!(matches!(
        PrivateKey::from_pem(&enc_pem, Some(b"wrong horse")),
        Err(KeyError::Passphrase)
    ));
    let key = PrivateKey::from_pem(&enc_pem, Some(PASS.as_bytes()))
        .unwrap_or_else(|e| panic!("{n}: CLI-encrypted key: {e}"));
    let public = PublicKey::from_pem(&cli.read(&pub_pem)).unwrap();
    assert_eq!(key.algorithm(), case.alg);
    assert_eq!(key.key_id(), public.key_id(), "{n}: decrypted key");
    // The decrypted private half is the right one: its signature verifies in the CLI.
    cli.write(&msg, MSG);
    cli.write(&sig, p.signer(key).unwrap().sign(MSG).unwrap());
    case.cli_verifies(&cli, &pub_pem, &msg, &sig);

    // Library -> CLI.
    let lib_enc = format!("{n}.lib.enc.pem");
    let key = PrivateKey::generate(&p, Some(case.alg)).unwrap();
    cli.write(
        &lib_enc,
        key.to_pkcs8_pem(Some(PASS.as_bytes())).unwrap().as_bytes(),
    );
    let passin = format!("pass:{PASS}");
    let out = cli.run(&["pkey", "-in", &lib_enc, "-passin", &passin, "-pubout"]);
    assert_eq!(
        stdout(&out),
        key.public_key().to_pem(),
        "{n}: CLI-decrypted key"
    );
    let wrong = cli.try_run(&[
        "pkey",
        "-in",
        &lib_enc,
        "-passin",
        "pass:wrong horse",
        "-pubout",
    ]);
    assert!(
        !wrong.status.success(),
        "{n}: CLI decrypted with a wrong passphrase"
    );
    // The documented format: PBES2 with PBKDF2 and AES-256-CBC.
    let asn1 = stdout(&cli.run(&["asn1parse", "-in", &lib_enc]));
    for part in ["PBES2", "PBKDF2", "aes-256-cbc"] {
        assert!(
            asn1.contains(part),
            "{n}: encrypted PKCS#8 lacks {part}: {asn1}"
        );
    }
}

/// Key ids: the family digest of the SPKI DER, as the CLI computes it.
fn key_id_matches_cli(case: Case) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(cli) = case.cli(tmp.path()) else {
        return;
    };
    let p = case.profile();
    let n = case.name();
    let cli_key_id = |pub_pem: &str, der: &str| -> String {
        cli.run(&[
            "pkey", "-pubin", "-in", pub_pem, "-outform", "DER", "-out", der,
        ]);
        let out = cli.run(&["dgst", case.key_id_md(), "-r", der]);
        let text = stdout(&out);
        text.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    };

    // A library key.
    let key = PrivateKey::generate(&p, Some(case.alg)).unwrap();
    let pub_pem = format!("{n}.lib.pub.pem");
    let der = format!("{n}.lib.pub.der");
    cli.write(&pub_pem, key.public_key().to_pem());
    let expected = cli_key_id(&pub_pem, &der);
    assert_eq!(cli.read(&der), key.public_key().spki_der(), "{n}: SPKI DER");
    assert_eq!(
        key.key_id().as_str(),
        expected,
        "{n}: key id of a library key"
    );

    // A CLI key.
    let (key_pem, pub_pem, der) = (
        format!("{n}.cli.key.pem"),
        format!("{n}.cli.pub.pem"),
        format!("{n}.cli.pub.der"),
    );
    cli.run(&case.genpkey(&key_pem));
    cli.run(&["pkey", "-in", &key_pem, "-pubout", "-out", &pub_pem]);
    let expected = cli_key_id(&pub_pem, &der);
    let public = PublicKey::from_pem(&cli.read(&pub_pem)).unwrap();
    assert_eq!(
        public.key_id().as_str(),
        expected,
        "{n}: key id of a CLI key"
    );
    let private = PrivateKey::from_pem(&cli.read(&key_pem), None).unwrap();
    assert_eq!(private.key_id().as_str(), expected);
}

/// One module per (profile, scheme), one test per interop case.
macro_rules! interop_cases {
    ($($name:ident => $case:expr;)*) => {$(
        mod $name {
            use super::*;
            const CASE: Case = $case;

            #[test]
            fn library_signs_cli_verifies() {
                super::library_signs_cli_verifies(CASE);
            }

            #[test]
            fn cli_signs_library_verifies() {
                super::cli_signs_library_verifies(CASE);
            }

            #[test]
            fn encrypted_pkcs8_both_ways() {
                super::encrypted_pkcs8_both_ways(CASE);
            }

            #[test]
            fn key_id_matches_cli() {
                super::key_id_matches_cli(CASE);
            }
        }
    )*};
}

interop_cases! {
    fips_ecdsa_p256_sha256 => Case::new(ProfileId::Fips, SigAlg::EcdsaP256Sha256);
    fips_ecdsa_p384_sha384 => Case::new(ProfileId::Fips, SigAlg::EcdsaP384Sha384);
    fips_ed25519 => Case::new(ProfileId::Fips, SigAlg::Ed25519);
    fips_rsa_pss_sha256 => Case::new(ProfileId::Fips, SigAlg::RsaPssSha256);
    eidas_ecdsa_brainpoolp256r1_sha256 => Case::new(ProfileId::Eidas, SigAlg::EcdsaBrainpoolP256r1Sha256);
    eidas_ecdsa_brainpoolp384r1_sha384 => Case::new(ProfileId::Eidas, SigAlg::EcdsaBrainpoolP384r1Sha384);
    eidas_ecdsa_p256_sha256 => Case::new(ProfileId::Eidas, SigAlg::EcdsaP256Sha256);
    eidas_rsa_pss_sha256 => Case::new(ProfileId::Eidas, SigAlg::RsaPssSha256);
    gost_2012_256 => Case::new(ProfileId::Gost, SigAlg::Gost2012_256);
    gost_2012_512 => Case::new(ProfileId::Gost, SigAlg::Gost2012_512);
    sm_sm2_sm3 => Case::new(ProfileId::Sm, SigAlg::Sm2Sm3);
    sm_sm2_sm3_custom_id => Case::new(ProfileId::Sm, SigAlg::Sm2Sm3).with_sm2_id("stella-ops-site-7");
}

// ---------------------------------------------------------------------------------------------------------
// eIDAS signer certificates made with `openssl ca`.

/// `openssl ca` config: a flat database in the temp dir, and the extensions X509_STRICT wants.
const CA_CONF: &str = "\
[ca]
default_ca = ca_default

[ca_default]
dir = .
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none

[policy_any]
commonName = supplied

[req]
distinguished_name = req_dn
prompt = no

[req_dn]
CN = placeholder

[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_signer]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_encipher_only]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

// Fixed validity windows (`openssl ca -startdate/-enddate`), so no assertion depends on the clock.
const ROOT_FROM: &str = "20200101000000Z";
const ROOT_TO: &str = "20400101000000Z";
const INT_FROM: &str = "20210101000000Z";
const INT_TO: &str = "20390101000000Z";
const LEAF_FROM: &str = "20250101000000Z";
const LEAF_TO: &str = "20270101000000Z";
/// 2025-01-01T00:00:00Z and 2027-01-01T00:00:00Z.
const LEAF_FROM_UNIX: i64 = 1_735_689_600;
const LEAF_TO_UNIX: i64 = 1_798_761_600;

const BRAINPOOL256: &[&str] = &[
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:brainpoolP256r1",
];
const RSA3072: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"];
const GOST256: &[&str] = &["-algorithm", "gost2012_256", "-pkeyopt", "paramset:TCA"];

/// A small PKI in a temp dir, driven by `openssl req` and `openssl ca`.
#[derive(Debug)]
struct Pki {
    cli: Cli,
}

impl Pki {
    fn new(dir: &Path, gost: bool) -> Option<Pki> {
        let cli = Cli::new(dir, gost)?;
        cli.write("ca.cnf", CA_CONF);
        cli.write("index.txt", "");
        cli.write("serial", "1000\n");
        std::fs::create_dir(cli.path("issued")).unwrap();
        Some(Pki { cli })
    }

    /// Generates `NAME.key` and `NAME.csr` for `CN=cn`.
    fn key_and_csr(&self, name: &str, keygen: &[&str], cn: &str, md: &str) {
        let key = format!("{name}.key");
        let mut args = vec!["genpkey"];
        args.extend_from_slice(keygen);
        args.extend(["-out", &key]);
        self.cli.run(&args);
        let subj = format!("/CN={cn}");
        let csr = format!("{name}.csr");
        self.cli.run(&[
            "req", "-new", "-config", "ca.cnf", "-key", &key, md, "-subj", &subj, "-out", &csr,
        ]);
    }

    /// A self-signed root `NAME.pem`.
    fn root(&self, name: &str, keygen: &[&str], cn: &str) -> X509 {
        self.key_and_csr(name, keygen, cn, "-sha256");
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        self.cli.run(&[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            &key,
            "-in",
            &csr,
            "-out",
            &pem,
            "-md",
            "sha256",
            "-extensions",
            "v3_ca",
            "-startdate",
            ROOT_FROM,
            "-enddate",
            ROOT_TO,
            "-notext",
        ]);
        self.cert(name)
    }

    /// `NAME.pem` issued by `ISSUER.pem`/`ISSUER.key` with the given extensions section and window.
    fn issue(
        &self,
        name: &str,
        keygen: &[&str],
        cn: &str,
        issuer: &str,
        extensions: &str,
        (from, to): (&str, &str),
    ) -> X509 {
        let csr_md = if keygen == GOST256 {
            "-md_gost12_256"
        } else {
            "-sha256"
        };
        self.key_and_csr(name, keygen, cn, csr_md);
        let (issuer_pem, issuer_key, csr, pem) = (
            format!("{issuer}.pem"),
            format!("{issuer}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        self.cli.run(&[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            &issuer_pem,
            "-keyfile",
            &issuer_key,
            "-in",
            &csr,
            "-out",
            &pem,
            "-md",
            "sha256",
            "-extensions",
            extensions,
            "-startdate",
            from,
            "-enddate",
            to,
            "-notext",
        ]);
        self.cert(name)
    }

    fn cert(&self, name: &str) -> X509 {
        let mut certs = certs_from_pem(&self.cli.read(&format!("{name}.pem")), "test pki").unwrap();
        assert_eq!(certs.len(), 1);
        certs.remove(0)
    }

    /// The CLI signs MSG with `NAME.key` (ECDSA, SHA-256).
    fn cli_sign(&self, name: &str) -> Vec<u8> {
        self.cli.write("msg", MSG);
        let (key, sig) = (format!("{name}.key"), format!("{name}.sig"));
        self.cli
            .run(&["dgst", "-sha256", "-sign", &key, "-out", &sig, "msg"]);
        self.cli.read(&sig)
    }

    /// The standard brainpool chain: `root` -> `int` -> `leaf` (keyUsage digitalSignature).
    fn brainpool_chain(&self) -> (X509, X509, X509) {
        let root = self.root("root", BRAINPOOL256, "Stella Test Root");
        let int = self.issue(
            "int",
            BRAINPOOL256,
            "Stella Test Intermediate",
            "root",
            "v3_ca",
            (INT_FROM, INT_TO),
        );
        let leaf = self.issue(
            "leaf",
            BRAINPOOL256,
            "Stella Test Signer",
            "int",
            "v3_signer",
            (LEAF_FROM, LEAF_TO),
        );
        (root, int, leaf)
    }
}

fn unix(t: &Asn1TimeRef) -> i64 {
    let d = Asn1Time::from_unix(0).unwrap().diff(t).unwrap();
    i64::from(d.days) * 86_400 + i64::from(d.secs)
}

fn eidas() -> Profile {
    Profile::new(ProfileId::Eidas).unwrap()
}

/// A time well inside every window of the standard chain.
const INSIDE: i64 = LEAF_FROM_UNIX + 180 * 86_400;

fn expect_untrusted(result: Result<PublicKey, CertError>, cn: &str, reason_has: &str) {
    let e = match result {
        Err(e) => e,
        Ok(key) => panic!("expected Untrusted for '{cn}', got a key {key:?}"),
    };
    let msg = e.to_string();
    let CertError::Untrusted { reason, .. } = &e else {
        panic!("expected Untrusted for '{cn}', got {e:?}");
    };
    assert!(msg.contains(cn), "error does not name '{cn}': {msg}");
    assert!(
        reason.to_lowercase().contains(reason_has),
        "reason does not mention '{reason_has}': {msg}"
    );
}

#[test]
fn eidas_chain_valid_inside_window_and_key_verifies_cli_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::new(tmp.path(), false) else {
        return;
    };
    let (root, int, leaf) = pki.brainpool_chain();
    // The windows are the fixed ones, read back through the openssl crate.
    assert_eq!(unix(leaf.not_before()), LEAF_FROM_UNIX);
    assert_eq!(unix(leaf.not_after()), LEAF_TO_UNIX);
    assert!(unix(int.not_before()) < unix(leaf.not_before()));
    assert!(unix(root.not_after()) > unix(int.not_after()));
    assert_eq!(
        leaf.signature_algorithm().object().nid(),
        openssl::nid::Nid::ECDSA_WITH_SHA256
    );

    let p = eidas();
    for at in [
        unix(leaf.not_before()) + 1,
        INSIDE,
        unix(leaf.not_after()) - 1,
    ] {
        let key = verify_signer_certificate(
            &p,
            &leaf,
            std::slice::from_ref(&int),
            std::slice::from_ref(&root),
            at,
        )
        .unwrap_or_else(|e| panic!("valid chain refused at {at}: {e}"));
        assert_eq!(key.algorithm(), SigAlg::EcdsaBrainpoolP256r1Sha256);
        let sig = pki.cli_sign("leaf");
        p.verify(&key, MSG, &sig)
            .unwrap_or_else(|e| panic!("leaf key refused the CLI's signature: {e}"));
        assert_eq!(
            p.verify(&key, MSG, &flip_last_bit(&sig)),
            Err(VerifyError::BadSignature)
        );
        // The returned key is the leaf's, as the CLI extracts it.
        let out = pki
            .cli
            .run(&["x509", "-in", "leaf.pem", "-noout", "-pubkey"]);
        assert_eq!(stdout(&out), key.to_pem());
    }
}

#[test]
fn eidas_chain_outside_window_is_untrusted() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::new(tmp.path(), false) else {
        return;
    };
    let (root, int, leaf) = pki.brainpool_chain();
    let p = eidas();
    let check = |at| {
        verify_signer_certificate(
            &p,
            &leaf,
            std::slice::from_ref(&int),
            std::slice::from_ref(&root),
            at,
        )
    };
    expect_untrusted(
        check(unix(leaf.not_before()) - 1),
        "Stella Test Signer",
        "not yet valid",
    );
    expect_untrusted(
        check(unix(leaf.not_after()) + 1),
        "Stella Test Signer",
        "expired",
    );
    // Far outside: before the intermediate and after the root.
    expect_untrusted(
        check(unix(int.not_before()) - 86_400),
        "Stella Test Signer",
        "not yet valid",
    );
    expect_untrusted(
        check(unix(root.not_after()) + 86_400),
        "Stella Test Signer",
        "expired",
    );
}

#[test]
fn eidas_leaf_of_untrusted_root_is_untrusted() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::new(tmp.path(), false) else {
        return;
    };
    let (root, _int, _leaf) = pki.brainpool_chain();
    // Another PKI with the same names, under a root that is not in the trust list.
    pki.root("evil-root", BRAINPOOL256, "Stella Test Root");
    let evil_int = pki.issue(
        "evil-int",
        BRAINPOOL256,
        "Stella Test Intermediate",
        "evil-root",
        "v3_ca",
        (INT_FROM, INT_TO),
    );
    let evil_leaf = pki.issue(
        "evil-leaf",
        BRAINPOOL256,
        "Stella Rogue Signer",
        "evil-int",
        "v3_signer",
        (LEAF_FROM, LEAF_TO),
    );
    expect_untrusted(
        verify_signer_certificate(&eidas(), &evil_leaf, &[evil_int], &[root], INSIDE),
        "Stella Rogue Signer",
        "issuer",
    );
}

#[test]
fn eidas_missing_intermediate_is_untrusted() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::new(tmp.path(), false) else {
        return;
    };
    let (root, _int, leaf) = pki.brainpool_chain();
    expect_untrusted(
        verify_signer_certificate(&eidas(), &leaf, &[], &[root], INSIDE),
        "Stella Test Signer",
        "issuer",
    );
}

#[test]
fn eidas_chain_signed_with_rsa_pkcs1_is_not_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::new(tmp.path(), false) else {
        return;
    };
    // An RSA root signs a brainpool intermediate with sha256WithRSAEncryption (PKCS#1 v1.5); the leaf
    // itself is signed with ecdsa-with-SHA256 by the intermediate.
    let root = pki.root("rsa-root", RSA3072, "Stella RSA Root");
    let int = pki.issue(
        "rsa-int",
        BRAINPOOL256,
        "Stella RSA-Signed Intermediate",
        "rsa-root",
        "v3_ca",
        (INT_FROM, INT_TO),
    );
    let leaf = pki.issue(
        "rsa-leaf",
        BRAINPOOL256,
        "Stella Signer Under RSA",
        "rsa-int",
        "v3_signer",
        (LEAF_FROM, LEAF_TO),
    );
    assert_eq!(
        int.signature_algorithm().object().nid(),
        openssl::nid::Nid::SHA256WITHRSAENCRYPTION
    );
    let p = eidas();
    match verify_signer_certificate(
        &p,
        &leaf,
        std::slice::from_ref(&int),
        std::slice::from_ref(&root),
        INSIDE,
    ) {
        Err(e @ CertError::NotAllowed { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("Stella RSA-Signed Intermediate"), "{msg}");
            assert!(msg.contains("sha256WithRSAEncryption"), "{msg}");
            assert!(msg.contains("eidas"), "{msg}");
        }
        other => panic!("expected NotAllowed, got {other:?}"),
    }

    // A brainpool leaf signed directly by the RSA root.
    let direct = pki.issue(
        "rsa-direct-leaf",
        BRAINPOOL256,
        "Stella Signer Direct Under RSA",
        "rsa-root",
        "v3_signer",
        (LEAF_FROM, LEAF_TO),
    );
    match verify_signer_certificate(&p, &direct, &[], &[root], INSIDE) {
        Err(e @ CertError::NotAllowed { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("Stella Signer Direct Under RSA"), "{msg}");
        }
        other => panic!("expected NotAllowed, got {other:?}"),
    }
}

#[test]
fn eidas_refuses_gost_keyed_leaf() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::new(tmp.path(), true) else {
        return;
    };
    // Load the GOST engine in this process first, so the leaf's key parses whatever other tests ran before:
    // the refusal must come from the profile, not from an unreadable key.
    Profile::new(ProfileId::Gost).unwrap();
    let (root, int, _leaf) = pki.brainpool_chain();
    // A brainpool CA (ecdsa-with-SHA256, an eIDAS signature) certifies a GOST R 34.10-2012 key.
    let leaf = pki.issue(
        "gost-leaf",
        GOST256,
        "Stella GOST Signer",
        "int",
        "v3_signer",
        (LEAF_FROM, LEAF_TO),
    );
    assert_eq!(
        leaf.signature_algorithm().object().nid(),
        openssl::nid::Nid::ECDSA_WITH_SHA256
    );
    match verify_signer_certificate(&eidas(), &leaf, &[int], &[root], INSIDE) {
        Err(e @ CertError::Key { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("Stella GOST Signer"), "{msg}");
            assert!(msg.contains("gost2012-256"), "{msg}");
            assert!(msg.contains("eidas"), "{msg}");
        }
        other => panic!("expected the GOST key to be refused, got {other:?}"),
    }
}

#[test]
fn eidas_leaf_without_digital_signature_may_not_sign() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::new(tmp.path(), false) else {
        return;
    };
    let (root, int, _leaf) = pki.brainpool_chain();
    let p = eidas();
    // An encryption-only certificate from the trusted CA.
    let enc = pki.issue(
        "enc-leaf",
        BRAINPOOL256,
        "Stella Encryption Only",
        "int",
        "v3_encipher_only",
        (LEAF_FROM, LEAF_TO),
    );
    match verify_signer_certificate(
        &p,
        &enc,
        std::slice::from_ref(&int),
        std::slice::from_ref(&root),
        INSIDE,
    ) {
        Err(e @ CertError::KeyUsage { .. }) => {
            assert!(e.to_string().contains("Stella Encryption Only"), "{e}");
        }
        other => panic!("expected KeyUsage, got {other:?}"),
    }
    // A CA certificate (keyCertSign only) is not a document signer either.
    match verify_signer_certificate(&p, &int, &[], &[root], INSIDE) {
        Err(e @ CertError::KeyUsage { .. }) => {
            assert!(e.to_string().contains("Stella Test Intermediate"), "{e}");
        }
        other => panic!("expected KeyUsage, got {other:?}"),
    }
}
