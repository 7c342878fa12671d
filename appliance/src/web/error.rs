//! Errors as the client sees them: a status, a stable kebab-case code and a message. The cause of an internal
//! error goes to the log with the request id, never to the client. API routes answer JSON; pages render the
//! same error as HTML (the guard decides, from the route table).

use actix_web::body::{BoxBody, MessageBody as _};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct WebError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (`not-found`, `forbidden`, `csrf-failed`, `kit-rejected`, ...).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// Where a page error should send the browser instead (sign-in).
    pub redirect: Option<String>,
    /// The cause of an internal error: logged with the request id by the guard, never sent.
    pub cause: Option<String>,
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl WebError {
    /// Any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> WebError {
        WebError {
            status,
            code,
            message: message.into(),
            redirect: None,
            cause: None,
        }
    }
    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::NOT_FOUND, "not-found", message)
    }
    /// 403.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::FORBIDDEN, code, message)
    }
    /// 500: the cause is logged with the request id, the client sees only that something failed.
    pub fn internal(cause: impl std::fmt::Display) -> WebError {
        let mut e = WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the appliance log has the cause (see X-Request-Id)",
        );
        e.cause = Some(cause.to_string());
        e
    }
}

#[derive(serde::Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(serde::Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = serde_json::to_string(&Body {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        })
        .unwrap_or_default();
        let mut res = HttpResponse::build(self.status)
            .content_type("application/json")
            .body(body);
        res.extensions_mut().insert(self.clone());
        res
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> WebError {
        WebError::internal(e)
    }
}

impl From<crate::site::SiteError> for WebError {
    fn from(e: crate::site::SiteError) -> WebError {
        WebError::internal(e)
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> WebError {
        WebError::internal(e)
    }
}

impl From<actix_web::error::BlockingError> for WebError {
    fn from(e: actix_web::error::BlockingError) -> WebError {
        WebError::internal(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    c: super::Chrome,
    status: u16,
    reason: &'a str,
    code: &'a str,
    message: &'a str,
    back: Option<String>,
}

/// The page the browser came from, when it is a page of this console (a form to go back to).
fn back_link(req: &actix_web::HttpRequest) -> Option<String> {
    let referer = req.headers().get(header::REFERER)?.to_str().ok()?;
    let host = req.connection_info().host().to_owned();
    let path = referer
        .strip_prefix("http://")
        .or_else(|| referer.strip_prefix("https://"))?
        .strip_prefix(host.as_str())?;
    (path.starts_with('/') && !path.starts_with("//")).then(|| path.to_owned())
}

/// The strict headers every response carries. No inline script or style is allowed anywhere.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers, the request id, and HTML error pages (or a sign-in redirect) for page routes.
pub fn finish(res: ServiceResponse, html: bool, request_id: u64) -> ServiceResponse {
    let err = res.response().extensions().get::<WebError>().cloned();
    let res = match err {
        Some(e) if html => {
            let http = match &e.redirect {
                Some(to) => HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, to.as_str()))
                    .finish(),
                None => {
                    let req = res.request();
                    let chrome = match (req.app_data::<super::State>(), super::principal(req)) {
                        (Some(state), Some(who)) => super::Chrome::of(state, &who),
                        (Some(state), None) => super::Chrome::anonymous(state),
                        _ => super::Chrome::default(),
                    };
                    let page = ErrorPage {
                        c: chrome,
                        back: back_link(req),
                        status: e.status.as_u16(),
                        reason: e.status.canonical_reason().unwrap_or(""),
                        code: e.code,
                        message: &e.message,
                    }
                    .render()
                    .unwrap_or_else(|_| e.message.clone());
                    HttpResponse::build(e.status)
                        .content_type("text/html; charset=utf-8")
                        .body(page)
                }
            };
            res.into_response(http)
        }
        _ => res,
    };
    let mut res = res.map_body(|_, b| b.boxed());
    let h = res.headers_mut();
    let set = |h: &mut header::HeaderMap, name: header::HeaderName, v: &'static str| {
        h.insert(name, HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // `same-origin`, not `no-referrer`: under `no-referrer` Chromium sends `Origin: null` on form posts, which
    // the guard's origin check must refuse. Other sites still get no referrer.
    set(h, header::REFERRER_POLICY, "same-origin");
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    if let Ok(v) = HeaderValue::from_str(&request_id.to_string()) {
        h.insert(header::HeaderName::from_static("x-request-id"), v);
    }
    res
}

/// `BoxBody` is what every response is carried as after the guard.
pub type Response = ServiceResponse<BoxBody>;
