#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The console and REST API through the same app factory `stella serve` uses: the role × route matrix (no
//! route reachable without authentication, the right role and, for changes under a session, the CSRF token),
//! the OpenAPI document against the real routes, sign-in with throttling, kit upload with the CLI's checks,
//! findings, linksets, SBOM downloads, tokens, settings and the audit chain.

use actix_web::cookie::Cookie;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{test, web};
use appliance::store::{Batch, MetaStore as _, Tree};
use appliance::web::auth::{self, Role, Session, User};
use appliance::web::routes::{Kind, Perm, ROUTES};
use appliance::web::{app, AppState};
use kit_builder::clock::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const NOW: i64 = 1_790_000_000;

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    p.is_dir().then_some(p)
}

struct Fixture {
    dir: tempfile::TempDir,
    state: web::Data<AppState>,
}

impl Fixture {
    /// A demo site (shipped feeds, and the corpus's images when `with_corpus` and the corpus is present).
    fn new(with_corpus: bool) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("site");
        let c = if with_corpus { corpus() } else { None };
        appliance::demo::run(&root, c.as_deref(), Timestamp(NOW)).expect("demo site");
        let site = appliance::site::Site::open(&root).expect("open site");
        let state = web::Data::new(AppState::new(site, Arc::new(|| Timestamp(NOW + 60))));
        Fixture { dir, state }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("site")
    }

    fn admin_secret(&self) -> String {
        std::fs::read_to_string(self.root().join("demo-kit-signer/admin-secret"))
            .expect("admin secret")
            .trim()
            .to_owned()
    }

    /// A user with a known password (written straight to the store).
    fn user(&self, name: &str, role: Role, password: &str, must_change: bool) {
        let u = User {
            name: name.into(),
            role,
            hash: auth::hash_password(password).expect("hash"),
            created: "2026-11-30T00:00:00Z".into(),
            must_change,
            disabled: false,
        };
        let mut b = Batch::default();
        b.put_json(Tree::Users, name.as_bytes(), &u);
        self.state.site().store.apply(b).expect("put user");
    }

    /// A session for a user, as sign-in would create it: (cookie value, CSRF token).
    fn session(&self, user: &str) -> (String, String) {
        let token = auth::random_secret().expect("random");
        let csrf = auth::random_secret().expect("random");
        let s = Session {
            user: user.into(),
            csrf: csrf.clone(),
            created: NOW,
            expires: NOW + 3600,
        };
        let mut b = Batch::default();
        b.put_json(Tree::Sessions, auth::sha256_hex(token.as_bytes()), &s);
        self.state.site().store.apply(b).expect("put session");
        (token, csrf)
    }

    /// An API token with a role for a user.
    fn token(&self, user: &str, role: Role) -> String {
        let token = format!("stk_{}", auth::random_secret().expect("random"));
        let t = auth::ApiToken {
            id: auth::sha256_hex(token.as_bytes())[..12].to_owned(),
            name: "test".into(),
            user: user.into(),
            role,
            created: "2026-11-30T00:00:00Z".into(),
            expires: None,
        };
        let mut b = Batch::default();
        b.put_json(Tree::Tokens, auth::sha256_hex(token.as_bytes()), &t);
        self.state.site().store.apply(b).expect("put token");
        token
    }
}

fn role_user(r: Role) -> String {
    format!("u-{}", r.name())
}

/// The stable error code of a response: JSON `error.code`, or the error page's `data-code`.
fn code_of(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        return v["error"]["code"].as_str().unwrap_or("").to_owned();
    }
    let text = String::from_utf8_lossy(body);
    text.split("data-code=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("")
        .to_owned()
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "demo-000001")
        .replace("{digest}", "sha256:00")
        .replace("{file}", "app.css")
        .replace("{name}", "nobody")
}

fn request(method: &str, path: &str) -> test::TestRequest {
    test::TestRequest::default()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(&concrete(path))
}

