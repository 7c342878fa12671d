//! Advisories in the console: search by id (any alias, by prefix) or purl, and a linkset page with every
//! source's statement side by side, conflicts highlighted, and the superseded history. Aggregated, never
//! merged: each row is one source's statement as it made it.

use super::auth::Principal;
use super::error::WebError;
use super::{html, Chrome, State};
use crate::store::{MetaStore as _, Tree};
use crate::vuln::{self, Match};
use actix_web::{web, HttpResponse};
use askama::Template;
use feeds::linkset::{Linkset, Statement};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Most results a search returns.
pub const MAX_RESULTS: usize = 100;

/// Search query.
#[derive(Debug, Deserialize)]
pub struct Search {
    /// An id prefix (`CVE-2024-`, `GHSA-`) or a purl (`pkg:deb/debian/openssl@3.0.11-1`).
    #[serde(default)]
    pub q: String,
}

/// Search results.
#[derive(Debug, Default, Serialize)]
pub struct Results {
    /// The query.
    pub q: String,
    /// Ids whose name starts with the query (id search), or that name the package (purl without version).
    pub ids: Vec<String>,
    /// For a purl with a version: the vulnerabilities affecting it, with every source's verdict.
    pub matches: Vec<Match>,
    /// What the search did, for a person.
    pub note: String,
}

fn search(state: &State, q: &str) -> Result<Results, WebError> {
    let q = q.trim();
    let mut r = Results {
        q: q.to_owned(),
        ..Results::default()
    };
    let site = state.site();
    if q.starts_with("pkg:") {
        let purl = feeds::matching::parse_purl(q)
            .map_err(|e| WebError::bad_request("bad-purl", format!("purl '{q}': {e}")))?;
        if purl.version.is_some() {
            r.matches = vuln::affects(&site.store, &purl)?;
            r.note = format!(
                "{} vulnerabilit{} affect {q} according to at least one source",
                r.matches.len(),
                if r.matches.len() == 1 { "y" } else { "ies" }
            );
        } else {
            let mut ids = BTreeSet::new();
            for key in feeds::matching::lookup_keys(&purl) {
                for st in vuln::statements_for_package(&site.store, &key)? {
                    ids.insert(st.observation.source_id.clone());
                }
            }
            r.ids = ids.into_iter().take(MAX_RESULTS).collect();
            r.note =
                format!("statements naming {q} (any version); add @VERSION to see which affect it");
        }
        return Ok(r);
    }
    let prefix = q.to_ascii_uppercase();
    let mut ids = BTreeSet::new();
    let mut after: Option<Vec<u8>> = None;
    // Alias keys are `<ID>|<source>|<id>`: page through them until enough distinct ids are found.
    'outer: loop {
        let page = site
            .store
            .page(Tree::Aliases, prefix.as_bytes(), after.as_deref(), 512)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = Some(last.clone());
        for (k, _) in &page {
            let k = String::from_utf8_lossy(k);
            if let Some((id, _)) = k.split_once('|') {
                ids.insert(id.to_owned());
                if ids.len() >= MAX_RESULTS {
                    break 'outer;
                }
            }
        }
        if page.len() < 512 {
            break;
        }
    }
    r.ids = ids.into_iter().collect();
    r.note = if q.is_empty() {
        format!("the first {} ids the site knows", r.ids.len())
    } else {
        format!("{} id(s) starting with {prefix}", r.ids.len())
    };
    Ok(r)
}

#[derive(Template)]
#[template(path = "advisories.html")]
struct SearchPage {
    c: Chrome,
    r: Results,
}

/// `GET /advisories?q=`.
pub async fn search_page(
    state: State,
    who: Principal,
    q: web::Query<Search>,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let r = web::block(move || search(&st, &q.q)).await??;
    html(&SearchPage {
        c: Chrome::of(&state, &who),
        r,
    })
}

/// `GET /api/v1/advisories?q=`.
pub async fn search_api(state: State, q: web::Query<Search>) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let r = web::block(move || search(&st, &q.q)).await??;
    Ok(HttpResponse::Ok().json(r))
}

/// A linkset with its superseded history.
#[derive(Debug, Serialize)]
pub struct LinksetView {
    /// The linkset.
    pub linkset: Linkset,
    /// Older revisions of its statements.
    pub superseded: Vec<Statement>,
}

