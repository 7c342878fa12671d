//! The key and signature commands of `stella-kit`: key files, raw blob signatures, digests and DSSE
//! envelopes. Every error names the file and what is wrong with it.

use crate::exit::{Classify, ExitStatus};
use crate::files::write_atomic;
use crypto_profiles::dsse::{DsseError, Envelope, TrustPolicy, Verified};
use crypto_profiles::{
    Digest, DigestAlg, KeyError, PrivateKey, Profile, ProfileError, ProfileId, PublicKey, SigAlg,
    Signer as _,
};
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A command failed on a named file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not a usable key.
    #[error("{}: {source}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// The signature does not verify.
    #[error("{}: verification failed: {reason}", path.display())]
    Verification {
        /// The signature or envelope file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An envelope could not be parsed or checked.
    #[error("{}: {source}", path.display())]
    Dsse {
        /// The envelope file.
        path: PathBuf,
        /// Why.
        #[source]
        source: DsseError,
    },
    /// The profile could not be set up.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A flag combination that cannot work.
    #[error("{0}")]
    Usage(String),
}

impl Classify for ToolError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            ToolError::Verification { .. } => ExitStatus::VerificationFailed,
            ToolError::Dsse {
                source: DsseError::Malformed(_) | DsseError::Policy(_),
                ..
            } => ExitStatus::Usage,
            ToolError::Dsse { .. } => ExitStatus::VerificationFailed,
            ToolError::Profile(ProfileError::GostEngineMissing { .. })
            | ToolError::Key {
                source: KeyError::Profile(ProfileError::GostEngineMissing { .. }),
                ..
            } => ExitStatus::Environment,
            ToolError::Key {
                source: KeyError::NotAllowed(_) | KeyError::WeakKey { .. },
                ..
            } => ExitStatus::VerificationFailed,
            _ => ExitStatus::Usage,
        }
    }
}

