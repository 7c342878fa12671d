//! CycloneDX JSON BOMs, spec 1.4 to 1.6.
//!
//! The whole BOM is checked against the structural rules of the schema that matter for
//! trusting it (required fields, enumerations, hash and serial-number shapes, license
//! choice), then each entry of `vulnerabilities` becomes an observation. License ids are not
//! checked against the SPDX list, which this crate does not carry.

use std::collections::BTreeMap;

use crate::node::{Checked, Node};
use crate::time::Zone;
use crate::{Affected, Observation, PackageRef, Severity, VexStatement, VexStatus};

const SPEC_VERSIONS: [&str; 3] = ["1.4", "1.5", "1.6"];
const COMPONENT_TYPES: [&str; 13] = [
    "application",
    "framework",
    "library",
    "container",
    "platform",
    "operating-system",
    "device",
    "device-driver",
    "firmware",
    "file",
    "machine-learning-model",
    "data",
    "cryptographic-asset",
];
const SCOPES: [&str; 3] = ["required", "optional", "excluded"];
const PATCH_TYPES: [&str; 4] = ["unofficial", "monkey", "backport", "cherry-pick"];
const ISSUE_TYPES: [&str; 3] = ["defect", "enhancement", "security"];
const DATA_FLOWS: [&str; 4] = ["inbound", "outbound", "bi-directional", "unknown"];
const STATES: [&str; 6] = [
    "resolved",
    "resolved_with_pedigree",
    "exploitable",
    "in_triage",
    "false_positive",
    "not_affected",
];
const JUSTIFICATIONS: [&str; 9] = [
    "code_not_present",
    "code_not_reachable",
    "requires_configuration",
    "requires_dependency",
    "requires_environment",
    "protected_by_compiler",
    "protected_at_runtime",
    "protected_at_perimeter",
    "protected_by_mitigating_control",
];
const RESPONSES: [&str; 5] = [
    "can_not_fix",
    "will_not_fix",
    "update",
    "rollback",
    "workaround_available",
];

/// Hash algorithms and the hex length of their digests (0: variable, BLAKE3).
const HASHES: [(&str, usize); 12] = [
    ("MD5", 32),
    ("SHA-1", 40),
    ("SHA-256", 64),
    ("SHA-384", 96),
    ("SHA-512", 128),
    ("SHA3-256", 64),
    ("SHA3-384", 96),
    ("SHA3-512", 128),
    ("BLAKE2b-256", 64),
    ("BLAKE2b-384", 96),
    ("BLAKE2b-512", 128),
    ("BLAKE3", 0),
];

