//! Where an image's manifest, config and layers come from: an OCI image layout, a docker-archive tar, or
//! blobs a kit brought into the store. Every blob is checked against its OCI digest as it is read.

use crate::store::{MetaStore, Store, Tree};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// An image could not be opened.
#[derive(Debug, Error)]
#[error("image '{input}': {reason}")]
pub struct ImageError {
    /// The input as given.
    pub input: String,
    /// What is wrong.
    pub reason: String,
}

/// How a layer's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// Where a blob's bytes are.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// A whole file.
    File(PathBuf),
    /// A range of a file (docker-archive entry).
    Slice(PathBuf, u64, u64),
}

impl BlobSource {
    /// Opens the bytes.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            BlobSource::File(p) => Box::new(File::open(p)?),
            BlobSource::Slice(p, off, len) => {
                let mut f = File::open(p)?;
                f.seek(SeekFrom::Start(*off))?;
                Box::new(f.take(*len))
            }
        })
    }
}

/// A layer to analyse.
#[derive(Debug, Clone)]
pub struct Layer {
    /// OCI digest of the blob as stored (compressed).
    pub digest: String,
    /// Media type.
    pub media_type: String,
    /// Where its bytes are.
    pub source: BlobSource,
}

impl Layer {
    /// Compression, from the media type or the first bytes.
    pub fn compression(&self) -> io::Result<Compression> {
        if self.media_type.ends_with("+gzip")
            || self.media_type.ends_with(".gzip")
            || self.media_type.contains("tar.gzip")
        {
            return Ok(Compression::Gzip);
        }
        if self.media_type.ends_with("+zstd") {
            return Ok(Compression::Zstd);
        }
        let mut head = [0u8; 4];
        let mut r = self.source.open()?;
        let n = r.read(&mut head)?;
        Ok(match &head[..n] {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
            _ => Compression::None,
        })
    }

    /// The uncompressed tar stream.
    pub fn tar_stream(&self) -> io::Result<Box<dyn Read + Send>> {
        let raw = io::BufReader::with_capacity(1 << 20, self.source.open()?);
        Ok(match self.compression()? {
            Compression::None => Box::new(raw),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
        })
    }
}

/// An opened image.
#[derive(Debug, Clone)]
pub struct Image {
    /// A name for people.
    pub name: String,
    /// Where it came from (`oci-layout:…`, `docker-archive:…`, `kit:<kit id>`).
    pub source: String,
    /// The manifest's OCI digest (for docker-archives: of the OCI manifest synthesised from it).
    pub digest: String,
    /// The config blob's digest.
    pub config: String,
    /// Layers, bottom first.
    pub layers: Vec<Layer>,
}

fn sha256_hex(data: &[u8]) -> String {
    crypto_profiles::digest_with(crypto_profiles::DigestAlg::Sha256, data)
        .map(|d| d.hex())
        .unwrap_or_default()
}

fn read_small(src: &BlobSource, what: &str) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    src.open()
        .and_then(|r| r.take(8 << 20).read_to_end(&mut buf))
        .map_err(|e| format!("{what}: {e}"))?;
    Ok(buf)
}

fn pick_manifest(
    index: &Value,
    blob: &dyn Fn(&str) -> Result<BlobSource, String>,
) -> Result<(String, Value), String> {
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or("index lists no manifests")?;
    // Prefer linux/amd64, else the first image manifest; descend into nested indexes.
    let mut ordered: Vec<&Value> = manifests.iter().collect();
    ordered.sort_by_key(|d| {
        let os = d
            .pointer("/platform/os")
            .and_then(Value::as_str)
            .unwrap_or("linux");
        let arch = d
            .pointer("/platform/architecture")
            .and_then(Value::as_str)
            .unwrap_or("amd64");
        !(os == "linux" && arch == "amd64")
    });
    for d in ordered {
        let digest = d
            .get("digest")
            .and_then(Value::as_str)
            .ok_or("descriptor without digest")?;
        let media = d
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Ok(src) = blob(digest) else { continue };
        let bytes = read_small(&src, digest)?;
        if Some(sha256_hex(&bytes).as_str()) != digest.strip_prefix("sha256:") {
            return Err(format!("blob {digest} does not match its digest"));
        }
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{digest}: {e}"))?;
        let media = if media.is_empty() {
            doc.get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        } else {
            media.to_owned()
        };
        if media.contains("index") || media.contains("manifest.list") {
            if let Ok(found) = pick_manifest(&doc, blob) {
                return Ok(found);
            }
        } else if doc.get("layers").is_some() {
            return Ok((digest.to_owned(), doc));
        }
    }
    Err("no image manifest found".into())
}

fn layers_of(
    manifest: &Value,
    blob: &dyn Fn(&str) -> Result<BlobSource, String>,
) -> Result<(String, Vec<Layer>), String> {
    let config = manifest
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .ok_or("manifest without config")?
        .to_owned();
    let mut layers = Vec::new();
    for l in manifest
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let digest = l
            .get("digest")
            .and_then(Value::as_str)
            .ok_or("layer without digest")?
            .to_owned();
        let media_type = l
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        layers.push(Layer {
            source: blob(&digest)?,
            digest,
            media_type,
        });
    }
    Ok((config, layers))
}

