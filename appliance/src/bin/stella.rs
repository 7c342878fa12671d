//! `stella`: the appliance's command line. Thin glue over the `appliance` library.

use anyhow::{Context as _, Result};
use appliance::import::{self, ImportRequest};
use appliance::site::{self, InitRequest, Site};
use clap::{Parser, Subcommand};
use crypto_profiles::ProfileId;
use kit_builder::clock::{Clock as _, SystemClock, Timestamp};
use kit_builder::exit::{classify, render, ExitStatus};
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "stella",
    version,
    about = "Stella Ops appliance: sealed, offline release control plane"
)]
struct Cli {
    /// Data directory (default: $STELLA_DATA, else /var/lib/stella).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the site: config, the appliance's signing key, the trusted kit-signer set.
    Init {
        /// Crypto profile: fips, eidas, gost or sm.
        #[arg(long)]
        profile: ProfileId,
        /// Trusted kit-signer public key (SPKI PEM); repeat for several.
        #[arg(long = "kit-signer", required = true)]
        kit_signers: Vec<PathBuf>,
        /// How many kit signers must sign a kit.
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// age identity for encrypted kits (copied into the site).
        #[arg(long)]
        age_identity: Option<PathBuf>,
        /// SM2 distinguishing ID (profile sm).
        #[arg(long)]
        sm2_id: Option<String>,
    },
    /// Console users: list them, or give one a new one-time secret (recovery when no admin can sign in).
    #[command(subcommand)]
    User(UserCommand),
    /// Serve the local web console and REST API (loopback by default).
    Serve {
        /// Address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
    /// Import a kit (or its volumes, in any order), several kits (each whole or not at all, a delta after
    /// its base), or watch a directory for kits.
    Import {
        /// The kit, several kits, or the volumes (and index) of one split kit.
        #[arg(required_unless_present = "watch")]
        kit: Vec<PathBuf>,
        /// Accept a sequence at or below the channel's high-water mark; needs --reason and is audited.
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why the import is forced.
        #[arg(long)]
        reason: Option<String>,
        /// Watch this directory (a removable-media mount point): import each new kit once.
        #[arg(long, conflicts_with = "kit")]
        watch: Option<PathBuf>,
        /// With --watch: scan once and exit.
        #[arg(long)]
        once: bool,
        /// With --watch: seconds between scans.
        #[arg(long, default_value_t = 2)]
        interval: u64,
        /// JSON output (the signed receipt).
        #[arg(long)]
        json: bool,
    },
    /// List imported kits, or quarantined ones.
    Kits {
        /// Rejected imports and why.
        #[arg(long)]
        quarantine: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Profile, kit-signer set, channel high-water marks, data freshness.
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every blob and check every reference and the audit chain.
    Fsck {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Vulnerability knowledge: linksets of every source's statements.
    #[command(subcommand)]
    Vuln(VulnCommand),
    /// Feed sources: statements, documents, newest data, staleness.
    Feeds {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Dump the store's knowledge trees and blob listing as JSON (receipts, audit and quarantine only with
    /// --all; credentials never), to compare states before and after an operation.
    Dump {
        /// Include the record trees (receipts, audit, quarantine).
        #[arg(long)]
        all: bool,
    },
    /// Prepare a demo site with a demo kit imported (once), then show its status.
    Demo {
        /// Third-party corpus to build the demo kit from (default ../shared/corpus when present).
        #[arg(long)]
        corpus: Option<PathBuf>,
    },
    /// Scan an image (oci-layout:DIR[:@N|:REF], docker-archive:FILE[:@N|:NAME:TAG], a path, or the digest
    /// of an image a kit brought); layers seen before are not analysed again.
    Scan {
        /// The image.
        image: String,
        /// Print this SBOM to standard output instead of the summary.
        #[arg(long)]
        sbom: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Scanned images and images that came in kits.
    Images {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// An image's SBOM.
    Sbom {
        /// Manifest digest (a unique prefix is enough).
        digest: String,
        /// cyclonedx or spdx.
        #[arg(long, default_value = "cyclonedx")]
        format: String,
    },
    /// An image's findings, with each source's verdict and the changes new knowledge caused.
    Findings {
        /// Manifest digest (a unique prefix is enough).
        digest: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks that print tables.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Verify a Sigstore bundle offline against a trusted_root.json (exit 0 ok, 1 rejected, 2 usage).
    VerifyBundle(VerifyBundleArgs),
    /// Run the crypto self-test (known answers and pairwise sign/verify) of one or every profile.
    Selftest {
        /// Only this profile.
        #[arg(long)]
        profile: Option<ProfileId>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("subject").required(true).args(["artifact", "digest"]))]
struct VerifyBundleArgs {
    /// The Sigstore trusted root (from a kit); nothing is fetched.
    #[arg(long, value_name = "FILE")]
    trusted_root: PathBuf,
    /// The bundle (.sigstore.json).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// The signed artifact.
    #[arg(long, value_name = "FILE")]
    artifact: Option<PathBuf>,
    /// The signed artifact's digest, `sha256:HEX`.
    #[arg(long, value_name = "sha256:HEX")]
    digest: Option<String>,
    /// Expected certificate identity (SAN, exact).
    #[arg(long, value_name = "SAN", requires = "issuer")]
    identity: Option<String>,
    /// Expected OIDC issuer (exact).
    #[arg(long, value_name = "URL", requires = "identity")]
    issuer: Option<String>,
    /// Public key (PEM) for key-signed bundles.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Users, roles and state.
    List,
    /// A new one-time secret for a user (enables them; they choose a password at sign-in). Audited.
    Reset {
        /// User name.
        name: String,
    },
}

#[derive(Subcommand)]
enum VulnCommand {
    /// Every source's statement about a vulnerability (any alias), conflicts and superseded history.
    Show {
        /// CVE, GHSA, DSA, ... id.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The vulnerabilities sources say affect a package version, with each source's verdict.
    Affects {
        /// A purl with a version, e.g. pkg:deb/debian/libssl3@3.0.9-1?distro=debian-12&upstream=openssl.
        purl: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Import throughput of a generated ~1 GiB kit next to `zstd -d | sha256sum`, with peak RSS.
    Import {
        /// Size of the generated input (kept in WORK/inputs and reused).
        #[arg(long, default_value = "1GiB")]
        size: String,
        /// Working directory.
        #[arg(long, default_value = "target/bench-import")]
        work: PathBuf,
    },
    /// The console under wrk with 100,000 findings: p50/p95/p99 at a fixed rate, and unpaced.
    Console {
        /// Requests per second of the paced runs.
        #[arg(long, default_value_t = 500)]
        rate: u32,
        /// Seconds per run.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Working directory (the generated site is recreated there).
        #[arg(long, default_value = "target/bench-console")]
        work: PathBuf,
    },
    /// Cold and delta scan times on corpus, generated and Debian images, next to Trivy and Syft.
    Scan {
        /// Third-party corpus (default ../shared/corpus when present).
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Working directory (peers and the Debian rootfs are kept there and reused).
        #[arg(long, default_value = "target/bench-scan")]
        work: PathBuf,
    },
    /// Feed parse + ingest throughput on the OSV corpora and generated documents; matching of 1,000 purls.
    Feeds {
        /// Third-party corpus (default ../shared/corpus when present).
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// How many generated OSV documents.
        #[arg(long, default_value_t = 200_000)]
        generated: u64,
        /// Scratch store directory (removed afterwards).
        #[arg(long, default_value = "target/bench-feeds")]
        work: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain; names the first edited, removed or reordered event.
    Verify,
    /// Print events.
    Log {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("STELLA_LOG"))
        .init();
    match run(Cli::parse()) {
        Ok(status) => std::process::ExitCode::from(status.code()),
        Err(err) => {
            eprintln!("stella: error: {}", render(&err));
            std::process::ExitCode::from(exit_status(&err).code())
        }
    }
}

/// The exit status of an error: an import refusal carries its own, anything else is classified by the
/// shared table.
fn exit_status(err: &anyhow::Error) -> ExitStatus {
    use kit_builder::exit::Classify as _;
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<import::ImportError>() {
            return e.exit_status();
        }
    }
    classify(err)
}

/// The appliance clock: the system clock, or `STELLA_NOW` (RFC 3339 or Unix seconds) for replay and tests.
fn now() -> Result<Timestamp> {
    match std::env::var("STELLA_NOW") {
        Ok(v) => v.parse().map_err(anyhow::Error::from).context("STELLA_NOW"),
        Err(_) => Ok(SystemClock.now()),
    }
}

fn open(data: &Option<PathBuf>) -> Result<Site> {
    let root = site::data_dir(data.as_deref());
    let site = Site::open(&root)?;
    let recovered = import::recover(&site)?;
    if recovered > 0 {
        eprintln!("stella: recovered from {recovered} interrupted import(s): their new blobs were removed");
    }
    Ok(site)
}

fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "root".into())
    )
}

fn run(cli: Cli) -> Result<ExitStatus> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Init {
            profile,
            kit_signers,
            threshold,
            age_identity,
            sm2_id,
        } => {
            let root = site::data_dir(cli.data.as_deref());
            let mut signers = Vec::new();
            for p in kit_signers {
                let pem = std::fs::read_to_string(&p)
                    .with_context(|| format!("{}: cannot read", p.display()))?;
                signers.push((p, pem));
            }
            let site = Site::init(InitRequest {
                root: root.clone(),
                profile,
                kit_signers: signers,
                threshold,
                age_identity,
                sm2_id,
                now: now()?,
            })?;
            writeln!(out, "site created at {}", root.display())?;
            writeln!(out, "profile: {}", site.profile.id())?;
            writeln!(
                out,
                "appliance key: {} ({})",
                site.key().key_id(),
                site.key().algorithm()
            )?;
            let set = site.signer_set()?;
            writeln!(
                out,
                "kit signers: {} (threshold {})",
                set.keys.len(),
                set.threshold
            )?;
            if let Some(secret) = appliance::web::auth::bootstrap_admin(&site.store, now()?)
                .map_err(|e| anyhow::anyhow!("creating the first admin: {}", e.message))?
            {
                writeln!(
                    out,
                    "console user 'admin', one-time secret (shown once, change it at first sign-in): {secret}"
                )?;
            }
        }
        Command::User(UserCommand::List) => {
            let site = open(&cli.data)?;
            for (_, v) in
                appliance::store::MetaStore::scan(&site.store, appliance::store::Tree::Users, b"")?
            {
                let u: appliance::web::auth::User = serde_json::from_slice(&v)?;
                let state = match (u.disabled, u.must_change) {
                    (true, _) => "disabled",
                    (false, true) => "one-time secret not used yet",
                    (false, false) => "active",
                };
                writeln!(out, "{:<24} {:<16} {}", u.name, u.role.name(), state)?;
            }
        }
        Command::User(UserCommand::Reset { name }) => {
            let site = open(&cli.data)?;
            let mut u = appliance::web::auth::user(&site.store, &name)?
                .with_context(|| format!("no console user '{name}'"))?;
            let mut batch = appliance::store::Batch::default();
            let secret = appliance::web::auth::reset_secret(&site.store, &mut u, &mut batch)
                .map_err(|e| anyhow::anyhow!(e.message))?;
            let mut audit = appliance::audit::AuditWriter::new(&site.store, &site.profile)?;
            audit.append(
                &mut batch,
                &now()?.to_string(),
                "user-changed",
                &actor(),
                serde_json::json!({"user": name, "action": "reset", "role": u.role.name()}),
            );
            appliance::store::MetaStore::apply(&site.store, batch)?;
            writeln!(
                out,
                "user '{name}': one-time secret (shown once, change it at first sign-in): {secret}"
            )?;
        }
        Command::Serve { listen, workers } => {
            let site = open(&cli.data)?;
            if let Some(secret) = appliance::web::auth::bootstrap_admin(&site.store, now()?)
                .map_err(|e| anyhow::anyhow!("creating the first admin: {}", e.message))?
            {
                writeln!(
                    out,
                    "this site had no console user: created 'admin' with one-time secret {secret}"
                )?;
            }
            let clock: appliance::web::Clock = match std::env::var("STELLA_NOW") {
                Ok(_) => {
                    let t = now()?;
                    std::sync::Arc::new(move || t)
                }
                Err(_) => std::sync::Arc::new(|| SystemClock.now()),
            };
            writeln!(
                out,
                "stella: serving the console on http://{listen}/ (data {}); Ctrl-C stops it",
                site.root.display()
            )?;
            out.flush()?;
            appliance::web::serve(
                site,
                clock,
                &appliance::web::ServeOptions { listen, workers },
            )
            .with_context(|| format!("serving on {listen}"))?;
        }
        Command::Import {
            kit,
            force,
            reason,
            watch,
            once,
            interval,
            json,
        } => {
            let site = open(&cli.data)?;
            if let Some(dir) = watch {
                return watch_dir(&site, &dir, once, interval, &mut out);
            }
            let mut inputs = kit_builder::read::KitInput::group(kit);
            if inputs.len() > 1 {
                if force {
                    anyhow::bail!("--force applies to one kit: import the kit to force on its own");
                }
                return import_several(&site, inputs, json, &mut out);
            }
            let input = inputs.pop().context("no kit given")?;
            let req = ImportRequest {
                input,
                force_reason: if force { reason } else { None },
                now: now()?,
                actor: actor(),
                label: None,
            };
            match import::import(&site, &req) {
                Ok(signed) => {
                    if json {
                        writeln!(out, "{}", serde_json::to_string_pretty(&signed)?)?;
                    } else {
                        let r = &signed.receipt;
                        writeln!(
                            out,
                            "imported kit '{}' (channel {}, sequence {})",
                            r.kit.as_deref().unwrap_or("?"),
                            r.channel.as_deref().unwrap_or("?"),
                            r.sequence.unwrap_or(0)
                        )?;
                        for c in &r.checks {
                            writeln!(out, "  {:<22} {}", c.name, c.result)?;
                        }
                        for (k, v) in &r.counts {
                            writeln!(out, "  {k:<22} {v}")?;
                        }
                        for w in &r.warnings {
                            writeln!(out, "  warning: {w}")?;
                        }
                        writeln!(out, "receipt {} signed by the appliance key", r.number)?;
                    }
                }
                Err(e) => {
                    if json {
                        if let Some(r) = &e.receipt {
                            writeln!(out, "{}", serde_json::to_string_pretty(r)?)?;
                        }
                    }
                    return Err(e.into());
                }
            }
        }
        Command::Kits { quarantine, json } => {
            let site = open(&cli.data)?;
            if quarantine {
                let q = appliance::status::quarantine(&site)?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&q)?)?;
                } else {
                    for r in q {
                        writeln!(
                            out,
                            "{}  {}  {}",
                            r["time"].as_str().unwrap_or(""),
                            r["input"].as_str().unwrap_or(""),
                            r["reason"].as_str().unwrap_or("")
                        )?;
                    }
                }
            } else {
                let kits = appliance::status::kits(&site)?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&kits)?)?;
                } else {
                    for k in kits {
                        writeln!(
                            out,
                            "{:<28} {:<14} seq {:<6} created {} imported {}{}",
                            k.id,
                            k.channel,
                            k.sequence,
                            k.created,
                            k.imported,
                            k.base.map(|b| format!(" delta of {b}")).unwrap_or_default()
                        )?;
                    }
                }
            }
        }
        Command::Status { json } => {
            let site = open(&cli.data)?;
            let s = appliance::status::status(&site, now()?)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
            } else {
                write!(out, "{}", appliance::status::render_status(&s))?;
            }
        }
        Command::Fsck { json } => {
            let site = open(&cli.data)?;
            let problems = appliance::status::fsck(&site)?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"ok": problems.is_empty(), "problems": problems})
                )?;
            } else if problems.is_empty() {
                writeln!(
                    out,
                    "fsck: ok ({} blobs re-hashed)",
                    site.store.cas().list()?.len()
                )?;
            } else {
                for p in &problems {
                    writeln!(out, "fsck: {p}")?;
                }
            }
            if !problems.is_empty() {
                return Ok(ExitStatus::VerificationFailed);
            }
        }
        Command::Vuln(VulnCommand::Show { id, json }) => {
            let site = open(&cli.data)?;
            let Some(ls) = appliance::vuln::linkset(&site.store, &id)? else {
                anyhow::bail!("no statement names '{id}'");
            };
            let old = appliance::vuln::superseded(&site.store, &ls)?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"linkset": ls, "superseded": old})
                    )?
                )?;
            } else {
                write!(out, "{}", appliance::vuln::render_linkset(&ls, &old))?;
            }
        }
        Command::Vuln(VulnCommand::Affects { purl, json }) => {
            let site = open(&cli.data)?;
            let p = feeds::matching::parse_purl(&purl).map_err(anyhow::Error::msg)?;
            if p.version.is_none() {
                anyhow::bail!("purl '{purl}' has no version: give pkg:TYPE/NAME@VERSION");
            }
            let matches = appliance::vuln::affects(&site.store, &p)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&matches)?)?;
            } else {
                write!(out, "{}", appliance::vuln::render_matches(&purl, &matches))?;
            }
        }
        Command::Feeds { json } => {
            let site = open(&cli.data)?;
            let sources =
                appliance::vuln::sources(&site.store, now()?.0, site.config.staleness_days)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&sources)?)?;
            } else {
                writeln!(
                    out,
                    "{:<28} {:>8} {:>8}  {:<22} {:<22} freshness",
                    "source", "stmts", "docs", "newest statement", "ingested"
                )?;
                for s in sources {
                    writeln!(
                        out,
                        "{:<28} {:>8} {:>8}  {:<22} {:<22} {:.1} days{}",
                        s.source,
                        s.observations,
                        s.documents,
                        s.newest.as_deref().unwrap_or("-"),
                        s.ingested,
                        s.age_days,
                        if s.stale { " STALE" } else { "" }
                    )?;
                }
            }
        }
        Command::Dump { all } => {
            let site = open(&cli.data)?;
            let mut trees = serde_json::Map::new();
            for (tree, entries) in site.store.dump()? {
                if tree.is_secret() || (tree.is_record() && !all) {
                    continue;
                }
                let rows: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|(k, v)| serde_json::json!([hex::encode(k), hex::encode(v)]))
                    .collect();
                trees.insert(tree.name().into(), rows.into());
            }
            let mut blobs = Vec::new();
            for (alg, h) in site.store.cas().list()? {
                let len = std::fs::metadata(site.store.cas().path(&alg, &h))
                    .map(|m| m.len())
                    .unwrap_or(0);
                blobs.push(format!("{alg}/{h} {len}"));
            }
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"trees": trees, "blobs": blobs}))?
            )?;
        }
        Command::Audit(AuditCommand::Verify) => {
            let site = open(&cli.data)?;
            match appliance::audit::verify(&site.store, &site.profile) {
                Ok(n) => writeln!(
                    out,
                    "audit chain ok: {n} events, {}",
                    site.profile.digest_alg()
                )?,
                Err(e) => {
                    writeln!(out, "audit chain BROKEN: {e}")?;
                    return Ok(ExitStatus::VerificationFailed);
                }
            }
        }
        Command::Audit(AuditCommand::Log { json }) => {
            let site = open(&cli.data)?;
            let events = appliance::audit::events(&site.store)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&events)?)?;
            } else {
                for e in events {
                    writeln!(
                        out,
                        "{:>6} {} {:<20} {:<12} {}",
                        e.seq, e.time, e.kind, e.actor, e.data
                    )?;
                }
            }
        }
        Command::Demo { corpus } => {
            let root = site::data_dir(cli.data.as_deref());
            let corpus =
                corpus.or_else(|| Some(PathBuf::from("../shared/corpus")).filter(|p| p.is_dir()));
            for line in appliance::demo::run(&root, corpus.as_deref(), now()?)? {
                writeln!(out, "demo: {line}")?;
            }
            let site = open(&cli.data)?;
            write!(
                out,
                "{}",
                appliance::status::render_status(&appliance::status::status(&site, now()?)?)
            )?;
        }
        Command::Scan { image, sbom, json } => {
            let site = open(&cli.data)?;
            let t = now()?.to_string();
            let report = appliance::scan::scan(&site.store, &image, &t)?;
            appliance::scan::findings::reevaluate(
                &site.store,
                "scan",
                &t,
                Some(&report.record.digest),
            )?;
            if let Some(format) = sbom {
                let doc = appliance::scan::sbom::render(&report.record, &format)?;
                writeln!(out, "{doc}")?;
            } else if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                let r = &report.record;
                writeln!(out, "image {} ({})", r.name, r.digest)?;
                if let Some(os) = &r.os {
                    writeln!(
                        out,
                        "os: {}",
                        os.pretty_name.clone().unwrap_or_else(|| os.id.clone())
                    )?;
                }
                writeln!(
                    out,
                    "layers: {} ({} analysed, {} from cache)",
                    r.layers.len(),
                    report.layers_analysed,
                    report.layers_cached
                )?;
                let mut by: std::collections::BTreeMap<&str, usize> =
                    std::collections::BTreeMap::new();
                for p in &r.packages {
                    *by.entry(p.ecosystem.purl_type()).or_default() += 1;
                }
                let parts: Vec<String> = by.iter().map(|(k, v)| format!("{k} {v}")).collect();
                writeln!(out, "packages: {} ({})", r.packages.len(), parts.join(", "))?;
                let f = appliance::scan::findings::stored(&site.store, &r.digest)?;
                writeln!(out, "findings: {}", f.len())?;
                for e in &r.errors {
                    writeln!(out, "warning: {e}")?;
                }
            }
        }
        Command::Images { json } => {
            let site = open(&cli.data)?;
            let recs = appliance::scan::records(&site.store)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&recs)?)?;
            } else {
                for r in &recs {
                    let n = appliance::scan::findings::stored(&site.store, &r.digest)?.len();
                    writeln!(
                        out,
                        "{}  {:<40} {:>5} packages {:>5} findings  {}",
                        r.digest,
                        r.name,
                        r.packages.len(),
                        n,
                        r.source
                    )?;
                }
                for (k, v) in appliance::store::MetaStore::scan(
                    &site.store,
                    appliance::store::Tree::Images,
                    b"sha256:",
                )? {
                    let d = String::from_utf8_lossy(&k).into_owned();
                    if !recs.iter().any(|r| r.digest == d) {
                        let v: serde_json::Value = serde_json::from_slice(&v).unwrap_or_default();
                        writeln!(
                            out,
                            "{d}  {:<40} not scanned yet (from kit {})",
                            v["name"].as_str().unwrap_or(""),
                            v["kit"].as_str().unwrap_or("?")
                        )?;
                    }
                }
            }
        }
        Command::Sbom { digest, format } => {
            let site = open(&cli.data)?;
            let rec = appliance::scan::record(&site.store, &digest)?
                .with_context(|| format!("no scanned image '{digest}'"))?;
            writeln!(out, "{}", appliance::scan::sbom::render(&rec, &format)?)?;
        }
        Command::Findings { digest, json } => {
            let site = open(&cli.data)?;
            let rec = appliance::scan::record(&site.store, &digest)?
                .with_context(|| format!("no scanned image '{digest}'"))?;
            let findings = appliance::scan::findings::stored(&site.store, &rec.digest)?;
            let events = appliance::scan::findings::events(&site.store, &rec.digest)?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"image": rec.digest, "findings": findings, "events": events})
                    )?
                )?;
            } else {
                writeln!(
                    out,
                    "image {} ({}): {} findings",
                    rec.name,
                    rec.digest,
                    findings.len()
                )?;
                for f in &findings {
                    let pkg = format!("{}@{}", f.package, f.version);
                    let fix = if f.fixed.is_empty() {
                        "no fix stated".to_owned()
                    } else {
                        format!("fixed in {}", f.fixed.join(", "))
                    };
                    let kev = if f.kev { "  KEV" } else { "" };
                    let conflicts = if f.conflicts > 0 {
                        format!("  {} conflict(s)", f.conflicts)
                    } else {
                        String::new()
                    };
                    writeln!(
                        out,
                        "{:<20} {:<9} {pkg:<40} {fix}{kev}{conflicts}",
                        f.vulnerability, f.severity
                    )?;
                }
                for e in events.iter().rev().take(20) {
                    writeln!(
                        out,
                        "change: {} {} {} (cause {}, {})",
                        e.change, e.vulnerability, e.purl, e.cause, e.time
                    )?;
                }
            }
        }
        Command::Bench(BenchCommand::Import { size, work }) => {
            std::fs::create_dir_all(&work)
                .with_context(|| format!("{}: cannot create", work.display()))?;
            let n: u64 = match size
                .to_ascii_lowercase()
                .trim_end_matches("ib")
                .trim_end_matches('b')
            {
                s if s.ends_with('g') => s.trim_end_matches('g').parse::<u64>()? << 30,
                s if s.ends_with('m') => s.trim_end_matches('m').parse::<u64>()? << 20,
                s => s.parse()?,
            };
            write!(out, "{}", appliance::bench::import(n, &work)?)?;
        }
        Command::Bench(BenchCommand::Console {
            rate,
            seconds,
            work,
        }) => {
            let work = std::path::absolute(&work)?;
            write!(
                out,
                "{}",
                appliance::bench_console::run(&work, rate, seconds)?
            )?;
        }
        Command::Bench(BenchCommand::Scan { corpus, work }) => {
            let corpus =
                corpus.or_else(|| Some(PathBuf::from("../shared/corpus")).filter(|p| p.is_dir()));
            write!(
                out,
                "{}",
                appliance::bench_scan::run(corpus.as_deref(), &work)?
            )?;
        }
        Command::Bench(BenchCommand::Feeds {
            corpus,
            generated,
            work,
        }) => {
            let corpus =
                corpus.or_else(|| Some(PathBuf::from("../shared/corpus")).filter(|p| p.is_dir()));
            write!(
                out,
                "{}",
                appliance::bench::feeds(corpus.as_deref(), generated, &work)?
            )?;
        }
        Command::VerifyBundle(args) => return verify_bundle(&args, &mut out),
        Command::Selftest { profile, json } => {
            let ids: Vec<ProfileId> = profile.map_or_else(|| ProfileId::ALL.to_vec(), |p| vec![p]);
            let reports = appliance::diagnostics::self_test(&ids);
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?;
            } else {
                write!(out, "{}", appliance::diagnostics::render(&reports))?;
            }
            return Ok(if reports.iter().all(|r| r.ok) {
                ExitStatus::Ok
            } else {
                ExitStatus::Environment
            });
        }
    }
    Ok(ExitStatus::Ok)
}

