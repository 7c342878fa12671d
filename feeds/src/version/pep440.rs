//! Python package versions, PEP 440.
//!
//! `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, read with the spec's normalisations:
//! case-insensitive, an optional leading `v`, surrounding whitespace ignored, `-`, `_` or `.`
//! (or nothing) between the parts, `alpha`/`beta`/`c`/`pre`/`preview` for `a`/`b`/`rc`/`rc`/
//! `rc`, `rev`/`r` and the bare `-N` for post-releases, and an implicit 0 after a label.
//! Ordering is the spec's: epoch, release (trailing zeros ignored), then a dev release of a
//! final release sorts before its pre-releases, pre-releases before the final release, post
//! releases after it and dev releases before the release they lead to; local labels sort
//! after the same public version, segment by segment (numbers above words).
//!
//! Versions that are not PEP 440 (`0.9-doduo`, `2013-01-21T20:33:09+0100`) were accepted by
//! setuptools as "legacy" versions and are still found on PyPI; they are read the way
//! setuptools read them and sort before every PEP 440 version.

use std::cmp::Ordering;

use super::{cmp_digits, take_digits};

#[derive(Debug, Clone, PartialEq, Eq)]
enum LocalSegment {
    Word(String),
    Number(String),
}

#[derive(Debug, Clone)]
pub(super) struct Release {
    epoch: String,
    release: Vec<String>,
    /// Label (0 a, 1 b, 2 rc) and number.
    pre: Option<(u8, String)>,
    post: Option<String>,
    dev: Option<String>,
    local: Option<Vec<LocalSegment>>,
}

#[derive(Debug, Clone)]
pub(super) enum Pep440Version {
    /// A pre-PEP 440 version, as setuptools' legacy comparison key.
    Legacy(Vec<String>),
    Pep440(Release),
}

impl Pep440Version {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err("empty version".to_owned());
        }
        if let Some(c) = trimmed.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!("contains {c:?}"));
        }
        let lower = trimmed.to_ascii_lowercase();
        Ok(match parse_pep440(&lower) {
            Some(release) => Pep440Version::Pep440(release),
            None => Pep440Version::Legacy(legacy_key(&lower)),
        })
    }
}

/// Consumes one optional separator (`-`, `_` or `.`).
fn sep(s: &str) -> &str {
    s.strip_prefix(['-', '_', '.']).unwrap_or(s)
}

/// Reads `[sep]word[sep][digits]` for the first of `words` that matches; the number
/// defaults to 0. Returns the index of the word, the number and the rest.
fn labelled<'a>(s: &'a str, words: &[&str]) -> Option<(usize, String, &'a str)> {
    let t = sep(s);
    let (index, rest) = words
        .iter()
        .enumerate()
        .find_map(|(i, w)| t.strip_prefix(w).map(|rest| (i, rest)))?;
    let after_sep = sep(rest);
    let (digits, after) = take_digits(after_sep);
    if digits.is_empty() {
        Some((index, "0".to_owned(), rest))
    } else {
        Some((index, digits.to_owned(), after))
    }
}

fn parse_pep440(s: &str) -> Option<Release> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let (s, local) = match s.split_once('+') {
        Some((s, local)) => (s, Some(local)),
        None => (s, None),
    };
    // Epoch.
    let (digits, rest) = take_digits(s);
    let (epoch, mut rest) = match rest.strip_prefix('!') {
        Some(rest) if !digits.is_empty() => (digits.to_owned(), rest),
        _ => ("0".to_owned(), s),
    };
    // Release.
    let mut release = Vec::new();
    loop {
        let (digits, after) = take_digits(rest);
        if digits.is_empty() {
            return None;
        }
        release.push(digits.to_owned());
        rest = after;
        match rest.strip_prefix('.') {
            Some(after) if after.starts_with(|c: char| c.is_ascii_digit()) => rest = after,
            _ => break,
        }
    }
    // Pre-release: longer spellings first so `alpha` is not read as `a` + `lpha`.
    let mut pre = None;
    const PRE: [(&str, u8); 8] = [
        ("alpha", 0),
        ("a", 0),
        ("beta", 1),
        ("b", 1),
        ("preview", 2),
        ("pre", 2),
        ("rc", 2),
        ("c", 2),
    ];
    let words = PRE.map(|(w, _)| w);
    if let Some((i, n, after)) = labelled(rest, &words) {
        pre = Some((PRE[i].1, n));
        rest = after;
    }
    // Post-release: `-N`, or a spelled label.
    let mut post = None;
    if let Some(after) = rest.strip_prefix('-') {
        let (digits, after) = take_digits(after);
        if !digits.is_empty() {
            post = Some(digits.to_owned());
            rest = after;
        }
    }
    if post.is_none() {
        if let Some((_, n, after)) = labelled(rest, &["post", "rev", "r"]) {
            post = Some(n);
            rest = after;
        }
    }
    // Development release.
    let mut dev = None;
    if let Some((_, n, after)) = labelled(rest, &["dev"]) {
        dev = Some(n);
        rest = after;
    }
    if !rest.is_empty() {
        return None;
    }
    let local = match local {
        Some(local) => {
            let mut segments = Vec::new();
            for segment in local.split(['-', '_', '.']) {
                if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return None;
                }
                segments.push(if segment.bytes().all(|b| b.is_ascii_digit()) {
                    LocalSegment::Number(segment.to_owned())
                } else {
                    LocalSegment::Word(segment.to_owned())
                });
            }
            Some(segments)
        }
        None => None,
    };
    while release.len() > 1 && release.last().is_some_and(|n| n.bytes().all(|b| b == b'0')) {
        release.pop();
    }
    Some(Release {
        epoch,
        release,
        pre,
        post,
        dev,
        local,
    })
}

