#!/usr/bin/env bash
# Seeds corpus/<target>/ with a handful of inputs per fuzz target, taken from the shared third-party
# corpus (never committed: corpus/ is gitignored) and, when a `stella-kit` binary is at hand, a real
# signed kit and real keys of every profile. Existing files are kept, so what the fuzzers found grows.
#
#   ./seed-corpus.sh [SHARED_CORPUS_DIR]     (default: ../../../shared/corpus from this script)
#   STELLA_KIT=/path/to/stella-kit ./seed-corpus.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../../../shared/corpus}
out=$here/corpus
if [ ! -d "$src" ]; then
  echo "seed-corpus: shared corpus not found at $src; the fuzzers start from empty corpora" >&2
  src=
fi

seed() { # seed TARGET FILE [NAME]: copy FILE into corpus/TARGET when it exists
  local target=$1 file=$2 name=${3:-$(basename "$2")}
  mkdir -p "$out/$target"
  if [ -f "$file" ]; then cp -f "$file" "$out/$target/$name"; fi
}

mkdir -p "$out"/{feeds_parse,version_parse,purl_parse,kit_manifest,dsse_envelope,public_key_pem,private_key_pem,kit_read,oci_docker_archive,oci_layout,gzip_parallel,scan_docker_archive}

# Feeds: one or two small documents of every format, and the hand-made fixtures of the feeds tests.
for f in "$here"/../tests/data/*; do seed feeds_parse "$f"; done
if [ -n "$src" ]; then
  for rel in \
    advisories/vunnel/govulndb/GO-2023-1989.json \
    osv/osv-schema/tools/ghsa/testdata/multiple_ranges_in_package.osv.json \
    advisories/osv.dev/cvelistV5/cves/2023/23xxx/CVE-2023-23127.json \
    advisories/osv.dev/nvdcve-2.0/CVE-2023-5341.json \
    csaf/csaf/csaf_2.0/examples/csaf/rhsa-2019_1862.json \
    csaf/csaf/csaf_2.0/examples/csaf/csaf_vex/2022-evd-uc-04-001.json \
    openvex/go-vex/pkg/vex/testdata/v001-1.vex.json \
    openvex/go-vex/pkg/vex/testdata/v020-1.vex.json \
    cyclonedx/bom-examples/VEX/CISA-Use-Cases/Case-5/vex.json \
    advisories/osv.dev/debian/debian_security_tracker_mock.json \
    advisories/vuln-list-update/alpine/testdata/edge-main.json \
    advisories/vunnel/alpine/main.yaml \
    advisories/vunnel/kev/example1.json \
    advisories/vunnel/epss/example-1.csv; do
    seed feeds_parse "$src/$rel"
  done

  # Versions: the first byte picks the scheme (index into Scheme::ALL), then up to three versions, one
  # per line, taken from the comparison test cases ("a < b").
  vdir=$src/versions/osv-scalibr/semantic/testdata
  for pair in 0:debian-versions 1:redhat-versions 2:alpine-versions 3:semver-versions \
              4:pypi-versions 5:maven-versions 6:semver-versions 7:nuget-versions \
              8:rubygems-versions 9:packagist-versions; do
    idx=${pair%%:*} file=$vdir/${pair#*:}.txt
    [ -f "$file" ] || continue
    n=0
    grep -E '^[^#/ ]+ [<=>] [^ ]+$' "$file" | head -n 12 | while read -r a _ b; do
      n=$((n + 1))
      printf "\\x0${idx}%s\n%s" "$a" "$b" >"$out/version_parse/s$idx-$n"
    done || true
  done

  # Purls as the corpus writes them.
  n=0
  grep -rhoE '"pkg:[^" ]+"' "$src/cyclonedx/bom-examples" "$src/openvex" "$src/csaf/csaf/csaf_2.0/examples" 2>/dev/null \
    | tr -d '"' | sort -u | head -n 40 | while read -r p; do
      n=$((n + 1))
      printf '%s' "$p" >"$out/purl_parse/purl-$n"
    done || true

  # DSSE envelopes: signed in-toto statements (one JSON envelope per line).
  n=0
  for f in "$src"/in-toto/slsa-verifier/cli/slsa-verifier/testdata/*.intoto.jsonl; do
    [ -f "$f" ] || continue
    n=$((n + 1)); [ $n -le 4 ] || break
    head -n 1 "$f" >"$out/dsse_envelope/$(basename "$f" .jsonl).json"
  done

  # PEM: the certificates are not keys, which is a useful near miss.
  for f in "$src"/crypto/botan/x509/gost/*.pem; do
    seed public_key_pem "$f"; seed private_key_pem "$f"
  done

  # Docker archives and OCI layouts (tarred, with ./ paths as `tar -C` writes them).
  for f in "$src"/images/go-containerregistry/pkg/v1/tarball/testdata/*.tar; do
    seed oci_docker_archive "$f"; seed scan_docker_archive "$f"
  done
  # Docker-archives naming layers through links: a shared layer (symbolic and hard link), a loop, an
  # escape. The scanner's reader follows links inside the archive and refuses the rest.
  links=$(mktemp -d)
  (
    cd "$links"
    mkdir -p shared/a shared/b loop/a loop/b escape/a
    for d in shared loop escape; do printf '{}' >"$d/c.json"; done
    cp "$src"/images/go-containerregistry/pkg/v1/tarball/testdata/test_image_1.tar shared/a/layer.tar
    ln -s ../a/layer.tar shared/b/layer.tar
    ln shared/a/layer.tar shared/hard.tar
    ln -s ../b/layer.tar loop/a/layer.tar
    ln -s ../a/layer.tar loop/b/layer.tar
    ln -s ../../etc/passwd escape/a/layer.tar
    printf '[{"Config":"c.json","Layers":["a/layer.tar","b/layer.tar","hard.tar"]}]' >shared/manifest.json
    printf '[{"Config":"c.json","Layers":["a/layer.tar"]}]' >loop/manifest.json
    cp loop/manifest.json escape/manifest.json
    for d in shared loop escape; do tar -C "$d" -cf "$out/scan_docker_archive/links-$d.tar" .; done
  ) || true
  rm -rf "$links"

  for d in "$src"/images/go-containerregistry/pkg/v1/layout/testdata/*/; do
    [ -f "$d/oci-layout" ] || continue
    tar -C "$d" -cf "$out/oci_layout/$(basename "$d").tar" .
  done
