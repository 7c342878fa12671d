//! FIRST EPSS scores (`cve,epss,percentile` CSV with a `#model_version:...` comment line).

use crate::node::{Checked, Problem};
use crate::{EpssScore, Observation};

fn at_line(line: usize, message: String) -> Problem {
    Problem {
        path: format!("line {line}"),
        message,
    }
}

fn probability(line: usize, column: &str, text: &str) -> Checked<f64> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(at_line(
            line,
            format!("{column} '{text}' is not a number between 0 and 1"),
        )),
    }
}

pub(crate) fn parse(text: &str) -> Checked<Vec<Observation>> {
    let mut model_version = None;
    let mut score_date = None;
    let mut columns: Option<(usize, usize, usize)> = None;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim_end_matches('\r');
        if l.trim().is_empty() {
            continue;
        }
        if let Some(comment) = l.strip_prefix('#') {
            for part in comment.split(',') {
                match part.split_once(':') {
                    Some(("model_version", v)) => model_version = Some(v.to_owned()),
                    Some(("score_date", v)) => score_date = Some(v.to_owned()),
                    _ => {}
                }
            }
            continue;
        }
        let cells: Vec<&str> = l.split(',').map(str::trim).collect();
        let Some((c, e, p)) = columns else {
            let find = |name: &str| {
                cells
                    .iter()
                    .position(|c| *c == name)
                    .ok_or_else(|| at_line(line, format!("header lacks a '{name}' column")))
            };
            columns = Some((find("cve")?, find("epss")?, find("percentile")?));
            continue;
        };
        let cell = |k: usize| {
            cells.get(k).copied().ok_or_else(|| {
                at_line(
                    line,
                    format!(
                        "expected {} columns, found {}",
                        c.max(e).max(p) + 1,
                        cells.len()
                    ),
                )
            })
        };
        let cve = cell(c)?;
        if !cve.starts_with("CVE-") {
            return Err(at_line(line, format!("'{cve}' is not a CVE id")));
        }
        let mut o = Observation::new("epss", cve);
        o.epss = Some(EpssScore {
            score: probability(line, "epss", cell(e)?)?,
            percentile: probability(line, "percentile", cell(p)?)?,
            model_version: model_version.clone(),
            score_date: score_date.clone(),
        });
        out.push(o);
    }
    if columns.is_none() {
        return Err(at_line(1, "no header line".to_owned()));
    }
    out.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    Ok(out)
}