/// Opens `oci-layout:DIR`, `docker-archive:FILE`, a plain path whose kind is detected, or the digest of
/// an image a kit brought in (`sha256:…`).
pub fn open(spec: &str, store: &Store) -> Result<Image, ImageError> {
    let err = |reason: String| ImageError {
        input: spec.to_owned(),
        reason,
    };
    if spec.starts_with("sha256:") {
        return open_from_store(spec, store).map_err(err);
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
                return Err(err(
                    "not an OCI layout directory, a docker-archive file, or an image digest".into(),
                ));
            }
        }
    };
    match kind {
        "oci-layout" => open_layout(&path).map_err(err),
        _ => open_docker_archive(&path).map_err(err),
    }
}

fn label(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn open_layout(dir: &Path) -> Result<Image, String> {
    let index: Value = serde_json::from_slice(
        &std::fs::read(dir.join("index.json")).map_err(|e| format!("index.json: {e}"))?,
    )
    .map_err(|e| format!("index.json: {e}"))?;
    let blob = |d: &str| -> Result<BlobSource, String> {
        let hex = d
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| format!("unsupported digest '{d}'"))?;
        let p = dir.join("blobs/sha256").join(hex);
        if p.is_file() {
            Ok(BlobSource::File(p))
        } else {
            Err(format!("blob {d} is missing"))
        }
    };
    let (digest, manifest) = pick_manifest(&index, &blob)?;
    let (config, layers) = layers_of(&manifest, &blob)?;
    let name = index
        .pointer("/manifests/0/annotations/org.opencontainers.image.ref.name")
        .and_then(Value::as_str)
        .map(|t| format!("{}:{t}", label(dir)))
        .unwrap_or_else(|| label(dir));
    Ok(Image {
        name,
        source: format!("oci-layout:{}", dir.display()),
        digest,
        config,
        layers,
    })
}

fn open_docker_archive(file: &Path) -> Result<Image, String> {
    let f = File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut archive = tar::Archive::new(f);
    let mut entries: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut manifest_json = None;
    for e in archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?
    {
        let mut e = e.map_err(|e| format!("corrupt tar archive: {e}"))?;
        if !e.header().entry_type().is_file() {
            continue;
        }
        let path = e
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        if path == "manifest.json" {
            let mut buf = Vec::new();
            (&mut e)
                .take(8 << 20)
                .read_to_end(&mut buf)
                .map_err(|e| e.to_string())?;
            manifest_json = Some(buf);
        }
        entries.insert(path, (e.raw_file_position(), e.size()));
    }
    let list: Value =
        serde_json::from_slice(&manifest_json.ok_or("no manifest.json: not a docker-archive")?)
            .map_err(|e| format!("manifest.json: {e}"))?;
    let img = list
        .as_array()
        .and_then(|a| a.first())
        .ok_or("manifest.json lists no image")?;
    let slice = |name: &str| -> Result<BlobSource, String> {
        let (off, len) = entries
            .get(name)
            .ok_or_else(|| format!("entry '{name}' is missing"))?;
        Ok(BlobSource::Slice(file.to_owned(), *off, *len))
    };
    let config_name = img
        .get("Config")
        .and_then(Value::as_str)
        .ok_or("image without Config")?;
    let config_bytes = read_small(&slice(config_name)?, config_name)?;
    let config = format!("sha256:{}", sha256_hex(&config_bytes));
    let mut layers = Vec::new();
    let mut descs = Vec::new();
    for l in img
        .get("Layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = l.as_str().ok_or("layer name is not a string")?;
        let src = slice(name)?;
        let mut h = crypto_profiles::Profile::new(crypto_profiles::ProfileId::Fips)
            .map_err(|e| e.to_string())?
            .hasher()
            .map_err(|e| e.to_string())?;
        let size = io::copy(&mut src.open().map_err(|e| e.to_string())?, &mut h)
            .map_err(|e| e.to_string())?;
        let digest = format!("sha256:{}", h.finish().map_err(|e| e.to_string())?.hex());
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}));
        layers.push(Layer {
            digest,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            source: src,
        });
    }
    // The same synthesised manifest the kit builder writes, so a docker-archive has one digest everywhere.
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_bytes.len()},
        "layers": descs,
    });
    let digest = format!(
        "sha256:{}",
        sha256_hex(&serde_json::to_vec(&manifest).unwrap_or_default())
    );
    let name = img
        .get("RepoTags")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| label(file));
    Ok(Image {
        name,
        source: format!("docker-archive:{}", file.display()),
        digest,
        config,
        layers,
    })
}

/// An image a kit imported: its blobs are in the store under the site digest, found through the OCI-name
/// index the import wrote.
fn open_from_store(digest: &str, store: &Store) -> Result<Image, String> {
    let rec: Value = store
        .get_json(Tree::Images, digest.as_bytes())
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no imported image has manifest digest {digest}"))?;
    let blob = |d: &str| -> Result<BlobSource, String> {
        let site: String = store
            .get_json(Tree::Images, format!("blob|{d}").as_bytes())
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("blob {d} of the image is not in the store"))?;
        let (alg, hex) = site.split_once('/').ok_or("corrupt blob index")?;
        Ok(BlobSource::File(store.cas().path(alg, hex)))
    };
    let manifest_bytes = read_small(&blob(digest)?, digest)?;
    let manifest: Value =
        serde_json::from_slice(&manifest_bytes).map_err(|e| format!("{digest}: {e}"))?;
    let (config, layers) = layers_of(&manifest, &blob)?;
    Ok(Image {
        name: rec
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(digest)
            .to_owned(),
        source: format!(
            "kit:{}",
            rec.get("kit").and_then(Value::as_str).unwrap_or("?")
        ),
        digest: digest.to_owned(),
        config,
        layers,
    })
}