fn check_headers<B>(res: &actix_web::dev::ServiceResponse<B>, what: &str) {
    let h = res.headers();
    let csp = h
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert!(
        !csp.contains("unsafe-inline"),
        "{what}: CSP allows inline code"
    );
    assert_eq!(
        h.get(header::X_FRAME_OPTIONS).map(|v| v.as_bytes()),
        Some(&b"DENY"[..]),
        "{what}"
    );
    assert_eq!(
        h.get(header::X_CONTENT_TYPE_OPTIONS).map(|v| v.as_bytes()),
        Some(&b"nosniff"[..]),
        "{what}"
    );
}

const GUARD_CODES: [&str; 5] = [
    "unauthenticated",
    "forbidden",
    "csrf-failed",
    "password-change-required",
    "cross-origin",
];

#[actix_web::test]
async fn role_by_route_matrix() {
    let f = Fixture::new(false);
    for r in Role::ALL {
        f.user(&role_user(r), r, "a long enough password", false);
    }
    f.user("fresh", Role::Admin, "a one-time secret!!", true);
    let svc = test::init_service(app(f.state.clone())).await;
    let mut checked = 0;
    for route in ROUTES {
        // The sign-in form's own protection (a pre-session cookie) is tested in `sign_in_and_throttling`.
        if route.path == "/login" && route.method == "POST" {
            continue;
        }
        let what = |who: &str| format!("{} {} as {who}", route.method, route.path);

        // Nobody signed in.
        let res = test::call_service(&svc, request(route.method, route.path).to_request()).await;
        check_headers(&res, &what("anonymous"));
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = test::read_body(res).await;
        if route.perm == Perm::Public {
            assert!(
                !GUARD_CODES.contains(&code_of(&body).as_str()),
                "{}: {status}",
                what("anonymous")
            );
        } else if route.kind == Kind::Page {
            assert_eq!(status, StatusCode::SEE_OTHER, "{}", what("anonymous"));
            assert!(
                location.starts_with("/login?next="),
                "{}: {location}",
                what("anonymous")
            );
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", what("anonymous"));
            assert_eq!(code_of(&body), "unauthenticated", "{}", what("anonymous"));
        }
        if route.perm == Perm::Public {
            checked += 1;
            continue;
        }

        // A user who still has a one-time secret reaches only the account routes.
        let (cookie, csrf) = f.session("fresh");
        let res = test::call_service(
            &svc,
            request(route.method, route.path)
                .cookie(Cookie::new(auth::SESSION_COOKIE, cookie))
                .insert_header(("x-csrf-token", csrf))
                .to_request(),
        )
        .await;
        let status = res.status();
        let code = code_of(&test::read_body(res).await);
        if route.perm == Perm::Account {
            assert!(
                !GUARD_CODES.contains(&code.as_str()),
                "{}: {code}",
                what("fresh")
            );
        } else if route.kind == Kind::Page {
            assert_eq!(status, StatusCode::SEE_OTHER, "{}", what("fresh"));
        } else {
            assert_eq!(code, "password-change-required", "{}", what("fresh"));
        }

        for role in Role::ALL {
            let allowed = role.allows(route.perm);
            // With a session and its CSRF token, then (for changes) without the token, then with a token.
            let (cookie, csrf) = f.session(&role_user(role));
            let res = test::call_service(
                &svc,
                request(route.method, route.path)
                    .cookie(Cookie::new(auth::SESSION_COOKIE, cookie))
                    .insert_header(("x-csrf-token", csrf))
                    .to_request(),
            )
            .await;
            check_headers(&res, &what(role.name()));
            let status = res.status();
            let code = code_of(&test::read_body(res).await);
            if allowed {
                assert!(
                    !GUARD_CODES.contains(&code.as_str()),
                    "{}: {status} {code}",
                    what(role.name())
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{}", what(role.name()));
                assert_eq!(code, "forbidden", "{}", what(role.name()));
            }
            if route.mutating() {
                let (cookie, _) = f.session(&role_user(role));
                let res = test::call_service(
                    &svc,
                    request(route.method, route.path)
                        .cookie(Cookie::new(auth::SESSION_COOKIE, cookie.clone()))
                        .to_request(),
                )
                .await;
                let expected = if allowed { "csrf-failed" } else { "forbidden" };
                assert_eq!(
                    res.status(),
                    StatusCode::FORBIDDEN,
                    "{} without CSRF",
                    what(role.name())
                );
                assert_eq!(
                    code_of(&test::read_body(res).await),
                    expected,
                    "{} without CSRF",
                    what(role.name())
                );
                // A wrong token is no better than none.
                let res = test::call_service(
                    &svc,
                    request(route.method, route.path)
                        .cookie(Cookie::new(auth::SESSION_COOKIE, cookie))
                        .insert_header(("x-csrf-token", "not-the-token"))
                        .to_request(),
                )
                .await;
                assert_eq!(
                    code_of(&test::read_body(res).await),
                    expected,
                    "{} wrong CSRF",
                    what(role.name())
                );
            }
            let token = f.token(&role_user(role), role);
            let res = test::call_service(
                &svc,
                request(route.method, route.path)
                    .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
                    .to_request(),
            )
            .await;
            let status = res.status();
            let code = code_of(&test::read_body(res).await);
            if allowed {
                assert!(
                    !GUARD_CODES.contains(&code.as_str()),
                    "{} (token): {code}",
                    what(role.name())
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} (token)",
                    what(role.name())
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, ROUTES.len() - 1);
}

#[actix_web::test]
async fn openapi_matches_the_routes() {
    let f = Fixture::new(false);
    let svc = test::init_service(app(f.state.clone())).await;
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/api/openapi.json")
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let doc: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            documented += 1;
            let route = ROUTES
                .iter()
                .find(|r| r.path == path && r.method.eq_ignore_ascii_case(method))
                .unwrap_or_else(|| panic!("{method} {path} is documented but not routed"));
            assert_eq!(route.kind, Kind::Api);
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()));
            // Path parameters are declared.
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(['{', '}']);
                assert!(
                    op["parameters"]
                        .as_array()
                        .expect("parameters")
                        .iter()
                        .any(|p| p["name"] == name),
                    "{method} {path}: parameter {name} undeclared"
                );
            }
        }
    }
    assert_eq!(
        documented,
        ROUTES.iter().filter(|r| r.kind == Kind::Api).count()
    );
    // Every documented operation is served: as an admin token, none answers the router's own 404.
    f.user("root", Role::Admin, "a long enough password", false);
    let token = f.token("root", Role::Admin);
    for r in ROUTES.iter().filter(|r| r.kind == Kind::Api) {
        let res = test::call_service(
            &svc,
            request(r.method, r.path)
                .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
                .to_request(),
        )
        .await;
        let body = test::read_body(res).await;
        assert!(
            !String::from_utf8_lossy(&body).contains("no such page or API route"),
            "{} {} is documented but not served",
            r.method,
            r.path
        );
    }
    // And something not in the table is not served.
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/api/v1/nothing-here")
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let v: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(v["error"]["code"], "not-found");
}

