//! CVE JSON 5.x records and NVD API 2.0 responses.

use crate::node::{Checked, Node};
use crate::time::Zone;
use crate::{Affected, Observation, PackageRef, RangeEvent, Severity, VersionRange};

fn cve_id(n: &Node<'_>, key: &str) -> Checked<String> {
    let id = n.req_str(key)?;
    let rest = id.strip_prefix("CVE-").unwrap_or_default();
    let ok = rest.split_once('-').is_some_and(|(y, s)| {
        y.len() == 4 && s.len() >= 4 && (y.to_owned() + s).bytes().all(|b| b.is_ascii_digit())
    });
    if ok {
        Ok(id.to_owned())
    } else {
        Err(n.req(key)?.problem(format!("'{id}' is not a CVE id")))
    }
}

/// A CVE 5 record, as published in the CVE list.
pub(crate) fn parse_cve5(root: Node<'_>) -> Checked<Vec<Observation>> {
    let data_type = root.req("dataType")?;
    data_type.one_of(&["CVE_RECORD"])?;
    let version = root.req("dataVersion")?;
    let v = version.scalar_text()?;
    if !v.starts_with("5.") {
        return Err(version.problem(format!("'{v}' is not a CVE JSON 5.x data version")));
    }
    let meta = root.req("cveMetadata")?;
    let id = cve_id(&meta, "cveId")?;
    let state = meta.enum_str("state", &["PUBLISHED", "REJECTED"])?;
    let assigner = meta
        .opt_str("assignerShortName")?
        .unwrap_or(meta.req_str("assignerOrgId")?);
    let mut o = Observation::new(format!("cve:{assigner}"), id);
    o.published = meta.opt_time("datePublished", Zone::Optional)?;
    o.modified = meta.opt_time("dateUpdated", Zone::Optional)?;
    if state == "REJECTED" {
        o.withdrawn = meta
            .opt_time("dateRejected", Zone::Optional)?
            .or_else(|| o.modified.clone());
    }
    let containers = root.req("containers")?;
    let cna = containers.req("cna")?;
    container(&cna, &mut o, state == "PUBLISHED")?;
    for adp in containers.opt_arr("adp")? {
        container(&adp, &mut o, false)?;
    }
    Ok(vec![o])
}

fn container(c: &Node<'_>, o: &mut Observation, is_published_cna: bool) -> Checked<()> {
    let provider = c.req("providerMetadata")?;
    let who = provider
        .opt_str("shortName")?
        .unwrap_or(provider.req_str("orgId")?)
        .to_owned();
    if is_published_cna {
        c.req("descriptions")?.arr()?;
        c.req("references")?;
    }
    for r in c.opt_arr("references")? {
        o.references.push(r.req_str("url")?.to_owned());
    }
    for a in c.opt_arr("affected")? {
        o.affected.push(cve5_affected(&a)?);
    }
    for m in c.opt_arr("metrics")? {
        for (key, kind) in [
            ("cvssV2_0", "CVSS_V2"),
            ("cvssV3_0", "CVSS_V3"),
            ("cvssV3_1", "CVSS_V3"),
            ("cvssV4_0", "CVSS_V4"),
        ] {
            if let Some(cvss) = m.opt(key)? {
                o.severities.push(Severity {
                    kind: kind.to_owned(),
                    vector_or_score: cvss.req_str("vectorString")?.to_owned(),
                    source: Some(who.clone()),
                });
            }
        }
    }
    Ok(())
}

fn cve5_affected(a: &Node<'_>) -> Checked<Affected> {
    let vendor = a.opt_str("vendor")?;
    let name = a.opt_str("packageName")?.or(a.opt_str("product")?);
    if name.is_none() {
        return Err(a.problem("missing required field 'product' or 'packageName'"));
    }
    let mut out = Affected {
        package: PackageRef {
            purl: None,
            ecosystem: a.opt_str("collectionURL")?.or(vendor).map(str::to_owned),
            name: name.map(str::to_owned),
            cpe: a.opt_strs("cpes")?.into_iter().next(),
        },
        status: a.opt_str("defaultStatus")?.map(str::to_owned),
        ..Affected::default()
    };
    for v in a.opt_arr("versions")? {
        let version = v.req_str("version")?.to_owned();
        let status = v.enum_str("status", &["affected", "unaffected", "unknown"])?;
        let less_than = v.opt_str("lessThan")?;
        let less_eq = v.opt_str("lessThanOrEqual")?;
        let changes = v.opt_arr("changes")?;
        if less_than.is_none() && less_eq.is_none() && changes.is_empty() {
            if status == "affected" {
                out.versions.push(version);
            }
            continue;
        }
        if status != "affected" {
            // Rows stating where the product is unaffected say nothing about where it is
            // affected; the default status and the affected rows carry that.
            continue;
        }
        let mut events = vec![RangeEvent::Introduced(version)];
        for ch in changes {
            let at = ch.req_str("at")?.to_owned();
            match ch.enum_str("status", &["affected", "unaffected", "unknown"])? {
                "affected" => events.push(RangeEvent::Introduced(at)),
                "unaffected" => {
                    out.fixed.push(at.clone());
                    events.push(RangeEvent::Fixed(at));
                }
                _ => {}
            }
        }
        if let Some(lt) = less_than {
            events.push(RangeEvent::Below(lt.to_owned()));
        }
        if let Some(le) = less_eq {
            events.push(RangeEvent::LastAffected(le.to_owned()));
        }
        out.ranges.push(VersionRange {
            scheme: v.opt_str("versionType")?.unwrap_or("cve").to_owned(),
            repo: None,
            events,
        });
    }
    Ok(out)
}

