//! Linksets: observations grouped by alias closure (CVE ↔ GHSA ↔ DSA …), each source's statement side by
//! side, and the conflicts between them, computed deterministically. Nothing here rewrites a claim or
//! picks a winner.

use crate::{Observation, RangeEvent, VexStatus};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// An observation as stored: the statement plus where and when it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// `source|source_id`, the observation's identity across revisions.
    pub key: String,
    /// Revision, from 1; a new digest of the same key is a new revision that supersedes the old.
    pub revision: u32,
    /// Digest of the raw document (`alg:hex`, site profile).
    pub document: String,
    /// The payload name of the document in its kit.
    pub document_name: String,
    /// The kit that carried it.
    pub kit: String,
    /// When it was ingested.
    pub ingested: String,
    /// The statement as the source made it.
    pub observation: Observation,
}

impl Statement {
    /// The identity of an observation.
    pub fn key_of(o: &Observation) -> String {
        format!("{}|{}", o.source, o.source_id)
    }

    /// Every id this statement names: its own and its aliases, uppercased.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::iter::once(&self.observation.source_id)
            .chain(&self.observation.aliases)
            .map(|s| s.to_ascii_uppercase())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// What sources disagree about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    /// Different fixed versions for the same package.
    FixedVersion,
    /// One source says affected, another not affected (or fixed) for the same product.
    Status,
    /// Different severity ratings of the same kind.
    Severity,
}

/// One disagreement, with every side as stated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// What kind.
    pub kind: ConflictKind,
    /// The package or product concerned (none for severity).
    pub subject: Option<String>,
    /// Each source's claim: (statement key, value as stated).
    pub claims: Vec<(String, String)>,
}

/// A linkset: the statements about one vulnerability, and their conflicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linkset {
    /// The name people use: the smallest CVE id in the closure, else the smallest id.
    pub id: String,
    /// Every id in the closure, sorted.
    pub ids: Vec<String>,
    /// Current statements, sorted by key.
    pub statements: Vec<Statement>,
    /// Conflicts, sorted.
    pub conflicts: Vec<Conflict>,
}

/// The package key a statement's package is matched and compared by: a purl without version, qualifiers
/// or subpath, lowercased type; else `ecosystem/name`.
pub fn package_key(p: &crate::PackageRef) -> Option<String> {
    if let Some(purl) = &p.purl {
        return Some(purl_base(purl));
    }
    match (&p.ecosystem, &p.name) {
        (Some(e), Some(n)) => Some(format!(
            "{}/{}",
            e.split(':').next().unwrap_or(e).to_ascii_lowercase(),
            n
        )),
        _ => None,
    }
}

/// `pkg:type/ns/name@version?q#s` → `pkg:type/ns/name` (type lowercased).
pub fn purl_base(purl: &str) -> String {
    let cut = purl.find(['?', '#']).unwrap_or(purl.len());
    let mut base = &purl[..cut];
    if let Some(at) = base.rfind('@') {
        if base[..at].contains('/') {
            base = &base[..at];
        }
    }
    match base.strip_prefix("pkg:").and_then(|r| r.split_once('/')) {
        Some((ty, rest)) => format!("pkg:{}/{rest}", ty.to_ascii_lowercase()),
        None => base.to_owned(),
    }
}

fn severity_value(kind: &str, v: &str) -> String {
    let score = match kind {
        "CVSS_V3" => crate::cvss::Vector::parse_v3(v)
            .ok()
            .map(|x| x.base_score()),
        "CVSS_V2" => crate::cvss::Vector::parse_v2(v)
            .ok()
            .map(|x| x.base_score()),
        _ => None,
    };
    match score {
        Some(s) => format!("{s:.1} ({v})"),
        None => v.to_owned(),
    }
}

/// The highest CVSS base score any statement of the linkset states (v3 preferred over v2), computed from
/// the vectors as written. Derived on demand; never stored in an observation.
pub fn max_cvss(ls: &Linkset) -> Option<f64> {
    let score = |kind: &str| -> Option<f64> {
        ls.statements
            .iter()
            .flat_map(|s| &s.observation.severities)
            .filter(|sev| sev.kind == kind)
            .filter_map(|sev| match kind {
                "CVSS_V3" => crate::cvss::Vector::parse_v3(&sev.vector_or_score)
                    .ok()
                    .map(|v| v.base_score()),
                _ => crate::cvss::Vector::parse_v2(&sev.vector_or_score)
                    .ok()
                    .map(|v| v.base_score()),
            })
            .reduce(f64::max)
    };
    score("CVSS_V3").or_else(|| score("CVSS_V2"))
}

/// The CVSS v3 qualitative rating of a score.
pub fn rating(score: f64) -> &'static str {
    crate::cvss::severity_v3(score)
}

