//! Benchmarks that print tables and compare, in the same run, against a standard tool on the same machine.
//! Targets live here, never in timed tests.

use crypto_profiles::{
    DigestAlg, PrivateKey, Profile, ProfileId, SigAlg, Signer as _, Verifier as _,
};
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `f` repeatedly for about `budget`; returns operations per second.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget || n < 3 {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// `openssl speed` arguments for a scheme, and which `+F` record holds its sign/s and verify/s.
fn openssl_speed_sig(alg: SigAlg) -> Option<&'static str> {
    match alg {
        SigAlg::EcdsaP256Sha256 => Some("ecdsap256"),
        SigAlg::EcdsaP384Sha384 => Some("ecdsap384"),
        SigAlg::Ed25519 => Some("ed25519"),
        SigAlg::RsaPssSha256 => Some("rsa3072"),
        SigAlg::EcdsaBrainpoolP256r1Sha256 => Some("ecdsabrp256r1"),
        SigAlg::EcdsaBrainpoolP384r1Sha384 => Some("ecdsabrp384r1"),
        SigAlg::Sm2Sm3 => Some("sm2"),
        // `openssl speed` has no GOST R 34.10 test, with the engine or the provider.
        _ => None,
    }
}

fn run_openssl(args: &[&str]) -> Option<String> {
    let out = Command::new("openssl").args(args).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// (sign/s, verify/s) from `openssl speed -mr` for one scheme.
fn openssl_sig_rates(test: &str, seconds: u64) -> Option<(f64, f64)> {
    let secs = seconds.to_string();
    let text = run_openssl(&["speed", "-mr", "-seconds", &secs, test])?;
    // Records: +F2:i:bits:sign/s:verify/s (RSA), +F4:i:bits:sign/s:verify/s (ECDSA),
    // +F6:i:bits:name:sign/s:verify/s (EdDSA), +F7:i:bits:name:sign/s:verify/s (SM2).
    let line = text.lines().find(|l| {
        l.starts_with("+F2:")
            || l.starts_with("+F4:")
            || l.starts_with("+F6:")
            || l.starts_with("+F7:")
    })?;
    let fields: Vec<&str> = line.split(':').collect();
    let n = fields.len();
    Some((
        fields.get(n - 2)?.parse().ok()?,
        fields.get(n - 1)?.parse().ok()?,
    ))
}

/// Bytes per second from `openssl speed -evp` at 64 KiB blocks.
fn openssl_digest_rate(alg: DigestAlg, seconds: u64) -> Option<f64> {
    let secs = seconds.to_string();
    let name = match alg {
        DigestAlg::Sha256 => "sha256",
        DigestAlg::Sha384 => "sha384",
        DigestAlg::Sm3 => "sm3",
        DigestAlg::Streebog256 => "md_gost12_256",
        DigestAlg::Streebog512 => "md_gost12_512",
        _ => return None,
    };
    let mut args = vec!["speed"];
    if matches!(alg, DigestAlg::Streebog256 | DigestAlg::Streebog512) {
        args.extend(["-provider", "default", "-provider", "gostprov"]);
    }
    args.extend(["-mr", "-seconds", &secs, "-bytes", "65536", "-evp", name]);
    let text = run_openssl(&args)?;
    let line = text.lines().find(|l| l.starts_with("+F:"))?;
    line.rsplit(':').next()?.parse().ok()
}

/// `ours / theirs` with two decimals, or `n/a`.
pub fn ratio(ours: f64, theirs: Option<f64>) -> String {
    match theirs {
        Some(t) if t > 0.0 => format!("{:.2}", ours / t),
        _ => "n/a".into(),
    }
}

/// A number without decimals, or `n/a`.
pub fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.0}"))
}

