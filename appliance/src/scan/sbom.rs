//! SBOM documents from a scan record: CycloneDX 1.6 JSON and SPDX 2.3 JSON, valid against the official
//! schemas (`tests/tests/sbom_schema.rs` validates every document the tests produce).
//!
//! Deterministic: the same record gives the same bytes. The CycloneDX serial number and the SPDX document
//! namespace derive from the image digest, the scan time and the inventory, so two different inventories
//! of one image (a rescan after an analyser changed) never share an identifier, and times come from the
//! scan record, never from the clock.
//!
//! Both documents carry the same structure: the image (CycloneDX `metadata.component`, SPDX
//! `SPDXRef-Image`) contains the distribution (an `operating-system` component / an `OPERATING_SYSTEM`
//! package) and the language packages; the distribution contains the OS packages. Every package names the
//! file and layer it was found in (CycloneDX `evidence.occurrences` and `stella:layer`/`stella:path`
//! properties, SPDX `sourceInfo`). Declared licenses are SPDX ids or expressions when every id in them is
//! a known SPDX id, and named licenses (CycloneDX `name`, SPDX `LicenseRef-`) otherwise.

use super::package::{Ecosystem, OsRelease, Package};
use super::ScanRecord;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The SBOM formats.
pub const FORMATS: [&str; 2] = ["cyclonedx", "spdx"];

/// An unknown format was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SBOM format '{0}': use cyclonedx or spdx")]
pub struct UnknownFormat(pub String);

fn digest_hex(d: &str) -> &str {
    d.split_once(':').map_or(d, |(_, h)| h)
}

fn sha256_hex(data: &[u8]) -> String {
    crypto_profiles::digest_with(crypto_profiles::DigestAlg::Sha256, data)
        .map(|x| x.hex())
        .unwrap_or_default()
}

