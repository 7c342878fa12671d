//! `stella-kit`: keys, signatures, digests, DSSE envelopes and (soon) offline kits, on the connected side.
//! Thin glue: flags are parsed here, the work is in the `kit_builder` library.

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use crypto_profiles::{DigestAlg, ProfileId, SigAlg};
use kit_builder::exit::{classify, render, ExitStatus};
use kit_builder::signing;
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "stella-kit",
    version,
    about = "Build, sign and check Stella Ops offline kits"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Key management.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Sign a file's bytes; the raw signature is what `openssl dgst -sign` (or `pkeyutl -rawin`) makes.
    SignBlob(SignBlobArgs),
    /// Verify a raw signature over a file.
    VerifyBlob(VerifyBlobArgs),
    /// Print file digests under a profile, like `sha256sum`.
    Digest(DigestArgs),
    /// DSSE envelopes.
    #[command(subcommand)]
    Dsse(DsseCommand),
    /// Benchmarks that compare against standard tools in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Generate a key pair: NAME.key.pem (PKCS#8, mode 0600) and NAME.pub.pem (SPKI); prints the key id.
    Generate {
        /// Profile: fips, eidas, gost or sm.
        #[arg(long)]
        profile: ProfileId,
        /// Scheme (default: the profile's): ecdsa-p256-sha256, ecdsa-p384-sha384, ed25519, rsa-pss-sha256,
        /// ecdsa-brainpoolp256r1-sha256, ecdsa-brainpoolp384r1-sha384, gost2012-256, gost2012-512, sm2-sm3.
        #[arg(long)]
        algorithm: Option<SigAlg>,
        /// Output prefix.
        #[arg(long)]
        out: PathBuf,
        /// Encrypt the private key with the passphrase in this file (first line).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Print a key's id, scheme and profiles.
    Id {
        /// A public (SPKI PEM) key.
        key: PathBuf,
    },
}

#[derive(Args)]
struct KeyFlags {
    /// Profile to sign or verify under (default: the key's family).
    #[arg(long)]
    profile: Option<ProfileId>,
    /// SM2 distinguishing ID (profile sm; default 1234567812345678).
    #[arg(long)]
    sm2_id: Option<String>,
}

#[derive(Args)]
struct SignBlobArgs {
    /// Private key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
    /// Passphrase file for an encrypted key.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    flags: KeyFlags,
    /// Where to write the signature.
    #[arg(long)]
    out: PathBuf,
    /// The file to sign (`-` for standard input).
    file: PathBuf,
}

#[derive(Args)]
struct VerifyBlobArgs {
    /// Public key (SPKI PEM).
    #[arg(
        long = "pub",
        required_unless_present = "cert",
        conflicts_with = "cert"
    )]
    public: Option<PathBuf>,
    /// eIDAS: signer certificate (PEM; further certificates in the file are intermediates).
    #[arg(long, requires = "trust_list")]
    cert: Option<PathBuf>,
    /// eIDAS: trust list of CA certificates (PEM bundle).
    #[arg(long)]
    trust_list: Option<PathBuf>,
    /// eIDAS: the time to check the chain at (RFC 3339 UTC or Unix seconds; default now).
    #[arg(long)]
    at: Option<kit_builder::clock::Timestamp>,
    /// The signature file.
    #[arg(long)]
    sig: PathBuf,
    #[command(flatten)]
    flags: KeyFlags,
    /// The signed file (`-` for standard input).
    file: PathBuf,
}

#[derive(Args)]
struct DigestArgs {
    /// Profile: fips, eidas, gost or sm.
    #[arg(long)]
    profile: ProfileId,
    /// Another digest the profile admits (default: its primary one).
    #[arg(long)]
    algorithm: Option<DigestAlg>,
    /// Files (`-` for standard input).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum DsseCommand {
    /// Sign a payload with one or more keys (each under its own profile); prints the envelope.
    Sign {
        /// Private keys; repeat for several signatures, of several profiles if wanted.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// Passphrase file for encrypted keys.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// SM2 distinguishing ID for SM keys.
        #[arg(long)]
        sm2_id: Option<String>,
        /// Payload type, e.g. application/vnd.in-toto+json.
        #[arg(long)]
        payload_type: String,
        /// Write the envelope here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The payload file.
        file: PathBuf,
    },
    /// Verify an envelope against trusted keys and a threshold under one profile.
    Verify {
        /// Trusted public keys.
        #[arg(long = "pub", required = true)]
        keys: Vec<PathBuf>,
        /// How many distinct trusted keys must have signed.
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        #[command(flatten)]
        flags: KeyFlags,
        /// Write the verified payload here.
        #[arg(long)]
        payload_out: Option<PathBuf>,
        /// The envelope (JSON).
        envelope: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Sign/s, verify/s and digest MiB/s per profile and scheme, next to `openssl speed` from the same run.
    Crypto {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(status) => std::process::ExitCode::from(status.code()),
        Err(err) => {
            eprintln!("stella-kit: error: {}", render(&err));
            std::process::ExitCode::from(classify(&err).code())
        }
    }
}

fn passphrase(path: &Option<PathBuf>) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    Ok(match path {
        Some(p) => Some(signing::read_passphrase(p)?),
        None => None,
    })
}

