//! Who is asking, and may they: local users with argon2id password hashes, sessions kept in the store (by the
//! SHA-256 of their token, so a copy of the store holds no usable session), API tokens hashed the same way,
//! CSRF tokens bound to the session, login throttling, and the five roles.

use super::error::WebError;
use super::routes::{Kind, Perm, Route};
use super::{Chrome, State};
use crate::store::{Batch, MetaStore, Store, StoreError, Tree};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::ServiceRequest;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse};
use askama::Template;
use kit_builder::clock::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// The session cookie.
pub const SESSION_COOKIE: &str = "stella_session";
/// The pre-session cookie that protects the sign-in form against login CSRF.
pub const LOGIN_COOKIE: &str = "stella_login";
/// Sessions end this long after sign-in.
pub const SESSION_SECONDS: i64 = 8 * 3600;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// The five roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, including users and settings.
    Admin,
    /// Releases and promotions (their pages come with the release issue); reads everything else.
    ReleaseManager,
    /// Knowledge, findings, kits and the audit log.
    Security,
    /// Reads everything and verifies the audit chain; changes nothing.
    Auditor,
    /// Imports kits and scans images; reads the site.
    Operator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::ReleaseManager,
        Role::Security,
        Role::Auditor,
        Role::Operator,
    ];

    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReleaseManager => "release-manager",
            Role::Security => "security",
            Role::Auditor => "auditor",
            Role::Operator => "operator",
        }
    }

    /// Whether the role grants a permission.
    pub fn allows(self, perm: Perm) -> bool {
        match perm {
            Perm::Public | Perm::Account | Perm::View => true,
            Perm::Audit => matches!(self, Role::Admin | Role::Security | Role::Auditor),
            Perm::Import => matches!(self, Role::Admin | Role::Security | Role::Operator),
            Perm::Admin => self == Role::Admin,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = WebError;
    fn from_str(s: &str) -> Result<Role, WebError> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                WebError::bad_request(
                    "bad-role",
                    format!(
                        "unknown role '{s}': one of {}",
                        Role::ALL.map(Role::name).join(", ")
                    ),
                )
            })
    }
}

/// A console user as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    pub hash: String,
    /// Created.
    pub created: String,
    /// The password is a one-time secret: the user must choose a new one before anything else.
    pub must_change: bool,
    /// Disabled users cannot sign in; their sessions and tokens stop working.
    pub disabled: bool,
}

/// A session as stored (key: SHA-256 of the cookie value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// User.
    pub user: String,
    /// The CSRF token every form and mutating call of this session must carry.
    pub csrf: String,
    /// Signed in at (Unix seconds).
    pub created: i64,
    /// Ends at (Unix seconds).
    pub expires: i64,
}

/// An API token as stored (key: SHA-256 of the token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiToken {
    /// Short public id (for listing and revoking).
    pub id: String,
    /// What it is for.
    pub name: String,
    /// Owner.
    pub user: String,
    /// The role it acts with (at most the owner's).
    pub role: Role,
    /// Created.
    pub created: String,
    /// Ends at (Unix seconds), if it ends.
    pub expires: Option<i64>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// User name.
    pub user: String,
    /// Effective role.
    pub role: Role,
    /// Must change a one-time password first.
    pub must_change: bool,
    /// The session's CSRF token (none for API tokens, which are not sent by browsers on their own).
    pub csrf: Option<String>,
    /// The API token id, when authenticated by token.
    pub token: Option<String>,
}

/// SHA-256 hex (keys of sessions and tokens).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

/// A random URL-safe secret of 32 bytes.
pub fn random_secret() -> Result<String, WebError> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| WebError::internal("system random source failed"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

fn argon() -> argon2::Argon2<'static> {
    // OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// The argon2id PHC string of a password.
pub fn hash_password(password: &str) -> Result<String, WebError> {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    use ring::rand::SecureRandom as _;
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| WebError::internal("system random source failed"))?;
    let salt = SaltString::encode_b64(&salt).map_err(WebError::internal)?;
    argon()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(WebError::internal)
}

