//! A minimal W3C WebDriver client over plain HTTP for browser tests: `chromedriver` on 127.0.0.1 driving
//! Debian's headless `chromium`. Only what the console tests need: sessions, navigation, CSS lookups,
//! clicks, typing (file uploads included), text and attributes, the browser console log, and explicit
//! waits that poll instead of sleeping.

use crate::registry::have;
use serde_json::{json, Value};
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long an explicit wait polls before it fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// Pause between two polls of a wait.
const POLL: Duration = Duration::from_millis(100);
/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A free TCP port on 127.0.0.1 (the listener is closed again; callers retry if someone takes it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `limit`; None when the time ran out.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// A child process killed (by its PID) and reaped when dropped, also when a test panics. Its standard
/// output and error go to a log file, shown when it fails to start.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// What it is, for messages.
    pub name: String,
    /// Where its output goes.
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with its output in `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Daemon {
        let out = File::create(log).expect("create daemon log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon {
            child,
            name: name.to_owned(),
            log: log.to_owned(),
        }
    }

    /// Whether the process has already exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// What it wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP agent for loopback calls: never through a proxy from the environment, status codes are
/// answers, not errors (WebDriver reports failures as 4xx/5xx with a JSON body), and no call hangs forever.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .new_agent()
}

/// The status of `GET url`, if anything answered.
pub fn get_status(agent: &ureq::Agent, url: &str) -> Option<u16> {
    agent.get(url).call().ok().map(|r| r.status().as_u16())
}

/// Path of a program on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// The headless browser, or a failure that says how to get it: the browser tests never pass silently.
pub fn chromium() -> PathBuf {
    let missing: Vec<&str> = ["chromium", "chromedriver"]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    assert!(
        missing.is_empty(),
        "browser tests need {} on PATH (Debian packages chromium and chromium-driver): run `make test`, \
         which installs them",
        missing.join(" and ")
    );
    which("chromium").expect("chromium on PATH")
}

/// A WebDriver error as the driver reported it.
#[derive(Debug, Clone)]
pub struct WdError {
    /// HTTP status.
    pub status: u16,
    /// W3C error code (`no such element`, `stale element reference`, ...).
    pub error: String,
    /// The driver's message.
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error, self.status, self.message)
    }
}

/// `chromedriver` listening on 127.0.0.1; killed when dropped.
#[derive(Debug)]
pub struct Driver {
    daemon: Daemon,
    agent: ureq::Agent,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Driver {
    /// Starts chromedriver on a free loopback port (its log in `dir/chromedriver.log`) and waits until it
    /// reports ready. Fails with a pointer to `make test` when chromium or chromedriver is missing.
    pub fn start(dir: &Path) -> Driver {
        chromium();
        let agent = agent();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("chromedriver");
            cmd.arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .arg("--log-level=WARNING");
            let mut d = Driver {
                daemon: Daemon::spawn("chromedriver", cmd, &dir.join("chromedriver.log")),
                agent: agent.clone(),
                base: format!("http://127.0.0.1:{port}"),
            };
            let ready = poll(Duration::from_secs(20), || {
                if d.daemon.exited() {
                    return Some(false);
                }
                let status = d.call("GET", "/status", None).ok()?;
                status["ready"].as_bool().filter(|r| *r)
            });
            if ready == Some(true) {
                return d;
            }
            eprintln!(
                "chromedriver on port {port} did not come up; retrying. log:\n{}",
                d.daemon.output()
            );
        }
        panic!("chromedriver did not come up on any of 5 ports");
    }

    /// One WebDriver command: the `value` of the answer, or the driver's error.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, WdError> {
        let url = format!("{}{path}", self.base);
        let res = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json; charset=utf-8")
                .send(body.unwrap_or(&json!({})).to_string()),
        };
        let transport = |message: String| WdError {
            status: 0,
            error: "transport".into(),
            message,
        };
        let mut res = res.map_err(|e| transport(format!("{method} {path}: {e}")))?;
        let status = res.status().as_u16();
        let text = res
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| transport(format!("{method} {path}: reading the answer: {e}")))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| transport(format!("{method} {path}: not JSON ({e}): {text}")))?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        match value.get("error").and_then(Value::as_str) {
            Some(error) if status >= 400 => Err(WdError {
                status,
                error: error.to_owned(),
                message: value["message"].as_str().unwrap_or("").to_owned(),
            }),
            _ => Ok(value),
        }
    }
}

/// Options of a new browser session.
#[derive(Debug, Clone)]
pub struct Options {
    /// Chrome's profile directory (a fresh temp dir, so runs do not share cookies).
    pub profile_dir: PathBuf,
    /// Where downloads land.
    pub download_dir: PathBuf,
}

/// One entry of the browser console log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO`, `DEBUG`.
    pub level: String,
    /// `security`, `network`, `javascript`, `recommendation`, ...
    pub source: String,
    /// The text.
    pub message: String,
}

/// A browser session (headless Chromium); deleted when dropped, which also ends the browser.
#[derive(Debug)]
pub struct Session<'d> {
    driver: &'d Driver,
    id: String,
}

