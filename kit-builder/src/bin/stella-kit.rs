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
    /// Kit-signer sets: sign a new set with the current signers, for rotation through a kit.
    #[command(subcommand)]
    Signers(SignersCommand),
    /// Build a signed offline kit.
    Build(Box<BuildArgs>),
    /// Verify a kit (or its volumes, in any order) against trusted kit-signer keys.
    Verify(VerifyArgs),
    /// Show a kit's manifest, signers and payloads (signatures are not checked; use verify).
    Inspect(InspectArgs),
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
    /// Generate an age identity for encrypted kits (mode 0600); prints its recipient (age1…).
    AgeGenerate {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing file.
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
enum SignersCommand {
    /// Write NEW kit-signer set signed by the CURRENT signers; carry it with `build --trust FILE`.
    Sign {
        /// Public keys of the new set.
        #[arg(long = "new-key", required = true)]
        new_keys: Vec<PathBuf>,
        /// Threshold of the new set.
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// Version of the new set (above the site's current one; sites start at 1).
        #[arg(long)]
        version: u64,
        /// Current signers' private keys (a threshold of the current set must sign).
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// Output (its name must end in kit-signers.dsse.json).
        #[arg(long, default_value = "kit-signers.dsse.json")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct BuildArgs {
    /// Read the options from this kit.toml (docs/kit-builder-guide.md); flags given as well win: a flag's
    /// value replaces the file's, a repeatable flag adds to the file's list, --base replaces `base`.
    #[arg(long, value_name = "KIT.TOML")]
    config: Option<PathBuf>,
    /// Channel (e.g. stable, feeds-daily); required, here or in the kit.toml.
    #[arg(long)]
    channel: Option<String>,
    /// Sequence on the channel (default: one above the last kit built on it here).
    #[arg(long)]
    sequence: Option<u64>,
    /// Kit id (default CHANNEL-SEQUENCE).
    #[arg(long)]
    id: Option<String>,
    /// Lifetime, e.g. 30d, 12h (from creation; default 30d).
    #[arg(long)]
    expires: Option<String>,
    /// Build a delta against this kit (or its volumes): only payloads it lacks are carried.
    #[arg(long, num_args = 1..)]
    base: Vec<PathBuf>,
    /// Signing keys; repeat to sign under several profiles (at least one, here or in the kit.toml).
    #[arg(long = "key")]
    keys: Vec<PathBuf>,
    /// Passphrase file for encrypted keys.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Advisory / VEX feed documents (file or directory).
    #[arg(long)]
    feeds: Vec<PathBuf>,
    /// Images: oci-layout:DIR, docker-archive:FILE, registry:HOST[:PORT]/REPO@sha256:DIGEST (pulled by
    /// digest; credentials from STELLA_REGISTRY_USER/STELLA_REGISTRY_PASSWORD), or a path whose kind is
    /// detected.
    #[arg(long)]
    image: Vec<String>,
    /// Reach this registry (HOST or HOST:PORT) over plain HTTP; loopback always is. Also
    /// STELLA_INSECURE_REGISTRIES=host1,host2.
    #[arg(long)]
    insecure_registry: Vec<String>,
    /// PEM file of CA certificates trusted for registries instead of the built-in roots.
    #[arg(long)]
    registry_ca: Option<PathBuf>,
    /// Policy pack directory.
    #[arg(long)]
    policy: Vec<PathBuf>,
    /// Trust material: kit-signer keys, trusted_root.json, trust-list certificates.
    #[arg(long)]
    trust: Vec<PathBuf>,
    /// Opaque files (appliance updates).
    #[arg(long)]
    file: Vec<PathBuf>,
    /// Split into volumes of at most this size (e.g. 4GiB for FAT32, 700MB for CD).
    #[arg(long)]
    volume_size: Option<String>,
    /// Encrypt to this age recipient (age1…); repeat for several.
    #[arg(long)]
    encrypt_to: Vec<String>,
    /// zstd level (default 3).
    #[arg(long, allow_negative_numbers = true)]
    level: Option<i32>,
    /// Directory of the per-channel sequence state (default $STELLA_KIT_STATE or ~/.local/state/stella-kit).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Identity to read an encrypted base kit.
    #[arg(long)]
    identity: Vec<PathBuf>,
    /// Hash every input first, then read it again to write the kit. Uses no temporary disk. The default
    /// reads once where it pays (docs/kit-builder-guide.md); the kit is the same, byte for byte.
    /// Encrypted, split and delta kits are always built in two passes.
    #[arg(long, conflicts_with = "single_read")]
    two_pass: bool,
    /// Read every input once wherever possible (a plain kit file on ext4 or XFS), even where two passes
    /// would be as fast.
    #[arg(long)]
    single_read: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// Output kit file (NAME.kit); required, here or in the kit.toml.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    /// Trusted kit-signer public keys.
    #[arg(long = "trust", required = true)]
    trust: Vec<PathBuf>,
    /// How many distinct trusted keys must have signed.
    #[arg(long, default_value_t = 1)]
    threshold: usize,
    /// Profile to verify under (default: the first trusted key's family).
    #[arg(long)]
    profile: Option<ProfileId>,
    /// age identity file for encrypted kits.
    #[arg(long)]
    identity: Vec<PathBuf>,
    /// Check expiry at this time instead of now (RFC 3339 or Unix seconds).
    #[arg(long)]
    at: Option<kit_builder::clock::Timestamp>,
    /// Largest decompressed/compressed ratio accepted.
    #[arg(long, default_value_t = kit_builder::read::Limits::default().max_ratio)]
    max_ratio: u64,
    /// Largest total payload size accepted, e.g. 64GiB.
    #[arg(long)]
    max_size: Option<String>,
    /// JSON output.
    #[arg(long)]
    json: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// The kit, or its volumes (and index) in any order.
    #[arg(required = true)]
    kit: Vec<PathBuf>,
}

#[derive(Args)]
struct InspectArgs {
    /// age identity file for encrypted kits.
    #[arg(long)]
    identity: Vec<PathBuf>,
    /// JSON output (the manifest and the envelope's key ids).
    #[arg(long)]
    json: bool,
    /// The kit, or its volumes in any order.
    #[arg(required = true)]
    kit: Vec<PathBuf>,
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
    /// Kit build and verify throughput and peak RSS on generated data, next to tar|zstd and zstd -d|sha256sum.
    Kit {
        /// How much input to generate (kept in WORK/inputs and reused).
        #[arg(long, default_value = "1GiB")]
        size: String,
        /// Working directory.
        #[arg(long, default_value = "target/bench-kit")]
        work: PathBuf,
        /// Runs of every measurement; the median is shown (the machine may be shared).
        #[arg(long, default_value_t = 3)]
        runs: usize,
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
    let out = &mut out;
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
        Command::Key(KeyCommand::AgeGenerate { out: path, force }) => {
            let recipient = kit_builder::cli::generate_age_identity(&path, force)?;
            writeln!(out, "{recipient}")?;
        }
        Command::Signers(SignersCommand::Sign {
            new_keys,
            threshold,
            version,
            keys,
            out: dest,
        }) => {
            if !dest
                .to_string_lossy()
                .ends_with(kit_builder::signers::SIGNER_SET_SUFFIX)
            {
                anyhow::bail!(
                    "{}: the file name must end in {}",
                    dest.display(),
                    kit_builder::signers::SIGNER_SET_SUFFIX
                );
            }
            let new: Vec<_> = new_keys
                .iter()
                .map(|p| signing::load_public_key(p))
                .collect::<Result<_, _>>()?;
            let set = kit_builder::signers::SignerSet::new(version, threshold, &new);
            let mut signers = Vec::new();
            for k in &keys {
                let key = signing::load_private_key(k, None)?;
                let profile = signing::profile_for(key.algorithm(), None, None)?;
                signers.push(
                    profile
                        .signer(key)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", k.display()))?,
                );
            }
            let refs: Vec<&dyn crypto_profiles::Signer> = signers
                .iter()
                .map(|s| s as &dyn crypto_profiles::Signer)
                .collect();
            let env = set.sign(&refs)?;
            kit_builder::files::write_atomic(&dest, &env.to_json(), 0o644, true)
                .with_context(|| format!("{}: cannot write", dest.display()))?;
            writeln!(out, "kit-signer set v{version}: {} keys, threshold {threshold}, signed by {} current key(s): {}", new.len(), keys.len(), dest.display())?;
        }
        Command::Build(a) => return build(*a, out),
        Command::Verify(a) => return verify(a, out),
        Command::Inspect(a) => {
            let ids = kit_builder::cli::identities(&a.identity)?;
            let input = kit_builder::read::KitInput::one(a.kit.clone())?;
            let (manifest, _, envelope, _) = kit_builder::read::read_header(&input, &ids, None)?;
            let signers: Vec<String> = envelope
                .signatures
                .iter()
                .map(|s| s.keyid.clone())
                .collect();
            if a.json {
                let v = serde_json::json!({"manifest": manifest, "signers": signers});
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                write!(
                    out,
                    "{}",
                    kit_builder::cli::render_manifest(&manifest, &signers)
                )?;
            }
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
        Command::Bench(BenchCommand::Kit { size, work, runs }) => {
            std::fs::create_dir_all(&work)
                .with_context(|| format!("{}: cannot create", work.display()))?;
            let table = kit_builder::bench::kit(parse_size(&size)?, &work, runs)?;
            write!(out, "{table}")?;
        }
    }
    Ok(ExitStatus::Ok)
}

fn parse_size(s: &str) -> Result<u64> {
    kit_builder::kit_toml::parse_size(s).map_err(anyhow::Error::msg)
}

fn build(a: BuildArgs, out: &mut impl std::io::Write) -> Result<ExitStatus> {
    use kit_builder::clock::{Clock as _, SystemClock, Timestamp};
    use kit_builder::kit_toml::{check_volume_size, BuildOptions};
    let volume_size = a
        .volume_size
        .as_deref()
        .map(|s| parse_size(s).and_then(|n| check_volume_size(n).map_err(anyhow::Error::msg)))
        .transpose()
        .context("--volume-size")?;
    let flags = BuildOptions {
        channel: a.channel,
        sequence: a.sequence,
        id: a.id,
        expires: a.expires,
        base: a.base,
        keys: a.keys,
        passphrase_file: a.passphrase_file,
        feeds: a.feeds,
        images: a.image,
        insecure_registries: a.insecure_registry,
        registry_ca: a.registry_ca,
        policy: a.policy,
        trust: a.trust,
        files: a.file,
        volume_size,
        encrypt_to: a.encrypt_to,
        level: a.level,
        identities: a.identity,
        out: a.out,
    };
    let o = match &a.config {
        Some(path) => BuildOptions::from_file(path)?.with_flags(flags),
        None => flags,
    };
    let missing = |flag: &str, key: &str| {
        let hint = match &a.config {
            Some(p) => format!("give --{flag} or set `{key}` in {}", p.display()),
            None => format!("give --{flag} (or --config KIT.TOML with `{key}`)"),
        };
        signing::ToolError::Usage(format!("no {key}: {hint}"))
    };
    let channel = o.channel.ok_or_else(|| missing("channel", "channel"))?;
    let kit_out = o.out.ok_or_else(|| missing("out", "out"))?;
    if o.keys.is_empty() {
        return Err(missing("key", "keys").into());
    }
    let pass = passphrase(&o.passphrase_file)?;
    let mut signers = Vec::new();
    for k in &o.keys {
        let key = signing::load_private_key(k, pass.as_deref().map(|v| &v[..]))?;
        let profile = signing::profile_for(key.algorithm(), None, None)?;
        signers.push((profile, key));
    }
    // Reproducible builds: SOURCE_DATE_EPOCH fixes the creation time (and so the expiry).
    let created = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Timestamp(
            v.trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH '{v}' is not Unix seconds"))?,
        ),
        Err(_) => SystemClock.now(),
    };
    let lifetime = kit_builder::clock::parse_duration(o.expires.as_deref().unwrap_or("30d"))
        .map_err(anyhow::Error::msg)?;
    let state = kit_builder::cli::SequenceState::new(a.state_dir.as_deref());
    let sequence = match o.sequence {
        Some(s) => s,
        None => state.next(&channel)?,
    };
    let inputs = kit_builder::cli::Inputs {
        feeds: o.feeds,
        images: o.images,
        policy: o.policy,
        trust: o.trust,
        files: o.files,
        registry: kit_builder::registry::RegistryOptions::from_env(
            o.insecure_registries,
            o.registry_ca,
        ),
    };
    // Pulled images live in `_staging` until the kit is written.
    let (payloads, images, _staging) = kit_builder::cli::plan(&inputs)?;
    let ids = kit_builder::cli::identities(&o.identities)?;
    let base = if o.base.is_empty() {
        None
    } else {
        let profiles: Vec<_> = signers.iter().map(|(p, _)| p.clone()).collect();
        Some(
            kit_builder::cli::read_base(o.base.clone(), &ids, &profiles)
                .context("reading the base kit")?,
        )
    };
    let req = kit_builder::build::BuildRequest {
        channel: channel.clone(),
        sequence,
        id: o.id,
        created,
        expires: Timestamp(created.0 + lifetime),
        signers,
        payloads,
        images,
        base,
        volume_size: o.volume_size,
        recipients: kit_builder::cli::recipients(&o.encrypt_to)?,
        out: kit_out,
        level: o.level.unwrap_or(3),
        progress: !a.quiet,
        validate_feed: kit_builder::cli::validate_feed,
    };
    let strategy = if a.two_pass {
        kit_builder::build::ReadStrategy::TwoPass
    } else if a.single_read {
        kit_builder::build::ReadStrategy::SingleRead
    } else {
        kit_builder::build::ReadStrategy::Auto
    };
    let report = kit_builder::build::build_with(req, strategy)?;
    state.record(&channel, sequence)?;
    writeln!(
        out,
        "kit: {} (channel {}, sequence {})",
        report.manifest.id, report.manifest.channel, report.manifest.sequence
    )?;
    writeln!(
        out,
        "payloads: {} ({} bytes carried)",
        report.manifest.payloads.len(),
        report.payload_bytes
    )?;
    for o in &report.outputs {
        writeln!(out, "wrote: {}", o.display())?;
    }
    writeln!(out, "size: {} bytes", report.output_bytes)?;
    Ok(ExitStatus::Ok)
}

fn verify(a: VerifyArgs, out: &mut impl std::io::Write) -> Result<ExitStatus> {
    use kit_builder::clock::{Clock as _, SystemClock};
    let policy = kit_builder::cli::trust_policy(&a.trust, a.threshold, a.profile)?;
    let ids = kit_builder::cli::identities(&a.identity)?;
    let mut limits = kit_builder::read::Limits {
        max_ratio: a.max_ratio,
        ..Default::default()
    };
    if let Some(s) = &a.max_size {
        limits.max_total_bytes = parse_size(s)?;
    }
    let opts = kit_builder::read::ReadOptions {
        policy: &policy,
        now: Some(a.at.unwrap_or_else(|| SystemClock.now())),
        limits,
        identities: &ids,
    };
    let input = kit_builder::read::KitInput::one(a.kit.clone())?;
    let verified = kit_builder::read::verify_with_progress(
        &input,
        &opts,
        &mut kit_builder::read::VerifyOnly,
        !a.quiet,
    )
    .with_context(|| format!("kit {} rejected", input.label()))?;
    if a.json {
        let v = serde_json::json!({
            "result": "ok",
            "kit": verified.manifest.id,
            "channel": verified.manifest.channel,
            "sequence": verified.manifest.sequence,
            "expires": verified.manifest.expires,
            "profile": policy.profile().id(),
            "manifest_digest": format!("{}:{}", policy.profile().digest_alg(), verified.manifest_digest),
            "payloads": verified.manifest.payloads.len(),
            "payload_bytes": verified.payload_bytes,
            "signatures": verified.signatures,
            "volumes": verified.volumes.as_ref().map(|v| v.volumes.len()),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        write!(out, "{}", kit_builder::cli::render_verified(&verified))?;
    }
    Ok(ExitStatus::Ok)
}
