//! Reading and verifying a kit as a stream, in constant memory: manifest and envelope first (signatures
//! checked before any payload is touched), then every entry checked against the signed manifest while it is
//! hashed under the site's profile. The appliance imports through this same code.

use crate::clock::Timestamp;
use crate::manifest::{self, Manifest, ManifestError, Payload};
use crate::volume::{VolumeError, VolumeIndex, VolumeSet};
use crypto_profiles::dsse::{DsseError, Envelope, SignatureNote, TrustPolicy};
use crypto_profiles::{DigestAlg, Profile};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use thiserror::Error;

/// Size and ratio limits. Defaults are documented in docs/kit-format.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `kit.json` or `kit.dsse.json`.
    pub max_manifest_bytes: u64,
    /// Largest total of payload bytes.
    pub max_total_bytes: u64,
    /// Largest number of payloads.
    pub max_payloads: usize,
    /// Largest ratio of decompressed to compressed bytes, checked once 16 MiB are decompressed.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest_bytes: 64 << 20,
            max_total_bytes: 256 << 30,
            max_payloads: 1_000_000,
            max_ratio: 250,
        }
    }
}

/// Where the kit is read from.
#[derive(Debug, Clone)]
pub enum KitInput {
    /// One kit file.
    File(PathBuf),
    /// Volumes (and optionally their index), in any order.
    Volumes(Vec<PathBuf>),
}

impl KitInput {
    /// The one kit these paths make (a kit file, or the volumes of one split kit, see [`KitInput::group`]),
    /// for commands that take one kit: several whole kits are refused, naming them.
    pub fn one(paths: Vec<PathBuf>) -> Result<KitInput, InputError> {
        let mut kits = KitInput::group(paths);
        match kits.len() {
            0 => Err(InputError::None),
            1 => Ok(kits.remove(0)),
            _ => Err(InputError::Several(
                kits.iter().map(KitInput::label).collect(),
            )),
        }
    }

    /// Groups the paths of one command line into kits: when any file is named like a volume or a volume
    /// index (`NAME.NNN`, `NAME.index`), all of them are the volumes of one split kit (a stray file among
    /// them is then named as not a volume of that kit); otherwise each file is a whole kit, in the order
    /// given.
    pub fn group(paths: Vec<PathBuf>) -> Vec<KitInput> {
        if paths.iter().any(|p| crate::volume::is_volume_file(p)) {
            vec![KitInput::Volumes(paths)]
        } else {
            paths.into_iter().map(KitInput::File).collect()
        }
    }

    /// A label for messages.
    pub fn label(&self) -> String {
        match self {
            KitInput::File(p) => p.display().to_string(),
            KitInput::Volumes(v) => v
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }
    }
}

/// Files that do not make the kit(s) a command expects: a usage error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    /// Several whole kits where one is expected.
    #[error("several kits given ({}): give one kit, or the volumes of one split kit", .0.join(", "))]
    Several(Vec<String>),
    /// No file at all.
    #[error("no kit given")]
    None,
}

