//! Packagist (Composer) versions, ordered by PHP's `version_compare` after Composer strips a
//! leading `v`.
//!
//! The version is canonicalised by turning `-`, `_` and `+` into `.` and inserting a `.`
//! wherever digits and non-digits meet, then split at the dots. Parts compare pairwise:
//! numbers numerically; words by their special form, matched by prefix,
//! `(unknown) < dev < alpha = a < beta = b < RC = rc < # < pl = p`; a number against a word
//! as `#` against the word. When one version has parts left, a number there makes it newer;
//! otherwise its remaining parts are compared against a lone `#` (so `1.0 > 1.0rc1` and
//! `1.0 < 1.0pl1`).

use std::cmp::Ordering;

use super::{check_text, cmp_digits};

#[derive(Debug, Clone)]
pub(super) struct PackagistVersion {
    parts: Vec<String>,
}

impl PackagistVersion {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        check_text(s)?;
        let s = s
            .strip_prefix('v')
            .or_else(|| s.strip_prefix('V'))
            .unwrap_or(s);
        let mut canonical = String::with_capacity(s.len() * 2);
        let mut previous: Option<char> = None;
        for c in s.chars() {
            let c = if matches!(c, '-' | '_' | '+') { '.' } else { c };
            if let Some(p) = previous {
                let boundary = p != '.' && c != '.' && (p.is_ascii_digit() != c.is_ascii_digit());
                if boundary {
                    canonical.push('.');
                }
            }
            canonical.push(c);
            previous = Some(c);
        }
        let parts: Vec<String> = canonical
            .split('.')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if parts.is_empty() {
            return Err("no version parts".to_owned());
        }
        Ok(PackagistVersion { parts })
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The order of a special form; unknown words rank below `dev`.
fn special(s: &str) -> i8 {
    const FORMS: [(&str, i8); 10] = [
        ("dev", 0),
        ("alpha", 1),
        ("a", 1),
        ("beta", 2),
        ("b", 2),
        ("RC", 3),
        ("rc", 3),
        ("#", 4),
        ("pl", 5),
        ("p", 5),
    ];
    FORMS
        .iter()
        .find(|(form, _)| s.starts_with(form))
        .map_or(-1, |(_, order)| *order)
}

fn cmp_parts(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (is_number(x), is_number(y)) {
            (true, true) => cmp_digits(x, y),
            (false, false) => special(x).cmp(&special(y)),
            (true, false) => special("#").cmp(&special(y)),
            (false, true) => special(x).cmp(&special("#")),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    let hash = ["#".to_owned()];
    match a.len().cmp(&b.len()) {
        Ordering::Equal => Ordering::Equal,
        Ordering::Greater if is_number(&a[b.len()]) => Ordering::Greater,
        Ordering::Greater => cmp_parts(&a[b.len()..], &hash),
        Ordering::Less if is_number(&b[a.len()]) => Ordering::Less,
        Ordering::Less => cmp_parts(&hash, &b[a.len()..]),
    }
}

impl Ord for PackagistVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_parts(&self.parts, &other.parts)
    }
}

impl PartialOrd for PackagistVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PackagistVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PackagistVersion {}