/// `stella verify-bundle`: unreadable inputs are usage errors (2), a refused bundle is 1.
fn verify_bundle(a: &VerifyBundleArgs, out: &mut impl std::io::Write) -> Result<ExitStatus> {
    use appliance::sigstore::{
        self as sig, Artifact, ExpectedIdentity, Policy, PublicKey, TrustedRoot,
    };
    let read =
        |p: &PathBuf| std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()));
    let root = TrustedRoot::from_json(&read(&a.trusted_root)?)
        .with_context(|| a.trusted_root.display().to_string())?;
    let bundle = read(&a.bundle)?;
    let bytes = a.artifact.as_ref().map(read).transpose()?;
    let artifact = match (&bytes, &a.digest) {
        (Some(b), _) => Artifact::Bytes(b),
        (None, Some(d)) => Artifact::Sha256(sig::parse_sha256_digest(d)?),
        (None, None) => anyhow::bail!("give --artifact or --digest"),
    };
    let policy = Policy {
        identity: a
            .identity
            .clone()
            .zip(a.issuer.clone())
            .map(|(san, issuer)| ExpectedIdentity { san, issuer }),
        key: a
            .key
            .as_ref()
            .map(|k| read(k).and_then(|pem| Ok(PublicKey::from_pem(&pem)?)))
            .transpose()?,
    };
    let result = sig::verify_bundle(&root, &bundle, artifact, &policy);
    if a.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&sig::report_json(&result))?
        )?;
    } else {
        match &result {
            Ok(v) => write!(out, "{}", sig::render(v))?,
            Err(e) => eprintln!("stella: bundle rejected [{}]: {e}", e.code()),
        }
    }
    Ok(if result.is_ok() {
        ExitStatus::Ok
    } else {
        ExitStatus::VerificationFailed
    })
}

