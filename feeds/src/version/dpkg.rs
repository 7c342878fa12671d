//! Debian package versions, as deb-version(7) defines them.
//!
//! A version is `[epoch:]upstream_version[-debian_revision]`. The epoch is a number (absent
//! means 0); the revision is whatever follows the last hyphen (absent means "0", so `1.0` and
//! `1.0-0` are equal). Upstream version and revision are compared with the same algorithm:
//! alternately the longest non-digit prefix, compared character by character where letters
//! sort before non-letters and `~` before anything (even the end of the string), and the
//! longest digit prefix, compared numerically.

use std::cmp::Ordering;

use super::{check_text, cmp_digits};

#[derive(Debug, Clone)]
pub(super) struct DpkgVersion {
    epoch: String,
    upstream: String,
    revision: String,
}

impl DpkgVersion {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        check_text(s)?;
        let (epoch, rest) = match s.split_once(':') {
            Some((epoch, rest)) => {
                if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("epoch '{epoch}' is not a number"));
                }
                (epoch, rest)
            }
            None => ("0", s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((upstream, revision)) => {
                if revision.is_empty() {
                    return Err("empty revision after '-'".to_owned());
                }
                (upstream, revision)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err("empty upstream version".to_owned());
        }
        if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err("upstream version does not start with a digit".to_owned());
        }
        if let Some(c) = upstream
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".+~-:".contains(*c)))
        {
            return Err(format!("invalid character {c:?} in upstream version"));
        }
        if let Some(c) = revision
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".+~".contains(*c)))
        {
            return Err(format!("invalid character {c:?} in revision"));
        }
        Ok(DpkgVersion {
            epoch: epoch.to_owned(),
            upstream: upstream.to_owned(),
            revision: revision.to_owned(),
        })
    }
}

impl Ord for DpkgVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(&self.epoch, &other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl PartialOrd for DpkgVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DpkgVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DpkgVersion {}

/// Sort weight of one character of a non-digit part; `None` is the end of the part.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefixes, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let wa = weight(a.get(i).copied());
            let wb = weight(b.get(j).copied());
            if wa != wb {
                return wa.cmp(&wb);
            }
            i = (i + 1).min(a.len());
            j = (j + 1).min(b.len());
        }
        // Digit prefixes, numerically.
        let si = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let sj = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let da = std::str::from_utf8(&a[si..i]).unwrap_or("");
        let db = std::str::from_utf8(&b[sj..j]).unwrap_or("");
        match cmp_digits(da, db) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        match (DpkgVersion::parse(a), DpkgVersion::parse(b)) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            other => panic!("unparsable: {other:?}"),
        }
    }

    #[test]
    fn tilde_sorts_before_everything() {
        assert_eq!(cmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.0~~", "1.0~"), Ordering::Less);
        assert_eq!(cmp("1.0~", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0+b1"), Ordering::Less);
        assert_eq!(cmp("1.0a", "1.0+"), Ordering::Less);
    }

    #[test]
    fn epoch_and_revision() {
        assert_eq!(cmp("1:0.1", "2.0"), Ordering::Greater);
        assert_eq!(cmp("1.0", "1.0-0"), Ordering::Equal);
        assert_eq!(cmp("1.0-1-2", "1.0-1-10"), Ordering::Less);
        assert!(DpkgVersion::parse("a:1").is_err());
        assert!(DpkgVersion::parse("1.0-").is_err());
        assert!(DpkgVersion::parse("abc").is_err());
    }
}
