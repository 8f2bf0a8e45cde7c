# kproxy's node agent image: `kproxy run` plus the kernel tools of every proxy mode.
#
#   docker build -t kproxy:dev .          (scripts/kind-up.sh does this for you)
#
# Two stages: the full Node image compiles the TypeScript and installs the
# dependencies (with the compilers node-gyp would need); the final stage is the
# slim image with only dist/, the production node_modules and the kernel tools.
# test/ship/dockerfile.test.ts lints this file and checks both stages.

# ---- build ------------------------------------------------------------------
FROM node:20.20.2-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Dependencies first (a cached layer while only the sources change). The root
# package's `prepare` would compile before the sources are here, so scripts are
# skipped here and the dependencies' own install scripts run in `npm rebuild`.
RUN npm ci --no-audit --no-fund --ignore-scripts \
  && npm rebuild --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Compile (tsc leaves the bin without its execute bit), then drop the
# devDependencies (TypeScript, tsx, ava, biome...) and the empty scope
# directories (@biomejs/, @esbuild/...) npm prune leaves behind.
RUN npm run build \
  && chmod 0755 dist/cli.js \
  && npm prune --omit=dev --no-audit --no-fund \
  && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete

# ---- run --------------------------------------------------------------------
FROM node:20.20.2-bookworm-slim

LABEL org.opencontainers.image.title="kproxy" \
      org.opencontainers.image.description="A kube-proxy reimplementation in TypeScript, with a dry-run diff" \
      org.opencontainers.image.licenses="Apache-2.0"

# The tools kproxy runs: iptables (provides iptables-legacy and iptables-nft, for
# IPv4 and IPv6), ipset and ipvsadm (ipvs mode), nftables (nft, nftables mode),
# conntrack (clearing stale UDP flows), iproute2 (ip), kmod (modprobe: ipvs mode
# loads ip_vs and its scheduler from the node's /lib/modules; without it the
# kernel's own module autoload is the fallback). Versions come with the
# pinned Debian release of the base image; pinning each package's version would
# break the build at Debian's next point release, which removes the old version.
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends \
    conntrack \
    iproute2 \
    ipset \
    iptables \
    ipvsadm \
    kmod \
    nftables \
  && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production
WORKDIR /opt/kproxy
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The package's bin ("kproxy": "dist/cli.js"), on PATH.
RUN ln -s /opt/kproxy/dist/cli.js /usr/local/bin/kproxy

# Runs as root: programming iptables, IPVS and conntrack needs CAP_NET_ADMIN in
# the node's network namespace (the DaemonSet runs it privileged, as kube-proxy).
ENTRYPOINT ["kproxy", "run"]
