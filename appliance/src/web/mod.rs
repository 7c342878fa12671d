//! The local console and REST API (DESIGN.md §8): actix-web with askama templates rendered on the server,
//! every asset compiled into the binary, local users with argon2id hashes, sessions in the store, CSRF
//! tokens, login throttling and roles.
//!
//! Architecture invariant: every route is declared once in [`routes::ROUTES`] with the permission it needs;
//! the [`guard`] middleware enforces authentication, role, CSRF and the security headers for every request
//! from that table, so a handler cannot forget them, and the OpenAPI document is generated from the same
//! table. A route missing from the table is refused.

pub mod assets;
pub mod audit;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod images;
pub mod kits;
pub mod knowledge;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod settings;
pub mod users;

use crate::site::Site;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpMessage as _};
use auth::Principal;
use error::WebError;
use kit_builder::clock::Timestamp;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// The clock the console reads: the system clock, or a fixed time for tests and replay (`STELLA_NOW`).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Everything the handlers share.
pub struct AppState {
    /// The open site. Writers (settings) take the write lock; imports serialise on [`AppState::import_lock`].
    pub site: RwLock<Site>,
    /// Now.
    pub clock: Clock,
    /// Failed-login bookkeeping.
    pub throttle: auth::Throttle,
    /// Request and domain counters.
    pub metrics: metrics::Metrics,
    /// Bumped by every change made through the console, so cached aggregates are recomputed. The serving
    /// process holds the store's lock, so nothing else changes the store while it runs.
    pub generation: AtomicU64,
    /// The cached dashboard and the generation it was computed at.
    pub dashboard: Mutex<Option<(u64, Arc<dashboard::Dashboard>)>>,
    /// Per-image finding facets for filtered listings, valid for one generation.
    pub facets: images::FacetCache,
    /// One import at a time.
    pub import_lock: Mutex<()>,
    /// Where uploads are spooled before import (inside the data directory, same filesystem).
    pub uploads: PathBuf,
    next_request: AtomicU64,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("uploads", &self.uploads)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over an open site.
    pub fn new(site: Site, clock: Clock) -> AppState {
        let uploads = site.root.join("uploads");
        AppState {
            site: RwLock::new(site),
            clock,
            throttle: auth::Throttle::default(),
            metrics: metrics::Metrics::default(),
            generation: AtomicU64::new(0),
            dashboard: Mutex::new(None),
            facets: Default::default(),
            import_lock: Mutex::new(()),
            uploads,
            next_request: AtomicU64::new(1),
        }
    }

    /// A read view of the site.
    pub fn site(&self) -> std::sync::RwLockReadGuard<'_, Site> {
        self.site.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Now, as the console sees it.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Records that the store changed.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// Shared state as handlers receive it.
pub type State = web::Data<AppState>;

/// The application: the same factory serves `stella serve` and the tests.
pub fn app(
    state: State,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(web::FormConfig::default().limit(64 << 10))
        .app_data(web::JsonConfig::default().limit(64 << 10))
        .app_data(
            web::QueryConfig::default()
                .error_handler(|e, _| WebError::bad_request("bad-query", e.to_string()).into()),
        )
        .configure(routes::register)
        .default_service(web::to(not_found))
        .wrap(from_fn(guard))
}

async fn not_found() -> Result<actix_web::HttpResponse, WebError> {
    Err(WebError::not_found("no such page or API route"))
}

/// Authentication, roles, CSRF, security headers, request ids, metrics and error pages, for every request.
async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let Some(state) = req.app_data::<State>().cloned() else {
        return Err(WebError::internal("application state missing").into());
    };
    let request_id = state.next_request.fetch_add(1, Ordering::Relaxed);
    let pattern = req.match_pattern();
    let route = pattern
        .as_deref()
        .and_then(|p| routes::find(req.method(), p));
    let html = route.map_or(!req.path().starts_with("/api/"), |r| {
        r.kind == routes::Kind::Page
    });
    let label = route.map_or("unmatched", |r| r.path);
    let mut req = req;
    let outcome = match route {
        None => Ok(()),
        Some(r) => auth::authorize(&state, &mut req, r).await,
    };
    let res = match outcome {
        Ok(()) => next.call(req).await?.map_into_boxed_body(),
        Err(e) => {
            let (http, _) = req.into_parts();
            ServiceResponse::new(http, actix_web::ResponseError::error_response(&e))
        }
    };
    let cause = res
        .response()
        .extensions()
        .get::<WebError>()
        .and_then(|e| e.cause.clone());
    let res = error::finish(res, html, request_id);
    let status = res.status().as_u16();
    let took = started.elapsed();
    let method = req_method(&res);
    state.metrics.record(method, label, status, took);
    match cause {
        Some(cause) => {
            tracing::error!(request_id, method, route = label, status, %cause, "request failed")
        }
        None => tracing::info!(
            request_id,
            method,
            route = label,
            status,
            ms = took.as_secs_f64() * 1e3,
            "request"
        ),
    }
    Ok(res)
}

