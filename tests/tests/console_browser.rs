//! The console in a real browser (issue 7): Debian's headless `chromium` driven by `chromedriver` over
//! WebDriver, against `stella serve` on a demo site. One tour signs in with the one-time secret, chooses a
//! password, uploads a feed kit and then replays it, opens a finding and its linkset, downloads both SBOMs
//! and verifies the audit chain from the page. Every page it visits is checked for inline script, inline
//! style and event-handler attributes (the CSP forbids them), and the browser console for CSP violations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use stella_tests::webdriver::{self, Daemon, Driver, LogEntry, Options, Session};
use stella_tests::{bin, corpus, kit_at, osv};

/// The demo site is created at this time (2026-11-10T00:00:00Z, after the demo feeds' dates).
const T0: i64 = 1_794_268_800;
/// The feed kit is built a minute later, and the console serves two minutes after `T0`.
const KIT_AT: i64 = T0 + 60;
const SERVE_AT: i64 = T0 + 120;
/// The password the admin chooses at first sign-in.
const PASSWORD: &str = "browser-test-password-1";
/// The id of the feed kit the tour uploads (channel demo, sequence 2).
const FEED_KIT: &str = "browser-feed-2";

/// `stella serve` on a free loopback port; killed when dropped.
struct Console {
    _daemon: Daemon,
    base: String,
}

impl Console {
    fn start(dir: &Path, data: &Path) -> Console {
        let agent = webdriver::agent();
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", webdriver::free_port());
            let mut cmd = Command::new(bin("stella"));
            cmd.arg("--data")
                .arg(data)
                .args(["serve", "--listen", &addr])
                .env("STELLA_NOW", SERVE_AT.to_string())
                .current_dir(dir);
            let mut daemon = Daemon::spawn("stella serve", cmd, &dir.join("serve.log"));
            let base = format!("http://{addr}");
            let up = webdriver::poll(Duration::from_secs(20), || {
                if daemon.exited() {
                    return Some(false);
                }
                (webdriver::get_status(&agent, &format!("{base}/healthz")) == Some(200))
                    .then_some(true)
            });
            if up == Some(true) {
                return Console {
                    _daemon: daemon,
                    base,
                };
            }
            eprintln!(
                "stella serve on {addr} did not come up; retrying. output:\n{}",
                daemon.output()
            );
        }
        panic!("stella serve did not come up on any of 5 ports");
    }
}

/// The browser session with the checks every page gets.
struct Tour<'a> {
    s: &'a Session<'a>,
    base: String,
    /// Everything the browser console logged, when the driver offers the log.
    log: Option<Vec<LogEntry>>,
    /// Pages checked, in order.
    pages: Vec<String>,
}

impl<'a> Tour<'a> {
    fn new(s: &'a Session<'a>, base: &str) -> Tour<'a> {
        Tour {
            s,
            base: base.to_owned(),
            log: Some(Vec::new()),
            pages: Vec::new(),
        }
    }

    fn goto(&self, path: &str) {
        self.s.goto(&format!("{}{path}", self.base));
    }

    /// Checks the page the browser is on: no inline script, inline style, event-handler attribute or
    /// `javascript:` link (the CSP would block them, so a page relying on one is broken), and collects the
    /// console log.
    fn checked(&mut self) {
        let path = self.s.path();
        let inline = self.s.find_all(
            "script:not([src]), [style], [onclick], [onload], [onsubmit], [onchange], [oninput], \
             [onmouseover], [onfocus], [onerror], a[href^='javascript:']",
        );
        if !inline.is_empty() {
            let tags: Vec<String> = inline
                .iter()
                .filter_map(|e| e.prop("outerHTML").ok())
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect();
            self.s.fail(&format!(
                "{} inline script/style/handler element(s) on {path}, which the CSP forbids: {tags:?}",
                inline.len()
            ));
        }
        match (self.s.logs(), &mut self.log) {
            (Some(entries), Some(all)) => all.extend(entries),
            _ => self.log = None,
        }
        self.pages.push(path);
    }

    /// Waits for the browser to reach a path (prefix), then checks the page.
    fn arrive(&mut self, what: &str, prefix: &str) -> String {
        self.arrive_at(what, |p| p.starts_with(prefix))
    }

    /// Waits for the browser to reach a path that satisfies `f`, then checks the page.
    fn arrive_at(&mut self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let p = self.s.wait_path(what, f);
        self.checked();
        p
    }

    fn click(&mut self, css: &str) {
        self.s
            .wait_for(css)
            .click()
            .unwrap_or_else(|e| self.s.fail(&format!("clicking '{css}': {e}")));
    }

    fn type_into(&mut self, css: &str, text: &str) {
        let e = self.s.wait_for(css);
        e.clear()
            .and_then(|()| e.send_keys(text))
            .unwrap_or_else(|err| self.s.fail(&format!("typing into '{css}': {err}")));
    }

    fn text(&self, css: &str) -> String {
        self.s
            .wait_for(css)
            .text()
            .unwrap_or_else(|e| self.s.fail(&format!("text of '{css}': {e}")))
    }

    fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.s
            .wait_for(css)
            .attr(name)
            .unwrap_or_else(|e| self.s.fail(&format!("attribute {name} of '{css}': {e}")))
    }

    fn sign_in(&mut self, user: &str, password: &str) {
        self.type_into("#user", user);
        self.type_into("#password", password);
        self.click("#sign-in");
    }

    /// Uploads a kit through the form on /kits and returns the outcome's `data-result` and `data-code`.
    fn upload(&mut self, kit: &Path) -> (String, String) {
        self.goto("/kits");
        let input = self.s.wait_for("#kit-file");
        input
            .send_keys(&kit.display().to_string())
            .unwrap_or_else(|e| self.s.fail(&format!("choosing {}: {e}", kit.display())));
        self.click("#import");
        // The GET page has no outcome: its appearance is the answer to this upload.
        let result = self
            .attr("#import-result", "data-result")
            .unwrap_or_default();
        let code = self.attr("#import-result", "data-code").unwrap_or_default();
        self.checked();
        (result, code)
    }
}

