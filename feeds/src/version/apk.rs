//! Alpine package versions, compared as apk-tools compares them.
//!
//! The grammar (apk-package(5)) is `number{.number}...{letter}{_suffix{number}}...{~hash}{-r#}`
//! with suffixes ordered `_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p`.
//! Both versions are read token by token, each token's kind fixed by the separator before it,
//! and compared token by token while their kinds agree: numbers numerically, except that a
//! later number with leading zeros sorts below one without (`1.02 < 1.1`); letters, suffixes
//! and the `-r` revision by value. When the kinds part, the version that goes on is newer
//! unless it goes on with a pre-release suffix (`1.2_rc1 < 1.2 < 1.2_p1 < 1.2.1`).
//!
//! Malformed versions are not refused, because `apk version -t` orders them and Alpine's own
//! databases contain some; they are compared the way the apk-tools 2.x tokenizer reads them
//! (a letter may be followed by more digits, `1.0a1 < 1.0a2`), up to the first token that
//! does not fit the grammar. Following current apk-tools, a version that turns malformed
//! sorts below one that ends at the same point (`1-r-0 < 1-r0`, `1 > 1-ruff`), and `-r`
//! followed by a letter is not a revision. A `.` directly followed by a letter (`1.2.r1`) is
//! compared on, below the well-formed `1.2r1`. These choices reproduce the osv-scalibr Alpine
//! fixtures exactly.

use std::cmp::Ordering;

use super::{check_text, cmp_digits};

#[derive(Debug, Clone)]
pub(super) struct ApkVersion {
    text: String,
}

impl ApkVersion {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        check_text(s)?;
        Ok(ApkVersion { text: s.to_owned() })
    }
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.text, &other.text)
    }
}

impl PartialOrd for ApkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ApkVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ApkVersion {}

/// Token kinds, in the order the grammar allows them. `Invalid` ranks last: a version that
/// turns malformed sorts below one that simply ends (the rule of current apk-tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    DigitOrZero,
    Digit,
    Letter,
    /// A `.` directly followed by a letter (`1.2.r1`): malformed, but compared on; it sorts
    /// below a letter that follows the number directly (`1.2.r1 < 1.2r1`).
    DotLetter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

/// A token's value. Values are compared only between tokens of the same kind, as one
/// signed number: `Neg(n)` is `-n` with `n > 0` (leading zeros, pre-release suffixes,
/// invalid suffixes).
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Neg(usize),
    Int(u32),
    Digits(&'a str),
    Text(&'a str),
}

impl Value<'_> {
    fn is_negative(&self) -> bool {
        matches!(self, Value::Neg(_))
    }

    fn cmp(&self, other: &Value<'_>) -> Ordering {
        match (self, other) {
            (Value::Text(a), Value::Text(b)) => a.cmp(b),
            (Value::Neg(a), Value::Neg(b)) => b.cmp(a),
            (Value::Neg(_), _) => Ordering::Less,
            (_, Value::Neg(_)) => Ordering::Greater,
            (Value::Digits(a) | Value::Text(a), Value::Digits(b) | Value::Text(b)) => {
                cmp_digits(a, b)
            }
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Int(a), Value::Digits(b) | Value::Text(b)) => cmp_digits(&a.to_string(), b),
            (Value::Digits(a) | Value::Text(a), Value::Int(b)) => cmp_digits(a, &b.to_string()),
        }
    }
}

const PRE_SUFFIXES: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST_SUFFIXES: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

/// Works out the kind of the token starting at `s`, given the kind of the previous one,
/// consuming its leading separator.
fn next_kind(kind: Kind, s: &mut &[u8]) -> Kind {
    let Some(&c) = s.first() else {
        return Kind::End;
    };
    let n = if matches!(kind, Kind::Digit | Kind::DigitOrZero | Kind::DotLetter)
        && c.is_ascii_lowercase()
    {
        Kind::Letter
    } else if kind == Kind::Letter && c.is_ascii_digit() {
        Kind::Digit
    } else if kind == Kind::Suffix && c.is_ascii_digit() {
        Kind::SuffixNo
    } else {
        let n = match c {
            b'.' if s.get(1).is_some_and(u8::is_ascii_lowercase) => Kind::DotLetter,
            b'.' => Kind::DigitOrZero,
            b'_' => Kind::Suffix,
            b'~' => Kind::CommitHash,
            // `-r` starts the revision, unless a word follows (`1-ruff` is not revision "uff").
            b'-' if s.get(1) == Some(&b'r') && !s.get(2).is_some_and(u8::is_ascii_alphabetic) => {
                *s = &s[1..];
                Kind::RevisionNo
            }
            _ => Kind::Invalid,
        };
        *s = &s[1..];
        n
    };
    // A dot-letter is a number as far as the grammar's order goes.
    let effective = if n == Kind::DotLetter {
        Kind::DigitOrZero
    } else {
        n
    };
    let allowed_backwards = matches!(
        (effective, kind),
        (Kind::DigitOrZero, Kind::Digit)
            | (Kind::Suffix, Kind::SuffixNo)
            | (Kind::Digit, Kind::Letter)
            | (Kind::Letter, Kind::DotLetter)
    );
    if effective < kind && !allowed_backwards {
        Kind::Invalid
    } else {
        n
    }
}

