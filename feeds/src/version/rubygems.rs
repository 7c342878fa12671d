//! RubyGems versions, ordered as `Gem::Version#<=>`.
//!
//! A version is dot-separated alphanumeric parts starting with a digit, optionally a `-` and
//! further parts (`-` reads as `.pre.`). It is cut into runs of digits and runs of letters;
//! trailing zeros are dropped from the numeric head and from the tail that starts at the
//! first letter run (so `1.0 == 1` and `1.0.a.0 == 1.0.a`). The segment lists are then
//! compared pairwise, padding the shorter with 0: numbers numerically, letters bytewise, and
//! a letter run below any number (which is what makes `1.0.a` a pre-release of `1.0`).

use std::cmp::Ordering;

use super::{check_text, cmp_digits};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Number(String),
    Letters(String),
}

impl Segment {
    fn is_zero(&self) -> bool {
        matches!(self, Segment::Number(n) if n.bytes().all(|b| b == b'0'))
    }
}

#[derive(Debug, Clone)]
pub(super) struct GemVersion {
    segments: Vec<Segment>,
}

fn valid(s: &str) -> Result<(), String> {
    let (main, pre) = match s.split_once('-') {
        Some((main, pre)) => (main, Some(pre)),
        None => (s, None),
    };
    if !main.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("does not start with a digit".to_owned());
    }
    let parts = main.split('.');
    for part in parts {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("invalid part '{part}'"));
        }
    }
    if let Some(pre) = pre {
        for part in pre.split('.') {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(format!("invalid pre-release part '{part}'"));
            }
        }
    }
    Ok(())
}

impl GemVersion {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        check_text(s)?;
        valid(s)?;
        let text = s.replace('-', ".pre.");
        let mut segments = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            if bytes[i].is_ascii_digit() {
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                segments.push(Segment::Number(text[start..i].to_owned()));
            } else if bytes[i].is_ascii_alphabetic() {
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                segments.push(Segment::Letters(text[start..i].to_owned()));
            } else {
                i += 1;
            }
        }
        // Canonical segments: trailing zeros dropped from the numeric head and the tail.
        let split = segments
            .iter()
            .position(|s| matches!(s, Segment::Letters(_)))
            .unwrap_or(segments.len());
        let mut tail = segments.split_off(split);
        while segments.last().is_some_and(Segment::is_zero) {
            segments.pop();
        }
        while tail.last().is_some_and(Segment::is_zero) {
            tail.pop();
        }
        segments.append(&mut tail);
        Ok(GemVersion { segments })
    }
}

impl Ord for GemVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let zero = Segment::Number(String::new());
        for i in 0..self.segments.len().max(other.segments.len()) {
            let a = self.segments.get(i).unwrap_or(&zero);
            let b = other.segments.get(i).unwrap_or(&zero);
            let order = match (a, b) {
                (Segment::Number(x), Segment::Number(y)) => cmp_digits(x, y),
                (Segment::Letters(x), Segment::Letters(y)) => x.cmp(y),
                (Segment::Letters(_), Segment::Number(_)) => Ordering::Less,
                (Segment::Number(_), Segment::Letters(_)) => Ordering::Greater,
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for GemVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for GemVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for GemVersion {}
