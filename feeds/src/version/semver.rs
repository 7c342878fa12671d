//! SemVer 2.0.0 precedence, shared by npm, crates.io and Go modules.
//!
//! `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`, compared by SemVer §11: the numbers numerically,
//! a version with a pre-release below the same version without, pre-release identifiers one
//! by one (numeric ones numerically and below alphanumeric ones, alphanumeric ones in ASCII
//! order, a shorter list below a longer one it prefixes), build metadata ignored.
//!
//! Reading is deliberately tolerant of what real advisories contain: a leading `v` (Go
//! writes it always), fewer than three numbers (missing ones are 0) or more than three
//! (compared in turn), leading zeros and numbers of any size. Go's `+incompatible` is build
//! metadata, and pseudo-versions (`v0.0.0-20210101000000-abcdef123456`) are pre-releases, so
//! both order as the Go toolchain orders them.

use std::cmp::Ordering;

use super::{check_text, cmp_digits};

#[derive(Debug, Clone)]
pub(super) struct SemverVersion {
    release: Vec<String>,
    pre: Vec<String>,
}

fn check_identifiers(part: &str, what: &str) -> Result<(), String> {
    for id in part.split('.') {
        if id.is_empty() {
            return Err(format!("empty {what} identifier"));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!("invalid character {c:?} in {what}"));
        }
    }
    Ok(())
}

impl SemverVersion {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        check_text(s)?;
        let s = s.strip_prefix('v').unwrap_or(s);
        let (s, build) = match s.split_once('+') {
            Some((s, build)) => (s, Some(build)),
            None => (s, None),
        };
        if let Some(build) = build {
            check_identifiers(build, "build metadata")?;
        }
        let (release, pre) = match s.split_once('-') {
            Some((release, pre)) => (release, Some(pre)),
            None => (s, None),
        };
        if release.is_empty() {
            return Err("no version numbers".to_owned());
        }
        let release = release
            .split('.')
            .map(|n| {
                if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(n.to_owned())
                } else {
                    Err(format!("'{n}' is not a version number"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pre = match pre {
            Some(pre) => {
                check_identifiers(pre, "pre-release")?;
                pre.split('.').map(str::to_owned).collect()
            }
            None => Vec::new(),
        };
        Ok(SemverVersion { release, pre })
    }
}

/// Compares dot-separated numbers, the shorter list padded with zeros.
pub(super) fn cmp_numbers(a: &[String], b: &[String]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).map_or("0", String::as_str);
        let y = b.get(i).map_or("0", String::as_str);
        match cmp_digits(x, y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

/// Compares pre-release identifier lists by SemVer §11.4; alphanumeric identifiers compare
/// in ASCII order, ignoring ASCII case when `ignore_case` (NuGet) is set.
pub(super) fn cmp_prerelease(a: &[String], b: &[String], ignore_case: bool) -> Ordering {
    // No pre-release outranks any pre-release.
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    for (x, y) in a.iter().zip(b) {
        let xn = x.bytes().all(|c| c.is_ascii_digit());
        let yn = y.bytes().all(|c| c.is_ascii_digit());
        let order = match (xn, yn) {
            (true, true) => cmp_digits(x, y),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) if ignore_case => x
                .bytes()
                .map(|c| c.to_ascii_lowercase())
                .cmp(y.bytes().map(|c| c.to_ascii_lowercase())),
            (false, false) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

impl Ord for SemverVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_numbers(&self.release, &other.release)
            .then_with(|| cmp_prerelease(&self.pre, &other.pre, false))
    }
}

impl PartialOrd for SemverVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SemverVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SemverVersion {}
