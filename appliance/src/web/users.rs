//! Users, roles, own password and API tokens. New users and password resets get a one-time secret shown once;
//! the user must choose a new password before anything else. Every change is audited.

use super::auth::{self, ApiToken, Principal, Role, User};
use super::error::WebError;
use super::{audit_event, html, Chrome, State};
use crate::store::{Batch, MetaStore as _, Tree};
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

/// A user as listed (no hash).
#[derive(Debug, Serialize)]
pub struct UserView {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Created.
    pub created: String,
    /// Still on a one-time secret.
    pub must_change: bool,
    /// Disabled.
    pub disabled: bool,
}

fn users(state: &State) -> Result<Vec<UserView>, WebError> {
    let site = state.site();
    site.store
        .scan(Tree::Users, b"")?
        .into_iter()
        .map(|(_, v)| {
            let u: User = serde_json::from_slice(&v).map_err(WebError::internal)?;
            Ok(UserView {
                name: u.name,
                role: u.role,
                created: u.created,
                must_change: u.must_change,
                disabled: u.disabled,
            })
        })
        .collect()
}

fn check_name(name: &str) -> Result<(), WebError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(WebError::bad_request(
            "bad-user-name",
            format!("user name '{name}': use 1-64 of a-z, 0-9, '.', '-', '_'"),
        ))
    }
}

/// A new user.
#[derive(Debug, Deserialize)]
pub struct NewUser {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
}

/// A one-time secret, shown once.
#[derive(Debug, Serialize)]
pub struct Secret {
    /// Whose.
    pub user: String,
    /// The secret.
    pub secret: String,
}

fn create(state: &State, who: &Principal, req: &NewUser) -> Result<Secret, WebError> {
    check_name(&req.name)?;
    let role: Role = req.role.parse()?;
    if auth::user(&state.site().store, &req.name)?.is_some() {
        return Err(WebError::new(
            actix_web::http::StatusCode::CONFLICT,
            "user-exists",
            format!("user '{}' already exists", req.name),
        ));
    }
    let secret = auth::random_secret()?;
    let u = User {
        name: req.name.clone(),
        role,
        hash: auth::hash_password(&secret)?,
        created: state.now().to_string(),
        must_change: true,
        disabled: false,
    };
    let mut b = Batch::default();
    b.put_json(Tree::Users, u.name.as_bytes(), &u);
    audit_event(
        state,
        b,
        "user-created",
        &actor(who),
        serde_json::json!({"user": u.name, "role": role.name()}),
    )?;
    Ok(Secret {
        user: u.name,
        secret,
    })
}

/// A change to a user.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// `role`, `disable`, `enable` or `reset`.
    pub action: String,
    /// The new role (for `role`).
    #[serde(default)]
    pub role: Option<String>,
}

fn actor(who: &Principal) -> String {
    match &who.token {
        Some(t) => format!("console:{} (token {t})", who.user),
        None => format!("console:{}", who.user),
    }
}

fn update(
    state: &State,
    who: &Principal,
    name: &str,
    c: &Change,
) -> Result<Option<Secret>, WebError> {
    let mut u = auth::user(&state.site().store, name)?
        .ok_or_else(|| WebError::not_found(format!("no user '{name}'")))?;
    let mut b = Batch::default();
    let mut secret = None;
    let admins = users(state)?
        .iter()
        .filter(|v| v.role == Role::Admin && !v.disabled)
        .count();
    let last_admin = u.role == Role::Admin && !u.disabled && admins <= 1;
    match c.action.as_str() {
        "role" => {
            let role: Role = c.role.as_deref().unwrap_or("").parse()?;
            if last_admin && role != Role::Admin {
                return Err(last_admin_error());
            }
            u.role = role;
        }
        "disable" => {
            if last_admin {
                return Err(last_admin_error());
            }
            u.disabled = true;
            auth::end_sessions(&state.site().store, name, &mut b)?;
        }
        "enable" => u.disabled = false,
        "reset" => {
            let s = auth::reset_secret(&state.site().store, &mut u, &mut b)?;
            secret = Some(Secret {
                user: name.to_owned(),
                secret: s,
            });
        }
        other => {
            return Err(WebError::bad_request(
                "bad-action",
                format!("unknown action '{other}': role, disable, enable or reset"),
            ))
        }
    }
    b.put_json(Tree::Users, name.as_bytes(), &u);
    audit_event(
        state,
        b,
        "user-changed",
        &actor(who),
        serde_json::json!({"user": name, "action": c.action, "role": u.role.name()}),
    )?;
    Ok(secret)
}

fn last_admin_error() -> WebError {
    WebError::new(
        actix_web::http::StatusCode::CONFLICT,
        "last-admin",
        "this is the last enabled admin: make another admin first",
    )
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    c: Chrome,
    users: Vec<UserView>,
    roles: Vec<&'static str>,
    secret: Option<Secret>,
}

