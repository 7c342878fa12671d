//! CSAF 2.0 documents (<https://docs.oasis-open.org/csaf/csaf/v2.0/>), all profiles.
//!
//! Besides the schema's required fields and enumerations, these mandatory tests of section
//! 6.1 are implemented: 6.1.1 to 6.1.10, 6.1.12 to 6.1.33 (6.1.11, CWE names, needs the CWE
//! catalogue and is not checked). Optional (6.2) and informative (6.3) tests only warn in
//! the standard, so documents failing them are accepted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::cvss::{self, Vector};
use crate::node::{Checked, Node, Problem};
use crate::openvex;
use crate::time::Zone;
use crate::{Observation, Severity, VexStatement, VexStatus};

const PUBLISHER_CATEGORIES: [&str; 6] = [
    "coordinator",
    "discoverer",
    "other",
    "translator",
    "user",
    "vendor",
];
const STATUSES: [&str; 3] = ["draft", "final", "interim"];
const KNOWN_CATEGORIES: [&str; 5] = [
    "csaf_base",
    "csaf_security_incident_response",
    "csaf_informational_advisory",
    "csaf_security_advisory",
    "csaf_vex",
];
const RELATIONSHIPS: [&str; 5] = [
    "default_component_of",
    "external_component_of",
    "installed_on",
    "installed_with",
    "optional_component_of",
];
const FLAG_LABELS: [&str; 5] = [
    "component_not_present",
    "inline_mitigations_already_exist",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_not_present",
];
/// Product status lists, with the VEX status each one states.
const PRODUCT_STATUS: [(&str, &str); 8] = [
    ("first_affected", "affected"),
    ("known_affected", "affected"),
    ("last_affected", "affected"),
    ("known_not_affected", "not_affected"),
    ("first_fixed", "fixed"),
    ("fixed", "fixed"),
    ("under_investigation", "under_investigation"),
    ("recommended", ""),
];
/// ISO 639-1 two-letter language codes (for 6.1.12).
const ISO_639_1: &str = "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu";

fn fail(n: &Node<'_>, test: &str, message: impl std::fmt::Display) -> Problem {
    n.problem(format!("{message} (csaf {test})"))
}

pub(crate) fn parse(root: Node<'_>) -> Checked<Vec<Observation>> {
    let doc = root.req("document")?;
    doc.req("csaf_version")?.one_of(&["2.0"])?;
    let category_node = doc.req("category")?;
    let category = doc.req_str("category")?;
    check_category(&category_node, category)?;
    let publisher = doc.req("publisher")?;
    let publisher_category = publisher.enum_str("category", &PUBLISHER_CATEGORIES)?;
    publisher.req_str("name")?;
    let namespace = publisher.req_str("namespace")?;
    doc.req_str("title")?;
    let tracking = doc.req("tracking")?;
    let id = tracking.req_str("id")?;
    let status = tracking.enum_str("status", &STATUSES)?;
    let current = tracking.req_time("current_release_date", Zone::Required)?;
    let initial = tracking.req_time("initial_release_date", Zone::Required)?;
    revisions(&tracking, status)?;
    languages(&doc, publisher_category)?;

    let tree = Tree::collect(&root)?;
    let vulns = root.opt_arr("vulnerabilities")?;
    profile_document(&root, &doc, category, &vulns)?;

    let source = format!("csaf:{}", host(namespace));
    let mut doc_refs = Vec::new();
    for r in doc.opt_arr("references")? {
        doc_refs.push(r.req_str("url")?.to_owned());
    }
    let new_obs = || {
        let mut o = Observation::new(source.clone(), id);
        o.published = Some(initial.clone());
        o.modified = Some(current.clone());
        o.references = doc_refs.clone();
        o
    };
    if vulns.is_empty() {
        return Ok(vec![new_obs()]);
    }
    let mut seen_cves: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::new();
    for v in &vulns {
        let mut o = new_obs();
        if let Some(cve) = v.opt("cve")? {
            let c = cve.str()?;
            if let Some(first) = seen_cves.insert(c, cve.path.clone()) {
                return Err(fail(
                    &cve,
                    "6.1.23",
                    format!("'{c}' is already used at {first}"),
                ));
            }
            o.aliases.push(c.to_owned());
        }
        for i in v.opt_arr("ids")? {
            i.req_str("system_name")?;
            o.aliases.push(i.req_str("text")?.to_owned());
        }
        vulnerability(v, category, &tree, &mut o)?;
        out.push(o);
    }
    Ok(out)
}

