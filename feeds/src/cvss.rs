//! CVSS v2 and v3.x vectors: parsing, base (and temporal) score computation and the
//! consistency checks CSAF requires (mandatory tests 6.1.8 to 6.1.10).

use std::collections::BTreeMap;

/// Metric -> (allowed values, JSON property name, full names of the values in order).
type MetricSpec = (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static [&'static str],
);

const V3_BASE: [MetricSpec; 8] = [
    (
        "AV",
        &["N", "A", "L", "P"],
        "attackVector",
        &["NETWORK", "ADJACENT_NETWORK", "LOCAL", "PHYSICAL"],
    ),
    ("AC", &["L", "H"], "attackComplexity", &["LOW", "HIGH"]),
    (
        "PR",
        &["N", "L", "H"],
        "privilegesRequired",
        &["NONE", "LOW", "HIGH"],
    ),
    ("UI", &["N", "R"], "userInteraction", &["NONE", "REQUIRED"]),
    ("S", &["U", "C"], "scope", &["UNCHANGED", "CHANGED"]),
    (
        "C",
        &["H", "L", "N"],
        "confidentialityImpact",
        &["HIGH", "LOW", "NONE"],
    ),
    (
        "I",
        &["H", "L", "N"],
        "integrityImpact",
        &["HIGH", "LOW", "NONE"],
    ),
    (
        "A",
        &["H", "L", "N"],
        "availabilityImpact",
        &["HIGH", "LOW", "NONE"],
    ),
];
const V3_TEMPORAL: [MetricSpec; 3] = [
    (
        "E",
        &["X", "U", "P", "F", "H"],
        "exploitCodeMaturity",
        &[
            "NOT_DEFINED",
            "UNPROVEN",
            "PROOF_OF_CONCEPT",
            "FUNCTIONAL",
            "HIGH",
        ],
    ),
    (
        "RL",
        &["X", "O", "T", "W", "U"],
        "remediationLevel",
        &[
            "NOT_DEFINED",
            "OFFICIAL_FIX",
            "TEMPORARY_FIX",
            "WORKAROUND",
            "UNAVAILABLE",
        ],
    ),
    (
        "RC",
        &["X", "U", "R", "C"],
        "reportConfidence",
        &["NOT_DEFINED", "UNKNOWN", "REASONABLE", "CONFIRMED"],
    ),
];
const V3_ENV: [&str; 11] = [
    "CR", "IR", "AR", "MAV", "MAC", "MPR", "MUI", "MS", "MC", "MI", "MA",
];
const V2_BASE: [MetricSpec; 6] = [
    (
        "AV",
        &["L", "A", "N"],
        "accessVector",
        &["LOCAL", "ADJACENT_NETWORK", "NETWORK"],
    ),
    (
        "AC",
        &["H", "M", "L"],
        "accessComplexity",
        &["HIGH", "MEDIUM", "LOW"],
    ),
    (
        "Au",
        &["M", "S", "N"],
        "authentication",
        &["MULTIPLE", "SINGLE", "NONE"],
    ),
    (
        "C",
        &["N", "P", "C"],
        "confidentialityImpact",
        &["NONE", "PARTIAL", "COMPLETE"],
    ),
    (
        "I",
        &["N", "P", "C"],
        "integrityImpact",
        &["NONE", "PARTIAL", "COMPLETE"],
    ),
    (
        "A",
        &["N", "P", "C"],
        "availabilityImpact",
        &["NONE", "PARTIAL", "COMPLETE"],
    ),
];
const V2_OTHER: [&str; 8] = ["E", "RL", "RC", "CDP", "TD", "CR", "IR", "AR"];

/// A parsed vector: its version (`2.0`, `3.0`, `3.1`) and metrics.
#[derive(Debug, Clone)]
pub(crate) struct Vector {
    pub(crate) version: &'static str,
    metrics: BTreeMap<String, String>,
}

fn parse_metrics(body: &str, known: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let mut metrics = BTreeMap::new();
    for part in body.split('/') {
        let (k, v) = part
            .split_once(':')
            .ok_or_else(|| format!("'{part}' is not a metric"))?;
        if !known.contains(&k) {
            return Err(format!("unknown metric '{k}'"));
        }
        if metrics.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(format!("metric '{k}' is repeated"));
        }
    }
    Ok(metrics)
}

