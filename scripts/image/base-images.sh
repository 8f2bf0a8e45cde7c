#!/usr/bin/env bash
# Local stand-ins for the Dockerfile's FROM images, since no container registry is
# reachable from CI: a Debian root file system made by debootstrap from Debian's
# mirror, plus this machine's Node (which must be the version the FROM lines pin),
# tagged with the very names the FROM lines use, so that the Dockerfile that ships
# is the one that is built.
#
#   scripts/image/base-images.sh        # idempotent; needs the daemon (docker-daemon.sh start)
#
# What differs from the official node images: Debian's minbase variant (no
# build tools in the build stand-in: kproxy's one native dependency, netlink,
# ships prebuilt binaries), Node copied from this host (/usr/bin/node, npm,
# corepack) into /usr/local as the official images have it. The build stand-in
# also carries this host's CA bundle with NODE_EXTRA_CA_CERTS pointing at it, so
# that `npm ci` trusts a TLS-intercepting proxy the host trusts (TLS checks stay
# on); the slim stand-in, the final image's base, carries no such thing.
#
# The debootstrap tarball is cached in ${KPROXY_CACHE:-/var/cache/kproxy}/image
# (about 2 minutes to make); images are rebuilt when this recipe, the Node or the
# CA bundle change (a label holds their hash).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cache="${KPROXY_CACHE:-/var/cache/kproxy}/image"
sock="$(bash "$repo/scripts/image/docker-daemon.sh" socket)"
mirror="${KPROXY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
docker=(/usr/bin/docker -H "unix://$sock")
node=/usr/bin/node
node_modules=/usr/lib/node_modules
ca_bundle=/etc/ssl/certs/ca-certificates.crt
say() { printf 'base-images: %s\n' "$*" >&2; }

# The FROM lines: node:X.Y.Z-<suite> (build) and node:X.Y.Z-<suite>-slim (final).
mapfile -t froms < <(awk 'toupper($1) == "FROM" { for (i = 2; i <= NF; i++) if ($i !~ /^--/) { print $i; break } }' "$repo/Dockerfile")
full="" slim=""
for f in "${froms[@]}"; do
  if [[ "$f" =~ ^node:([0-9]+\.[0-9]+\.[0-9]+)-([a-z]+)-slim$ ]]; then slim="$f"
  elif [[ "$f" =~ ^node:([0-9]+\.[0-9]+\.[0-9]+)-([a-z]+)$ ]]; then full="$f"
  else say "Dockerfile: FROM $f is not a node:X.Y.Z-<debian>[-slim] image; no stand-in recipe for it"; exit 1
  fi
done
[ -n "$full" ] && [ -n "$slim" ] || { say "Dockerfile: expected a node:X.Y.Z-<debian> and a -slim FROM, found: ${froms[*]}"; exit 1; }
[[ "$full" =~ ^node:([0-9.]+)-([a-z]+)$ ]]
version="${BASH_REMATCH[1]}" suite="${BASH_REMATCH[2]}"
[ "$slim" = "node:$version-$suite-slim" ] || { say "Dockerfile: $full and $slim differ in Node or Debian release"; exit 1; }

[ -x "$node" ] || { say "missing $node (Node $version)"; exit 1; }
host_version="$("$node" --version)"
if [ "$host_version" != "v$version" ]; then
  say "the Dockerfile pins Node $version, this host has $host_version ($node): the stand-in would not be" \
    "what the Dockerfile asks for; install Node $version here or change the FROM lines"
  exit 1
fi
for f in /usr/sbin/debootstrap "$ca_bundle" "$node_modules/npm/bin/npm-cli.js"; do
  [ -e "$f" ] || { say "missing $f (scripts/install-test-deps.sh installs debootstrap)"; exit 1; }
done
"${docker[@]}" version >/dev/null 2>&1 || { say "no docker daemon on $sock: run scripts/image/docker-daemon.sh start"; exit 1; }

# ---- Debian: debootstrap once, cached as a tarball, imported into the daemon.
# The name changes with the root file system's recipe below (v2: slim, apt settings).
tarball="$cache/debian-$suite-minbase-v2.tar.gz"
if [ ! -s "$tarball" ]; then
  mkdir -p "$cache"
  root="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$root"' EXIT
  say "debootstrap --variant=minbase $suite from $mirror (about 2 minutes)"
  /usr/sbin/debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    say "debootstrap failed; last lines of $cache/debootstrap.log:"
    tail -n 20 "$cache/debootstrap.log" >&2
    exit 1
  }
  # The official Debian images' sources: the release, its updates and security.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  # The official images' apt and dpkg settings (debuerreotype's): no package
  # caches left in a layer (/var/cache/apt/*.bin alone is ~80 MB), no translations,
  # and, as Debian's slim images, no documentation, manuals or locales.
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
DPKG
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{info,linda,locale,man}/* "$root"/usr/share/lintian/overrides/*
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
    "$root"/var/log/* "$root"/tmp/*
  tar -C "$root" --numeric-owner -czf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$root"
  trap - EXIT
fi

# Images are rebuilt when anything they are made of changes.
recipe="$(cat "${BASH_SOURCE[0]}" "$tarball" "$node" "$ca_bundle" | sha256sum | cut -c1-16)"
label=org.kproxy.stand-in
current() { [ "$("${docker[@]}" image inspect -f "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null)" = "$recipe" ]; }
if current "$full" && current "$slim"; then
  say "$full and $slim are up to date (stand-ins $recipe)"
  exit 0
fi

debian="kproxy-stand-in/debian:$suite-minbase"
say "importing $tarball as $debian"
"${docker[@]}" import --change 'CMD ["bash"]' "$tarball" "$debian" >/dev/null

# Node as the official images lay it out: /usr/local/bin/node and npm, npx, corepack.
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/usr/local/lib/node_modules"
cp "$node" "$ctx/rootfs/usr/local/bin/node"
cp -a "$node_modules/npm" "$node_modules/corepack" "$ctx/rootfs/usr/local/lib/node_modules/"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/rootfs/usr/local/bin/npx"
ln -s ../lib/node_modules/corepack/dist/corepack.js "$ctx/rootfs/usr/local/bin/corepack"
cp "$ca_bundle" "$ctx/ca-certificates.crt"

build() { # tag, extra Dockerfile lines
  printf '%s\n' \
    "FROM $debian" \
    "COPY rootfs/ /" \
    "ENV NODE_VERSION=$version" \
    "LABEL $label=$recipe" \
    "$2" \
    'CMD ["node"]' >"$ctx/Dockerfile"
  say "building $1 (stand-in)"
  "${docker[@]}" build -q --network none -t "$1" "$ctx" >/dev/null
}
build "$slim" ""
build "$full" "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt"
"${docker[@]}" run --rm --network none "$full" node --version >/dev/null
say "$full and $slim built (stand-ins $recipe)"