/// Waits for a finished download whose name ends with `suffix` (Chromium writes `NAME.crdownload`
/// first and renames it when done) and parses it as JSON.
fn downloaded(s: &Session<'_>, dir: &Path, suffix: &str) -> (PathBuf, Value) {
    s.wait_until(
        &format!("a download named *{suffix} in {}", dir.display()),
        |_| {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return Ok(None);
            };
            for e in entries.flatten() {
                let p = e.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.ends_with(suffix) {
                    if let Ok(v) =
                        serde_json::from_slice::<Value>(&std::fs::read(&p).unwrap_or_default())
                    {
                        return Ok(Some((p, v)));
                    }
                }
            }
            Ok(None)
        },
    )
}

/// The failed loads the tour causes on purpose.
fn expected_error(e: &LogEntry) -> bool {
    e.source == "network"
        && ((e.message.contains("/kits?") && e.message.contains("status of 422"))
            || (e.message.contains("/no-such-page") && e.message.contains("status of 404")))
}

/// Builds the feed kit the tour uploads: one small OSV advisory on channel demo at sequence 2, signed by
/// the demo site's kit-signer key.
fn feed_kit(dir: &Path, data: &Path) -> PathBuf {
    let feeds = dir.join("feed");
    std::fs::create_dir_all(&feeds).unwrap();
    std::fs::write(
        feeds.join("BROWSERTEST-2026-0001.json"),
        osv("BROWSERTEST-2026-0001", "2026-11-09T00:00:00Z"),
    )
    .unwrap();
    let key = data.join("demo-kit-signer/kit-signer.key.pem");
    let out = dir.join(format!("{FEED_KIT}.kit"));
    kit_at(
        dir,
        KIT_AT,
        &[
            "build",
            "--channel",
            "demo",
            "--sequence",
            "2",
            "--id",
            FEED_KIT,
            "--quiet",
            "--feeds",
            feeds.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    out
}

#[test]
fn sign_in_upload_finding_linkset_sbom_and_audit_in_chromium() {
    let started = Instant::now();
    // A machine without the browser fails here with a pointer to `make test`; without the corpus (the
    // demo's image comes from it) the tour has nothing to open and is skipped.
    webdriver::chromium();
    let Some(corpus) = corpus() else {
        eprintln!(
            "skipped: the console browser tour needs the third-party corpus (../shared/corpus) for the \
             demo's Alpine image"
        );
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let data = dir.join("data");
    let demo = Command::new(bin("stella"))
        .arg("--data")
        .arg(&data)
        .arg("demo")
        .arg("--corpus")
        .arg(&corpus)
        .env("STELLA_NOW", T0.to_string())
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "stella demo failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&demo.stdout),
        String::from_utf8_lossy(&demo.stderr)
    );
    let secret = std::fs::read_to_string(data.join("demo-kit-signer/admin-secret")).unwrap();
    let secret = secret.trim();
    let kit = feed_kit(dir, &data);

    let console = Console::start(dir, &data);
    let driver = Driver::start(dir);
    let downloads = dir.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let session = Session::new(
        &driver,
        &Options {
            profile_dir: dir.join("chromium-profile"),
            download_dir: downloads.clone(),
        },
    );
    let s = &session;
    let mut tour = Tour::new(s, &console.base);
    let ready = started.elapsed();

    // Signing in with the one-time secret leads to the account page, and only there.
    tour.goto("/");
    tour.arrive("the sign-in redirect", "/login");
    tour.sign_in("admin", secret);
    tour.arrive("the account page after the one-time secret", "/account");
    s.wait_for("#must-change");
    tour.goto("/kits");
    tour.arrive("the account page instead of /kits", "/account");

    // Choosing a password opens the console.
    tour.type_into("#current", secret);
    tour.type_into("#new", PASSWORD);
    tour.type_into("#confirm", PASSWORD);
    tour.click("#change-password");
    s.wait_until("the password change to be accepted", |s| {
        if s.find("#error").is_ok() {
            s.fail("the password change was refused");
        }
        Ok(s.find("#token-form").is_ok().then_some(()))
    });
    tour.checked();
    tour.goto("/");
    if s.path().starts_with("/login") {
        tour.sign_in("admin", PASSWORD);
    }
    tour.arrive_at("the dashboard", |p| p == "/");
    assert_eq!(tour.text("#profile"), "fips", "the banner's profile");
    assert!(
        tour.text("#banner").contains("SEALED"),
        "the sealed-mode banner"
    );

    // A new feed kit is accepted; the same kit again is refused as a replay and quarantined.
    let (result, code) = tour.upload(&kit);
    if result != "accepted" {
        s.fail(&format!("the feed kit was not accepted ({code})"));
    }
    assert!(
        tour.text("#import-result").contains(FEED_KIT),
        "the outcome names the kit"
    );
    // The upload redirected to the kit's own page (post/redirect/get); the history lists it.
    tour.goto("/kits");
    assert!(tour.text("#history").contains(FEED_KIT), "import history");
    let (result, code) = tour.upload(&kit);
    if result != "rejected" || code != "rollback-refused" {
        s.fail(&format!(
            "the replayed kit: data-result={result:?} data-code={code:?}, expected rejected / \
             rollback-refused"
        ));
    }
    let quarantine = tour.text("#quarantine");
    assert!(
        quarantine.contains(FEED_KIT),
        "the replayed kit is in the quarantine table: {quarantine}"
    );

    // Images → the Alpine image → its first finding → the linkset with both sources and their conflict.
    tour.goto("/");
    tour.arrive_at("the dashboard", |p| p == "/");
    tour.click("header nav a[href='/images']");
    tour.arrive("the images page", "/images");
    let alpine = s.wait_until("a link to the scanned alpine image", |_| {
        for a in s.find_all("#images a[href^='/images/sha256:']") {
            if a.text()?.contains("alpine") {
                return Ok(Some(a));
            }
        }
        Ok(None)
    });
    alpine.click().unwrap();
    let image_page = tour.arrive("the alpine image page", "/images/sha256:");
    let first = s.wait_for("a.finding");
    let vuln = first.text().unwrap();
    first.click().unwrap();
    let linkset_page = tour.arrive("the finding's linkset page", "/advisories/");
    let rows = s.find_all("#statements tr td:first-child strong");
    let mut sources: Vec<String> = rows.iter().map(|e| e.text().unwrap()).collect();
    sources.sort();
    sources.dedup();
    assert!(
        sources.len() >= 2,
        "the linkset of {vuln} shows both sources' statements, got {sources:?}"
    );
    let conflicts = s.wait_for("#conflicts");
    let conflict_rows = conflicts.find_all("tr.conflict").unwrap();
    assert!(
        !conflict_rows.is_empty(),
        "the conflicts table of {vuln} has rows"
    );

    // Both SBOMs download from the image page and parse.
    tour.goto(&image_page);
    tour.arrive("the alpine image page again", "/images/sha256:");
    tour.click("#sbom-cyclonedx");
    let (cdx_path, cdx) = downloaded(s, &downloads, "-cyclonedx.json");
    assert_eq!(cdx["bomFormat"], "CycloneDX", "{}", cdx_path.display());
    tour.click("#sbom-spdx");
    let (spdx_path, spdx) = downloaded(s, &downloads, "-spdx.json");
    assert!(
        spdx["spdxVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("SPDX-2")),
        "{}: spdxVersion {}",
        spdx_path.display(),
        spdx["spdxVersion"]
    );
    tour.checked();

    // The audit chain verifies from the page.
    tour.click("header nav a[href='/audit']");
    tour.arrive("the audit page", "/audit");
    tour.click("#verify");
    tour.arrive("the verification page", "/audit/verify");
    let ok = tour.attr("#verify-result", "data-ok");
    if ok.as_deref() != Some("true") {
        s.fail("the audit chain did not verify from the page");
    }

    // The other pages of the console (and an error page) pass the same checks.
    for path in [
        "/advisories",
        &format!("/kits/{FEED_KIT}"),
        "/settings",
        "/users",
        "/account",
        "/no-such-page",
    ] {
        tour.goto(path);
        tour.arrive(&format!("page {path}"), path);
    }

    // No page broke the CSP, and the browser reported no error but the two statuses the tour provoked
    // (the replayed kit's 422 and the missing page's 404).
    match &tour.log {
        Some(log) => {
            let violations: Vec<&LogEntry> = log
                .iter()
                .filter(|e| e.message.contains("Content Security Policy"))
                .collect();
            assert!(
                violations.is_empty(),
                "CSP violations in the browser console: {violations:#?}"
            );
            let unexpected: Vec<&LogEntry> = log
                .iter()
                .filter(|e| e.level == "SEVERE" && !expected_error(e))
                .collect();
            assert!(
                unexpected.is_empty(),
                "errors in the browser console: {unexpected:#?}"
            );
        }
        None => eprintln!(
            "note: this chromedriver offers no browser log endpoint; the CSP check rests on the DOM \
             check of every page"
        ),
    }
    eprintln!(
        "browser tour: {} pages ({}), linkset {linkset_page} with sources {sources:?}; set-up {:.1}s, total \
         {:.1}s",
        tour.pages.len(),
        tour.pages.join(" "),
        ready.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
