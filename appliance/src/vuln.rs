//! Knowledge: feed observations stored append-only, linked by alias into linksets, matched against
//! packages. A source's statement is never edited: a new digest of the same statement is a new revision
//! that supersedes the old one, which stays queryable.

use crate::store::{Batch, MetaStore, StoreError, Tree};
use feeds::linkset::{self, Linkset, Statement};
use feeds::Observation;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The current revision pointer of an observation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Head {
    revision: u32,
    document: String,
}

/// What an ingestion did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestCounts {
    /// New observations.
    pub new: u64,
    /// New revisions that supersede an earlier one.
    pub superseded: u64,
    /// Same statement, same document digest: skipped.
    pub unchanged: u64,
}

/// Adds observations to a batch, append-only. `pending` carries heads written earlier in the same batch.
#[derive(Debug, Default)]
pub struct Ingest {
    pending: BTreeMap<String, Head>,
    /// Counts so far.
    pub counts: IngestCounts,
}

fn upper(s: &str) -> String {
    s.to_ascii_uppercase()
}

impl Ingest {
    /// Forgets the heads written so far once their batch is applied (they are in the store now).
    pub fn applied(&mut self) {
        self.pending.clear();
    }

    /// Ingests one document's observations.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        store: &impl MetaStore,
        batch: &mut Batch,
        observations: &[Observation],
        document: &str,
        document_name: &str,
        kit: &str,
        ingested: &str,
    ) -> Result<(), StoreError> {
        for o in observations {
            let key = Statement::key_of(o);
            let head = match self.pending.get(&key) {
                Some(h) => Some(h.clone()),
                None => {
                    store.get_json::<Head>(Tree::Observations, format!("head|{key}").as_bytes())?
                }
            };
            let revision = match &head {
                Some(h) if h.document == document => {
                    self.counts.unchanged += 1;
                    continue;
                }
                Some(h) => {
                    self.counts.superseded += 1;
                    h.revision + 1
                }
                None => {
                    self.counts.new += 1;
                    1
                }
            };
            let st = Statement {
                key: key.clone(),
                revision,
                document: document.to_owned(),
                document_name: document_name.to_owned(),
                kit: kit.to_owned(),
                ingested: ingested.to_owned(),
                observation: o.clone(),
            };
            batch.put_json(Tree::Observations, format!("rev|{key}|{revision:08}"), &st);
            let h = Head {
                revision,
                document: document.to_owned(),
            };
            batch.put_json(Tree::Observations, format!("head|{key}"), &h);
            self.pending.insert(key.clone(), h);
            for id in st.ids() {
                batch.put(Tree::Aliases, format!("{id}|{key}"), Vec::new());
            }
            for a in &o.affected {
                if let Some(p) = linkset::package_key(&a.package) {
                    batch.put(Tree::Packages, format!("{p}|{key}"), Vec::new());
                }
            }
            for v in &o.vex {
                if v.product.starts_with("pkg:") {
                    batch.put(
                        Tree::Packages,
                        format!("{}|{key}", linkset::purl_base(&v.product)),
                        Vec::new(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// The current statement of an observation key.
pub fn current(store: &impl MetaStore, key: &str) -> Result<Option<Statement>, StoreError> {
    let Some(h) = store.get_json::<Head>(Tree::Observations, format!("head|{key}").as_bytes())?
    else {
        return Ok(None);
    };
    store.get_json(
        Tree::Observations,
        format!("rev|{key}|{:08}", h.revision).as_bytes(),
    )
}

/// Every revision of an observation key, oldest first.
pub fn history(store: &impl MetaStore, key: &str) -> Result<Vec<Statement>, StoreError> {
    store
        .scan(Tree::Observations, format!("rev|{key}|").as_bytes())?
        .into_iter()
        .map(|(_, v)| {
            serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                tree: "observations",
                reason: e.to_string(),
            })
        })
        .collect()
}

fn keys_for_id(store: &impl MetaStore, id: &str) -> Result<Vec<String>, StoreError> {
    let prefix = format!("{}|", upper(id));
    Ok(store
        .scan(Tree::Aliases, prefix.as_bytes())?
        .into_iter()
        .filter_map(|(k, _)| {
            String::from_utf8(k)
                .ok()
                .map(|k| k[prefix.len()..].to_owned())
        })
        .collect())
}

/// The linkset containing `id` (any alias), or `None` when nothing names it.
pub fn linkset(store: &impl MetaStore, id: &str) -> Result<Option<Linkset>, StoreError> {
    let mut seen_ids = BTreeSet::new();
    let mut seen_keys = BTreeSet::new();
    let mut queue = VecDeque::from([upper(id)]);
    let mut statements = Vec::new();
    while let Some(i) = queue.pop_front() {
        if !seen_ids.insert(i.clone()) {
            continue;
        }
        for key in keys_for_id(store, &i)? {
            if !seen_keys.insert(key.clone()) {
                continue;
            }
            if let Some(st) = current(store, &key)? {
                for other in st.ids() {
                    if !seen_ids.contains(&other) {
                        queue.push_back(other);
                    }
                }
                statements.push(st);
            }
        }
    }
    if statements.is_empty() {
        return Ok(None);
    }
    Ok(Some(linkset::build(statements)))
}

/// Superseded revisions of every statement in a linkset (for `vuln show`).
pub fn superseded(store: &impl MetaStore, ls: &Linkset) -> Result<Vec<Statement>, StoreError> {
    let mut out = Vec::new();
    for s in &ls.statements {
        out.extend(
            history(store, &s.key)?
                .into_iter()
                .filter(|h| h.revision < s.revision),
        );
    }
    Ok(out)
}

/// Current statements naming a package (purl base or `ecosystem/name`).
pub fn statements_for_package(
    store: &impl MetaStore,
    package: &str,
) -> Result<Vec<Statement>, StoreError> {
    let prefix = format!("{package}|");
    let mut out = Vec::new();
    for (k, _) in store.scan(Tree::Packages, prefix.as_bytes())? {
        let Ok(k) = String::from_utf8(k) else {
            continue;
        };
        if let Some(st) = current(store, &k[prefix.len()..])? {
            out.push(st);
        }
    }
    Ok(out)
}

/// One source in `stella feeds`.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSummary {
    /// Source name.
    pub source: String,
    /// Current observations.
    pub observations: u64,
    /// Distinct documents.
    pub documents: u64,
    /// Newest `modified` (or `published`) the source states.
    pub newest: Option<String>,
    /// The newest kit that brought data from this source.
    pub latest_kit: String,
    /// When that data was ingested.
    pub ingested: String,
    /// Days since ingestion at `now`.
    pub age_days: f64,
    /// Older than the staleness budget.
    pub stale: bool,
}

/// Per-source summary at `now`, against the staleness budget in days.
pub fn sources(
    store: &impl MetaStore,
    now: i64,
    budget_days: u64,
) -> Result<Vec<SourceSummary>, StoreError> {
    // Per source: statements, documents, newest stated time, latest kit, its ingestion time.
    type Acc = (u64, BTreeSet<String>, Option<String>, String, String);
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    for (k, v) in store.scan(Tree::Observations, b"head|")? {
        let key = String::from_utf8_lossy(&k[5..]).into_owned();
        let _ = v;
        let Some(st) = current(store, &key)? else {
            continue;
        };
        let e = by
            .entry(st.observation.source.clone())
            .or_insert_with(|| (0, BTreeSet::new(), None, String::new(), String::new()));
        e.0 += 1;
        e.1.insert(st.document.clone());
        // The newest time the source states, modified or published (some sources leave one zeroed).
        let t = st
            .observation
            .modified
            .clone()
            .max(st.observation.published.clone());
        if t > e.2 {
            e.2 = t;
        }
        if st.ingested > e.4 {
            e.4 = st.ingested.clone();
            e.3 = st.kit.clone();
        }
    }
    Ok(by
        .into_iter()
        .map(|(source, (n, docs, newest, kit, ingested))| {
            let at = ingested
                .parse::<kit_builder::clock::Timestamp>()
                .map(|t| t.0)
                .unwrap_or(now);
            let age_days = (now - at) as f64 / 86_400.0;
            SourceSummary {
                source,
                observations: n,
                documents: docs.len() as u64,
                newest,
                latest_kit: kit,
                ingested,
                age_days,
                stale: age_days > budget_days as f64,
            }
        })
        .collect())
}

/// A range's events as text: `introduced 1.0, fixed 1.2`.
pub fn events_text(events: &[feeds::RangeEvent]) -> String {
    events
        .iter()
        .map(|e| match e {
            feeds::RangeEvent::Introduced(v) => format!("introduced {v}"),
            feeds::RangeEvent::IntroducedAfter(v) => format!("introduced after {v}"),
            feeds::RangeEvent::Fixed(v) => format!("fixed {v}"),
            feeds::RangeEvent::LastAffected(v) => format!("last affected {v}"),
            feeds::RangeEvent::Below(v) => format!("below {v}"),
            feeds::RangeEvent::Limit(v) => format!("limit {v}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plain-text rendering of a linkset with its superseded history.
pub fn render_linkset(ls: &Linkset, old: &[Statement]) -> String {
    let mut out = format!("{}  (ids: {})\n", ls.id, ls.ids.join(", "));
    out.push_str(&format!(
        "statements: {} from {} source(s)\n",
        ls.statements.len(),
        ls.statements
            .iter()
            .map(|s| &s.observation.source)
            .collect::<BTreeSet<_>>()
            .len()
    ));
    for s in &ls.statements {
        let o = &s.observation;
        out.push_str(&format!(
            "  [{}] revision {} from kit {} ({} {}){}\n",
            s.key,
            s.revision,
            s.kit,
            s.document_name,
            s.document,
            o.modified
                .as_ref()
                .map(|m| format!(", modified {m}"))
                .unwrap_or_default()
        ));
        if let Some(w) = &o.withdrawn {
            out.push_str(&format!("      WITHDRAWN {w}\n"));
        }
        for a in &o.affected {
            let pkg = linkset::package_key(&a.package)
                .unwrap_or_else(|| a.package.cpe.clone().unwrap_or_default());
            let ranges: Vec<String> = a
                .ranges
                .iter()
                .map(|r| format!("{}: {}", r.scheme, events_text(&r.events)))
                .collect();
            out.push_str(&format!("      affected {pkg}: {}", ranges.join("; ")));
            if !a.versions.is_empty() {
                out.push_str(&format!(" versions [{}]", a.versions.len()));
            }
            if !a.fixed.is_empty() {
                out.push_str(&format!(" fixed [{}]", a.fixed.join(", ")));
            }
            if let Some(st) = &a.status {
                out.push_str(&format!(" status {st}"));
            }
            out.push('\n');
        }
        for v in &o.vex {
            out.push_str(&format!(
                "      vex {} {}{}\n",
                v.product,
                v.stated_status,
                v.justification
                    .as_ref()
                    .map(|j| format!(" ({j})"))
                    .unwrap_or_default()
            ));
        }
        for sev in &o.severities {
            out.push_str(&format!(
                "      severity {} {}\n",
                sev.kind, sev.vector_or_score
            ));
        }
        if let Some(k) = &o.kev {
            out.push_str(&format!(
                "      KEV: added {}, due {}\n",
                k.date_added, k.due_date
            ));
        }
        if let Some(e) = &o.epss {
            out.push_str(&format!(
                "      EPSS: {:.4} (percentile {:.4})\n",
                e.score, e.percentile
            ));
        }
    }
    if ls.conflicts.is_empty() {
        out.push_str("conflicts: none\n");
    } else {
        out.push_str(&format!("conflicts: {}\n", ls.conflicts.len()));
        for c in &ls.conflicts {
            let kind = serde_json::to_value(c.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let claims: Vec<String> = c
                .claims
                .iter()
                .map(|(k, v)| format!("{k} says {v}"))
                .collect();
            out.push_str(&format!(
                "  {kind} {}: {}\n",
                c.subject.as_deref().unwrap_or(""),
                claims.join("; ")
            ));
        }
    }
    if !old.is_empty() {
        out.push_str("superseded:\n");
        for s in old {
            out.push_str(&format!(
                "  [{}] revision {} from kit {} ({})\n",
                s.key, s.revision, s.kit, s.document
            ));
        }
    }
    out
}

/// One source's verdict inside a match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SourceVerdict {
    /// Statement key.
    pub statement: String,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: feeds::matching::Verdict,
}

/// A linkset that says a package version is affected, with every source's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Match {
    /// Linkset id (CVE when there is one).
    pub id: String,
    /// Every id in the linkset.
    pub ids: Vec<String>,
    /// Each source that names the package, and what it says.
    pub verdicts: Vec<SourceVerdict>,
    /// Conflicts in the linkset.
    pub conflicts: Vec<linkset::Conflict>,
    /// Highest CVSS base score any source states.
    pub cvss: Option<f64>,
    /// Listed in CISA KEV.
    pub kev: bool,
    /// Highest EPSS score stated.
    pub epss: Option<f64>,
}

/// The linksets whose statements say `purl` (with a version) is affected.
pub fn affects(
    store: &impl MetaStore,
    purl: &feeds::matching::Purl,
) -> Result<Vec<Match>, StoreError> {
    let mut candidates: BTreeMap<String, Statement> = BTreeMap::new();
    for key in feeds::matching::lookup_keys(purl) {
        for st in statements_for_package(store, &key)? {
            candidates.entry(st.key.clone()).or_insert(st);
        }
    }
    let judged: Vec<(&Statement, feeds::matching::Verdict)> = candidates
        .values()
        .filter_map(|st| feeds::matching::judge(&st.observation, purl).map(|v| (st, v)))
        .collect();
    let mut by_linkset: BTreeMap<String, Match> = BTreeMap::new();
    // Linksets are computed only around statements that say "affected", once each; statements with other
    // verdicts join the linksets they belong to.
    let mut linkset_of: BTreeMap<String, String> = BTreeMap::new();
    for (st, verdict) in &judged {
        if !matches!(verdict, feeds::matching::Verdict::Affected { .. })
            || linkset_of.contains_key(&st.key)
        {
            continue;
        }
        let Some(ls) = linkset(store, &st.observation.source_id)? else {
            continue;
        };
        for member in &ls.statements {
            linkset_of.insert(member.key.clone(), ls.id.clone());
        }
        by_linkset.insert(
            ls.id.clone(),
            Match {
                id: ls.id.clone(),
                ids: ls.ids.clone(),
                verdicts: Vec::new(),
                cvss: linkset::max_cvss(&ls),
                kev: linkset::in_kev(&ls),
                epss: linkset::epss(&ls),
                conflicts: ls.conflicts,
            },
        );
    }
    for (st, verdict) in judged {
        if let Some(m) = linkset_of
            .get(&st.key)
            .and_then(|id| by_linkset.get_mut(id))
        {
            m.verdicts.push(SourceVerdict {
                statement: st.key.clone(),
                verdict,
            });
        }
    }
    Ok(by_linkset
        .into_values()
        .filter(|m| {
            m.verdicts
                .iter()
                .any(|v| matches!(v.verdict, feeds::matching::Verdict::Affected { .. }))
        })
        .collect())
}

/// Plain text for `stella vuln affects`.
pub fn render_matches(purl: &str, matches: &[Match]) -> String {
    use feeds::matching::Verdict;
    if matches.is_empty() {
        return format!("{purl}: no source says it is affected\n");
    }
    let mut out = format!(
        "{purl}: {} vulnerabilit{} where a source says it is affected\n",
        matches.len(),
        if matches.len() == 1 { "y" } else { "ies" }
    );
    for m in matches {
        out.push_str(&format!("{}  ({})\n", m.id, m.ids.join(", ")));
        for v in &m.verdicts {
            let line = match &v.verdict {
                Verdict::Affected { fixed, because } => format!(
                    "affected: {because}{}",
                    if fixed.is_empty() {
                        "; no fix stated".to_owned()
                    } else {
                        format!("; fixed in {}", fixed.join(", "))
                    }
                ),
                Verdict::NotAffected { because } => format!("not affected: {because}"),
                Verdict::Unknown { because } => format!("unknown: {because}"),
            };
            out.push_str(&format!("  [{}] {line}\n", v.statement));
        }
        for c in &m.conflicts {
            let kind = serde_json::to_value(c.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push_str(&format!(
                "  conflict {kind} {}\n",
                c.subject.as_deref().unwrap_or("")
            ));
        }
    }
    out
}