/// The crypto benchmark table: per profile and scheme sign/s and verify/s, per digest MiB/s, each next to
/// `openssl speed` measured in the same run, with the ratio ours / openssl.
pub fn crypto(budget: Duration) -> anyhow::Result<String> {
    let secs = budget.as_secs().max(1);
    let mut out = String::new();
    writeln!(
        out,
        "# stella-kit bench crypto ({:.1}s per measurement; openssl speed in the same run)",
        budget.as_secs_f64()
    )?;
    writeln!(out, "# ours: sign or verify of a 64-byte message, hashing included; openssl speed: of a digest.")?;
    writeln!(out, "# rsa-pss-sha256 is compared with `openssl speed rsa3072` (PKCS#1 v1.5 padding, same RSA cost).")?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<8} {:<30} {:>10} {:>10} {:>6} {:>10} {:>10} {:>6}",
        "profile", "scheme", "sign/s", "openssl", "ratio", "verify/s", "openssl", "ratio"
    )?;
    let msg = [0x5au8; 64];
    let mut seen = std::collections::BTreeSet::new();
    for id in ProfileId::ALL {
        let profile = Profile::new(id)?;
        for &alg in profile.signatures() {
            if !seen.insert(alg) {
                continue;
            }
            let key = PrivateKey::generate(&profile, Some(alg))?;
            let public = key.public_key().clone();
            let signer = profile.signer(key)?;
            let verifier = profile.verifier(&public)?;
            let sig = signer.sign(&msg)?;
            let sign_rate = rate(budget, || {
                let _ = signer.sign(&msg);
            });
            let verify_rate = rate(budget, || {
                let _ = verifier.verify(&msg, &sig);
            });
            let theirs = openssl_speed_sig(alg).and_then(|t| openssl_sig_rates(t, secs));
            writeln!(
                out,
                "{:<8} {:<30} {:>10.0} {:>10} {:>6} {:>10.0} {:>10} {:>6}",
                id.name(),
                alg.name(),
                sign_rate,
                opt(theirs.map(|t| t.0)),
                ratio(sign_rate, theirs.map(|t| t.0)),
                verify_rate,
                opt(theirs.map(|t| t.1)),
                ratio(verify_rate, theirs.map(|t| t.1)),
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<8} {:<12} {:>10} {:>10} {:>6}",
        "profile", "digest", "MiB/s", "openssl", "ratio"
    )?;
    let block = vec![0xa5u8; 64 * 1024];
    let mut seen = std::collections::BTreeSet::new();
    for id in ProfileId::ALL {
        let profile = Profile::new(id)?;
        for &d in profile.digests() {
            if !seen.insert(d) {
                continue;
            }
            let mut h = profile.hasher_for(d)?;
            let blocks_per_s = rate(budget, || {
                let _ = h.update(&block);
            });
            let ours = blocks_per_s * block.len() as f64 / (1024.0 * 1024.0);
            let theirs = openssl_digest_rate(d, secs).map(|b| b / (1024.0 * 1024.0));
            writeln!(
                out,
                "{:<8} {:<12} {:>10.0} {:>10} {:>6}",
                id.name(),
                d.name(),
                ours,
                opt(theirs),
                ratio(ours, theirs)
            )?;
        }
    }
    Ok(out)
}

/// A deterministic generator of mixed data: incompressible, text-like and sparse files.
/// Writes about `total` bytes of deterministic mixed data (random, text-like, sparse) under `dir`.
pub fn generate_inputs(dir: &std::path::Path, total: u64) -> anyhow::Result<u64> {
    use std::io::Write as _;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let words: Vec<&[u8]> = [
        "package",
        "version",
        "advisory",
        "affected",
        "fixed",
        "ecosystem",
        "severity",
        "CVE-2026-",
        "purl",
        "pkg:deb/debian/openssl@3.0.19",
        "\"summary\": ",
        "{\n  \"id\": ",
        "layer",
        "sha256:",
        "0123456789abcdef",
    ]
    .iter()
    .map(|s| s.as_bytes())
    .collect();
    std::fs::create_dir_all(dir)?;
    let mut written = 0u64;
    let mut i = 0u32;
    let mut buf = vec![0u8; 1 << 20];
    while written < total {
        let size = match i % 7 {
            0 => 64 << 20,
            1 | 2 => 8 << 20,
            3 => 1 << 20,
            _ => 64 << 10,
        }
        .min(total - written);
        let kind = i % 5; // 0,1: random; 2,3: text; 4: sparse
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(dir.join(format!("f{i:05}.bin")))?);
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            match kind {
                0 | 1 => {
                    for chunk in buf[..n].chunks_mut(8) {
                        let v = next().to_le_bytes();
                        chunk.copy_from_slice(&v[..chunk.len()]);
                    }
                }
                2 | 3 => {
                    let mut p = 0;
                    while p < n {
                        let w = words[(next() % words.len() as u64) as usize];
                        let take = w.len().min(n - p);
                        buf[p..p + take].copy_from_slice(&w[..take]);
                        p += take;
                        if p < n {
                            buf[p] = b' ';
                            p += 1;
                        }
                    }
                }
                _ => {
                    buf[..n].fill(0);
                    for _ in 0..n / 4096 {
                        let at = (next() % n as u64) as usize;
                        buf[at] = (next() & 0xff) as u8;
                    }
                }
            }
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
        f.flush()?;
        written += size;
        i += 1;
    }
    Ok(written)
}

