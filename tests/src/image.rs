//! Building test images by hand: plain tar layers (with whiteouts) and OCI image layouts, plus the
//! standard tools the tests use instead of linking more crates (`sha256sum`, `gzip -d`).

use serde_json::{json, Value};
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `program args` with `input` on standard input (fed from a thread, so a large output cannot block
/// it) and returns standard output.
pub fn pipe(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer thread").expect("write stdin");
    assert!(out.status.success(), "{program} failed");
    out.stdout
}

/// SHA-256 hex of bytes, by `sha256sum`.
pub fn sha256(b: &[u8]) -> String {
    String::from_utf8(pipe("sha256sum", &[], b))
        .expect("utf-8")
        .split_whitespace()
        .next()
        .expect("digest")
        .to_owned()
}

/// Decompresses gzip bytes with `gzip -dc` (the tests crate links no gzip decoder).
pub fn gunzip(gz: &[u8]) -> Vec<u8> {
    pipe("gzip", &["-dc"], gz)
}

/// A plain tar layer from (path, contents) pairs; `None` contents make a whiteout of that path.
pub fn layer(files: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let (path, data) = match content {
            Some(c) => (path.to_string(), c.to_vec()),
            None => {
                let (dir, name) = path.rsplit_once('/').expect("absolute path");
                (format!("{dir}/.wh.{name}"), Vec::new())
            }
        };
        let mut h = tar::Header::new_ustar();
        h.set_path(path.trim_start_matches('/')).expect("path");
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, &data[..]).expect("append");
    }
    b.into_inner().expect("tar")
}

/// Writes an OCI layout with one image of `layers` (optionally tagged); returns the manifest digest.
pub fn layout(dir: &Path, layers: &[Vec<u8>], tag: Option<&str>) -> String {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("blobs dir");
    let put = |b: &[u8]| -> String {
        let h = sha256(b);
        fs::write(blobs.join(&h), b).expect("blob");
        format!("sha256:{h}")
    };
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).to_string();
    let config_d = put(config.as_bytes());
    let descs: Vec<Value> = layers
        .iter()
        .map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": put(l), "size": l.len()}))
        .collect();
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config.len()}, "layers": descs})
    .to_string();
    let md = put(manifest.as_bytes());
    let mut desc = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len()});
    if let Some(tag) = tag {
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    }
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    fs::write(
        dir.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [desc]}).to_string(),
    )
    .expect("index.json");
    md
}