/// `stella import A.kit B.kit …`: each kit whole or not at all, with its own receipt, a delta after its base
/// when both are given; one line per kit, and the exit status of the first refusal.
fn import_several(
    site: &Site,
    inputs: Vec<kit_builder::read::KitInput>,
    json: bool,
    out: &mut impl std::io::Write,
) -> Result<ExitStatus> {
    let mut status = ExitStatus::Ok;
    let mut receipts = Vec::new();
    for input in import::order_by_base(site, inputs) {
        let label = input.label();
        let req = ImportRequest {
            input,
            force_reason: None,
            now: now()?,
            actor: actor(),
            label: None,
        };
        match import::import(site, &req) {
            Ok(signed) => {
                if !json {
                    let r = &signed.receipt;
                    writeln!(
                        out,
                        "{label}: imported kit '{}' (channel {}, sequence {}, receipt {})",
                        r.kit.as_deref().unwrap_or("?"),
                        r.channel.as_deref().unwrap_or("?"),
                        r.sequence.unwrap_or(0),
                        r.number
                    )?;
                }
                receipts.push(signed);
            }
            Err(e) => {
                if !json {
                    writeln!(out, "{label}: rejected: {}", e.message)?;
                }
                eprintln!("stella: error: {e}");
                if status == ExitStatus::Ok {
                    status = e.status;
                }
                receipts.extend(e.receipt.map(|r| *r));
            }
        }
        out.flush()?;
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&receipts)?)?;
    }
    Ok(status)
}

fn watch_dir(
    site: &Site,
    dir: &std::path::Path,
    once: bool,
    interval: u64,
    out: &mut impl std::io::Write,
) -> Result<ExitStatus> {
    // The clock is read for each import; an unreadable STELLA_NOW fails before the first pass.
    now()?;
    let mut clock = || now().unwrap_or_else(|_| SystemClock.now());
    loop {
        import::watch_pass(site, dir, &mut clock, &mut |o: &import::WatchOutcome| {
            match &o.result {
                Ok(r) => writeln!(
                    out,
                    "{}: imported kit '{}' (receipt {})",
                    o.name,
                    r.receipt.kit.as_deref().unwrap_or("?"),
                    r.receipt.number
                )?,
                Err(e) if o.will_retry => writeln!(
                    out,
                    "{}: rejected: {} (retried after the next import)",
                    o.name, e.message
                )?,
                Err(e) => writeln!(out, "{}: rejected: {}", o.name, e.message)?,
            }
            out.flush()
        })?;
        if once {
            return Ok(ExitStatus::Ok);
        }
        std::thread::sleep(std::time::Duration::from_secs(interval.max(1)));
    }
}