/// Whether any statement of the linkset is a CISA KEV entry.
pub fn in_kev(ls: &Linkset) -> bool {
    ls.statements.iter().any(|s| s.observation.kev.is_some())
}

/// The highest EPSS score stated in the linkset.
pub fn epss(ls: &Linkset) -> Option<f64> {
    ls.statements
        .iter()
        .filter_map(|s| s.observation.epss.as_ref().map(|e| e.score))
        .reduce(f64::max)
}

/// Builds a linkset from the current statements of an alias closure.
pub fn build(mut statements: Vec<Statement>) -> Linkset {
    statements.sort_by(|a, b| a.key.cmp(&b.key));
    let ids: BTreeSet<String> = statements.iter().flat_map(|s| s.ids()).collect();
    let id = ids
        .iter()
        .filter(|i| i.starts_with("CVE-"))
        .min()
        .or_else(|| ids.iter().min())
        .cloned()
        .unwrap_or_default();
    let mut conflicts = Vec::new();

    // Fixed versions per package, per statement.
    let mut fixed: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    // Verdicts per package or product, per statement.
    let mut verdicts: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    // Severity per kind, per statement.
    let mut severities: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for s in &statements {
        if s.observation.withdrawn.is_some() {
            continue;
        }
        for a in &s.observation.affected {
            let Some(pkg) = package_key(&a.package) else {
                continue;
            };
            let mut fx: BTreeSet<String> = a.fixed.iter().cloned().collect();
            for r in &a.ranges {
                for e in &r.events {
                    if let RangeEvent::Fixed(v) = e {
                        fx.insert(v.clone());
                    }
                }
            }
            if !fx.is_empty() {
                fixed
                    .entry(pkg.clone())
                    .or_default()
                    .entry(s.key.clone())
                    .or_default()
                    .extend(fx);
            }
            let verdict = match a.status.as_deref() {
                Some("not-affected" | "not_affected" | "unaffected") => "not_affected",
                _ => "affected",
            };
            verdicts
                .entry(pkg)
                .or_default()
                .entry(s.key.clone())
                .or_default()
                .insert(verdict.into());
        }
        for v in &s.observation.vex {
            let word = match v.status {
                VexStatus::NotAffected => "not_affected",
                VexStatus::Affected => "affected",
                VexStatus::Fixed => "fixed",
                VexStatus::UnderInvestigation => "under_investigation",
            };
            let subject = if v.product.starts_with("pkg:") {
                purl_base(&v.product)
            } else {
                v.product.clone()
            };
            verdicts
                .entry(subject)
                .or_default()
                .entry(s.key.clone())
                .or_default()
                .insert(word.into());
        }
        for sev in &s.observation.severities {
            severities
                .entry(sev.kind.clone())
                .or_default()
                .entry(s.key.clone())
                .or_default()
                .insert(severity_value(&sev.kind, &sev.vector_or_score));
        }
    }
    for (pkg, by_src) in fixed {
        let distinct: BTreeSet<&BTreeSet<String>> = by_src.values().collect();
        if by_src.len() > 1 && distinct.len() > 1 {
            conflicts.push(Conflict {
                kind: ConflictKind::FixedVersion,
                subject: Some(pkg),
                claims: by_src
                    .into_iter()
                    .map(|(k, v)| (k, v.into_iter().collect::<Vec<_>>().join(", ")))
                    .collect(),
            });
        }
    }
    for (subject, by_src) in verdicts {
        let all: BTreeSet<&str> = by_src.values().flatten().map(String::as_str).collect();
        let says_affected = all.contains("affected");
        let says_not = all.contains("not_affected") || all.contains("fixed");
        if by_src.len() > 1 && says_affected && says_not {
            conflicts.push(Conflict {
                kind: ConflictKind::Status,
                subject: Some(subject),
                claims: by_src
                    .into_iter()
                    .map(|(k, v)| (k, v.into_iter().collect::<Vec<_>>().join(", ")))
                    .collect(),
            });
        }
    }
    for (kind, by_src) in severities {
        let scores: BTreeSet<String> = by_src
            .values()
            .flatten()
            .map(|v| v.split(' ').next().unwrap_or(v).to_owned())
            .collect();
        if by_src.len() > 1 && scores.len() > 1 {
            conflicts.push(Conflict {
                kind: ConflictKind::Severity,
                subject: Some(kind),
                claims: by_src
                    .into_iter()
                    .map(|(k, v)| (k, v.into_iter().collect::<Vec<_>>().join(", ")))
                    .collect(),
            });
        }
    }
    conflicts.sort_by(|a, b| (a.kind, &a.subject).cmp(&(b.kind, &b.subject)));
    Linkset {
        id,
        ids: ids.into_iter().collect(),
        statements,
        conflicts,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Affected, PackageRef, Severity, VersionRange};

    fn stmt(source: &str, id: &str, aliases: &[&str], purl: &str, fixed: &str) -> Statement {
        let o = Observation {
            source: source.into(),
            source_id: id.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            affected: vec![Affected {
                package: PackageRef {
                    purl: Some(purl.into()),
                    ..Default::default()
                },
                ranges: vec![VersionRange {
                    scheme: "ECOSYSTEM".into(),
                    repo: None,
                    events: vec![
                        RangeEvent::Introduced("0".into()),
                        RangeEvent::Fixed(fixed.into()),
                    ],
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        Statement {
            key: Statement::key_of(&o),
            revision: 1,
            document: "sha256:00".into(),
            document_name: "d".into(),
            kit: "k".into(),
            ingested: "2026-01-01T00:00:00Z".into(),
            observation: o,
        }
    }

    #[test]
    fn fixed_version_conflict_is_reported_not_resolved() {
        let a = stmt(
            "osv:GHSA",
            "GHSA-aaaa",
            &["CVE-2026-1"],
            "pkg:npm/x@1.0",
            "1.2.0",
        );
        let b = stmt("nvd", "CVE-2026-1", &[], "pkg:npm/x", "1.3.0");
        let ls = build(vec![b.clone(), a.clone()]);
        assert_eq!(ls.id, "CVE-2026-1");
        assert_eq!(ls.ids, vec!["CVE-2026-1", "GHSA-AAAA"]);
        assert_eq!(ls.statements[0].key, "nvd|CVE-2026-1");
        assert_eq!(ls.conflicts.len(), 1);
        assert_eq!(ls.conflicts[0].kind, ConflictKind::FixedVersion);
        assert_eq!(ls.conflicts[0].subject.as_deref(), Some("pkg:npm/x"));
        assert_eq!(ls.conflicts[0].claims.len(), 2);
        // Same inputs in another order: same linkset, byte for byte.
        let again = build(vec![a, b]);
        assert_eq!(
            serde_json::to_vec(&again).unwrap(),
            serde_json::to_vec(&ls).unwrap()
        );
    }

    #[test]
    fn agreement_is_no_conflict_and_severity_disagreement_is() {
        let mut a = stmt("osv:GHSA", "GHSA-b", &["CVE-2026-2"], "pkg:npm/y", "2.0.0");
        let mut b = stmt("nvd", "CVE-2026-2", &[], "pkg:npm/y", "2.0.0");
        a.observation.severities.push(Severity {
            kind: "CVSS_V3".into(),
            vector_or_score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into(),
            source: None,
        });
        b.observation.severities.push(Severity {
            kind: "CVSS_V3".into(),
            vector_or_score: "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N".into(),
            source: None,
        });
        let ls = build(vec![a, b]);
        assert_eq!(ls.conflicts.len(), 1, "{:?}", ls.conflicts);
        assert_eq!(ls.conflicts[0].kind, ConflictKind::Severity);
        assert!(
            ls.conflicts[0].claims[1].1.starts_with("9.8"),
            "{:?}",
            ls.conflicts[0].claims
        );
    }

    #[test]
    fn vex_not_affected_against_advisory_affected_is_a_status_conflict() {
        let a = stmt("osv:GHSA", "GHSA-c", &["CVE-2026-3"], "pkg:npm/z", "3.0.0");
        let mut v = stmt(
            "openvex:acme",
            "https://acme/vex/1",
            &["CVE-2026-3"],
            "pkg:npm/other",
            "1",
        );
        v.observation.affected.clear();
        v.observation.vex.push(crate::VexStatement {
            vulnerability: "CVE-2026-3".into(),
            product: "pkg:npm/z@2.9.0".into(),
            subcomponents: vec![],
            status: VexStatus::NotAffected,
            stated_status: "not_affected".into(),
            justification: Some("vulnerable_code_not_in_execute_path".into()),
            impact_statement: None,
            action_statement: None,
        });
        let ls = build(vec![a, v]);
        assert!(
            ls.conflicts.iter().any(
                |c| c.kind == ConflictKind::Status && c.subject.as_deref() == Some("pkg:npm/z")
            ),
            "{:?}",
            ls.conflicts
        );
    }

    #[test]
    fn purl_base_drops_version_and_qualifiers() {
        assert_eq!(
            purl_base("pkg:DEB/debian/openssl@3.0.11-1?distro=debian-12"),
            "pkg:deb/debian/openssl"
        );
        assert_eq!(
            purl_base("pkg:npm/%40scope/name@1.0.0#sub"),
            "pkg:npm/%40scope/name"
        );
        assert_eq!(
            purl_base("pkg:golang/github.com/a/b"),
            "pkg:golang/github.com/a/b"
        );
    }
}