fi

# The parallel gzip reader: recipes (see fuzz_targets/gzip_parallel.rs; byte 0 below 0x80) mixing
# words, noise, runs, long copies and an embedded gzip stream, at several levels, tunings and shapes.
prog='\x06\x1f\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x00\x01\x02\x03\x04\x05\x06\x07\x04\xff\x1f\x34\x12\x05\x00\x10\xff\x1f\x03\x00\xff\x0f\x06\x1f\x07\x07\x03\x0b\x05\x05\x40\x00\xff\x1f\x07\xff\x0f\x04\x00\x10\x99\x88'
for head in '\x05\x00\x00' '\x01\x01\x00' '\x08\x02\x08' '\x45\x83\x60' '\x02\x0c\x21' '\x06\x10\xe3'; do
  n=$(printf '%s' "$head" | tr -d '\\x' | head -c 12)
  { printf "$head"; for _ in 1 2 3 4 5 6 7 8 9 10 11 12; do printf "$prog"; done; } >"$out/gzip_parallel/recipe-$n"
done
if [ -n "$src" ]; then
  # Gzip blobs as they are (byte 0 at 0x80 or above): small layout layers, and 128 KiB of a real image's
  # tar compressed by gzip(1), whose blocks split where zlib-rs's do not.
  n=0
  for f in "$src"/images/go-containerregistry/pkg/v1/layout/testdata/test_index/blobs/sha256/*; do
    [ "$(head -c 2 "$f" | od -An -tx1 | tr -d ' ')" = 1f8b ] || continue
    n=$((n + 1))
    { printf '\x80\x00'; cat "$f"; } >"$out/gzip_parallel/raw-layout-$n"
  done
  alpine=$src/images/trivy/alpine-310.docker-archive.tar.gz
  if [ -f "$alpine" ] && command -v gzip >/dev/null; then
    for level in 1 6 9; do
      { printf '\x80\x01'; gzip -dc "$alpine" | head -c 131072 | gzip -"$level" -n; } >"$out/gzip_parallel/raw-alpine-$level" || true
    done
  fi
fi

# A real kit, its manifest and envelope, and keys of every profile, when stella-kit is available.
kit_bin=${STELLA_KIT:-}
for c in "$here/../../target/release/stella-kit" "$here/../../target/debug/stella-kit"; do
  [ -n "$kit_bin" ] || { [ -x "$c" ] && kit_bin=$c; }
done
if [ -n "$kit_bin" ] && [ -x "$kit_bin" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (
    cd "$tmp"
    export STELLA_KIT_STATE=$tmp/state
    for p in fips eidas gost sm; do
      if "$kit_bin" key generate --profile "$p" --out "$p" >/dev/null 2>&1; then
        cp "$p.pub.pem" "$out/public_key_pem/$p.pub.pem"
        cp "$p.key.pem" "$out/private_key_pem/$p.key.pem"
      fi
    done
    mkdir feeds
    cp "$here"/../tests/data/osv-ok.json feeds/
    if [ -f fips.key.pem ] && "$kit_bin" build --channel fuzz --quiet --feeds feeds --key fips.key.pem --out seed.kit >/dev/null 2>&1; then
      { printf '\x01'; cat seed.kit; } >"$out/kit_read/kit-raw"
      { printf '\x00'; zstd -dc seed.kit; } >"$out/kit_read/kit-tar"
      tar --zstd -xOf seed.kit kit.json >"$out/kit_manifest/kit.json"
      tar --zstd -xOf seed.kit kit.dsse.json >"$out/dsse_envelope/kit.dsse.json"
    fi
  )
else
  echo "seed-corpus: no stella-kit binary (build it, or set STELLA_KIT); kit seeds skipped" >&2
fi

for d in "$out"/*/; do printf '%-20s %s\n' "$(basename "$d")" "$(find "$d" -type f | wc -l)"; done
