//! A real OCI registry (Debian `docker-registry`, i.e. distribution 2.8) on 127.0.0.1 for tests, and
//! the tools around it (`skopeo`).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
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

impl Registry {
    /// Writes a config under `dir` (storage in `dir/data`), starts `docker-registry serve` on a free
    /// loopback port and waits until `GET /v2/` answers 200. None (with a message) if the binary is absent.
    pub fn start(dir: &Path) -> Option<Registry> {
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
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  \
                     delete: {{enabled: true}}\nhttp: {{addr: {addr}}}\n",
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
            if reg.wait_ready(Duration::from_secs(20)) {
                return Some(reg);
            }
            drop(reg);
        }
        panic!(
            "docker-registry did not come up; log:\n{}",
            std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if http_status(&self.addr, "/v2/") == Some(200) {
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
