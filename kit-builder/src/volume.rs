//! Output files and volumes. A kit is written to a temp file and renamed into place; split kits become
//! `NAME.kit.001`, `NAME.kit.002`, … plus `NAME.kit.index`, a DSSE-signed list of every volume's size and
//! digests, so each volume is checked on its own before anything is unpacked, in any order. The index also
//! holds digests of each volume's first and last [`SAMPLE_WINDOW`] bytes, so that a file matching no volume
//! can be told apart: a damaged volume of this kit (a sample still matches) or a file from another kit (none
//! does).

use crate::build::MultiHasher;
use crate::manifest::{Digests, Manifest};
use crypto_profiles::dsse::{Envelope, TrustPolicy};
use crypto_profiles::{DigestAlg, Profile, ProfileSigner};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Format of the volume index.
pub const INDEX_FORMAT: &str = "stella-kit-volumes/1";
/// DSSE payload type of the volume index.
pub const INDEX_PAYLOAD_TYPE: &str = "application/vnd.stella.kit.volumes+json";

/// One volume in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeEntry {
    /// 1-based number.
    pub number: u32,
    /// File name as written (`NAME.kit.001`).
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// Digests under every signing profile.
    pub digests: Digests,
    /// Digests of its first and last bytes; absent in indexes written before they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<VolumeSamples>,
}

/// The bytes of a volume sampled for diagnosis: its first and its last `window` bytes.
///
/// The whole-volume digest decides whether a file is a volume; the samples only explain a file that is not.
/// A damaged volume keeps at least one intact window unless the damage touches both ends, while a file from
/// another kit shares neither (its windows hold other compressed bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSamples {
    /// The window size in bytes, see [`sample_window`]; readers ignore samples whose window is 0 or above
    /// the volume's size.
    pub window: u64,
    /// Digests of the first `window` bytes, under every signing profile.
    pub head: Digests,
    /// Digests of the last `window` bytes, under every signing profile.
    pub tail: Digests,
}

/// The largest window sampled at each end of a volume: 64 KiB.
pub const SAMPLE_WINDOW: u64 = 64 << 10;

/// The sample window of a volume of `size` bytes: [`SAMPLE_WINDOW`], or a quarter of the volume when that
/// is smaller (only a last volume can be), so that a change in its middle leaves both windows intact.
pub fn sample_window(size: u64) -> u64 {
    SAMPLE_WINDOW.min(size / 4)
}

/// The signed volume index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeIndex {
    /// Always [`INDEX_FORMAT`].
    pub format: String,
    /// Kit id.
    pub kit: String,
    /// Channel.
    pub channel: String,
    /// Sequence.
    pub sequence: u64,
    /// Every volume, in order.
    pub volumes: Vec<VolumeEntry>,
}

/// The smallest volume size accepted (avoids a million-file kit by mistake).
pub const MIN_VOLUME_SIZE: u64 = 1 << 20;

/// The output file being written.
struct Current {
    file: tempfile::NamedTempFile,
    hasher: Option<MultiHasher>,
    size: u64,
    writeback: crate::files::Writeback,
}

/// A finished output file: the temp file, its digests, size and samples (volumes only).
type Done = (tempfile::NamedTempFile, Digests, u64, Option<VolumeSamples>);

/// Writes the kit stream to one file or to volumes, atomically.
pub struct VolumeWriter {
    out: PathBuf,
    dir: PathBuf,
    volume_size: Option<u64>,
    by_alg: BTreeMap<DigestAlg, Profile>,
    /// The file being written, its hasher (volumes only: a single kit file needs no digest of its own),
    /// its size so far and its background writeback.
    current: Option<Current>,
    done: Vec<Done>,
    written: u64,
}

impl std::fmt::Debug for VolumeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeWriter")
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

