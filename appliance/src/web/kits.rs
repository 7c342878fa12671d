//! Offline kits in the console: upload a kit or its volumes (the same import as `stella import`, with every
//! check), the import history with signed receipts, and the quarantine with reasons. Images a kit brings are
//! scanned right after it is accepted (layers seen before come from the cache).

use super::auth::{Principal, Role};
use super::error::WebError;
use super::{html, Chrome, State};
use crate::import::{self, ImportRequest, KitRecord, SignedReceipt};
use crate::store::{MetaStore as _, Tree};
use actix_multipart::Multipart;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use futures_util::StreamExt as _;
use kit_builder::exit::ExitStatus;
use kit_builder::read::KitInput;
use serde::Serialize;
use std::io::Write as _;
use std::path::PathBuf;

/// Largest upload accepted through the console, in bytes (the kit's own limits apply after).
pub const MAX_UPLOAD: u64 = 64 << 30;

/// The stable API code of a rejection recorded with its exit code (receipts keep the number).
pub fn code_for_exit(code: u8) -> &'static str {
    const ALL: [ExitStatus; 8] = [
        ExitStatus::VerificationFailed,
        ExitStatus::Usage,
        ExitStatus::Environment,
        ExitStatus::Expired,
        ExitStatus::RollbackRefused,
        ExitStatus::BaseMissing,
        ExitStatus::Malformed,
        ExitStatus::LimitExceeded,
    ];
    ALL.into_iter()
        .find(|s| s.code() == code)
        .map_or("kit-rejected", rejection_code)
}

/// The stable API code of an import failure.
pub fn rejection_code(s: ExitStatus) -> &'static str {
    match s {
        ExitStatus::VerificationFailed => "verification-failed",
        ExitStatus::Usage => "unreadable-kit",
        ExitStatus::Environment => "environment",
        ExitStatus::Expired => "expired",
        ExitStatus::RollbackRefused => "rollback-refused",
        ExitStatus::BaseMissing => "base-missing",
        ExitStatus::Malformed => "malformed",
        ExitStatus::LimitExceeded => "limit-exceeded",
        _ => "kit-rejected",
    }
}

/// The outcome of an upload.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The signed receipt (accepted or rejected).
    pub receipt: Option<SignedReceipt>,
    /// Stable code when rejected.
    pub code: Option<&'static str>,
    /// Why it was rejected.
    pub error: Option<String>,
    /// Images scanned after the import: (digest, name, packages, or the error).
    pub scans: Vec<ScanNote>,
}

/// One image scanned after an import.
#[derive(Debug, Serialize)]
pub struct ScanNote {
    /// Manifest digest.
    pub digest: String,
    /// Name.
    pub name: String,
    /// Packages found.
    pub packages: usize,
    /// Why it could not be scanned.
    pub error: Option<String>,
}

/// Keeps only a file name's safe characters (volume names like `site.kit.003` must survive).
fn safe_name(name: &str, n: usize) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let clean = clean.trim_start_matches('.');
    if clean.is_empty() {
        format!("upload-{n}.kit")
    } else {
        clean.to_owned()
    }
}

fn too_big() -> WebError {
    WebError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload-too-large",
        format!("uploads are limited to {MAX_UPLOAD} bytes"),
    )
}

/// Streams one uploaded file to `path` (fsynced), counting toward the upload's `total`.
async fn spool<S, E>(
    stream: &mut S,
    path: &std::path::Path,
    total: &mut u64,
) -> Result<(), WebError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut out = std::fs::File::create(path).map_err(WebError::internal)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| WebError::bad_request("bad-upload", e.to_string()))?;
        *total += chunk.len() as u64;
        if *total > MAX_UPLOAD {
            return Err(too_big());
        }
        out.write_all(&chunk).map_err(WebError::internal)?;
    }
    out.sync_all().map_err(WebError::internal)
}

