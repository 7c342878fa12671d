//! The route table: every page and API call, its method, path, permission and summary. Registration with
//! actix, the guard's permission check, the role × route test and the OpenAPI document all read this table.

use super::{assets, audit, auth, dashboard, images, kits, knowledge, metrics, openapi};
use super::{settings, users};
use actix_web::http::Method;
use actix_web::web;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Perm {
    /// Anyone, signed in or not (login page, assets, health).
    Public,
    /// Any signed-in user, including one who must still change a one-time password.
    Account,
    /// Any signed-in role: read the site's state.
    View,
    /// Read the audit log and verify its chain: admin, security, auditor.
    Audit,
    /// Import kits and scan images: admin, security, operator.
    Import,
    /// Users, roles and settings: admin.
    Admin,
}

/// What a route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An HTML page (errors render as a page).
    Page,
    /// JSON under `/api/` (errors are JSON with a stable code).
    Api,
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// actix path pattern (`{name}` segments).
    pub path: &'static str,
    /// Permission.
    pub perm: Perm,
    /// Page or API.
    pub kind: Kind,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
}

impl Route {
    /// Whether this route changes state (and so needs CSRF protection under a session).
    pub fn mutating(&self) -> bool {
        !matches!(self.method, "GET" | "HEAD")
    }
}

macro_rules! routes {
    ($( $method:ident $path:literal $perm:ident $kind:ident $handler:path, $summary:literal; )*) => {
        /// Every route.
        pub const ROUTES: &[Route] = &[
            $( Route {
                method: stringify!($method),
                path: $path,
                perm: Perm::$perm,
                kind: Kind::$kind,
                summary: $summary,
            }, )*
        ];

        /// Registers every route with actix.
        pub fn register(cfg: &mut web::ServiceConfig) {
            $( cfg.route($path, web::method(method(stringify!($method))).to($handler)); )*
        }
    };
}

routes! {
    GET "/login" Public Page auth::login_page, "The sign-in form";
    POST "/login" Public Page auth::login, "Sign in";
    POST "/logout" Account Page auth::logout, "Sign out";
    GET "/healthz" Public Api metrics::healthz, "Liveness and store health";
    GET "/metrics" View Api metrics::metrics, "Prometheus metrics";
    GET "/static/{file}" Public Page assets::asset, "Embedded stylesheet and images";
    GET "/api/openapi.json" Public Api openapi::document, "This document";

    GET "/" View Page dashboard::page, "Dashboard";
    GET "/api/v1/status" View Api dashboard::api, "Profile, channels, freshness per source, counts";

    GET "/kits" View Page kits::page, "Kit upload, import history and quarantine";
    POST "/kits" Import Page kits::upload_page, "Import an uploaded kit or its volumes";
    GET "/kits/{id}" View Page kits::detail_page, "One imported kit and its signed receipt";
    GET "/api/v1/kits" View Api kits::list_api, "Imported kits";
    POST "/api/v1/kits" Import Api kits::upload_api, "Import a kit (octet-stream body) or its volumes (multipart)";
    GET "/api/v1/kits/{id}" View Api kits::detail_api, "One imported kit and its signed receipt";
    GET "/api/v1/quarantine" View Api kits::quarantine_api, "Rejected imports and why";

    GET "/advisories" View Page knowledge::search_page, "Search advisories by id or purl";
    GET "/advisories/{id}" View Page knowledge::linkset_page, "Every source's statement about a vulnerability";
    GET "/api/v1/advisories" View Api knowledge::search_api, "Search advisories by id prefix or purl";
    GET "/api/v1/advisories/{id}" View Api knowledge::linkset_api, "A linkset, its conflicts and superseded history";

    GET "/images" View Page images::list_page, "Images: scanned and brought by kits";
    GET "/images/{digest}" View Page images::detail_page, "An image's packages and findings";
    POST "/images/{digest}/scan" Import Page images::scan_page, "Scan an image a kit brought";
    GET "/images/{digest}/sbom" View Page images::sbom, "Download the SBOM (CycloneDX or SPDX)";
    GET "/api/v1/images" View Api images::list_api, "Images";
    GET "/api/v1/images/{digest}" View Api images::detail_api, "An image's scan record";
    POST "/api/v1/images/{digest}/scan" Import Api images::scan_api, "Scan an image a kit brought";
    GET "/api/v1/images/{digest}/sbom" View Api images::sbom, "The SBOM (CycloneDX or SPDX)";
    GET "/api/v1/images/{digest}/findings" View Api images::findings_api, "Findings, filtered and paged";

    GET "/audit" Audit Page audit::page, "Browse the audit log";
    GET "/audit/verify" Audit Page audit::verify_page, "Verify the audit chain";
    GET "/api/v1/audit" Audit Api audit::list_api, "Audit events, newest first, paged";
    GET "/api/v1/audit/verify" Audit Api audit::verify_api, "Verify the audit chain";

    GET "/users" Admin Page users::page, "Users and roles";
    POST "/users" Admin Page users::create_page, "Create a user with a one-time secret";
    POST "/users/{name}" Admin Page users::update_page, "Change a user's role, disable, enable or reset";
    GET "/api/v1/users" Admin Api users::list_api, "Users";
    POST "/api/v1/users" Admin Api users::create_api, "Create a user with a one-time secret";
    POST "/api/v1/users/{name}" Admin Api users::update_api, "Change a user's role, disable, enable or reset";

    GET "/account" Account Page users::account_page, "Own password and API tokens";
    POST "/account/password" Account Page users::password_page, "Change own password";
    POST "/account/tokens" View Page users::token_create_page, "Create an API token";
    POST "/account/tokens/{id}/revoke" View Page users::token_revoke_page, "Revoke an API token";
    POST "/api/v1/account/password" Account Api users::password_api, "Change own password";
    GET "/api/v1/tokens" View Api users::tokens_api, "Own API tokens (all for admins)";
    POST "/api/v1/tokens" View Api users::token_create_api, "Create an API token";
    DELETE "/api/v1/tokens/{id}" View Api users::token_revoke_api, "Revoke an API token";

    GET "/settings" View Page settings::page, "Profile, kit-signer set, staleness budget";
    POST "/settings" Admin Page settings::update_page, "Change the staleness budget";
    GET "/api/v1/settings" View Api settings::get_api, "Profile, kit-signer set, staleness budget";
    POST "/api/v1/settings" Admin Api settings::update_api, "Change the staleness budget";
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap_or(Method::GET)
}

/// The route for a method and a matched pattern.
pub fn find(method: &Method, pattern: &str) -> Option<&'static Route> {
    let m = method_name(method);
    ROUTES.iter().find(|r| r.path == pattern && r.method == m)
}

/// A method's name as the table spells it (HEAD is answered as GET).
pub fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET | Method::HEAD => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}
