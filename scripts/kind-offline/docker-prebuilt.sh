#!/usr/bin/env bash
# docker for kind-up.sh in the kind engine, except that `docker build -t IMAGE ...`
# only checks that IMAGE is there: the kind engine's builds have no network (npm ci),
# so up.sh brings the image tier's build in instead. Everything else is docker.
set -euo pipefail
docker=/usr/bin/docker
if [[ "${1:-}" == build ]]; then
  image=""
  shift
  while (($#)); do
    case "$1" in
      -t | --tag) image="$2"; shift 2 ;;
      *) shift ;;
    esac
  done
  if [[ -n "$image" ]] && "$docker" image inspect "$image" >/dev/null 2>&1; then
    echo "docker-prebuilt: $image is there, not built (the kind engine's builds have no network)" >&2
    exit 0
  fi
  echo "docker-prebuilt: no image ${image:-?} in the kind engine; see scripts/kind-offline/up.sh" >&2
  exit 1
fi
exec "$docker" "$@"
