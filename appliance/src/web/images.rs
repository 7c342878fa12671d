//! Images in the console: every image the site has (scanned, or brought by a kit and not scanned yet), an
//! image's packages and findings (filtered by severity, KEV and fix availability; each finding links to its
//! linkset), SBOM downloads in CycloneDX and SPDX, and scanning an image a kit brought.

use super::auth::Principal;
use super::error::WebError;
use super::{html, see_other, Chrome, State};
use crate::scan::findings::{Finding, FindingEvent};
use crate::scan::ScanRecord;
use crate::store::{MetaStore as _, Tree};
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Findings a page or an API call returns at most.
pub const MAX_PAGE: usize = 1000;

/// One image in the list.
#[derive(Debug, Serialize)]
pub struct ImageRow {
    /// Manifest digest.
    pub digest: String,
    /// Name.
    pub name: String,
    /// The kit that brought it, if one did.
    pub kit: Option<String>,
    /// Whether it has been scanned.
    pub scanned: bool,
    /// Packages found.
    pub packages: usize,
    /// Findings.
    pub findings: usize,
}

/// Every image the site has: scanned, or brought by a kit and not scanned yet.
pub fn rows(state: &State) -> Result<Vec<ImageRow>, WebError> {
    let site = state.site();
    let mut rows: BTreeMap<String, ImageRow> = BTreeMap::new();
    for r in crate::scan::records(&site.store)? {
        let findings = site
            .store
            .count(Tree::Findings, format!("{}|", r.digest).as_bytes())?;
        rows.insert(
            r.digest.clone(),
            ImageRow {
                digest: r.digest,
                name: r.name,
                kit: None,
                scanned: true,
                packages: r.packages.len(),
                findings,
            },
        );
    }
    for (k, v) in site.store.scan(Tree::Images, b"sha256:")? {
        let v: serde_json::Value = serde_json::from_slice(&v).unwrap_or_default();
        let digest = String::from_utf8_lossy(&k).into_owned();
        let kit = v["kit"].as_str().map(str::to_owned);
        let row = rows.entry(digest.clone()).or_insert_with(|| ImageRow {
            digest,
            name: v["name"].as_str().unwrap_or("").to_owned(),
            kit: None,
            scanned: false,
            packages: 0,
            findings: 0,
        });
        row.kit = kit;
    }
    Ok(rows.into_values().collect())
}

#[derive(Template)]
#[template(path = "images.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<ImageRow>,
}

/// `GET /images`.
pub async fn list_page(state: State, who: Principal) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let rows = web::block(move || rows(&st)).await??;
    html(&ListPage {
        c: Chrome::of(&state, &who),
        rows,
    })
}

/// `GET /api/v1/images`.
pub async fn list_api(state: State) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    Ok(HttpResponse::Ok().json(web::block(move || rows(&st)).await??))
}

/// Finding filters and paging.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct Filter {
    /// Only this severity (`critical`, `high`, `medium`, `low`, `none`, `unknown`).
    #[serde(default)]
    pub severity: Option<String>,
    /// Only findings listed in KEV (`true`).
    #[serde(default)]
    pub kev: Option<bool>,
    /// `yes`: only findings with a fixed version stated; `no`: only those without.
    #[serde(default)]
    pub fix: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Continue after this finding key (`next` of the previous page).
    #[serde(default)]
    pub after: Option<String>,
}

/// The fields a filter looks at, read without building the whole finding (most rows of a filtered listing
/// are skipped).
#[derive(Deserialize)]
struct Facets<'a> {
    #[serde(borrow)]
    severity: std::borrow::Cow<'a, str>,
    kev: bool,
    #[serde(borrow)]
    fixed: Vec<std::borrow::Cow<'a, str>>,
}

impl Filter {
    fn keep(&self, f: &Facet) -> bool {
        self.severity
            .as_deref()
            .filter(|s| !s.is_empty())
            .is_none_or(|s| f.severity == s)
            && (self.kev != Some(true) || f.kev)
            && match self.fix.as_deref() {
                Some("yes") => f.fix,
                Some("no") => !f.fix,
                _ => true,
            }
    }