fn check_values(
    metrics: &BTreeMap<String, String>,
    specs: &[MetricSpec],
    required: bool,
) -> Result<(), String> {
    for (k, allowed, _, _) in specs {
        match metrics.get(*k) {
            None if required => return Err(format!("missing base metric '{k}'")),
            None => {}
            Some(v) if !allowed.contains(&v.as_str()) => {
                return Err(format!("'{v}' is not a valid value of metric '{k}'"))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

impl Vector {
    pub(crate) fn parse_v3(s: &str) -> Result<Vector, String> {
        let (version, body) = if let Some(b) = s.strip_prefix("CVSS:3.1/") {
            ("3.1", b)
        } else if let Some(b) = s.strip_prefix("CVSS:3.0/") {
            ("3.0", b)
        } else {
            return Err(format!("'{s}' does not start with CVSS:3.0/ or CVSS:3.1/"));
        };
        let mut known: Vec<&str> = V3_BASE.iter().chain(&V3_TEMPORAL).map(|m| m.0).collect();
        known.extend(V3_ENV);
        let metrics = parse_metrics(body, &known)?;
        check_values(&metrics, &V3_BASE, true)?;
        check_values(&metrics, &V3_TEMPORAL, false)?;
        Ok(Vector { version, metrics })
    }

    pub(crate) fn parse_v2(s: &str) -> Result<Vector, String> {
        let body = s
            .strip_prefix('(')
            .and_then(|b| b.strip_suffix(')'))
            .unwrap_or(s);
        let mut known: Vec<&str> = V2_BASE.iter().map(|m| m.0).collect();
        known.extend(V2_OTHER);
        let metrics = parse_metrics(body, &known)?;
        check_values(&metrics, &V2_BASE, true)?;
        Ok(Vector {
            version: "2.0",
            metrics,
        })
    }

    fn m(&self, k: &str) -> &str {
        self.metrics.get(k).map_or("X", String::as_str)
    }

    fn specs(&self) -> Vec<&'static MetricSpec> {
        if self.version == "2.0" {
            V2_BASE.iter().collect()
        } else {
            V3_BASE.iter().chain(&V3_TEMPORAL).collect()
        }
    }

    /// The JSON property (`attackVector`) and full value (`NETWORK`) the vector implies, for
    /// each metric the vector sets.
    pub(crate) fn properties(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        for (k, allowed, prop, names) in self.specs() {
            if let Some(v) = self.metrics.get(*k) {
                if let Some(i) = allowed.iter().position(|a| a == v) {
                    out.push((*prop, names[i]));
                }
            }
        }
        out
    }

    /// The base score.
    pub(crate) fn base_score(&self) -> f64 {
        if self.version == "2.0" {
            return self.v2_base();
        }
        let changed = self.m("S") == "C";
        let av = match self.m("AV") {
            "N" => 0.85,
            "A" => 0.62,
            "L" => 0.55,
            _ => 0.2,
        };
        let ac = if self.m("AC") == "L" { 0.77 } else { 0.44 };
        let pr = match (self.m("PR"), changed) {
            ("N", _) => 0.85,
            ("L", false) => 0.62,
            ("L", true) => 0.68,
            (_, false) => 0.27,
            (_, true) => 0.5,
        };
        let ui = if self.m("UI") == "N" { 0.85 } else { 0.62 };
        let cia = |k: &str| match self.m(k) {
            "H" => 0.56,
            "L" => 0.22,
            _ => 0.0,
        };
        let iss = 1.0 - (1.0 - cia("C")) * (1.0 - cia("I")) * (1.0 - cia("A"));
        let impact = if changed {
            7.52 * (iss - 0.029) - 3.25 * (iss - 0.02f64).powi(15)
        } else {
            6.42 * iss
        };
        let exploitability = 8.22 * av * ac * pr * ui;
        if impact <= 0.0 {
            return 0.0;
        }
        let sum = if changed {
            1.08 * (impact + exploitability)
        } else {
            impact + exploitability
        };
        self.round_up(sum.min(10.0))
    }

    /// The temporal score, when the vector sets any temporal metric.
    pub(crate) fn temporal_score(&self) -> Option<f64> {
        if self.version == "2.0"
            || !["E", "RL", "RC"]
                .iter()
                .any(|k| self.metrics.contains_key(*k))
        {
            return None;
        }
        let e = match self.m("E") {
            "U" => 0.91,
            "P" => 0.94,
            "F" => 0.97,
            _ => 1.0,
        };
        let rl = match self.m("RL") {
            "O" => 0.95,
            "T" => 0.96,
            "W" => 0.97,
            _ => 1.0,
        };
        let rc = match self.m("RC") {
            "U" => 0.92,
            "R" => 0.96,
            _ => 1.0,
        };
        Some(self.round_up(self.base_score() * e * rl * rc))
    }

    /// CVSS 3.1 defines Roundup over integers to avoid floating-point surprises; 3.0 uses
    /// a plain ceiling to one decimal.
    fn round_up(&self, x: f64) -> f64 {
        if self.version == "3.0" {
            return (x * 10.0).ceil() / 10.0;
        }
        let int = (x * 100_000.0).round() as i64;
        if int % 10_000 == 0 {
            int as f64 / 100_000.0
        } else {
            ((int / 10_000) + 1) as f64 / 10.0
        }
    }

    fn v2_base(&self) -> f64 {
        let av = match self.m("AV") {
            "L" => 0.395,
            "A" => 0.646,
            _ => 1.0,
        };
        let ac = match self.m("AC") {
            "H" => 0.35,
            "M" => 0.61,
            _ => 0.71,
        };
        let au = match self.m("Au") {
            "M" => 0.45,
            "S" => 0.56,
            _ => 0.704,
        };
        let cia = |k: &str| match self.m(k) {
            "P" => 0.275,
            "C" => 0.660,
            _ => 0.0,
        };
        let impact = 10.41 * (1.0 - (1.0 - cia("C")) * (1.0 - cia("I")) * (1.0 - cia("A")));
        let exploitability = 20.0 * av * ac * au;
        let f: f64 = if impact == 0.0 { 0.0 } else { 1.176 };
        (((0.6 * impact) + (0.4 * exploitability) - 1.5) * f * 10.0).round() / 10.0
    }
}

/// The qualitative rating of a v3 score.
pub(crate) fn severity_v3(score: f64) -> &'static str {
    if score == 0.0 {
        "NONE"
    } else if score < 4.0 {
        "LOW"
    } else if score < 7.0 {
        "MEDIUM"
    } else if score < 9.0 {
        "HIGH"
    } else {
        "CRITICAL"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_scores() {
        let v = |s: &str| Vector::parse_v3(s).map(|v| v.base_score()).unwrap_or(-1.0);
        assert_eq!(v("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), 9.8);
        assert_eq!(v("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"), 10.0);
        assert_eq!(v("CVSS:3.1/AV:L/AC:L/PR:H/UI:R/S:U/C:H/I:H/A:H"), 6.5);
        assert_eq!(v("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:N/I:H/A:N"), 6.5);
        assert_eq!(v("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:N/I:H/A:N"), 6.8);
        let v2 = |s: &str| Vector::parse_v2(s).map(|v| v.base_score()).unwrap_or(-1.0);
        assert_eq!(v2("AV:N/AC:L/Au:N/C:C/I:C/A:C"), 10.0);
        assert_eq!(v2("AV:N/AC:M/Au:N/C:N/I:P/A:N"), 4.3);
        assert!(Vector::parse_v3("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").is_err());
        assert!(Vector::parse_v3("CVSS:3.1/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").is_err());
    }
}
