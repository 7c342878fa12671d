//! OpenVEX documents, v0.0.1 and v0.2.0 (<https://github.com/openvex/spec>).

use std::collections::BTreeMap;

use crate::node::{Checked, Node};
use crate::time::Zone;
use crate::{Observation, VexStatement, VexStatus};

const STATUSES: [&str; 4] = ["not_affected", "affected", "fixed", "under_investigation"];
const JUSTIFICATIONS: [&str; 5] = [
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
];

pub(crate) fn status(s: &str) -> Option<VexStatus> {
    Some(match s {
        "not_affected" => VexStatus::NotAffected,
        "affected" => VexStatus::Affected,
        "fixed" => VexStatus::Fixed,
        "under_investigation" => VexStatus::UnderInvestigation,
        _ => return None,
    })
}

/// One observation per vulnerability named in the document; `source_id` is the document's `@id`.
pub(crate) fn parse(root: Node<'_>) -> Checked<Vec<Observation>> {
    let context = root.req_str("@context")?;
    if !context.starts_with("https://openvex.dev/ns") {
        return Err(root
            .req("@context")?
            .problem(format!("'{context}' is not an openvex context")));
    }
    let id = root.req_str("@id")?;
    let author = root.req_str("author")?;
    let timestamp = root.opt_time("timestamp", Zone::Required)?;
    let last_updated = root.opt_time("last_updated", Zone::Required)?;
    if let Some(v) = root.opt("version")? {
        let t = v.scalar_text()?;
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(v.problem(format!("'{t}' is not a document version number")));
        }
    }
    let mut by_vuln: BTreeMap<String, Observation> = BTreeMap::new();
    for s in root.req("statements")?.arr()? {
        let (name, aliases, urls) = vulnerability(&s.req("vulnerability")?)?;
        let stated = s.req("status")?.one_of(&STATUSES)?;
        let justification = match s.opt("justification")? {
            Some(j) => Some(j.one_of(&JUSTIFICATIONS)?.to_owned()),
            None => None,
        };
        let impact = s.opt_str("impact_statement")?.map(str::to_owned);
        let action = s.opt_str("action_statement")?.map(str::to_owned);
        if stated == "not_affected" && justification.is_none() && impact.is_none() {
            return Err(
                s.problem("a not_affected statement needs 'justification' or 'impact_statement'")
            );
        }
        if stated == "affected" && action.is_none() {
            return Err(s.problem("an affected statement needs 'action_statement'"));
        }
        let stmt_time = s.opt_time("timestamp", Zone::Required)?;
        s.opt_time("last_updated", Zone::Required)?;
        let o = by_vuln.entry(name.clone()).or_insert_with(|| {
            let mut o = Observation::new(format!("openvex:{author}"), id);
            o.published = timestamp.clone().or(stmt_time);
            o.modified = last_updated.clone();
            o.aliases.push(name.clone());
            o
        });
        o.aliases.extend(aliases);
        o.references.extend(urls);
        let products = s.opt_arr("products")?;
        let make = |product: String, subcomponents: Vec<String>| VexStatement {
            vulnerability: name.clone(),
            product,
            subcomponents,
            status: status(stated).unwrap_or(VexStatus::UnderInvestigation),
            stated_status: stated.to_owned(),
            justification: justification.clone(),
            impact_statement: impact.clone(),
            action_statement: action.clone(),
        };
        if products.is_empty() {
            // v0.0.1 allowed statements scoped by subcomponents alone or by nothing at all.
            o.vex.push(make(
                String::new(),
                s.opt_strs("subcomponents").unwrap_or_default(),
            ));
        }
        for p in products {
            let (product, subs) = product(&p)?;
            o.vex.push(make(product, subs));
        }
    }
    Ok(by_vuln.into_values().collect())
}

/// `(name, aliases, urls)`: v0.0.1 writes the name as a string, v0.2.0 as an object whose
/// aliases may be URLs (kept as references, not as ids).
fn vulnerability(v: &Node<'_>) -> Checked<(String, Vec<String>, Vec<String>)> {
    if let Ok(s) = v.str() {
        if s.is_empty() {
            return Err(v.problem("must not be empty"));
        }
        return Ok((s.to_owned(), Vec::new(), Vec::new()));
    }
    let name = match v.opt_str("name")? {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => v.req_str("@id")?.to_owned(),
    };
    let (urls, aliases) = v
        .opt_strs("aliases")?
        .into_iter()
        .partition(|a| a.starts_with("http://") || a.starts_with("https://"));
    Ok((name, aliases, urls))
}

/// `(product, subcomponents)`: a string (v0.0.1) or an object with `@id` and identifiers.
fn product(p: &Node<'_>) -> Checked<(String, Vec<String>)> {
    if let Ok(s) = p.str() {
        return Ok((s.to_owned(), Vec::new()));
    }
    let ids = p.opt("identifiers")?;
    let purl = match &ids {
        Some(i) => i.opt_str("purl")?,
        None => None,
    };
    let id = match (purl, p.opt_str("@id")?) {
        (Some(purl), _) => purl.to_owned(),
        (None, Some(id)) => id.to_owned(),
        (None, None) => return Err(p.problem("a product needs '@id' or a purl identifier")),
    };
    let mut subs = Vec::new();
    for s in p.opt_arr("subcomponents")? {
        subs.push(product(&s)?.0);
    }
    subs.sort();
    Ok((id, subs))
}
