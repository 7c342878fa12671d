//! Building a kit: hash every payload under every signing profile, write and sign the manifest, then stream
//! a deterministic tar through zstd (and optionally age and volume splitting) to the output.

use crate::clock::Timestamp;
use crate::manifest::{self, BaseRef, Digests, ImageRef, Manifest, Payload, PayloadKind};
use crate::source::Planned;
use crate::volume::VolumeWriter;
use crypto_profiles::dsse::Envelope;
use crypto_profiles::{DigestAlg, Hasher, PrivateKey, Profile, ProfileSigner};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use thiserror::Error;

/// Building a kit failed; nothing is left at the output path.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An input is unusable.
    #[error("{0}")]
    Input(String),
    /// A feed document failed validation.
    #[error("feed document '{name}' refused: {reason}")]
    Feed {
        /// The payload name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> BuildError {
    let context = context.into();
    move |source| BuildError::Io { context, source }
}

/// The base of a delta kit, as read from the base kit file.
#[derive(Debug, Clone)]
pub struct BaseKit {
    /// Its manifest.
    pub manifest: Manifest,
    /// Digests of its `kit.json` bytes.
    pub digests: Digests,
}

/// Everything a build needs.
pub struct BuildRequest {
    /// Channel.
    pub channel: String,
    /// Sequence on the channel.
    pub sequence: u64,
    /// Kit id (default `<channel>-<sequence>`).
    pub id: Option<String>,
    /// Creation time (from `SOURCE_DATE_EPOCH` for reproducible builds).
    pub created: Timestamp,
    /// Expiry.
    pub expires: Timestamp,
    /// Signing keys, each with the profile it signs under.
    pub signers: Vec<(Profile, PrivateKey)>,
    /// Payloads.
    pub payloads: Vec<Planned>,
    /// Image records.
    pub images: Vec<ImageRef>,
    /// Base kit for a delta.
    pub base: Option<BaseKit>,
    /// Split into volumes of this size.
    pub volume_size: Option<u64>,
    /// age recipients to encrypt to.
    pub recipients: Vec<Box<dyn age::Recipient + Send>>,
    /// Output path (`NAME.kit`; volumes become `NAME.kit.001`… and `NAME.kit.index`).
    pub out: PathBuf,
    /// zstd level.
    pub level: i32,
    /// Show progress on standard error.
    pub progress: bool,
    /// Validates a feed document at build time (name, bytes); an error refuses the build.
    pub validate_feed: fn(&str, &[u8]) -> Result<(), String>,
}

impl std::fmt::Debug for BuildRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildRequest")
            .field("channel", &self.channel)
            .field("sequence", &self.sequence)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The manifest written.
    pub manifest: Manifest,
    /// Files written (the kit, or its volumes and index).
    pub outputs: Vec<PathBuf>,
    /// Payload bytes carried.
    pub payload_bytes: u64,
    /// Bytes written.
    pub output_bytes: u64,
}

/// Feeds bytes to one hasher per digest algorithm.
pub(crate) struct MultiHasher {
    hashers: Vec<Hasher>,
}

impl MultiHasher {
    pub(crate) fn new(
        profiles: &BTreeMap<DigestAlg, Profile>,
        extra_sha256: bool,
    ) -> Result<MultiHasher, BuildError> {
        let mut hashers = Vec::new();
        for (alg, p) in profiles {
            hashers.push(
                p.hasher_for(*alg)
                    .map_err(|e| BuildError::Input(e.to_string()))?,
            );
        }
        if extra_sha256 && !profiles.contains_key(&DigestAlg::Sha256) {
            let fips = Profile::new(crypto_profiles::ProfileId::Fips)
                .map_err(|e| BuildError::Input(e.to_string()))?;
            hashers.push(
                fips.hasher()
                    .map_err(|e| BuildError::Input(e.to_string()))?,
            );
        }
        Ok(MultiHasher { hashers })
    }

    pub(crate) fn finish(self) -> Result<BTreeMap<DigestAlg, String>, BuildError> {
        let mut out = BTreeMap::new();
        for h in self.hashers {
            let d = h.finish().map_err(|e| BuildError::Input(e.to_string()))?;
            out.insert(d.alg(), d.hex());
        }
        Ok(out)
    }
}