fn req_method(res: &ServiceResponse) -> &'static str {
    routes::method_name(res.request().method())
}

/// The principal a request was authenticated as (set by the guard).
pub fn principal(req: &actix_web::HttpRequest) -> Option<Principal> {
    req.extensions().get::<Principal>().cloned()
}

/// What `stella serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: std::net::SocketAddr,
    /// Worker threads.
    pub workers: usize,
}

/// Runs the console until interrupted.
pub fn serve(site: Site, clock: Clock, opts: &ServeOptions) -> std::io::Result<()> {
    let state = web::Data::new(AppState::new(site, clock));
    std::fs::create_dir_all(&state.uploads)?;
    let listen = opts.listen;
    let workers = opts.workers.max(1);
    actix_web::rt::System::new().block_on(async move {
        actix_web::HttpServer::new(move || app(state.clone()))
            .workers(workers)
            .bind(listen)?
            .run()
            .await
    })
}

/// What every page shows around its content: the sealed-mode banner (profile, data freshness), the signed-in
/// user and the navigation their role allows, and the CSRF token for forms.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// Signed-in user.
    pub user: Option<String>,
    /// Their role.
    pub role: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Active crypto profile.
    pub profile: String,
    /// Freshness line for the banner.
    pub freshness: String,
    /// Sources or channels older than the staleness budget.
    pub stale: Vec<String>,
    /// May read the audit log.
    pub can_audit: bool,
    /// May import kits and scan.
    pub can_import: bool,
    /// May manage users and settings.
    pub can_admin: bool,
    /// Must change a one-time password.
    pub must_change: bool,
}

impl Chrome {
    /// The banner for someone not signed in.
    pub fn anonymous(state: &State) -> Chrome {
        let mut c = Chrome::default();
        c.banner(state);
        c
    }

    /// The chrome for a signed-in principal.
    pub fn of(state: &State, who: &Principal) -> Chrome {
        use routes::Perm;
        let mut c = Chrome {
            user: Some(who.user.clone()),
            role: who.role.name().to_owned(),
            csrf: who.csrf.clone().unwrap_or_default(),
            can_audit: who.role.allows(Perm::Audit),
            can_import: who.role.allows(Perm::Import),
            can_admin: who.role.allows(Perm::Admin),
            must_change: who.must_change,
            ..Chrome::default()
        };
        c.banner(state);
        c
    }

    fn banner(&mut self, state: &State) {
        match dashboard::current(state) {
            Ok(d) => {
                self.profile = d.status.profile.clone();
                self.freshness = d.freshness_line();
                self.stale = d.stale();
            }
            Err(e) => {
                self.profile = state.site().profile.id().to_string();
                self.freshness = format!("unknown ({})", e.message);
            }
        }
    }
}

/// An HTML response from a rendered template.
pub fn html(t: &impl askama::Template) -> Result<actix_web::HttpResponse, WebError> {
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(t.render()?))
}

/// A 303 redirect after a form.
pub fn see_other(to: &str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, to))
        .finish()
}

/// Appends an audit event for a console action, in its own transaction, serialised with imports.
pub fn audit_event(
    state: &State,
    batch: crate::store::Batch,
    kind: &str,
    actor: &str,
    data: serde_json::Value,
) -> Result<(), WebError> {
    use crate::store::MetaStore as _;
    let _w = state.import_lock.lock().unwrap_or_else(|e| e.into_inner());
    let site = state.site();
    let mut batch = batch;
    let mut w = crate::audit::AuditWriter::new(&site.store, &site.profile)?;
    w.append(&mut batch, &state.now().to_string(), kind, actor, data);
    site.store.apply(batch)?;
    drop(site);
    state.changed();
    Ok(())
}