    fn validate(&self) -> Result<(), WebError> {
        if let Some(s) = self.severity.as_deref().filter(|s| !s.is_empty()) {
            if !super::dashboard::SEVERITIES.contains(&s) {
                return Err(WebError::bad_request(
                    "bad-filter",
                    format!(
                        "unknown severity '{s}': one of {}",
                        super::dashboard::SEVERITIES.join(", ")
                    ),
                ));
            }
        }
        if let Some(f) = self.fix.as_deref().filter(|f| !f.is_empty()) {
            if f != "yes" && f != "no" {
                return Err(WebError::bad_request(
                    "bad-filter",
                    format!("fix must be 'yes' or 'no', not '{f}'"),
                ));
            }
        }
        Ok(())
    }
}

/// One page of an image's findings.
#[derive(Debug, Serialize)]
pub struct FindingsPage {
    /// Image digest.
    pub image: String,
    /// Findings on this page.
    pub findings: Vec<Finding>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next: Option<String>,
}

fn resolve(state: &State, digest: &str) -> Result<ScanRecord, WebError> {
    crate::scan::record(&state.site().store, digest)?.ok_or_else(|| {
        WebError::not_found(format!(
            "no scanned image '{digest}' (an image a kit brought must be scanned first)"
        ))
    })
}

/// What a filter needs of one finding, kept in memory per image so a filtered page reads only the findings
/// it returns.
#[derive(Debug)]
pub struct Facet {
    /// `<vulnerability>|<purl>`: the finding's key within its image (and the paging cursor).
    key: String,
    severity: String,
    kev: bool,
    fix: bool,
}

/// Facets of every image's findings, valid for one store generation.
pub type FacetCache =
    std::sync::Mutex<std::collections::HashMap<String, (u64, std::sync::Arc<Vec<Facet>>)>>;

/// Images whose facets are kept at most (the cache is dropped whole when it would grow beyond).
const FACET_IMAGES: usize = 256;

fn facets(state: &State, image: &str) -> Result<std::sync::Arc<Vec<Facet>>, WebError> {
    use std::sync::atomic::Ordering;
    let generation = state.generation.load(Ordering::SeqCst);
    if let Some((g, f)) = state
        .facets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(image)
    {
        if *g == generation {
            return Ok(f.clone());
        }
    }
    let prefix = format!("{image}|");
    let mut out = Vec::new();
    for (k, v) in state.site().store.scan(Tree::Findings, prefix.as_bytes())? {
        let f: Facets<'_> = serde_json::from_slice(&v).map_err(WebError::internal)?;
        out.push(Facet {
            key: String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
            severity: f.severity.into_owned(),
            kev: f.kev,
            fix: !f.fixed.is_empty(),
        });
    }
    let out = std::sync::Arc::new(out);
    let mut cache = state.facets.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= FACET_IMAGES {
        cache.clear();
    }
    cache.insert(image.to_owned(), (generation, out.clone()));
    Ok(out)
}

fn findings(state: &State, image: &str, filter: &Filter) -> Result<FindingsPage, WebError> {
    filter.validate()?;
    let limit = filter.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let all = facets(state, image)?;
    // Keys are in store order, so the cursor is a binary search away.
    let start = match &filter.after {
        Some(a) => all.partition_point(|f| f.key.as_str() <= a.as_str()),
        None => 0,
    };
    let mut picked = all[start..].iter().filter(|f| filter.keep(f));
    let page: Vec<&Facet> = picked.by_ref().take(limit).collect();
    let next = match (page.last(), picked.next()) {
        (Some(last), Some(_)) => Some(last.key.clone()),
        _ => None,
    };
    let site = state.site();
    let mut out = Vec::with_capacity(page.len());
    for f in page {
        let key = format!("{image}|{}", f.key);
        // Absent only if the store changed since the facets were read; the next request rebuilds them.
        if let Some(v) = site.store.get(Tree::Findings, key.as_bytes())? {
            out.push(serde_json::from_slice::<Finding>(&v).map_err(WebError::internal)?);
        }
    }
    Ok(FindingsPage {
        image: image.to_owned(),
        findings: out,
        next,
    })
}

#[derive(Template)]
#[template(path = "image.html")]
struct DetailPage {
    c: Chrome,
    r: ScanRecord,
    ecosystems: Vec<(String, usize)>,
    f: FindingsPage,
    filter: Filter,
    events: Vec<FindingEvent>,
    query_next: Option<String>,
}

impl DetailPage {
    fn selected(&self, s: &str) -> bool {
        self.filter.severity.as_deref() == Some(s)
    }
    fn fix_is(&self, s: &str) -> bool {
        self.filter.fix.as_deref().unwrap_or("") == s
    }
}

