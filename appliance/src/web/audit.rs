//! The audit log in the console: browse events newest first, and verify the hash chain from the page (the
//! same check as `stella audit verify`, naming the first event that was edited, removed or moved).

use super::auth::Principal;
use super::error::WebError;
use super::{html, Chrome, State};
use crate::audit::{AuditEvent, Head};
use crate::store::{MetaStore as _, Tree};
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

/// Paging.
#[derive(Debug, Deserialize)]
pub struct Paging {
    /// Show events before this sequence number (default: the newest).
    #[serde(default)]
    pub before: Option<u64>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One page of events, newest first.
#[derive(Debug, Serialize)]
pub struct Events {
    /// Events in this page, newest first.
    pub events: Vec<AuditEvent>,
    /// The newest event's number.
    pub head: u64,
    /// Pass as `before` for the next (older) page; absent at the first event.
    pub next: Option<u64>,
}

fn events(state: &State, p: &Paging) -> Result<Events, WebError> {
    let site = state.site();
    let head = site
        .store
        .get_json::<Head>(Tree::Audit, b"head")?
        .unwrap_or_default();
    let limit = p.limit.unwrap_or(100).clamp(1, 1000) as u64;
    let before = p.before.unwrap_or(head.seq + 1).min(head.seq + 1);
    let first = before.saturating_sub(limit).max(1);
    let mut events = Vec::new();
    if before > 1 {
        let after = (first - 1).to_be_bytes();
        for (k, v) in site.store.page(
            Tree::Audit,
            b"",
            (first > 1).then_some(&after[..]),
            (before - first) as usize + 1,
        )? {
            if k.len() != 8 {
                continue;
            }
            let e: AuditEvent = serde_json::from_slice(&v).map_err(WebError::internal)?;
            if e.seq >= first && e.seq < before {
                events.push(e);
            }
        }
    }
    events.reverse();
    Ok(Events {
        events,
        head: head.seq,
        next: (first > 1).then_some(first),
    })
}

/// The result of verifying the chain.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// Whether the whole chain verified.
    pub ok: bool,
    /// Events checked.
    pub events: u64,
    /// The head hash (compare it with a copy kept elsewhere).
    pub head: String,
    /// The digest algorithm of the site profile.
    pub alg: String,
    /// Where and why it broke.
    pub error: Option<String>,
}

fn verify(state: &State) -> Result<Verification, WebError> {
    let site = state.site();
    let head = site
        .store
        .get_json::<Head>(Tree::Audit, b"head")?
        .unwrap_or_default();
    let alg = site.profile.digest_alg().name().to_owned();
    Ok(match crate::audit::verify(&site.store, &site.profile) {
        Ok(n) => Verification {
            ok: true,
            events: n,
            head: head.hash,
            alg,
            error: None,
        },
        Err(e) => Verification {
            ok: false,
            events: 0,
            head: head.hash,
            alg,
            error: Some(e.to_string()),
        },
    })
}

#[derive(Template)]
#[template(path = "audit.html")]
struct Page {
    c: Chrome,
    e: Events,
    v: Option<Verification>,
}

impl Page {
    fn data(&self, e: &AuditEvent) -> String {
        serde_json::to_string(&e.data).unwrap_or_default()
    }
}

/// `GET /audit`.
pub async fn page(
    state: State,
    who: Principal,
    p: web::Query<Paging>,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let e = web::block(move || events(&st, &p)).await??;
    html(&Page {
        c: Chrome::of(&state, &who),
        e,
        v: None,
    })
}

/// `GET /audit/verify`.
pub async fn verify_page(state: State, who: Principal) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let (e, v) = web::block(move || -> Result<_, WebError> {
        Ok((
            events(
                &st,
                &Paging {
                    before: None,
                    limit: None,
                },
            )?,
            verify(&st)?,
        ))
    })
    .await??;
    html(&Page {
        c: Chrome::of(&state, &who),
        e,
        v: Some(v),
    })
}

/// `GET /api/v1/audit`.
pub async fn list_api(state: State, p: web::Query<Paging>) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    Ok(HttpResponse::Ok().json(web::block(move || events(&st, &p)).await??))
}

/// `GET /api/v1/audit/verify`.
pub async fn verify_api(state: State) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    Ok(HttpResponse::Ok().json(web::block(move || verify(&st)).await??))
}