/// A UUID (version 5 layout) derived from `seed`.
fn stable_uuid(seed: &str) -> String {
    let h = format!("{:0<32}", sha256_hex(seed.as_bytes()));
    let variant = ["8", "9", "a", "b"][usize::from_str_radix(&h[16..17], 16).unwrap_or(0) % 4];
    format!(
        "{}-{}-5{}-{variant}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// What identifies one inventory of one image: the digest, the scan time and every package's purl and
/// evidence.
fn inventory_seed(rec: &ScanRecord) -> String {
    let mut s = format!("{}\n{}\n", rec.digest, rec.scanned);
    if let Some(os) = &rec.os {
        s.push_str(&format!("{os:?}\n"));
    }
    for p in &rec.packages {
        s.push_str(&format!("{}\t{}\t{}\n", p.purl, p.path, p.layer));
    }
    s
}

fn tool_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn is_os_package(p: &Package) -> bool {
    matches!(
        p.ecosystem,
        Ecosystem::Deb | Ecosystem::Apk | Ecosystem::Rpm
    )
}

/// SPDX license ids the emitters state as ids: the common ones in distro and language package metadata,
/// spelled as the SPDX license list spells them (deprecated ids such as `GPL-2.0` are still valid ids).
/// Anything else is kept as a named license.
const SPDX_IDS: &[&str] = &[
    "AGPL-3.0",
    "GPL-2.0",
    "GPL-3.0",
    "LGPL-2.0",
    "LGPL-2.1",
    "LGPL-3.0",
    "0BSD",
    "AFL-2.1",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-1.0",
    "Artistic-1.0-Perl",
    "Artistic-2.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-4-Clause",
    "BSL-1.0",
    "BlueOak-1.0.0",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "CDDL-1.1",
    "EPL-1.0",
    "EPL-2.0",
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MIT-0",
    "MPL-1.1",
    "MPL-2.0",
    "OpenSSL",
    "PSF-2.0",
    "Python-2.0",
    "Ruby",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "ZPL-2.1",
    "curl",
];

/// SPDX license exceptions accepted after `WITH`.
const SPDX_EXCEPTIONS: &[&str] = &[
    "Autoconf-exception-3.0",
    "Bison-exception-2.2",
    "Classpath-exception-2.0",
    "GCC-exception-3.1",
    "LLVM-exception",
    "OpenSSL-exception",
];

/// A declared license, classified for the SBOM formats.
#[derive(Debug, Clone, PartialEq, Eq)]
enum License {
    /// One SPDX license id, canonically spelled.
    Id(&'static str),
    /// An SPDX license expression over known ids, normalised (operators upper case, ids canonical).
    Expression(String),
    /// Anything else, as stated.
    Name(String),
}

fn known(list: &'static [&'static str], token: &str) -> Option<&'static str> {
    list.iter()
        .copied()
        .find(|id| id.eq_ignore_ascii_case(token))
}

/// Classifies a declared license: an SPDX id, an SPDX expression (`MIT OR Apache-2.0`, `GPL-2.0-only WITH
/// Classpath-exception-2.0`, `LGPL-2.1+`), or a name. The expression grammar is checked (operands and
/// operators alternate, parentheses balance), so a free-text license never passes as an expression.
fn classify_license(raw: &str) -> License {
    let text = raw.trim();
    let spaced = text.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut depth = 0usize;
    // Whether the next token must be an operand (a license, or an opening parenthesis).
    let mut want_operand = true;
    let mut after_with = false;
    for t in &tokens {
        let upper = t.to_ascii_uppercase();
        if want_operand {
            if *t == "(" && !after_with {
                depth += 1;
                out.push("(".into());
                continue;
            }
            let canonical = if after_with {
                known(SPDX_EXCEPTIONS, t).map(str::to_owned)
            } else {
                let (base, plus) = t.strip_suffix('+').map_or((*t, ""), |b| (b, "+"));
                known(SPDX_IDS, base).map(|id| format!("{id}{plus}"))
            };
            let Some(c) = canonical else {
                return License::Name(text.to_owned());
            };
            out.push(c);
            want_operand = false;
            after_with = false;
        } else if *t == ")" {
            if depth == 0 {
                return License::Name(text.to_owned());
            }
            depth -= 1;
            out.push(")".into());
        } else if matches!(upper.as_str(), "AND" | "OR" | "WITH") {
            after_with = upper == "WITH";
            want_operand = true;
            out.push(upper);
        } else {
            return License::Name(text.to_owned());
        }
    }
    if want_operand || depth != 0 || out.is_empty() {
        return License::Name(text.to_owned());
    }
    if out.len() == 1 && !out[0].ends_with('+') {
        if let Some(id) = known(SPDX_IDS, &out[0]) {
            return License::Id(id);
        }
    }
    let joined = out.join(" ").replace("( ", "(").replace(" )", ")");
    License::Expression(joined)
}

/// The CycloneDX `licenses` array for a declared license.
fn cdx_licenses(raw: &str) -> Value {
    match classify_license(raw) {
        License::Id(id) => json!([{"license": {"id": id, "acknowledgement": "declared"}}]),
        License::Expression(e) => json!([{"expression": e, "acknowledgement": "declared"}]),
        License::Name(n) => json!([{"license": {"name": n, "acknowledgement": "declared"}}]),
    }
}

/// The purl of the image (`pkg:oci/NAME@sha256%3AHEX?tag=TAG`), from its name and digest.
fn image_purl(rec: &ScanRecord) -> Option<String> {
    let hex = digest_hex(&rec.digest);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // `repo/path:tag`: the tag is after the last colon that follows the last slash.
    let (repo, tag) = match rec.name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (rec.name.as_str(), None),
    };
    let last = repo.rsplit('/').next().unwrap_or(repo).to_ascii_lowercase();
    let enc = |s: &str| -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    if last.is_empty() {
        return None;
    }
    let mut purl = format!("pkg:oci/{}@sha256%3A{hex}", enc(&last));
    if let Some(t) = tag.filter(|t| !t.is_empty()) {
        purl.push_str(&format!("?tag={}", enc(t)));
    }
    Some(purl)
}

fn os_ref(os: &OsRelease) -> String {
    format!(
        "os:{}@{}",
        os.id,
        os.version_id.as_deref().unwrap_or("unknown")
    )
}

/// bom-refs for the packages, in record order: the purl, suffixed with `#2`, `#3`... when the same purl
/// was found in several files.
fn package_refs(rec: &ScanRecord) -> Vec<String> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    rec.packages
        .iter()
        .map(|p| {
            let n = seen.entry(p.purl.as_str()).or_insert(0);
            *n += 1;
            if *n == 1 {
                p.purl.clone()
            } else {
                format!("{}#{n}", p.purl)
            }
        })
        .collect()
}

