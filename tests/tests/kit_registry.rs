//! `stella-kit build --image registry:HOST/REPO@sha256:DIGEST` against a real registry (Debian's
//! `docker-registry`) on 127.0.0.1, images pushed with `skopeo`: a single image and a multi-platform
//! index are pulled by digest and carried; tags, unknown digests and unreachable registries are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use stella_tests::registry::{have, Registry, TestPki};
use stella_tests::{corpus, gen_key, kit, run_env, tool, Run, AT, EPOCH};

/// The registry and skopeo, or None after printing why the test is skipped.
fn setup(d: &Path) -> Option<Registry> {
    if !have("skopeo") {
        eprintln!("skipping: skopeo not installed (Debian package skopeo)");
        return None;
    }
    Registry::start(d)
}

/// Pushes an OCI layout (`oci:DIR[:REF]`) to `docker://ADDR/DEST`; returns the digest the registry holds.
fn push(d: &Path, src: &str, reg: &Registry, dest: &str, all: bool) -> String {
    let dest = format!("docker://{}/{dest}", reg.addr);
    let digestfile = d.join("pushed.digest");
    let digestfile = digestfile.to_str().unwrap();
    // --preserve-digests: skopeo would otherwise gzip uncompressed layers on the way to a registry,
    // rewriting the manifests and the index this test names by digest.
    let mut args = vec![
        "copy",
        "--dest-tls-verify=false",
        "--preserve-digests",
        "--digestfile",
        digestfile,
    ];
    if all {
        args.push("--all");
    }
    args.extend([src, dest.as_str()]);
    tool("skopeo", d, &args).ok();
    let digest = fs::read_to_string(digestfile).unwrap().trim().to_owned();
    assert!(digest.starts_with("sha256:"), "digest file: {digest}");
    digest
}

/// `stella-kit` with the test's reproducible environment, and TMPDIR inside the test directory so the
/// pull staging directory can be checked for removal.
fn kit_tmp(d: &Path, args: &[&str]) -> Run {
    let tmp = d.join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let epoch = EPOCH.to_string();
    let state = d.join("state");
    run_env(
        "stella-kit",
        d,
        args,
        &[
            ("SOURCE_DATE_EPOCH", &epoch),
            ("STELLA_KIT_STATE", state.to_str().unwrap()),
            ("TMPDIR", tmp.to_str().unwrap()),
        ],
    )
}

fn build(d: &Path, image: &str, out: &str) -> Run {
    kit_tmp(
        d,
        &[
            "build",
            "--channel",
            "images",
            "--quiet",
            "--key",
            "site.key.pem",
            "--image",
            image,
            "--out",
            out,
        ],
    )
}

fn images_of(d: &Path, kit_file: &str) -> (Vec<Value>, Vec<String>) {
    let r = kit(d, &["inspect", "--json", kit_file]).ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let images = v["manifest"]["images"].as_array().unwrap().clone();
    let payloads = v["manifest"]["payloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    (images, payloads)
}

fn blob_name(digest: &str) -> String {
    format!("oci/{}", digest.replace(':', "/"))
}

/// Stores `bytes` as a blob of an OCI layout; returns its descriptor fields (digest, size).
fn put_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let tmp = layout.join("blob.tmp");
    fs::write(&tmp, bytes).unwrap();
    let r = tool("sha256sum", layout, &["blob.tmp"]).ok();
    let hex = r.stdout.split_whitespace().next().unwrap().to_owned();
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::rename(&tmp, layout.join("blobs/sha256").join(&hex)).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

/// A layout whose index.json names (`multi`) an image index of two single-layer platform images.
/// Returns the layout directory, the index digest and the two manifest digests.
fn multi_platform_layout(d: &Path) -> (PathBuf, String, Vec<String>) {
    let layout = d.join("multi");
    fs::create_dir_all(&layout).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut descs = Vec::new();
    let mut manifests = Vec::new();
    for arch in ["amd64", "arm64"] {
        // Layer contents are opaque to the registry and the kit; a tiny tar made here is enough.
        let mut tar = tar::Builder::new(Vec::new());
        let data = format!("hello from {arch}\n");
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "hello.txt", data.as_bytes())
            .unwrap();
        let (layer, layer_size) = put_blob(&layout, &tar.into_inner().unwrap());
        let config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer]},
            "config": {}
        });
        let (config, config_size) = put_blob(&layout, config.to_string().as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}]
        });
        let (m, m_size) = put_blob(&layout, manifest.to_string().as_bytes());
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m, "size": m_size,
            "platform": {"architecture": arch, "os": "linux"}
        }));
        manifests.push(m);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": descs
    });
    let (idx, idx_size) = put_blob(&layout, index.to_string().as_bytes());
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": idx, "size": idx_size,
            "annotations": {"org.opencontainers.image.ref.name": "multi"}
        }]
    });
    fs::write(layout.join("index.json"), top.to_string()).unwrap();
    (layout, idx, manifests)
}

