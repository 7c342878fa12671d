//! Pulling an image by digest from an OCI distribution registry (distribution spec v1.1) into a
//! temporary OCI image layout, which [`crate::oci`] then reads like any other layout.
//!
//! Only digests are accepted: a tag names whatever the registry serves today, a digest names bytes, and
//! a kit must carry exactly the bytes its builder meant. Every manifest and blob is hashed while it is
//! received and refused unless its SHA-256 is the digest that named it.
//!
//! Architecture invariant: this module is the only place in the workspace that opens network
//! connections, and only `stella-kit build` on the connected side reaches it; the appliance never does.

use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use zeroize::Zeroizing;

const MANIFEST_OCI: &str = "application/vnd.oci.image.manifest.v1+json";
const MANIFEST_DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
const INDEX_OCI: &str = "application/vnd.oci.image.index.v1+json";
const INDEX_DOCKER: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The manifest types asked for, most preferred first.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.docker.distribution.manifest.v2+json";
/// Largest manifest or index read into memory (as for layouts).
const MAX_MANIFEST: u64 = 4 << 20;
/// Most manifests followed from one index tree, so a hostile registry cannot fan out without end.
const MAX_MANIFESTS: usize = 4096;
/// Connect and per-read timeouts. No overall timeout: layers may be large.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variable naming registries reached over plain HTTP (comma-separated `HOST[:PORT]`).
pub const ENV_INSECURE: &str = "STELLA_INSECURE_REGISTRIES";
/// Environment variable with the user name for registries that ask for credentials.
pub const ENV_USER: &str = "STELLA_REGISTRY_USER";
/// Environment variable with the password (or token) for [`ENV_USER`].
pub const ENV_PASSWORD: &str = "STELLA_REGISTRY_PASSWORD";

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`HOST` or `HOST:PORT`) reached over plain HTTP. Loopback hosts are tried over HTTPS
    /// first and reached over plain HTTP when their port does not speak TLS.
    pub insecure: Vec<String>,
    /// A PEM file of CA certificates that replaces the built-in (Mozilla) roots for HTTPS registries.
    pub ca_file: Option<PathBuf>,
    /// Credentials for registries that answer 401.
    pub credentials: Option<Credentials>,
}

impl RegistryOptions {
    /// Options from flags plus the environment: [`ENV_INSECURE`] adds insecure registries, and
    /// [`ENV_USER`] with [`ENV_PASSWORD`] give credentials.
    pub fn from_env(mut insecure: Vec<String>, ca_file: Option<PathBuf>) -> RegistryOptions {
        if let Ok(list) = std::env::var(ENV_INSECURE) {
            insecure.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned),
            );
        }
        let credentials = match (std::env::var(ENV_USER), std::env::var(ENV_PASSWORD)) {
            (Ok(user), Ok(password)) if !user.is_empty() => Some(Credentials {
                user,
                password: Zeroizing::new(password),
            }),
            _ => None,
        };
        RegistryOptions {
            insecure,
            ca_file,
            credentials,
        }
    }
}

/// A user name and password for HTTP Basic authentication at a registry or its token service.
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password or access token.
    pub password: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// `HOST[:PORT]/REPO@sha256:HEX`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host as written, with its port if one was given.
    pub host: String,
    /// Repository path.
    pub repo: String,
    /// `sha256:` digest of the manifest or index.
    pub digest: String,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.host, self.repo, self.digest)
    }
}

