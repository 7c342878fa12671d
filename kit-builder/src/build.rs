//! Building a kit: hash every payload under every signing profile, write and sign the manifest, and write a
//! deterministic tar through zstd (and optionally age and volume splitting) to the output, in the frame
//! layout of [`crate::layout`].
//!
//! The manifest, with every payload's digests, is the first tar entry, so nothing of the output can be final
//! before every input has been hashed. Two ways to get there, writing the same bytes:
//! - **single read** ([`crate::single_read`]): large payloads are compressed while they are hashed, straight
//!   into the output file; small ones are hashed, then read again for the tail frame; the head (manifest and
//!   envelope) is inserted in front at the end. Used for plain kit files on file systems that can insert a
//!   range (ext4, XFS).
//! - **two passes**: hash everything, then read the carried payloads again and stream the kit out. Used for
//!   encrypted, split and delta kits (and wherever a range cannot be inserted), since their output is a stream
//!   that cannot be edited afterwards.

use crate::clock::Timestamp;
use crate::layout::{self, FrameEncoder};
use crate::manifest::{self, BaseRef, Digests, ImageRef, Manifest, Payload, PayloadKind};
use crate::source::Planned;
use crate::volume::VolumeWriter;
use crypto_profiles::dsse::Envelope;
use crypto_profiles::{DigestAlg, Hasher, PrivateKey, Profile, ProfileSigner};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
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

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> BuildError {
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
    /// Whether every input was read once ([`ReadStrategy`]); the bytes are the same either way.
    pub single_read: bool,
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

/// How a build reads its inputs. Every strategy writes the same bytes.
///
/// A single read is possible for one plain kit file (not encrypted, not split, not a delta) on a file
/// system that can insert a range at the front of a file (ext4, XFS); everything else is built in two
/// passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadStrategy {
    /// Read once where it is possible and pays (see [`single_read_pays`]), twice otherwise.
    #[default]
    Auto,
    /// Read once wherever it is possible.
    SingleRead,
    /// Hash every input first, then read the carried ones again to write the kit.
    TwoPass,
}

/// Whether reading every input once is worth its cost (more threads, a second zstd encoder per core, and
/// frames of payloads that finish early copied in from spill files), as measured on the 2-core machines
/// of this project (docs/bench.md): it pays when
/// - hashing is what bounds the build (a Streebog or SM3 digest, several times slower than SHA-256 and
///   compression): hashing then runs beside compression instead of before it;
/// - fewer large payloads than lanes are left to keep the cores busy (one big appliance update or layer):
///   its hashing gets a thread of its own beside the compressor;
/// - the inputs do not fit in the memory the page cache can use, so a second pass would read them from
///   the disk again.
///
/// Otherwise (SHA-256 only, many payloads, inputs cached) the hashing pass takes a fraction of a second
/// on all cores, and two passes were as fast or faster.
pub fn single_read_pays(digests: &[DigestAlg], large_payloads: usize, input_bytes: u64) -> bool {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let slow_hash = digests.iter().any(|d| *d != DigestAlg::Sha256);
    slow_hash || large_payloads < cores || input_bytes > memory_available() / 2
}

/// `MemAvailable` from /proc/meminfo, in bytes (unknown: as if there were plenty).
fn memory_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(u64::MAX, |kib| kib.saturating_mul(1024))
}

/// Builds a kit. On any error the output path is left as it was.
pub fn build(req: BuildRequest) -> Result<BuildReport, BuildError> {
    build_with(req, ReadStrategy::Auto)
}

/// Builds a kit with a chosen [`ReadStrategy`]. On any error the output path is left as it was.
pub fn build_with(req: BuildRequest, strategy: ReadStrategy) -> Result<BuildReport, BuildError> {
    build_inner(req, strategy, crate::single_read::SPILL_LIMIT, None)
}

