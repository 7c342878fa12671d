//! `stella bench`: benchmarks that print tables. Targets live here, never in timed tests.

use crate::store::{Batch, MetaStore, Store};
use crate::vuln::{self, Ingest};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use kit_builder::bench::peak_rss_mib;

fn files(dir: &Path, ext: &[&str]) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| ext.contains(&x))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A deterministic generated OSV document: one of `pool` npm packages, a semver range.
fn generated_osv(i: u64, pool: u64) -> String {
    let pkg = i * 7919 % pool;
    let major = i % 9;
    format!(
        "{{\"id\":\"STELLA-GEN-{i:07}\",\"modified\":\"2026-11-01T00:00:00Z\",\"aliases\":[\"CVE-2026-{:07}\"],\
         \"summary\":\"generated advisory {i}\",\"affected\":[{{\"package\":{{\"ecosystem\":\"npm\",\"name\":\"gen-pkg-{pkg}\",\
         \"purl\":\"pkg:npm/gen-pkg-{pkg}\"}},\"ranges\":[{{\"type\":\"SEMVER\",\"events\":[{{\"introduced\":\"{major}.0.0\"}},\
         {{\"fixed\":\"{major}.{}.{}\"}}]}}]}}],\"severity\":[{{\"type\":\"CVSS_V3\",\"score\":\"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\"}}]}}",
        i + 100_000,
        i % 17 + 1,
        i % 5
    )
}

struct Row {
    name: String,
    docs: u64,
    parse_s: f64,
    ingest_s: f64,
}

fn ingest_all(
    store: &Store,
    docs: impl Iterator<Item = (String, Vec<u8>)>,
    kit: &str,
) -> Result<Row> {
    let mut parse_s = 0.0;
    let mut ingest_s = 0.0;
    let mut n = 0u64;
    let mut ingest = Ingest::default();
    let mut batch = Batch::default();
    let mut in_batch = 0;
    for (name, bytes) in docs {
        let t = Instant::now();
        let doc = match feeds::parse(&name, &bytes) {
            Ok(d) => d,
            Err(_) => continue,
        };
        parse_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let digest = format!("bench:{n}");
        ingest.add(
            store,
            &mut batch,
            &doc.observations,
            &digest,
            &name,
            kit,
            "2026-11-30T00:00:00Z",
        )?;
        in_batch += 1;
        if in_batch == 2000 {
            store.apply(std::mem::take(&mut batch))?;
            ingest.applied();
            in_batch = 0;
        }
        ingest_s += t.elapsed().as_secs_f64();
        n += 1;
    }
    let t = Instant::now();
    store.apply(batch)?;
    ingest_s += t.elapsed().as_secs_f64();
    Ok(Row {
        name: String::new(),
        docs: n,
        parse_s,
        ingest_s,
    })
}

/// Parse + ingest throughput on the real OSV corpora and `generated` synthetic documents, then matching of
/// 1,000 purls.
pub fn feeds(corpus: Option<&Path>, generated: u64, work: &Path) -> Result<String> {
    let mut out = String::new();
    writeln!(out, "# stella bench feeds: parse (feeds::parse) and ingest (append-only observations, alias and package indexes, sled)")?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<34} {:>8} {:>10} {:>12} {:>12} {:>12}",
        "input", "docs", "parse/s", "ingest/s", "both/s", "peak RSS MiB"
    )?;
    let _ = std::fs::remove_dir_all(work);
    let store = Store::open(work)?;
    let mut rows = Vec::new();
    if let Some(c) = corpus {
        for (label, dir, ext) in [
            (
                "osv/golang-vulndb (JSON)",
                "osv/golang-vulndb/data/osv",
                &["json"][..],
            ),
            (
                "osv/pypa-advisory-database (YAML)",
                "osv/pypa-advisory-database/vulns",
                &["yaml", "yml"][..],
            ),
        ] {
            let list = files(&c.join(dir), ext);
            if list.is_empty() {
                continue;
            }
            let docs = list.into_iter().filter_map(|p| {
                let name = p.file_name()?.to_string_lossy().into_owned();
                std::fs::read(&p).ok().map(|b| (name, b))
            });
            let mut r = ingest_all(&store, docs, label)?;
            r.name = label.into();
            rows.push(r);
        }
    }
    let pool = (generated / 40).max(100);
    let gen =
        (0..generated).map(|i| (format!("gen-{i}.json"), generated_osv(i, pool).into_bytes()));
    let mut r = ingest_all(&store, gen, "generated")?;
    r.name = format!("generated OSV ({generated})");
    rows.push(r);
    for r in &rows {
        writeln!(
            out,
            "{:<34} {:>8} {:>10.0} {:>12.0} {:>12.0} {:>12.0}",
            r.name,
            r.docs,
            r.docs as f64 / r.parse_s.max(1e-9),
            r.docs as f64 / r.ingest_s.max(1e-9),
            r.docs as f64 / (r.parse_s + r.ingest_s).max(1e-9),
            peak_rss_mib()
        )?;
    }
    // Matching: 1,000 purls drawn from the generated package pool, each against the whole store.
    let mut lat = Vec::with_capacity(1000);
    let mut hits = 0usize;
    let t = Instant::now();
    for i in 0..1000u64 {
        let purl = format!(
            "pkg:npm/gen-pkg-{}@{}.{}.{}",
            i * 31 % pool,
            i % 9,
            i % 19,
            i % 7
        );
        let p = feeds::matching::parse_purl(&purl).map_err(anyhow::Error::msg)?;
        let s = Instant::now();
        hits += vuln::affects(&store, &p)?.len();
        lat.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    let total = t.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    writeln!(out)?;
    writeln!(
        out,
        "matching 1,000 purls against {} statements: {:.0} purls/s, p50 {:.2} ms, p99 {:.2} ms, {hits} affected matches",
        store.scan(crate::store::Tree::Observations, b"head|")?.len(),
        1000.0 / total,
        lat[499],
        lat[989]
    )?;
    let _ = std::fs::remove_dir_all(work);
    Ok(out)
}