/// CycloneDX 1.6 JSON.
pub fn cyclonedx(rec: &ScanRecord) -> Value {
    let refs = package_refs(rec);
    let mut components: Vec<Value> = Vec::with_capacity(rec.packages.len() + 1);
    if let Some(os) = &rec.os {
        let mut c = json!({
            "type": "operating-system",
            "bom-ref": os_ref(os),
            "name": os.id,
        });
        if let Some(v) = &os.version_id {
            c["version"] = json!(v);
        }
        if let Some(d) = &os.pretty_name {
            c["description"] = json!(d);
        }
        if let Some(cn) = &os.codename {
            c["properties"] = json!([{"name": "stella:os:codename", "value": cn}]);
        }
        components.push(c);
    }
    for (p, r) in rec.packages.iter().zip(&refs) {
        let mut props = vec![
            json!({"name": "stella:ecosystem", "value": p.ecosystem.purl_type()}),
            json!({"name": "stella:layer", "value": p.layer}),
            json!({"name": "stella:path", "value": p.path}),
        ];
        if let Some(s) = &p.source {
            props.push(json!({"name": "stella:source-package", "value": s}));
        }
        let mut c = json!({
            "type": "library",
            "bom-ref": r,
            "name": p.name,
            "version": p.version,
            "purl": p.purl,
            "evidence": {"occurrences": [{"location": p.path, "additionalContext": format!("layer {}", p.layer)}]},
            "properties": props,
        });
        if let Some(l) = p.license.as_deref().filter(|l| !l.trim().is_empty()) {
            c["licenses"] = cdx_licenses(l);
        }
        components.push(c);
    }

    let mut image = json!({
        "type": "container",
        "bom-ref": rec.digest,
        "name": rec.name,
        "version": rec.digest,
    });
    if let Some(purl) = image_purl(rec) {
        image["purl"] = json!(purl);
        image["hashes"] = json!([{"alg": "SHA-256", "content": digest_hex(&rec.digest)}]);
    }
    let mut image_props = vec![json!({"name": "stella:image:config", "value": rec.config})];
    for l in &rec.layers {
        image_props.push(json!({"name": "stella:image:layer", "value": l}));
    }
    for e in &rec.errors {
        image_props.push(json!({"name": "stella:analyser-error", "value": e}));
    }
    image["properties"] = json!(image_props);

    // The image contains the OS and the language packages; the OS contains the OS packages.
    let under_os = |p: &Package| rec.os.is_some() && is_os_package(p);
    let os_top = rec.os.as_ref().map(os_ref);
    let mut top: Vec<&str> = os_top.iter().map(String::as_str).collect();
    let mut dependencies = Vec::new();
    if let Some(os) = &os_top {
        let os_deps: Vec<&str> = rec
            .packages
            .iter()
            .zip(&refs)
            .filter(|(p, _)| under_os(p))
            .map(|(_, r)| r.as_str())
            .collect();
        dependencies.push(json!({"ref": os, "dependsOn": os_deps}));
    }
    top.extend(
        rec.packages
            .iter()
            .zip(&refs)
            .filter(|(p, _)| !under_os(p))
            .map(|(_, r)| r.as_str()),
    );
    dependencies.insert(0, json!({"ref": rec.digest, "dependsOn": top}));

    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", stable_uuid(&inventory_seed(rec))),
        "version": 1,
        "metadata": {
            "timestamp": rec.scanned,
            "lifecycles": [{"phase": "post-build"}],
            "tools": {"components": [{"type": "application", "name": "stella", "version": tool_version()}]},
            "component": image,
        },
        "components": components,
        "dependencies": dependencies,
    })
}

/// A `LicenseRef-` id for a named license: its letters, digits, `.` and `-`, made unique.
fn license_ref(name: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    base.truncate(64);
    let base = match base.trim_matches('-') {
        "" => "LicenseRef-unnamed".to_owned(),
        b => format!("LicenseRef-{b}"),
    };
    let mut id = base.clone();
    let mut n = 1;
    while !taken.insert(id.clone()) {
        n += 1;
        id = format!("{base}-{n}");
    }
    id
}