impl Write for MultiHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for h in &mut self.hashers {
            h.update(buf).map_err(io::Error::other)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The digest algorithms of a set of profiles, each with a profile that admits it.
pub(crate) fn digest_profiles(profiles: &[Profile]) -> BTreeMap<DigestAlg, Profile> {
    profiles
        .iter()
        .map(|p| (p.digest_alg(), p.clone()))
        .collect()
}

/// Builds a kit. On any error the output path is left as it was.
pub fn build(req: BuildRequest) -> Result<BuildReport, BuildError> {
    if !manifest::valid_id(&req.channel) {
        return Err(BuildError::Input(format!(
            "channel '{}' is not valid: use letters, digits, '.', '_' or '-'",
            req.channel
        )));
    }
    let id = req
        .id
        .clone()
        .unwrap_or_else(|| format!("{}-{:06}", req.channel, req.sequence));
    if !manifest::valid_id(&id) {
        return Err(BuildError::Input(format!("kit id '{id}' is not valid")));
    }
    if req.signers.is_empty() {
        return Err(BuildError::Input("at least one --key is required".into()));
    }
    if req.expires <= req.created {
        return Err(BuildError::Input("expiry must be after creation".into()));
    }
    let mut profiles: Vec<_> = req.signers.iter().map(|(p, _)| p.id()).collect();
    profiles.dedup();
    let mut seen_profiles = BTreeSet::new();
    profiles.retain(|p| seen_profiles.insert(*p));
    let profile_values: Vec<Profile> = req.signers.iter().map(|(p, _)| p.clone()).collect();
    let by_alg = digest_profiles(&profile_values);
    let addressing = manifest::primary_digest(profiles[0]);

    // Pass 1: hash every payload under every profile (and SHA-256 for OCI names), validate feeds. Names are
    // checked first; then the payloads are hashed by one worker per core, since hashing (Streebog, SM3 on
    // one core each) is what bounds a build.
    let mut names = BTreeSet::new();
    let mut unique: Vec<&Planned> = Vec::with_capacity(req.payloads.len());
    for planned in &req.payloads {
        if !names.insert(planned.name.clone()) {
            // The same OCI blob reached through two images is one payload; any other clash is an error.
            if planned.kind == PayloadKind::OciBlob {
                continue;
            }
            return Err(BuildError::Input(format!(
                "payload name '{}' is given twice",
                planned.name
            )));
        }
        unique.push(planned);
    }
    let hashed = hash_all(&unique, &by_alg, req.validate_feed)?;
    let mut payloads = Vec::with_capacity(unique.len());
    let mut sources: BTreeMap<String, &Planned> = BTreeMap::new();
    for (planned, (size, mut all)) in unique.into_iter().zip(hashed) {
        all.retain(|alg, _| by_alg.contains_key(alg));
        let path = manifest::blob_path(addressing, &all[&addressing]);
        let carried = match &req.base {
            Some(b) => !b
                .manifest
                .payloads
                .iter()
                .any(|bp| bp.digests.get(&addressing) == all.get(&addressing)),
            None => true,
        };
        if carried {
            sources.entry(path.clone()).or_insert(planned);
        }
        payloads.push(Payload {
            name: planned.name.clone(),
            kind: planned.kind,
            media_type: planned.media_type.clone(),
            size,
            digests: all,
            path,
            carried,
        });
    }
    payloads.sort_by(|a, b| a.name.cmp(&b.name));
    let mut images = req.images.clone();
    images.sort_by(|a, b| (&a.name, &a.manifest).cmp(&(&b.name, &b.manifest)));
    images.dedup();

    let base = req.base.as_ref().map(|b| BaseRef {
        id: b.manifest.id.clone(),
        digests: b.digests.clone(),
    });
    if let Some(b) = &base {
        let algs: Vec<DigestAlg> = b.digests.keys().copied().collect();
        if algs != manifest::digest_algs(&profiles) {
            return Err(BuildError::Input(format!(
                "base kit '{}' is signed under other profiles; a delta must use the same profiles",
                b.id
            )));
        }
    }
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        id,
        channel: req.channel.clone(),
        sequence: req.sequence,
        created: req.created.to_string(),
        expires: req.expires.to_string(),
        profiles,
        addressing,
        base,
        payloads,
        images,
    };
    let manifest_bytes = manifest.to_bytes();
    // A manifest we cannot read back is a bug; catch it before anything is written.
    Manifest::from_bytes(&manifest_bytes)
        .map_err(|e| BuildError::Input(format!("internal: {e}")))?;

