//! Reading OCI images for a kit: an OCI image-layout directory, a docker-archive tar (`docker save`), or
//! an image pulled by digest from a registry (see [`crate::registry`]) into a temporary layout.
//! Each image becomes its blobs (manifest, config, layers) plus an [`ImageRef`](crate::manifest::ImageRef).
//! Blob names are checked against their SHA-256 OCI digests while the kit is built.

use crate::manifest::{ImageRef, PayloadKind};
use crate::registry::{Reference, RegistryError, RegistryOptions};
use crate::source::{Planned, Source};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// An image input could not be read.
#[derive(Debug, Error)]
#[error("image '{input}': {reason}")]
pub struct ImageError {
    /// The input as given on the command line.
    pub input: String,
    /// What is wrong.
    pub reason: String,
    /// The registry's error, for a pull that failed (kept so callers can tell an untrusted certificate
    /// from a missing image).
    #[source]
    pub registry: Option<Box<RegistryError>>,
}

const MANIFEST_OCI: &str = "application/vnd.oci.image.manifest.v1+json";
const MANIFEST_DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
const INDEX_OCI: &str = "application/vnd.oci.image.index.v1+json";
const INDEX_DOCKER: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const CONFIG_OCI: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Largest manifest, index or config we read into memory.
const MAX_JSON: u64 = 4 << 20;

/// Blobs and image records gathered from one or more image inputs.
#[derive(Debug, Default)]
pub struct Images {
    /// Blobs to carry, by OCI digest.
    pub blobs: BTreeMap<String, Planned>,
    /// One record per image manifest.
    pub refs: Vec<ImageRef>,
    /// How `registry:` inputs are reached.
    pub registry: RegistryOptions,
    /// Where pulled images wait until the kit is written.
    staging: Staging,
}

/// The temporary directory that holds images pulled from registries. The planned payloads of those
/// images point into it, so keep it alive until the kit is written; dropping it removes the files.
#[derive(Debug, Default)]
#[must_use = "pulled blobs are deleted when the staging directory is dropped"]
pub struct Staging {
    dir: Option<tempfile::TempDir>,
    pulls: usize,
}

/// Why a pull failed: the registry's error, or a problem with what it served.
enum Pulling {
    Registry(RegistryError),
    Other(String),
}

/// Where a layout came from, for its image records.
enum Origin<'a> {
    /// A layout directory named on the command line.
    Layout,
    /// A layout pulled from a registry.
    Registry(&'a Reference),
}

fn sha256_hex(data: &[u8]) -> String {
    crypto_profiles::digest_with(crypto_profiles::DigestAlg::Sha256, data)
        .map(|d| d.hex())
        .unwrap_or_default()
}

