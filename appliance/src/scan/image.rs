//! Where an image's manifest, config and layers come from: an OCI image layout, a docker-archive tar, or
//! blobs a kit brought into the store. Every blob is checked against its OCI digest as it is read.

use crate::store::{MetaStore, Store, Tree};
use serde_json::Value;
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

pub use kit_builder::source::Source as BlobSource;

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

    /// The uncompressed tar stream. Large gzip layers are inflated on several cores
    /// ([`super::gzip`]).
    pub fn tar_stream(&self) -> io::Result<Box<dyn TarStream>> {
        match self.compression()? {
            Compression::Gzip => super::gzip::open(&self.source),
            _ => self.tar_stream_serial(),
        }
    }

    /// The uncompressed tar stream, decompressed by one thread (zlib-rs for gzip): the reference the
    /// multi-core path is checked against, and its fallback.
    pub fn tar_stream_serial(&self) -> io::Result<Box<dyn TarStream>> {
        Ok(match self.compression()? {
            Compression::None => Box::new(Forward::new(io::BufReader::with_capacity(
                1 << 20,
                self.source.open()?,
            ))),
            Compression::Gzip => super::gzip::serial(&self.source)?,
            Compression::Zstd => {
                let raw = io::BufReader::with_capacity(1 << 20, self.source.open()?);
                pipelined(Box::new(zstd::stream::read::Decoder::with_buffer(raw)?))
            }
        })
    }
}

/// A layer's uncompressed tar: read, and skipped forward (`SeekFrom::Current` with a count of bytes
/// not below zero), so file bodies no analyser wants are passed over without being copied out.
pub trait TarStream: Read + Seek + Send {}

impl<T: Read + Seek + Send> TarStream for T {}

/// The error for any seek but a forward skip.
pub(super) fn forward_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a layer stream only skips forward",
    )
}

/// Makes a reader a [`TarStream`]: a skip reads and discards.
pub(super) struct Forward<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Forward<R> {
    pub(super) fn new(inner: R) -> Self {
        Forward { inner, pos: 0 }
    }
}

impl<R: Read> Read for Forward<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read> Seek for Forward<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match to {
            SeekFrom::Current(n) if n >= 0 => {
                let want = n as u64;
                let got = io::copy(&mut (&mut self.inner).take(want), &mut io::sink())?;
                self.pos += got;
                if got < want {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(self.pos)
            }
            _ => Err(forward_only()),
        }
    }
}

/// Size of the chunks a [`pipelined`] worker hands over.
const CHUNK: usize = 1 << 20;

/// Decompresses on a worker thread, handing 1 MiB chunks over a bounded channel, so inflating a layer
/// overlaps with parsing its tar and analysing its files. Chunk buffers go back to the worker once read,
/// so the stream allocates (and zeroes) a handful of them, not one per MiB.
pub(super) fn pipelined(mut inner: Box<dyn Read + Send>) -> Box<dyn TarStream> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(8);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || loop {
        let mut chunk = back_rx.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let mut filled = 0;
        let res = loop {
            match inner.read(&mut chunk[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == chunk.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        chunk.truncate(filled);
        let last = filled == 0 || res.is_err();
        let msg = res.map(|()| chunk);
        // A dropped receiver (the walker stopped early) ends the worker.
        if tx.send(msg).is_err() || last {
            return;
        }
    });
    Box::new(Pipelined {
        rx,
        back: back_tx,
        buf: Vec::new(),
        pos: 0,
        total: 0,
        done: false,
    })
}

struct Pipelined {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    back: std::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes read or skipped so far.
    total: u64,
    done: bool,
}

impl Pipelined {
    /// The unread bytes of the current chunk, the next chunk if it is used up; empty at the end.
    fn available(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.buf.len() && !self.done {
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.done = true,
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.buf, chunk);
                    // The worker may have finished already; then the buffer is simply dropped.
                    let _ = self.back.send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => self.done = true,
            }
        }
        Ok(&self.buf[self.pos..])
    }
}

impl Read for Pipelined {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let have = self.available()?;
        let n = out.len().min(have.len());
        out[..n].copy_from_slice(&have[..n]);
        self.pos += n;
        self.total += n as u64;
        Ok(n)
    }
}

