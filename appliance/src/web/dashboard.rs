//! The dashboard: active profile, kit high-water marks per channel, data freshness per source, counts of
//! images and findings by severity. Computing it reads every finding, so it is cached until the store
//! changes through the console or a minute passes (freshness moves with the clock).

use super::auth::Principal;
use super::error::WebError;
use super::{html, Chrome, State};
use crate::status::Status;
use crate::store::{MetaStore as _, Tree};
use crate::vuln::SourceSummary;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Severities in display order.
pub const SEVERITIES: [&str; 6] = ["critical", "high", "medium", "low", "none", "unknown"];

/// Everything the dashboard shows.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// Profile, signer set, channels, counts.
    pub status: Status,
    /// Freshness per feed source.
    pub sources: Vec<SourceSummary>,
    /// Images scanned.
    pub images_scanned: usize,
    /// Findings by severity (every severity present, zeros included).
    pub findings: BTreeMap<String, usize>,
    /// Findings in total.
    pub findings_total: usize,
    /// Findings listed in KEV.
    pub findings_kev: usize,
    /// When this was computed (Unix seconds).
    pub computed: i64,
}

impl Dashboard {
    /// The banner's freshness line.
    pub fn freshness_line(&self) -> String {
        let newest = self
            .status
            .channels
            .iter()
            .filter_map(|c| c.age_days)
            .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.min(d))));
        match newest {
            None => "no kit imported yet".into(),
            Some(d) => format!(
                "newest kit {:.1} days old (budget {} days)",
                d, self.status.staleness_days
            ),
        }
    }

    /// Channels and sources older than the staleness budget.
    pub fn stale(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .status
            .channels
            .iter()
            .filter(|c| c.stale)
            .map(|c| format!("channel {}", c.channel))
            .collect();
        out.extend(
            self.sources
                .iter()
                .filter(|s| s.stale)
                .map(|s| format!("source {}", s.source)),
        );
        out
    }

    /// Severity rows in display order.
    pub fn severity_rows(&self) -> Vec<(&'static str, usize)> {
        SEVERITIES
            .iter()
            .map(|s| (*s, self.findings.get(*s).copied().unwrap_or(0)))
            .collect()
    }
}

fn compute(state: &State) -> Result<Dashboard, WebError> {
    let now = state.now();
    let site = state.site();
    let status = crate::status::status(&site, now)?;
    let sources = crate::vuln::sources(&site.store, now.0, site.config.staleness_days)?;
    let mut findings: BTreeMap<String, usize> =
        SEVERITIES.iter().map(|s| (s.to_string(), 0)).collect();
    let (mut total, mut kev) = (0, 0);
    #[derive(serde::Deserialize)]
    struct Slim {
        severity: String,
        kev: bool,
    }
    for (_, v) in site.store.scan(Tree::Findings, b"")? {
        let Ok(f) = serde_json::from_slice::<Slim>(&v) else {
            continue;
        };
        *findings.entry(f.severity).or_default() += 1;
        total += 1;
        kev += usize::from(f.kev);
    }
    Ok(Dashboard {
        status,
        sources,
        images_scanned: site.store.count(Tree::Sboms, b"")?,
        findings,
        findings_total: total,
        findings_kev: kev,
        computed: now.0,
    })
}

/// The dashboard, from the cache when the store has not changed and it is under a minute old.
pub fn current(state: &State) -> Result<Arc<Dashboard>, WebError> {
    let generation = state.generation.load(Ordering::SeqCst);
    let now = state.now().0;
    {
        let cached = state.dashboard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, d)) = cached.as_ref() {
            if *g == generation && (0..60).contains(&(now - d.computed)) {
                return Ok(d.clone());
            }
        }
    }
    let d = Arc::new(compute(state)?);
    *state.dashboard.lock().unwrap_or_else(|e| e.into_inner()) = Some((generation, d.clone()));
    Ok(d)
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Page {
    c: Chrome,
    d: Arc<Dashboard>,
}

/// `GET /`.
pub async fn page(state: State, who: Principal) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let d = web::block(move || current(&st)).await??;
    html(&Page {
        c: Chrome::of(&state, &who),
        d,
    })
}

/// `GET /api/v1/status`.
pub async fn api(state: State) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let d = web::block(move || current(&st)).await??;
    Ok(HttpResponse::Ok().json(&*d))
}