/// Spools an upload into a fresh directory under the data directory: a multipart form with one or more
/// `kit` files (and an optional `reason` to force a replay), or a raw body as one kit file.
async fn receive(
    state: &State,
    req: &HttpRequest,
    mut body: web::Payload,
) -> Result<(tempfile::TempDir, Vec<PathBuf>, Option<String>), WebError> {
    std::fs::create_dir_all(&state.uploads).map_err(WebError::internal)?;
    let dir = tempfile::Builder::new()
        .prefix("upload-")
        .tempdir_in(&state.uploads)
        .map_err(WebError::internal)?;
    let mut paths = Vec::new();
    let mut reason = None;
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let bad = |e: &dyn std::fmt::Display| WebError::bad_request("bad-upload", e.to_string());
    if multipart {
        let mut form = Multipart::new(req.headers(), body);
        let mut total = 0u64;
        while let Some(field) = form.next().await {
            let mut field = field.map_err(|e| bad(&e))?;
            let name = field.name().unwrap_or("").to_owned();
            match name.as_str() {
                "kit" => {
                    let file = field
                        .content_disposition()
                        .and_then(|d| d.get_filename())
                        .unwrap_or("")
                        .to_owned();
                    if file.is_empty() {
                        // A file input left empty sends a part with no file name.
                        while field.next().await.is_some() {}
                        continue;
                    }
                    let path = dir.path().join(safe_name(&file, paths.len()));
                    if paths.contains(&path) {
                        return Err(WebError::bad_request(
                            "bad-upload",
                            format!("file '{file}' was given twice"),
                        ));
                    }
                    spool(&mut field, &path, &mut total).await?;
                    paths.push(path);
                }
                "reason" => {
                    let bytes = field.bytes(4096).await.map_err(|_| {
                        WebError::bad_request("bad-upload", "the reason is limited to 4096 bytes")
                    })?;
                    let text = String::from_utf8_lossy(&bytes.map_err(|e| bad(&e))?)
                        .trim()
                        .to_owned();
                    reason = (!text.is_empty()).then_some(text);
                }
                // The CSRF field may also travel in the form; the guard already checked the query copy.
                _ => while field.next().await.is_some() {},
            }
        }
    } else {
        let name = req
            .headers()
            .get("x-kit-filename")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("upload.kit");
        let path = dir.path().join(safe_name(name, 0));
        let mut total = 0u64;
        spool(&mut body, &path, &mut total).await?;
        if total > 0 {
            paths.push(path);
        }
        reason = req
            .headers()
            .get("x-force-reason")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
    }
    if paths.is_empty() {
        return Err(WebError::bad_request(
            "no-kit",
            "choose a kit file (or all of its volumes) to upload",
        ));
    }
    Ok((dir, paths, reason))
}

