//! The CISA Known Exploited Vulnerabilities catalog.

use crate::node::{Checked, Node};
use crate::time::{self, Zone};
use crate::{KevEntry, Observation};

pub(crate) fn parse(root: Node<'_>) -> Checked<Vec<Observation>> {
    if !root.has("vulnerabilities") && root.has("cveID") {
        // A single catalog entry, as some mirrors store them.
        return Ok(vec![entry(&root)?]);
    }
    root.req_str("catalogVersion")?;
    root.req_time("dateReleased", Zone::Required)?;
    let vulns = root.req("vulnerabilities")?.arr()?;
    if let Some(count) = root.opt("count")? {
        // The fixtures we know truncate the list but keep the full count, so only a count
        // smaller than the list is an error.
        let n = count.f64()?;
        if n < vulns.len() as f64 {
            return Err(count.problem(format!(
                "count {n} is below the {} entries listed",
                vulns.len()
            )));
        }
    }
    let mut out = vulns.iter().map(entry).collect::<Checked<Vec<_>>>()?;
    out.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    Ok(out)
}

fn date(n: &Node<'_>, key: &str) -> Checked<String> {
    let d = n.req(key)?;
    let s = d.str()?;
    if time::is_date(s) {
        Ok(s.to_owned())
    } else {
        Err(d.problem(format!("'{s}' is not a YYYY-MM-DD date")))
    }
}

fn entry(n: &Node<'_>) -> Checked<Observation> {
    let cve = n.req_str("cveID")?;
    if !cve.starts_with("CVE-") {
        return Err(n.req("cveID")?.problem(format!("'{cve}' is not a CVE id")));
    }
    let mut o = Observation::new("cisa-kev", cve);
    o.published = Some(date(n, "dateAdded")?);
    let mut cwes = n.opt_strs("cwes")?;
    cwes.sort();
    cwes.dedup();
    o.kev = Some(KevEntry {
        vendor_project: n.req_str("vendorProject")?.to_owned(),
        product: n.req_str("product")?.to_owned(),
        date_added: date(n, "dateAdded")?,
        due_date: date(n, "dueDate")?,
        required_action: n.req_str("requiredAction")?.to_owned(),
        known_ransomware_campaign_use: n.opt_str("knownRansomwareCampaignUse")?.map(str::to_owned),
        cwes,
    });
    // Notes hold the vendor's advisory links separated by " ; ".
    if let Some(notes) = n.opt_str("notes")? {
        o.references = notes
            .split(';')
            .map(str::trim)
            .filter(|s| s.starts_with("http"))
            .map(str::to_owned)
            .collect();
    }
    Ok(o)
}