/// [`build_with`] with the spill limit and the number of lanes (default: one per core) chosen, for tests.
fn build_inner(
    req: BuildRequest,
    strategy: ReadStrategy,
    spill_limit: u64,
    lanes: Option<usize>,
) -> Result<BuildReport, BuildError> {
    let BuildRequest {
        channel,
        sequence,
        id,
        created,
        expires,
        signers,
        payloads,
        images,
        base,
        volume_size,
        recipients,
        out,
        level,
        progress,
        validate_feed,
    } = req;
    if !manifest::valid_id(&channel) {
        return Err(BuildError::Input(format!(
            "channel '{channel}' is not valid: use letters, digits, '.', '_' or '-'"
        )));
    }
    let id = id.unwrap_or_else(|| format!("{channel}-{sequence:06}"));
    if !manifest::valid_id(&id) {
        return Err(BuildError::Input(format!("kit id '{id}' is not valid")));
    }
    if signers.is_empty() {
        return Err(BuildError::Input("at least one --key is required".into()));
    }
    if expires <= created {
        return Err(BuildError::Input("expiry must be after creation".into()));
    }
    let mut profiles: Vec<_> = signers.iter().map(|(p, _)| p.id()).collect();
    let mut seen_profiles = BTreeSet::new();
    profiles.retain(|p| seen_profiles.insert(*p));
    let profile_values: Vec<Profile> = signers.iter().map(|(p, _)| p.clone()).collect();
    let by_alg = digest_profiles(&profile_values);
    let addressing = manifest::primary_digest(profiles[0]);

    // Names are checked first; payloads are then read in name order, the manifest's order.
    let mut names = BTreeSet::new();
    let mut unique: Vec<&Planned> = Vec::with_capacity(payloads.len());
    for planned in &payloads {
        if !names.insert(planned.name.as_str()) {
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
    unique.sort_by(|a, b| a.name.cmp(&b.name));
    let mut jobs = Vec::with_capacity(unique.len());
    for planned in unique {
        let size = planned
            .source
            .len()
            .map_err(io_err(planned.source.label()))?;
        jobs.push(Job { planned, size });
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let large = jobs.iter().filter(|j| j.large()).count();
    let wanted = match strategy {
        ReadStrategy::TwoPass => false,
        ReadStrategy::SingleRead => true,
        ReadStrategy::Auto => {
            let digests: Vec<DigestAlg> = by_alg.keys().copied().collect();
            single_read_pays(&digests, large, total)
        }
    };
    let single = wanted
        && recipients.is_empty()
        && volume_size.is_none()
        && base.is_none()
        && large > 0
        && crate::single_read::supported(&dir);
    let plan = Plan {
        jobs,
        by_alg,
        addressing,
        mtime: created.0.max(0) as u64,
        level,
        workers: cores as u32,
        lanes: lanes.unwrap_or(cores),
        validate_feed,
        // A two-pass build shows both passes.
        progress: Mutex::new(Progress::new(
            progress,
            &out,
            if single { total } else { 2 * total },
        )),
    };
    let _span = tracing::debug_span!("build", kit_id = %id, payloads = plan.jobs.len(), bytes = total, single_read = single).entered();
    let unsigned = Unsigned {
        id,
        channel,
        sequence,
        created,
        expires,
        profiles,
        images,
        base,
    };

    if single {
        write_single_read(&plan, unsigned, signers, &dir, spill_limit, out)
    } else {
        write_two_pass(&plan, unsigned, signers, out, volume_size, recipients)
    }
}

/// Reads every input once ([`crate::single_read`]) and publishes the kit at `out`.
fn write_single_read(
    plan: &Plan<'_>,
    unsigned: Unsigned,
    signers: Vec<(Profile, PrivateKey)>,
    dir: &Path,
    spill_limit: u64,
    out: PathBuf,
) -> Result<BuildReport, BuildError> {
    let body = crate::single_read::Body::create(dir, plan.jobs.len(), spill_limit)
        .map_err(io_err(format!("{}: temporary file", dir.display())))?;
    let hashed = crate::single_read::run(plan, &body)?;
    let signed = sign(unsigned, plan, hashed, signers)?;
    let (large, small): (Vec<&Entry>, Vec<&Entry>) = signed
        .entries
        .iter()
        .partition(|e| plan.jobs[e.job].large());
    let large: Vec<usize> = large.iter().map(|e| e.job).collect();
    let mut enc = FrameEncoder::new(plan.level, plan.workers).map_err(io_err("zstd"))?;
    let head = layout::head(
        &mut enc,
        &signed.manifest_bytes,
        &signed.envelope_bytes,
        plan.mtime,
    )
    .map_err(io_err("zstd"))?;
    let output_bytes = body.finish(&large, &head, &out, |w| {
        write_tail(plan, &small, &mut enc, w, false)
    })?;
    plan.progress_done();
    Ok(BuildReport {
        payload_bytes: signed.entries.iter().map(|e| e.size).sum(),
        manifest: signed.manifest,
        outputs: vec![out],
        output_bytes,
        single_read: true,
    })
}

/// Hashes every input (one lane per core), then reads the carried ones again and streams the kit through
/// [`Encrypt`] and the [`VolumeWriter`].
fn write_two_pass(
    plan: &Plan<'_>,
    unsigned: Unsigned,
    signers: Vec<(Profile, PrivateKey)>,
    out: PathBuf,
    volume_size: Option<u64>,
    recipients: Vec<Box<dyn age::Recipient + Send>>,
) -> Result<BuildReport, BuildError> {
    let hashed = run_lanes(
        plan,
        || Ok(vec![0u8; READ_BUF]),
        |buf, i| read_job(plan, &plan.jobs[i], buf, &mut |_| Ok(())).map(Some),
        || {},
    )?;
    let signed = sign(unsigned, plan, hashed, signers)?;
    let sink = VolumeWriter::new(&out, volume_size, &plan.by_alg)
        .map_err(io_err(out.display().to_string()))?;
    let mut w = Encrypt::new(sink, recipients).map_err(io_err("age encryption"))?;
    let mut enc = FrameEncoder::new(plan.level, plan.workers).map_err(io_err("zstd"))?;
    let head = layout::head(
        &mut enc,
        &signed.manifest_bytes,
        &signed.envelope_bytes,
        plan.mtime,
    )
    .map_err(io_err("zstd"))?;
    w.write_all(&head)
        .map_err(io_err(format!("{}: writing", out.display())))?;
    let (large, small): (Vec<&Entry>, Vec<&Entry>) = signed
        .entries
        .iter()
        .partition(|e| plan.jobs[e.job].large());
    let mut buf = vec![0u8; READ_BUF];
    for e in large {
        let job = &plan.jobs[e.job];
        let slot =
            layout::header_slot(&mut enc, &e.path, e.size, plan.mtime).map_err(io_err("zstd"))?;
        w.write_all(&slot)
            .map_err(io_err(format!("{}: writing", out.display())))?;
        copy_exact(job, &mut buf, &mut |chunk| {
            plan.progress(chunk.len() as u64);
            enc.write(chunk, &mut w)
        })?;
        enc.write(layout::tar_padding(e.size), &mut w)
            .and_then(|_| enc.end(&mut w))
            .map_err(io_err(format!("writing {}", e.path)))?;
    }
    write_tail(plan, &small, &mut enc, &mut w, true)?;
    let sink = w.finish().map_err(io_err("age encryption"))?;
    plan.progress_done();
    let (outputs, output_bytes) = sink
        .finish(&signed.manifest, &signed.signers)
        .map_err(io_err(format!("{}: writing output", out.display())))?;
    Ok(BuildReport {
        payload_bytes: signed.entries.iter().map(|e| e.size).sum(),
        manifest: signed.manifest,
        outputs,
        output_bytes,
        single_read: false,
    })
}

/// Size of the buffer inputs are read with.
pub(crate) const READ_BUF: usize = 1 << 20;

/// One distinct payload to read, in name order.
#[derive(Debug)]
pub(crate) struct Job<'a> {
    /// What to read.
    pub planned: &'a Planned,
    /// Its size when the build started; it must not change while the kit is built.
    pub size: u64,
}

impl Job<'_> {
    /// Whether the payload gets its own zstd frames (docs/kit-format.md §1).
    pub fn large(&self) -> bool {
        self.size >= layout::LARGE_PAYLOAD
    }
}

/// What every reader of the inputs shares.
pub(crate) struct Plan<'a> {
    /// Every distinct payload, in name order.
    pub jobs: Vec<Job<'a>>,
    /// The digests to compute, each with a profile that admits it.
    pub by_alg: BTreeMap<DigestAlg, Profile>,
    /// The digest that names tar entries.
    pub addressing: DigestAlg,
    /// The mtime of every tar entry.
    pub mtime: u64,
    /// zstd level.
    pub level: i32,
    /// zstd worker threads per encoder.
    pub workers: u32,
    /// Inputs read at the same time.
    pub lanes: usize,
    /// Feed validation.
    pub validate_feed: fn(&str, &[u8]) -> Result<(), String>,
    progress: Mutex<Progress>,
}