/// SPDX 2.3 JSON.
pub fn spdx(rec: &ScanRecord) -> Value {
    let mut image = json!({
        "SPDXID": "SPDXRef-Image",
        "name": rec.name,
        "versionInfo": rec.digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "checksums": [{"algorithm": "SHA256", "checksumValue": digest_hex(&rec.digest)}],
    });
    if let Some(purl) = image_purl(rec) {
        image["externalRefs"] = json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}]);
    }
    let mut packages = vec![image];
    let mut relationships = vec![
        json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image"}),
    ];
    if let Some(os) = &rec.os {
        let mut p = json!({
            "SPDXID": "SPDXRef-OperatingSystem",
            "name": os.id,
            "versionInfo": os.version_id.clone().unwrap_or_default(),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            // The 2.3 JSON schema spells this purpose with an underscore (the spec text has a hyphen).
            "primaryPackagePurpose": "OPERATING_SYSTEM",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        });
        if let Some(d) = &os.pretty_name {
            p["description"] = json!(d);
        }
        packages.push(p);
        relationships.push(json!({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS", "relatedSpdxElement": "SPDXRef-OperatingSystem"}));
    }
    // Named licenses become `LicenseRef-` ids, each stated once in `hasExtractedLicensingInfos`.
    let names: BTreeSet<String> = rec
        .packages
        .iter()
        .filter_map(|p| p.license.as_deref())
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match classify_license(l) {
            License::Name(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut taken = BTreeSet::new();
    let refs: BTreeMap<String, String> = names
        .into_iter()
        .map(|n| {
            let id = license_ref(&n, &mut taken);
            (n, id)
        })
        .collect();
    for (i, p) in rec.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{i}");
        let declared = match p.license.as_deref().map(classify_license) {
            Some(License::Id(id)) => id.to_owned(),
            Some(License::Expression(e)) => e,
            Some(License::Name(n)) => refs
                .get(&n)
                .cloned()
                .unwrap_or_else(|| "NOASSERTION".into()),
            None => "NOASSERTION".into(),
        };
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "LIBRARY",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared,
            "copyrightText": "NOASSERTION",
            "sourceInfo": format!("found in {} of layer {}", p.path, p.layer),
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.purl}],
        });
        if let Some(s) = &p.source {
            pkg["comment"] = json!(format!("source package {s}"));
        }
        packages.push(pkg);
        let parent = if rec.os.is_some() && is_os_package(p) {
            "SPDXRef-OperatingSystem"
        } else {
            "SPDXRef-Image"
        };
        relationships.push(json!({"spdxElementId": parent, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} {}", rec.name, rec.digest),
        "documentNamespace": format!(
            "https://stella-ops.invalid/spdx/{}/{}",
            digest_hex(&rec.digest),
            stable_uuid(&inventory_seed(rec))
        ),
        "creationInfo": {"created": rec.scanned, "creators": [format!("Tool: stella-{}", tool_version())]},
        "packages": packages,
        "relationships": relationships,
    });
    if !refs.is_empty() {
        doc["hasExtractedLicensingInfos"] = refs
            .iter()
            .map(|(name, id)| json!({"licenseId": id, "name": name, "extractedText": name}))
            .collect();
    }
    doc
}

/// The SBOM in a format, as pretty JSON.
pub fn render(rec: &ScanRecord, format: &str) -> Result<String, UnknownFormat> {
    let v = match format.to_ascii_lowercase().as_str() {
        "cyclonedx" | "cdx" => cyclonedx(rec),
        "spdx" => spdx(rec),
        other => return Err(UnknownFormat(other.to_owned())),
    };
    Ok(serde_json::to_string_pretty(&v).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licenses_are_ids_expressions_or_names() {
        assert_eq!(classify_license("mit"), License::Id("MIT"));
        assert_eq!(classify_license(" Apache-2.0 "), License::Id("Apache-2.0"));
        assert_eq!(
            classify_license("(MIT or apache-2.0)"),
            License::Expression("(MIT OR Apache-2.0)".into())
        );
        assert_eq!(
            classify_license("GPL-2.0-only WITH Classpath-exception-2.0"),
            License::Expression("GPL-2.0-only WITH Classpath-exception-2.0".into())
        );
        assert_eq!(
            classify_license("LGPL-2.1-or-later+"),
            License::Expression("LGPL-2.1-or-later+".into())
        );
        for name in [
            "MIT BSD GPL2+",
            "GPL2",
            "BSD",
            "MIT AND",
            "(MIT",
            "MIT)",
            "MIT WITH Apache-2.0",
            "Apache Software License",
            "",
        ] {
            assert_eq!(
                classify_license(name),
                License::Name(name.trim().into()),
                "{name}"
            );
        }
    }

    #[test]
    fn license_refs_are_unique() {
        let mut taken = BTreeSet::new();
        assert_eq!(license_ref("GPL2+", &mut taken), "LicenseRef-GPL2");
        assert_eq!(license_ref("GPL2-", &mut taken), "LicenseRef-GPL2-2");
        assert_eq!(license_ref("+", &mut taken), "LicenseRef-unnamed");
    }
}