    let mut signers: Vec<ProfileSigner> = Vec::new();
    for (p, k) in req.signers {
        let public = k.public_key().key_id().clone();
        signers.push(
            p.signer(k)
                .map_err(|e| BuildError::Sign(format!("key {}: {e}", public.short())))?,
        );
    }
    let refs: Vec<&dyn crypto_profiles::Signer> = signers
        .iter()
        .map(|s| s as &dyn crypto_profiles::Signer)
        .collect();
    let envelope = Envelope::sign(manifest::PAYLOAD_TYPE, &manifest_bytes, &refs)
        .map_err(|e| BuildError::Sign(e.to_string()))?;
    let envelope_bytes = envelope.to_json();

    // Pass 2: write.
    let total: u64 = manifest.carried_entries().values().map(|p| p.size).sum();
    let sink = VolumeWriter::new(&req.out, req.volume_size, &by_alg)
        .map_err(io_err(req.out.display().to_string()))?;
    let enc = Encrypt::new(sink, req.recipients).map_err(io_err("age encryption"))?;
    let mut z = zstd::stream::write::Encoder::new(enc, req.level).map_err(io_err("zstd"))?;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
        .max(1);
    z.multithread(workers).map_err(io_err("zstd"))?;
    z.include_checksum(true).map_err(io_err("zstd"))?;
    let mut progress = Progress::new(req.progress, &req.out, total);
    let mut tar = tar::Builder::new(z);
    tar.mode(tar::HeaderMode::Deterministic);
    let mtime = req.created.0.max(0) as u64;
    append(
        &mut tar,
        manifest::MANIFEST_PATH,
        manifest_bytes.len() as u64,
        mtime,
        &mut &manifest_bytes[..],
    )?;
    append(
        &mut tar,
        manifest::ENVELOPE_PATH,
        envelope_bytes.len() as u64,
        mtime,
        &mut &envelope_bytes[..],
    )?;
    let mut payload_bytes = 0u64;
    for (path, entry) in manifest.carried_entries() {
        let planned = sources
            .get(path)
            .ok_or_else(|| BuildError::Input(format!("internal: no source for {path}")))?;
        let reader = planned
            .source
            .open()
            .map_err(io_err(planned.source.label()))?;
        let mut counted = CountingReader {
            inner: reader,
            progress: &mut progress,
        };
        append(&mut tar, path, entry.size, mtime, &mut counted)?;
        payload_bytes += entry.size;
    }
    let z = tar.into_inner().map_err(io_err("tar"))?;
    let enc = z.finish().map_err(io_err("zstd"))?;
    let sink = enc.finish().map_err(io_err("age encryption"))?;
    progress.done();
    let (outputs, output_bytes) = sink
        .finish(&manifest, &signers)
        .map_err(io_err(format!("{}: writing output", req.out.display())))?;
    Ok(BuildReport {
        manifest,
        outputs,
        payload_bytes,
        output_bytes,
    })
}

/// A payload's size and its digests.
type Hashed = (u64, BTreeMap<DigestAlg, String>);

/// Hashes (and, for feeds, validates) one payload: its size and its digests.
fn hash_one(
    planned: &Planned,
    by_alg: &BTreeMap<DigestAlg, Profile>,
    validate_feed: fn(&str, &[u8]) -> Result<(), String>,
) -> Result<Hashed, BuildError> {
    let mut hasher = MultiHasher::new(by_alg, planned.oci_digest.is_some())?;
    let mut reader = planned
        .source
        .open()
        .map_err(io_err(planned.source.label()))?;
    let size = if planned.kind == PayloadKind::Feed {
        let mut buf = Vec::new();
        reader
            .read_to_end(&mut buf)
            .map_err(io_err(planned.source.label()))?;
        validate_feed(&planned.name, &buf).map_err(|reason| BuildError::Feed {
            name: planned.name.clone(),
            reason,
        })?;
        hasher
            .write_all(&buf)
            .map_err(io_err(planned.source.label()))?;
        buf.len() as u64
    } else {
        io::copy(&mut reader, &mut hasher).map_err(io_err(planned.source.label()))?
    };
    let all = hasher.finish()?;
    if let Some(oci) = &planned.oci_digest {
        let sha = all.get(&DigestAlg::Sha256).cloned().unwrap_or_default();
        if oci.strip_prefix("sha256:") != Some(sha.as_str()) {
            return Err(BuildError::Input(format!(
                "{}: content does not match OCI digest {oci}",
                planned.source.label()
            )));
        }
    }
    Ok((size, all))
}