fn oci_digest_hex(d: &str) -> Option<&str> {
    let hex = d.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

fn blob_planned(digest: &str, media_type: &str, source: Source) -> Planned {
    Planned {
        name: format!("oci/{}", digest.replace(':', "/")),
        kind: PayloadKind::OciBlob,
        media_type: media_type.to_owned(),
        source,
        oci_digest: Some(digest.to_owned()),
    }
}

impl Images {
    /// No images yet; `registry:` inputs will be reached as `registry` says.
    pub fn new(registry: RegistryOptions) -> Images {
        Images {
            registry,
            ..Images::default()
        }
    }

    /// Splits into the blobs to carry, the image records, and the staging directory that must outlive
    /// the build.
    pub fn into_parts(self) -> (BTreeMap<String, Planned>, Vec<ImageRef>, Staging) {
        (self.blobs, self.refs, self.staging)
    }

    /// Adds an input from the command line: `registry:HOST[:PORT]/REPO@sha256:DIGEST` is pulled (see
    /// [`Images::pull`]), anything else is read from disk (see [`Images::add`]).
    pub fn add_input(&mut self, spec: &str) -> Result<(), ImageError> {
        if spec.starts_with("registry:") {
            self.pull(spec)
        } else {
            self.add(spec)
        }
    }

    /// Pulls `registry:HOST[:PORT]/REPO@sha256:DIGEST` by digest into the staging directory, then reads
    /// it like an OCI layout. Kept apart from [`Images::add`] so that programs which only read local
    /// images (the appliance) do not link the network client at all.
    pub fn pull(&mut self, spec: &str) -> Result<(), ImageError> {
        let reference = spec.strip_prefix("registry:").unwrap_or(spec);
        self.add_registry(spec, reference).map_err(|e| match e {
            Pulling::Registry(e) => ImageError {
                input: spec.to_owned(),
                reason: e.to_string(),
                registry: Some(Box::new(e)),
            },
            Pulling::Other(reason) => ImageError {
                input: spec.to_owned(),
                reason,
                registry: None,
            },
        })
    }

    /// Adds a local input: `oci-layout:DIR`, `docker-archive:FILE`, or a plain path whose kind is
    /// detected. Opens no network connection; `registry:` inputs are refused here (use [`Images::pull`]).
    pub fn add(&mut self, spec: &str) -> Result<(), ImageError> {
        let err = |reason: String| ImageError {
            input: spec.to_owned(),
            reason,
            registry: None,
        };
        if spec.starts_with("registry:") {
            return Err(err(
                "registry images are pulled by `stella-kit build` on the connected side only"
                    .into(),
            ));
        }
        let (kind, path) = match spec.split_once(':') {
            Some((k @ ("oci-layout" | "docker-archive"), p)) => (k, PathBuf::from(p)),
            _ => {
                let p = PathBuf::from(spec);
                if p.join("oci-layout").is_file() {
                    ("oci-layout", p)
                } else if p.is_file() {
                    ("docker-archive", p)
                } else {
                    return Err(err("not an OCI layout directory (no oci-layout file) nor a docker-archive file".into()));
                }
            }
        };
        match kind {
            "oci-layout" => self.add_layout(spec, &path, &Origin::Layout).map_err(err),
            _ => self.add_docker_archive(spec, &path).map_err(err),
        }
    }

    /// Pulls an image by digest into the staging directory, then reads it as a layout (which checks
    /// every digest a second time, from the files that will be carried).
    fn add_registry(&mut self, spec: &str, reference: &str) -> Result<(), Pulling> {
        let reference = Reference::parse(reference).map_err(|e| match e {
            // The input is named already by the image error around this one.
            RegistryError::BadReference { reason, .. } => Pulling::Other(reason),
            e => Pulling::Registry(e),
        })?;
        // One directory for the build ($TMPDIR decides where), one layout in it per pull.
        let root = match &self.staging.dir {
            Some(t) => t.path().to_owned(),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("stella-kit-pull-")
                    .tempdir()
                    .map_err(|e| {
                        Pulling::Other(format!("cannot create a temporary directory: {e}"))
                    })?;
                let p = t.path().to_owned();
                self.staging.dir = Some(t);
                p
            }
        };
        self.staging.pulls += 1;
        let dir = root.join(self.staging.pulls.to_string());
        crate::registry::pull(&reference, &self.registry, &dir).map_err(Pulling::Registry)?;
        self.add_layout(spec, &dir, &Origin::Registry(&reference))
            .map_err(Pulling::Other)
    }

    fn add_layout(&mut self, spec: &str, dir: &Path, origin: &Origin<'_>) -> Result<(), String> {
        let layout: Value = read_json_file(&dir.join("oci-layout"))?;
        if layout
            .get("imageLayoutVersion")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err("oci-layout lacks imageLayoutVersion".into());
        }
        let index_bytes = read_small(&dir.join("index.json"))?;
        let index: Value =
            serde_json::from_slice(&index_bytes).map_err(|e| format!("index.json: {e}"))?;
        let blob = |digest: &str| -> Result<PathBuf, String> {
            let hex = oci_digest_hex(digest)
                .ok_or_else(|| format!("unsupported or malformed digest '{digest}'"))?;
            let p = dir.join("blobs/sha256").join(hex);
            if p.is_file() {
                Ok(p)
            } else {
                Err(format!("blob {digest} is missing from the layout"))
            }
        };
        let mut stack: Vec<(Value, Option<String>)> = vec![(index, None)];
        let mut found = 0usize;
        while let Some((idx, parent_name)) = stack.pop() {
            let manifests = idx
                .get("manifests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for desc in manifests {
                let digest = desc
                    .get("digest")
                    .and_then(Value::as_str)
                    .ok_or("descriptor without digest")?
                    .to_owned();
                let media = desc
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let name = desc
                    .pointer("/annotations/org.opencontainers.image.ref.name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| parent_name.clone());
                let path = blob(&digest)?;
                let bytes = read_small(&path)?;
                if sha256_hex(&bytes) != oci_digest_hex(&digest).unwrap_or_default() {
                    return Err(format!("blob {digest} does not match its digest"));
                }
                let doc: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let media = if media.is_empty() {
                    doc.get("mediaType")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                } else {
                    media
                };
                match media.as_str() {
                    INDEX_OCI | INDEX_DOCKER => {
                        self.blobs.insert(
                            digest.clone(),
                            blob_planned(&digest, &media, Source::Path(path)),
                        );
                        stack.push((doc, name));
                    }
                    MANIFEST_OCI | MANIFEST_DOCKER => {
                        let config = doc
                            .pointer("/config/digest")
                            .and_then(Value::as_str)
                            .ok_or("manifest without config")?;
                        let config_media = doc
                            .pointer("/config/mediaType")
                            .and_then(Value::as_str)
                            .unwrap_or(CONFIG_OCI);
                        self.blobs.insert(
                            config.to_owned(),
                            blob_planned(config, config_media, Source::Path(blob(config)?)),
                        );
                        let mut layers = Vec::new();
                        for l in doc
                            .get("layers")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            let d = l
                                .get("digest")
                                .and_then(Value::as_str)
                                .ok_or("layer without digest")?;
                            let m = l
                                .get("mediaType")
                                .and_then(Value::as_str)
                                .unwrap_or(LAYER_OCI_TAR);
                            self.blobs
                                .insert(d.to_owned(), blob_planned(d, m, Source::Path(blob(d)?)));
                            layers.push(d.to_owned());
                        }
                        self.blobs.insert(
                            digest.clone(),
                            blob_planned(&digest, &media, Source::Path(path)),
                        );
                        let (label, source) = match origin {
                            Origin::Layout => (
                                name.clone()
                                    .unwrap_or_else(|| format!("{}@{digest}", dir_label(dir))),
                                format!("oci-layout:{}", dir_label(dir)),
                            ),
                            // Each image of a pulled index is named by its own, pullable, digest.
                            Origin::Registry(r) => (
                                format!("{}/{}@{digest}", r.host, r.repo),
                                format!("registry:{r}"),
                            ),
                        };
                        self.refs.push(ImageRef {
                            name: label,
                            source,
                            manifest: digest,
                            media_type: media,
                            config: config.to_owned(),
                            layers,
                        });
                        found += 1;
                    }
                    // Other artifacts referenced by the index travel as they are, without an image record.
                    _ => {
                        self.blobs.insert(
                            digest.clone(),
                            blob_planned(&digest, &media, Source::Path(path)),
                        );
                    }
                }
            }
        }
        if found == 0 {
            return Err(format!("{spec}: index.json lists no image manifest"));
        }
        Ok(())
    }

    fn add_docker_archive(&mut self, spec: &str, file: &Path) -> Result<(), String> {
        let _ = spec;
        for img in read_docker_archive(file)? {
            self.blobs.insert(
                img.config.digest.clone(),
                blob_planned(&img.config.digest, CONFIG_OCI, img.config.source.clone()),
            );
            for l in &img.layers {
                self.blobs.insert(
                    l.digest.clone(),
                    blob_planned(&l.digest, LAYER_OCI_TAR, l.source.clone()),
                );
            }
            self.blobs.insert(
                img.manifest_digest.clone(),
                blob_planned(
                    &img.manifest_digest,
                    MANIFEST_OCI,
                    Source::Memory(img.manifest.clone().into()),
                ),
            );
            self.refs.push(ImageRef {
                name: img.name,
                source: format!("docker-archive:{}", dir_label(file)),
                manifest: img.manifest_digest,
                media_type: MANIFEST_OCI.into(),
                config: img.config.digest,
                layers: img.layers.into_iter().map(|l| l.digest).collect(),
            });
        }
        Ok(())
    }
}