/// Imports spooled files, then scans the images the kit brought.
fn import_files(
    state: &State,
    who: &Principal,
    spool: &std::path::Path,
    paths: Vec<PathBuf>,
    reason: Option<String>,
) -> Result<Outcome, WebError> {
    if reason.is_some() && who.role != Role::Admin {
        return Err(WebError::forbidden(
            "force-needs-admin",
            "only an admin may force a kit at or below the channel's high-water mark",
        ));
    }
    let _one = state.import_lock.lock().unwrap_or_else(|e| e.into_inner());
    let site = state.site();
    let now = state.now();
    let names: Vec<String> = paths
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    // Errors name the uploaded files, not where they were spooled.
    let input = KitInput::one(paths).map_err(|e| {
        let spooled = format!("{}/", spool.display());
        WebError::bad_request("bad-upload", e.to_string().replace(&spooled, ""))
    })?;
    let res = import::import(
        &site,
        &ImportRequest {
            input,
            force_reason: reason,
            now,
            actor: format!("console:{}", who.user),
            label: Some(format!("upload:{}", names.join(","))),
        },
    );
    state.changed();
    match res {
        Ok(signed) => {
            state.metrics.import("accepted");
            let kit = signed.receipt.kit.clone().unwrap_or_default();
            let mut scans = Vec::new();
            for (k, v) in site.store.scan(Tree::Images, b"sha256:")? {
                let v: serde_json::Value = serde_json::from_slice(&v).unwrap_or_default();
                if v["kit"].as_str() != Some(kit.as_str()) {
                    continue;
                }
                let digest = String::from_utf8_lossy(&k).into_owned();
                let name = v["name"].as_str().unwrap_or("").to_owned();
                let t = now.to_string();
                match crate::scan::scan(&site.store, &digest, &t) {
                    Ok(r) => {
                        crate::scan::findings::reevaluate(&site.store, "scan", &t, Some(&digest))?;
                        scans.push(ScanNote {
                            digest,
                            name,
                            packages: r.record.packages.len(),
                            error: None,
                        });
                    }
                    Err(e) => scans.push(ScanNote {
                        digest,
                        name,
                        packages: 0,
                        error: Some(e.to_string()),
                    }),
                }
            }
            Ok(Outcome {
                receipt: Some(signed),
                code: None,
                error: None,
                scans,
            })
        }
        Err(e) => {
            state.metrics.import("rejected");
            // Name the uploaded files as the user gave them, not by their spool path.
            let message = e.to_string().replace(&format!("{}/", spool.display()), "");
            Ok(Outcome {
                code: Some(rejection_code(e.status)),
                error: Some(message),
                receipt: e.receipt.map(|b| *b),
                scans: Vec::new(),
            })
        }
    }
}

async fn upload(
    state: State,
    who: Principal,
    req: HttpRequest,
    body: web::Payload,
) -> Result<Outcome, WebError> {
    let (dir, paths, reason) = receive(&state, &req, body).await?;
    let st = state.clone();
    let spool = dir.path().to_owned();
    let out = web::block(move || import_files(&st, &who, &spool, paths, reason)).await??;
    drop(dir);
    Ok(out)
}

/// Rows of the kits page.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// Imported kits, newest first.
    pub kits: Vec<KitRecord>,
    /// Quarantine records, newest first.
    pub quarantine: Vec<serde_json::Value>,
}

fn listing(state: &State) -> Result<Listing, WebError> {
    let site = state.site();
    let mut kits = crate::status::kits(&site)?;
    kits.reverse();
    let mut quarantine = crate::status::quarantine(&site)?;
    quarantine.reverse();
    Ok(Listing { kits, quarantine })
}

#[derive(Template)]
#[template(path = "kits.html")]
struct Page {
    c: Chrome,
    l: Listing,
    outcome: Option<Outcome>,
    is_admin: bool,
}