impl Plan<'_> {
    fn progress(&self, n: u64) {
        if let Ok(mut p) = self.progress.lock() {
            p.add(n);
        }
    }

    fn progress_done(&self) {
        if let Ok(mut p) = self.progress.lock() {
            p.done();
        }
    }
}

/// A payload's size and its digests.
pub(crate) type Hashed = (u64, BTreeMap<DigestAlg, String>);

/// Reads one payload once: validates it (feeds), hashes it under every profile (and SHA-256 for an OCI
/// blob, whose own digest is checked), and hands every byte to `consume`. Its size must still be the one
/// it had when the build started.
pub(crate) fn read_job(
    plan: &Plan<'_>,
    job: &Job<'_>,
    buf: &mut [u8],
    consume: &mut dyn FnMut(&[u8]) -> Result<(), BuildError>,
) -> Result<Hashed, BuildError> {
    let planned = job.planned;
    let label = planned.source.label();
    let mut hasher = MultiHasher::new(&plan.by_alg, planned.oci_digest.is_some())?;
    let mut reader = planned.source.open().map_err(io_err(&label))?;
    let mut size = 0u64;
    if planned.kind == PayloadKind::Feed {
        let mut all = Vec::new();
        reader.read_to_end(&mut all).map_err(io_err(&label))?;
        (plan.validate_feed)(&planned.name, &all).map_err(|reason| BuildError::Feed {
            name: planned.name.clone(),
            reason,
        })?;
        hasher.write_all(&all).map_err(io_err(&label))?;
        consume(&all)?;
        size = all.len() as u64;
        plan.progress(size);
    } else {
        loop {
            let n = match reader.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(&label)(e)),
            };
            hasher.write_all(&buf[..n]).map_err(io_err(&label))?;
            consume(&buf[..n])?;
            size += n as u64;
            plan.progress(n as u64);
        }
    }
    finish_job(job, &label, size, hasher)
}