async fn login_form<S, B>(svc: &S) -> (String, String)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(svc, test::TestRequest::get().uri("/login").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res
        .response()
        .cookies()
        .find(|c| c.name() == auth::LOGIN_COOKIE)
        .expect("login cookie")
        .value()
        .to_owned();
    let body = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8");
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf field")
        .to_owned();
    assert_eq!(cookie, csrf);
    (cookie, csrf)
}

#[actix_web::test]
async fn sign_in_and_throttling() {
    let f = Fixture::new(false);
    let svc = test::init_service(app(f.state.clone())).await;
    let secret = f.admin_secret();
    let post = |cookie: Option<&str>, csrf: &str, user: &str, pw: &str| {
        let mut r = test::TestRequest::post().uri("/login").set_form([
            ("user", user),
            ("password", pw),
            ("csrf", csrf),
            ("next", "/kits"),
        ]);
        if let Some(c) = cookie {
            r = r.cookie(Cookie::new(auth::LOGIN_COOKIE, c.to_owned()));
        }
        r.to_request()
    };
    // Without the pre-session cookie (a cross-site form): refused.
    let (_, csrf) = login_form(&svc).await;
    let res = test::call_service(&svc, post(None, &csrf, "admin", &secret)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Wrong password, then the one-time secret: in, but only to the account page.
    let (cookie, csrf) = login_form(&svc).await;
    let res = test::call_service(&svc, post(Some(&cookie), &csrf, "admin", "wrong")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = test::call_service(&svc, post(Some(&cookie), &csrf, "admin", &secret)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers().get(header::LOCATION).expect("location"),
        "/account"
    );
    let session = res
        .response()
        .cookies()
        .find(|c| c.name() == auth::SESSION_COOKIE)
        .expect("session cookie");
    assert!(session.http_only().unwrap_or(false));
    assert_eq!(
        session.same_site(),
        Some(actix_web::cookie::SameSite::Strict)
    );
    let session = session.value().to_owned();
    // Only the hash of the session token is stored.
    assert!(f
        .state
        .site()
        .store
        .get(Tree::Sessions, session.as_bytes())
        .expect("get")
        .is_none());
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/")
            .cookie(Cookie::new(auth::SESSION_COOKIE, session.clone()))
            .to_request(),
    )
    .await;
    assert_eq!(
        res.headers().get(header::LOCATION).expect("location"),
        "/account"
    );
    // Choose a password (CSRF in the form body), then the dashboard opens.
    let account = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/account")
            .cookie(Cookie::new(auth::SESSION_COOKIE, session.clone()))
            .to_request(),
    )
    .await;
    let page = String::from_utf8(test::read_body(account).await.to_vec()).expect("utf-8");
    let form_csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf")
        .to_owned();
    let res = test::call_service(
        &svc,
        test::TestRequest::post()
            .uri("/account/password")
            .cookie(Cookie::new(auth::SESSION_COOKIE, session.clone()))
            .set_form([
                ("csrf", form_csrf.as_str()),
                ("current", secret.as_str()),
                ("new", "short"),
                ("confirm", "short"),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code_of(&test::read_body(res).await), "weak-password");
    let res = test::call_service(
        &svc,
        test::TestRequest::post()
            .uri("/account/password")
            .cookie(Cookie::new(auth::SESSION_COOKIE, session.clone()))
            .set_form([
                ("csrf", form_csrf.as_str()),
                ("current", secret.as_str()),
                ("new", "correct horse battery staple"),
                ("confirm", "correct horse battery staple"),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/")
            .cookie(Cookie::new(auth::SESSION_COOKIE, session.clone()))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8");
    assert!(
        page.contains("id=\"profile\">fips<"),
        "banner shows the profile"
    );
    // The one-time secret no longer works.
    let (cookie, csrf) = login_form(&svc).await;
    let res = test::call_service(&svc, post(Some(&cookie), &csrf, "admin", &secret)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Repeated failures (one since the last success) are throttled, even with the right password next.
    for _ in 1..auth::Throttle::FREE {
        let res = test::call_service(&svc, post(Some(&cookie), &csrf, "admin", "nope")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = test::call_service(
        &svc,
        post(
            Some(&cookie),
            &csrf,
            "admin",
            "correct horse battery staple",
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get(header::RETRY_AFTER).is_some());
    let audited = || -> Vec<(String, String, serde_json::Value)> {
        appliance::audit::events(&f.state.site().store)
            .expect("events")
            .into_iter()
            .filter(|e| e.kind.starts_with("sign-"))
            .map(|e| (e.kind, e.actor, e.data))
            .collect()
    };
    // Sign-ins, successful or not, are in the audit chain; throttled attempts are not.
    let events = audited();
    let kinds: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "sign-in-failed",
            "sign-in",
            "sign-in-failed",
            "sign-in-failed",
            "sign-in-failed",
            "sign-in-failed",
            "sign-in-failed"
        ],
        "{events:?}"
    );
    assert_eq!(events[1].1, "admin");
    assert_eq!(events[1].2["must_change"], true);
    assert_eq!(
        (events[0].1.as_str(), &events[0].2["user"]),
        ("anonymous", &serde_json::json!("admin"))
    );
    // Logout ends the session.
    let res = test::call_service(
        &svc,
        test::TestRequest::post()
            .uri("/logout")
            .cookie(Cookie::new(auth::SESSION_COOKIE, session.clone()))
            .insert_header(("x-csrf-token", form_csrf.clone()))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/api/v1/status")
            .cookie(Cookie::new(auth::SESSION_COOKIE, session))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let events = audited();
    let last = events.last().expect("events");
    assert_eq!(
        (last.0.as_str(), last.1.as_str()),
        ("sign-out", "admin"),
        "{events:?}"
    );
    let verified = appliance::audit::verify(&f.state.site().store, &f.state.site().profile);
    assert!(verified.is_ok(), "{verified:?}");
}

/// Builds a feed kit signed by the demo kit signer: channel `demo`, the given sequence.
fn feed_kit(f: &Fixture, sequence: u64, out: &Path) {
    let pem = std::fs::read(f.root().join("demo-kit-signer/kit-signer.key.pem")).expect("key");
    let key = crypto_profiles::PrivateKey::from_pem(&pem, None).expect("key");
    let profile = crypto_profiles::Profile::new(crypto_profiles::ProfileId::Fips).expect("profile");
    let doc = serde_json::json!({
        "schema_version": "1.6.0", "id": format!("STELLA-TEST-{sequence:04}"), "modified": "2026-11-20T00:00:00Z",
        "aliases": [format!("CVE-2026-7{sequence:04}")],
        "affected": [{"package": {"ecosystem": "npm", "name": "left-pad", "purl": "pkg:npm/left-pad"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.3.0"}]}]}],
    });
    kit_builder::build::build(kit_builder::build::BuildRequest {
        channel: "demo".into(),
        sequence,
        id: None,
        created: Timestamp(NOW),
        expires: Timestamp(NOW + 86_400),
        signers: vec![(profile, key)],
        payloads: vec![kit_builder::source::Planned {
            name: format!("feeds/test/STELLA-TEST-{sequence:04}.json"),
            kind: kit_builder::manifest::PayloadKind::Feed,
            media_type: "application/json".into(),
            source: kit_builder::source::Source::Memory(
                serde_json::to_vec(&doc).expect("json").into(),
            ),
            oci_digest: None,
        }],
        images: Vec::new(),
        base: None,
        volume_size: None,
        recipients: Vec::new(),
        out: out.to_owned(),
        level: 3,
        progress: false,
        validate_feed: kit_builder::cli::validate_feed,
    })
    .expect("build kit");
}

fn knowledge(f: &Fixture) -> String {
    let dump = f.state.site().store.dump().expect("dump");
    let kept: Vec<_> = dump
        .into_iter()
        .filter(|(t, _)| !t.is_record() && !t.is_secret())
        .collect();
    format!("{kept:?}")
}

#[actix_web::test]
async fn kit_upload_uses_the_import_checks() {
    let f = Fixture::new(false);
    f.user("op", Role::Operator, "a long enough password", false);
    let token = f.token("op", Role::Operator);
    let svc = test::init_service(app(f.state.clone())).await;
    let kit = f.dir.path().join("two.kit");
    feed_kit(&f, 2, &kit);
    let bytes = std::fs::read(&kit).expect("kit");

    // API, raw body.
    let res = test::call_service(
        &svc,
        test::TestRequest::post()
            .uri("/api/v1/kits")
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
            .insert_header(("x-kit-filename", "two.kit"))
            .set_payload(bytes.clone())
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(v["receipt"]["receipt"]["result"], "accepted");
    assert_eq!(v["receipt"]["receipt"]["actor"], "console:op");
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/api/v1/advisories/CVE-2026-70002")
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "the kit's advisory is known");

    // The same kit again is a replay: 422 with the stable code, a rejection receipt, knowledge unchanged.
    let before = knowledge(&f);
    let res = test::call_service(
        &svc,
        test::TestRequest::post()
            .uri("/api/v1/kits")
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
            .set_payload(bytes.clone())
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(v["error"]["code"], "rollback-refused");
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("message")
            .contains("(replay)"),
        "{v}"
    );
    assert_eq!(v["receipt"]["receipt"]["result"], "rejected");
    assert_eq!(knowledge(&f), before);

    // A flipped byte: refused as failing verification, nothing changes.
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    let res = test::call_service(
        &svc,
        test::TestRequest::post()
            .uri("/api/v1/kits")
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
            .set_payload(bad)
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(knowledge(&f), before);

    // An operator may not force a replay.
    let res = test::call_service(
        &svc,
        test::TestRequest::post()
            .uri("/api/v1/kits")
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
            .insert_header(("x-force-reason", "because"))
            .set_payload(bytes)
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(code_of(&test::read_body(res).await), "force-needs-admin");

    // The console form: multipart, the CSRF token in the action's query.
    let kit3 = f.dir.path().join("three.kit");
    feed_kit(&f, 3, &kit3);
    let boundary = "XbOuNdArYx";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"kit\"; filename=\"three.kit\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(&std::fs::read(&kit3).expect("kit"));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (cookie, csrf) = f.session("op");
    let form = |uri: String, body: Vec<u8>, cookie: String| {
        test::TestRequest::post()
            .uri(&uri)
            .cookie(Cookie::new(auth::SESSION_COOKIE, cookie))
            .insert_header((
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            ))
            .set_payload(body)
            .to_request()
    };
    let res = test::call_service(&svc, form("/kits".into(), body.clone(), cookie.clone())).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no CSRF token");
    // Two whole kits in one upload: refused, naming both as uploaded, nothing imported.
    let mut two = Vec::new();
    for name in ["four.kit", "five.kit"] {
        two.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"kit\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        two.extend_from_slice(&std::fs::read(&kit3).expect("kit"));
        two.extend_from_slice(b"\r\n");
    }
    two.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let res = test::call_service(
        &svc,
        form(format!("/kits?csrf={csrf}"), two, cookie.clone()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8");
    assert!(
        page.contains("several kits given (four.kit, five.kit)"),
        "{page}"
    );
    assert_eq!(knowledge(&f), before);
    let res = test::call_service(
        &svc,
        form(format!("/kits?csrf={csrf}"), body.clone(), cookie.clone()),
    )
    .await;
    // Post/redirect/get: the kit's page shows the result, so a reload does not upload again.
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = res
        .headers()
        .get(header::LOCATION)
        .expect("location")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(to, "/kits/demo-000003?imported=1");
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri(&to)
            .cookie(Cookie::new(auth::SESSION_COOKIE, cookie.clone()))
            .to_request(),
    )
    .await;
    let page = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8");
    assert!(page.contains("data-result=\"accepted\""), "{page}");
    // The same upload again: redirected to the kits page showing the rejection receipt.
    let res = test::call_service(
        &svc,
        form(format!("/kits?csrf={csrf}"), body, cookie.clone()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = res
        .headers()
        .get(header::LOCATION)
        .expect("location")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(to.starts_with("/kits?rejected="), "{to}");
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri(&to)
            .cookie(Cookie::new(auth::SESSION_COOKIE, cookie.clone()))
            .to_request(),
    )
    .await;
    let page = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8");
    assert!(
        page.contains("data-result=\"rejected\" data-code=\"rollback-refused\""),
        "{page}"
    );
    assert!(
        page.contains("upload:three.kit"),
        "the quarantine names the uploaded file"
    );
    // History and quarantine show on the kits page.
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/kits")
            .cookie(Cookie::new(auth::SESSION_COOKIE, cookie))
            .to_request(),
    )
    .await;
    let page = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8");
    assert!(page.contains("id=\"quarantine\""));
    assert!(page.contains("sequence"));
    assert_eq!(
        page.matches("href=\"/kits/demo-").count(),
        3,
        "three kits in the history"
    );
}

#[actix_web::test]
async fn tokens_settings_users_and_the_audit_chain() {
    let f = Fixture::new(false);
    f.user("root", Role::Admin, "a long enough password", false);
    let (cookie, csrf) = f.session("root");
    let svc = test::init_service(app(f.state.clone())).await;
    let json_post = |uri: &str, body: serde_json::Value| {
        test::TestRequest::post()
            .uri(uri)
            .cookie(Cookie::new(auth::SESSION_COOKIE, cookie.clone()))
            .insert_header(("x-csrf-token", csrf.clone()))
            .set_json(body)
            .to_request()
    };
    // A token for an auditor role, used as a bearer token, then revoked.
    let res = test::call_service(
        &svc,
        json_post(
            "/api/v1/tokens",
            serde_json::json!({"name": "ci", "role": "auditor"}),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let t: serde_json::Value = test::read_body_json(res).await;
    let token = t["token"].as_str().expect("token").to_owned();
    let id = t["id"].as_str().expect("id").to_owned();
    assert!(
        f.state
            .site()
            .store
            .scan(Tree::Tokens, b"")
            .expect("scan")
            .iter()
            .all(|(k, v)| {
                !String::from_utf8_lossy(k).contains(&token)
                    && !String::from_utf8_lossy(v).contains(&token)
            }),
        "tokens are stored hashed"
    );
    let bearer = |uri: &str| {
        test::TestRequest::get()
            .uri(uri)
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
            .to_request()
    };
    let res = test::call_service(&svc, bearer("/api/v1/audit/verify")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = test::call_service(&svc, bearer("/api/v1/users")).await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "an auditor token cannot list users"
    );
    let res = test::call_service(
        &svc,
        test::TestRequest::delete()
            .uri(&format!("/api/v1/tokens/{id}"))
            .cookie(Cookie::new(auth::SESSION_COOKIE, cookie.clone()))
            .insert_header(("x-csrf-token", csrf.clone()))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = test::call_service(&svc, bearer("/api/v1/status")).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "a revoked token is refused"
    );

    // Settings: the staleness budget is validated, written to site.toml, and audited.
    let res = test::call_service(
        &svc,
        json_post("/api/v1/settings", serde_json::json!({"staleness_days": 0})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code_of(&test::read_body(res).await), "bad-setting");
    let res = test::call_service(
        &svc,
        json_post(
            "/api/v1/settings",
            serde_json::json!({"staleness_days": 30}),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let toml = std::fs::read_to_string(f.root().join("site.toml")).expect("site.toml");
    assert!(toml.contains("staleness_days = 30"), "{toml}");

    // Users: create with a one-time secret; the last admin cannot be demoted.
    let res = test::call_service(
        &svc,
        json_post(
            "/api/v1/users",
            serde_json::json!({"name": "sec", "role": "security"}),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let s: serde_json::Value = test::read_body_json(res).await;
    assert!(s["secret"].as_str().is_some_and(|s| s.len() >= 32));
    let res = test::call_service(
        &svc,
        json_post(
            "/api/v1/users",
            serde_json::json!({"name": "Bad Name", "role": "security"}),
        ),
    )
    .await;
    assert_eq!(code_of(&test::read_body(res).await), "bad-user-name");
    let res = test::call_service(
        &svc,
        json_post(
            "/api/v1/users/admin",
            serde_json::json!({"action": "disable"}),
        ),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "two admins: one may be disabled"
    );
    let res = test::call_service(
        &svc,
        json_post(
            "/api/v1/users/root",
            serde_json::json!({"action": "role", "role": "auditor"}),
        ),
    )
    .await;
    assert_eq!(code_of(&test::read_body(res).await), "last-admin");

    // Every change above is in the audit chain, which verifies.
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/api/v1/audit?limit=20")
            .cookie(Cookie::new(auth::SESSION_COOKIE, cookie.clone()))
            .to_request(),
    )
    .await;
    let v: serde_json::Value = test::read_body_json(res).await;
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for k in [
        "token-created",
        "token-revoked",
        "settings-changed",
        "user-created",
        "user-changed",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let res = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri("/audit/verify")
            .cookie(Cookie::new(auth::SESSION_COOKIE, cookie))
            .to_request(),
    )
    .await;
    let page = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8");
    assert!(page.contains("data-ok=\"true\""), "{page}");
}

#[actix_web::test]
async fn findings_linksets_and_sboms() {
    if corpus().is_none() {
        eprintln!("skipped: ../shared/corpus is absent (the demo image comes from it)");
        return;
    }
    let f = Fixture::new(true);
    f.user("sec", Role::Security, "a long enough password", false);
    let token = f.token("sec", Role::Security);
    let svc = test::init_service(app(f.state.clone())).await;
    let get = |uri: &str| {
        test::TestRequest::get()
            .uri(uri)
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
            .to_request()
    };
    let res = test::call_service(&svc, get("/api/v1/images")).await;
    let images: serde_json::Value = test::read_body_json(res).await;
    let alpine = images
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == "alpine:3.10")
        .expect("alpine image")["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    // Findings, filtered.
    let res = test::call_service(&svc, get(&format!("/api/v1/images/{alpine}/findings"))).await;
    let page: serde_json::Value = test::read_body_json(res).await;
    let all = page["findings"].as_array().expect("findings").len();
    assert_eq!(all, 2, "musl and musl-utils: {page}");
    let res = test::call_service(
        &svc,
        get(&format!("/api/v1/images/{alpine}/findings?severity=low")),
    )
    .await;
    let low: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(low["findings"].as_array().expect("findings").len(), 0);
    let res = test::call_service(
        &svc,
        get(&format!("/api/v1/images/{alpine}/findings?fix=yes&limit=1")),
    )
    .await;
    let one: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(one["findings"].as_array().expect("findings").len(), 1);
    let next = one["next"].as_str().expect("next page").to_owned();
    let res = test::call_service(
        &svc,
        get(&format!(
            "/api/v1/images/{alpine}/findings?fix=yes&limit=1&after={}",
            serde_urlencoded::to_string([("", &next)])
                .expect("enc")
                .trim_start_matches('=')
        )),
    )
    .await;
    let two: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(two["findings"].as_array().expect("findings").len(), 1);
    assert_ne!(two["findings"][0]["purl"], one["findings"][0]["purl"]);
    let res = test::call_service(
        &svc,
        get(&format!("/api/v1/images/{alpine}/findings?severity=bogus")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // The image page links each finding to its linkset; the linkset shows both sources and the conflicts.
    let res = test::call_service(&svc, get(&format!("/images/{alpine}"))).await;
    let html = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8");
    assert!(
        html.contains("href=\"/advisories/CVE-2026-90004\""),
        "{html}"
    );
    let res = test::call_service(&svc, get("/advisories/CVE-2026-90004")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8");
    assert!(
        html.contains("osv:STELLA") && html.contains("osv:MIRRORDEMO"),
        "both sources side by side"
    );
    assert!(html.contains("id=\"conflicts\""), "conflicts highlighted");
    // SBOM downloads in both formats.
    for (format, marker) in [("cyclonedx", "bomFormat"), ("spdx", "spdxVersion")] {
        let res =
            test::call_service(&svc, get(&format!("/images/{alpine}/sbom?format={format}"))).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res
            .headers()
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("attachment")));
        let doc: serde_json::Value = test::read_body_json(res).await;
        assert!(doc.get(marker).is_some(), "{format}");
    }
    let res = test::call_service(&svc, get(&format!("/images/{alpine}/sbom?format=xml"))).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Search by purl with a version lists what affects it, every source's verdict included.
    let res = test::call_service(
        &svc,
        get("/api/v1/advisories?q=pkg%3Aapk%2Falpine%2Fmusl%401.1.22-r3%3Fdistro%3Dalpine-3.10.4"),
    )
    .await;
    let r: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(r["matches"][0]["id"], "CVE-2026-90004", "{r}");
    assert_eq!(
        r["matches"][0]["verdicts"]
            .as_array()
            .expect("verdicts")
            .len(),
        2
    );
    // Dashboard counts, the image list and metrics agree.
    let total: u64 = images
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["findings"].as_u64().unwrap_or(0))
        .sum();
    let res = test::call_service(&svc, get("/api/v1/status")).await;
    let d: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(d["findings_total"], total);
    assert!(
        total >= 2 + 3,
        "alpine's two and the demo fixture's: {total}"
    );
    let res = test::call_service(&svc, get("/metrics")).await;
    let text = String::from_utf8(test::read_body(res).await.to_vec()).expect("utf-8");
    let critical = d["findings"]["critical"].as_u64().expect("critical");
    assert!(
        text.contains(&format!(
            "stella_findings{{severity=\"critical\"}} {critical}"
        )),
        "{text}"
    );
    assert!(text.contains(
        "stella_http_requests_total{method=\"GET\",route=\"/api/v1/status\",status=\"200\"} 1"
    ));
}