impl Reference {
    /// Parses `HOST[:PORT]/REPO@sha256:HEX` (without the `registry:` prefix). Tags are refused.
    pub fn parse(s: &str) -> Result<Reference, RegistryError> {
        let bad = |reason: String| RegistryError::BadReference {
            reference: s.to_owned(),
            reason,
        };
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, d),
            None => {
                let tagged =
                    s.rsplit('/').next().is_some_and(|last| last.contains(':')) && s.contains('/');
                return Err(bad(if tagged {
                    format!(
                        "tags are not accepted, pull by digest: give HOST[:PORT]/REPO@sha256:DIGEST \
                         (find the digest with `skopeo inspect docker://{s} --format '{{{{.Digest}}}}'`)"
                    )
                } else {
                    "no digest: give HOST[:PORT]/REPO@sha256:DIGEST".into()
                }));
            }
        };
        let (host, repo) = name
            .split_once('/')
            .ok_or_else(|| bad("no repository: give HOST[:PORT]/REPO@sha256:DIGEST".into()))?;
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(bad(format!(
                "'{host}' is not a registry host: name the registry explicitly, e.g. docker.io/{name}"
            )));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err(bad(format!("malformed registry host '{host}'")));
        }
        if repo
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
        {
            return Err(bad(
                "give a digest without a tag: drop ':TAG' before '@sha256:'".into(),
            ));
        }
        if !valid_repo(repo) {
            return Err(bad(format!(
                "malformed repository '{repo}' (lowercase letters, digits and . _ - separators, / between components)"
            )));
        }
        if !is_sha256_digest(digest) {
            return Err(bad(format!(
                "'{digest}' is not a digest: only sha256:<64 lowercase hex digits> is supported"
            )));
        }
        Ok(Reference {
            host: host.to_owned(),
            repo: repo.to_owned(),
            digest: digest.to_owned(),
        })
    }

    /// The host without its port (and without IPv6 brackets).
    fn hostname(&self) -> &str {
        let h = &self.host;
        if let Some(rest) = h.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        h.rsplit_once(':').map_or(h.as_str(), |(n, _)| n)
    }

    fn is_loopback(&self) -> bool {
        let h = self.hostname();
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The base URL of the registry's API, and the plain-HTTP one to fall back to if the first does not
    /// speak TLS. Listed insecure registries: plain HTTP. Loopback: HTTPS (checked like any other), or
    /// plain HTTP when the port answers a TLS handshake with something that is not TLS; a certificate
    /// that fails its check never falls back. Everything else: HTTPS only.
    fn base_urls(&self, opts: &RegistryOptions) -> (String, Option<String>) {
        // Docker Hub's API does not live at the name people write.
        let host = match self.host.as_str() {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            h => h,
        };
        if opts
            .insecure
            .iter()
            .any(|i| i == &self.host || i == self.hostname())
        {
            (format!("http://{host}"), None)
        } else if self.is_loopback() {
            (format!("https://{host}"), Some(format!("http://{host}")))
        } else {
            (format!("https://{host}"), None)
        }
    }

    /// The repository path the API expects (Docker Hub puts official images under `library/`).
    fn api_repo(&self) -> String {
        if matches!(self.host.as_str(), "docker.io" | "index.docker.io") && !self.repo.contains('/')
        {
            format!("library/{}", self.repo)
        } else {
            self.repo.clone()
        }
    }
}

fn valid_repo(repo: &str) -> bool {
    !repo.is_empty()
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        })
}

fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// A pull failed. Messages name the registry, the repository, the digest and the HTTP status.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The reference is not `HOST[:PORT]/REPO@sha256:DIGEST`.
    #[error("'{reference}': {reason}")]
    BadReference {
        /// The reference as given.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry answered with an unexpected HTTP status.
    #[error("registry {registry}: repository {repo}: {what} {digest}: {detail} (HTTP {status})")]
    Status {
        /// Registry host.
        registry: String,
        /// Repository.
        repo: String,
        /// `manifest`, `blob` or `token for`.
        what: &'static str,
        /// The digest requested.
        digest: String,
        /// HTTP status code.
        status: u16,
        /// What the status means, with the registry's error code if it sent one.
        detail: String,
    },
    /// The registry's TLS certificate failed its check (unknown CA, another name, expired).
    #[error("registry {registry}: TLS certificate not trusted: {reason} (give the CA that signed it with --registry-ca FILE.pem)")]
    Certificate {
        /// Registry host.
        registry: String,
        /// What the check found.
        reason: String,
    },
    /// The connection failed (DNS, TCP, TLS, timeout, redirect loop).
    #[error("registry {registry}: repository {repo}: {what} {digest}: {source}")]
    Transport {
        /// Registry host.
        registry: String,
        /// Repository.
        repo: String,
        /// `manifest`, `blob` or `token for`.
        what: &'static str,
        /// The digest requested.
        digest: String,
        /// The transport error (boxed: it is large and rare).
        #[source]
        source: Box<ureq::Error>,
    },
    /// The bytes received do not hash to the digest that named them.
    #[error("registry {registry}: repository {repo}: {what} {digest}: content does not match its digest (received {actual}); refusing it")]
    DigestMismatch {
        /// Registry host.
        registry: String,
        /// Repository.
        repo: String,
        /// `manifest` or `blob`.
        what: &'static str,
        /// The digest requested.
        digest: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// A manifest or index is malformed, of an unsupported type, or over a limit.
    #[error("registry {registry}: repository {repo}: {what} {digest}: {reason}")]
    Invalid {
        /// Registry host.
        registry: String,
        /// Repository.
        repo: String,
        /// `manifest` or `blob`.
        what: &'static str,
        /// The digest concerned.
        digest: String,
        /// What is wrong.
        reason: String,
    },
    /// The CA file given with `--registry-ca` cannot be used.
    #[error("registry CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Writing the pulled layout failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A pulled image: an OCI layout whose `index.json` points at the requested manifest or index.
#[derive(Debug)]
pub struct Pulled {
    /// Media type of the top-level manifest or index.
    pub media_type: String,
    /// Number of blobs fetched (manifests included).
    pub blobs: usize,
    /// Bytes fetched.
    pub bytes: u64,
}

/// One pull: an HTTP agent, the reference, and the authorization earned so far.
struct Client<'a> {
    agent: ureq::Agent,
    base: String,
    /// The plain-HTTP base to try if the first request finds no TLS (loopback only); dropped once the
    /// registry has answered.
    fallback: Option<String>,
    api_repo: String,
    reference: &'a Reference,
    opts: &'a RegistryOptions,
    /// `Authorization` header value once the registry has asked for one.
    auth: Option<Zeroizing<String>>,
}

/// Pulls `reference` into an OCI image layout at `dir` (created if missing): the manifest (or index and
/// every manifest it lists), each config and layer, each checked against its digest as it streams in.
pub fn pull(
    reference: &Reference,
    opts: &RegistryOptions,
    dir: &Path,
) -> Result<Pulled, RegistryError> {
    let _span = tracing::info_span!("registry_pull", registry = %reference.host, repo = %reference.repo, digest = %reference.digest).entered();
    let blobs_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs_dir).map_err(|source| RegistryError::Io {
        path: blobs_dir.clone(),
        source,
    })?;
    let mut client = Client::new(reference, opts)?;
    let mut seen = BTreeSet::new();
    let mut pulled = Pulled {
        media_type: String::new(),
        blobs: 0,
        bytes: 0,
    };
    // Depth-first over the index tree; the top-level media type is what index.json will declare.
    let mut stack = vec![(reference.digest.clone(), true)];
    let mut manifests = 0usize;
    while let Some((digest, top)) = stack.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        manifests += 1;
        if manifests > MAX_MANIFESTS {
            return Err(client.invalid(
                "manifest",
                &reference.digest,
                format!("the index tree lists more than {MAX_MANIFESTS} manifests"),
            ));
        }
        let (bytes, content_type) = client.manifest(&digest)?;
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| client.invalid("manifest", &digest, format!("not JSON: {e}")))?;
        let media = doc
            .get("mediaType")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or(content_type);
        write_blob(&blobs_dir, &digest, &bytes)?;
        pulled.blobs += 1;
        pulled.bytes += bytes.len() as u64;
        match media.as_str() {
            INDEX_OCI | INDEX_DOCKER => {
                for d in doc
                    .get("manifests")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    stack.push((descriptor_digest(&client, &digest, d)?, false));
                }
            }
            MANIFEST_OCI | MANIFEST_DOCKER => {
                let config = doc
                    .get("config")
                    .ok_or_else(|| client.invalid("manifest", &digest, "no config".into()))?;
                let layers = doc.get("layers").and_then(Value::as_array);
                for d in std::iter::once(config).chain(layers.into_iter().flatten()) {
                    let blob = descriptor_digest(&client, &digest, d)?;
                    if seen.insert(blob.clone()) {
                        let size = d.get("size").and_then(Value::as_u64);
                        pulled.bytes += client.blob(&blob, size, &blobs_dir)?;
                        pulled.blobs += 1;
                    }
                }
            }
            other if top => {
                return Err(client.invalid(
                    "manifest",
                    &digest,
                    format!("unsupported manifest type '{other}' (expected an OCI or Docker v2 image manifest or index)"),
                ));
            }
            // Artifacts an index lists (signatures, attestations of other types) travel as their manifest.
            _ => {}
        }
        if top {
            pulled.media_type = media;
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX_OCI,
        "manifests": [{
            "mediaType": pulled.media_type,
            "digest": reference.digest,
            "size": std::fs::metadata(blob_path(&blobs_dir, &reference.digest)).map(|m| m.len()).unwrap_or(0),
        }],
    });
    write_file(&dir.join("index.json"), index.to_string().as_bytes())?;
    write_file(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    tracing::info!(blobs = pulled.blobs, bytes = pulled.bytes, "pulled");
    Ok(pulled)
}