/// Reads the token of kind `*kind` at the start of `s`, returns its value and sets `*kind`
/// to the kind of the following token.
fn next_token<'a>(kind: &mut Kind, s: &mut &'a [u8]) -> Value<'a> {
    if s.is_empty() {
        *kind = Kind::End;
        return Value::Int(0);
    }
    let count = |s: &[u8], f: fn(&u8) -> bool| s.iter().take_while(|c| f(c)).count();
    let mut following = None;
    let (value, len) = match *kind {
        Kind::DigitOrZero if s[0] == b'0' => {
            // Leading zeros get special treatment: `.05` sorts below `.1`.
            let zeros = count(s, |c| *c == b'0');
            following = Some(Kind::Digit);
            (Value::Neg(zeros), zeros)
        }
        Kind::DigitOrZero | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
            let n = count(s, u8::is_ascii_digit);
            (Value::Digits(as_str(&s[..n])), n)
        }
        Kind::Letter => (Value::Int(u32::from(s[0])), 1),
        Kind::DotLetter => (Value::Int(0), 0),
        Kind::Suffix => {
            let starts = |w: &&str| s.starts_with(w.as_bytes());
            if let Some(i) = PRE_SUFFIXES.iter().position(starts) {
                (Value::Neg(PRE_SUFFIXES.len() - i), PRE_SUFFIXES[i].len())
            } else if let Some(i) = POST_SUFFIXES.iter().position(starts) {
                (
                    Value::Int(u32::try_from(i).unwrap_or(0)),
                    POST_SUFFIXES[i].len(),
                )
            } else {
                *kind = Kind::Invalid;
                return Value::Neg(1);
            }
        }
        Kind::CommitHash => {
            let n = count(s, |c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
            (Value::Text(as_str(&s[..n])), n)
        }
        Kind::End | Kind::Invalid => return Value::Int(0),
    };
    *s = &s[len..];
    *kind = if s.is_empty() {
        Kind::End
    } else if let Some(following) = following {
        following
    } else {
        next_kind(*kind, s)
    };
    value
}

fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

fn compare(a: &str, b: &str) -> Ordering {
    let (mut sa, mut sb) = (a.as_bytes(), b.as_bytes());
    let (mut ka, mut kb) = (Kind::Digit, Kind::Digit);
    let (mut va, mut vb) = (Value::Int(0), Value::Int(0));
    while ka == kb && ka < Kind::End && va.cmp(&vb) == Ordering::Equal {
        va = next_token(&mut ka, &mut sa);
        vb = next_token(&mut kb, &mut sb);
    }
    match va.cmp(&vb) {
        Ordering::Equal => {}
        other => return other,
    }
    if ka == kb {
        return Ordering::Equal;
    }
    // The version that goes on is newer, unless it goes on with a pre-release suffix.
    let (mut peek_a, mut peek_b) = (ka, kb);
    if ka == Kind::Suffix && next_token(&mut peek_a, &mut sa).is_negative() {
        return Ordering::Less;
    }
    if kb == Kind::Suffix && next_token(&mut peek_b, &mut sb).is_negative() {
        return Ordering::Greater;
    }
    kb.cmp(&ka)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_and_revisions() {
        assert_eq!(compare("1.2_rc1", "1.2"), Ordering::Less);
        assert_eq!(compare("1.2_p1", "1.2"), Ordering::Greater);
        assert_eq!(compare("1.2-r1", "1.2"), Ordering::Greater);
        assert_eq!(compare("1.2.1", "1.2_p1"), Ordering::Greater);
        assert_eq!(compare("1.02", "1.1"), Ordering::Less);
        assert_eq!(compare("1.0~abc-r1", "1.0~abc-r0"), Ordering::Greater);
    }
}