impl Seek for Pipelined {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let SeekFrom::Current(n) = to else {
            return Err(forward_only());
        };
        let mut left = u64::try_from(n).map_err(|_| forward_only())?;
        while left > 0 {
            let have = self.available()?.len();
            if have == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(have);
            self.pos += n;
            self.total += n as u64;
            left -= n as u64;
        }
        Ok(self.total)
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
        "oci-layout" => {
            let (dir, pick) = selector(&path, Path::is_dir);
            open_layout(&dir, pick).map_err(err)
        }
        _ => {
            let (file, pick) = selector(&path, Path::is_file);
            open_docker_archive(&file, pick).map_err(err)
        }
    }
}

/// Which image of a layout or archive a spec names, as skopeo writes it: `PATH` (the default one),
/// `PATH:@N` (the N-th, from 0) or `PATH:REF` (a layout's `org.opencontainers.image.ref.name`, an
/// archive's first repo tag). `PATH` is the longest prefix before a `:` that `exists` says is there, so
/// paths with colons still work.
fn selector(spec: &Path, exists: fn(&Path) -> bool) -> (PathBuf, Option<String>) {
    let text = spec.to_string_lossy();
    if exists(spec) {
        return (spec.to_owned(), None);
    }
    text.match_indices(':')
        .map(|(i, _)| i)
        .rev()
        .find(|&i| exists(Path::new(&text[..i])))
        .map(|i| (PathBuf::from(&text[..i]), Some(text[i + 1..].to_owned())))
        .unwrap_or_else(|| (spec.to_owned(), None))
}

/// The position `pick` names among `names` (`@N`, or a name), or an error listing what there is.
fn position(pick: &str, names: &[String]) -> Result<usize, String> {
    let at = match pick.strip_prefix('@') {
        Some(n) => n.parse::<usize>().ok().filter(|&n| n < names.len()),
        None => names.iter().position(|n| n == pick),
    };
    at.ok_or_else(|| {
        let there: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("@{i} {n}"))
            .collect();
        format!("no image '{pick}' here; there are: {}", there.join(", "))
    })
}

fn label(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn open_layout(dir: &Path, pick: Option<String>) -> Result<Image, String> {
    let mut index: Value = serde_json::from_slice(
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
            Ok(BlobSource::Path(p))
        } else {
            Err(format!("blob {d} is missing"))
        }
    };
    const REF: &str = "/annotations/org.opencontainers.image.ref.name";
    let source = match &pick {
        Some(p) => format!("oci-layout:{}:{p}", dir.display()),
        None => format!("oci-layout:{}", dir.display()),
    };
    if let Some(p) = pick {
        // Only the chosen descriptor (an image, or an index to choose the platform from).
        let listed = index
            .get_mut("manifests")
            .and_then(Value::as_array_mut)
            .ok_or("index lists no manifests")?;
        let names: Vec<String> = listed
            .iter()
            .map(|d| {
                d.pointer(REF)
                    .and_then(Value::as_str)
                    .unwrap_or("(no ref)")
                    .to_owned()
            })
            .collect();
        let chosen = listed.swap_remove(position(&p, &names)?);
        *listed = vec![chosen];
    }
    let (digest, manifest) = pick_manifest(&index, &blob)?;
    let (config, layers) = layers_of(&manifest, &blob)?;
    let name = index
        .pointer(&format!("/manifests/0{REF}"))
        .and_then(Value::as_str)
        .map(|t| format!("{}:{t}", label(dir)))
        .unwrap_or_else(|| label(dir));
    Ok(Image {
        name,
        source,
        digest,
        config,
        layers,
    })
}

fn open_docker_archive(file: &Path, pick: Option<String>) -> Result<Image, String> {
    // The kit builder's reader, so a saved image has the same manifest digest in a kit and in a scan.
    let mut images = kit_builder::oci::read_docker_archive(file)?;
    let at = match &pick {
        None => 0,
        Some(p) => {
            let names: Vec<String> = images.iter().map(|i| i.name.clone()).collect();
            position(p, &names)?
        }
    };
    let source = match &pick {
        Some(p) => format!("docker-archive:{}:{p}", file.display()),
        None => format!("docker-archive:{}", file.display()),
    };
    let img = images.swap_remove(at);
    let layers = img
        .layers
        .into_iter()
        .map(|l| Layer {
            digest: l.digest,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            source: l.source,
        })
        .collect();
    Ok(Image {
        name: img.name,
        source,
        digest: img.manifest_digest,
        config: img.config.digest,
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
        Ok(BlobSource::Path(store.cas().path(alg, hex)))
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