fn is_uuid_urn(s: &str) -> bool {
    let Some(u) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let groups: Vec<&str> = u.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(crate) fn parse(root: Node<'_>) -> Checked<Vec<Observation>> {
    root.req("bomFormat")?.one_of(&["CycloneDX"])?;
    root.req("specVersion")?.one_of(&SPEC_VERSIONS)?;
    if let Some(sn) = root.opt("serialNumber")? {
        let s = sn.str()?;
        if !is_uuid_urn(s) {
            return Err(sn.problem(format!("'{s}' is not a urn:uuid serial number")));
        }
    }
    if let Some(v) = root.opt("version")? {
        if v.value.as_u64().is_none_or(|n| n < 1) {
            return Err(v.problem("expected an integer of at least 1"));
        }
    }
    let mut purls = BTreeMap::new();
    let mut author = None;
    if let Some(meta) = root.opt("metadata")? {
        meta.opt_time("timestamp", Zone::Required)?;
        licenses(&meta)?;
        properties(&meta)?;
        if let Some(c) = meta.opt("component")? {
            component(&c, &mut purls)?;
        }
        for key in ["supplier", "manufacture", "manufacturer"] {
            if author.is_none() {
                if let Some(org) = meta.opt(key)? {
                    author = org.opt_str("name")?.map(str::to_owned);
                }
            }
        }
        if author.is_none() {
            if let Some(a) = meta.opt_arr("authors")?.first() {
                author = a.opt_str("name")?.map(str::to_owned);
            }
        }
    }
    for c in root.opt_arr("components")? {
        component(&c, &mut purls)?;
    }
    for s in root.opt_arr("services")? {
        service(&s)?;
    }
    for d in root.opt_arr("dependencies")? {
        d.req_str("ref")?;
        for r in d.opt_arr("dependsOn")? {
            if r.str()?.is_empty() {
                return Err(r.problem("must not be empty"));
            }
        }
    }
    let source = match &author {
        Some(a) => format!("cyclonedx:{a}"),
        None => "cyclonedx".to_owned(),
    };
    let mut out = Vec::new();
    for v in root.opt_arr("vulnerabilities")? {
        out.push(vulnerability(&v, &source, &purls)?);
    }
    out.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    Ok(out)
}

fn properties(n: &Node<'_>) -> Checked<()> {
    for p in n.opt_arr("properties")? {
        p.req("name")?.str()?;
        for (k, _) in p.entries()? {
            if k != "name" && k != "value" {
                return Err(p.problem(format!("unexpected property field '{k}'")));
            }
        }
    }
    Ok(())
}

fn licenses(n: &Node<'_>) -> Checked<()> {
    let items = n.opt_arr("licenses")?;
    for l in &items {
        let has_license = l.has("license");
        let has_expression = l.has("expression");
        if has_license == has_expression {
            return Err(l.problem("a license entry needs exactly one of 'license' or 'expression'"));
        }
        if has_expression {
            l.req_str("expression")?;
            if items.len() > 1 {
                return Err(l.problem("a license expression must be the only entry of 'licenses'"));
            }
            continue;
        }
        let lic = l.req("license")?;
        match (lic.opt_str("id")?, lic.opt_str("name")?) {
            (Some(_), Some(_)) => {
                return Err(lic.problem("a license has either 'id' or 'name', not both"))
            }
            (None, None) => return Err(lic.problem("a license needs 'id' or 'name'")),
            _ => {}
        }
        if let Some(text) = lic.opt("text")? {
            if let Some(enc) = text.opt("encoding")? {
                enc.one_of(&["base64"])?;
            }
        }
        properties(&lic)?;
    }
    Ok(())
}

fn component(c: &Node<'_>, purls: &mut BTreeMap<String, String>) -> Checked<()> {
    c.req("type")?.one_of(&COMPONENT_TYPES)?;
    c.req("name")?.str()?;
    let purl = c.opt_str("purl")?;
    if let Some(r) = c.opt("bom-ref")? {
        let r_str = r.str()?;
        if r_str.is_empty() {
            return Err(r.problem("must not be empty"));
        }
        if let Some(p) = purl {
            purls.insert(r_str.to_owned(), p.to_owned());
        }
    }
    if let Some(s) = c.opt("scope")? {
        s.one_of(&SCOPES)?;
    }
    for h in c.opt_arr("hashes")? {
        hash(&h)?;
    }
    licenses(c)?;
    properties(c)?;
    if let Some(swid) = c.opt("swid")? {
        swid.req_str("tagId")?;
        swid.req_str("name")?;
    }
    if let Some(p) = c.opt("pedigree")? {
        for key in ["ancestors", "descendants", "variants"] {
            for a in p.opt_arr(key)? {
                component(&a, purls)?;
            }
        }
        for patch in p.opt_arr("patches")? {
            patch.req("type")?.one_of(&PATCH_TYPES)?;
            for issue in patch.opt_arr("resolves")? {
                issue.req("type")?.one_of(&ISSUE_TYPES)?;
            }
        }
    }
    for sub in c.opt_arr("components")? {
        component(&sub, purls)?;
    }
    Ok(())
}

fn hash(h: &Node<'_>) -> Checked<()> {
    let alg = h.req("alg")?;
    let name = alg.str()?;
    let Some((_, len)) = HASHES.iter().find(|(a, _)| *a == name) else {
        let names: Vec<&str> = HASHES.iter().map(|(a, _)| *a).collect();
        return Err(alg.problem(format!("'{name}' is not one of {}", names.join(", "))));
    };
    let content = h.req("content")?;
    let c = content.str()?;
    let hex = !c.is_empty() && c.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex || (*len != 0 && c.len() != *len) {
        return Err(content.problem(format!("'{c}' is not a {name} digest")));
    }
    Ok(())
}

fn service(s: &Node<'_>) -> Checked<()> {
    s.req_str("name")?;
    if let Some(data) = s.opt("data")? {
        for d in data.arr()? {
            d.req("flow")?.one_of(&DATA_FLOWS)?;
            d.req("classification")?.str()?;
        }
    }
    for sub in s.opt_arr("services")? {
        service(&sub)?;
    }
    Ok(())
}

fn vex_status(state: &str) -> VexStatus {
    match state {
        "resolved" | "resolved_with_pedigree" => VexStatus::Fixed,
        "exploitable" => VexStatus::Affected,
        "false_positive" | "not_affected" => VexStatus::NotAffected,
        _ => VexStatus::UnderInvestigation,
    }
}

fn vulnerability(
    v: &Node<'_>,
    source: &str,
    purls: &BTreeMap<String, String>,
) -> Checked<Observation> {
    let id = v.req_str("id")?;
    let mut o = Observation::new(source, id);
    o.published = v.opt_time("published", Zone::Required)?;
    o.modified = v.opt_time("updated", Zone::Required)?;
    v.opt_time("created", Zone::Required)?;
    if let Some(src) = v.opt("source")? {
        if let Some(url) = src.opt_str("url")? {
            o.references.push(url.to_owned());
        }
    }
    for r in v.opt_arr("references")? {
        o.aliases.push(r.req_str("id")?.to_owned());
    }
    for a in v.opt_arr("advisories")? {
        o.references.push(a.req_str("url")?.to_owned());
    }
    for r in v.opt_arr("ratings")? {
        let rater = match r.opt("source")? {
            Some(s) => s.opt_str("name")?.map(str::to_owned),
            None => None,
        };
        let method = r.opt_str("method")?.unwrap_or("other");
        let value = match (
            r.opt_str("vector")?,
            r.opt("score")?,
            r.opt_str("severity")?,
        ) {
            (Some(vec), _, _) => vec.to_owned(),
            (None, Some(score), _) => score.scalar_text()?,
            (None, None, Some(sev)) => sev.to_owned(),
            (None, None, None) => continue,
        };
        o.severities.push(Severity {
            kind: method.to_owned(),
            vector_or_score: value,
            source: rater,
        });
    }
    let analysis = v.opt("analysis")?;
    let mut state = None;
    let (mut justification, mut detail, mut response) = (None, None, None);
    if let Some(a) = &analysis {
        if let Some(s) = a.opt("state")? {
            state = Some(s.one_of(&STATES)?);
        }
        if let Some(j) = a.opt("justification")? {
            justification = Some(j.one_of(&JUSTIFICATIONS)?.to_owned());
        }
        detail = a.opt_str("detail")?.map(str::to_owned);
        let mut rs = Vec::new();
        for r in a.opt_arr("response")? {
            rs.push(r.one_of(&RESPONSES)?);
        }
        if !rs.is_empty() {
            response = Some(rs.join(", "));
        }
    }
    for af in v.opt_arr("affects")? {
        let r = af.req_str("ref")?;
        let product = purls.get(r).cloned().unwrap_or_else(|| r.to_owned());
        let mut affected = Affected {
            package: PackageRef {
                purl: purls.get(r).cloned(),
                name: Some(r.to_owned()),
                ..PackageRef::default()
            },
            ..Affected::default()
        };
        for ver in af.opt_arr("versions")? {
            let status = ver.opt_str("status")?.unwrap_or("affected");
            let text = ver.opt_str("version")?.or(ver.opt_str("range")?);
            let Some(text) = text else {
                return Err(ver.problem("a version entry needs 'version' or 'range'"));
            };
            if status == "affected" {
                affected.versions.push(text.to_owned());
            } else if status == "unaffected" && ver.has("version") {
                affected.fixed.push(text.to_owned());
            }
        }
        o.affected.push(affected);
        if let Some(s) = state {
            o.vex.push(VexStatement {
                vulnerability: id.to_owned(),
                product,
                subcomponents: Vec::new(),
                status: vex_status(s),
                stated_status: s.to_owned(),
                justification: justification.clone(),
                impact_statement: detail.clone(),
                action_statement: response.clone(),
            });
        }
    }
    Ok(o)
}
