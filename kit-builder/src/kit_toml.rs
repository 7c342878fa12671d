//! `kit.toml`: the options of `stella-kit build` written down once (`stella-kit build --config kit.toml`),
//! so a channel's kits are built the same way every time. Every key is documented in
//! docs/kit-builder-guide.md. Relative paths are resolved against the file's directory, not the current
//! one. Flags given on the command line win over the file: a flag that takes one value replaces the key,
//! a repeatable flag adds to the key's list, and `--base` replaces `base` (a kit has one base).

use crate::manifest::valid_id;
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};

/// The options of one build, from flags, from a `kit.toml`, or both merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// `channel`, `--channel`.
    pub channel: Option<String>,
    /// `sequence`, `--sequence`.
    pub sequence: Option<u64>,
    /// `id`, `--id`.
    pub id: Option<String>,
    /// `expires`, `--expires`: a lifetime such as `30d` or `12h`.
    pub expires: Option<String>,
    /// `base`, `--base`: the base kit of a delta (or its volumes).
    pub base: Vec<PathBuf>,
    /// `keys`, `--key`.
    pub keys: Vec<PathBuf>,
    /// `passphrase-file`, `--passphrase-file`.
    pub passphrase_file: Option<PathBuf>,
    /// `feeds`, `--feeds`.
    pub feeds: Vec<PathBuf>,
    /// `images`, `--image`.
    pub images: Vec<String>,
    /// `insecure-registries`, `--insecure-registry`.
    pub insecure_registries: Vec<String>,
    /// `registry-ca`, `--registry-ca`.
    pub registry_ca: Option<PathBuf>,
    /// `policy`, `--policy`.
    pub policy: Vec<PathBuf>,
    /// `trust`, `--trust`.
    pub trust: Vec<PathBuf>,
    /// `files`, `--file`.
    pub files: Vec<PathBuf>,
    /// `volume-size`, `--volume-size`, in bytes.
    pub volume_size: Option<u64>,
    /// `encrypt-to`, `--encrypt-to`.
    pub encrypt_to: Vec<String>,
    /// `level`, `--level`.
    pub level: Option<i32>,
    /// `identities`, `--identity`: age identities to read an encrypted base kit.
    pub identities: Vec<PathBuf>,
    /// `out`, `--out`.
    pub out: Option<PathBuf>,
}

/// A `kit.toml` that cannot be used. Every message names the file, and the key when there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitTomlError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// Where and what, e.g. "line 3, column 1: unknown field `chanel`, expected one of …".
        message: String,
    },
    /// A value of the right type that is not acceptable.
    #[error("{file}: key '{key}': {reason}")]
    Value {
        /// The file.
        file: String,
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The file as written: kebab-case keys, nothing else accepted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct KitToml {
    channel: Option<String>,
    sequence: Option<u64>,
    id: Option<String>,
    expires: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    base: Vec<String>,
    #[serde(default)]
    keys: Vec<String>,
    passphrase_file: Option<String>,
    #[serde(default)]
    feeds: Vec<String>,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    insecure_registries: Vec<String>,
    registry_ca: Option<String>,
    #[serde(default)]
    policy: Vec<String>,
    #[serde(default)]
    trust: Vec<String>,
    #[serde(default)]
    files: Vec<String>,
    volume_size: Option<Size>,
    #[serde(default)]
    encrypt_to: Vec<String>,
    level: Option<i32>,
    #[serde(default)]
    identities: Vec<String>,
    out: Option<String>,
}

/// `volume-size = "4GiB"` or `volume-size = 4294967296`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

/// `base = "base.kit"` or `base = ["base.kit.001", "base.kit.002"]`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a path or a list of paths")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = a.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    (line, col)
}

/// Parses a size: bytes, or with a unit (`kB`, `MB`, `GB`, `TB` powers of 1000; `KiB`, `MiB`, `GiB`,
/// `TiB` powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size '{s}'"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => return Err(format!("invalid size '{s}': unknown unit '{other}'")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

/// Checks a volume size against the smallest one accepted.
pub fn check_volume_size(size: u64) -> Result<u64, String> {
    if size < crate::volume::MIN_VOLUME_SIZE {
        return Err(format!("volume size {size} is below the minimum of 1 MiB"));
    }
    Ok(size)
}