fn descriptor_digest(
    client: &Client<'_>,
    parent: &str,
    d: &Value,
) -> Result<String, RegistryError> {
    let digest = d
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| client.invalid("manifest", parent, "a descriptor has no digest".into()))?;
    if !is_sha256_digest(digest) {
        return Err(client.invalid(
            "manifest",
            parent,
            format!("unsupported or malformed digest '{digest}'"),
        ));
    }
    Ok(digest.to_owned())
}

fn blob_path(blobs_dir: &Path, digest: &str) -> PathBuf {
    blobs_dir.join(digest.strip_prefix("sha256:").unwrap_or(digest))
}

fn write_blob(blobs_dir: &Path, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
    write_file(&blob_path(blobs_dir, digest), bytes)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    std::fs::write(path, bytes).map_err(|source| RegistryError::Io {
        path: path.to_owned(),
        source,
    })
}

fn sha256_hasher() -> Result<crypto_profiles::Hasher, String> {
    // SHA-256 names OCI blobs here whatever profile signs the kit.
    crypto_profiles::Profile::new(crypto_profiles::ProfileId::Fips)
        .map_err(|e| e.to_string())?
        .hasher()
        .map_err(|e| e.to_string())
}

impl<'a> Client<'a> {
    fn new(
        reference: &'a Reference,
        opts: &'a RegistryOptions,
    ) -> Result<Client<'a>, RegistryError> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &opts.ca_file {
            let ca_err = |reason: String| RegistryError::CaFile {
                path: path.clone(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                if let ureq::tls::PemItem::Certificate(c) =
                    item.map_err(|e| ca_err(e.to_string()))?
                {
                    certs.push(c);
                }
            }
            if certs.is_empty() {
                return Err(ca_err("no PEM certificate in it".into()));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(TIMEOUT))
            .timeout_per_read(Some(TIMEOUT))
            .timeout_recv_response(Some(TIMEOUT))
            .max_redirects(10)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .user_agent(concat!("stella-kit/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build());
        if reference.is_loopback() {
            // A proxy from the environment cannot reach this machine's loopback registry.
            config = config.proxy(None);
        }
        let (base, fallback) = reference.base_urls(opts);
        Ok(Client {
            agent: config.build().new_agent(),
            base,
            fallback,
            api_repo: reference.api_repo(),
            reference,
            opts,
            auth: None,
        })
    }

    fn invalid(&self, what: &'static str, digest: &str, reason: String) -> RegistryError {
        RegistryError::Invalid {
            registry: self.reference.host.clone(),
            repo: self.reference.repo.clone(),
            what,
            digest: digest.to_owned(),
            reason,
        }
    }

    fn transport(&self, what: &'static str, digest: &str, source: ureq::Error) -> RegistryError {
        if let Some(reason) = certificate_problem(&source) {
            return RegistryError::Certificate {
                registry: self.reference.host.clone(),
                reason,
            };
        }
        RegistryError::Transport {
            registry: self.reference.host.clone(),
            repo: self.reference.repo.clone(),
            what,
            digest: digest.to_owned(),
            source: Box::new(source),
        }
    }

    fn status(
        &self,
        what: &'static str,
        digest: &str,
        resp: &mut ureq::http::Response<ureq::Body>,
    ) -> RegistryError {
        let status = resp.status().as_u16();
        // The spec's error body: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}.
        let code = resp
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_vec()
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| {
                v.pointer("/errors/0/code")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        let meaning = match status {
            404 => "not found".to_owned(),
            401 => format!(
                "authentication failed (set {ENV_USER} and {ENV_PASSWORD} for registries that need credentials)"
            ),
            403 => "access denied".to_owned(),
            429 => "too many requests".to_owned(),
            s => ureq::http::StatusCode::from_u16(s)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("unexpected status")
                .to_ascii_lowercase(),
        };
        RegistryError::Status {
            registry: self.reference.host.clone(),
            repo: self.reference.repo.clone(),
            what,
            digest: digest.to_owned(),
            status,
            detail: match code {
                Some(c) => format!("{meaning} [{c}]"),
                None => meaning,
            },
        }
    }

    /// GETs a URL under the repository, answering one authentication challenge if the registry sends it.
    fn get(
        &mut self,
        what: &'static str,
        digest: &str,
        path: &str,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, RegistryError> {
        let mut retried = false;
        loop {
            let url = format!("{}/v2/{}/{path}", self.base, self.api_repo);
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(auth) = &self.auth {
                req = req.header("Authorization", auth.as_str());
            }
            let mut resp = match req.call() {
                Ok(r) => r,
                Err(e) if self.fallback.is_some() && not_tls(&e) => {
                    tracing::info!(registry = %self.reference.host, "no TLS on this loopback port; using plain HTTP");
                    if let Some(http) = self.fallback.take() {
                        self.base = http;
                    }
                    continue;
                }
                Err(e) => return Err(self.transport(what, digest, e)),
            };
            // The registry answered: its scheme is settled.
            self.fallback = None;
            if resp.status() == 401 && !retried {
                retried = true;
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                if let Some(c) = challenge {
                    if self.authenticate(what, digest, &c)? {
                        continue;
                    }
                }
            }
            if resp.status() != 200 {
                return Err(self.status(what, digest, &mut resp));
            }
            return Ok(resp);
        }
    }

    /// Answers a `WWW-Authenticate` challenge; false when there is nothing to answer it with.
    fn authenticate(
        &mut self,
        what: &'static str,
        digest: &str,
        challenge: &str,
    ) -> Result<bool, RegistryError> {
        let (scheme, params) = parse_challenge(challenge);
        let basic = self.opts.credentials.as_ref().map(|c| {
            use base64::Engine as _;
            let raw = Zeroizing::new(format!("{}:{}", c.user, c.password.as_str()));
            Zeroizing::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
            ))
        });
        if scheme.eq_ignore_ascii_case("basic") {
            return Ok(match basic {
                Some(b) => {
                    self.auth = Some(b);
                    true
                }
                None => false,
            });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(false);
        }
        let Some(realm) = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
        else {
            return Ok(false);
        };
        let realm_secure = realm.starts_with("https://");
        let realm_local = realm.starts_with("http://") && self.base.starts_with("http://");
        if !(realm_secure || realm_local) {
            return Err(self.invalid(
                what,
                digest,
                format!("the registry's token service '{realm}' is not an https:// URL"),
            ));
        }
        let mut req = self.agent.get(&realm);
        for key in ["service", "scope"] {
            if let Some((_, v)) = params.iter().find(|(k, _)| k == key) {
                req = req.query(key, v);
            }
        }
        if !params.iter().any(|(k, _)| k == "scope") {
            req = req.query("scope", format!("repository:{}:pull", self.api_repo));
        }
        if let Some(b) = &basic {
            req = req.header("Authorization", b.as_str());
        }
        let mut resp = req
            .call()
            .map_err(|e| self.transport("token for", digest, e))?;
        if resp.status() != 200 {
            return Err(self.status("token for", digest, &mut resp));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| self.transport("token for", digest, e))?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            self.invalid(
                "token for",
                digest,
                format!("token response is not JSON: {e}"),
            )
        })?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                self.invalid("token for", digest, "token response has no token".into())
            })?;
        self.auth = Some(Zeroizing::new(format!("Bearer {token}")));
        Ok(true)
    }

    /// Fetches a manifest or index by digest; returns its bytes (checked) and the response media type.
    fn manifest(&mut self, digest: &str) -> Result<(Vec<u8>, String), RegistryError> {
        let mut resp = self.get(
            "manifest",
            digest,
            &format!("manifests/{digest}"),
            Some(ACCEPT),
        )?;
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .trim()
            .to_owned();
        let mut bytes = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.transport("manifest", digest, ureq::Error::Io(e)))?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(self.invalid(
                "manifest",
                digest,
                format!("larger than {MAX_MANIFEST} bytes"),
            ));
        }
        let actual = sha256_hasher()
            .and_then(|mut h| {
                h.update(&bytes).map_err(|e| e.to_string())?;
                h.finish().map_err(|e| e.to_string())
            })
            .map(|d| format!("sha256:{}", d.hex()))
            .map_err(|e| self.invalid("manifest", digest, e))?;
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                registry: self.reference.host.clone(),
                repo: self.reference.repo.clone(),
                what: "manifest",
                digest: digest.to_owned(),
                actual,
            });
        }
        Ok((bytes, content_type))
    }

    /// Streams a blob into `blobs_dir`, hashing as it goes; the file appears under its name only once
    /// its digest (and declared size) are confirmed. Returns its size.
    fn blob(
        &mut self,
        digest: &str,
        size: Option<u64>,
        blobs_dir: &Path,
    ) -> Result<u64, RegistryError> {
        let mut resp = self.get("blob", digest, &format!("blobs/{digest}"), None)?;
        let final_path = blob_path(blobs_dir, digest);
        let partial = final_path.with_extension("partial");
        let io_err = |source| RegistryError::Io {
            path: partial.clone(),
            source,
        };
        let mut file = File::create(&partial).map_err(io_err)?;
        let mut hasher = sha256_hasher().map_err(|e| self.invalid("blob", digest, e))?;
        let mut reader = resp.body_mut().as_reader();
        // Read one byte past the declared size, to notice a registry that sends more.
        let mut reader = (&mut reader).take(size.map_or(u64::MAX, |s| s.saturating_add(1)));
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.transport("blob", digest, ureq::Error::Io(e))),
            };
            let chunk = buf.get(..n).unwrap_or_default();
            hasher
                .update(chunk)
                .map_err(|e| self.invalid("blob", digest, e.to_string()))?;
            file.write_all(chunk).map_err(io_err)?;
            total += n as u64;
        }
        file.sync_all().map_err(io_err)?;
        drop(file);
        if let Some(s) = size.filter(|s| *s != total) {
            let _ = std::fs::remove_file(&partial);
            return Err(self.invalid(
                "blob",
                digest,
                format!("received {total} bytes where the manifest declares {s}"),
            ));
        }
        let actual = hasher
            .finish()
            .map(|d| format!("sha256:{}", d.hex()))
            .map_err(|e| self.invalid("blob", digest, e.to_string()))?;
        if actual != digest {
            let _ = std::fs::remove_file(&partial);
            return Err(RegistryError::DigestMismatch {
                registry: self.reference.host.clone(),
                repo: self.reference.repo.clone(),
                what: "blob",
                digest: digest.to_owned(),
                actual,
            });
        }
        std::fs::rename(&partial, &final_path).map_err(io_err)?;
        Ok(total)
    }
}