/// An NVD API 2.0 response (`"format": "NVD_CVE"`), one observation per CVE.
pub(crate) fn parse_api2(root: Node<'_>) -> Checked<Vec<Observation>> {
    root.req("format")?.one_of(&["NVD_CVE"])?;
    root.req("version")?.one_of(&["2.0"])?;
    root.req_time("timestamp", Zone::Optional)?;
    let mut out = Vec::new();
    for v in root.req("vulnerabilities")?.arr()? {
        let cve = v.req("cve")?;
        let id = cve_id(&cve, "id")?;
        let mut o = Observation::new("nvd", id);
        o.published = Some(cve.req_time("published", Zone::Optional)?);
        o.modified = Some(cve.req_time("lastModified", Zone::Optional)?);
        let status = cve.opt_str("vulnStatus")?;
        if status == Some("Rejected") {
            o.withdrawn = o.modified.clone();
        }
        for r in cve.opt_arr("references")? {
            o.references.push(r.req_str("url")?.to_owned());
        }
        if let Some(metrics) = cve.opt("metrics")? {
            for (key, kind) in [
                ("cvssMetricV2", "CVSS_V2"),
                ("cvssMetricV30", "CVSS_V3"),
                ("cvssMetricV31", "CVSS_V3"),
                ("cvssMetricV40", "CVSS_V4"),
            ] {
                for m in metrics.opt_arr(key)? {
                    let data = m.req("cvssData")?;
                    o.severities.push(Severity {
                        kind: kind.to_owned(),
                        vector_or_score: data.req_str("vectorString")?.to_owned(),
                        source: Some(m.req_str("source")?.to_owned()),
                    });
                }
            }
        }
        for config in cve.opt_arr("configurations")? {
            for node in config.req("nodes")?.arr()? {
                for m in node.req("cpeMatch")?.arr()? {
                    if let Some(a) = cpe_match(&m)? {
                        o.affected.push(a);
                    }
                }
            }
        }
        out.push(o);
    }
    out.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    Ok(out)
}

fn cpe_match(m: &Node<'_>) -> Checked<Option<Affected>> {
    let vulnerable = m.req("vulnerable")?;
    let Some(vulnerable) = vulnerable.value.as_bool() else {
        return Err(vulnerable.problem("expected a boolean"));
    };
    let criteria = m.req_str("criteria")?;
    if !criteria.starts_with("cpe:2.3:") {
        return Err(m
            .req("criteria")?
            .problem(format!("'{criteria}' is not a CPE 2.3 name")));
    }
    if !vulnerable {
        // Platform conditions ("running on"), not affected products.
        return Ok(None);
    }
    let mut events = Vec::new();
    for (key, make) in [
        (
            "versionStartIncluding",
            RangeEvent::Introduced as fn(String) -> RangeEvent,
        ),
        ("versionStartExcluding", RangeEvent::IntroducedAfter),
        ("versionEndExcluding", RangeEvent::Below),
        ("versionEndIncluding", RangeEvent::LastAffected),
    ] {
        if let Some(v) = m.opt_str(key)? {
            events.push(make(v.to_owned()));
        }
    }
    Ok(Some(Affected {
        package: PackageRef {
            cpe: Some(criteria.to_owned()),
            ..PackageRef::default()
        },
        ranges: if events.is_empty() {
            Vec::new()
        } else {
            vec![VersionRange {
                scheme: "cpe".to_owned(),
                repo: None,
                events,
            }]
        },
        versions: Vec::new(),
        fixed: Vec::new(),
        status: None,
    }))
}