/// Reads a whole file, naming it on failure (`-` is standard input).
pub fn read_file(path: &Path) -> Result<Vec<u8>, ToolError> {
    let res = if path == Path::new("-") {
        let mut buf = Vec::new();
        io::Read::read_to_end(&mut io::stdin(), &mut buf).map(|_| buf)
    } else {
        std::fs::read(path)
    };
    res.map_err(|source| ToolError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Loads a PKCS#8 PEM private key, decrypting it with the passphrase when it is encrypted.
pub fn load_private_key(path: &Path, passphrase: Option<&[u8]>) -> Result<PrivateKey, ToolError> {
    let pem = zeroize::Zeroizing::new(read_file(path)?);
    PrivateKey::from_pem(&pem, passphrase).map_err(|source| ToolError::Key {
        path: path.to_owned(),
        source,
    })
}

/// Loads an SPKI PEM public key.
pub fn load_public_key(path: &Path) -> Result<PublicKey, ToolError> {
    let pem = read_file(path)?;
    PublicKey::from_pem(&pem).map_err(|source| ToolError::Key {
        path: path.to_owned(),
        source,
    })
}

/// Reads a passphrase file (first line, without the newline).
pub fn read_passphrase(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, ToolError> {
    let raw = zeroize::Zeroizing::new(read_file(path)?);
    let line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(zeroize::Zeroizing::new(line.to_vec()))
}

/// The profile a key is used under: the one named, which must admit the key's scheme, or else the first
/// family of the scheme. `sm2_id` replaces the SM profile's default distinguishing ID.
pub fn profile_for(
    alg: SigAlg,
    named: Option<ProfileId>,
    sm2_id: Option<&str>,
) -> Result<Profile, ToolError> {
    let id = match named {
        Some(id) => id,
        None => *alg
            .families()
            .first()
            .ok_or_else(|| ToolError::Usage(format!("no profile admits '{alg}'")))?,
    };
    profile_with_id(id, sm2_id)
}

/// A profile by family, with an optional SM2 distinguishing ID.
pub fn profile_with_id(id: ProfileId, sm2_id: Option<&str>) -> Result<Profile, ToolError> {
    let profile = Profile::new(id)?;
    match sm2_id {
        Some(s) if id == ProfileId::Sm => Ok(profile.with_sm2_id(s.as_bytes())?),
        Some(_) => Err(ToolError::Usage(format!(
            "--sm2-id applies only to profile 'sm', not '{id}'"
        ))),
        None => Ok(profile),
    }
}

/// `stella-kit key generate`: writes `<out>.key.pem` (mode 0600) and `<out>.pub.pem`; returns the public key.
pub fn generate_key_files(
    profile: &Profile,
    alg: Option<SigAlg>,
    out: &Path,
    passphrase: Option<&[u8]>,
    overwrite: bool,
) -> Result<PublicKey, ToolError> {
    let key_path = with_suffix(out, ".key.pem");
    let pub_path = with_suffix(out, ".pub.pem");
    let key = PrivateKey::generate(profile, alg).map_err(|source| ToolError::Key {
        path: key_path.clone(),
        source,
    })?;
    let pem = key
        .to_pkcs8_pem(passphrase)
        .map_err(|source| ToolError::Key {
            path: key_path.clone(),
            source,
        })?;
    let public = key.public_key().clone();
    for p in [&key_path, &pub_path] {
        if !overwrite && p.exists() {
            return Err(ToolError::Io {
                path: p.clone(),
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "file exists (use --force to replace it)",
                ),
            });
        }
    }
    write_atomic(&key_path, pem.as_bytes(), 0o600, overwrite).map_err(|source| ToolError::Io {
        path: key_path.clone(),
        source,
    })?;
    write_atomic(&pub_path, public.to_pem().as_bytes(), 0o644, overwrite).map_err(|source| {
        ToolError::Io {
            path: pub_path.clone(),
            source,
        }
    })?;
    Ok(public)
}

fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `stella-kit sign-blob`: the raw signature of a file's bytes.
pub fn sign_blob(
    profile: &Profile,
    key: PrivateKey,
    key_path: &Path,
    file: &Path,
) -> Result<Vec<u8>, ToolError> {
    let data = read_file(file)?;
    let signer = profile.signer(key).map_err(|e| match e {
        crypto_profiles::SignError::NotAllowed(n) => ToolError::Key {
            path: key_path.to_owned(),
            source: n.into(),
        },
        crypto_profiles::SignError::Key(k) => ToolError::Key {
            path: key_path.to_owned(),
            source: k,
        },
        other => ToolError::Usage(other.to_string()),
    })?;
    signer
        .sign(&data)
        .map_err(|e| ToolError::Usage(format!("{}: signing failed: {e}", file.display())))
}

/// `stella-kit verify-blob`: checks a raw signature over a file under a profile.
pub fn verify_blob(
    profile: &Profile,
    key: &PublicKey,
    file: &Path,
    sig_path: &Path,
) -> Result<(), ToolError> {
    let data = read_file(file)?;
    let sig = read_file(sig_path)?;
    profile
        .verify(key, &data, &sig)
        .map_err(|e| ToolError::Verification {
            path: sig_path.to_owned(),
            reason: e.to_string(),
        })
}

/// `stella-kit digest`: a file's digest under a profile (its primary digest, or another it admits).
pub fn digest_file(
    profile: &Profile,
    alg: Option<DigestAlg>,
    path: &Path,
) -> Result<Digest, ToolError> {
    let alg = alg.unwrap_or(profile.digest_alg());
    let mut hasher = profile
        .hasher_for(alg)
        .map_err(|e| ToolError::Usage(e.to_string()))?;
    let res = if path == Path::new("-") {
        io::copy(&mut io::stdin().lock(), &mut hasher)
    } else {
        std::fs::File::open(path).and_then(|mut f| io::copy(&mut f, &mut hasher))
    };
    res.map_err(|source| ToolError::Io {
        path: path.to_owned(),
        source,
    })?;
    hasher.finish().map_err(|e| ToolError::Usage(e.to_string()))
}

/// `stella-kit dsse sign`: one envelope, one signature per key, each under its own profile.
pub fn dsse_sign(
    payload_type: &str,
    payload: &[u8],
    keys: Vec<(PathBuf, Profile, PrivateKey)>,
) -> Result<Envelope, ToolError> {
    let mut signers = Vec::with_capacity(keys.len());
    for (path, profile, key) in keys {
        let s = profile
            .signer(key)
            .map_err(|e| ToolError::Usage(format!("{}: {e}", path.display())))?;
        signers.push(s);
    }
    let refs: Vec<&dyn crypto_profiles::Signer> = signers
        .iter()
        .map(|s| s as &dyn crypto_profiles::Signer)
        .collect();
    Envelope::sign(payload_type, payload, &refs).map_err(|e| ToolError::Usage(e.to_string()))
}

/// `stella-kit dsse verify`: an envelope against trusted keys, a threshold and a profile.
pub fn dsse_verify(
    envelope_path: &Path,
    profile: Profile,
    keys: Vec<PublicKey>,
    threshold: usize,
) -> Result<Verified, ToolError> {
    let bytes = read_file(envelope_path)?;
    let dsse = |source| ToolError::Dsse {
        path: envelope_path.to_owned(),
        source,
    };
    let env = Envelope::from_json(&bytes).map_err(dsse)?;
    let policy = TrustPolicy::new(profile, keys, threshold).map_err(dsse)?;
    env.verify(&policy).map_err(dsse)
}

/// eIDAS: checks a signer certificate file (leaf first, intermediates after it) against a trust-list file at
/// a time, and returns the leaf's key.
pub fn verify_certificate(
    profile: &Profile,
    cert_path: &Path,
    trust_path: &Path,
    at: crate::clock::Timestamp,
) -> Result<PublicKey, ToolError> {
    use crypto_profiles::x509;
    let certs = x509::certs_from_pem(&read_file(cert_path)?, "signer certificate")
        .map_err(|e| ToolError::Usage(format!("{}: {e}", cert_path.display())))?;
    let trust = x509::certs_from_pem(&read_file(trust_path)?, "trust list")
        .map_err(|e| ToolError::Usage(format!("{}: {e}", trust_path.display())))?;
    let (leaf, rest) = certs
        .split_first()
        .ok_or_else(|| ToolError::Usage("empty certificate file".into()))?;
    x509::verify_signer_certificate(profile, leaf, rest, &trust, at.0).map_err(|e| {
        ToolError::Verification {
            path: cert_path.to_owned(),
            reason: e.to_string(),
        }
    })
}