fn users_page(
    state: &State,
    who: &Principal,
    secret: Option<Secret>,
) -> Result<HttpResponse, WebError> {
    html(&UsersPage {
        c: Chrome::of(state, who),
        users: users(state)?,
        roles: Role::ALL.map(Role::name).to_vec(),
        secret,
    })
}

/// `GET /users`.
pub async fn page(state: State, who: Principal) -> Result<HttpResponse, WebError> {
    users_page(&state, &who, None)
}

/// `POST /users`.
pub async fn create_page(
    state: State,
    who: Principal,
    form: web::Form<NewUser>,
) -> Result<HttpResponse, WebError> {
    let (st, w) = (state.clone(), who.clone());
    let s = web::block(move || create(&st, &w, &form)).await??;
    users_page(&state, &who, Some(s))
}

/// `POST /users/{name}`.
pub async fn update_page(
    state: State,
    who: Principal,
    name: web::Path<String>,
    form: web::Form<Change>,
) -> Result<HttpResponse, WebError> {
    let (st, w) = (state.clone(), who.clone());
    match web::block(move || update(&st, &w, &name, &form)).await?? {
        // A reset's one-time secret is shown once, in this response.
        Some(secret) => users_page(&state, &who, Some(secret)),
        None => Ok(super::see_other("/users")),
    }
}

/// `GET /api/v1/users`.
pub async fn list_api(state: State) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok().json(users(&state)?))
}

/// `POST /api/v1/users`: 201 with the one-time secret.
pub async fn create_api(
    state: State,
    who: Principal,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let s = web::block(move || create(&st, &who, &body)).await??;
    Ok(HttpResponse::Created().json(s))
}

/// `POST /api/v1/users/{name}`: the new one-time secret for `reset`.
pub async fn update_api(
    state: State,
    who: Principal,
    name: web::Path<String>,
    body: web::Json<Change>,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let s = web::block(move || update(&st, &who, &name, &body)).await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({"ok": true, "secret": s})))
}

/// A password change.
#[derive(Debug, Deserialize)]
pub struct PasswordChange {
    /// The current password (or one-time secret).
    pub current: String,
    /// The new one.
    pub new: String,
    /// The new one again (forms only).
    #[serde(default)]
    pub confirm: Option<String>,
}

fn change_password(state: &State, who: &Principal, p: &PasswordChange) -> Result<(), WebError> {
    if p.confirm.as_deref().is_some_and(|c| c != p.new) {
        return Err(WebError::bad_request(
            "password-mismatch",
            "the new password and its confirmation differ",
        ));
    }
    auth::check_password_rules(&p.new)?;
    let mut u = auth::user(&state.site().store, &who.user)?
        .ok_or_else(|| WebError::not_found("no such user"))?;
    if !auth::verify_password(&u.hash, &p.current) {
        return Err(WebError::forbidden(
            "wrong-password",
            "the current password is wrong",
        ));
    }
    if p.new == p.current {
        return Err(WebError::bad_request(
            "password-unchanged",
            "choose a password different from the current one",
        ));
    }
    u.hash = auth::hash_password(&p.new)?;
    u.must_change = false;
    let mut b = Batch::default();
    b.put_json(Tree::Users, u.name.as_bytes(), &u);
    audit_event(
        state,
        b,
        "password-changed",
        &actor(who),
        serde_json::json!({"user": u.name}),
    )
}

/// The caller's tokens (every token for an admin). A stored token holds no secret, only its hash as key.
fn tokens(state: &State, who: &Principal) -> Result<Vec<ApiToken>, WebError> {
    let site = state.site();
    let mut out = Vec::new();
    for (_, v) in site.store.scan(Tree::Tokens, b"")? {
        let t: ApiToken = serde_json::from_slice(&v).map_err(WebError::internal)?;
        if t.user == who.user || who.role == Role::Admin {
            out.push(t);
        }
    }
    out.sort_by(|a, b| a.created.cmp(&b.created));
    Ok(out)
}

/// A new API token.
#[derive(Debug, Deserialize)]
pub struct NewToken {
    /// What it is for.
    pub name: String,
    /// Its role (default: the creator's; only admins may choose another).
    #[serde(default)]
    pub role: Option<String>,
    /// Days until it expires (none: it does not).
    #[serde(default)]
    pub days: Option<String>,
}

/// A new token, shown once.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    /// Public id.
    pub id: String,
    /// The token: send as `Authorization: Bearer …`.
    pub token: String,
    /// Role.
    pub role: Role,
}