/// An image input with its path resolved against `dir` (`registry:` references are not paths).
fn resolve_image(dir: &Path, spec: &str) -> String {
    if spec.starts_with("registry:") {
        return spec.to_owned();
    }
    match spec.split_once(':') {
        Some((kind @ ("oci-layout" | "docker-archive"), p)) => {
            format!("{kind}:{}", dir.join(p).display())
        }
        _ => dir.join(spec).display().to_string(),
    }
}

impl BuildOptions {
    /// Reads and checks a `kit.toml`, resolving its relative paths against its directory.
    pub fn from_file(path: &Path) -> Result<BuildOptions, KitTomlError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KitTomlError::Read {
            file: file.clone(),
            source,
        })?;
        let raw: KitToml = toml::from_str(&text).map_err(|e| {
            // One line: toml's messages may span several.
            let message = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            KitTomlError::Syntax {
                file: file.clone(),
                message: match e.span() {
                    Some(span) => {
                        let (line, col) = line_col(&text, span.start);
                        format!("line {line}, column {col}: {message}")
                    }
                    None => message,
                },
            }
        })?;
        let value = |key: &'static str, reason: String| KitTomlError::Value {
            file: file.clone(),
            key,
            reason,
        };
        for (key, v) in [("channel", &raw.channel), ("id", &raw.id)] {
            if let Some(v) = v {
                if !valid_id(v) {
                    return Err(value(
                        key,
                        format!("'{v}' is not valid: use 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'"),
                    ));
                }
            }
        }
        if let Some(e) = &raw.expires {
            crate::clock::parse_duration(e).map_err(|reason| value("expires", reason))?;
        }
        let volume_size = match &raw.volume_size {
            None => None,
            Some(Size::Bytes(n)) => Some(*n),
            Some(Size::Text(s)) => Some(parse_size(s).map_err(|r| value("volume-size", r))?),
        }
        .map(check_volume_size)
        .transpose()
        .map_err(|r| value("volume-size", r))?;
        if let Some(level) = raw.level {
            let range = zstd::compression_level_range();
            if !range.contains(&level) {
                return Err(value(
                    "level",
                    format!(
                        "{level} is not a zstd level ({} to {})",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        crate::cli::recipients(&raw.encrypt_to).map_err(|e| value("encrypt-to", e.to_string()))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let paths = |v: Vec<String>| -> Vec<PathBuf> { v.iter().map(|p| dir.join(p)).collect() };
        let one = |v: Option<String>| v.map(|p| dir.join(p));
        Ok(BuildOptions {
            channel: raw.channel,
            sequence: raw.sequence,
            id: raw.id,
            expires: raw.expires,
            base: paths(raw.base),
            keys: paths(raw.keys),
            passphrase_file: one(raw.passphrase_file),
            feeds: paths(raw.feeds),
            images: raw.images.iter().map(|s| resolve_image(&dir, s)).collect(),
            insecure_registries: raw.insecure_registries,
            registry_ca: one(raw.registry_ca),
            policy: paths(raw.policy),
            trust: paths(raw.trust),
            files: paths(raw.files),
            volume_size,
            encrypt_to: raw.encrypt_to,
            level: raw.level,
            identities: paths(raw.identities),
            out: one(raw.out),
        })
    }

    /// These options (from a file) with `flags` applied: a flag's single value replaces the file's, a
    /// repeatable flag's values come after the file's, and `--base` replaces `base`.
    pub fn with_flags(self, flags: BuildOptions) -> BuildOptions {
        fn join<T>(mut file: Vec<T>, flags: Vec<T>) -> Vec<T> {
            file.extend(flags);
            file
        }
        BuildOptions {
            channel: flags.channel.or(self.channel),
            sequence: flags.sequence.or(self.sequence),
            id: flags.id.or(self.id),
            expires: flags.expires.or(self.expires),
            base: if flags.base.is_empty() {
                self.base
            } else {
                flags.base
            },
            keys: join(self.keys, flags.keys),
            passphrase_file: flags.passphrase_file.or(self.passphrase_file),
            feeds: join(self.feeds, flags.feeds),
            images: join(self.images, flags.images),
            insecure_registries: join(self.insecure_registries, flags.insecure_registries),
            registry_ca: flags.registry_ca.or(self.registry_ca),
            policy: join(self.policy, flags.policy),
            trust: join(self.trust, flags.trust),
            files: join(self.files, flags.files),
            volume_size: flags.volume_size.or(self.volume_size),
            encrypt_to: join(self.encrypt_to, flags.encrypt_to),
            level: flags.level.or(self.level),
            identities: join(self.identities, flags.identities),
            out: flags.out.or(self.out),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn load(text: &str) -> (tempfile::TempDir, Result<BuildOptions, KitTomlError>) {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("kit.toml");
        std::fs::write(&p, text).unwrap();
        let r = BuildOptions::from_file(&p);
        (t, r)
    }

    #[test]
    fn every_key_is_read_and_paths_are_relative_to_the_file() {
        let (t, r) = load(
            r#"
channel = "stable"
sequence = 7
id = "stable-seven"
expires = "12h"
base = "prev.kit"
keys = ["keys/site.key.pem", "/abs/other.key.pem"]
passphrase-file = "pass.txt"
feeds = ["feeds/osv"]
images = ["oci-layout:img/layout", "docker-archive:img/a.tar", "img/b.tar", "registry:127.0.0.1:5000/x@sha256:00"]
insecure-registries = ["mirror.internal:5000"]
registry-ca = "ca.pem"
policy = ["policy/default"]
trust = ["trust/root.json"]
files = ["update.bin"]
volume-size = "4GiB"
encrypt-to = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
level = 9
identities = ["site.age"]
out = "out/stable.kit"
"#,
        );
        let o = r.unwrap();
        let d = t.path();
        assert_eq!(o.channel.as_deref(), Some("stable"));
        assert_eq!(o.sequence, Some(7));
        assert_eq!(o.base, [d.join("prev.kit")]);
        assert_eq!(
            o.keys,
            [
                d.join("keys/site.key.pem"),
                PathBuf::from("/abs/other.key.pem")
            ]
        );
        assert_eq!(
            o.images[0],
            format!("oci-layout:{}", d.join("img/layout").display())
        );
        assert_eq!(
            o.images[1],
            format!("docker-archive:{}", d.join("img/a.tar").display())
        );
        assert_eq!(o.images[2], d.join("img/b.tar").display().to_string());
        assert_eq!(o.images[3], "registry:127.0.0.1:5000/x@sha256:00");
        assert_eq!(o.volume_size, Some(4 << 30));
        assert_eq!(o.level, Some(9));
        assert_eq!(o.out, Some(d.join("out/stable.kit")));
        assert_eq!(o.registry_ca, Some(d.join("ca.pem")));
    }

    #[test]
    fn flags_replace_single_values_and_extend_lists() {
        let file = BuildOptions {
            channel: Some("a".into()),
            keys: vec!["k1".into()],
            base: vec!["b1".into()],
            out: Some("o1".into()),
            ..Default::default()
        };
        let flags = BuildOptions {
            channel: Some("b".into()),
            keys: vec!["k2".into()],
            base: vec!["b2".into()],
            ..Default::default()
        };
        let m = file.with_flags(flags);
        assert_eq!(m.channel.as_deref(), Some("b"));
        assert_eq!(m.keys, [PathBuf::from("k1"), PathBuf::from("k2")]);
        assert_eq!(m.base, [PathBuf::from("b2")]);
        assert_eq!(m.out, Some(PathBuf::from("o1")));
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let (_t, r) = load("channel = \"stable\"\nchanel = \"x\"\n");
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains("kit.toml: line 2, column 1: unknown field `chanel`"),
            "{msg}"
        );
        let (_t, r) = load("volume-size = \"12 parsecs\"\n");
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains("kit.toml: key 'volume-size': invalid size"),
            "{msg}"
        );
        let (_t, r) = load("volume-size = 1000\n");
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains("key 'volume-size': volume size 1000 is below"),
            "{msg}"
        );
        let (_t, r) = load("channel = \"../x\"\n");
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("key 'channel': '../x' is not valid"));
        let (_t, r) = load("sequence = \"seven\"\n");
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains("line 1, column 12: invalid type: string \"seven\", expected u64"),
            "{msg}"
        );
        let (_t, r) = load("expires = \"soon\"\n");
        assert!(r.unwrap_err().to_string().contains("key 'expires'"));
        let (_t, r) = load("level = 99\n");
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("key 'level': 99 is not a zstd level"));
        let (_t, r) = load("encrypt-to = [\"age1nope\"]\n");
        assert!(r.unwrap_err().to_string().contains("key 'encrypt-to'"));
        let (_t, r) = load("keys = \"one.key.pem\"\n");
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains(
                "line 1, column 8: invalid type: string \"one.key.pem\", expected a sequence"
            ),
            "{msg}"
        );
    }
}
