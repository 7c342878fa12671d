//! `stella bench console`: the console under `wrk` on loopback, with a store of 100,000 findings. Reports
//! p50/p95/p99 latency of the dashboard and of a filtered findings API call at a fixed request rate (the goal:
//! p95 ≤ 20 ms at 500 req/s on 2 cores), and the rate each reaches unpaced. `wrk` and the server share the
//! machine, as they would on an appliance.

use crate::scan::findings::Finding;
use crate::scan::ScanRecord;
use crate::site::{InitRequest, Site};
use crate::store::{Batch, MetaStore as _, Tree};
use crate::web::auth::{self, Role, Session, User};
use crate::web::{app, AppState};
use anyhow::{bail, Context as _, Result};
use crypto_profiles::{PrivateKey, Profile, ProfileId};
use kit_builder::clock::{Clock as _, SystemClock};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// Images in the generated store.
pub const IMAGES: usize = 100;
/// Findings per image.
pub const PER_IMAGE: usize = 1000;

const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "unknown"];

/// The Lua script: a fixed delay per connection paces the rate; `done` prints the percentiles wrk measured.
const SCRIPT: &str = r#"
local d = tonumber(os.getenv("STELLA_DELAY_MS") or "0")
wrk.headers["Cookie"] = os.getenv("STELLA_COOKIE")
wrk.headers["Authorization"] = os.getenv("STELLA_AUTH")
function delay() return d end
function done(summary, latency, requests)
  io.write(string.format("STELLA %d %d %d %d %d %d %d\n", latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"#;

fn populate(site: &Site, now: &str) -> Result<Vec<String>> {
    let mut digests = Vec::new();
    for i in 0..IMAGES {
        let digest = format!("sha256:{:064x}", i + 1);
        let rec = ScanRecord {
            digest: digest.clone(),
            name: format!("bench/image-{i}:1.0"),
            source: "generated".into(),
            config: format!("sha256:{:064x}", 1_000_000 + i),
            layers: Vec::new(),
            os: None,
            packages: Vec::new(),
            scanned: now.into(),
            errors: Vec::new(),
        };
        let mut b = Batch::default();
        b.put_json(Tree::Sboms, digest.as_bytes(), &rec);
        for j in 0..PER_IMAGE {
            let f = Finding {
                vulnerability: format!("CVE-2026-{:05}", j),
                ids: vec![format!("CVE-2026-{:05}", j), format!("GHSA-bench-{j:04}")],
                purl: format!("pkg:npm/bench-package-{}@1.{}.0", j % 300, j % 7),
                package: format!("bench-package-{}", j % 300),
                version: format!("1.{}.0", j % 7),
                path: format!("/app/node_modules/bench-package-{}/package.json", j % 300),
                cvss: Some((j % 100) as f64 / 10.0),
                severity: SEVERITIES[j % SEVERITIES.len()].into(),
                kev: j % 50 == 0,
                fixed: if j % 3 == 0 {
                    Vec::new()
                } else {
                    vec![format!("1.{}.1", j % 7)]
                },
                verdicts: Vec::new(),
                conflicts: usize::from(j % 20 == 0),
            };
            b.put_json(
                Tree::Findings,
                format!("{digest}|{}|{}", f.vulnerability, f.purl),
                &f,
            );
        }
        site.store.apply(b)?;
        digests.push(digest);
    }
    Ok(digests)
}

struct Row {
    what: String,
    rate: String,
    achieved: f64,
    p: [f64; 4],
    errors: u64,
}

fn wrk(
    url: &str,
    cookie: &str,
    token: &str,
    connections: u32,
    delay_ms: u64,
    seconds: u32,
    work: &Path,
) -> Result<(f64, [f64; 4], u64)> {
    let script = work.join("pace.lua");
    std::fs::write(&script, SCRIPT)?;
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .env("STELLA_DELAY_MS", delay_ms.to_string())
        .env(
            "STELLA_COOKIE",
            format!("{}={cookie}", auth::SESSION_COOKIE),
        )
        .env("STELLA_AUTH", format!("Bearer {token}"))
        .output()
        .context("running wrk (Debian package `wrk`; `make bench` installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find(|l| l.starts_with("STELLA ")) else {
        bail!(
            "wrk printed no summary: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let v: Vec<f64> = line[7..]
        .split(' ')
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() != 7 {
        bail!("unexpected wrk summary '{line}'");
    }
    let us = |x: f64| x / 1000.0;
    let rate = v[4] / (v[5] / 1e6);
    Ok((rate, [us(v[0]), us(v[1]), us(v[2]), us(v[3])], v[6] as u64))
}

/// Runs the benchmark in `work` and returns the table.
pub fn run(work: &Path, rate: u32, seconds: u32) -> Result<String> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed (Debian package `wrk`; `make bench` installs it)");
    }
    let root = work.join("site");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(work)?;
    let now = SystemClock.now();
    let profile = Profile::new(ProfileId::Fips)?;
    let signer = PrivateKey::generate(&profile, None)?;
    let site = Site::init(InitRequest {
        root: root.clone(),
        profile: ProfileId::Fips,
        kit_signers: vec![(root.join("signer.pub"), signer.public_key().to_pem())],
        threshold: 1,
        age_identity: None,
        sm2_id: None,
        now,
    })?;
    let t0 = std::time::Instant::now();
    let digests = populate(&site, &now.to_string())?;
    let populate_s = t0.elapsed().as_secs_f64();
    // A signed-in admin (session cookie) for the page, an API token for the API.
    let user = User {
        name: "bench".into(),
        role: Role::Admin,
        hash: auth::hash_password("bench password not used")
            .map_err(|e| anyhow::anyhow!(e.message))?,
        created: now.to_string(),
        must_change: false,
        disabled: false,
    };
    let cookie = auth::random_secret().map_err(|e| anyhow::anyhow!(e.message))?;
    let token = format!(
        "stk_{}",
        auth::random_secret().map_err(|e| anyhow::anyhow!(e.message))?
    );
    let mut b = Batch::default();
    b.put_json(Tree::Users, "bench", &user);
    b.put_json(
        Tree::Sessions,
        auth::sha256_hex(cookie.as_bytes()),
        &Session {
            user: "bench".into(),
            csrf: "unused".into(),
            created: now.0,
            expires: now.0 + 86_400,
        },
    );
    b.put_json(
        Tree::Tokens,
        auth::sha256_hex(token.as_bytes()),
        &auth::ApiToken {
            id: "bench".into(),
            name: "bench".into(),
            user: "bench".into(),
            role: Role::Admin,
            created: now.to_string(),
            expires: None,
        },
    );
    site.store.apply(b)?;
    let findings = site.store.count(Tree::Findings, b"")?;

    // The server on a loopback port of its own, two workers, in this process.
    let state = actix_web::web::Data::new(AppState::new(site, Arc::new(|| SystemClock.now())));
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        actix_web::rt::System::new().block_on(async move {
            let srv = actix_web::HttpServer::new(move || app(state.clone()))
                .workers(2)
                .bind(("127.0.0.1", 0))?;
            let port = srv.addrs().first().map(|a| a.port()).unwrap_or(0);
            let running = srv.run();
            let _ = tx.send((port, running.handle()));
            running.await
        })
    });
    let (port, handle) = rx.recv().context("server did not start")?;
    let base = format!("http://127.0.0.1:{port}");
    let targets = [
        ("dashboard `GET /`", format!("{base}/")),
        (
            "findings API, 1 of 100 images, `severity=high`",
            format!(
                "{base}/api/v1/images/{}/findings?severity=high",
                digests[IMAGES / 2]
            ),
        ),
    ];
    let mut rows = Vec::new();
    // Connections × (1000 / delay) ≈ the rate; latency adds to each cycle, so the achieved rate is reported.
    let connections = 50u32;
    let delay = u64::from(connections) * 1000 / u64::from(rate.max(1));
    for (what, url) in &targets {
        // Warm up (the dashboard computes its aggregates over every finding once, then serves the cache).
        wrk(url, &cookie, &token, 2, 0, 2, work)?;
        let (achieved, p, errors) = wrk(url, &cookie, &token, connections, delay, seconds, work)?;
        rows.push(Row {
            what: what.to_string(),
            rate: format!("{rate}/s paced"),
            achieved,
            p,
            errors,
        });
        let (achieved, p, errors) = wrk(url, &cookie, &token, 20, 0, seconds, work)?;
        rows.push(Row {
            what: what.to_string(),
            rate: "unpaced, 20 connections".into(),
            achieved,
            p,
            errors,
        });
    }
    actix_web::rt::System::new().block_on(handle.stop(true));
    let _ = server.join();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "Console under wrk on 127.0.0.1 (2 server workers, wrk 1 thread, same machine): {findings} findings \
         in {IMAGES} images (generated in {populate_s:.1} s), {seconds} s per run, release build.\n"
    );
    let _ = writeln!(
        out,
        "| endpoint | load | achieved req/s | p50 ms | p95 ms | p99 ms | max ms | errors | p95 goal 20 ms |"
    );
    let _ = writeln!(
        out,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for r in rows {
        let goal = if r.rate.contains("paced") && !r.rate.contains("unpaced") {
            if r.p[1] <= 20.0 {
                "met"
            } else {
                "MISSED"
            }
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {goal} |",
            r.what, r.rate, r.achieved, r.p[0], r.p[1], r.p[2], r.p[3], r.errors
        );
    }
    Ok(out)
}