/// `GET /images/{digest}`.
pub async fn detail_page(
    state: State,
    who: Principal,
    digest: web::Path<String>,
    filter: web::Query<Filter>,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let filter = filter.into_inner();
    let fl = filter.clone();
    let (r, f, events) = web::block(move || -> Result<_, WebError> {
        let r = resolve(&st, &digest)?;
        let f = findings(&st, &r.digest, &fl)?;
        let mut events = crate::scan::findings::events(&st.site().store, &r.digest)?;
        events.reverse();
        events.truncate(50);
        Ok((r, f, events))
    })
    .await??;
    let mut eco: BTreeMap<String, usize> = BTreeMap::new();
    for p in &r.packages {
        *eco.entry(p.ecosystem.purl_type().to_owned()).or_default() += 1;
    }
    let query_next = f.next.as_ref().map(|n| {
        let mut q = filter.clone();
        q.after = Some(n.clone());
        serde_urlencoded::to_string(&q).unwrap_or_default()
    });
    html(&DetailPage {
        c: Chrome::of(&state, &who),
        r,
        ecosystems: eco.into_iter().collect(),
        f,
        filter,
        events,
        query_next,
    })
}

/// `GET /api/v1/images/{digest}`.
pub async fn detail_api(state: State, digest: web::Path<String>) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    Ok(HttpResponse::Ok().json(web::block(move || resolve(&st, &digest)).await??))
}

/// `GET /api/v1/images/{digest}/findings`.
pub async fn findings_api(
    state: State,
    digest: web::Path<String>,
    filter: web::Query<Filter>,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let page = web::block(move || {
        let r = resolve(&st, &digest)?;
        findings(&st, &r.digest, &filter)
    })
    .await??;
    Ok(HttpResponse::Ok().json(page))
}

/// SBOM format.
#[derive(Debug, Deserialize)]
pub struct Format {
    /// `cyclonedx` (default) or `spdx`.
    #[serde(default)]
    pub format: Option<String>,
}

/// `GET /images/{digest}/sbom` and `GET /api/v1/images/{digest}/sbom`: a download.
pub async fn sbom(
    state: State,
    digest: web::Path<String>,
    q: web::Query<Format>,
) -> Result<HttpResponse, WebError> {
    let format = q.format.clone().unwrap_or_else(|| "cyclonedx".into());
    let st = state.clone();
    let r = web::block(move || resolve(&st, &digest)).await??;
    let doc = crate::scan::sbom::render(&r, &format)
        .map_err(|e| WebError::bad_request("bad-format", e.to_string()))?;
    let short = r.digest.trim_start_matches("sha256:");
    let name = format!("{}-{format}.json", &short[..short.len().min(12)]);
    Ok(HttpResponse::Ok()
        .content_type(if format == "spdx" {
            "application/spdx+json"
        } else {
            "application/vnd.cyclonedx+json"
        })
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(doc))
}

/// Scans an image a kit brought (layers seen before come from the cache), then computes its findings.
fn scan(state: &State, who: &Principal, digest: &str) -> Result<crate::scan::ScanReport, WebError> {
    let _one = state.import_lock.lock().unwrap_or_else(|e| e.into_inner());
    let site = state.site();
    let full = if digest.starts_with("sha256:") {
        digest.to_owned()
    } else {
        format!("sha256:{digest}")
    };
    if site.store.get(Tree::Images, full.as_bytes())?.is_none() {
        return Err(WebError::not_found(format!(
            "no image '{digest}' came in a kit"
        )));
    }
    let t = state.now().to_string();
    let report = crate::scan::scan(&site.store, &full, &t)
        .map_err(|e| WebError::bad_request("scan-failed", e.to_string()))?;
    crate::scan::findings::reevaluate(&site.store, "scan", &t, Some(&full))?;
    tracing::info!(image = %full, user = %who.user, "scanned from the console");
    drop(site);
    state.changed();
    Ok(report)
}

/// `POST /images/{digest}/scan`.
pub async fn scan_page(
    state: State,
    who: Principal,
    digest: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let report = web::block(move || scan(&st, &who, &digest)).await??;
    Ok(see_other(&format!("/images/{}", report.record.digest)))
}

/// `POST /api/v1/images/{digest}/scan`.
pub async fn scan_api(
    state: State,
    who: Principal,
    digest: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let report = web::block(move || scan(&st, &who, &digest)).await??;
    Ok(HttpResponse::Ok().json(report))
}
