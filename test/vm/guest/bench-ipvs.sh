#!/bin/bash
# Guest script: the IPVS benchmark (scripts/bench-ipvs.ts) inside the test VM.
#   bash scripts/ipvs-vm/run.sh --smp 2 --mem 4096 --timeout 3600 test/vm/guest/bench-ipvs.sh [--services N,M]
cd /project && exec node --import tsx scripts/bench-ipvs.ts "$@"
