//! `stella demo`: a first five minutes on a fresh machine. Creates a demo site (once), builds a demo kit
//! with the kit-builder library from the third-party corpus when it is present (else from the small sample
//! shipped in `appliance/demo/`), and imports it through the normal import path. A second run reuses the
//! site and its kit.

use crate::import::{self, ImportRequest};
use crate::site::{InitRequest, Site};
use crate::store::{MetaStore, Tree};
use anyhow::{Context as _, Result};
use crypto_profiles::{PrivateKey, Profile, ProfileId};
use kit_builder::clock::Timestamp;
use kit_builder::manifest::PayloadKind;
use std::path::{Path, PathBuf};

/// The channel demo kits use.
pub const DEMO_CHANNEL: &str = "demo";

/// The sample feeds compiled into the binary, so the sealed image has them without any file.
const SHIPPED_FEEDS: [(&str, &[u8]); 5] = [
    (
        "STELLA-DEMO-0001.json",
        include_bytes!("../demo/feeds/STELLA-DEMO-0001.json"),
    ),
    (
        "STELLA-DEMO-0002.json",
        include_bytes!("../demo/feeds/STELLA-DEMO-0002.json"),
    ),
    (
        "STELLA-DEMO-0003.json",
        include_bytes!("../demo/feeds/STELLA-DEMO-0003.json"),
    ),
    // Two sources about one musl flaw of the corpus's Alpine 3.10 image that disagree on the fixed version
    // and the severity: the demo shows a finding and a conflict, side by side, not merged.
    (
        "STELLA-DEMO-0004.json",
        include_bytes!("../demo/feeds/STELLA-DEMO-0004.json"),
    ),
    (
        "MIRRORDEMO-2026-0004.json",
        include_bytes!("../demo/feeds/MIRRORDEMO-2026-0004.json"),
    ),
];