fn load(state: &State, id: &str) -> Result<LinksetView, WebError> {
    let site = state.site();
    let linkset = vuln::linkset(&site.store, id)?
        .ok_or_else(|| WebError::not_found(format!("no statement names '{id}'")))?;
    let superseded = vuln::superseded(&site.store, &linkset)?;
    Ok(LinksetView {
        linkset,
        superseded,
    })
}

/// One statement as a table row.
#[derive(Debug)]
struct Row {
    key: String,
    source: String,
    id: String,
    revision: u32,
    aliases: String,
    dates: String,
    withdrawn: Option<String>,
    severities: Vec<String>,
    affected: Vec<String>,
    vex: Vec<String>,
    kev: Option<String>,
    epss: Option<String>,
    document: String,
    kit: String,
    ingested: String,
    in_conflict: bool,
}

fn row(st: &Statement, conflicted: &BTreeSet<String>) -> Row {
    let o = &st.observation;
    let affected = o
        .affected
        .iter()
        .map(|a| {
            let pkg = feeds::linkset::package_key(&a.package)
                .or_else(|| a.package.cpe.clone())
                .unwrap_or_else(|| "?".into());
            let mut parts: Vec<String> = a
                .ranges
                .iter()
                .map(|r| format!("{} [{}]", vuln::events_text(&r.events), r.scheme))
                .collect();
            if !a.versions.is_empty() {
                parts.push(format!("versions {}", a.versions.join(", ")));
            }
            if !a.fixed.is_empty() {
                parts.push(format!("fixed {}", a.fixed.join(", ")));
            }
            format!("{pkg}: {}", parts.join("; "))
        })
        .collect();
    Row {
        key: st.key.clone(),
        source: o.source.clone(),
        id: o.source_id.clone(),
        revision: st.revision,
        aliases: o.aliases.join(", "),
        dates: format!(
            "published {} · modified {}",
            o.published.as_deref().unwrap_or("-"),
            o.modified.as_deref().unwrap_or("-")
        ),
        withdrawn: o.withdrawn.clone(),
        severities: o
            .severities
            .iter()
            .map(|s| format!("{} {}", s.kind, s.vector_or_score))
            .collect(),
        affected,
        vex: o
            .vex
            .iter()
            .map(|v| {
                format!(
                    "{}: {}{}",
                    v.product,
                    v.stated_status,
                    v.justification
                        .as_deref()
                        .map(|j| format!(" ({j})"))
                        .unwrap_or_default()
                )
            })
            .collect(),
        kev: o
            .kev
            .as_ref()
            .map(|k| format!("added {} (due {})", k.date_added, k.due_date)),
        epss: o
            .epss
            .as_ref()
            .map(|e| format!("{:.4} (percentile {:.3})", e.score, e.percentile)),
        document: st.document_name.clone(),
        kit: st.kit.clone(),
        ingested: st.ingested.clone(),
        in_conflict: conflicted.contains(&st.key),
    }
}

#[derive(Template)]
#[template(path = "linkset.html")]
struct LinksetPage {
    c: Chrome,
    v: LinksetView,
    rows: Vec<Row>,
    old: Vec<Row>,
}

/// `GET /advisories/{id}`.
pub async fn linkset_page(
    state: State,
    who: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let v = web::block(move || load(&st, &id)).await??;
    let conflicted: BTreeSet<String> = v
        .linkset
        .conflicts
        .iter()
        .flat_map(|c| c.claims.iter().map(|(k, _)| k.clone()))
        .collect();
    let rows = v
        .linkset
        .statements
        .iter()
        .map(|s| row(s, &conflicted))
        .collect();
    let old = v
        .superseded
        .iter()
        .map(|s| row(s, &BTreeSet::new()))
        .collect();
    html(&LinksetPage {
        c: Chrome::of(&state, &who),
        v,
        rows,
        old,
    })
}

/// `GET /api/v1/advisories/{id}`.
pub async fn linkset_api(state: State, id: web::Path<String>) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let v = web::block(move || load(&st, &id)).await??;
    Ok(HttpResponse::Ok().json(v))
}
