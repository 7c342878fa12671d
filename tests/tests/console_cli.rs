//! The console's command-line side with the real binaries: `stella init` prints the first admin's one-time
//! secret once and keeps only its hash; `stella user list|reset` recovers a site where nobody can sign in;
//! `stella serve` answers on loopback and is stopped by PID; `stella dump` never shows credentials.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::time::Duration;
use stella_tests::{bin, gen_key, stella_at, webdriver};

const NOW: &str = "2026-11-30T12:00:00Z";

fn secret_in(text: &str) -> String {
    text.lines()
        .find(|l| l.contains("one-time secret"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_else(|| panic!("no one-time secret in {text}"))
        .to_owned()
}

#[test]
fn init_prints_the_admin_secret_once_and_reset_recovers() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, "fips", None, "signer");
    let init = stella_at(
        d,
        NOW,
        &[
            "init",
            "--profile",
            "fips",
            "--kit-signer",
            "signer.pub.pem",
        ],
    )
    .ok();
    let secret = secret_in(&init.stdout);
    assert!(secret.len() >= 40, "{secret}");
    // Only its argon2id hash is stored: neither the store files nor a dump contain the secret.
    let dump = stella_at(d, NOW, &["dump", "--all"]).ok().stdout;
    assert!(!dump.contains("\"users\""), "dump shows no credential tree");
    for entry in walk(&d.join("data")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the secret in clear",
            entry.display()
        );
    }
    let list = stella_at(d, NOW, &["user", "list"]).ok().stdout;
    assert!(
        list.contains("admin") && list.contains("one-time secret not used yet"),
        "{list}"
    );
    // Recovery: a new secret, audited, and the chain still verifies.
    let reset = stella_at(d, NOW, &["user", "reset", "admin"]).ok();
    let again = secret_in(&reset.stdout);
    assert_ne!(again, secret);
    let log = stella_at(d, NOW, &["audit", "log"]).ok().stdout;
    assert!(
        log.contains("user-changed") && log.contains("\"reset\""),
        "{log}"
    );
    stella_at(d, NOW, &["audit", "verify"]).ok();
    let missing = stella_at(d, NOW, &["user", "reset", "nobody"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no console user 'nobody'"),
        "{}",
        missing.stderr
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn serve_answers_on_loopback_with_strict_headers() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, "fips", None, "signer");
    stella_at(
        d,
        NOW,
        &[
            "init",
            "--profile",
            "fips",
            "--kit-signer",
            "signer.pub.pem",
        ],
    )
    .ok();
    let port = webdriver::free_port();
    let mut cmd = std::process::Command::new(bin("stella"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("STELLA_DATA", d.join("data"))
        .env("STELLA_NOW", NOW);
    let mut server = webdriver::Daemon::spawn("stella serve", cmd, &d.join("serve.log"));
    let url = format!("http://127.0.0.1:{port}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let health = webdriver::poll(Duration::from_secs(10), || {
        agent.get(&format!("{url}/healthz")).call().ok()
    })
    .unwrap_or_else(|| panic!("stella serve did not answer: {}", server.output()));
    assert_eq!(health.status(), 200);
    let csp = health
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let mut body = String::new();
    health
        .into_body()
        .into_reader()
        .read_to_string(&mut body)
        .unwrap();
    assert!(body.contains("\"profile\":\"fips\""), "{body}");
    // Signed out: pages send the browser to sign in, the API answers 401 with a stable code.
    let page = agent.get(&format!("{url}/kits")).call().unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(
        page.headers().get("location").unwrap().to_str().unwrap(),
        "/login?next=%2Fkits"
    );
    let api = agent.get(&format!("{url}/api/v1/kits")).call().unwrap();
    assert_eq!(api.status(), 401);
    let mut body = String::new();
    api.into_body()
        .into_reader()
        .read_to_string(&mut body)
        .unwrap();
    assert!(body.contains("\"code\":\"unauthenticated\""), "{body}");
    assert!(!server.exited());
    assert!(
        server
            .output()
            .contains(&format!("serving the console on http://127.0.0.1:{port}/")),
        "{}",
        server.output()
    );
    // Dropping the guard kills the server by PID.
}