/// Prepares the demo site under `root` and makes sure a demo kit is imported. Returns what happened.
pub fn run(root: &Path, corpus: Option<&Path>, now: Timestamp) -> Result<Vec<String>> {
    let mut log = Vec::new();
    let signer_dir = root.join("demo-kit-signer");
    let key_path = signer_dir.join("kit-signer.key.pem");
    let site = if root.join("site.toml").exists() {
        log.push(format!("reusing the site at {}", root.display()));
        Site::open(root)?
    } else {
        // Demo only: a real kit-signer key never lives on the appliance; it stays on the connected side.
        let profile = Profile::new(ProfileId::Fips)?;
        let key = PrivateKey::generate(&profile, None)?;
        std::fs::create_dir_all(&signer_dir)
            .with_context(|| format!("{}: cannot create", signer_dir.display()))?;
        let pem = key.to_pkcs8_pem(None)?;
        kit_builder::files::write_atomic(&key_path, pem.as_bytes(), 0o600, false)
            .with_context(|| format!("{}: cannot write", key_path.display()))?;
        let site = Site::init(InitRequest {
            root: root.to_owned(),
            profile: ProfileId::Fips,
            kit_signers: vec![(key_path.clone(), key.public_key().to_pem())],
            threshold: 1,
            age_identity: None,
            sm2_id: None,
            now,
        })?;
        log.push(format!(
            "created a demo site at {} (profile fips)",
            root.display()
        ));
        // Demo only: the first admin's one-time secret is kept beside the demo kit-signer key so a second
        // `make run` can print it again. A real site prints it once (`stella init`) and keeps only its hash.
        if let Some(secret) = crate::web::auth::bootstrap_admin(&site.store, now)
            .map_err(|e| anyhow::anyhow!("creating the first admin: {}", e.message))?
        {
            let p = signer_dir.join("admin-secret");
            kit_builder::files::write_atomic(&p, secret.as_bytes(), 0o600, true)
                .with_context(|| format!("{}: cannot write", p.display()))?;
        }
        site
    };
    if let Ok(secret) = std::fs::read_to_string(signer_dir.join("admin-secret")) {
        log.push(format!(
            "console user 'admin', one-time secret {} (demo only: kept in {}; once you chose a password, use yours)",
            secret.trim(),
            signer_dir.join("admin-secret").display()
        ));
    }
    import::recover(&site)?;
    let imported = site
        .store
        .get(Tree::Channels, DEMO_CHANNEL.as_bytes())?
        .is_some();
    if imported {
        log.push("the demo kit is already imported".into());
        return Ok(log);
    }
    let kit_path = root.join("demo-kit-signer/demo.kit");
    let (payloads, images, source) = demo_inputs(corpus, Some(&signer_dir))?;
    let pem = std::fs::read(&key_path).with_context(|| {
        format!(
            "{}: cannot read the demo kit-signer key",
            key_path.display()
        )
    })?;
    let key = PrivateKey::from_pem(&pem, None)?;
    let report = kit_builder::build::build(kit_builder::build::BuildRequest {
        channel: DEMO_CHANNEL.into(),
        sequence: 1,
        id: None,
        created: now,
        expires: Timestamp(now.0 + 30 * 86_400),
        signers: vec![(site.profile.clone(), key)],
        payloads,
        images,
        base: None,
        volume_size: None,
        recipients: Vec::new(),
        out: kit_path.clone(),
        level: 3,
        progress: false,
        validate_feed: kit_builder::cli::validate_feed,
    })?;
    log.push(format!(
        "built demo kit {} from {source}: {} payloads",
        kit_path.display(),
        report.manifest.payloads.len()
    ));
    let receipt = import::import(
        &site,
        &ImportRequest {
            input: kit_builder::read::KitInput::File(kit_path),
            force_reason: None,
            now,
            actor: "demo".into(),
            label: None,
        },
    )?;
    for img in &report.manifest.images {
        match crate::scan::scan(&site.store, &img.manifest, &now.to_string()) {
            Ok(r) => {
                let _ = crate::scan::findings::reevaluate(
                    &site.store,
                    "scan",
                    &now.to_string(),
                    Some(&r.record.digest),
                );
                log.push(format!(
                    "scanned image {} ({}): {} packages",
                    r.record.name,
                    r.record.digest,
                    r.record.packages.len()
                ));
            }
            Err(e) => log.push(format!("could not scan image {}: {e}", img.name)),
        }
    }
    log.push(format!(
        "imported kit '{}' (receipt {}): {} feed documents, {} images",
        receipt.receipt.kit.as_deref().unwrap_or("?"),
        receipt.receipt.number,
        receipt
            .receipt
            .counts
            .get("feed_documents")
            .copied()
            .unwrap_or(0),
        receipt.receipt.counts.get("images").copied().unwrap_or(0)
    ));
    Ok(log)
}

type Inputs = (
    Vec<kit_builder::source::Planned>,
    Vec<kit_builder::manifest::ImageRef>,
    String,
);