impl VolumeWriter {
    /// A writer for `out`; with `volume_size`, for volumes of at most that many bytes.
    pub fn new(
        out: &Path,
        volume_size: Option<u64>,
        by_alg: &BTreeMap<DigestAlg, Profile>,
    ) -> io::Result<VolumeWriter> {
        if let Some(v) = volume_size {
            if v < MIN_VOLUME_SIZE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("volume size {v} is below the minimum of 1 MiB"),
                ));
            }
        }
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        Ok(VolumeWriter {
            out: out.to_owned(),
            dir,
            volume_size,
            by_alg: by_alg.clone(),
            current: None,
            done: Vec::new(),
            written: 0,
        })
    }

    fn roll(&mut self) -> io::Result<()> {
        if let Some(c) = self.current.take() {
            c.writeback.finish();
            let (d, samples) = match c.hasher {
                Some(h) => {
                    let d = h.finish().map_err(|e| io::Error::other(e.to_string()))?;
                    // The two ends, read back from the volume just written (still in the page cache).
                    let window = sample_window(c.size);
                    let mut bytes = vec![0u8; usize::try_from(window).unwrap_or(usize::MAX)];
                    let mut ends = [Digests::new(), Digests::new()];
                    for (end, at) in ends.iter_mut().zip([0, c.size - window]) {
                        std::os::unix::fs::FileExt::read_exact_at(
                            c.file.as_file(),
                            &mut bytes,
                            at,
                        )?;
                        *end = self.digests_of(&bytes)?;
                    }
                    let [head, tail] = ends;
                    (d, Some(VolumeSamples { window, head, tail }))
                }
                None => (Digests::new(), None),
            };
            self.done.push((c.file, d, c.size, samples));
        }
        Ok(())
    }

    /// Finishes the file being written. A stream whose length is a multiple of the volume size has just
    /// rolled over: no empty volume is started for it (an empty stream still gets its one empty file).
    fn close(&mut self) -> io::Result<()> {
        if self.done.is_empty() {
            self.open_current()?;
        }
        self.roll()
    }

    /// The digests of `bytes` under every signing profile.
    fn digests_of(&self, bytes: &[u8]) -> io::Result<Digests> {
        let mut h =
            MultiHasher::new(&self.by_alg, false).map_err(|e| io::Error::other(e.to_string()))?;
        h.write_all(bytes)?;
        h.finish().map_err(|e| io::Error::other(e.to_string()))
    }

    fn open_current(&mut self) -> io::Result<()> {
        if self.current.is_none() {
            let f = tempfile::Builder::new()
                .prefix(".stella-kit-")
                .tempfile_in(&self.dir)?;
            // Kits are published artifacts: world-readable like the index (temp files start at 0600).
            {
                use std::os::unix::fs::PermissionsExt;
                f.as_file()
                    .set_permissions(std::fs::Permissions::from_mode(0o644))?;
            }
            let hasher = match self.volume_size {
                Some(_) => Some(
                    MultiHasher::new(&self.by_alg, false)
                        .map_err(|e| io::Error::other(e.to_string()))?,
                ),
                None => None,
            };
            let writeback = crate::files::Writeback::new(f.as_file())?;
            self.current = Some(Current {
                file: f,
                hasher,
                size: 0,
                writeback,
            });
        }
        Ok(())
    }

    /// Syncs and renames everything into place; for volumes, signs and writes the index. Returns the files
    /// written and the bytes written.
    pub fn finish(
        mut self,
        manifest: &Manifest,
        signers: &[ProfileSigner],
    ) -> io::Result<(Vec<PathBuf>, u64)> {
        self.close()?;
        let mut outputs = Vec::new();
        if self.volume_size.is_none() {
            let (f, _, _, _) = self
                .done
                .pop()
                .ok_or_else(|| io::Error::other("no output"))?;
            f.as_file().sync_all()?;
            f.persist(&self.out).map_err(|e| e.error)?;
            outputs.push(self.out.clone());
        } else {
            let base = self
                .out
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut volumes = Vec::new();
            let mut files = Vec::new();
            for (i, (f, digests, size, samples)) in self.done.into_iter().enumerate() {
                let name = format!("{base}.{:03}", i + 1);
                volumes.push(VolumeEntry {
                    number: i as u32 + 1,
                    file: name.clone(),
                    size,
                    digests,
                    samples,
                });
                files.push((f, self.dir.join(name)));
            }
            let index = VolumeIndex {
                format: INDEX_FORMAT.into(),
                kit: manifest.id.clone(),
                channel: manifest.channel.clone(),
                sequence: manifest.sequence,
                volumes,
            };
            let mut bytes = serde_json::to_vec_pretty(&index).map_err(io::Error::other)?;
            bytes.push(b'\n');
            let refs: Vec<&dyn crypto_profiles::Signer> = signers
                .iter()
                .map(|s| s as &dyn crypto_profiles::Signer)
                .collect();
            let env = Envelope::sign(INDEX_PAYLOAD_TYPE, &bytes, &refs)
                .map_err(|e| io::Error::other(e.to_string()))?;
            for (f, path) in files {
                f.as_file().sync_all()?;
                f.persist(&path).map_err(|e| e.error)?;
                outputs.push(path);
            }
            let index_path = index_path_for(&self.out);
            crate::files::write_atomic(&index_path, &env.to_json(), 0o644, true)?;
            outputs.push(index_path);
        }
        File::open(&self.dir)?.sync_all()?;
        Ok((outputs, self.written))
    }
}