/// Hashes every payload with one worker per core, results in input order; the first error (in input
/// order) wins.
fn hash_all(
    planned: &[&Planned],
    by_alg: &BTreeMap<DigestAlg, Profile>,
    validate_feed: fn(&str, &[u8]) -> Result<(), String>,
) -> Result<Vec<Hashed>, BuildError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(planned.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Hashed, BuildError>>>> =
        Mutex::new((0..planned.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = planned.get(i) else { break };
                let r = hash_one(p, by_alg, validate_feed);
                let failed = r.is_err();
                if let Ok(mut slots) = results.lock() {
                    slots[i] = Some(r);
                }
                if failed {
                    // Stop handing out work; payloads already taken finish.
                    next.store(planned.len(), Ordering::Relaxed);
                }
            });
        }
    });
    let slots = results
        .into_inner()
        .map_err(|_| BuildError::Input("internal: a hashing worker panicked".into()))?;
    let mut out = Vec::with_capacity(slots.len());
    for slot in slots {
        match slot {
            Some(r) => out.push(r?),
            None => {
                return Err(BuildError::Input(
                    "internal: a payload was not hashed".into(),
                ))
            }
        }
    }
    Ok(out)
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    mtime: u64,
    data: &mut dyn Read,
) -> Result<(), BuildError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)
        .map_err(io_err(format!("tar entry {path}")))?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    // A source that changed size since it was hashed is caught: the tar entry would be short or long.
    let mut limited = data.take(size);
    tar.append(&h, &mut limited)
        .map_err(io_err(format!("writing {path}")))?;
    let mut probe = [0u8; 1];
    if limited.limit() != 0
        || limited
            .into_inner()
            .read(&mut probe)
            .map_err(io_err(format!("reading {path}")))?
            != 0
    {
        return Err(BuildError::Input(format!(
            "{path}: input changed while the kit was being built"
        )));
    }
    Ok(())
}

/// Optional age encryption between zstd and the output.
enum Encrypt {
    Plain(VolumeWriter),
    Age(age::stream::StreamWriter<VolumeWriter>),
}

impl Encrypt {
    fn new(
        sink: VolumeWriter,
        recipients: Vec<Box<dyn age::Recipient + Send>>,
    ) -> io::Result<Encrypt> {
        if recipients.is_empty() {
            return Ok(Encrypt::Plain(sink));
        }
        let enc = age::Encryptor::with_recipients(
            recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
        )
        .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Encrypt::Age(enc.wrap_output(sink)?))
    }

    fn finish(self) -> io::Result<VolumeWriter> {
        match self {
            Encrypt::Plain(s) => Ok(s),
            Encrypt::Age(w) => w.finish(),
        }
    }
}

impl Write for Encrypt {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encrypt::Plain(s) => s.write(buf),
            Encrypt::Age(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encrypt::Plain(s) => s.flush(),
            Encrypt::Age(w) => w.flush(),
        }
    }
}

/// Progress on standard error, only when asked and when it is a terminal.
pub(crate) struct Progress {
    enabled: bool,
    label: String,
    total: u64,
    done: u64,
    last: Instant,
    start: Instant,
}

impl Progress {
    pub(crate) fn new(enabled: bool, out: &Path, total: u64) -> Progress {
        use std::io::IsTerminal;
        Progress {
            enabled: enabled && io::stderr().is_terminal(),
            label: out
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            total: total.max(1),
            done: 0,
            last: Instant::now(),
            start: Instant::now(),
        }
    }

    pub(crate) fn add(&mut self, n: u64) {
        self.done += n;
        if self.enabled && self.last.elapsed().as_millis() >= 200 {
            self.last = Instant::now();
            let mib = self.done as f64 / 1048576.0;
            let rate = mib / self.start.elapsed().as_secs_f64().max(0.001);
            eprint!(
                "\r{}: {:>3}%  {:.0} MiB  {:.0} MiB/s ",
                self.label,
                self.done * 100 / self.total,
                mib,
                rate
            );
        }
    }

    pub(crate) fn done(&mut self) {
        if self.enabled {
            eprintln!(
                "\r{}: 100%  {:.0} MiB in {:.1}s        ",
                self.label,
                self.done as f64 / 1048576.0,
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

struct CountingReader<'a, R> {
    inner: R,
    progress: &'a mut Progress,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}