/// A blob of a docker-archive: its OCI digest, where its bytes are, and its size.
#[derive(Debug, Clone)]
pub struct SavedBlob {
    /// `sha256:` digest of the bytes.
    pub digest: String,
    /// The byte range inside the archive.
    pub source: Source,
    /// Size.
    pub size: u64,
}

/// One image of a docker-archive (`docker save`), with the OCI image manifest synthesised for it. The kit
/// builder and the scanner both use this, so a saved image has one manifest digest everywhere.
#[derive(Debug, Clone)]
pub struct SavedImage {
    /// The first repo tag, or `FILE#index`.
    pub name: String,
    /// The config blob.
    pub config: SavedBlob,
    /// Layer blobs, bottom first (uncompressed tars).
    pub layers: Vec<SavedBlob>,
    /// The synthesised OCI manifest's bytes (compact JSON, fixed key order).
    pub manifest: Vec<u8>,
    /// Its digest.
    pub manifest_digest: String,
}

/// Reads every image of a docker-archive tar. Blobs stay in the archive (byte ranges); configs and layers
/// are hashed to get their OCI digests.
pub fn read_docker_archive(file: &Path) -> Result<Vec<SavedImage>, String> {
    use crate::tar_index::{Archive, Unresolved};
    // Entries by path, so blobs stream straight from the archive; names resolve through links inside it.
    let archive = Archive::read(file)?;
    let (manifest_at, manifest_len) = match archive.resolve("manifest.json", "'manifest.json'") {
        Ok(found) => found,
        Err(Unresolved::Missing(_)) => return Err("no manifest.json: not a docker-archive".into()),
        Err(Unresolved::Refused(why)) => return Err(why),
    };
    let mut manifest_json = Vec::new();
    archive
        .slice(manifest_at, manifest_len)
        .open()
        .and_then(|r| r.take(MAX_JSON).read_to_end(&mut manifest_json))
        .map_err(|e| format!("manifest.json: {e}"))?;
    let list: Value =
        serde_json::from_slice(&manifest_json).map_err(|e| format!("manifest.json: {e}"))?;
    let list = list
        .as_array()
        .ok_or("manifest.json is not a list of images")?;
    if list.is_empty() {
        return Err("manifest.json lists no image".into());
    }
    let slice = |name: &str| -> Result<(Source, u64), String> {
        let (offset, size) = archive
            .resolve(name, &format!("entry '{name}' named by manifest.json"))
            .map_err(Unresolved::into_message)?;
        Ok((archive.slice(offset, size), size))
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, img) in list.iter().enumerate() {
        let config_name = img
            .get("Config")
            .and_then(Value::as_str)
            .ok_or("image without Config")?;
        let (config_src, config_size) = slice(config_name)?;
        if config_size > MAX_JSON {
            return Err(format!("entry '{config_name}' is too large for a config"));
        }
        let config_bytes = config_src
            .read_all()
            .map_err(|e| format!("{config_name}: {e}"))?;
        let config = SavedBlob {
            digest: format!("sha256:{}", sha256_hex(&config_bytes)),
            source: config_src,
            size: config_size,
        };
        let mut layers = Vec::new();
        for l in img
            .get("Layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let lname = l.as_str().ok_or("layer name is not a string")?;
            let (src, size) = slice(lname)?;
            layers.push(SavedBlob {
                digest: format!("sha256:{}", hash_source(&src)?),
                source: src,
                size,
            });
        }
        let layer_descs: Vec<Value> = layers
            .iter()
            .map(|l| serde_json::json!({"mediaType": LAYER_OCI_TAR, "digest": l.digest, "size": l.size}))
            .collect();
        // The OCI manifest for the saved image, written deterministically (serde_json keeps key order).
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_OCI,
            "config": {"mediaType": CONFIG_OCI, "digest": config.digest, "size": config.size},
            "layers": layer_descs,
        });
        let bytes = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
        let name = img
            .get("RepoTags")
            .and_then(Value::as_array)
            .and_then(|t| t.first())
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}#{i}", dir_label(file)));
        out.push(SavedImage {
            name,
            manifest_digest: format!("sha256:{}", sha256_hex(&bytes)),
            manifest: bytes,
            config,
            layers,
        });
    }
    Ok(out)
}

fn hash_source(src: &Source) -> Result<String, String> {
    let mut h = crypto_profiles::Profile::new(crypto_profiles::ProfileId::Fips)
        .map_err(|e| e.to_string())?
        .hasher()
        .map_err(|e| e.to_string())?;
    let mut r = src.open().map_err(|e| e.to_string())?;
    std::io::copy(&mut r, &mut h).map_err(|e| e.to_string())?;
    Ok(h.finish().map_err(|e| e.to_string())?.hex())
}

fn dir_label(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn read_small(p: &Path) -> Result<Vec<u8>, String> {
    let f = File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut buf = Vec::new();
    f.take(MAX_JSON + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    if buf.len() as u64 > MAX_JSON {
        return Err(format!("{}: larger than {MAX_JSON} bytes", p.display()));
    }
    Ok(buf)
}

fn read_json_file(p: &Path) -> Result<Value, String> {
    serde_json::from_slice(&read_small(p)?).map_err(|e| format!("{}: {e}", p.display()))
}