/// `https://www.redhat.com` -> `redhat.com`: the publisher's namespace names the source.
fn host(namespace: &str) -> &str {
    let rest = namespace.split_once("://").map_or(namespace, |(_, r)| r);
    let host = rest.split(['/', ':', '?']).next().unwrap_or(rest);
    host.strip_prefix("www.").unwrap_or(host)
}

fn check_category(n: &Node<'_>, category: &str) -> Checked<()> {
    if KNOWN_CATEGORIES.contains(&category) {
        return Ok(());
    }
    let normalised: String = category
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .collect();
    let similar = KNOWN_CATEGORIES.iter().any(|k| {
        let k: String = k.chars().filter(|c| *c != '_').collect();
        normalised == k || Some(normalised.as_str()) == k.strip_prefix("csaf")
    });
    if similar || category.to_ascii_lowercase().starts_with("csaf_") {
        return Err(fail(
            n,
            "6.1.26",
            format!("'{category}' is a prohibited document category name"),
        ));
    }
    Ok(())
}

fn languages(doc: &Node<'_>, publisher_category: &str) -> Checked<()> {
    let mut langs = Vec::new();
    for key in ["lang", "source_lang"] {
        if let Some(l) = doc.opt(key)? {
            let s = l.str()?;
            let primary = s.split('-').next().unwrap_or(s).to_ascii_lowercase();
            let ok_primary = match primary.len() {
                // Grandfathered (`i-default`) and private-use (`x-...`) tags.
                1 => (primary == "i" || primary == "x") && s.len() > 2,
                2 => ISO_639_1.split(' ').any(|c| c == primary),
                3 => primary.bytes().all(|b| b.is_ascii_alphabetic()),
                _ => false,
            };
            let ok_rest = s.split('-').skip(1).all(|p| {
                (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric())
            });
            if !ok_primary || !ok_rest {
                return Err(fail(
                    &l,
                    "6.1.12",
                    format!("'{s}' is not a valid language tag"),
                ));
            }
            langs.push((l.clone(), s.to_ascii_lowercase()));
        }
    }
    if publisher_category == "translator" && doc.opt("source_lang")?.is_none() {
        return Err(fail(
            doc,
            "6.1.15",
            "a translator's document needs 'source_lang'",
        ));
    }
    if let [(_, lang), (src, source_lang)] = langs.as_slice() {
        if lang == source_lang {
            return Err(fail(src, "6.1.28", "'source_lang' equals 'lang'"));
        }
    }
    Ok(())
}

/// A document or revision version: an integer or a semantic version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    semver: bool,
    /// (major, minor, patch); an integer version is (n, 0, 0).
    core: (u64, u64, u64),
    pre: Option<String>,
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

fn version(s: &str) -> Option<Version> {
    if let Some(n) = number(s) {
        return Some(Version {
            semver: false,
            core: (n, 0, 0),
            pre: None,
        });
    }
    let no_build = s
        .split_once('+')
        .map_or(s, |(v, b)| if b.is_empty() { "" } else { v });
    let (core, pre) = match no_build.split_once('-') {
        Some((c, p)) if !p.is_empty() => (c, Some(p.to_owned())),
        Some(_) => return None,
        None => (no_build, None),
    };
    let parts: Vec<Option<u64>> = core.split('.').map(number).collect();
    match parts.as_slice() {
        [Some(a), Some(b), Some(c)] => Some(Version {
            semver: true,
            core: (*a, *b, *c),
            pre,
        }),
        _ => None,
    }
}