/// `NAME.kit` → `NAME.kit.index`.
pub fn index_path_for(kit: &Path) -> PathBuf {
    let mut s = kit.as_os_str().to_owned();
    s.push(".index");
    PathBuf::from(s)
}

impl Write for VolumeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.open_current()?;
        let room = match (self.volume_size, &self.current) {
            (Some(v), Some(c)) => usize::try_from(v - c.size).unwrap_or(usize::MAX),
            _ => buf.len(),
        };
        let take = buf.len().min(room);
        if let Some(c) = self.current.as_mut() {
            c.file.write_all(&buf[..take])?;
            if let Some(h) = c.hasher.as_mut() {
                h.write_all(&buf[..take])?;
            }
            c.size += take as u64;
            c.writeback.wrote(take as u64);
            self.written += take as u64;
            if Some(c.size) == self.volume_size {
                self.roll()?;
            }
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A volume set problem, naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VolumeError {
    /// No index among or beside the volumes.
    #[error("no volume index given or found next to the volumes (expected {0})")]
    NoIndex(String),
    /// The index is unreadable or not signed by trusted keys.
    #[error("volume index {file}: {reason}")]
    Index {
        /// The index file.
        file: String,
        /// Why.
        reason: String,
    },
    /// A volume is missing.
    #[error("volume {number} of {total} ({file}) of kit '{kit}' is missing")]
    Missing {
        /// Its number.
        number: u32,
        /// How many there are.
        total: usize,
        /// Its file name.
        file: String,
        /// The kit.
        kit: String,
    },
    /// The same volume is given twice.
    #[error("volume {number} of kit '{kit}' is given twice: {first} and {second}")]
    Duplicate {
        /// Its number.
        number: u32,
        /// The kit.
        kit: String,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
    /// A file whose digest matches no volume and, when the index has samples, none of whose samples match
    /// either: a file from another kit.
    #[error("{file}: not a volume of kit '{kit}' ({})", foreign_reason(*.sampled, *.alg))]
    Foreign {
        /// The file.
        file: String,
        /// The kit.
        kit: String,
        /// The digest checked.
        alg: DigestAlg,
        /// Whether the index had samples to compare (without them, a foreign file and a corrupt one whose
        /// name or size does not place it look the same).
        sampled: bool,
    },
    /// A file whose digest matches no volume but that is recognisably a damaged volume of this kit: one of
    /// its samples matches (or, with an index without samples, its name and size place it).
    #[error("{file}: volume {number} of kit '{kit}' is corrupt ({alg} digest mismatch; {detail})")]
    Corrupt {
        /// The file.
        file: String,
        /// Its number.
        number: u32,
        /// The kit.
        kit: String,
        /// The digest checked.
        alg: DigestAlg,
        /// Where it differs, as far as the samples tell.
        detail: String,
    },
    /// A volume of this kit that is shorter than the index says: its first bytes match their sample.
    #[error("{file}: volume {number} of kit '{kit}' is truncated ({size} of {expected} bytes; its first {} match the index)", window_text(*.window))]
    Truncated {
        /// The file.
        file: String,
        /// Its number.
        number: u32,
        /// The kit.
        kit: String,
        /// Its size.
        size: u64,
        /// The size the index lists.
        expected: u64,
        /// The sample window that matched.
        window: u64,
    },
    /// A file could not be read.
    #[error("{file}: {reason}")]
    Io {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
}

/// Verified volumes, in order.
#[derive(Debug, Clone)]
pub struct VolumeSet {
    /// The verified index.
    pub index: VolumeIndex,
    /// Files in volume order.
    pub files: Vec<PathBuf>,
    /// The digest they were checked with.
    pub alg: DigestAlg,
}

/// The number of a file named like a volume: `NAME.NNN`, three digits or more (the builder pads to three,
/// so a kit of more than 999 volumes has `NAME.1000` onwards).
pub fn volume_number_of(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let (_, num) = name.rsplit_once('.')?;
    (num.len() >= 3 && num.bytes().all(|b| b.is_ascii_digit()))
        .then(|| num.parse().ok())
        .flatten()
}

fn hash_file(path: &Path, profile: &Profile) -> Result<String, VolumeError> {
    let f = File::open(path).map_err(|e| VolumeError::Io {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    profile
        .digest_reader(io::BufReader::with_capacity(1 << 20, f))
        .map(|d| d.hex())
        .map_err(|e| VolumeError::Io {
            file: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// Whether a file is named like a volume (`NAME.NNN`) or a volume index (`NAME.index`).
pub fn is_volume_file(path: &Path) -> bool {
    volume_number_of(path).is_some() || path.extension().is_some_and(|e| e == "index")
}

fn foreign_reason(sampled: bool, alg: DigestAlg) -> String {
    if sampled {
        format!("it is from another kit: neither its {alg} digest nor its first or last bytes match any volume in the index")
    } else {
        format!("foreign, or corrupt: its {alg} digest matches no volume in the index")
    }
}

/// `65536` → `64 KiB`.
fn window_text(window: u64) -> String {
    if window >= 1024 && window.is_multiple_of(1024) {
        format!("{} KiB", window / 1024)
    } else {
        format!("{window} bytes")
    }
}

/// The digest of `len` bytes of a file from `offset`, or `None` when the file is too short for them.
fn sample_digest(
    path: &Path,
    file_len: u64,
    offset: u64,
    len: u64,
    profile: &Profile,
) -> Result<Option<String>, VolumeError> {
    use std::io::{Seek, SeekFrom};
    if offset.checked_add(len).is_none_or(|end| end > file_len) {
        return Ok(None);
    }
    let io_err = |e: io::Error| VolumeError::Io {
        file: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut f = File::open(path).map_err(io_err)?;
    f.seek(SeekFrom::Start(offset)).map_err(io_err)?;
    let d = profile.digest_reader(f.take(len)).map_err(io_err)?;
    Ok(Some(d.hex()))
}

/// Says what a file whose digest matches no volume of `index` is: a corrupt or truncated volume of this kit
/// when one of its samples matches one of the index's, else a foreign file. Without samples in the index
/// (older builders), a file named and sized like volume N is taken as a corrupt volume N, anything else as
/// foreign.
fn diagnose(
    path: &Path,
    index: &VolumeIndex,
    profile: &Profile,
    alg: DigestAlg,
) -> Result<VolumeError, VolumeError> {
    let file = path.display().to_string();
    let len = std::fs::metadata(path)
        .map_err(|e| VolumeError::Io {
            file: file.clone(),
            reason: e.to_string(),
        })?
        .len();
    let named = volume_number_of(path);
    let sampled: Option<Vec<(&VolumeEntry, &String, &String, u64)>> = index
        .volumes
        .iter()
        .map(|v| {
            let s = v.samples.as_ref()?;
            Some((v, s.head.get(&alg)?, s.tail.get(&alg)?, s.window))
        })
        .collect();
    let Some(sampled) = sampled else {
        let expected = named
            .and_then(|n| index.volumes.get((n as usize).checked_sub(1)?))
            .filter(|v| v.size == len);
        return Ok(match expected {
            Some(v) => VolumeError::Corrupt {
                file,
                number: v.number,
                kit: index.kit.clone(),
                alg,
                detail: "named and sized like it; the index has no samples to say where it differs"
                    .into(),
            },
            None => VolumeError::Foreign {
                file,
                kit: index.kit.clone(),
                alg,
                sampled: false,
            },
        });
    };
    // Every window length is hashed once at each end, however many volumes share it: keyed by
    // (window, is_tail).
    let mut cache: BTreeMap<(u64, bool), Option<String>> = BTreeMap::new();
    let mut sample = |window: u64, tail: bool| -> Result<Option<String>, VolumeError> {
        if let Some(d) = cache.get(&(window, tail)) {
            return Ok(d.clone());
        }
        let offset = if tail { len.saturating_sub(window) } else { 0 };
        let d = sample_digest(path, len, offset, window, profile)?;
        cache.insert((window, tail), d.clone());
        Ok(d)
    };
    let mut matches = Vec::new();
    for (v, head, tail, window) in sampled {
        // An empty window matches every file and one beyond the volume cannot be sampled: neither says anything.
        if window == 0 || window > v.size {
            continue;
        }
        let head_ok = sample(window, false)?.as_ref() == Some(head);
        let tail_ok = sample(window, true)?.as_ref() == Some(tail);
        if head_ok || tail_ok {
            matches.push((v, head_ok, tail_ok, window));
        }
    }
    // Prefer the volume the file is named after, then one of its size, then the first that matched.
    let pick = matches
        .iter()
        .find(|m| Some(m.0.number) == named)
        .or_else(|| matches.iter().find(|m| m.0.size == len))
        .or_else(|| matches.first());
    let Some(&(v, head_ok, tail_ok, window)) = pick else {
        return Ok(VolumeError::Foreign {
            file,
            kit: index.kit.clone(),
            alg,
            sampled: true,
        });
    };
    if len < v.size && head_ok {
        return Ok(VolumeError::Truncated {
            file,
            number: v.number,
            kit: index.kit.clone(),
            size: len,
            expected: v.size,
            window,
        });
    }
    let w = window_text(window);
    let detail = match (len == v.size, head_ok, tail_ok) {
        (true, true, true) => {
            format!("its first and last {w} match the index, it differs between them")
        }
        (true, true, false) => format!("its first {w} match the index, its last {w} differ"),
        (true, false, _) => format!("its first {w} differ, its last {w} match the index"),
        (false, true, _) => format!(
            "it is {len} bytes, the index lists {}; its first {w} match the index",
            v.size
        ),
        (false, false, _) => format!(
            "it is {len} bytes, the index lists {}; its last {w} match the index",
            v.size
        ),
    };
    Ok(VolumeError::Corrupt {
        file,
        number: v.number,
        kit: index.kit.clone(),
        alg,
        detail,
    })
}

impl VolumeSet {
    /// Finds the index (given, or beside the first volume), verifies its signatures under `policy`, then
    /// hashes every volume under the policy's profile and puts them in order.
    pub fn verify(paths: &[PathBuf], policy: &TrustPolicy) -> Result<VolumeSet, VolumeError> {
        let (index_paths, volume_paths): (Vec<&PathBuf>, Vec<&PathBuf>) = paths
            .iter()
            .partition(|p| p.extension().is_some_and(|e| e == "index"));
        let index_path = match index_paths.first() {
            Some(p) => (*p).clone(),
            None => {
                let first = volume_paths
                    .first()
                    .ok_or_else(|| VolumeError::NoIndex("NAME.kit.index".into()))?;
                let name = first
                    .file_name()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name);
                let candidate = first.with_file_name(format!("{stem}.index"));
                if !candidate.is_file() {
                    return Err(VolumeError::NoIndex(candidate.display().to_string()));
                }
                candidate
            }
        };
        let ifile = index_path.display().to_string();
        let ierr = |reason: String| VolumeError::Index {
            file: ifile.clone(),
            reason,
        };
        let bytes = std::fs::read(&index_path).map_err(|e| ierr(e.to_string()))?;
        let env = Envelope::from_json(&bytes).map_err(|e| ierr(e.to_string()))?;
        let verified = env
            .verify_typed(policy, INDEX_PAYLOAD_TYPE)
            .map_err(|e| ierr(e.to_string()))?;
        let index: VolumeIndex = serde_json::from_slice(&verified.payload)
            .map_err(|e| ierr(format!("malformed: {e}")))?;
        if index.format != INDEX_FORMAT || index.volumes.is_empty() {
            return Err(ierr(format!(
                "unsupported format '{}' or no volumes",
                index.format
            )));
        }
        for (i, v) in index.volumes.iter().enumerate() {
            if v.number as usize != i + 1 {
                return Err(ierr("volumes are not numbered 1..n".into()));
            }
        }
        let profile = policy.profile();
        let alg = profile.digest_alg();
        let mut slots: Vec<Option<PathBuf>> = vec![None; index.volumes.len()];
        for path in volume_paths {
            let hex = hash_file(path, profile)?;
            let file = path.display().to_string();
            match index
                .volumes
                .iter()
                .find(|v| v.digests.get(&alg) == Some(&hex))
            {
                Some(v) => {
                    let slot = &mut slots[v.number as usize - 1];
                    if let Some(prev) = slot {
                        return Err(VolumeError::Duplicate {
                            number: v.number,
                            kit: index.kit.clone(),
                            first: prev.display().to_string(),
                            second: file,
                        });
                    }
                    *slot = Some(path.clone());
                }
                None => return Err(diagnose(path, &index, profile, alg)?),
            }
        }
        let mut files = Vec::with_capacity(slots.len());
        for (i, s) in slots.into_iter().enumerate() {
            match s {
                Some(p) => files.push(p),
                None => {
                    return Err(VolumeError::Missing {
                        number: i as u32 + 1,
                        total: index.volumes.len(),
                        file: index.volumes[i].file.clone(),
                        kit: index.kit.clone(),
                    })
                }
            }
        }
        Ok(VolumeSet { index, files, alg })
    }

    /// A reader over the volumes in order that re-hashes each one as it is read and fails if a volume
    /// changed since it was verified.
    pub fn reader(&self, profile: &Profile) -> io::Result<ChainReader> {
        let expected = self
            .index
            .volumes
            .iter()
            .map(|v| v.digests.get(&self.alg).cloned().unwrap_or_default())
            .collect();
        Ok(ChainReader {
            files: self.files.clone(),
            expected,
            profile: profile.clone(),
            pos: 0,
            current: None,
        })
    }
}

/// Reads verified volumes back to back, re-checking each digest at its end.
pub struct ChainReader {
    files: Vec<PathBuf>,
    expected: Vec<String>,
    profile: Profile,
    pos: usize,
    current: Option<(File, crypto_profiles::Hasher)>,
}

impl std::fmt::Debug for ChainReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainReader")
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl Read for ChainReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.files.get(self.pos) else {
                    return Ok(0);
                };
                let h = self.profile.hasher().map_err(io::Error::other)?;
                self.current = Some((File::open(path)?, h));
            }
            if let Some((f, h)) = self.current.as_mut() {
                let n = f.read(buf)?;
                if n > 0 {
                    h.update(&buf[..n]).map_err(io::Error::other)?;
                    return Ok(n);
                }
            }
            if let Some((_, h)) = self.current.take() {
                let got = h.finish().map_err(io::Error::other)?.hex();
                if got != self.expected[self.pos] {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} changed after it was verified",
                            self.files[self.pos].display()
                        ),
                    ));
                }
            }
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::build::tests::noise;
    use crypto_profiles::ProfileId;

    fn fips() -> Profile {
        Profile::new(ProfileId::Fips).unwrap()
    }

    fn digests(bytes: &[u8]) -> Digests {
        Digests::from([(DigestAlg::Sha256, fips().digest(bytes).unwrap().hex())])
    }

    /// The index entry a builder writes for a volume of these bytes.
    fn entry(number: u32, bytes: &[u8]) -> VolumeEntry {
        let w = sample_window(bytes.len() as u64) as usize;
        VolumeEntry {
            number,
            file: format!("k.kit.{number:03}"),
            size: bytes.len() as u64,
            digests: digests(bytes),
            samples: Some(VolumeSamples {
                window: w as u64,
                head: digests(&bytes[..w]),
                tail: digests(&bytes[bytes.len() - w..]),
            }),
        }
    }

    #[test]
    fn samples_are_the_digests_of_each_volume_ends() {
        let t = tempfile::tempdir().unwrap();
        let by_alg = BTreeMap::from([(DigestAlg::Sha256, fips())]);
        let mut w = VolumeWriter::new(&t.path().join("k.kit"), Some(1 << 20), &by_alg).unwrap();
        let data = noise((2 << 20) + 1000, 1);
        // Uneven writes: some shorter than the window, some longer, some across a volume boundary.
        let mut rest = &data[..];
        for n in [1000, 70_000, 3, 400_000].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*n).min(rest.len());
            w.write_all(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
        w.close().unwrap();
        let got: Vec<_> = w.done.iter().map(|d| d.3.clone().unwrap()).collect();
        let want: Vec<_> = data
            .chunks(1 << 20)
            .enumerate()
            .map(|(i, c)| entry(i as u32 + 1, c).samples.unwrap())
            .collect();
        assert_eq!(got, want);
        assert_eq!(got[0].window, SAMPLE_WINDOW);
        // The last volume is 1000 bytes: a quarter of it at each end.
        assert_eq!(got[2].window, 250);
    }

    #[test]
    fn a_stream_of_whole_volumes_ends_without_an_empty_one() {
        let t = tempfile::tempdir().unwrap();
        let by_alg = BTreeMap::from([(DigestAlg::Sha256, fips())]);
        let mut w = VolumeWriter::new(&t.path().join("k.kit"), Some(1 << 20), &by_alg).unwrap();
        w.write_all(&noise(2 << 20, 4)).unwrap();
        w.close().unwrap();
        let sizes: Vec<u64> = w.done.iter().map(|d| d.2).collect();
        assert_eq!(sizes, [1 << 20, 1 << 20]);
    }

    #[test]
    fn volume_numbers_have_three_digits_or_more() {
        for (name, n) in [
            ("k.kit.001", Some(1)),
            ("k.kit.999", Some(999)),
            ("k.kit.1000", Some(1000)),
            ("k.kit.01", None),
            ("k.kit.1a3", None),
            ("k.kit", None),
        ] {
            assert_eq!(volume_number_of(Path::new(name)), n, "{name}");
        }
    }

    /// Writes `bytes` as `name` in a temp dir and diagnoses it against the index of volumes `a`, `b`, `c`.
    fn check(volumes: &[&[u8]], sampled: bool, name: &str, bytes: &[u8], expected: &str) {
        let t = tempfile::tempdir().unwrap();
        let mut index = VolumeIndex {
            format: INDEX_FORMAT.into(),
            kit: "k".into(),
            channel: "stable".into(),
            sequence: 1,
            volumes: volumes
                .iter()
                .enumerate()
                .map(|(i, v)| entry(i as u32 + 1, v))
                .collect(),
        };
        if !sampled {
            for v in &mut index.volumes {
                v.samples = None;
            }
        }
        let path = t.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let e = diagnose(&path, &index, &fips(), DigestAlg::Sha256).unwrap();
        let text = e.to_string();
        let text = text.strip_prefix(&format!("{}: ", path.display())).unwrap();
        assert_eq!(text, expected, "{name}");
    }

    #[test]
    fn a_file_matching_no_volume_is_named_corrupt_truncated_or_foreign() {
        let a = noise(1 << 20, 1);
        let b = noise(1 << 20, 2);
        let c = noise(100_000, 3);
        let vols: &[&[u8]] = &[&a, &b, &c];
        let flip = |v: &[u8], at: usize| {
            let mut v = v.to_vec();
            v[at] ^= 1;
            v
        };
        let end = b.len() - 1;
        let corrupt = |n: u32, detail: &str| {
            format!("volume {n} of kit 'k' is corrupt (sha256 digest mismatch; {detail})")
        };
        for (name, bytes, expected) in [
            (
                "k.kit.002",
                flip(&b, 500_000),
                corrupt(
                    2,
                    "its first and last 64 KiB match the index, it differs between them",
                ),
            ),
            (
                "k.kit.002",
                flip(&b, 0),
                corrupt(2, "its first 64 KiB differ, its last 64 KiB match the index"),
            ),
            (
                "k.kit.002",
                flip(&b, end),
                corrupt(2, "its first 64 KiB match the index, its last 64 KiB differ"),
            ),
            // Misnamed: the samples still place it.
            (
                "k.kit.001",
                flip(&b, 500_000),
                corrupt(
                    2,
                    "its first and last 64 KiB match the index, it differs between them",
                ),
            ),
            // The small last volume is sampled a quarter at each end.
            (
                "k.kit.003",
                flip(&c, 50_000),
                corrupt(
                    3,
                    "its first and last 25000 bytes match the index, it differs between them",
                ),
            ),
            (
                "k.kit.002",
                b[..700_000].to_vec(),
                "volume 2 of kit 'k' is truncated (700000 of 1048576 bytes; its first 64 KiB match the index)".into(),
            ),
            (
                "k.kit.002",
                [&b[..], b"more"].concat(),
                corrupt(
                    2,
                    "it is 1048580 bytes, the index lists 1048576; its first 64 KiB match the index",
                ),
            ),
            (
                "k.kit.002",
                b[10..].to_vec(),
                corrupt(
                    2,
                    "it is 1048566 bytes, the index lists 1048576; its last 64 KiB match the index",
                ),
            ),
            // Same number, same size, another kit's bytes.
            (
                "k.kit.002",
                noise(1 << 20, 9),
                "not a volume of kit 'k' (it is from another kit: neither its sha256 digest nor its first or last bytes match any volume in the index)".into(),
            ),
            (
                "tiny",
                b"x".to_vec(),
                "not a volume of kit 'k' (it is from another kit: neither its sha256 digest nor its first or last bytes match any volume in the index)".into(),
            ),
        ] {
            check(vols, true, name, &bytes, &expected);
        }
        // An index without samples (older builders): name and size decide, as before.
        check(
            vols,
            false,
            "k.kit.002",
            &noise(1 << 20, 9),
            &corrupt(
                2,
                "named and sized like it; the index has no samples to say where it differs",
            ),
        );
        for name in ["k.kit.000", "k.kit.004", "other"] {
            check(
                vols,
                false,
                name,
                &noise(1 << 20, 9),
                "not a volume of kit 'k' (foreign, or corrupt: its sha256 digest matches no volume in the index)",
            );
        }
    }

    #[test]
    fn indexes_without_samples_still_parse_and_samples_serialize_after_digests() {
        let old = r#"{"number":1,"file":"k.kit.001","size":3,"digests":{"sha256":"ab"}}"#;
        let e: VolumeEntry = serde_json::from_str(old).unwrap();
        assert_eq!(e.samples, None);
        assert_eq!(serde_json::to_string(&e).unwrap(), old);
        let new = entry(1, &noise(1000, 1));
        let text = serde_json::to_string(&new).unwrap();
        assert!(
            text.contains(r#""digests":{"sha256":"#)
                && text.contains(r#"},"samples":{"window":250,"head":{"sha256":""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<VolumeEntry>(&text).unwrap(), new);
    }
}
