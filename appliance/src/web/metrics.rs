//! Prometheus metrics (text format 0.0.4) and the health check. Request counters and latency histograms are
//! kept per route pattern (never per raw path, so ids do not explode the label set); domain gauges (kits,
//! findings, freshness) come from the cached dashboard.

use super::error::WebError;
use super::State;
use crate::store::{MetaStore as _, Tree};
use actix_web::HttpResponse;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket bounds, seconds.
pub const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Counters kept by the console process.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    imports: Mutex<BTreeMap<&'static str, u64>>,
    logins: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Records one request.
    pub fn record(&self, method: &'static str, route: &'static str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((method, route, status))
            .or_default() += 1;
        let s = took.as_secs_f64();
        let mut l = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = l.entry(route).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += s;
        h.count += 1;
    }

    /// Records an import outcome (`accepted`, `rejected`).
    pub fn import(&self, result: &'static str) {
        *self
            .imports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(result)
            .or_default() += 1;
    }

    /// Records a sign-in outcome (`ok`, `failed`, `throttled`).
    pub fn login(&self, result: &'static str) {
        *self
            .logins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(result)
            .or_default() += 1;
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn metrics(state: State) -> Result<HttpResponse, WebError> {
    let st = state.clone();
    let d = actix_web::web::block(move || super::dashboard::current(&st)).await??;
    let m = &state.metrics;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# HELP stella_http_requests_total HTTP requests by route pattern and status."
    );
    let _ = writeln!(o, "# TYPE stella_http_requests_total counter");
    for ((method, route, status), n) in m.requests.lock().unwrap_or_else(|e| e.into_inner()).iter()
    {
        let _ = writeln!(
            o,
            "stella_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
            label(route)
        );
    }
    let _ = writeln!(
        o,
        "# HELP stella_http_request_duration_seconds Request latency by route pattern."
    );
    let _ = writeln!(o, "# TYPE stella_http_request_duration_seconds histogram");
    for (route, h) in m.latency.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let r = label(route);
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "stella_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            o,
            "stella_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            o,
            "stella_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
            h.sum
        );
        let _ = writeln!(
            o,
            "stella_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
            h.count
        );
    }
    let _ = writeln!(
        o,
        "# HELP stella_imports_total Kit imports through the console by result."
    );
    let _ = writeln!(o, "# TYPE stella_imports_total counter");
    for (k, n) in m.imports.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = writeln!(o, "stella_imports_total{{result=\"{k}\"}} {n}");
    }
    let _ = writeln!(o, "# HELP stella_logins_total Sign-ins by result.");
    let _ = writeln!(o, "# TYPE stella_logins_total counter");
    for (k, n) in m.logins.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = writeln!(o, "stella_logins_total{{result=\"{k}\"}} {n}");
    }
    let gauges: [(&str, &str, usize); 5] = [
        ("stella_kits", "Kits imported.", d.status.kits),
        (
            "stella_kits_quarantined",
            "Kits rejected.",
            d.status.quarantined,
        ),
        ("stella_images", "Images the site has.", d.status.images),
        ("stella_images_scanned", "Images scanned.", d.images_scanned),
        (
            "stella_feed_documents",
            "Feed documents stored.",
            d.status.feed_documents,
        ),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    let _ = writeln!(
        o,
        "# HELP stella_findings Current findings by severity.\n# TYPE stella_findings gauge"
    );
    for (s, n) in d.severity_rows() {
        let _ = writeln!(o, "stella_findings{{severity=\"{s}\"}} {n}");
    }
    let _ = writeln!(o, "stella_findings_kev {}", d.findings_kev);
    let _ = writeln!(
        o,
        "# HELP stella_source_age_days Days since a source's newest data was ingested.\n# TYPE stella_source_age_days gauge"
    );
    for s in &d.sources {
        let _ = writeln!(
            o,
            "stella_source_age_days{{source=\"{}\"}} {:.3}",
            label(&s.source),
            s.age_days
        );
    }
    let _ = writeln!(
        o,
        "# HELP stella_channel_age_days Age of the newest kit per channel.\n# TYPE stella_channel_age_days gauge"
    );
    for c in &d.status.channels {
        if let Some(a) = c.age_days {
            let _ = writeln!(
                o,
                "stella_channel_age_days{{channel=\"{}\"}} {a:.3}",
                label(&c.channel)
            );
        }
    }
    let _ = writeln!(
        o,
        "# HELP stella_staleness_budget_days The site's staleness budget.\n# TYPE stella_staleness_budget_days gauge\nstella_staleness_budget_days {}",
        d.status.staleness_days
    );
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(o))
}

/// `GET /healthz`: 200 when the store answers, 503 otherwise.
pub async fn healthz(state: State) -> HttpResponse {
    let site = state.site();
    match site.store.get(Tree::Meta, b"schema_version") {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({
            "status": "ok",
            "profile": site.profile.id().to_string(),
            "store": "ok",
        })),
        Err(e) => {
            tracing::error!(error = %e, "health check: store failed");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({
                "status": "unavailable",
                "store": "failed",
            }))
        }
    }
}