impl<'d> Session<'d> {
    /// A headless Chromium session: no sandbox (root in a container has none to offer), no GPU, downloads
    /// without asking into `opts.download_dir`, and the browser console log kept for [`Session::logs`].
    pub fn new(driver: &'d Driver, opts: &Options) -> Session<'d> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--window-size=1280,1024",
                    format!("--user-data-dir={}", opts.profile_dir.display()),
                ],
                "prefs": {
                    "download.default_directory": opts.download_dir,
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "safebrowsing.enabled": false,
                },
            },
        }}});
        let v = driver
            .call("POST", "/session", Some(&caps))
            .unwrap_or_else(|e| panic!("cannot start headless chromium: {e}"));
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {v}"))
            .to_owned();
        Session { driver, id }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, WdError> {
        self.driver
            .call(method, &format!("/session/{}{path}", self.id), body)
    }

    fn must(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.cmd(method, path, body)
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"))
    }

    /// Opens a URL and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.must("POST", "/url", Some(&json!({ "url": url })));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.must("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The current URL's path and query (`/kits?x=1`).
    pub fn path(&self) -> String {
        let url = self.url();
        let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        rest.find('/')
            .map_or_else(|| "/".to_owned(), |i| rest[i..].to_owned())
    }

    /// The first element matching a CSS selector, now.
    pub fn find(&self, css: &str) -> Result<Element<'_>, WdError> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(&json!({"using": "css selector", "value": css})),
        )?;
        Ok(Element {
            session: self,
            id: element_id(&v),
        })
    }

    /// Every element matching a CSS selector, now.
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self.must(
            "POST",
            "/elements",
            Some(&json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| Element {
                        session: self,
                        id: element_id(e),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (up to [`WAIT`]) for an element matching a CSS selector.
    pub fn wait_for(&self, css: &str) -> Element<'_> {
        let mut last = None;
        match poll(WAIT, || match self.find(css) {
            Ok(e) => Some(e),
            Err(e) => {
                last = Some(e);
                None
            }
        }) {
            Some(e) => e,
            None => self.fail(&format!(
                "no element '{css}' after {WAIT:?} ({})",
                last.map(|e| e.to_string()).unwrap_or_default()
            )),
        }
    }

    /// Waits (up to [`WAIT`]) until `f` returns `Some`; WebDriver errors in `f` (an element that went
    /// stale while the page changed) count as "not yet".
    pub fn wait_until<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&Self) -> Result<Option<T>, WdError>,
    ) -> T {
        let mut last = None;
        match poll(WAIT, || match f(self) {
            Ok(v) => v,
            Err(e) => {
                last = Some(e);
                None
            }
        }) {
            Some(v) => v,
            None => self.fail(&format!(
                "timed out after {WAIT:?} waiting for {what}{}",
                last.map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            )),
        }
    }

    /// Waits until the current path (with query) satisfies `f`.
    pub fn wait_path(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        self.wait_until(what, |s| {
            let p = s.path();
            Ok(f(&p).then_some(p))
        })
    }

    /// The visible text of the page's `<body>`.
    pub fn body_text(&self) -> String {
        self.find("body").and_then(|b| b.text()).unwrap_or_default()
    }

    /// Fails the test with the page it was on, to make a browser failure readable.
    #[track_caller]
    pub fn fail(&self, message: &str) -> ! {
        let url = self.url();
        let mut text = self.body_text();
        if text.len() > 3000 {
            let mut cut = 3000;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        panic!("{message}\n  at {url}\n  page text:\n{text}");
    }

    /// The browser console log since the last call, or None when this driver does not offer the log
    /// endpoint (it is a Chromium extension to the W3C protocol).
    pub fn logs(&self) -> Option<Vec<LogEntry>> {
        let v = self
            .cmd("POST", "/se/log", Some(&json!({"type": "browser"})))
            .or_else(|_| self.cmd("POST", "/log", Some(&json!({"type": "browser"}))))
            .ok()?;
        Some(
            v.as_array()?
                .iter()
                .map(|e| LogEntry {
                    level: e["level"].as_str().unwrap_or("").to_owned(),
                    source: e["source"].as_str().unwrap_or("").to_owned(),
                    message: e["message"].as_str().unwrap_or("").to_owned(),
                })
                .collect(),
        )
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self
            .driver
            .call("DELETE", &format!("/session/{}", self.id), None);
    }
}

fn element_id(v: &Value) -> String {
    v[ELEMENT_KEY]
        .as_str()
        .unwrap_or_else(|| panic!("not an element reference: {v}"))
        .to_owned()
}

/// An element of the current page.
#[derive(Debug)]
pub struct Element<'s> {
    session: &'s Session<'s>,
    id: String,
}

impl Element<'_> {
    fn cmd(&self, method: &str, what: &str, body: Option<&Value>) -> Result<Value, WdError> {
        self.session
            .cmd(method, &format!("/element/{}{what}", self.id), body)
    }

    /// Clicks it (a link or submit button: the driver waits for the navigation it starts).
    pub fn click(&self) -> Result<(), WdError> {
        self.cmd("POST", "/click", None).map(drop)
    }

    /// Types text into it; for a file input, the text is the absolute path of the file to upload.
    pub fn send_keys(&self, text: &str) -> Result<(), WdError> {
        self.cmd("POST", "/value", Some(&json!({ "text": text })))
            .map(drop)
    }

    /// Empties a text field.
    pub fn clear(&self) -> Result<(), WdError> {
        self.cmd("POST", "/clear", None).map(drop)
    }

    /// Its rendered text.
    pub fn text(&self) -> Result<String, WdError> {
        self.cmd("GET", "/text", None)
            .map(|v| v.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute as written in the markup, if present.
    pub fn attr(&self, name: &str) -> Result<Option<String>, WdError> {
        self.cmd("GET", &format!("/attribute/{name}"), None)
            .map(|v| v.as_str().map(str::to_owned))
    }

    /// A DOM property (`outerHTML`, `value`, `checked`...).
    pub fn prop(&self, name: &str) -> Result<Value, WdError> {
        self.cmd("GET", &format!("/property/{name}"), None)
    }

    /// Elements inside it matching a CSS selector.
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>, WdError> {
        let v = self.cmd(
            "POST",
            "/elements",
            Some(&json!({"using": "css selector", "value": css})),
        )?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| Element {
                        session: self.session,
                        id: element_id(e),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}
