//! A real OCI registry (Debian `docker-registry`, i.e. distribution 2.8) on 127.0.0.1 for tests, and
//! the tools around it (`skopeo`).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether a program is on `PATH`.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// A registry serving on 127.0.0.1; killed (by its PID) and reaped when dropped, also when a test fails.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

/// A test CA and a server certificate it signed for 127.0.0.1 (IP SAN), made with the `openssl` CLI.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate (PEM): what `--registry-ca` is given.
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawn openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestPki {
    /// Creates `dir` with `ca.pem`/`ca.key` (P-256, CA:TRUE) and `server.pem`/`server.key` for IP
    /// 127.0.0.1, valid for two days.
    pub fn new(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).expect("pki dir");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=stella test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("server.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        TestPki {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

impl Registry {
    /// Writes a config under `dir` (storage in `dir/data`), starts `docker-registry serve` on a free
    /// loopback port and waits until `GET /v2/` answers 200. None (with a message) if the binary is absent.
    pub fn start(dir: &Path) -> Option<Registry> {
        Registry::start_with(dir, None)
    }

    /// Like [`Registry::start`], serving HTTPS only with the server certificate of `pki`.
    pub fn start_tls(dir: &Path, pki: &TestPki) -> Option<Registry> {
        Registry::start_with(dir, Some(pki))
    }

    fn start_with(dir: &Path, tls: Option<&TestPki>) -> Option<Registry> {
        if !have("docker-registry") {
            eprintln!("skipping: docker-registry not installed (Debian package docker-registry)");
            return None;
        }
        // Pick a free port; the small race with another process taking it is retried below.
        for _ in 0..5 {
            let port = {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
                l.local_addr().expect("local addr").port()
            };
            let addr = format!("127.0.0.1:{port}");
            let config = dir.join("registry.yml");
            let http = match tls {
                None => format!("http: {{addr: {addr}}}\n"),
                Some(p) => format!(
                    "http:\n  addr: {addr}\n  tls:\n    certificate: {}\n    key: {}\n",
                    p.cert.display(),
                    p.key.display()
                ),
            };
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  \
                     delete: {{enabled: true}}\n{http}",
                    dir.join("data").display()
                ),
            )
            .expect("write registry config");
            let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let mut reg = Registry { child, addr };
            // An HTTPS-only server answers a plain-HTTP request with 400: up, and speaking TLS.
            let ready = if tls.is_some() { 400 } else { 200 };
            if reg.wait_ready(Duration::from_secs(20), ready) {
                return Some(reg);
            }
            drop(reg);
        }
        panic!(
            "docker-registry did not come up; log:\n{}",
            std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
    }

    fn wait_ready(&mut self, limit: Duration, status: u16) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if http_status(&self.addr, "/v2/") == Some(status) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of a plain HTTP/1.0 GET to `addr`, if anything answered.
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(head.get(9..12)?).ok()?.parse().ok()
}
