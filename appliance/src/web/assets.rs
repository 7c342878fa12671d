//! Static assets, compiled into the binary: the console works air-gapped and fetches nothing.

use super::error::WebError;
use actix_web::{web, HttpResponse};

/// Every asset: name, media type, bytes.
pub const ASSETS: [(&str, &str, &[u8]); 2] = [
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/favicon.svg"),
    ),
];

/// `GET /static/{file}`.
pub async fn asset(file: web::Path<String>) -> Result<HttpResponse, WebError> {
    let (_, mime, bytes) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == file.as_str())
        .ok_or_else(|| WebError::not_found(format!("no asset '{file}'")))?;
    Ok(HttpResponse::Ok()
        .content_type(*mime)
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(*bytes))
}