/// Peak resident set size of this process so far, in MiB (VmHWM).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time (user + system) of this process so far, all threads, in seconds.
pub fn cpu_seconds() -> f64 {
    // /proc/self/stat: fields 14 and 15 (utime, stime) in clock ticks, after the `(comm)` field.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

/// Runs a bash pipeline; its wall time in seconds when it succeeded.
pub fn shell_seconds(script: &str) -> Option<f64> {
    shell_times(script).map(|(wall, _)| wall)
}

/// Runs a bash pipeline; its wall time and the CPU time (user + system) of everything it ran, in
/// seconds, when it succeeded.
pub fn shell_times(script: &str) -> Option<(f64, f64)> {
    let start = Instant::now();
    let out = Command::new("bash")
        .args([
            "-o",
            "pipefail",
            "-c",
            &format!("TIMEFORMAT='%3U %3S'; time {{ {script} ; }}"),
        ])
        .stdout(std::process::Stdio::null())
        .output()
        .ok()?;
    let wall = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let cpu = text.lines().last().and_then(|l| {
        let mut it = l.split_whitespace().map(|v| v.parse::<f64>().ok());
        Some(it.next()?? + it.next()??)
    });
    Some((wall, cpu.unwrap_or(0.0)))
}

/// Drops the files under `dir` from the page cache (`POSIX_FADV_DONTNEED`), so the next read comes from
/// the disk. Only these files: the rest of the machine's cache is left alone.
fn evict(dir: &std::path::Path) {
    for (_, p) in crate::source::walk(dir).unwrap_or_default() {
        if let Ok(f) = std::fs::File::open(&p) {
            let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
        }
    }
}

/// The median of some measurements.
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Single-core throughput of a digest in MiB/s, hashing `mib` MiB in 1 MiB blocks.
fn digest_mib_s(profile: &Profile, mib: usize) -> f64 {
    let block = vec![0x5au8; 1 << 20];
    let Ok(mut h) = profile.hasher() else {
        return 0.0;
    };
    let start = Instant::now();
    for _ in 0..mib {
        let _ = h.update(&block);
    }
    mib as f64 / start.elapsed().as_secs_f64()
}

/// The kit benchmark: build and verify throughput on generated mixed data against `tar | zstd` and
/// `zstd -d | sha256sum` (and the Streebog / SM3 equivalents with `openssl dgst`), with peak RSS. Each
/// figure is the median of `runs` runs, ours and the standard tools' alike, interleaved (the machine may be
/// shared).
pub fn kit(total: u64, work: &std::path::Path, runs: usize) -> anyhow::Result<String> {
    use crate::build::ReadStrategy;
    use crate::clock::Timestamp;
    use crate::read::{KitInput, Limits, ReadOptions, VerifyOnly};
    let runs = runs.max(1);
    let inputs = work.join("inputs");
    let bytes = if inputs.is_dir() {
        crate::source::walk(&inputs)?
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum()
    } else {
        generate_inputs(&inputs, total)?
    };
    let mib = bytes as f64 / 1048576.0;
    let large_inputs = crate::source::walk(&inputs)?
        .iter()
        .filter(|(_, p)| {
            std::fs::metadata(p).is_ok_and(|m| m.len() >= crate::layout::LARGE_PAYLOAD)
        })
        .count();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    let mut out = String::new();
    writeln!(out, "# stella-kit bench kit: {mib:.0} MiB of generated mixed data (random, text-like, sparse) in {}", inputs.display())?;
    writeln!(out, "# {cores} cores, load average {load} at the start; median of {runs} run(s), standard tools interleaved with ours")?;
    writeln!(
        out,
        "# ratio = ours / theirs throughput; ours includes the final fsync, theirs do not sync"
    )?;
    writeln!(
        out,
        "# * = what `stella-kit build` does with this input by default (one read or two passes)"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<34} {:>9} {:>10} {:>34} {:>9} {:>10} {:>6}",
        "operation", "seconds", "MiB/s", "standard tool", "seconds", "MiB/s", "ratio"
    )?;
    let rss_before = peak_rss_mib();
    let mut notes = String::new();
    for id in [ProfileId::Fips, ProfileId::Gost, ProfileId::Sm] {
        let profile = Profile::new(id)?;
        let key = PrivateKey::generate(&profile, None)?;
        let public = key.public_key().clone();
        let pem = key.to_pkcs8_pem(None)?;
        let kit_path = work.join(format!("bench-{}.kit", id.name()));
        let hash_cmd = match id {
            ProfileId::Gost => "openssl dgst -engine gost -md_gost12_256 2>/dev/null",
            ProfileId::Sm => "openssl dgst -sm3",
            _ => "sha256sum",
        };
        let policy = crypto_profiles::dsse::TrustPolicy::new(profile.clone(), vec![public], 1)?;
        let opts = ReadOptions {
            policy: &policy,
            now: Some(Timestamp(1_800_000_001)),
            limits: Limits::default(),
            identities: &[],
        };
        // One timed build of every input; wall and CPU seconds.
        let build_once = |strategy: ReadStrategy| -> anyhow::Result<(f64, f64)> {
            let planned =
                crate::source::plan_files(&inputs, crate::manifest::PayloadKind::File, "files")?;
            let signer = PrivateKey::from_pem(pem.as_bytes(), None)?;
            let cpu = cpu_seconds();
            let start = Instant::now();
            crate::build::build_with(
                crate::build::BuildRequest {
                    channel: "bench".into(),
                    sequence: 1,
                    id: None,
                    created: Timestamp(1_800_000_000),
                    expires: Timestamp(1_900_000_000),
                    signers: vec![(profile.clone(), signer)],
                    payloads: planned,
                    images: Vec::new(),
                    base: None,
                    volume_size: None,
                    recipients: Vec::new(),
                    out: kit_path.clone(),
                    level: 3,
                    progress: false,
                    validate_feed: crate::cli::validate_feed,
                },
                strategy,
            )?;
            Ok((start.elapsed().as_secs_f64(), cpu_seconds() - cpu))
        };
        let (mut single, mut two, mut bare, mut hashing, mut ver, mut std_ver) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut cpu_single, mut cpu_two, mut cpu_bare) = (vec![], vec![], vec![]);
        for _ in 0..runs {
            for (strategy, times, cpus) in [
                (ReadStrategy::SingleRead, &mut single, &mut cpu_single),
                (ReadStrategy::TwoPass, &mut two, &mut cpu_two),
            ] {
                let (wall, cpu) = build_once(strategy)?;
                times.push(wall);
                cpus.push(cpu);
            }
            if let Some((wall, cpu)) = shell_times(&format!(
                "tar -cf - -C '{}' . | zstd -3 -T0 -q -c > '{}/std.tar.zst'",
                inputs.display(),
                work.display()
            )) {
                bare.push(wall);
                cpu_bare.push(cpu);
            }
            // Build includes hashing under the profile digest; the fair comparison is tar|zstd plus the hash.
            hashing.extend(shell_seconds(&format!(
                "tar -cf - -C '{}' . | tee >({hash_cmd} > /dev/null) | zstd -3 -T0 -q -c > '{}/std.tar.zst'",
                inputs.display(),
                work.display()
            )));
            let start = Instant::now();
            crate::read::verify(&KitInput::File(kit_path.clone()), &opts, &mut VerifyOnly)?;
            ver.push(start.elapsed().as_secs_f64());
            std_ver.extend(shell_seconds(&format!(
                "zstd -dc -q '{}' | {hash_cmd} > /dev/null",
                kit_path.display()
            )));
        }
        let row =
            |out: &mut String, op: &str, s: f64, tool: &str, t: Option<f64>| -> std::fmt::Result {
                let ours = mib / s;
                let theirs = t.map(|t| mib / t);
                writeln!(
                    out,
                    "{:<34} {:>9.2} {:>10.0} {:>34} {:>9} {:>10} {:>6}",
                    op,
                    s,
                    ours,
                    tool,
                    t.map_or("n/a".into(), |t| format!("{t:.2}")),
                    opt(theirs),
                    ratio(ours, theirs)
                )
            };
        let short = hash_cmd.split(' ').take(3).collect::<Vec<_>>().join(" ");
        let (b, h) = (median(bare), median(hashing));
        let single_s = median(single).unwrap_or(f64::NAN);
        let two_s = median(two).unwrap_or(f64::NAN);
        let name = id.name();
        // The default build (ReadStrategy::Auto) reads once or twice as `single_read_pays` decides.
        let auto_single =
            crate::build::single_read_pays(&[profile.digest_alg()], large_inputs, bytes);
        let (one_label, two_label) = if auto_single {
            (
                format!("build ({name}, one read)*"),
                format!("build ({name}, two passes)"),
            )
        } else {
            (
                format!("build ({name}, one read)"),
                format!("build ({name}, two passes)*"),
            )
        };
        let default_s = if auto_single { single_s } else { two_s };
        let default_label = if auto_single { &one_label } else { &two_label };
        row(
            &mut out,
            default_label,
            default_s,
            "tar -c | zstd -3 -T0",
            b,
        )?;
        row(
            &mut out,
            default_label,
            default_s,
            &format!("tar -c | tee >({short}) | zstd"),
            h,
        )?;
        let other = if auto_single {
            (&two_label, two_s)
        } else {
            (&one_label, single_s)
        };
        row(&mut out, other.0, other.1, "tar -c | zstd -3 -T0", b)?;
        row(
            &mut out,
            &format!("verify ({name})"),
            median(ver).unwrap_or(f64::NAN),
            &format!("zstd -d | {short}"),
            median(std_ver),
        )?;
        // What bounds a build on this machine: every byte hashed (one core per payload at a time) and
        // compressed (about the CPU time tar | zstd takes), shared among the cores.
        let rate = digest_mib_s(&profile, 256);
        let zstd_cpu = median(cpu_bare).unwrap_or(0.0);
        let hash_cpu = mib / rate;
        let floor = (hash_cpu + zstd_cpu) / cores as f64;
        writeln!(
            notes,
            "{name}: CPU time ours {:.2} s (single read), {:.2} s (two passes), tar|zstd {zstd_cpu:.2} s. \
             A build hashes every byte ({} at {rate:.0} MiB/s per core: {hash_cpu:.2} s) and compresses it \
             (about tar|zstd's {zstd_cpu:.2} s): on {cores} cores no less than {floor:.2} s ({:.0} MiB/s)",
            median(cpu_single).unwrap_or(0.0),
            median(cpu_two).unwrap_or(0.0),
            profile.digest_alg(),
            mib / floor,
        )?;
        if id == ProfileId::Fips {
            // A kit is published durably (fsync before the rename); tar | zstd made as durable.
            let mut synced = vec![];
            for _ in 0..runs {
                synced.extend(shell_seconds(&format!(
                    "tar -cf - -C '{}' . | zstd -3 -T0 -q -c > '{}/std.tar.zst' && sync '{}/std.tar.zst'",
                    inputs.display(),
                    work.display(),
                    work.display()
                )));
            }
            row(
                &mut out,
                default_label,
                default_s,
                "tar -c | zstd -3 -T0 > f; sync f",
                median(synced),
            )?;
            // Cold page cache: every input read from the disk, by us and by tar alike.
            let (mut c1, mut c2, mut cb) = (vec![], vec![], vec![]);
            for _ in 0..runs {
                for (strategy, times) in [
                    (ReadStrategy::SingleRead, &mut c1),
                    (ReadStrategy::TwoPass, &mut c2),
                ] {
                    evict(&inputs);
                    times.push(build_once(strategy)?.0);
                }
                evict(&inputs);
                cb.extend(shell_seconds(&format!(
                    "tar -cf - -C '{}' . | zstd -3 -T0 -q -c > '{}/std.tar.zst'",
                    inputs.display(),
                    work.display()
                )));
            }
            let cb = median(cb);
            row(
                &mut out,
                "build (fips, one read, cold)",
                median(c1).unwrap_or(f64::NAN),
                "tar -c | zstd -3 -T0 (cold)",
                cb,
            )?;
            row(
                &mut out,
                "build (fips, two passes, cold)",
                median(c2).unwrap_or(f64::NAN),
                "tar -c | zstd -3 -T0 (cold)",
                cb,
            )?;
        }
        let _ = std::fs::remove_file(&kit_path);
    }
    let _ = std::fs::remove_file(work.join("std.tar.zst"));
    writeln!(out)?;
    write!(out, "{notes}")?;
    writeln!(out, "peak RSS of the benchmark process: {:.0} MiB (before the kit runs: {rss_before:.0} MiB); input {mib:.0} MiB", peak_rss_mib())?;
    Ok(out)
}
