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

mkdir -p "$out"/{feeds_parse,version_parse,purl_parse,kit_manifest,dsse_envelope,public_key_pem,private_key_pem,kit_read,oci_docker_archive,oci_layout}

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
  for f in "$src"/images/go-containerregistry/pkg/v1/tarball/testdata/*.tar; do seed oci_docker_archive "$f"; done
  for d in "$src"/images/go-containerregistry/pkg/v1/layout/testdata/*/; do
    [ -f "$d/oci-layout" ] || continue
    tar -C "$d" -cf "$out/oci_layout/$(basename "$d").tar" .
  done
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
