//! Format detection from content (and the file extension for YAML and CSV).

use serde_json::Value;

use crate::{FeedError, FeedFormat};

/// Decoded input: a JSON/YAML tree, or CSV text.
#[derive(Debug)]
pub(crate) enum Input {
    Tree(Value),
    Csv(String),
}

fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

impl Input {
    pub(crate) fn read(name: &str, bytes: &[u8]) -> Result<Input, FeedError> {
        let syntax = |syntax, line, message: String| FeedError::Syntax {
            name: name.to_owned(),
            syntax,
            line,
            message,
        };
        match extension(name).as_str() {
            "yaml" | "yml" => serde_yaml_ng::from_slice::<Value>(bytes)
                .map(Input::Tree)
                .map_err(|e| {
                    let line = e.location().map_or(0, |l| l.line());
                    syntax("yaml", line, e.to_string())
                }),
            "csv" => std::str::from_utf8(bytes)
                .map(|s| Input::Csv(s.to_owned()))
                .map_err(|e| syntax("csv", 0, e.to_string())),
            _ => {
                let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
                if !matches!(first, Some(b'{' | b'[')) {
                    return Err(FeedError::UnknownFormat {
                        name: name.to_owned(),
                        reason: "not json, and the name has no .yaml or .csv extension".to_owned(),
                    });
                }
                serde_json::from_slice::<Value>(bytes)
                    .map(Input::Tree)
                    .map_err(|e| syntax("json", e.line(), e.to_string()))
            }
        }
    }
}

/// Detects the format of a document from its content, and the file extension for CSV and YAML.
///
/// Detection only looks at the shape of the document; [`crate::parse`] then validates it, so a
/// document that is recognised here may still be refused there.
pub fn detect(name: &str, bytes: &[u8]) -> Result<FeedFormat, FeedError> {
    let input = Input::read(name, bytes)?;
    detect_input(name, &input)
}

pub(crate) fn detect_input(name: &str, input: &Input) -> Result<FeedFormat, FeedError> {
    let unknown = |reason: &str| FeedError::UnknownFormat {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let v = match input {
        Input::Csv(text) => {
            let header = text
                .lines()
                .find(|l| !l.starts_with('#') && !l.trim().is_empty())
                .unwrap_or_default();
            let cols: Vec<&str> = header.split(',').map(str::trim).collect();
            return if cols.first() == Some(&"cve") && cols.contains(&"epss") {
                Ok(FeedFormat::EpssCsv)
            } else {
                Err(unknown("csv without a 'cve,epss' header"))
            };
        }
        Input::Tree(v) => v,
    };
    let Some(obj) = v.as_object() else {
        return Err(unknown("the top level is not an object"));
    };
    let has = |k: &str| obj.contains_key(k);
    let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();

    if obj.get("document").is_some_and(Value::is_object) {
        return Ok(FeedFormat::Csaf);
    }
    if s("@context").contains("openvex") {
        return Ok(FeedFormat::OpenVex);
    }
    if has("bomFormat") || (s("$schema").contains("cyclonedx") && has("specVersion")) {
        return Ok(FeedFormat::CycloneDx);
    }
    if s("dataType") == "CVE_RECORD" || has("cveMetadata") {
        return Ok(FeedFormat::NvdCve5);
    }
    if s("format") == "NVD_CVE" {
        return Ok(FeedFormat::NvdApi2);
    }
    if has("catalogVersion") || (has("cveID") && has("dateAdded")) {
        return Ok(FeedFormat::CisaKev);
    }
    if has("packages") && (has("apkurl") || has("reponame") || has("distroversion")) {
        return Ok(FeedFormat::AlpineSecdb);
    }
    const OSV_KEYS: [&str; 6] = [
        "schema_version",
        "modified",
        "published",
        "affected",
        "aliases",
        "withdrawn",
    ];
    let osv_keys = OSV_KEYS.iter().filter(|k| has(k)).count();
    if (has("id") && osv_keys >= 1) || osv_keys >= 2 {
        return Ok(FeedFormat::Osv);
    }
    // The tracker is `package -> CVE/TEMP id -> { releases }`.
    let looks_like_tracker = !obj.is_empty()
        && obj.values().all(|p| {
            p.as_object().is_some_and(|cves| {
                cves.values()
                    .all(|c| c.as_object().is_some_and(|c| c.contains_key("releases")))
            })
        });
    if looks_like_tracker {
        return Ok(FeedFormat::DebianTracker);
    }
    Err(unknown("no known advisory or vex structure"))
}
