//! Advisory and VEX feed parsing.
//!
//! [`parse`] recognises a document's format ([`detect`]), validates it and normalises every
//! statement it makes into [`Observation`]s. An observation is a source's claim exactly as
//! written: versions, ranges and statuses are copied, never corrected or merged with what
//! another source says (DESIGN.md §4, "aggregation, not merge"). A document that does not
//! validate is refused as a whole with a [`FeedError`] naming the document and the JSON path
//! (or line) of the first problem found.
//!
//! Supported formats are listed in [`FeedFormat`].

mod csaf;
mod cvss;
mod cyclonedx;
mod debian;
mod detect;
mod epss;
mod kev;
pub mod linkset;
pub mod matching;
mod node;
mod nvd;
mod openvex;
mod osv;
mod secdb;
mod time;
pub mod version;

use serde::{Deserialize, Serialize};

pub use detect::detect;

/// A feed format this crate can parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FeedFormat {
    /// OSV records (JSON or YAML), including GHSA, Go vulndb and PyPA advisories in OSV form.
    Osv,
    /// CVE JSON 5.x records as published in the CVE list.
    NvdCve5,
    /// NVD API 2.0 CVE responses (`"format": "NVD_CVE"`).
    NvdApi2,
    /// CSAF 2.0 documents, security advisories and the VEX profile alike.
    Csaf,
    /// OpenVEX documents (v0.0.1 and v0.2.0).
    OpenVex,
    /// CycloneDX JSON BOMs (1.4 to 1.6); their `vulnerabilities` become observations.
    CycloneDx,
    /// The Debian security tracker JSON (`package -> CVE -> releases`).
    DebianTracker,
    /// Alpine, Wolfi, Chainguard and similar `secfixes` databases (JSON or YAML).
    AlpineSecdb,
    /// The CISA Known Exploited Vulnerabilities catalog, or one of its entries.
    CisaKev,
    /// FIRST EPSS scores as CSV.
    EpssCsv,
}

impl FeedFormat {
    /// Stable kebab-case name, as used in error messages and serialised documents.
    pub fn name(self) -> &'static str {
        match self {
            FeedFormat::Osv => "osv",
            FeedFormat::NvdCve5 => "nvd-cve5",
            FeedFormat::NvdApi2 => "nvd-api2",
            FeedFormat::Csaf => "csaf",
            FeedFormat::OpenVex => "openvex",
            FeedFormat::CycloneDx => "cyclonedx",
            FeedFormat::DebianTracker => "debian-tracker",
            FeedFormat::AlpineSecdb => "alpine-secdb",
            FeedFormat::CisaKev => "cisa-kev",
            FeedFormat::EpssCsv => "epss-csv",
        }
    }
}

impl std::fmt::Display for FeedFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a document was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The content matches none of the supported formats.
    #[error("{name}: not a recognised advisory or VEX format ({reason})")]
    UnknownFormat {
        /// Name of the document, as given by the caller.
        name: String,
        /// What was seen instead.
        reason: String,
    },
    /// The bytes are not well-formed JSON, YAML or CSV.
    #[error("{name}: {syntax}: line {line}: {message}")]
    Syntax {
        /// Name of the document, as given by the caller.
        name: String,
        /// `json`, `yaml` or `csv`.
        syntax: &'static str,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// The parser's description of the problem.
        message: String,
    },
    /// The document is well-formed but breaks a rule of its format.
    #[error("{name}: {format}: {}", located(.path, .message))]
    Invalid {
        /// Name of the document, as given by the caller.
        name: String,
        /// The detected format.
        format: FeedFormat,
        /// JSON pointer (`/document/tracking/status`) or `line N` of the problem; empty for the root.
        path: String,
        /// What is wrong, in lowercase.
        message: String,
    },
}

impl FeedError {
    /// Stable kebab-case code for scripts: `unknown-format`, `syntax` or `invalid`.
    pub fn code(&self) -> &'static str {
        match self {
            FeedError::UnknownFormat { .. } => "unknown-format",
            FeedError::Syntax { .. } => "syntax",
            FeedError::Invalid { .. } => "invalid",
        }
    }
}

fn located(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

/// A parsed document: its format and every statement it makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The detected format.
    pub format: FeedFormat,
    /// One entry per statement (a KEV catalog or a secdb holds many), sorted by
    /// `(source, source_id)` where the document gives the order no meaning.
    pub observations: Vec<Observation>,
}