impl Page {
    fn q(&self, v: &serde_json::Value, key: &str) -> String {
        match &v[key] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

fn render(
    state: &State,
    who: &Principal,
    outcome: Option<Outcome>,
) -> Result<(StatusCode, String), WebError> {
    let status = match &outcome {
        Some(o) if o.error.is_some() => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let page = Page {
        c: Chrome::of(state, who),
        l: listing(state)?,
        outcome,
        is_admin: who.role == Role::Admin,
    };
    Ok((status, page.render()?))
}

fn respond((status, body): (StatusCode, String)) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// Query of the kits page: after a rejected upload, the receipt to show.
#[derive(Debug, serde::Deserialize)]
pub struct KitsQuery {
    /// Receipt number of a rejected upload.
    #[serde(default)]
    pub rejected: Option<u64>,
}

/// `GET /kits`.
pub async fn page(
    state: State,
    who: Principal,
    q: web::Query<KitsQuery>,
) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    Ok(respond(
        web::block(move || {
            let outcome = match q.rejected {
                Some(n) => st
                    .site()
                    .store
                    .get_json::<SignedReceipt>(Tree::Receipts, &n.to_be_bytes())?
                    .filter(|r| r.receipt.result == "rejected")
                    .map(|r| Outcome {
                        code: Some(code_for_exit(r.receipt.exit_code)),
                        error: Some(r.receipt.reason.clone().unwrap_or_default()),
                        receipt: Some(r),
                        scans: Vec::new(),
                    }),
                None => None,
            };
            render(&st, &who, outcome)
        })
        .await??,
    ))
}

/// `POST /kits` (multipart form). Redirects (post/redirect/get) to the kit's page when it was accepted, or to
/// the kits page showing the rejection receipt, so reloading never uploads twice.
pub async fn upload_page(
    state: State,
    who: Principal,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    let out = upload(state.clone(), who.clone(), req, body).await?;
    let kit = out.receipt.as_ref().and_then(|r| r.receipt.kit.clone());
    let number = out.receipt.as_ref().map(|r| r.receipt.number);
    Ok(match (out.error.is_some(), kit, number) {
        (false, Some(kit), _) => super::see_other(&format!("/kits/{kit}?imported=1")),
        (true, _, Some(n)) => super::see_other(&format!("/kits?rejected={n}")),
        _ => {
            let st = state.clone();
            respond(web::block(move || render(&st, &who, Some(out))).await??)
        }
    })
}

/// `POST /api/v1/kits`: 200 with the receipt, or 422 with the code, message and the rejection receipt.
pub async fn upload_api(
    state: State,
    who: Principal,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    let out = upload(state, who, req, body).await?;
    Ok(match (&out.code, &out.error) {
        (Some(code), Some(message)) => HttpResponse::UnprocessableEntity().json(
            serde_json::json!({"error": {"code": code, "message": message}, "receipt": out.receipt}),
        ),
        _ => HttpResponse::Ok().json(&out),
    })
}

/// One kit and its receipt.
#[derive(Debug, Serialize)]
pub struct Detail {
    /// The kit.
    pub kit: KitRecord,
    /// Its signed receipt.
    pub receipt: Option<SignedReceipt>,
}

fn detail(state: &State, id: &str) -> Result<Detail, WebError> {
    let site = state.site();
    let kit = site
        .store
        .get_json::<KitRecord>(Tree::Kits, id.as_bytes())?
        .ok_or_else(|| WebError::not_found(format!("no imported kit '{id}'")))?;
    let receipt = site
        .store
        .get_json::<SignedReceipt>(Tree::Receipts, &kit.receipt.to_be_bytes())?;
    Ok(Detail { kit, receipt })
}

#[derive(Template)]
#[template(path = "kit.html")]
struct DetailPage {
    c: Chrome,
    d: Detail,
    receipt_json: String,
    imported: bool,
    images: Vec<super::images::ImageRow>,
}

/// Query of a kit's page.
#[derive(Debug, serde::Deserialize)]
pub struct DetailQuery {
    /// Set after the upload that imported it.
    #[serde(default)]
    pub imported: Option<u8>,
}

/// `GET /kits/{id}`.
pub async fn detail_page(
    state: State,
    who: Principal,
    id: web::Path<String>,
    q: web::Query<DetailQuery>,
) -> Result<HttpResponse, WebError> {
    let d = detail(&state, &id)?;
    let receipt_json = serde_json::to_string_pretty(&d.receipt).map_err(WebError::internal)?;
    let images = super::images::rows(&state)?
        .into_iter()
        .filter(|r| r.kit.as_deref() == Some(id.as_str()))
        .collect();
    html(&DetailPage {
        c: Chrome::of(&state, &who),
        d,
        receipt_json,
        imported: q.imported.is_some(),
        images,
    })
}

/// `GET /api/v1/kits/{id}`.
pub async fn detail_api(state: State, id: web::Path<String>) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok().json(detail(&state, &id)?))
}

/// `GET /api/v1/kits`.
pub async fn list_api(state: State) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok().json(listing(&state)?.kits))
}

/// `GET /api/v1/quarantine`.
pub async fn quarantine_api(state: State) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok().json(listing(&state)?.quarantine))
}