fn run(cli: Cli) -> Result<ExitStatus> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Key(KeyCommand::Generate {
            profile,
            algorithm,
            out: prefix,
            passphrase_file,
            force,
        }) => {
            let profile = signing::profile_with_id(profile, None)?;
            let pass = passphrase(&passphrase_file)?;
            let public = signing::generate_key_files(
                &profile,
                algorithm,
                &prefix,
                pass.as_deref().map(|v| &v[..]),
                force,
            )?;
            writeln!(out, "key id: {}", public.key_id())?;
            writeln!(out, "algorithm: {}", public.algorithm())?;
            writeln!(out, "profile: {}", profile.id())?;
            writeln!(out, "private key: {}.key.pem", prefix.display())?;
            writeln!(out, "public key: {}.pub.pem", prefix.display())?;
        }
        Command::Key(KeyCommand::Id { key }) => {
            let public = signing::load_public_key(&key)?;
            let fams: Vec<&str> = public
                .algorithm()
                .families()
                .iter()
                .map(|p| p.name())
                .collect();
            writeln!(
                out,
                "{}  {}  {}",
                public.key_id(),
                public.algorithm(),
                fams.join(",")
            )?;
        }
        Command::SignBlob(a) => {
            let pass = passphrase(&a.passphrase_file)?;
            let key = signing::load_private_key(&a.key, pass.as_deref().map(|v| &v[..]))?;
            let profile =
                signing::profile_for(key.algorithm(), a.flags.profile, a.flags.sm2_id.as_deref())?;
            let sig = signing::sign_blob(&profile, key, &a.key, &a.file)?;
            kit_builder::files::write_atomic(&a.out, &sig, 0o644, true)
                .with_context(|| format!("{}: cannot write signature", a.out.display()))?;
        }
        Command::VerifyBlob(a) => {
            let (public, named_profile) = match (&a.public, &a.cert) {
                (Some(p), _) => (signing::load_public_key(p)?, a.flags.profile),
                (None, Some(cert)) => {
                    let profile = signing::profile_with_id(
                        a.flags.profile.unwrap_or(ProfileId::Eidas),
                        None,
                    )?;
                    let at = a.at.unwrap_or_else(|| {
                        kit_builder::clock::Clock::now(&kit_builder::clock::SystemClock)
                    });
                    let trust = a.trust_list.as_ref().context("--cert needs --trust-list")?;
                    let key = signing::verify_certificate(&profile, cert, trust, at)?;
                    (key, Some(profile.id()))
                }
                (None, None) => anyhow::bail!("either --pub or --cert is required"),
            };
            let profile =
                signing::profile_for(public.algorithm(), named_profile, a.flags.sm2_id.as_deref())?;
            signing::verify_blob(&profile, &public, &a.file, &a.sig)?;
            writeln!(
                out,
                "Verified OK ({} key {}, profile {})",
                public.algorithm(),
                public.key_id().short(),
                profile.id()
            )?;
        }
        Command::Digest(a) => {
            let profile = signing::profile_with_id(a.profile, None)?;
            for f in &a.files {
                let d = signing::digest_file(&profile, a.algorithm, f)?;
                writeln!(out, "{}  {}", d.hex(), f.display())?;
            }
        }
        Command::Dsse(DsseCommand::Sign {
            keys,
            passphrase_file,
            sm2_id,
            payload_type,
            out: dest,
            file,
        }) => {
            let pass = passphrase(&passphrase_file)?;
            let mut loaded = Vec::new();
            for k in keys {
                let key = signing::load_private_key(&k, pass.as_deref().map(|v| &v[..]))?;
                let sm = key
                    .algorithm()
                    .families()
                    .contains(&ProfileId::Sm)
                    .then_some(sm2_id.as_deref())
                    .flatten();
                let profile = signing::profile_for(key.algorithm(), None, sm)?;
                loaded.push((k, profile, key));
            }
            let payload = signing::read_file(&file)?;
            let env = signing::dsse_sign(&payload_type, &payload, loaded)?;
            let json = env.to_json();
            match dest {
                Some(p) => kit_builder::files::write_atomic(&p, &json, 0o644, true)
                    .with_context(|| format!("{}: cannot write envelope", p.display()))?,
                None => {
                    out.write_all(&json)?;
                    writeln!(out)?;
                }
            }
        }
        Command::Dsse(DsseCommand::Verify {
            keys,
            threshold,
            flags,
            payload_out,
            envelope,
        }) => {
            let keys = keys
                .iter()
                .map(|k| signing::load_public_key(k))
                .collect::<Result<Vec<_>, _>>()?;
            let first = keys.first().context("at least one --pub is required")?;
            let profile =
                signing::profile_for(first.algorithm(), flags.profile, flags.sm2_id.as_deref())?;
            let verified = signing::dsse_verify(&envelope, profile.clone(), keys, threshold)?;
            for n in &verified.notes {
                let id = if n.keyid.is_empty() {
                    "(no keyid)"
                } else {
                    &n.keyid
                };
                writeln!(out, "signature {id}: {}", n.outcome)?;
            }
            writeln!(
                out,
                "Verified OK: {} of {} required signatures under profile {}, payload type {}",
                verified.counted.len(),
                threshold,
                profile.id(),
                verified.payload_type
            )?;
            if let Some(p) = payload_out {
                kit_builder::files::write_atomic(&p, &verified.payload, 0o644, true)
                    .with_context(|| format!("{}: cannot write payload", p.display()))?;
            }
        }
        Command::Bench(BenchCommand::Crypto { seconds }) => {
            let table = kit_builder::bench::crypto(std::time::Duration::from_secs_f64(seconds))?;
            write!(out, "{table}")?;
        }
    }
    Ok(ExitStatus::Ok)
}