fn create_token(state: &State, who: &Principal, t: &NewToken) -> Result<CreatedToken, WebError> {
    if who.token.is_some() {
        return Err(WebError::forbidden(
            "token-not-allowed",
            "API tokens cannot create API tokens; sign in",
        ));
    }
    let name = t.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(WebError::bad_request(
            "bad-token-name",
            "name the token (1-100 characters)",
        ));
    }
    let role = match t.role.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => r.parse()?,
        None => who.role,
    };
    if role != who.role && who.role != Role::Admin {
        return Err(WebError::forbidden(
            "role-not-allowed",
            format!(
                "a '{}' may only create tokens with its own role",
                who.role.name()
            ),
        ));
    }
    let now = state.now();
    let expires = match t.days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => {
            let days: i64 = d
                .parse()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| {
                    WebError::bad_request(
                        "bad-expiry",
                        format!("days '{d}': a number from 1 to 3650"),
                    )
                })?;
            Some(now.0 + days * 86_400)
        }
        None => None,
    };
    let token = format!("stk_{}", auth::random_secret()?);
    let digest = auth::sha256_hex(token.as_bytes());
    let rec = ApiToken {
        id: digest[..12].to_owned(),
        name: name.to_owned(),
        user: who.user.clone(),
        role,
        created: now.to_string(),
        expires,
    };
    let mut b = Batch::default();
    b.put_json(Tree::Tokens, digest, &rec);
    audit_event(
        state,
        b,
        "token-created",
        &actor(who),
        serde_json::json!({"id": rec.id, "name": rec.name, "role": role.name(), "expires": expires}),
    )?;
    Ok(CreatedToken {
        id: rec.id,
        token,
        role,
    })
}

fn revoke_token(state: &State, who: &Principal, id: &str) -> Result<(), WebError> {
    let found = {
        let site = state.site();
        let mut found = None;
        for (k, v) in site.store.scan(Tree::Tokens, b"")? {
            let t: ApiToken = serde_json::from_slice(&v).map_err(WebError::internal)?;
            if t.id == id && (t.user == who.user || who.role == Role::Admin) {
                found = Some(k);
            }
        }
        found
    };
    let key = found.ok_or_else(|| WebError::not_found(format!("no token '{id}' of yours")))?;
    let mut b = Batch::default();
    b.remove(Tree::Tokens, key);
    audit_event(
        state,
        b,
        "token-revoked",
        &actor(who),
        serde_json::json!({"id": id}),
    )
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    c: Chrome,
    tokens: Vec<ApiToken>,
    created: Option<CreatedToken>,
    message: Option<String>,
    roles: Vec<&'static str>,
}

fn account(
    state: &State,
    who: &Principal,
    created: Option<CreatedToken>,
    message: Option<String>,
) -> Result<HttpResponse, WebError> {
    html(&AccountPage {
        c: Chrome::of(state, who),
        tokens: if who.must_change {
            Vec::new()
        } else {
            tokens(state, who)?
        },
        created,
        message,
        roles: Role::ALL.map(Role::name).to_vec(),
    })
}

/// Query of the account page: what the last form did.
#[derive(Debug, Deserialize)]
pub struct AccountQuery {
    #[serde(default)]
    changed: Option<u8>,
    #[serde(default)]
    revoked: Option<u8>,
}

/// `GET /account`.
pub async fn account_page(
    state: State,
    who: Principal,
    q: web::Query<AccountQuery>,
) -> Result<HttpResponse, WebError> {
    let message = if q.changed.is_some() {
        Some("password changed".to_owned())
    } else if q.revoked.is_some() {
        Some("token revoked".to_owned())
    } else {
        None
    };
    account(&state, &who, None, message)
}

/// `POST /account/password`.
pub async fn password_page(
    state: State,
    who: Principal,
    form: web::Form<PasswordChange>,
) -> Result<HttpResponse, WebError> {
    let (st, w) = (state.clone(), who.clone());
    web::block(move || change_password(&st, &w, &form)).await??;
    // The principal was read before the change; the next request sees the new state.
    Ok(super::see_other("/account?changed=1"))
}

/// `POST /api/v1/account/password`.
pub async fn password_api(
    state: State,
    who: Principal,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    web::block(move || change_password(&st, &who, &body)).await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({"ok": true})))
}

/// `POST /account/tokens`.
pub async fn token_create_page(
    state: State,
    who: Principal,
    form: web::Form<NewToken>,
) -> Result<HttpResponse, WebError> {
    let t = create_token(&state, &who, &form)?;
    account(&state, &who, Some(t), None)
}

/// `POST /account/tokens/{id}/revoke`.
pub async fn token_revoke_page(
    state: State,
    who: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    revoke_token(&state, &who, &id)?;
    Ok(super::see_other("/account?revoked=1"))
}

/// `GET /api/v1/tokens`.
pub async fn tokens_api(state: State, who: Principal) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok().json(tokens(&state, &who)?))
}

/// `POST /api/v1/tokens`: 201 with the token, shown once.
pub async fn token_create_api(
    state: State,
    who: Principal,
    body: web::Json<NewToken>,
) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Created().json(create_token(&state, &who, &body)?))
}

/// `DELETE /api/v1/tokens/{id}`.
pub async fn token_revoke_api(
    state: State,
    who: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    revoke_token(&state, &who, &id)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"ok": true})))
}