/// One source's statement about one vulnerability, as written by the source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Who makes the claim, e.g. `osv:GHSA`, `nvd`, `csaf:redhat.com`, `openvex:<author>`,
    /// `debian`, `alpine-secdb:v3.15`, `cisa-kev`, `epss`.
    pub source: String,
    /// The document's or record's id (`GHSA-...`, `CVE-...`, `RHSA-...`).
    pub source_id: String,
    /// Publication time, as given (RFC 3339, or the source's own date form for NVD and KEV).
    pub published: Option<String>,
    /// Last modification time, as given.
    pub modified: Option<String>,
    /// Withdrawal time (OSV) or rejection (CVE) when the source retracted the record.
    pub withdrawn: Option<String>,
    /// Other ids the source states for the same vulnerability (CVE, GHSA, DSA...), sorted and
    /// deduplicated; never contains `source_id` itself.
    pub aliases: Vec<String>,
    /// Packages the source names, with ranges and versions as stated.
    pub affected: Vec<Affected>,
    /// Severity ratings, in the source's order.
    pub severities: Vec<Severity>,
    /// VEX statements (OpenVEX, CycloneDX analysis, CSAF product status).
    pub vex: Vec<VexStatement>,
    /// Reference URLs, sorted and deduplicated.
    pub references: Vec<String>,
    /// The KEV catalog entry, for `cisa-kev` observations.
    pub kev: Option<KevEntry>,
    /// The EPSS score, for `epss` observations.
    pub epss: Option<EpssScore>,
}

/// A package named by a source as affected (or fixed) by the vulnerability.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Affected {
    /// The package, as the source names it.
    pub package: PackageRef,
    /// Version ranges, as stated.
    pub ranges: Vec<VersionRange>,
    /// Enumerated affected versions, as stated.
    pub versions: Vec<String>,
    /// Fixed versions the source states (from ranges or its own fix fields).
    pub fixed: Vec<String>,
    /// A distribution's own status word (Debian `resolved`/`open`, CVE `affected`), as stated.
    pub status: Option<String>,
}

/// How a source names a package: a purl, an ecosystem and name, or a CPE.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageRef {
    /// Package URL when the source gives one (or when it is built from an unambiguous
    /// distribution and package name, as for Debian and Alpine).
    pub purl: Option<String>,
    /// The source's ecosystem (`Go`, `PyPI`, `npm`, a CVE vendor...).
    pub ecosystem: Option<String>,
    /// The package or product name in that ecosystem.
    pub name: Option<String>,
    /// A CPE 2.3 name, when that is how the source names the product.
    pub cpe: Option<String>,
}

/// A range of versions in one version scheme.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VersionRange {
    /// The scheme as the source names it: OSV `SEMVER`/`ECOSYSTEM`/`GIT`, a CVE `versionType`,
    /// or `cpe` for NVD configuration matches.
    pub scheme: String,
    /// Repository for `GIT` ranges.
    pub repo: Option<String>,
    /// Events in the source's order.
    pub events: Vec<RangeEvent>,
}

/// One bound of a version range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeEvent {
    /// Affected from this version on (inclusive).
    Introduced(String),
    /// Affected from just after this version (exclusive lower bound, NVD `versionStartExcluding`).
    IntroducedAfter(String),
    /// Fixed in this version (exclusive upper bound).
    Fixed(String),
    /// Last affected version (inclusive upper bound).
    LastAffected(String),
    /// Affected below this version (exclusive upper bound) without a claim that it is a fix:
    /// NVD `versionEndExcluding`, CVE 5 `lessThan`.
    Below(String),
    /// OSV `limit`: no statement about versions from here on.
    Limit(String),
}

/// A severity rating as the source states it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Severity {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`, or the source's own word for a rating.
    pub kind: String,
    /// The vector string, or the score or label when there is no vector.
    pub vector_or_score: String,
    /// Who rated, when the source says (`nvd@nist.gov`, `NVD`, a CNA).
    pub source: Option<String>,
}

/// What a VEX statement says about a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    /// The product is not affected.
    NotAffected,
    /// The product is affected.
    Affected,
    /// The product contains a fix.
    Fixed,
    /// The vendor is investigating.
    UnderInvestigation,
}

