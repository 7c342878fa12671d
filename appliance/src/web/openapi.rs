//! The OpenAPI 3.1 document at `/api/openapi.json`, generated from the route table so it cannot drift from
//! the routes actix serves (a test also calls every documented operation).

use super::auth::Role;
use super::routes::{Kind, Perm, ROUTES};
use actix_web::HttpResponse;
use serde_json::{json, Map, Value};

/// Query parameters of API routes: (path, name, description).
const QUERY: [(&str, &str, &str); 9] = [
    (
        "/api/v1/advisories",
        "q",
        "An id prefix (CVE-2024-, GHSA-) or a purl; with @VERSION the vulnerabilities affecting it",
    ),
    (
        "/api/v1/images/{digest}/sbom",
        "format",
        "cyclonedx (default) or spdx",
    ),
    (
        "/api/v1/images/{digest}/findings",
        "severity",
        "critical, high, medium, low, none or unknown",
    ),
    (
        "/api/v1/images/{digest}/findings",
        "kev",
        "true: only findings listed in CISA KEV",
    ),
    (
        "/api/v1/images/{digest}/findings",
        "fix",
        "yes: a fixed version is stated; no: none is",
    ),
    (
        "/api/v1/images/{digest}/findings",
        "limit",
        "page size, default 100, at most 1000",
    ),
    (
        "/api/v1/images/{digest}/findings",
        "after",
        "the `next` value of the previous page",
    ),
    (
        "/api/v1/audit",
        "before",
        "events before this sequence number",
    ),
    (
        "/api/v1/audit",
        "limit",
        "page size, default 100, at most 1000",
    ),
];

/// Request bodies of mutating API routes: (method path, media types with a schema).
fn request_body(method: &str, path: &str) -> Option<Value> {
    let obj = |props: Value, required: Value| {
        json!({"required": true, "content": {"application/json": {"schema": {
            "type": "object", "properties": props, "required": required}}}})
    };
    Some(match (method, path) {
        ("POST", "/api/v1/kits") => json!({"required": true, "content": {
            "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"},
                "description": "One kit file. Headers: X-Kit-Filename, X-Force-Reason (admin)."},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "kit": {"type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"}},
                "reason": {"type": "string"}}}}}}),
        ("POST", "/api/v1/users") => obj(
            json!({"name": {"type": "string"}, "role": {"enum": Role::ALL.map(Role::name)}}),
            json!(["name", "role"]),
        ),
        ("POST", "/api/v1/users/{name}") => obj(
            json!({"action": {"enum": ["role", "disable", "enable", "reset"]}, "role": {"enum": Role::ALL.map(Role::name)}}),
            json!(["action"]),
        ),
        ("POST", "/api/v1/account/password") => obj(
            json!({"current": {"type": "string"}, "new": {"type": "string", "minLength": super::auth::MIN_PASSWORD}}),
            json!(["current", "new"]),
        ),
        ("POST", "/api/v1/tokens") => obj(
            json!({"name": {"type": "string"}, "role": {"enum": Role::ALL.map(Role::name)}, "days": {"type": "string"}}),
            json!(["name"]),
        ),
        ("POST", "/api/v1/settings") => obj(
            json!({"staleness_days": {"type": "integer", "minimum": 1, "maximum": 3650}}),
            json!(["staleness_days"]),
        ),
        _ => return None,
    })
}

fn roles_for(perm: Perm) -> Vec<&'static str> {
    Role::ALL
        .into_iter()
        .filter(|r| r.allows(perm))
        .map(Role::name)
        .collect()
}

/// The document.
pub fn build() -> Value {
    let mut paths = Map::new();
    for r in ROUTES.iter().filter(|r| r.kind == Kind::Api) {
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if r.method == "GET" {
            params.extend(
                QUERY
                    .iter()
                    .filter(|(p, _, _)| *p == r.path)
                    .map(|(_, n, d)| json!({"name": n, "in": "query", "required": false, "description": d, "schema": {"type": "string"}})),
            );
        }
        let op_id = format!(
            "{}{}",
            r.method.to_ascii_lowercase(),
            r.path
                .split(['/', '{', '}', '.', '-'])
                .filter(|s| !s.is_empty() && *s != "api" && *s != "v1")
                .map(|s| {
                    let mut c = s.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<String>()
        );
        let ok = if r.method == "POST" && matches!(r.path, "/api/v1/users" | "/api/v1/tokens") {
            "201"
        } else {
            "200"
        };
        let mut op = json!({
            "summary": r.summary,
            "operationId": op_id,
            "parameters": params,
            "responses": {
                ok: {"description": "success", "content": {"application/json": {}}},
                "default": {"description": "an error with a stable code", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if r.perm == Perm::Public {
            op["security"] = json!([]);
        } else {
            op["x-roles"] = json!(roles_for(r.perm));
        }
        if let Some(body) = request_body(r.method, r.path) {
            op["requestBody"] = body;
        }
        if r.path == "/metrics" {
            op["responses"][ok]["content"] = json!({"text/plain": {}});
        }
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        item[r.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Stella Ops Appliance API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every console action as JSON. Authenticate with an API token (`Authorization: Bearer stk_…`, created on the account page) or a console session (cookie; mutating calls then need the session's CSRF token in `X-CSRF-Token`). `x-roles` lists the roles allowed to call an operation.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API token"},
                "session": {"type": "apiKey", "in": "cookie", "name": super::auth::SESSION_COOKIE},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
            },
        },
    })
}

/// `GET /api/openapi.json`.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(build())
}