/// The rustls error behind a ureq error, if any (handshake failures arrive wrapped in an I/O error).
fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    }
}

/// Why the server's certificate was refused, if that is what failed.
fn certificate_problem(e: &ureq::Error) -> Option<String> {
    match rustls_error(e)? {
        rustls::Error::InvalidCertificate(c) => Some(match c {
            rustls::CertificateError::UnknownIssuer => {
                "it is not signed by a trusted CA (unknown issuer)".to_owned()
            }
            rustls::CertificateError::BadSignature => {
                "it is not signed by a trusted CA (a CA of the same name, another key)".to_owned()
            }
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. } => {
                "it is not valid for this host name or address".to_owned()
            }
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => {
                "it has expired".to_owned()
            }
            other => format!("{other:?}"),
        }),
        rustls::Error::NoCertificatesPresented => Some("the server presented none".to_owned()),
        _ => None,
    }
}

/// Whether a TLS handshake failed because the other end does not speak TLS: it answered with something
/// that is not a TLS record (a plain HTTP server's "400 Bad Request"), or hung up.
fn not_tls(e: &ureq::Error) -> bool {
    match rustls_error(e) {
        Some(rustls::Error::InvalidMessage(_)) => true,
        Some(_) => false,
        None => matches!(e, ureq::Error::Io(io) if matches!(
            io.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
        )),
    }
}