/// A sort key part that may be below or above every value.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bound<'a> {
    Below,
    Value(u8, Digits<'a>),
    Above,
}

/// Digits ordered numerically.
#[derive(Debug, PartialEq, Eq)]
struct Digits<'a>(&'a str);

impl Ord for Digits<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(self.0, other.0)
    }
}

impl PartialOrd for Digits<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Release {
    fn pre_key(&self) -> Bound<'_> {
        match (&self.pre, &self.post, &self.dev) {
            (None, None, Some(_)) => Bound::Below,
            (None, _, _) => Bound::Above,
            (Some((label, n)), _, _) => Bound::Value(*label, Digits(n)),
        }
    }

    fn post_key(&self) -> Bound<'_> {
        self.post
            .as_deref()
            .map_or(Bound::Below, |n| Bound::Value(0, Digits(n)))
    }

    fn dev_key(&self) -> Bound<'_> {
        self.dev
            .as_deref()
            .map_or(Bound::Above, |n| Bound::Value(0, Digits(n)))
    }
}

fn cmp_local(a: &Option<Vec<LocalSegment>>, b: &Option<Vec<LocalSegment>>) -> Ordering {
    let (a, b) = match (a, b) {
        (None, None) => return Ordering::Equal,
        (None, Some(_)) => return Ordering::Less,
        (Some(_), None) => return Ordering::Greater,
        (Some(a), Some(b)) => (a, b),
    };
    for (x, y) in a.iter().zip(b) {
        let order = match (x, y) {
            (LocalSegment::Number(x), LocalSegment::Number(y)) => cmp_digits(x, y),
            (LocalSegment::Word(x), LocalSegment::Word(y)) => x.cmp(y),
            (LocalSegment::Number(_), LocalSegment::Word(_)) => Ordering::Greater,
            (LocalSegment::Word(_), LocalSegment::Number(_)) => Ordering::Less,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

impl Ord for Release {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(&self.epoch, &other.epoch)
            .then_with(|| super::semver::cmp_numbers(&self.release, &other.release))
            .then_with(|| self.pre_key().cmp(&other.pre_key()))
            .then_with(|| self.post_key().cmp(&other.post_key()))
            .then_with(|| self.dev_key().cmp(&other.dev_key()))
            .then_with(|| cmp_local(&self.local, &other.local))
    }
}

impl PartialOrd for Release {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Release {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Release {}

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Pep440Version::Legacy(a), Pep440Version::Legacy(b)) => a.cmp(b),
            (Pep440Version::Legacy(_), Pep440Version::Pep440(_)) => Ordering::Less,
            (Pep440Version::Pep440(_), Pep440Version::Legacy(_)) => Ordering::Greater,
            (Pep440Version::Pep440(a), Pep440Version::Pep440(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Pep440Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pep440Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pep440Version {}

/// Setuptools' legacy key: the lowercased version cut into runs of digits, runs of letters,
/// `.` and `-` (anything else is kept as its own part); numbers zero-padded to eight digits,
/// words marked with `*` after renaming `pre`/`preview`/`rc` to `c`, `dev` to `@` and `-` to
/// `final-`; `*final` appended; and trailing zeros (and `*final-` before a pre-release word)
/// dropped before each word so `1.0` and `1.0.0` agree.
fn legacy_key(s: &str) -> Vec<String> {
    let mut raw: Vec<&str> = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        if c.is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        } else if c.is_ascii_lowercase() {
            while i < bytes.len() && bytes[i].is_ascii_lowercase() {
                i += 1;
            }
        } else if c == b'.' || c == b'-' {
            i += 1;
        } else {
            while i < bytes.len()
                && !(bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'-')
            {
                i += 1;
            }
        }
        raw.push(&s[start..i]);
    }
    let mut parts: Vec<String> = Vec::new();
    let words = raw
        .into_iter()
        .map(|part| match part {
            "pre" | "preview" | "rc" => "c",
            "-" => "final-",
            "dev" => "@",
            other => other,
        })
        .filter(|part| !part.is_empty() && *part != ".")
        .map(|part| {
            if part.starts_with(|c: char| c.is_ascii_digit()) {
                format!("{part:0>8}")
            } else {
                format!("*{part}")
            }
        })
        .chain(std::iter::once("*final".to_owned()));
    for part in words {
        if part.starts_with('*') {
            if part.as_str() < "*final" {
                while parts.last().is_some_and(|p| p == "*final-") {
                    parts.pop();
                }
            }
            while parts.last().is_some_and(|p| p == "00000000") {
                parts.pop();
            }
        }
        parts.push(part);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        match (Pep440Version::parse(a), Pep440Version::parse(b)) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            other => panic!("unparsable: {other:?}"),
        }
    }

    #[test]
    fn normalisation() {
        assert_eq!(cmp("1.0ALPHA1", "1.0a1"), Ordering::Equal);
        assert_eq!(cmp("v1.0-post1", "1.0.post1"), Ordering::Equal);
        assert_eq!(cmp("1.0-1", "1.0.post1"), Ordering::Equal);
        assert_eq!(cmp("1.0.dev", "1.0.dev0"), Ordering::Equal);
        assert_eq!(cmp("1.0c1", "1.0rc1"), Ordering::Equal);
    }

    #[test]
    fn ordering() {
        let ordered = [
            "1.0.dev1",
            "1.0a1.dev1",
            "1.0a1",
            "1.0a1.post1",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0+local",
            "1.0.post1.dev1",
            "1.0.post1",
            "1.1",
            "1!0.1",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(cmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
        }
        assert_eq!(cmp("0.9-doduo", "0.1"), Ordering::Less);
    }
}
