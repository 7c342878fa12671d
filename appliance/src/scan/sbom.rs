//! SBOM documents from a scan record: CycloneDX 1.6 JSON and SPDX 2.3 JSON. Deterministic: the same record
//! gives the same bytes (serial number and namespace derive from the image digest, times from the scan).

use super::ScanRecord;
use serde_json::{json, Value};

/// The SBOM formats.
pub const FORMATS: [&str; 2] = ["cyclonedx", "spdx"];

/// An unknown format was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SBOM format '{0}': use cyclonedx or spdx")]
pub struct UnknownFormat(pub String);

fn digest_hex(d: &str) -> &str {
    d.split_once(':').map_or(d, |(_, h)| h)
}

/// A UUID (version 5 layout) derived from the image digest, so the serial number is stable per image.
fn stable_uuid(d: &str) -> String {
    let h = crypto_profiles::digest_with(crypto_profiles::DigestAlg::Sha256, d.as_bytes())
        .map(|x| x.hex())
        .unwrap_or_default();
    let h = format!("{h:0<32}");
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

fn tool_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// CycloneDX 1.6 JSON.
pub fn cyclonedx(rec: &ScanRecord) -> Value {
    let components: Vec<Value> = rec
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut c = json!({
                "type": "library",
                "bom-ref": format!("pkg-{i}-{}", p.purl),
                "name": p.name,
                "version": p.version,
                "purl": p.purl,
                "properties": [
                    {"name": "stella:ecosystem", "value": p.ecosystem.purl_type()},
                    {"name": "stella:layer", "value": p.layer},
                    {"name": "stella:path", "value": p.path},
                ],
            });
            if let Some(l) = &p.license {
                c["licenses"] = json!([{"license": {"name": l}}]);
            }
            c
        })
        .collect();
    let mut metadata = json!({
        "timestamp": rec.scanned,
        "tools": {"components": [{"type": "application", "name": "stella", "version": tool_version()}]},
        "component": {"type": "container", "bom-ref": rec.digest, "name": rec.name, "version": rec.digest},
    });
    if let Some(os) = &rec.os {
        metadata["properties"] = json!([
            {"name": "stella:os:id", "value": os.id},
            {"name": "stella:os:version", "value": os.version_id.clone().unwrap_or_default()},
        ]);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", stable_uuid(&rec.digest)),
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": [{"ref": rec.digest, "dependsOn": rec.packages.iter().enumerate().map(|(i, p)| format!("pkg-{i}-{}", p.purl)).collect::<Vec<_>>()}],
    })
}

/// SPDX 2.3 JSON.
pub fn spdx(rec: &ScanRecord) -> Value {
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": rec.name,
        "versionInfo": rec.digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": digest_hex(&rec.digest)}],
    })];
    let mut relationships = vec![
        json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image"}),
    ];
    for (i, p) in rec.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{i}");
        packages.push(json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "sourceInfo": format!("found in {} of layer {}", p.path, p.layer),
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.purl}],
        }));
        relationships.push(json!({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} {}", rec.name, rec.digest),
        "documentNamespace": format!("https://stella-ops.invalid/spdx/{}", digest_hex(&rec.digest)),
        "creationInfo": {"created": rec.scanned, "creators": [format!("Tool: stella-{}", tool_version())]},
        "packages": packages,
        "relationships": relationships,
    })
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