/// Seconds since the epoch of an RFC 3339 time (already validated), for ordering only.
fn instant(s: &str) -> f64 {
    let n = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut secs = (days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)) as f64;
    let rest = s.get(19..).unwrap_or("");
    let frac_len = rest
        .strip_prefix('.')
        .map_or(0, |f| f.bytes().take_while(u8::is_ascii_digit).count());
    if frac_len > 0 {
        secs += format!("0.{}", &rest[1..=frac_len])
            .parse::<f64>()
            .unwrap_or(0.0);
    }
    let zone = &rest[if frac_len > 0 { frac_len + 1 } else { 0 }..];
    if let (Some(sign), Some(h), Some(mi)) = (zone.get(0..1), zone.get(1..3), zone.get(4..6)) {
        let off =
            (h.parse::<i64>().unwrap_or(0) * 3600 + mi.parse::<i64>().unwrap_or(0) * 60) as f64;
        secs += if sign == "-" { off } else { -off };
    }
    secs
}

fn revisions(tracking: &Node<'_>, status: &str) -> Checked<()> {
    let version_node = tracking.req("version")?;
    let v_text = version_node.str()?;
    let doc_version = version(v_text).ok_or_else(|| {
        version_node.problem(format!("'{v_text}' is not an integer or semantic version"))
    })?;
    let history_node = tracking.req("revision_history")?;
    let history = history_node.arr()?;
    if history.is_empty() {
        return Err(history_node.problem("must have at least one entry"));
    }
    let mut entries = Vec::new();
    for h in &history {
        let date = h.req_time("date", Zone::Required)?;
        let num_node = h.req("number")?;
        let text = num_node.str()?;
        let v = version(text).ok_or_else(|| {
            num_node.problem(format!("'{text}' is not an integer or semantic version"))
        })?;
        h.req_str("summary")?;
        entries.push((num_node, text.to_owned(), v, instant(&date)));
    }
    // 6.1.30: integer and semantic versioning are not mixed.
    for (n, text, v, _) in &entries {
        if v.semver != doc_version.semver {
            return Err(fail(
                n,
                "6.1.30",
                format!("'{text}' mixes integer and semantic versioning with '{v_text}'"),
            ));
        }
    }
    // 6.1.22: no number twice.
    let mut seen = BTreeSet::new();
    for (n, text, _, _) in &entries {
        if !seen.insert(text.clone()) {
            return Err(fail(
                n,
                "6.1.22",
                format!("revision '{text}' is defined more than once"),
            ));
        }
    }
    // 6.1.19: no pre-release revision numbers.
    for (n, text, v, _) in &entries {
        if v.pre.is_some() {
            return Err(fail(
                n,
                "6.1.19",
                format!("revision '{text}' is a pre-release"),
            ));
        }
    }
    let released = status == "final" || status == "interim";
    // 6.1.18: released documents have no revision 0 / 0.y.z.
    if released {
        for (n, text, v, _) in &entries {
            if v.core.0 == 0 {
                return Err(fail(
                    n,
                    "6.1.18",
                    format!("a {status} document has revision '{text}'"),
                ));
            }
        }
    }
    // 6.1.20: released documents have no pre-release version.
    if released && doc_version.pre.is_some() {
        return Err(fail(
            &version_node,
            "6.1.20",
            format!("a {status} document has pre-release version '{v_text}'"),
        ));
    }
    // 6.1.17: version 0, 0.y.z or a pre-release means status draft.
    if (doc_version.core.0 == 0 || doc_version.pre.is_some()) && status != "draft" {
        return Err(fail(
            &version_node,
            "6.1.17",
            format!("version '{v_text}' requires status draft, not {status}"),
        ));
    }
    let mut by_number: Vec<&(Node<'_>, String, Version, f64)> = entries.iter().collect();
    by_number.sort_by_key(|a| a.2.core);
    // 6.1.14: sorted by number, the dates ascend.
    for w in by_number.windows(2) {
        if w[1].3 < w[0].3 {
            return Err(fail(
                &w[1].0,
                "6.1.14",
                format!(
                    "revision '{}' is dated before revision '{}'",
                    w[1].1, w[0].1
                ),
            ));
        }
    }
    // 6.1.21: major versions are consecutive, starting at 0 or 1.
    let majors: BTreeSet<u64> = entries.iter().map(|e| e.2.core.0).collect();
    let first = majors.first().copied().unwrap_or(0);
    if first > 1 {
        return Err(fail(
            &history_node,
            "6.1.21",
            format!("the revision history starts at {first}"),
        ));
    }
    for (expected, m) in (first..).zip(&majors) {
        if *m != expected {
            return Err(fail(
                &history_node,
                "6.1.21",
                format!("revision {expected} is missing"),
            ));
        }
    }
    // 6.1.16: the version is the number of the latest revision.
    let mut by_date: Vec<&(Node<'_>, String, Version, f64)> = entries.iter().collect();
    by_date.sort_by(|a, b| a.3.total_cmp(&b.3).then(a.2.core.cmp(&b.2.core)));
    if let Some(last) = by_date.last() {
        let same =
            last.2.core == doc_version.core && (status == "draft" || last.2.pre == doc_version.pre);
        if !same {
            return Err(fail(
                &version_node,
                "6.1.16",
                format!("version '{v_text}' is not the latest revision '{}'", last.1),
            ));
        }
    }
    Ok(())
}

/// Products and groups defined in the product tree.
#[derive(Debug, Default)]
struct Tree {
    /// Product id -> how to name it in a VEX statement (purl, CPE or the id).
    products: BTreeMap<String, String>,
    groups: BTreeMap<String, Vec<String>>,
}

fn valid_purl(p: &str) -> bool {
    let Some(rest) = p.strip_prefix("pkg:") else {
        return false;
    };
    let rest = rest.trim_start_matches('/');
    let rest = rest.split('#').next().unwrap_or(rest);
    let rest = rest.split('?').next().unwrap_or(rest);
    let Some((ty, path)) = rest.split_once('/') else {
        return false;
    };
    let path = path.rsplit_once('@').map_or(path, |(p, _)| p);
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    ty.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && ty
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'))
        && !name.is_empty()
}

impl Tree {
    fn collect(root: &Node<'_>) -> Checked<Tree> {
        let mut tree = Tree::default();
        let mut defined_at: HashMap<String, String> = HashMap::new();
        let mut refs: Vec<(Node<'_>, String)> = Vec::new();
        if let Some(pt) = root.opt("product_tree")? {
            for b in pt.opt_arr("branches")? {
                tree.branch(&b, &mut defined_at)?;
            }
            for f in pt.opt_arr("full_product_names")? {
                tree.full_product_name(&f, &mut defined_at)?;
            }
            let mut edges: Vec<(String, String, Node<'_>)> = Vec::new();
            for r in pt.opt_arr("relationships")? {
                r.req("category")?.one_of(&RELATIONSHIPS)?;
                let pid = tree.full_product_name(&r.req("full_product_name")?, &mut defined_at)?;
                for key in ["product_reference", "relates_to_product_reference"] {
                    let n = r.req(key)?;
                    let target = n.str()?.to_owned();
                    edges.push((pid.clone(), target.clone(), n.clone()));
                    refs.push((n, target));
                }
            }
            // 6.1.3: a relationship must not (transitively) refer to the product it defines.
            for (from, to, n) in &edges {
                let mut stack = vec![to.clone()];
                let mut visited = BTreeSet::new();
                while let Some(cur) = stack.pop() {
                    if cur == *from {
                        return Err(fail(
                            n,
                            "6.1.3",
                            format!("product '{from}' is defined in terms of itself"),
                        ));
                    }
                    if visited.insert(cur.clone()) {
                        stack.extend(edges.iter().filter(|e| e.0 == cur).map(|e| e.1.clone()));
                    }
                }
            }
            let mut group_at: HashMap<String, String> = HashMap::new();
            for g in pt.opt_arr("product_groups")? {
                let gid_node = g.req("group_id")?;
                let gid = gid_node.str()?.to_owned();
                if let Some(first) = group_at.insert(gid.clone(), gid_node.path.clone()) {
                    return Err(fail(
                        &gid_node,
                        "6.1.5",
                        format!("group '{gid}' is already defined at {first}"),
                    ));
                }
                let mut members = Vec::new();
                for p in g.req("product_ids")?.arr()? {
                    let id = p.str()?.to_owned();
                    refs.push((p, id.clone()));
                    members.push(id);
                }
                tree.groups.insert(gid, members);
            }
        }
        for v in root.opt_arr("vulnerabilities")? {
            for (key, _) in PRODUCT_STATUS {
                if let Some(ps) = v.opt("product_status")? {
                    for p in ps.opt_arr(key)? {
                        let id = p.str()?.to_owned();
                        refs.push((p, id));
                    }
                }
            }
            for s in v.opt_arr("scores")? {
                for p in s.req("products")?.arr()? {
                    let id = p.str()?.to_owned();
                    refs.push((p, id));
                }
            }
            for key in ["remediations", "flags", "threats"] {
                for r in v.opt_arr(key)? {
                    for p in r.opt_arr("product_ids")? {
                        let id = p.str()?.to_owned();
                        refs.push((p, id));
                    }
                    for g in r.opt_arr("group_ids")? {
                        let gid = g.str()?;
                        if !tree.groups.contains_key(gid) {
                            return Err(fail(&g, "6.1.4", format!("group '{gid}' is not defined")));
                        }
                    }
                }
            }
        }
        // 6.1.1: every referenced product is defined.
        for (n, id) in refs {
            if !tree.products.contains_key(&id) {
                return Err(fail(
                    &n,
                    "6.1.1",
                    format!("product '{id}' is not defined in the product tree"),
                ));
            }
        }
        Ok(tree)
    }

    fn branch(&mut self, b: &Node<'_>, defined_at: &mut HashMap<String, String>) -> Checked<()> {
        let category = b.req_str("category")?;
        let name = b.req_str("name")?;
        if category == "product_version" {
            check_version_range(&b.req("name")?, name)?;
        }
        match (b.opt("product")?, b.opt("branches")?) {
            (Some(p), None) => {
                self.full_product_name(&p, defined_at)?;
            }
            (None, Some(children)) => {
                for c in children.arr()? {
                    self.branch(&c, defined_at)?;
                }
            }
            _ => return Err(b.problem("a branch needs exactly one of 'product' or 'branches'")),
        }
        Ok(())
    }

    fn full_product_name(
        &mut self,
        f: &Node<'_>,
        defined_at: &mut HashMap<String, String>,
    ) -> Checked<String> {
        f.req_str("name")?;
        let pid_node = f.req("product_id")?;
        let pid = pid_node.str()?.to_owned();
        if let Some(first) = defined_at.insert(pid.clone(), pid_node.path.clone()) {
            return Err(fail(
                &pid_node,
                "6.1.2",
                format!("product '{pid}' is already defined at {first}"),
            ));
        }
        let mut name = pid.clone();
        if let Some(h) = f.opt("product_identification_helper")? {
            if let Some(cpe) = h.opt_str("cpe")? {
                name = cpe.to_owned();
            }
            if let Some(purl_node) = h.opt("purl")? {
                let purl = purl_node.str()?;
                if !valid_purl(purl) {
                    return Err(fail(
                        &purl_node,
                        "6.1.13",
                        format!("'{purl}' is not a valid purl"),
                    ));
                }
                name = purl.to_owned();
            }
            for fh in h.opt_arr("hashes")? {
                fh.req_str("filename")?;
                let mut algs = BTreeSet::new();
                for d in fh.req("file_hashes")?.arr()? {
                    let alg = d.req_str("algorithm")?;
                    d.req_str("value")?;
                    if !algs.insert(alg.to_owned()) {
                        return Err(fail(
                            &d,
                            "6.1.25",
                            format!("hash algorithm '{alg}' is used more than once"),
                        ));
                    }
                }
            }
        }
        self.products.insert(pid.clone(), name);
        Ok(pid)
    }

    /// Product ids named directly or through groups.
    fn covered(&self, n: &Node<'_>) -> Checked<BTreeSet<String>> {
        let mut out: BTreeSet<String> = n.opt_strs("product_ids")?.into_iter().collect();
        for g in n.opt_strs("group_ids")? {
            out.extend(self.groups.get(&g).cloned().unwrap_or_default());
        }
        Ok(out)
    }
}

/// 6.1.31: a product_version branch names one version, not a range.
fn check_version_range(n: &Node<'_>, name: &str) -> Checked<()> {
    let lower = name.to_ascii_lowercase();
    let words = [
        "after", "all", "before", "earlier", "later", "prior", "versions",
    ];
    let has_word = lower.split_whitespace().any(|w| words.contains(&w));
    if has_word || name.contains('<') || name.contains('>') {
        return Err(fail(
            n,
            "6.1.31",
            format!("'{name}' is a version range, not a version"),
        ));
    }
    Ok(())
}

/// Profile tests on the document as a whole (6.1.27.1 to 6.1.27.4, 6.1.27.11).
fn profile_document(
    root: &Node<'_>,
    doc: &Node<'_>,
    category: &str,
    vulns: &[Node<'_>],
) -> Checked<()> {
    if matches!(
        category,
        "csaf_informational_advisory" | "csaf_security_incident_response"
    ) {
        let notes = doc.opt_arr("notes")?;
        let mut ok = false;
        for n in &notes {
            ok |= matches!(
                n.req_str("category")?,
                "description" | "details" | "general" | "summary"
            );
        }
        if !ok {
            return Err(fail(
                doc,
                "6.1.27.1",
                "the document notes need a description, details, general or summary note",
            ));
        }
        let mut external = false;
        for r in doc.opt_arr("references")? {
            external |= r.opt_str("category")? == Some("external");
        }
        if !external {
            return Err(fail(
                doc,
                "6.1.27.2",
                "the document needs an external reference",
            ));
        }
    }
    if category == "csaf_informational_advisory" && root.has("vulnerabilities") {
        return Err(fail(
            root,
            "6.1.27.3",
            "an informational advisory has no vulnerabilities",
        ));
    }
    if matches!(category, "csaf_security_advisory" | "csaf_vex") && !root.has("product_tree") {
        return Err(fail(
            root,
            "6.1.27.4",
            format!("a {category} document needs 'product_tree'"),
        ));
    }
    if matches!(category, "csaf_security_advisory" | "csaf_vex") && vulns.is_empty() {
        return Err(fail(
            root,
            "6.1.27.11",
            format!("a {category} document needs 'vulnerabilities'"),
        ));
    }
    Ok(())
}

fn check_scores(v: &Node<'_>) -> Checked<Vec<Severity>> {
    let mut out = Vec::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for s in v.opt_arr("scores")? {
        let products = s.opt_strs("products")?;
        let mut any = false;
        for key in ["cvss_v2", "cvss_v3"] {
            let Some(c) = s.opt(key)? else { continue };
            any = true;
            let vector_node = c.req("vectorString").map_err(|p| tag(p, "6.1.8"))?;
            let vector_text = vector_node.str()?;
            let version = c
                .req("version")
                .map_err(|p| tag(p, "6.1.8"))?
                .str()?
                .to_owned();
            let score_node = c.req("baseScore").map_err(|p| tag(p, "6.1.8"))?;
            let score = score_node.f64()?;
            let parsed = if key == "cvss_v2" {
                Vector::parse_v2(vector_text)
            } else {
                Vector::parse_v3(vector_text)
            };
            let vector = parsed.map_err(|e| fail(&vector_node, "6.1.8", e))?;
            let allowed: &[&str] = if key == "cvss_v2" {
                &["2.0"]
            } else {
                &["3.0", "3.1"]
            };
            if !allowed.contains(&version.as_str()) {
                return Err(fail(
                    &c,
                    "6.1.8",
                    format!("'{version}' is not a valid {key} version"),
                ));
            }
            // 6.1.10: the properties agree with the vector.
            if version != vector.version {
                return Err(fail(
                    &c,
                    "6.1.10",
                    format!("version '{version}' disagrees with vector '{vector_text}'"),
                ));
            }
            for (prop, expected) in vector.properties() {
                if let Some(p) = c.opt(prop)? {
                    let got = p.str()?;
                    if got != expected {
                        return Err(fail(
                            &p,
                            "6.1.10",
                            format!("'{got}' disagrees with the vector, which says {expected}"),
                        ));
                    }
                }
            }
            // 6.1.9: the scores are computed correctly.
            let computed = vector.base_score();
            if (computed - score).abs() > 1e-9 {
                return Err(fail(
                    &score_node,
                    "6.1.9",
                    format!("base score {score} should be {computed}"),
                ));
            }
            if key == "cvss_v3" {
                let sev_node = c.req("baseSeverity").map_err(|p| tag(p, "6.1.8"))?;
                let sev = sev_node.str()?;
                if sev != cvss::severity_v3(computed) {
                    return Err(fail(
                        &sev_node,
                        "6.1.9",
                        format!(
                            "base severity {sev} should be {}",
                            cvss::severity_v3(computed)
                        ),
                    ));
                }
                if let (Some(t), Some(expected)) =
                    (c.opt("temporalScore")?, vector.temporal_score())
                {
                    let got = t.f64()?;
                    if (got - expected).abs() > 1e-9 {
                        return Err(fail(
                            &t,
                            "6.1.9",
                            format!("temporal score {got} should be {expected}"),
                        ));
                    }
                }
            }
            // 6.1.7: one score per product and CVSS version.
            for p in &products {
                if !seen.insert((p.clone(), version.clone())) {
                    return Err(fail(
                        &s,
                        "6.1.7",
                        format!("product '{p}' has more than one CVSS {version} score"),
                    ));
                }
            }
            out.push(Severity {
                kind: if key == "cvss_v2" {
                    "CVSS_V2"
                } else {
                    "CVSS_V3"
                }
                .to_owned(),
                vector_or_score: vector_text.to_owned(),
                source: None,
            });
        }
        if !any {
            return Err(s.problem("a score needs 'cvss_v2' or 'cvss_v3'"));
        }
    }
    Ok(out)
}

fn tag(p: Problem, test: &str) -> Problem {
    Problem {
        message: format!("{} (csaf {test})", p.message),
        ..p
    }
}

fn vulnerability(v: &Node<'_>, category: &str, tree: &Tree, o: &mut Observation) -> Checked<()> {
    let vex = category == "csaf_vex";
    if matches!(category, "csaf_security_advisory" | "csaf_vex") && v.opt("notes")?.is_none() {
        return Err(fail(v, "6.1.27.5", "each vulnerability needs 'notes'"));
    }
    if category == "csaf_security_advisory" && v.opt("product_status")?.is_none() {
        return Err(fail(
            v,
            "6.1.27.6",
            "each vulnerability needs 'product_status'",
        ));
    }
    if vex && v.opt("cve")?.is_none() && v.opt("ids")?.is_none() {
        return Err(fail(
            v,
            "6.1.27.8",
            "each vulnerability needs 'cve' or 'ids'",
        ));
    }
    for r in v.opt_arr("references")? {
        o.references.push(r.req_str("url")?.to_owned());
    }
    o.severities = check_scores(v)?;

    // 6.1.24: an involvement (party, date) is stated once.
    let mut involvements = BTreeSet::new();
    for i in v.opt_arr("involvements")? {
        let party = i.req_str("party")?.to_owned();
        let date = i.opt_time("date", Zone::Required)?;
        if !involvements.insert((party.clone(), date)) {
            return Err(fail(
                &i,
                "6.1.24",
                format!("involvement of '{party}' is stated twice for the same date"),
            ));
        }
    }

    // Per-product statuses (6.1.6 contradicting statuses).
    let mut status_of: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    if let Some(ps) = v.opt("product_status")? {
        let mut any_vex_list = false;
        for (key, group) in PRODUCT_STATUS {
            for p in ps.opt_arr(key)? {
                let id = p.str()?.to_owned();
                if group.is_empty() {
                    continue;
                }
                any_vex_list |= matches!(
                    key,
                    "fixed" | "known_affected" | "known_not_affected" | "under_investigation"
                );
                if let Some((_, other)) = status_of.get(&id) {
                    if *other != group {
                        return Err(fail(
                            &p,
                            "6.1.6",
                            format!("product '{id}' is both {other} and {group}"),
                        ));
                    }
                }
                status_of.insert(id, (key, group));
            }
        }
        if vex && !any_vex_list {
            return Err(fail(&ps, "6.1.27.7", "a vex vulnerability needs fixed, known_affected, known_not_affected or under_investigation"));
        }
    } else if vex {
        return Err(fail(
            v,
            "6.1.27.7",
            "a vex vulnerability needs 'product_status'",
        ));
    }

    // Remediations (6.1.29), flags (6.1.32, 6.1.33) and threats give the VEX details.
    let mut action: BTreeMap<String, String> = BTreeMap::new();
    for r in v.opt_arr("remediations")? {
        r.req_str("category")?;
        let details = r.req_str("details")?;
        let covered = tree.covered(&r)?;
        if !r.has("product_ids") && !r.has("group_ids") {
            return Err(fail(
                &r,
                "6.1.29",
                "a remediation needs 'product_ids' or 'group_ids'",
            ));
        }
        for p in covered {
            action.entry(p).or_insert_with(|| details.to_owned());
        }
    }
    let mut justification: BTreeMap<String, String> = BTreeMap::new();
    for f in v.opt_arr("flags")? {
        let label = f.req("label")?.one_of(&FLAG_LABELS)?;
        if !f.has("product_ids") && !f.has("group_ids") {
            return Err(fail(
                &f,
                "6.1.32",
                "a flag needs 'product_ids' or 'group_ids'",
            ));
        }
        for p in tree.covered(&f)? {
            if justification.insert(p.clone(), label.to_owned()).is_some() {
                return Err(fail(
                    &f,
                    "6.1.33",
                    format!("product '{p}' has more than one vex justification flag"),
                ));
            }
        }
    }
    let mut impact: BTreeMap<String, String> = BTreeMap::new();
    for t in v.opt_arr("threats")? {
        let cat = t.req_str("category")?;
        let details = t.req_str("details")?;
        if cat == "impact" {
            for p in tree.covered(&t)? {
                impact.entry(p).or_insert_with(|| details.to_owned());
            }
        }
    }
    let name = v
        .opt_str("cve")?
        .map(str::to_owned)
        .or_else(|| o.aliases.first().cloned())
        .unwrap_or_else(|| o.source_id.clone());
    for (pid, (key, group)) in &status_of {
        if vex
            && *group == "not_affected"
            && !justification.contains_key(pid)
            && !impact.contains_key(pid)
        {
            return Err(fail(
                v,
                "6.1.27.9",
                format!("known_not_affected product '{pid}' needs a flag or an impact threat"),
            ));
        }
        if vex && *key == "known_affected" && !action.contains_key(pid) {
            return Err(fail(
                v,
                "6.1.27.10",
                format!("known_affected product '{pid}' needs a remediation"),
            ));
        }
        o.vex.push(VexStatement {
            vulnerability: name.clone(),
            product: tree
                .products
                .get(pid)
                .cloned()
                .unwrap_or_else(|| pid.clone()),
            subcomponents: Vec::new(),
            status: openvex::status(group).unwrap_or(VexStatus::UnderInvestigation),
            stated_status: (*key).to_owned(),
            justification: justification.get(pid).cloned(),
            impact_statement: impact.get(pid).cloned(),
            action_statement: action.get(pid).cloned(),
        });
    }
    Ok(())
}
