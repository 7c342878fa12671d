//! Settings: the active profile, the kit-signer set and the staleness budget (the one setting the console
//! changes; the profile is fixed at `stella init`, the signer set rotates only through signed kits).

use super::auth::Principal;
use super::error::WebError;
use super::{audit_event, html, Chrome, State};
use crate::store::Batch;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

/// What the settings page shows.
#[derive(Debug, Serialize)]
pub struct Settings {
    /// Crypto profile.
    pub profile: String,
    /// Appliance key id.
    pub appliance_key: String,
    /// Kit-signer set version.
    pub signer_set_version: u64,
    /// Threshold.
    pub threshold: usize,
    /// Kit-signer key ids and algorithms.
    pub kit_signers: Vec<String>,
    /// Staleness budget, days.
    pub staleness_days: u64,
    /// Clock skew tolerated, seconds.
    pub clock_skew_seconds: u64,
    /// Decompression ratio limit.
    pub max_kit_ratio: u64,
    /// Kit size limit, GiB.
    pub max_kit_gib: u64,
    /// Data directory.
    pub data: String,
}

fn load(state: &State) -> Result<Settings, WebError> {
    let site = state.site();
    let s = crate::status::status(&site, state.now())?;
    Ok(Settings {
        profile: s.profile,
        appliance_key: s.appliance_key,
        signer_set_version: s.signer_set_version,
        threshold: s.threshold,
        kit_signers: s.kit_signers,
        staleness_days: site.config.staleness_days,
        clock_skew_seconds: site.config.clock_skew_seconds,
        max_kit_ratio: site.config.max_kit_ratio,
        max_kit_gib: site.config.max_kit_gib,
        data: s.data,
    })
}

/// A settings change.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// Staleness budget, days (1 to 3650): a number in JSON, text in a form.
    pub staleness_days: Days,
}

/// A number of days as JSON gives it (a number) or a form does (text).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Days {
    /// From JSON.
    Number(i64),
    /// From a form.
    Text(String),
}

impl std::fmt::Display for Days {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Days::Number(n) => write!(f, "{n}"),
            Days::Text(t) => f.write_str(t),
        }
    }
}

fn update(state: &State, who: &Principal, c: &Change) -> Result<(), WebError> {
    let days: u64 = c
        .staleness_days
        .to_string()
        .trim()
        .parse()
        .ok()
        .filter(|d| (1..=3650).contains(d))
        .ok_or_else(|| {
            WebError::bad_request(
                "bad-setting",
                format!(
                    "staleness_days '{}': a whole number of days from 1 to 3650",
                    c.staleness_days
                ),
            )
        })?;
    let old = {
        // Same lock order as imports: the import lock, then the site.
        let _one = state.import_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut site = state.site.write().unwrap_or_else(|e| e.into_inner());
        let old = site.config.staleness_days;
        let mut config = site.config.clone();
        config.staleness_days = days;
        site.update_config(config)?;
        old
    };
    audit_event(
        state,
        Batch::default(),
        "settings-changed",
        &format!("console:{}", who.user),
        serde_json::json!({"staleness_days": {"from": old, "to": days}}),
    )
}

#[derive(Template)]
#[template(path = "settings.html")]
struct Page {
    c: Chrome,
    s: Settings,
    message: Option<String>,
}

/// `GET /settings`.
pub async fn page(state: State, who: Principal) -> Result<HttpResponse, WebError> {
    html(&Page {
        c: Chrome::of(&state, &who),
        s: load(&state)?,
        message: None,
    })
}

/// `POST /settings`.
pub async fn update_page(
    state: State,
    who: Principal,
    form: web::Form<Change>,
) -> Result<HttpResponse, WebError> {
    update(&state, &who, &form)?;
    html(&Page {
        c: Chrome::of(&state, &who),
        s: load(&state)?,
        message: Some("saved".into()),
    })
}

/// `GET /api/v1/settings`.
pub async fn get_api(state: State) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok().json(load(&state)?))
}

/// `POST /api/v1/settings`.
pub async fn update_api(
    state: State,
    who: Principal,
    body: web::Json<Change>,
) -> Result<HttpResponse, WebError> {
    update(&state, &who, &body)?;
    Ok(HttpResponse::Ok().json(load(&state)?))
}
