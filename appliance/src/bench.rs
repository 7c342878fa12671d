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
