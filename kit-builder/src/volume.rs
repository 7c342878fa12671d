//! Output files and volumes. A kit is written to a temp file and renamed into place; split kits become
//! `NAME.kit.001`, `NAME.kit.002`, … plus `NAME.kit.index`, a DSSE-signed list of every volume's size and
//! digests, so each volume is checked on its own before anything is unpacked, in any order.

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

/// Writes the kit stream to one file or to volumes, atomically.
pub struct VolumeWriter {
    out: PathBuf,
    dir: PathBuf,
    volume_size: Option<u64>,
    by_alg: BTreeMap<DigestAlg, Profile>,
    /// The file being written, its hasher (volumes only: a single kit file needs no digest of its own),
    /// its size so far and its background writeback.
    current: Option<Current>,
    done: Vec<(tempfile::NamedTempFile, Digests, u64)>,
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
            let d = match c.hasher {
                Some(h) => h.finish().map_err(|e| io::Error::other(e.to_string()))?,
                None => Digests::new(),
            };
            self.done.push((c.file, d, c.size));
        }
        Ok(())
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
        self.open_current()?;
        self.roll()?;
        let mut outputs = Vec::new();
        if self.volume_size.is_none() {
            let (f, _, _) = self
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
            for (i, (f, digests, size)) in self.done.into_iter().enumerate() {
                let name = format!("{base}.{:03}", i + 1);
                volumes.push(VolumeEntry {
                    number: i as u32 + 1,
                    file: name.clone(),
                    size,
                    digests,
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
    /// A file whose digest matches no volume.
    #[error("{file}: not a volume of kit '{kit}' (foreign, or corrupt: its {alg} digest matches no volume in the index)")]
    Foreign {
        /// The file.
        file: String,
        /// The kit.
        kit: String,
        /// The digest checked.
        alg: DigestAlg,
    },
    /// A volume that is where one is expected but whose digest is wrong.
    #[error("{file}: volume {number} of kit '{kit}' is corrupt ({alg} digest mismatch)")]
    Corrupt {
        /// The file.
        file: String,
        /// Its number.
        number: u32,
        /// The kit.
        kit: String,
        /// The digest checked.
        alg: DigestAlg,
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

fn volume_number_of(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let (_, num) = name.rsplit_once('.')?;
    (num.len() == 3 && num.bytes().all(|b| b.is_ascii_digit()))
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

/// Whether a list of inputs is a volume set (any `.NNN` or `.index` file).
pub fn is_volume_set(paths: &[PathBuf]) -> bool {
    paths.len() > 1
        || paths
            .iter()
            .any(|p| volume_number_of(p).is_some() || p.extension().is_some_and(|e| e == "index"))
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
                None => {
                    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                    let expected = volume_number_of(path)
                        .and_then(|n| index.volumes.get(n as usize - 1))
                        .filter(|v| v.size == len);
                    return Err(match expected {
                        Some(v) => VolumeError::Corrupt {
                            file,
                            number: v.number,
                            kit: index.kit.clone(),
                            alg,
                        },
                        None => VolumeError::Foreign {
                            file,
                            kit: index.kit.clone(),
                            alg,
                        },
                    });
                }
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