/// One VEX claim: a vulnerability, a product and a status.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VexStatement {
    /// The vulnerability id as stated (`CVE-...`), or its URI when it has no name.
    pub vulnerability: String,
    /// The product: a purl when given, else a CPE, else the document's product id.
    pub product: String,
    /// Subcomponents the statement is scoped to (OpenVEX), sorted.
    pub subcomponents: Vec<String>,
    /// The status mapped onto the four VEX statuses.
    pub status: VexStatus,
    /// The status word exactly as written (`known_not_affected`, `resolved`, `not_affected`).
    pub stated_status: String,
    /// Justification code, as written.
    pub justification: Option<String>,
    /// Free-text impact statement.
    pub impact_statement: Option<String>,
    /// Free-text action statement (remediation advice).
    pub action_statement: Option<String>,
}

/// A CISA KEV catalog entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KevEntry {
    /// `vendorProject`.
    pub vendor_project: String,
    /// `product`.
    pub product: String,
    /// `dateAdded` (YYYY-MM-DD).
    pub date_added: String,
    /// `dueDate` (YYYY-MM-DD).
    pub due_date: String,
    /// `requiredAction`.
    pub required_action: String,
    /// `knownRansomwareCampaignUse` (`Known` / `Unknown`).
    pub known_ransomware_campaign_use: Option<String>,
    /// `cwes`, sorted.
    pub cwes: Vec<String>,
}

/// An EPSS score for one CVE.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpssScore {
    /// Probability of exploitation in the next 30 days, 0..=1.
    pub score: f64,
    /// Percentile of the score among all scored CVEs, 0..=1.
    pub percentile: f64,
    /// `model_version` from the CSV's comment line, when present.
    pub model_version: Option<String>,
    /// `score_date` from the CSV's comment line, when present.
    pub score_date: Option<String>,
}

/// Detects the format of `bytes`, validates the document and returns its observations.
///
/// `name` is used in error messages and, for CSV and YAML, its extension helps detection.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Document, FeedError> {
    let input = detect::Input::read(name, bytes)?;
    let format = detect::detect_input(name, &input)?;
    let invalid = |p: node::Problem| FeedError::Invalid {
        name: name.to_owned(),
        format,
        path: p.path,
        message: p.message,
    };
    let mut observations = match (&input, format) {
        (detect::Input::Csv(text), FeedFormat::EpssCsv) => epss::parse(text).map_err(invalid)?,
        (detect::Input::Tree(value), _) => {
            let root = node::Node::root(value);
            match format {
                FeedFormat::Osv => osv::parse(root),
                FeedFormat::NvdCve5 => nvd::parse_cve5(root),
                FeedFormat::NvdApi2 => nvd::parse_api2(root),
                FeedFormat::Csaf => csaf::parse(root),
                FeedFormat::OpenVex => openvex::parse(root),
                FeedFormat::CycloneDx => cyclonedx::parse(root),
                FeedFormat::DebianTracker => debian::parse(root),
                FeedFormat::AlpineSecdb => secdb::parse(root),
                FeedFormat::CisaKev => kev::parse(root),
                FeedFormat::EpssCsv => Err(root.problem("epss scores must be csv")),
            }
            .map_err(invalid)?
        }
        (detect::Input::Csv(_), _) => {
            return Err(FeedError::UnknownFormat {
                name: name.to_owned(),
                reason: "csv that is not an epss score file".to_owned(),
            })
        }
    };
    for o in &mut observations {
        o.normalise();
    }
    Ok(Document {
        format,
        observations,
    })
}

impl Observation {
    fn new(source: impl Into<String>, source_id: impl Into<String>) -> Self {
        Observation {
            source: source.into(),
            source_id: source_id.into(),
            ..Observation::default()
        }
    }

    /// Sorts and deduplicates the vectors whose order carries no meaning.
    fn normalise(&mut self) {
        let id = self.source_id.clone();
        self.aliases.retain(|a| *a != id && !a.is_empty());
        sort_dedup(&mut self.aliases);
        sort_dedup(&mut self.references);
        for a in &mut self.affected {
            sort_dedup(&mut a.fixed);
        }
        self.affected.sort();
        self.affected.dedup();
        self.vex.sort();
        self.vex.dedup();
    }
}

fn sort_dedup(v: &mut Vec<String>) {
    v.sort();
    v.dedup();
}
