#!/bin/bash
# Guest script of test/vm/ipvs.test.ts: the shared packet stories on the VM's IPVS
# kernel, checked for real and against the tracer (stories.ts beside this file).
# Plain node with tsx: the test harness is TypeScript; kproxy itself runs from dist/.
set -u
cd /project || exit 1
exec node --import tsx test/vm/guest/stories.ts
