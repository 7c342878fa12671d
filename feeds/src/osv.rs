//! OSV records (<https://ossf.github.io/osv-schema/>), JSON or YAML.

use crate::node::{Checked, Node};
use crate::time::Zone;
use crate::{Affected, Observation, PackageRef, RangeEvent, Severity, VersionRange};

const RANGE_TYPES: [&str; 3] = ["SEMVER", "ECOSYSTEM", "GIT"];
const SEVERITY_TYPES: [&str; 4] = ["CVSS_V2", "CVSS_V3", "CVSS_V4", "Ubuntu"];

/// The source is `osv:` followed by the id's prefix (`GHSA`, `GO`, `PYSEC`...).
fn source_of(id: &str) -> String {
    let prefix = id.split('-').next().unwrap_or(id);
    format!("osv:{prefix}")
}

pub(crate) fn parse(root: Node<'_>) -> Checked<Vec<Observation>> {
    let id = root.req_str("id")?;
    let mut o = Observation::new(source_of(id), id);
    if let Some(v) = root.opt("schema_version")? {
        let s = v.str()?;
        if !s
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(v.problem(format!("'{s}' is not a schema version")));
        }
    }
    // `modified` is the one timestamp the schema requires.
    o.modified = Some(root.req_time("modified", Zone::Required)?);
    o.published = root.opt_time("published", Zone::Required)?;
    o.withdrawn = root.opt_time("withdrawn", Zone::Required)?;
    o.aliases = root.opt_strs("aliases")?;
    o.aliases.extend(root.opt_strs("related")?);
    o.aliases.extend(root.opt_strs("upstream")?);
    for s in ["summary", "details"] {
        root.opt_str(s)?;
    }
    for sev in root.opt_arr("severity")? {
        o.severities.push(severity(&sev)?);
    }
    for r in root.opt_arr("references")? {
        r.req_str("type")?;
        o.references.push(r.req_str("url")?.to_owned());
    }
    for a in root.opt_arr("affected")? {
        let (affected, severities) = affected(&a)?;
        o.affected.push(affected);
        o.severities.extend(severities);
    }
    Ok(vec![o])
}

fn severity(n: &Node<'_>) -> Checked<Severity> {
    let kind = n.enum_str("type", &SEVERITY_TYPES)?;
    let score_node = n.req("score")?;
    let score = score_node.str()?;
    let prefix = match kind {
        "CVSS_V3" => Some("CVSS:3."),
        "CVSS_V4" => Some("CVSS:4.0/"),
        _ => None,
    };
    if let Some(prefix) = prefix {
        if !score.starts_with(prefix) {
            return Err(score_node.problem(format!(
                "'{score}' is not a {kind} vector (must start with '{prefix}')"
            )));
        }
    }
    Ok(Severity {
        kind: kind.to_owned(),
        vector_or_score: score.to_owned(),
        source: None,
    })
}

fn affected(a: &Node<'_>) -> Checked<(Affected, Vec<Severity>)> {
    let mut out = Affected::default();
    if let Some(p) = a.opt("package")? {
        out.package = PackageRef {
            purl: p.opt_str("purl")?.map(str::to_owned),
            ecosystem: Some(p.req_str("ecosystem")?.to_owned()),
            name: Some(p.req_str("name")?.to_owned()),
            cpe: None,
        };
    }
    for r in a.opt_arr("ranges")? {
        let range = range(&r)?;
        for e in &range.events {
            if let RangeEvent::Fixed(v) = e {
                out.fixed.push(v.clone());
            }
        }
        out.ranges.push(range);
    }
    out.versions = a.opt_strs("versions")?;
    let mut severities = Vec::new();
    for s in a.opt_arr("severity")? {
        severities.push(severity(&s)?);
    }
    Ok((out, severities))
}

fn range(r: &Node<'_>) -> Checked<VersionRange> {
    let scheme = r.enum_str("type", &RANGE_TYPES)?;
    let repo = r.opt_str("repo")?.map(str::to_owned);
    if scheme == "GIT" && repo.is_none() {
        return Err(r.problem("a GIT range requires 'repo'"));
    }
    let events_node = r.req("events")?;
    let mut events = Vec::new();
    for e in events_node.arr()? {
        let entries = e.entries()?;
        let [(key, value)] = entries.as_slice() else {
            return Err(e.problem(
                "an event must have exactly one of introduced, fixed, last_affected, limit",
            ));
        };
        let v = value.str()?.to_owned();
        if v.is_empty() {
            return Err(value.problem("must not be empty"));
        }
        events.push(match *key {
            "introduced" => RangeEvent::Introduced(v),
            "fixed" => RangeEvent::Fixed(v),
            "last_affected" => RangeEvent::LastAffected(v),
            "limit" => RangeEvent::Limit(v),
            other => {
                return Err(e.problem(format!(
                    "'{other}' is not one of introduced, fixed, last_affected, limit"
                )))
            }
        });
    }
    if !events
        .iter()
        .any(|e| matches!(e, RangeEvent::Introduced(_)))
    {
        return Err(events_node.problem("a range needs at least one 'introduced' event"));
    }
    // An interval that opens and closes at the same version is empty: a contradiction, not a
    // statement (osv-linter's "nondistinct" case). The same version may still close one
    // interval and open the next.
    for pair in events.windows(2) {
        if let [RangeEvent::Introduced(i), RangeEvent::Fixed(f)] = pair {
            if i == f {
                return Err(events_node.problem(format!(
                    "'{i}' is introduced and fixed at once: the interval is empty"
                )));
            }
        }
    }
    Ok(VersionRange {
        scheme: scheme.to_owned(),
        repo,
        events,
    })
}
