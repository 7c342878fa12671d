//! NuGet package versions: SemVer 2.0.0 with up to four numbers and case-insensitive labels.
//!
//! `Major[.Minor[.Patch[.Revision]]][-Prerelease][+Metadata]`: missing numbers are 0 (so
//! `1.0` equals `1.0.0.0`), leading zeros are allowed (`1.01` equals `1.1`), pre-release
//! labels compare as in SemVer except that alphanumeric labels ignore ASCII case, and the
//! metadata is ignored.

use std::cmp::Ordering;

use super::check_text;
use super::semver::{cmp_numbers, cmp_prerelease};

#[derive(Debug, Clone)]
pub(super) struct NuGetVersion {
    numbers: Vec<String>,
    pre: Vec<String>,
}

fn check_labels(part: &str, what: &str) -> Result<(), String> {
    for label in part.split('.') {
        if label.is_empty() {
            return Err(format!("empty {what} label"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!("invalid character {c:?} in {what}"));
        }
    }
    Ok(())
}

impl NuGetVersion {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        check_text(s)?;
        let (s, metadata) = match s.split_once('+') {
            Some((s, metadata)) => (s, Some(metadata)),
            None => (s, None),
        };
        if let Some(metadata) = metadata {
            check_labels(metadata, "metadata")?;
        }
        let (numbers, pre) = match s.split_once('-') {
            Some((numbers, pre)) => (numbers, Some(pre)),
            None => (s, None),
        };
        let numbers: Vec<String> = numbers.split('.').map(str::to_owned).collect();
        if numbers.len() > 4 {
            return Err("more than four version numbers".to_owned());
        }
        if let Some(n) = numbers
            .iter()
            .find(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("'{n}' is not a version number"));
        }
        let pre = match pre {
            Some(pre) => {
                check_labels(pre, "pre-release")?;
                pre.split('.').map(str::to_owned).collect()
            }
            None => Vec::new(),
        };
        Ok(NuGetVersion { numbers, pre })
    }
}

impl Ord for NuGetVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_numbers(&self.numbers, &other.numbers)
            .then_with(|| cmp_prerelease(&self.pre, &other.pre, true))
    }
}

impl PartialOrd for NuGetVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for NuGetVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for NuGetVersion {}