/// Why a kit was refused. Every message names the kit entry or file concerned.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KitError {
    /// The kit's bytes are not a well-formed kit (truncated, not zstd/tar, bad entries).
    #[error("malformed kit: {0}")]
    Malformed(String),
    /// An entry that must not be there, or one that is missing.
    #[error("entry '{entry}': {reason}")]
    Entry {
        /// The tar entry path.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The manifest is inconsistent.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Signatures do not meet the trust policy.
    #[error("kit.dsse.json: {0}")]
    Signature(DsseError),
    /// `kit.json` is not the manifest the envelope signs (the manifest was altered after signing).
    #[error("entry 'kit.json': differs from the manifest signed in kit.dsse.json")]
    ManifestNotSigned,
    /// The kit is not signed for the site's profile.
    #[error("kit is signed for profiles {signed:?}, not for '{profile}'")]
    NotForProfile {
        /// The profile in force.
        profile: String,
        /// The profiles the kit names.
        signed: Vec<String>,
    },
    /// A payload's bytes do not match the signed manifest.
    #[error("payload '{name}' ({path}): {alg} digest mismatch")]
    Digest {
        /// Payload name.
        name: String,
        /// Tar path.
        path: String,
        /// The digest checked.
        alg: DigestAlg,
    },
    /// The kit has expired.
    #[error("kit '{id}' expired at {expires} (now {now})")]
    Expired {
        /// Kit id.
        id: String,
        /// Its expiry.
        expires: String,
        /// The time checked at.
        now: String,
    },
    /// A size or ratio limit was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// The kit is encrypted and no matching identity was given.
    #[error("kit is encrypted with age: {0}")]
    Encrypted(String),
    /// A volume problem.
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// The site refuses the kit (rollback, missing base, staleness, unauthorised trust change).
    #[error("{message}")]
    Refused {
        /// The class.
        class: Refusal,
        /// The message.
        message: String,
    },
    /// Reading failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read.
        context: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Options for reading.
pub struct ReadOptions<'a> {
    /// Trusted kit signers, threshold and the site profile.
    pub policy: &'a TrustPolicy,
    /// The time to check expiry at; `None` skips the expiry check (inspection only).
    pub now: Option<Timestamp>,
    /// Limits.
    pub limits: Limits,
    /// age identities for encrypted kits.
    pub identities: &'a [Box<dyn age::Identity>],
}

impl std::fmt::Debug for ReadOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOptions")
            .field("now", &self.now)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Why a site refuses a kit whose signatures are fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Sequence not above the channel's high-water mark (rollback or replay).
    Rollback,
    /// A delta whose base the site lacks.
    BaseMissing,
    /// Older than the site's staleness budget, or created in the future.
    Stale,
    /// A trust change not authorised by the current signer set.
    Unauthorised,
}

/// Receives verified payload bytes. `stage` must consume the reader; the reader then checks the digest,
/// and the caller learns the outcome through `keep` or `discard`.
pub trait BlobSink {
    /// Called once the manifest's signatures verified and before any payload is read: the site's own
    /// checks (sequence, base, staleness) refuse here, before a byte of payload is staged.
    fn check_manifest(&mut self, _manifest: &Manifest) -> Result<(), (Refusal, String)> {
        Ok(())
    }
    /// Stages one payload's bytes.
    fn stage(&mut self, payload: &Payload, data: &mut dyn Read) -> io::Result<()>;
    /// The last staged payload verified.
    fn keep(&mut self, payload: &Payload) -> io::Result<()>;
    /// The last staged payload failed verification; remove what was staged.
    fn discard(&mut self, payload: &Payload);
}

/// A sink that only verifies.
#[derive(Debug, Default)]
pub struct VerifyOnly;

impl BlobSink for VerifyOnly {
    fn stage(&mut self, _: &Payload, data: &mut dyn Read) -> io::Result<()> {
        io::copy(data, &mut io::sink()).map(|_| ())
    }
    fn keep(&mut self, _: &Payload) -> io::Result<()> {
        Ok(())
    }
    fn discard(&mut self, _: &Payload) {}
}

/// A kit that passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedKit {
    /// The manifest.
    pub manifest: Manifest,
    /// Its exact bytes.
    pub manifest_bytes: Vec<u8>,
    /// The site-profile digest of the manifest bytes (the kit's digest).
    pub manifest_digest: String,
    /// Every signature's outcome.
    pub signatures: Vec<SignatureNote>,
    /// Bytes read from media (compressed, or encrypted).
    pub input_bytes: u64,
    /// Payload bytes verified.
    pub payload_bytes: u64,
    /// The volume index, for split kits.
    pub volumes: Option<VolumeIndex>,
}