#[test]
fn pulls_an_image_and_an_index_by_digest() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let Some(reg) = setup(d) else { return };
    gen_key(d, "fips", None, "site");

    // A single image from the corpus (copied: skopeo wants to open the layout read-write).
    if let Some(c) = corpus() {
        let src = c.join("images/go-containerregistry/pkg/v1/layout/testdata/test_index_one_image");
        if src.is_dir() {
            let layout = d.join("one");
            fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
            for f in ["oci-layout", "index.json"] {
                fs::copy(src.join(f), layout.join(f)).unwrap();
            }
            for e in fs::read_dir(src.join("blobs/sha256")).unwrap() {
                let e = e.unwrap();
                fs::copy(e.path(), layout.join("blobs/sha256").join(e.file_name())).unwrap();
            }
            let digest = push(
                d,
                &format!("oci:{}", layout.display()),
                &reg,
                "test/img:1",
                false,
            );
            let spec = format!("registry:{}/test/img@{digest}", reg.addr);
            build(d, &spec, "one.kit").ok();
            kit(
                d,
                &["verify", "--at", AT, "--trust", "site.pub.pem", "one.kit"],
            )
            .ok();
            let (images, payloads) = images_of(d, "one.kit");
            assert_eq!(images.len(), 1, "{images:?}");
            let img = &images[0];
            assert_eq!(img["manifest"], digest.as_str());
            assert_eq!(img["source"], spec.as_str());
            assert_eq!(
                img["name"],
                format!("{}/test/img@{digest}", reg.addr).as_str()
            );
            assert_eq!(
                img["layers"],
                serde_json::json!([
                    "sha256:492b89b9dd3cda4596f94916d17f6901455fb8bd7f4c5a2a90df8d39c90f48a0"
                ])
            );
            assert_eq!(
                img["config"],
                "sha256:381d958b555884ba59574ab5c066e9f6116b5aec3567675aa13bec63331f0810"
            );
            for blob in [
                digest.as_str(),
                img["config"].as_str().unwrap(),
                img["layers"][0].as_str().unwrap(),
            ] {
                assert!(
                    payloads.contains(&blob_name(blob)),
                    "{blob} not carried: {payloads:?}"
                );
            }
        }
    }

    // A multi-platform index: every manifest it lists is pulled and becomes an image record.
    let (layout, index, manifests) = multi_platform_layout(d);
    let pushed = push(
        d,
        &format!("oci:{}:multi", layout.display()),
        &reg,
        "test/multi:1",
        true,
    );
    assert_eq!(pushed, index, "skopeo changed the index digest");
    let spec = format!("registry:{}/test/multi@{index}", reg.addr);
    build(d, &spec, "multi.kit").ok();
    kit(
        d,
        &["verify", "--at", AT, "--trust", "site.pub.pem", "multi.kit"],
    )
    .ok();
    let (images, payloads) = images_of(d, "multi.kit");
    let mut got: Vec<&str> = images
        .iter()
        .map(|i| i["manifest"].as_str().unwrap())
        .collect();
    got.sort_unstable();
    let mut want: Vec<&str> = manifests.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    for img in &images {
        assert_eq!(img["source"], spec.as_str());
        assert_eq!(
            img["name"],
            format!(
                "{}/test/multi@{}",
                reg.addr,
                img["manifest"].as_str().unwrap()
            )
            .as_str()
        );
        assert_eq!(img["layers"].as_array().unwrap().len(), 1);
    }
    assert!(
        payloads.contains(&blob_name(&index)),
        "index not carried: {payloads:?}"
    );
    assert_eq!(
        payloads.len(),
        7,
        "index + 2 x (manifest, config, layer): {payloads:?}"
    );

    // The pulled blobs lived in a temporary directory that is gone once the kit is written.
    let left: Vec<_> = fs::read_dir(d.join("tmp")).unwrap().collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
    drop(reg);
}

#[test]
fn refuses_tags_unknown_digests_and_unreachable_registries() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let Some(reg) = setup(d) else { return };
    gen_key(d, "fips", None, "site");
    let (layout, index, _) = multi_platform_layout(d);
    push(
        d,
        &format!("oci:{}:multi", layout.display()),
        &reg,
        "test/multi:1",
        true,
    );

    // A tag names whatever the registry serves today; only digests are pulled.
    build(d, &format!("registry:{}/test/multi:1", reg.addr), "x.kit")
        .fails(2, "tags are not accepted, pull by digest");
    build(
        d,
        &format!("registry:{}/test/multi:1@{index}", reg.addr),
        "x.kit",
    )
    .fails(2, "give a digest without a tag");

    // A digest the registry does not hold: the error names it, the repository and the status.
    let missing = format!("sha256:{}", "0".repeat(64));
    build(d, &format!("registry:{}/test/multi@{missing}", reg.addr), "x.kit").fails(
        2,
        &format!(
            "registry {}: repository test/multi: manifest {missing}: not found [MANIFEST_UNKNOWN] (HTTP 404)",
            reg.addr
        ),
    );
    // The right digest in a repository that does not exist.
    build(
        d,
        &format!("registry:{}/test/none@{index}", reg.addr),
        "x.kit",
    )
    .fails(2, "repository test/none: manifest");

    // Nothing listens: the error names the registry.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    build(
        d,
        &format!("registry:127.0.0.1:{port}/test/multi@{index}"),
        "x.kit",
    )
    .fails(
        2,
        &format!("registry 127.0.0.1:{port}: repository test/multi"),
    );
    assert!(!d.join("x.kit").exists());
    drop(reg);
}