/// The size and digests of a payload read: its size must not have changed, and an OCI blob's bytes must
/// have its digest.
fn finish_job(
    job: &Job<'_>,
    label: &str,
    size: u64,
    hasher: MultiHasher,
) -> Result<Hashed, BuildError> {
    if size != job.size {
        return Err(changed(label, job.size, size));
    }
    let all = hasher.finish()?;
    if let Some(oci) = &job.planned.oci_digest {
        let sha = all.get(&DigestAlg::Sha256).cloned().unwrap_or_default();
        if oci.strip_prefix("sha256:") != Some(sha.as_str()) {
            return Err(BuildError::Input(format!(
                "{label}: content does not match OCI digest {oci}"
            )));
        }
    }
    Ok((size, all))
}

/// Chunks read ahead of the hashing thread in [`read_job_pipelined`].
const PIPELINE_DEPTH: usize = 2;

/// [`read_job`] for a payload whose bytes also go to a compressor: the hashing runs on a thread of its
/// own, so reading and feeding the compressor overlap with it. For one big payload that is what keeps
/// every core busy: SHA-256 alone takes a core at about 1.2 GiB/s. Feeds are read whole to be validated,
/// as in [`read_job`].
pub(crate) fn read_job_pipelined(
    plan: &Plan<'_>,
    job: &Job<'_>,
    consume: &mut dyn FnMut(&[u8]) -> Result<(), BuildError>,
) -> Result<Hashed, BuildError> {
    use std::sync::mpsc;
    use std::sync::Arc;
    let planned = job.planned;
    if planned.kind == PayloadKind::Feed {
        return read_job(plan, job, &mut vec![0u8; READ_BUF], consume);
    }
    let label = planned.source.label();
    let hasher = MultiHasher::new(&plan.by_alg, planned.oci_digest.is_some())?;
    let mut reader = planned.source.open().map_err(io_err(&label))?;
    let (to_hash, chunks) = mpsc::sync_channel::<Arc<Vec<u8>>>(PIPELINE_DEPTH);
    let (give_back, returned) = mpsc::channel::<Arc<Vec<u8>>>();
    std::thread::scope(|scope| {
        let hashing = scope.spawn(move || -> io::Result<MultiHasher> {
            let mut hasher = hasher;
            for chunk in chunks {
                hasher.write_all(&chunk)?;
                let _ = give_back.send(chunk);
            }
            Ok(hasher)
        });
        let mut read = || -> Result<u64, BuildError> {
            let mut size = 0u64;
            let mut made = 0usize;
            loop {
                // A buffer the hasher is done with, or a new one while fewer than the pipeline holds.
                let mut buf = match returned.try_recv() {
                    Ok(b) => Arc::try_unwrap(b).unwrap_or_default(),
                    Err(_) if made < PIPELINE_DEPTH + 2 => {
                        made += 1;
                        Vec::new()
                    }
                    Err(_) => match returned.recv() {
                        Ok(b) => Arc::try_unwrap(b).unwrap_or_default(),
                        // The hasher stopped: its error comes from joining it.
                        Err(_) => return Ok(size),
                    },
                };
                buf.resize(READ_BUF, 0);
                let n = loop {
                    match reader.read(&mut buf) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        r => break r.map_err(io_err(&label))?,
                    }
                };
                if n == 0 {
                    return Ok(size);
                }
                buf.truncate(n);
                let chunk = Arc::new(buf);
                if to_hash.send(Arc::clone(&chunk)).is_err() {
                    return Ok(size);
                }
                consume(&chunk)?;
                size += n as u64;
                plan.progress(n as u64);
            }
        };
        let size = read();
        drop(to_hash);
        let hasher = hashing
            .join()
            .map_err(|_| BuildError::Input("internal: a hashing thread panicked".into()))?
            .map_err(io_err(&label))?;
        finish_job(job, &label, size?, hasher)
    })
}