/// Import throughput of a generated kit of about `total` bytes, next to `zstd -d | sha256sum` on the same
/// file, with peak RSS.
pub fn import(total: u64, work: &Path) -> Result<String> {
    use kit_builder::bench::{generate_inputs, opt, ratio, shell_seconds};
    use kit_builder::clock::Timestamp;
    let inputs = work.join("inputs");
    let bytes: u64 = if inputs.is_dir() {
        files(&inputs, &["bin"])
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum()
    } else {
        generate_inputs(&inputs, total)?
    };
    let mib = bytes as f64 / 1048576.0;
    let profile = crypto_profiles::Profile::new(crypto_profiles::ProfileId::Fips)?;
    let key = crypto_profiles::PrivateKey::generate(&profile, None)?;
    let public = key.public_key().to_pem();
    let kit_path = work.join("bench-import.kit");
    let now = Timestamp(1_800_000_000);
    kit_builder::build::build(kit_builder::build::BuildRequest {
        channel: "bench".into(),
        sequence: 1,
        id: None,
        created: now,
        expires: Timestamp(now.0 + 86_400),
        signers: vec![(profile.clone(), key)],
        payloads: kit_builder::source::plan_files(
            &inputs,
            kit_builder::manifest::PayloadKind::File,
            "files",
        )?,
        images: Vec::new(),
        base: None,
        volume_size: None,
        recipients: Vec::new(),
        out: kit_path.clone(),
        level: 3,
        progress: false,
        validate_feed: kit_builder::cli::validate_feed,
    })?;
    let site_dir = work.join("site");
    let _ = std::fs::remove_dir_all(&site_dir);
    let rss_before = peak_rss_mib();
    let site = crate::site::Site::init(crate::site::InitRequest {
        root: site_dir.clone(),
        profile: crypto_profiles::ProfileId::Fips,
        kit_signers: vec![(work.join("signer.pub.pem"), public)],
        threshold: 1,
        age_identity: None,
        sm2_id: None,
        now,
    })?;
    let start = Instant::now();
    crate::import::import(
        &site,
        &crate::import::ImportRequest {
            input: kit_builder::read::KitInput::File(kit_path.clone()),
            force_reason: None,
            now,
            actor: "bench".into(),
            label: None,
        },
    )?;
    let ours = start.elapsed().as_secs_f64();
    let theirs = shell_seconds(&format!(
        "zstd -dc -q '{}' | sha256sum > /dev/null",
        kit_path.display()
    ));
    let mut out = String::new();
    writeln!(out, "# stella bench import: a {mib:.0} MiB generated kit (fips), imported into a fresh site (verify, stage with fsync, publish, commit)")?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<26} {:>9} {:>9} {:>26} {:>9} {:>9} {:>6}",
        "operation", "seconds", "MiB/s", "standard tool", "seconds", "MiB/s", "ratio"
    )?;
    writeln!(
        out,
        "{:<26} {:>9.2} {:>9.0} {:>26} {:>9} {:>9} {:>6}",
        "stella import",
        ours,
        mib / ours,
        "zstd -d | sha256sum",
        theirs.map_or("n/a".into(), |t| format!("{t:.2}")),
        opt(theirs.map(|t| mib / t)),
        ratio(mib / ours, theirs.map(|t| mib / t))
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "peak RSS of the benchmark process: {:.0} MiB (before the import: {rss_before:.0} MiB)",
        peak_rss_mib()
    )?;
    drop(site);
    let _ = std::fs::remove_dir_all(&site_dir);
    let _ = std::fs::remove_file(&kit_path);
    Ok(out)
}