/// Pushes an OCI layout to an HTTPS registry, trusting its CA through a skopeo certificate directory.
fn push_tls(d: &Path, src: &str, reg: &Registry, ca: &Path, dest: &str) -> String {
    let certs = d.join("skopeo-certs");
    fs::create_dir_all(&certs).unwrap();
    fs::copy(ca, certs.join("ca.crt")).unwrap();
    let digestfile = d.join("pushed.digest");
    tool(
        "skopeo",
        d,
        &[
            "copy",
            "--dest-cert-dir",
            certs.to_str().unwrap(),
            "--preserve-digests",
            "--all",
            "--digestfile",
            digestfile.to_str().unwrap(),
            src,
            &format!("docker://{}/{dest}", reg.addr),
        ],
    )
    .ok();
    fs::read_to_string(digestfile).unwrap().trim().to_owned()
}

/// A registry on 127.0.0.1 serving HTTPS with a certificate from a test CA: pulled with `--registry-ca`
/// (flag or kit.toml key); without it, or with another CA, the build fails on the certificate (exit 1).
#[test]
fn https_registry_needs_its_ca() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    if !have("skopeo") || !have("openssl") {
        eprintln!("skipping: skopeo or openssl not installed");
        return;
    }
    let pki = TestPki::new(&d.join("pki"));
    let other = TestPki::new(&d.join("other-pki"));
    let Some(reg) = Registry::start_tls(d, &pki) else {
        return;
    };
    gen_key(d, "fips", None, "site");
    let (layout, index, manifests) = multi_platform_layout(d);
    let pushed = push_tls(
        d,
        &format!("oci:{}:multi", layout.display()),
        &reg,
        &pki.ca,
        "test/tls",
    );
    assert_eq!(pushed, index, "skopeo changed the index digest");
    let spec = format!("registry:{}/test/tls@{index}", reg.addr);
    let with_ca = |ca: &Path, out: &str| {
        kit_tmp(
            d,
            &[
                "build",
                "--channel",
                "images",
                "--quiet",
                "--key",
                "site.key.pem",
                "--image",
                &spec,
                "--registry-ca",
                ca.to_str().unwrap(),
                "--out",
                out,
            ],
        )
    };

    // The right CA: pulled over TLS, carried, and the kit verifies.
    with_ca(&pki.ca, "tls.kit").ok();
    kit(
        d,
        &["verify", "--at", AT, "--trust", "site.pub.pem", "tls.kit"],
    )
    .ok();
    let (images, payloads) = images_of(d, "tls.kit");
    assert_eq!(images.len(), 2, "{images:?}");
    for m in &manifests {
        assert!(payloads.contains(&blob_name(m)), "{m} not carried");
    }

    // No CA given: the built-in roots do not know the test CA. Never a silent fall back to plain HTTP.
    let untrusted = format!(
        "registry {}: TLS certificate not trusted: it is not signed by a trusted CA (unknown issuer) \
         (give the CA that signed it with --registry-ca FILE.pem)",
        reg.addr
    );
    build(d, &spec, "none.kit").fails(1, &untrusted);
    // Another CA, of the same name but with another key: refused too.
    with_ca(&other.ca, "other.kit").fails(
        1,
        &format!(
            "registry {}: TLS certificate not trusted: it is not signed by a trusted CA (a CA of the \
             same name, another key) (give the CA that signed it with --registry-ca FILE.pem)",
            reg.addr
        ),
    );
    // A CA file with no certificate in it is a usage error naming the file.
    fs::write(d.join("empty.pem"), "not a certificate\n").unwrap();
    with_ca(&d.join("empty.pem"), "empty.kit").fails(2, "empty.pem: no PEM certificate in it");
    for k in ["none.kit", "other.kit", "empty.kit"] {
        assert!(!d.join(k).exists(), "{k} written");
    }

    // The CA named in a kit.toml, relative to the file.
    fs::create_dir_all(d.join("conf")).unwrap();
    fs::copy(&pki.ca, d.join("conf/registry-ca.pem")).unwrap();
    fs::write(
        d.join("conf/kit.toml"),
        format!(
            "channel = \"images\"\nkeys = [\"../site.key.pem\"]\nimages = [\"{spec}\"]\n\
             registry-ca = \"registry-ca.pem\"\nout = \"../toml.kit\"\n"
        ),
    )
    .unwrap();
    kit_tmp(d, &["build", "--quiet", "--config", "conf/kit.toml"]).ok();
    kit(
        d,
        &["verify", "--at", AT, "--trust", "site.pub.pem", "toml.kit"],
    )
    .ok();
    drop(reg);
}