fn demo_inputs(corpus: Option<&Path>, work: Option<&Path>) -> Result<Inputs> {
    let mut payloads: Vec<kit_builder::source::Planned> = SHIPPED_FEEDS
        .iter()
        .map(|(name, bytes)| kit_builder::source::Planned {
            name: format!("feeds/stella-demo/{name}"),
            kind: PayloadKind::Feed,
            media_type: "application/json".into(),
            source: kit_builder::source::Source::Memory((*bytes).into()),
            oci_digest: None,
        })
        .collect();
    let mut images = kit_builder::oci::Images::default();
    let mut source = "the sample shipped in appliance/demo".to_owned();
    if let Some(dir) = work {
        let fixture = fixture_image(dir)?;
        images.add(&format!("docker-archive:{}", fixture.display()))?;
    }
    if let Some(c) = corpus.filter(|c| c.is_dir()) {
        let go = c.join("osv/golang-vulndb/data/osv");
        if go.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&go)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort();
            for f in files.iter().rev().take(400) {
                payloads.extend(kit_builder::source::plan_files(
                    f,
                    PayloadKind::Feed,
                    "feeds/golang-vulndb",
                )?);
            }
        }
        // The Alpine 3.10 image ships gzip-compressed; unpack it next to the demo kit.
        let alpine = c.join("images/trivy/alpine-310.docker-archive.tar.gz");
        if let (true, Some(dir)) = (alpine.is_file(), work) {
            let tar = dir.join("alpine-310.docker-archive.tar");
            if !tar.is_file() {
                let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(&alpine)?);
                let mut outf = std::fs::File::create(&tar)?;
                std::io::copy(&mut gz, &mut outf)?;
            }
            images.add(&format!("docker-archive:{}", tar.display()))?;
        }
        for img in [
            "images/go-containerregistry/pkg/v1/tarball/testdata/test_image_1.tar",
            "images/go-containerregistry/pkg/v1/layout/testdata/test_index_one_image",
        ] {
            let p = c.join(img);
            if p.exists() {
                images.add(&p.display().to_string())?;
            }
        }
        source = format!("the corpus at {}", c.display());
    }
    payloads.extend(images.blobs.into_values());
    Ok((payloads, images.refs, source))
}

/// Files of the demo fixture image: a Debian base layer with a dpkg database, and an application layer with
/// an npm package and a Python distribution. Each package is one the shipped demo advisories affect, so the
/// demo shows findings even where the corpus is absent.
const FIXTURE_LAYERS: [&[(&str, &str)]; 2] = [
    &[
        (
            "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n\
             VERSION_CODENAME=bookworm\nID=debian\n",
        ),
        (
            "var/lib/dpkg/status",
            "Package: libexample\nStatus: install ok installed\nPriority: optional\nSection: libs\n\
             Installed-Size: 120\nMaintainer: Stella Ops demo <demo@example.invalid>\nArchitecture: amd64\n\
             Version: 1.2.3-1\nDescription: demo library (synthetic)\n\n\
             Package: example-tools\nStatus: install ok installed\nPriority: optional\nSection: utils\n\
             Installed-Size: 40\nMaintainer: Stella Ops demo <demo@example.invalid>\nArchitecture: amd64\n\
             Source: libexample\nVersion: 1.2.3-1\nDescription: demo tools (synthetic)\n",
        ),
    ],
    &[
        (
            "app/node_modules/example-archive/package.json",
            "{\"name\": \"example-archive\", \"version\": \"2.3.0\", \"license\": \"MIT\"}\n",
        ),
        (
            "usr/lib/python3/dist-packages/example_parser-1.5.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: example-parser\nVersion: 1.5.0\nLicense: Apache-2.0\n",
        ),
    ],
];

/// A tar of regular files with fixed metadata (deterministic bytes).
fn tar_of<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Result<Vec<u8>> {
    let mut t = tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, path, body)?;
    }
    Ok(t.into_inner()?)
}

/// Writes the demo fixture image as a docker-archive (deterministic bytes) and returns its path.
fn fixture_image(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("stella-demo-app.docker-archive.tar");
    let sha = crate::web::auth::sha256_hex;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_names = Vec::new();
    for (i, files) in FIXTURE_LAYERS.iter().enumerate() {
        let layer = tar_of(files.iter().map(|(p, b)| (*p, b.as_bytes())))?;
        diff_ids.push(format!("sha256:{}", sha(&layer)));
        let name = format!("layer{i}.tar");
        layer_names.push(name.clone());
        entries.push((name, layer));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))?;
    let config_name = format!("{}.json", sha(&config));
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["stella-demo/app:1.0"],
        "Layers": layer_names,
    }]))?;
    entries.push((config_name, config));
    entries.push(("manifest.json".into(), manifest));
    let archive = tar_of(entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())))?;
    kit_builder::files::write_atomic(&path, &archive, 0o644, true)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(path)
}
