#!/usr/bin/env bash
# kproxy vs upstream kube-proxy, side by side; see docs/benchmarks.md.
#   sudo scripts/bench.sh            # quick: 1,000 Services, all three modes, a few minutes
#   sudo scripts/bench.sh --full     # the documented run (1,000 and 10,000 Services)
#   scripts/bench.sh --help
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec node --import tsx scripts/bench/run.ts "$@"