fn changed(label: &str, before: u64, now: u64) -> BuildError {
    BuildError::Input(format!(
        "{label}: input changed while the kit was being built ({before} bytes when the build started, {now} now)"
    ))
}

/// Reads a payload again (second pass), exactly the size it had, handing the bytes to `consume`.
fn copy_exact(
    job: &Job<'_>,
    buf: &mut [u8],
    consume: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<(), BuildError> {
    let label = job.planned.source.label();
    let mut reader = job.planned.source.open().map_err(io_err(&label))?;
    let mut size = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(&label)(e)),
        };
        size += n as u64;
        if size > job.size {
            return Err(changed(&label, job.size, size));
        }
        consume(&buf[..n]).map_err(io_err(format!("writing {label}")))?;
    }
    if size != job.size {
        return Err(changed(&label, job.size, size));
    }
    Ok(())
}

/// The tail frame: every small carried entry, then the two end-of-archive blocks. `count` shows the bytes
/// as progress (the second pass of a two-pass build).
fn write_tail(
    plan: &Plan<'_>,
    small: &[&Entry],
    enc: &mut FrameEncoder,
    w: &mut dyn Write,
    count: bool,
) -> Result<(), BuildError> {
    let mut buf = vec![0u8; READ_BUF];
    for e in small {
        let header = layout::entry_header(&e.path, e.size, plan.mtime)
            .map_err(io_err(format!("tar entry {}", e.path)))?;
        enc.write(header.as_bytes(), w)
            .map_err(io_err(format!("writing {}", e.path)))?;
        copy_exact(&plan.jobs[e.job], &mut buf, &mut |chunk| {
            if count {
                plan.progress(chunk.len() as u64);
            }
            enc.write(chunk, w)
        })?;
        enc.write(layout::tar_padding(e.size), w)
            .map_err(io_err(format!("writing {}", e.path)))?;
    }
    enc.write(&[0u8; 2 * layout::BLOCK as usize], w)
        .and_then(|_| enc.end(w))
        .map_err(io_err("writing the end of the archive"))
}