/// Whether a password matches a stored hash.
pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
    PasswordHash::new(hash)
        .map(|h| argon().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A password a user chose is acceptable.
pub fn check_password_rules(password: &str) -> Result<(), WebError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(WebError::bad_request(
            "weak-password",
            format!("a password needs at least {MIN_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// A user by name.
pub fn user(store: &impl MetaStore, name: &str) -> Result<Option<User>, StoreError> {
    store.get_json(Tree::Users, name.as_bytes())
}

/// Creates the first admin when the site has no user yet, and returns its one-time secret (printed once by
/// `stella init`; only its hash is kept).
pub fn bootstrap_admin(store: &Store, now: Timestamp) -> Result<Option<String>, WebError> {
    if !store.scan(Tree::Users, b"")?.is_empty() {
        return Ok(None);
    }
    let secret = random_secret()?;
    let u = User {
        name: "admin".into(),
        role: Role::Admin,
        hash: hash_password(&secret)?,
        created: now.to_string(),
        must_change: true,
        disabled: false,
    };
    let mut b = Batch::default();
    b.put_json(Tree::Users, "admin", &u);
    store.apply(b)?;
    Ok(Some(secret))
}

/// Failed sign-ins per user name and per client address: after [`Throttle::FREE`] failures within the
/// window, each further attempt is refused for a delay that doubles up to [`Throttle::MAX_DELAY`].
#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<String, (u32, i64)>>,
}

impl Throttle {
    /// Failures allowed before delays start.
    pub const FREE: u32 = 5;
    /// Longest delay, seconds.
    pub const MAX_DELAY: i64 = 900;

    /// Seconds to wait before `key` may try again, if any.
    pub fn wait(&self, key: &str, now: i64) -> Option<i64> {
        let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (fails, last) = *e.get(key)?;
        if fails < Self::FREE {
            return None;
        }
        let delay = (30i64 << (fails - Self::FREE).min(10)).min(Self::MAX_DELAY);
        let left = last + delay - now;
        (left > 0).then_some(left)
    }

    /// Records a failure.
    pub fn fail(&self, key: &str, now: i64) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = e.entry(key.to_owned()).or_insert((0, now));
        // Failures older than the longest delay are forgotten.
        if now - entry.1 > Self::MAX_DELAY {
            *entry = (0, now);
        }
        entry.0 += 1;
        entry.1 = now;
    }

    /// Forgets a key after a successful sign-in.
    pub fn clear(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

fn session_principal(state: &State, cookie: &str) -> Result<Option<Principal>, WebError> {
    let site = state.site();
    let Some(s) = site
        .store
        .get_json::<Session>(Tree::Sessions, sha256_hex(cookie.as_bytes()).as_bytes())?
    else {
        return Ok(None);
    };
    if s.expires <= state.now().0 {
        return Ok(None);
    }
    let Some(u) = user(&site.store, &s.user)?.filter(|u| !u.disabled) else {
        return Ok(None);
    };
    Ok(Some(Principal {
        user: u.name,
        role: u.role,
        must_change: u.must_change,
        csrf: Some(s.csrf),
        token: None,
    }))
}

fn token_principal(state: &State, token: &str) -> Result<Option<Principal>, WebError> {
    let site = state.site();
    let Some(t) = site
        .store
        .get_json::<ApiToken>(Tree::Tokens, sha256_hex(token.as_bytes()).as_bytes())?
    else {
        return Ok(None);
    };
    if t.expires.is_some_and(|e| e <= state.now().0) {
        return Ok(None);
    }
    let Some(u) = user(&site.store, &t.user)?.filter(|u| !u.disabled && !u.must_change) else {
        return Ok(None);
    };
    // A token never acts above its owner's current role.
    let role = if u.role == Role::Admin || u.role == t.role {
        t.role
    } else {
        return Ok(None);
    };
    Ok(Some(Principal {
        user: u.name,
        role,
        must_change: false,
        csrf: None,
        token: Some(t.id),
    }))
}

/// The caller, from the session cookie or an `Authorization: Bearer` API token.
pub fn authenticate(state: &State, req: &ServiceRequest) -> Result<Option<Principal>, WebError> {
    if let Some(h) = req.headers().get(header::AUTHORIZATION) {
        let token = h
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthenticated(Kind::Api, "", "malformed Authorization header"))?;
        return token_principal(state, token.trim())?
            .map(Some)
            .ok_or_else(|| {
                unauthenticated(Kind::Api, "", "unknown, expired or revoked API token")
            });
    }
    match req.cookie(SESSION_COOKIE) {
        Some(c) => session_principal(state, c.value()),
        None => Ok(None),
    }
}

fn unauthenticated(kind: Kind, path: &str, message: &str) -> WebError {
    let mut e = WebError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message);
    if kind == Kind::Page {
        e.redirect = Some(format!("/login?next={}", encode_next(path)));
    }
    e
}

fn encode_next(path: &str) -> String {
    serde_urlencoded::to_string([("", path)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// The guard's decision for one request: authenticated, allowed by role, CSRF-checked when it changes state.
pub async fn authorize(
    state: &State,
    req: &mut ServiceRequest,
    route: &Route,
) -> Result<(), WebError> {
    if route.perm == Perm::Public {
        return Ok(());
    }
    let who = authenticate(state, req)?.ok_or_else(|| {
        unauthenticated(
            route.kind,
            req.path(),
            "sign in first (or send an API token)",
        )
    })?;
    if who.must_change && route.perm != Perm::Account {
        let mut e = WebError::forbidden(
            "password-change-required",
            "choose a new password first: the one-time secret only opens the account page",
        );
        if route.kind == Kind::Page {
            e.redirect = Some("/account".into());
        }
        return Err(e);
    }
    if !who.role.allows(route.perm) {
        return Err(WebError::forbidden(
            "forbidden",
            format!(
                "role '{}' may not {} {}",
                who.role.name(),
                route.method,
                route.path
            ),
        ));
    }
    if route.mutating() {
        if let Some(expected) = &who.csrf {
            check_origin(req)?;
            let given = csrf_of(req).await?;
            if !constant_eq(given.as_deref().unwrap_or(""), expected) {
                return Err(WebError::forbidden(
                    "csrf-failed",
                    "the form's CSRF token is missing or stale; reload the page and try again",
                ));
            }
        }
    }
    req.extensions_mut().insert(who);
    Ok(())
}

/// A request from a browser that says where it comes from must come from this console.
fn check_origin(req: &ServiceRequest) -> Result<(), WebError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let host = req.connection_info().host().to_owned();
    let ok = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .is_some_and(|(_, h)| h == host);
    if ok {
        Ok(())
    } else {
        Err(WebError::forbidden(
            "cross-origin",
            "cross-origin requests may not change anything",
        ))
    }
}

/// The CSRF token of a request: the `X-CSRF-Token` header, the `csrf` query parameter (multipart forms), or
/// the `csrf` field of a url-encoded form body (read here and put back for the handler).
async fn csrf_of(req: &mut ServiceRequest) -> Result<Option<String>, WebError> {
    if let Some(v) = req.headers().get("x-csrf-token") {
        return Ok(v.to_str().ok().map(str::to_owned));
    }
    if let Some(v) = query_param(req.query_string(), "csrf") {
        return Ok(Some(v));
    }
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Ok(None);
    }
    let body = req
        .extract::<web::Bytes>()
        .await
        .map_err(|e| WebError::bad_request("bad-form", e.to_string()))?;
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|f| f.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
    req.set_payload(actix_web::dev::Payload::from(body));
    Ok(token)
}

fn query_param(query: &str, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Compares secrets in time independent of where they differ.
pub fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The authenticated caller of a handler (the guard put it there).
impl actix_web::FromRequest for Principal {
    type Error = WebError;
    type Future = std::future::Ready<Result<Principal, WebError>>;
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(super::principal(req).ok_or_else(|| {
            WebError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first")
        }))
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    csrf: String,
    next: String,
    message: Option<String>,
}

/// Query of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn login_form(
    state: &State,
    next: &str,
    message: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let csrf = random_secret()?;
    let page = LoginPage {
        c: Chrome::anonymous(state),
        csrf: csrf.clone(),
        next: safe_next(next).to_owned(),
        message,
    }
    .render()?;
    Ok(HttpResponse::build(status)
        .cookie(
            Cookie::build(LOGIN_COOKIE, csrf)
                .path("/login")
                .http_only(true)
                .same_site(SameSite::Strict)
                .finish(),
        )
        .content_type("text/html; charset=utf-8")
        .body(page))
}

/// `GET /login`.
pub async fn login_page(state: State, q: web::Query<LoginQuery>) -> Result<HttpResponse, WebError> {
    login_form(
        &state,
        q.next.as_deref().unwrap_or("/"),
        None,
        StatusCode::OK,
    )
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

/// Only local paths are followed after sign-in.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

/// `POST /login`.
pub async fn login(
    state: State,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    let cookie = req.cookie(LOGIN_COOKIE);
    if !cookie.is_some_and(|c| constant_eq(c.value(), &form.csrf)) {
        return login_form(
            &state,
            &form.next,
            Some("the sign-in form expired; try again".into()),
            StatusCode::FORBIDDEN,
        );
    }
    let now = state.now().0;
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let keys = [format!("user:{}", form.user), format!("addr:{peer}")];
    if let Some(wait) = keys
        .iter()
        .filter_map(|k| state.throttle.wait(k, now))
        .max()
    {
        state.metrics.login("throttled");
        tracing::warn!(user = %form.user, %peer, "sign-in throttled");
        let mut res = login_form(
            &state,
            &form.next,
            Some(format!("too many failed sign-ins: try again in {wait} s")),
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        if let Ok(v) = header::HeaderValue::from_str(&wait.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(res);
    }
    let st = state.clone();
    let (name, password) = (form.user.clone(), form.password);
    // argon2 takes tens of milliseconds by design: keep it off the async workers.
    let found = web::block(move || -> Result<Option<User>, WebError> {
        let site = st.site();
        let u = user(&site.store, &name)?;
        // Hash even for unknown users so timing does not tell which names exist.
        let hash = u
            .as_ref()
            .map(|u| u.hash.clone())
            .unwrap_or_else(dummy_hash);
        let ok = verify_password(&hash, &password);
        Ok(u.filter(|u| ok && !u.disabled))
    })
    .await??;
    let Some(u) = found else {
        for k in &keys {
            state.throttle.fail(k, now);
        }
        state.metrics.login("failed");
        tracing::warn!(user = %form.user, %peer, "sign-in failed");
        // In the audit chain too (throttled attempts are not, so a flood cannot grow it without bound). The
        // name tried is cut short: it is whatever the client sent.
        let tried: String = form.user.chars().take(64).collect();
        super::audit_event(
            &state,
            Batch::default(),
            "sign-in-failed",
            "anonymous",
            serde_json::json!({"user": tried, "peer": peer}),
        )?;
        return login_form(
            &state,
            &form.next,
            Some("wrong user name or password".into()),
            StatusCode::UNAUTHORIZED,
        );
    };
    for k in &keys {
        state.throttle.clear(k);
    }
    state.metrics.login("ok");
    tracing::info!(user = %u.name, %peer, "signed in");
    let token = random_secret()?;
    let session = Session {
        user: u.name.clone(),
        csrf: random_secret()?,
        created: now,
        expires: now + SESSION_SECONDS,
    };
    let mut b = Batch::default();
    {
        let site = state.site();
        // Expired sessions (anyone's) are dropped whenever someone signs in.
        for (k, v) in site.store.scan(Tree::Sessions, b"")? {
            if serde_json::from_slice::<Session>(&v).map_or(true, |s| s.expires <= now) {
                b.remove(Tree::Sessions, k);
            }
        }
    }
    b.put_json(Tree::Sessions, sha256_hex(token.as_bytes()), &session);
    // The session and its audit event in one transaction.
    super::audit_event(
        &state,
        b,
        "sign-in",
        &u.name,
        serde_json::json!({"peer": peer, "must_change": u.must_change}),
    )?;
    let to = if u.must_change {
        "/account"
    } else {
        safe_next(&form.next)
    };
    Ok(HttpResponse::SeeOther()
        .cookie(
            Cookie::build(SESSION_COOKIE, token)
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .max_age(actix_web::cookie::time::Duration::seconds(SESSION_SECONDS))
                .finish(),
        )
        .cookie(
            Cookie::build(LOGIN_COOKIE, "")
                .path("/login")
                .max_age(actix_web::cookie::time::Duration::ZERO)
                .finish(),
        )
        .insert_header((header::LOCATION, to))
        .finish())
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password("not a password of anyone").unwrap_or_default())
        .clone()
}

/// `POST /logout`.
pub async fn logout(state: State, req: HttpRequest) -> Result<HttpResponse, WebError> {
    if let Some(c) = req.cookie(SESSION_COOKIE) {
        let key = sha256_hex(c.value().as_bytes());
        let session: Option<Session> = state
            .site()
            .store
            .get_json(Tree::Sessions, key.as_bytes())?;
        let mut b = Batch::default();
        b.remove(Tree::Sessions, key);
        match session {
            Some(s) => super::audit_event(&state, b, "sign-out", &s.user, serde_json::json!({}))?,
            None => state.site().store.apply(b)?,
        }
    }
    Ok(HttpResponse::SeeOther()
        .cookie(
            Cookie::build(SESSION_COOKIE, "")
                .path("/")
                .max_age(actix_web::cookie::time::Duration::ZERO)
                .finish(),
        )
        .insert_header((header::LOCATION, "/login"))
        .finish())
}

/// A new one-time secret for a user: enables them, requires a new password, ends their sessions (the writes go
/// into `batch`). Returns the secret, to be shown once.
pub fn reset_secret(
    store: &impl MetaStore,
    user: &mut User,
    batch: &mut Batch,
) -> Result<String, WebError> {
    let secret = random_secret()?;
    user.hash = hash_password(&secret)?;
    user.must_change = true;
    user.disabled = false;
    end_sessions(store, &user.name, batch)?;
    batch.put_json(Tree::Users, user.name.as_bytes(), &*user);
    Ok(secret)
}

/// Ends every session of a user (disabled, password reset).
pub fn end_sessions(
    store: &impl MetaStore,
    name: &str,
    batch: &mut Batch,
) -> Result<(), StoreError> {
    for (k, v) in store.scan(Tree::Sessions, b"")? {
        if serde_json::from_slice::<Session>(&v).is_ok_and(|s| s.user == name) {
            batch.remove(Tree::Sessions, k);
        }
    }
    Ok(())
}