struct Counting<R> {
    inner: R,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> KitError {
    let context = context.into();
    move |source| KitError::Io { context, source }
}

/// Opens the decompressed tar stream of a kit: volumes verified and chained, age decrypted if needed.
fn open_stream(
    input: &KitInput,
    policy: &TrustPolicy,
    identities: &[Box<dyn age::Identity>],
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<(Box<dyn Read + Send>, Option<VolumeIndex>), KitError> {
    let (raw, volumes): (Box<dyn Read + Send>, Option<VolumeIndex>) = match input {
        KitInput::File(p) => (
            Box::new(File::open(p).map_err(io_err(p.display().to_string()))?),
            None,
        ),
        KitInput::Volumes(paths) => {
            let set = VolumeSet::verify(paths, policy)?;
            let r = set.reader(policy.profile()).map_err(io_err("volumes"))?;
            (Box::new(r), Some(set.index))
        }
    };
    let counted = Counting {
        inner: raw,
        n: counter,
    };
    let stream = decompress(Box::new(counted), identities, &input.label())?;
    let ahead = ReadAhead::spawn(stream).map_err(io_err("starting the kit reader thread"))?;
    Ok((Box::new(ahead), volumes))
}

/// Size of the buffers [`ReadAhead`] hands over.
const AHEAD_CHUNK: usize = 1 << 20;
/// How many of them it may fill ahead of the reader.
const AHEAD_CHUNKS: usize = 4;

/// What the read-ahead thread sends: a filled buffer (and how much of it is data), the end, or a failure.
enum Ahead {
    Data(Vec<u8>, usize),
    End,
    Failed(io::Error),
}

/// Reads a stream on a thread of its own, at most [`AHEAD_CHUNKS`] MiB ahead, so that reading the kit
/// (volume re-hashing, age decryption, zstd) overlaps with hashing its payloads under the site profile on
/// the caller's thread: verification takes the longer of the two instead of their sum. Buffers go back to
/// the thread for reuse. When the reader is dropped early (a refused kit), the thread stops at its next
/// buffer, so memory stays bounded whatever the kit's size.
struct ReadAhead {
    full: std::sync::mpsc::Receiver<Ahead>,
    empty: std::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    len: usize,
    pos: usize,
    /// The end was seen, or a failure reported: later reads say so again.
    done: Option<io::ErrorKind>,
}

impl ReadAhead {
    fn spawn(mut inner: Box<dyn Read + Send>) -> io::Result<ReadAhead> {
        let (full_tx, full) = std::sync::mpsc::sync_channel::<Ahead>(AHEAD_CHUNKS - 1);
        let (empty, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("kit-read-ahead".into())
            .spawn(move || loop {
                let mut buf = empty_rx.try_recv().unwrap_or_default();
                if buf.len() < AHEAD_CHUNK {
                    buf.resize(AHEAD_CHUNK, 0);
                }
                let mut filled = 0;
                let mut end = false;
                while filled < AHEAD_CHUNK {
                    match inner.read(&mut buf[filled..]) {
                        Ok(0) => {
                            end = true;
                            break;
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            // What was read before the failure first, as a plain reader gives it.
                            if filled > 0 && full_tx.send(Ahead::Data(buf, filled)).is_err() {
                                return;
                            }
                            let _ = full_tx.send(Ahead::Failed(e));
                            return;
                        }
                    }
                }
                if filled > 0 && full_tx.send(Ahead::Data(buf, filled)).is_err() {
                    return;
                }
                if end {
                    let _ = full_tx.send(Ahead::End);
                    return;
                }
            })?;
        Ok(ReadAhead {
            full,
            empty,
            buf: Vec::new(),
            len: 0,
            pos: 0,
            done: None,
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.len {
            match self.done {
                Some(io::ErrorKind::UnexpectedEof) => return Ok(0),
                Some(kind) => return Err(io::Error::new(kind, "reading the kit failed earlier")),
                None => {}
            }
            let spent = std::mem::take(&mut self.buf);
            if !spent.is_empty() {
                let _ = self.empty.send(spent);
            }
            match self.full.recv() {
                Ok(Ahead::Data(buf, len)) => {
                    self.buf = buf;
                    self.len = len;
                    self.pos = 0;
                }
                Ok(Ahead::End) => self.done = Some(io::ErrorKind::UnexpectedEof),
                Ok(Ahead::Failed(e)) => {
                    self.done = Some(e.kind());
                    return Err(e);
                }
                // The thread ended without saying why (it panicked): never taken for the end of the kit.
                Err(_) => {
                    self.done = Some(io::ErrorKind::Other);
                    return Err(io::Error::other("the kit reader thread stopped"));
                }
            }
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads an entry fully, refusing more than `max` bytes.
fn read_bounded(
    entry: &mut dyn Read,
    size: u64,
    max: u64,
    name: &str,
) -> Result<Vec<u8>, KitError> {
    if size > max {
        return Err(KitError::Limit(format!(
            "{name} is {size} bytes, above the limit of {max}"
        )));
    }
    let mut buf = Vec::with_capacity(size as usize);
    entry
        .take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| truncated(name, e))?;
    Ok(buf)
}

fn truncated(entry: &str, e: io::Error) -> KitError {
    KitError::Malformed(format!("reading '{entry}': {e} (truncated or corrupt kit)"))
}

/// Checks the entry type and path of a tar entry; returns the path.
fn entry_path<R: Read>(e: &tar::Entry<'_, R>) -> Result<String, KitError> {
    let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
    let kind = e.header().entry_type();
    if !kind.is_file() {
        let what = match kind {
            tar::EntryType::Symlink => "a symbolic link",
            tar::EntryType::Link => "a hard link",
            tar::EntryType::Directory => "a directory",
            _ => "not a regular file",
        };
        return Err(KitError::Entry {
            entry: raw,
            reason: format!("is {what}; kits carry regular files only"),
        });
    }
    if raw.starts_with('/')
        || raw
            .split('/')
            .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(KitError::Entry {
            entry: raw,
            reason: "path escapes the kit (absolute, '.', '..' or empty component)".into(),
        });
    }
    Ok(raw)
}

/// Reads only the manifest and envelope, without verifying signatures (for `inspect` and delta bases).
pub fn read_header(
    input: &KitInput,
    identities: &[Box<dyn age::Identity>],
    policy_for_volumes: Option<&TrustPolicy>,
) -> Result<(Manifest, Vec<u8>, Envelope, Option<VolumeIndex>), KitError> {
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (stream, volumes) = match (input, policy_for_volumes) {
        (KitInput::Volumes(paths), None) => {
            // Unverified: chain the numbered volumes in file-name order to read the header only.
            let mut sorted = paths.clone();
            sorted.retain(|p| p.extension().is_none_or(|e| e != "index"));
            sorted.sort_by_key(|p| crate::volume::volume_number_of(p));
            let mut chain: Box<dyn Read + Send> = Box::new(io::empty());
            for p in sorted.into_iter().rev() {
                let f = File::open(&p).map_err(io_err(p.display().to_string()))?;
                chain = Box::new(f.chain(chain));
            }
            (decompress(chain, identities, &input.label())?, None)
        }
        (_, Some(p)) => open_stream(input, p, identities, counter)?,
        (KitInput::File(path), None) => {
            let f = File::open(path).map_err(io_err(path.display().to_string()))?;
            (decompress(Box::new(f), identities, &input.label())?, None)
        }
    };
    let limits = Limits::default();
    let mut archive = tar::Archive::new(stream);
    let mut entries = archive
        .entries()
        .map_err(|e| KitError::Malformed(e.to_string()))?;
    let (m_bytes, e_bytes) = first_two(&mut entries, &limits)?;
    let manifest = Manifest::from_bytes(&m_bytes)?;
    let envelope = Envelope::from_json(&e_bytes).map_err(KitError::Signature)?;
    Ok((manifest, m_bytes, envelope, volumes))
}

/// The decompressed tar stream of raw kit bytes: age-decrypted first when they start with the age header,
/// then zstd. `label` names the kit in errors.
fn decompress(
    raw: Box<dyn Read + Send>,
    identities: &[Box<dyn age::Identity>],
    label: &str,
) -> Result<Box<dyn Read + Send>, KitError> {
    let mut buffered = BufReader::with_capacity(1 << 20, raw);
    let head = buffered.fill_buf().map_err(io_err(label))?;
    let compressed: Box<dyn Read + Send> = if head.starts_with(AGE_MAGIC) {
        if identities.is_empty() {
            return Err(KitError::Encrypted(
                "give the site's age identity to decrypt it".into(),
            ));
        }
        let dec = age::Decryptor::new_buffered(buffered)
            .map_err(|e| KitError::Encrypted(e.to_string()))?;
        let r = dec
            .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| KitError::Encrypted(format!("cannot decrypt: {e}")))?;
        Box::new(BufReader::with_capacity(1 << 20, r))
    } else if head.starts_with(ZSTD_MAGIC) {
        Box::new(buffered)
    } else {
        return Err(KitError::Malformed(format!(
            "{label}: not a kit (neither zstd nor age data)"
        )));
    };
    Ok(Box::new(
        zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(1 << 20, compressed))
            .map_err(io_err("zstd"))?,
    ))
}

fn first_two<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    limits: &Limits,
) -> Result<(Vec<u8>, Vec<u8>), KitError> {
    let mut take = |want: &str| -> Result<Vec<u8>, KitError> {
        let mut e = entries
            .next()
            .ok_or_else(|| KitError::Malformed(format!("kit ends before '{want}'")))?
            .map_err(|e| {
                KitError::Malformed(format!("before '{want}': {e} (truncated or corrupt kit)"))
            })?;
        let path = entry_path(&e)?;
        if path != want {
            return Err(KitError::Entry {
                entry: path,
                reason: format!("found where '{want}' must be"),
            });
        }
        let size = e.size();
        read_bounded(&mut e, size, limits.max_manifest_bytes, want)
    };
    let m = take(manifest::MANIFEST_PATH)?;
    let env = take(manifest::ENVELOPE_PATH)?;
    Ok((m, env))
}

/// Verifies a kit completely, handing each verified payload to `sink`.
pub fn verify(
    input: &KitInput,
    opts: &ReadOptions<'_>,
    sink: &mut dyn BlobSink,
) -> Result<VerifiedKit, KitError> {
    verify_with_progress(input, opts, sink, false)
}

/// [`verify`], showing progress on standard error when `progress` is set and it is a terminal.
pub fn verify_with_progress(
    input: &KitInput,
    opts: &ReadOptions<'_>,
    sink: &mut dyn BlobSink,
    progress: bool,
) -> Result<VerifiedKit, KitError> {
    let profile: &Profile = opts.policy.profile();
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (stream, volumes) = open_stream(input, opts.policy, opts.identities, counter.clone())?;
    let mut archive = tar::Archive::new(stream);
    let mut entries = archive
        .entries()
        .map_err(|e| KitError::Malformed(e.to_string()))?;
    let (manifest_bytes, envelope_bytes) = first_two(&mut entries, &opts.limits)?;

    // Signatures first: nothing in the manifest is trusted before this.
    let envelope = Envelope::from_json(&envelope_bytes).map_err(KitError::Signature)?;
    let verified = envelope
        .verify_typed(opts.policy, manifest::PAYLOAD_TYPE)
        .map_err(KitError::Signature)?;
    if verified.payload != manifest_bytes {
        return Err(KitError::ManifestNotSigned);
    }
    let manifest = Manifest::from_bytes(&manifest_bytes)?;
    if !manifest.profiles.contains(&profile.id()) {
        return Err(KitError::NotForProfile {
            profile: profile.id().to_string(),
            signed: manifest.profiles.iter().map(|p| p.to_string()).collect(),
        });
    }
    if let Some(v) = &volumes {
        if v.kit != manifest.id || v.sequence != manifest.sequence || v.channel != manifest.channel
        {
            return Err(KitError::Malformed(format!(
                "volume index names kit '{}', the manifest '{}'",
                v.kit, manifest.id
            )));
        }
    }
    if let Some(now) = opts.now {
        let expires = manifest.expires_at()?;
        if now >= expires {
            return Err(KitError::Expired {
                id: manifest.id.clone(),
                expires: manifest.expires.clone(),
                now: now.to_string(),
            });
        }
    }
    sink.check_manifest(&manifest)
        .map_err(|(class, message)| KitError::Refused { class, message })?;
    let alg = profile.digest_alg();
    let manifest_digest = profile
        .digest(&manifest_bytes)
        .map_err(|e| KitError::Malformed(e.to_string()))?
        .hex();
    let expected = manifest.carried_entries();
    if manifest.payloads.len() > opts.limits.max_payloads {
        return Err(KitError::Limit(format!(
            "{} payloads, above the limit of {}",
            manifest.payloads.len(),
            opts.limits.max_payloads
        )));
    }
    let total: u64 = expected.values().map(|p| p.size).sum();
    if total > opts.limits.max_total_bytes {
        return Err(KitError::Limit(format!(
            "{total} payload bytes, above the limit of {}",
            opts.limits.max_total_bytes
        )));
    }

    let mut seen = BTreeSet::new();
    let mut payload_bytes = 0u64;
    let mut shown =
        crate::build::Progress::new(progress, std::path::Path::new(&input.label()), total);
    for e in entries {
        let mut e = e.map_err(|e| {
            KitError::Malformed(format!(
                "after {} payload(s): {e} (truncated or corrupt kit)",
                seen.len()
            ))
        })?;
        let path = entry_path(&e)?;
        let Some(payload) = expected.get(path.as_str()) else {
            let reason = if path == manifest::MANIFEST_PATH || path == manifest::ENVELOPE_PATH {
                "appears twice (duplicate entry)"
            } else {
                "is not declared in the signed manifest"
            };
            return Err(KitError::Entry {
                entry: path,
                reason: reason.into(),
            });
        };
        if !seen.insert(path.clone()) {
            return Err(KitError::Entry {
                entry: path,
                reason: "appears twice (duplicate entry)".into(),
            });
        }
        if e.size() != payload.size {
            return Err(KitError::Entry {
                entry: path,
                reason: format!(
                    "is {} bytes, the manifest declares {}",
                    e.size(),
                    payload.size
                ),
            });
        }
        let mut hashing = HashingReader {
            inner: &mut e,
            hasher: profile
                .hasher()
                .map_err(|e| KitError::Malformed(e.to_string()))?,
            counter: &counter,
            produced: payload_bytes,
            max_ratio: opts.limits.max_ratio,
            ratio_hit: None,
        };
        let staged = sink.stage(payload, &mut hashing);
        // Drain what the sink did not read, so the digest covers every byte.
        let drained = staged.and_then(|_| io::copy(&mut hashing, &mut io::sink()).map(|_| ()));
        if let Some(msg) = hashing.ratio_hit.take() {
            sink.discard(payload);
            return Err(KitError::Limit(msg));
        }
        if let Err(err) = drained {
            sink.discard(payload);
            return Err(truncated(&path, err));
        }
        let digest = hashing
            .hasher
            .finish()
            .map_err(|e| KitError::Malformed(e.to_string()))?
            .hex();
        if payload.digests.get(&alg) != Some(&digest) {
            sink.discard(payload);
            return Err(KitError::Digest {
                name: payload.name.clone(),
                path,
                alg,
            });
        }
        sink.keep(payload)
            .map_err(io_err(format!("storing {}", payload.name)))?;
        payload_bytes += payload.size;
        shown.add(payload.size);
    }
    shown.done();
    if let Some((path, p)) = expected.iter().find(|(path, _)| !seen.contains(**path)) {
        return Err(KitError::Entry {
            entry: (*path).to_owned(),
            reason: format!("payload '{}' is missing from the kit", p.name),
        });
    }
    // The tar ended; anything after its end-of-archive blocks must be zero padding.
    let mut rest = archive.into_inner();
    let mut buf = [0u8; 8192];
    loop {
        let n = rest
            .read(&mut buf)
            .map_err(|e| truncated("end of archive", e))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(KitError::Entry {
                entry: "(after end of archive)".into(),
                reason: "trailing data".into(),
            });
        }
    }
    Ok(VerifiedKit {
        manifest,
        manifest_bytes,
        manifest_digest,
        signatures: verified.notes,
        input_bytes: counter.load(std::sync::atomic::Ordering::Relaxed),
        payload_bytes,
        volumes,
    })
}

struct HashingReader<'a, R> {
    inner: R,
    hasher: crypto_profiles::Hasher,
    counter: &'a std::sync::atomic::AtomicU64,
    produced: u64,
    max_ratio: u64,
    ratio_hit: Option<String>,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]).map_err(io::Error::other)?;
        self.produced += n as u64;
        let input = self
            .counter
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1);
        if self.produced > (16 << 20) && self.produced / input > self.max_ratio {
            let msg = format!(
                "decompression ratio above {} ({} bytes from {} read): possible decompression bomb",
                self.max_ratio, self.produced, input
            );
            self.ratio_hit = Some(msg.clone());
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Gives `data`, then fails with `fail` if set, in reads of at most 1000 bytes.
    struct Source {
        data: Vec<u8>,
        at: usize,
        fail: Option<io::ErrorKind>,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return match self.fail {
                    Some(io::ErrorKind::Other) => panic!("reader panics"),
                    Some(kind) => Err(io::Error::new(kind, "broken")),
                    None => Ok(0),
                };
            }
            let n = buf.len().min(1000).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn ahead(len: usize, fail: Option<io::ErrorKind>) -> ReadAhead {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        ReadAhead::spawn(Box::new(Source { data, at: 0, fail })).unwrap()
    }

    #[test]
    fn read_ahead_gives_the_stream_then_its_end_or_its_failure() {
        for len in [
            0,
            1,
            AHEAD_CHUNK - 1,
            AHEAD_CHUNK,
            3 * AHEAD_CHUNK + 17,
            9 * AHEAD_CHUNK,
        ] {
            let want: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut got = Vec::new();
            ahead(len, None).read_to_end(&mut got).unwrap();
            assert!(got == want, "{len}");
            // A failure after the data: the data, then the error, and an error again after it.
            let mut r = ahead(len, Some(io::ErrorKind::InvalidData));
            let mut got = Vec::new();
            let e = r.read_to_end(&mut got).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert!(got == want, "{len}");
            assert!(r.read(&mut [0u8; 10]).is_err());
        }
        // A reader that panics (what it had read is lost with its thread): an error, never the end.
        let mut r = ahead(5000, Some(io::ErrorKind::Other));
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "the kit reader thread stopped");
        // Dropped early: dropping does not wait for the thread, which stops at its next hand-over.
        let mut r = ahead(64 * AHEAD_CHUNK, None);
        r.read_exact(&mut [0u8; 10]).unwrap();
        drop(r);
    }

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    fn shape(inputs: &[KitInput]) -> Vec<String> {
        inputs
            .iter()
            .map(|i| match i {
                KitInput::File(p) => format!("kit {}", p.display()),
                KitInput::Volumes(v) => format!("volumes {}", v.len()),
            })
            .collect()
    }

    #[test]
    fn group_takes_volumes_as_one_kit_and_other_files_as_kits_each_and_one_wants_one() {
        let check = |names: &[&str], expected: &[&str]| {
            assert_eq!(shape(&KitInput::group(paths(names))), expected, "{names:?}");
        };
        check(&["a.kit"], &["kit a.kit"]);
        check(
            &["b.kit", "a.kit", "c"],
            &["kit b.kit", "kit a.kit", "kit c"],
        );
        check(&["v.kit.002", "v.kit.001"], &["volumes 2"]);
        check(&["v.kit.001"], &["volumes 1"]);
        check(&["v.kit.index", "x/v.kit.001"], &["volumes 2"]);
        // A whole kit among volumes is one of the set, to be named as not belonging to it.
        check(&["v.kit.001", "a.kit", "v.kit.index"], &["volumes 3"]);
        assert_eq!(
            KitInput::one(paths(&["a.kit", "b.kit"]))
                .unwrap_err()
                .to_string(),
            "several kits given (a.kit, b.kit): give one kit, or the volumes of one split kit"
        );
        assert!(matches!(KitInput::one(vec![]), Err(InputError::None)));
        assert!(matches!(
            KitInput::one(paths(&["v.kit.002", "v.kit.001"])),
            Ok(KitInput::Volumes(v)) if v.len() == 2
        ));
    }
}