/// Splits `Bearer realm="…",service="…",scope="…"` into its scheme and parameters.
fn parse_challenge(c: &str) -> (String, Vec<(String, String)>) {
    let c = c.trim();
    let (scheme, mut rest) = c.split_once(' ').unwrap_or((c, ""));
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            // Quoted string; a backslash escapes the next character.
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => v.push(ch),
                }
            }
            (v, q.get(end..).unwrap_or_default())
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (
                after.get(..end).unwrap_or_default().trim().to_owned(),
                after.get(end..).unwrap_or_default(),
            )
        };
        params.push((key, value));
        rest = tail;
    }
    (scheme.to_owned(), params)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const D: &str = "sha256:98ceaf93e482fe91b9bfd6bba07137c098e49ee2d55e69f09fb6c951e75e0e46";

    #[test]
    fn parses_digest_references() {
        let r = Reference::parse(&format!("127.0.0.1:5000/test/img@{D}")).unwrap();
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.repo, "test/img");
        assert_eq!(r.digest, D);
        assert!(r.is_loopback());
        // Loopback: HTTPS first, plain HTTP if the port does not speak TLS.
        assert_eq!(
            r.base_urls(&RegistryOptions::default()),
            (
                "https://127.0.0.1:5000".to_owned(),
                Some("http://127.0.0.1:5000".to_owned())
            )
        );
        let r = Reference::parse(&format!("registry.example.com/a/b-c@{D}")).unwrap();
        assert_eq!(
            r.base_urls(&RegistryOptions::default()),
            ("https://registry.example.com".to_owned(), None)
        );
        let opts = RegistryOptions {
            insecure: vec!["registry.example.com".into()],
            ..Default::default()
        };
        assert_eq!(
            r.base_urls(&opts),
            ("http://registry.example.com".to_owned(), None)
        );
        let r = Reference::parse(&format!("[::1]:5000/x@{D}")).unwrap();
        assert!(r.is_loopback());
        let r = Reference::parse(&format!("docker.io/alpine@{D}")).unwrap();
        assert_eq!(r.api_repo(), "library/alpine");
        assert_eq!(
            r.base_urls(&RegistryOptions::default()).0,
            "https://registry-1.docker.io"
        );
    }

    #[test]
    fn refuses_tags_and_bad_references() {
        let check = |s: &str, needle: &str| {
            let e = Reference::parse(s).unwrap_err().to_string();
            assert!(e.contains(needle), "{s}: {e}");
        };
        check("127.0.0.1:5000/test/img:1", "tags are not accepted");
        check("127.0.0.1:5000/test/img", "no digest");
        check(&format!("127.0.0.1:5000/test/img:1@{D}"), "without a tag");
        check(&format!("test/img@{D}"), "not a registry host");
        check(
            &format!("127.0.0.1:5000/Test/img@{D}"),
            "malformed repository",
        );
        check("127.0.0.1:5000/test/img@sha256:abc", "is not a digest");
        check(
            &format!("127.0.0.1:5000/test/img@sha512:{}", "a".repeat(128)),
            "only sha256",
        );
        check(&format!("127.0.0.1:5000@{D}"), "no repository");
    }

    #[test]
    fn parses_bearer_challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://auth.example.com/token".into()),
                ("service".into(), "registry.example.com".into()),
                ("scope".into(), "repository:a/b:pull".into()),
            ]
        );
        let (s, p) = parse_challenge(r#"Basic realm="x\"y""#);
        assert_eq!(s, "Basic");
        assert_eq!(p, vec![("realm".into(), "x\"y".into())]);
    }

    /// A registry stand-in on 127.0.0.1 that wants a bearer token, redirects one blob, and serves
    /// `t/bad`'s layer with wrong bytes of the right length.
    fn fake_registry(manifest: Vec<u8>, config: Vec<u8>, layer: Vec<u8>) -> String {
        use std::io::BufRead as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let host = addr.clone();
        let digest = |b: &[u8]| {
            format!(
                "sha256:{}",
                crypto_profiles::digest_with(crypto_profiles::DigestAlg::Sha256, b)
                    .unwrap()
                    .hex()
            )
        };
        let (dm, dc, dl) = (digest(&manifest), digest(&config), digest(&layer));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                // A TLS handshake (the client tries HTTPS first on loopback): answer like a plain HTTP
                // server does.
                if reader
                    .fill_buf()
                    .map(|b| b.first() == Some(&0x16))
                    .unwrap_or(true)
                {
                    let _ =
                        stream.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
                    continue;
                }
                let mut first = String::new();
                reader.read_line(&mut first).unwrap();
                let path = first.split(' ').nth(1).unwrap_or_default().to_owned();
                let mut auth = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line
                        .strip_prefix("authorization: ")
                        .or(line.strip_prefix("Authorization: "))
                    {
                        auth = v.trim().to_owned();
                    }
                }
                let ok = |body: &[u8]| (200, String::new(), body.to_vec());
                let (status, extra, body) = if path.starts_with("/token?") {
                    assert!(path.contains("service=reg"), "{path}");
                    ok(br#"{"token":"tok"}"#)
                } else if path.starts_with("/storage/") {
                    ok(&layer)
                } else if auth != "Bearer tok" {
                    (401, format!("WWW-Authenticate: Bearer realm=\"http://{host}/token\",service=\"reg\",scope=\"repository:t/img:pull\"\r\n"), Vec::new())
                } else if path.ends_with(&format!("/manifests/{dm}")) {
                    (
                        200,
                        format!("Content-Type: {MANIFEST_OCI}\r\n"),
                        manifest.clone(),
                    )
                } else if path.ends_with(&format!("/blobs/{dc}")) {
                    ok(&config)
                } else if path == format!("/v2/t/bad/blobs/{dl}") {
                    ok(b"LAYER BYTES")
                } else if path.ends_with(&format!("/blobs/{dl}")) {
                    (307, format!("Location: /storage/{dl}\r\n"), Vec::new())
                } else {
                    (
                        404,
                        String::new(),
                        br#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#.to_vec(),
                    )
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        addr
    }

    #[test]
    fn pulls_with_a_bearer_token_follows_redirects_and_refuses_bad_blobs() {
        let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
        let layer = b"layer bytes".to_vec();
        let hex = |b: &[u8]| {
            crypto_profiles::digest_with(crypto_profiles::DigestAlg::Sha256, b)
                .unwrap()
                .hex()
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST_OCI,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", hex(&config)), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{}", hex(&layer)), "size": layer.len()}],
        })
        .to_string()
        .into_bytes();
        let dm = format!("sha256:{}", hex(&manifest));
        let addr = fake_registry(manifest, config, layer);
        let dir = tempfile::tempdir().unwrap();
        let r = Reference::parse(&format!("{addr}/t/img@{dm}")).unwrap();
        let pulled = pull(&r, &RegistryOptions::default(), dir.path()).unwrap();
        assert_eq!(pulled.blobs, 3);
        assert_eq!(pulled.media_type, MANIFEST_OCI);
        for b in std::fs::read_dir(dir.path().join("blobs/sha256")).unwrap() {
            let b = b.unwrap();
            let name = b.file_name().into_string().unwrap();
            assert_eq!(hex(&std::fs::read(b.path()).unwrap()), name);
        }
        assert!(dir.path().join("index.json").is_file());

        // The same manifest in a repository whose layer is served wrong: refused, digest named.
        let dir = tempfile::tempdir().unwrap();
        let r = Reference::parse(&format!("{addr}/t/bad@{dm}")).unwrap();
        let e = pull(&r, &RegistryOptions::default(), dir.path()).unwrap_err();
        assert!(
            matches!(e, RegistryError::DigestMismatch { what: "blob", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("blob sha256:"), "{e}");

        // A digest the registry does not hold.
        let missing = format!("sha256:{}", "1".repeat(64));
        let r = Reference::parse(&format!("{addr}/t/img@{missing}")).unwrap();
        let e = pull(&r, &RegistryOptions::default(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("manifest {missing}: not found")) && e.contains("HTTP 404"),
            "{e}"
        );
    }

    #[test]
    fn credentials_do_not_debug_print_the_password() {
        let c = Credentials {
            user: "u".into(),
            password: Zeroizing::new("hunter2".into()),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