/// Runs `work` over every job with one lane (thread) per core, taking jobs in order; results come back in
/// job order. `work` returns `Ok(None)` when it stopped because another job failed; the first real error in
/// job order wins, and `on_fail` tells the other lanes to stop.
pub(crate) fn run_lanes<S>(
    plan: &Plan<'_>,
    init: impl Fn() -> Result<S, BuildError> + Sync,
    work: impl Fn(&mut S, usize) -> Result<Option<Hashed>, BuildError> + Sync,
    on_fail: impl Fn() + Sync,
) -> Result<Vec<Hashed>, BuildError> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let n = plan.jobs.len();
    let lanes = plan.lanes.min(n).max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<Hashed, BuildError>>>> =
        Mutex::new((0..n).map(|_| None).collect());
    let setup_error: Mutex<Option<BuildError>> = Mutex::new(None);
    let fail = || {
        failed.store(true, Ordering::SeqCst);
        on_fail();
    };
    std::thread::scope(|scope| {
        for _ in 0..lanes {
            scope.spawn(|| {
                let mut state = match init() {
                    Ok(s) => s,
                    Err(e) => {
                        if let Ok(mut slot) = setup_error.lock() {
                            slot.get_or_insert(e);
                        }
                        fail();
                        return;
                    }
                };
                while !failed.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    let r = work(&mut state, i);
                    let is_err = r.is_err();
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = r.transpose();
                    }
                    if is_err {
                        fail();
                    }
                }
            });
        }
    });
    let poisoned = || BuildError::Input("internal: a reading lane panicked".into());
    if let Some(e) = setup_error.into_inner().map_err(|_| poisoned())? {
        return Err(e);
    }
    let mut out = Vec::with_capacity(n);
    let mut first_error = None;
    for slot in results.into_inner().map_err(|_| poisoned())? {
        match slot {
            Some(Ok(h)) => out.push(h),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if out.len() != n {
        return Err(BuildError::Input("internal: a payload was not read".into()));
    }
    Ok(out)
}

/// The parts of the manifest known before any payload is read.
struct Unsigned {
    id: String,
    channel: String,
    sequence: u64,
    created: Timestamp,
    expires: Timestamp,
    profiles: Vec<crypto_profiles::ProfileId>,
    images: Vec<ImageRef>,
    base: Option<BaseKit>,
}

/// One tar entry after the head.
#[derive(Debug)]
pub(crate) struct Entry {
    /// `blobs/<alg>/<hex>`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// The job that reads it (the first payload, in name order, with these bytes).
    pub job: usize,
}

/// The signed manifest and what the writer needs.
struct Signed {
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    envelope_bytes: Vec<u8>,
    signers: Vec<ProfileSigner>,
    /// The carried entries in layout order: large ones, then small ones, each in name order.
    entries: Vec<Entry>,
}

/// Writes the manifest from the digests and signs it.
fn sign(
    u: Unsigned,
    plan: &Plan<'_>,
    hashed: Vec<Hashed>,
    keys: Vec<(Profile, PrivateKey)>,
) -> Result<Signed, BuildError> {
    let addressing = plan.addressing;
    let in_base: HashSet<&str> = u
        .base
        .iter()
        .flat_map(|b| b.manifest.payloads.iter())
        .filter_map(|p| p.digests.get(&addressing).map(String::as_str))
        .collect();
    let mut payloads = Vec::with_capacity(hashed.len());
    let mut paths = HashSet::new();
    let (mut large, mut small) = (Vec::new(), Vec::new());
    for (i, (job, (size, mut all))) in plan.jobs.iter().zip(hashed).enumerate() {
        all.retain(|alg, _| plan.by_alg.contains_key(alg));
        let hex = all.get(&addressing).cloned().unwrap_or_default();
        let path = manifest::blob_path(addressing, &hex);
        let carried = !in_base.contains(hex.as_str());
        if carried && paths.insert(path.clone()) {
            let e = Entry {
                path: path.clone(),
                size,
                job: i,
            };
            if job.large() {
                large.push(e);
            } else {
                small.push(e);
            }
        }
        payloads.push(Payload {
            name: job.planned.name.clone(),
            kind: job.planned.kind,
            media_type: job.planned.media_type.clone(),
            size,
            digests: all,
            path,
            carried,
        });
    }
    let mut images = u.images;
    images.sort_by(|a, b| (&a.name, &a.manifest).cmp(&(&b.name, &b.manifest)));
    images.dedup();
    let base = u.base.as_ref().map(|b| BaseRef {
        id: b.manifest.id.clone(),
        digests: b.digests.clone(),
    });
    if let Some(b) = &base {
        let algs: Vec<DigestAlg> = b.digests.keys().copied().collect();
        if algs != manifest::digest_algs(&u.profiles) {
            return Err(BuildError::Input(format!(
                "base kit '{}' is signed under other profiles; a delta must use the same profiles",
                b.id
            )));
        }
    }
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        id: u.id,
        channel: u.channel,
        sequence: u.sequence,
        created: u.created.to_string(),
        expires: u.expires.to_string(),
        profiles: u.profiles,
        addressing,
        base,
        payloads,
        images,
    };
    let manifest_bytes = manifest.to_bytes();
    // A manifest we cannot read back is a bug; catch it before anything is published.
    Manifest::from_bytes(&manifest_bytes)
        .map_err(|e| BuildError::Input(format!("internal: {e}")))?;

    let mut signers: Vec<ProfileSigner> = Vec::new();
    for (p, k) in keys {
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
    large.append(&mut small);
    Ok(Signed {
        manifest,
        manifest_bytes,
        envelope_bytes: envelope.to_json(),
        signers,
        entries: large,
    })
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

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::read::{KitInput, Limits, ReadOptions, VerifyOnly};
    use crate::source::Source;
    use crypto_profiles::{ProfileId, SigAlg};

    fn accept(_: &str, _: &[u8]) -> Result<(), String> {
        Ok(())
    }

    /// Incompressible bytes, the same for the same seed.
    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Large and small payloads, two large ones with the same bytes, one exactly at the threshold, one just
    /// below it, a generated one and an OCI blob with its digest.
    fn inputs(dir: &Path) -> Vec<Planned> {
        let text: Vec<u8> = b"advisory package version fixed "
            .iter()
            .copied()
            .cycle()
            .take(2 << 20)
            .collect();
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("a.bin", noise(3 << 20, 1)),
            ("b.txt", text),
            ("c.bin", noise(3 << 20, 1)),
            ("d.bin", noise(100 << 10, 4)),
            ("e.bin", noise(layout::LARGE_PAYLOAD as usize, 5)),
            ("f.bin", noise(layout::LARGE_PAYLOAD as usize - 1, 6)),
            ("g.bin", noise(5 << 20, 7)),
        ];
        let mut out = Vec::new();
        for (name, bytes) in files {
            let path = dir.join(name);
            std::fs::write(&path, &bytes).unwrap();
            out.push(Planned {
                name: format!("files/{name}"),
                kind: PayloadKind::File,
                media_type: "application/octet-stream".into(),
                source: Source::Path(path),
                oci_digest: None,
            });
        }
        let blob = noise(1 << 20, 8);
        let fips = Profile::new(ProfileId::Fips).unwrap();
        let sha = fips.digest(&blob).unwrap().hex();
        out.push(Planned {
            name: format!("oci/sha256/{sha}"),
            kind: PayloadKind::OciBlob,
            media_type: "application/octet-stream".into(),
            source: Source::Memory(blob.into()),
            oci_digest: Some(format!("sha256:{sha}")),
        });
        out
    }

    fn request(inputs: Vec<Planned>, out: PathBuf, volume_size: Option<u64>) -> BuildRequest {
        let profile = Profile::new(ProfileId::Fips).unwrap();
        // Ed25519 signatures are deterministic, so whole kits compare byte for byte.
        let key = PrivateKey::from_pem(ED25519_KEY.as_bytes(), None).unwrap();
        BuildRequest {
            channel: "test".into(),
            sequence: 1,
            id: None,
            created: Timestamp(1_700_000_000),
            expires: Timestamp(1_800_000_000),
            signers: vec![(profile, key)],
            payloads: inputs,
            images: Vec::new(),
            base: None,
            volume_size,
            recipients: Vec::new(),
            out,
            level: 3,
            progress: false,
            validate_feed: accept,
        }
    }

    static ED25519_KEY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let profile = Profile::new(ProfileId::Fips).unwrap();
        PrivateKey::generate(&profile, Some(SigAlg::Ed25519))
            .unwrap()
            .to_pkcs8_pem(None)
            .unwrap()
            .to_string()
    });

    fn verify(kit: KitInput) -> crate::read::VerifiedKit {
        let profile = Profile::new(ProfileId::Fips).unwrap();
        let key = PrivateKey::from_pem(ED25519_KEY.as_bytes(), None).unwrap();
        let policy =
            crypto_profiles::dsse::TrustPolicy::new(profile, vec![key.public_key().clone()], 1)
                .unwrap();
        let opts = ReadOptions {
            policy: &policy,
            now: Some(Timestamp(1_700_000_001)),
            limits: Limits::default(),
            identities: &[],
        };
        crate::read::verify(&kit, &opts, &mut VerifyOnly).unwrap()
    }

    #[test]
    fn single_read_and_two_pass_write_the_same_bytes() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let single = crate::single_read::supported(d);
        if !single {
            eprintln!(
                "{}: cannot insert a range here; only the two-pass build is exercised",
                d.display()
            );
        }
        let planned = inputs(d);
        let reference = build_with(
            request(planned.clone(), d.join("two.kit"), None),
            ReadStrategy::TwoPass,
        )
        .unwrap();
        let two = std::fs::read(d.join("two.kit")).unwrap();
        assert_eq!(reference.output_bytes, two.len() as u64);
        // Every lane count, with spills unbounded, capped at one chunk, and the default.
        for (lanes, spill) in [(1, 0), (2, 1), (3, u64::MAX), (4, 1), (2, 256 << 20)] {
            let out = d.join(format!("single-{lanes}-{spill}.kit"));
            let r = build_inner(
                request(planned.clone(), out.clone(), None),
                ReadStrategy::SingleRead,
                spill,
                Some(lanes),
            )
            .unwrap();
            assert_eq!(r.manifest, reference.manifest);
            assert_eq!(r.single_read, single);
            assert!(
                std::fs::read(&out).unwrap() == two,
                "{lanes} lanes, spill limit {spill}: the kit differs from the two-pass one"
            );
        }
        // Volumes are the same stream, cut.
        let r = build_with(
            request(planned, d.join("v.kit"), Some(1 << 20)),
            ReadStrategy::SingleRead,
        )
        .unwrap();
        let mut joined = Vec::new();
        for p in r
            .outputs
            .iter()
            .filter(|p| p.extension() != Some("index".as_ref()))
        {
            joined.extend(std::fs::read(p).unwrap());
        }
        assert!(joined == two, "the volumes do not add up to the kit");

        let v = verify(KitInput::File(d.join("two.kit")));
        // Two payloads share the bytes of a.bin: one entry.
        assert_eq!(v.manifest.payloads.len(), 8);
        assert_eq!(v.manifest.carried_entries().len(), 7);
        verify(KitInput::Volumes(r.outputs.clone()));
        // Nothing but the kits is left behind: no temporary or spill file.
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        names.sort();
        assert!(names.is_empty(), "left behind: {names:?}");
    }

    /// A big payload first, then many small-after-compression large ones: the other lanes run far ahead
    /// and spill, each waiting payload a closed file, all copied in order.
    #[test]
    fn lanes_running_ahead_spill_and_catch_up() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let mut planned = Vec::new();
        let big = d.join("a-big.bin");
        std::fs::write(&big, noise(12 << 20, 3)).unwrap();
        planned.push(Planned {
            name: "files/a-big.bin".into(),
            kind: PayloadKind::File,
            media_type: "application/octet-stream".into(),
            source: Source::Path(big),
            oci_digest: None,
        });
        for i in 0..60u8 {
            let p = d.join(format!("z{i:02}.txt"));
            let line = format!("line of file {i} ");
            let bytes: Vec<u8> = line
                .bytes()
                .cycle()
                .take((1 << 20) + usize::from(i))
                .collect();
            std::fs::write(&p, bytes).unwrap();
            planned.push(Planned {
                name: format!("files/z{i:02}.txt"),
                kind: PayloadKind::File,
                media_type: "text/plain".into(),
                source: Source::Path(p),
                oci_digest: None,
            });
        }
        build_with(
            request(planned.clone(), d.join("two.kit"), None),
            ReadStrategy::TwoPass,
        )
        .unwrap();
        for (lanes, spill) in [(4, u64::MAX), (4, 64 << 10)] {
            let out = d.join(format!("one-{spill}.kit"));
            build_inner(
                request(planned.clone(), out.clone(), None),
                ReadStrategy::SingleRead,
                spill,
                Some(lanes),
            )
            .unwrap();
            assert!(
                std::fs::read(&out).unwrap() == std::fs::read(d.join("two.kit")).unwrap(),
                "spill limit {spill}: differs"
            );
        }
        verify(KitInput::File(d.join("two.kit")));
    }

    #[test]
    fn layout_puts_large_entries_first_in_name_order() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let r = build(request(inputs(d), d.join("k.kit"), None)).unwrap();
        let f = std::fs::File::open(d.join("k.kit")).unwrap();
        let mut a = tar::Archive::new(zstd::stream::read::Decoder::new(f).unwrap());
        let listed: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        let path = |name: &str| {
            r.manifest
                .payloads
                .iter()
                .find(|p| p.name == name)
                .unwrap()
                .path
                .clone()
        };
        let mut expected = vec!["kit.json".to_owned(), "kit.dsse.json".to_owned()];
        for name in ["files/a.bin", "files/b.txt", "files/e.bin", "files/g.bin"] {
            expected.push(path(name));
        }
        expected.push(
            r.manifest
                .payloads
                .iter()
                .find(|p| p.kind == PayloadKind::OciBlob)
                .unwrap()
                .path
                .clone(),
        );
        expected.push(path("files/d.bin"));
        expected.push(path("files/f.bin"));
        assert_eq!(listed, expected);
    }

    #[test]
    fn a_failing_input_leaves_nothing_behind() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let mut planned = inputs(d);
        // A large OCI blob whose bytes do not match its digest, among the others.
        let bad = d.join("bad.bin");
        std::fs::write(&bad, noise(2 << 20, 9)).unwrap();
        planned.push(Planned {
            name: "oci/sha256/0000".into(),
            kind: PayloadKind::OciBlob,
            media_type: "application/octet-stream".into(),
            source: Source::Path(bad),
            oci_digest: Some(format!("sha256:{}", "0".repeat(64))),
        });
        for (strategy, spill) in [(ReadStrategy::SingleRead, 1), (ReadStrategy::TwoPass, 1)] {
            let err = build_inner(
                request(planned.clone(), d.join("k.kit"), None),
                strategy,
                spill,
                Some(3),
            )
            .unwrap_err();
            assert!(
                err.to_string()
                    .contains("content does not match OCI digest"),
                "{err}"
            );
            assert!(!d.join("k.kit").exists());
            let left: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n.to_string_lossy().starts_with('.'))
                .collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }
}
