// `kproxy verify --against DUMP`: every packet class of the cluster traced
// through the rules in DUMP (a node running kube-proxy, say) and through the
// rules kproxy would write; each class whose fate differs is listed. Exit 0 when
// none does. The check to run before replacing kube-proxy on a live node, and after.
import { serviceCIDRsOf } from '../cluster/service-cidr.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import { buildProxyModel } from '../model/build.js';
import { notEvaluated, type Step } from '../trace/types.js';
import { fateDifference, fateOf, packetClasses } from '../trace/verify.js';
import { UsageError } from './errors.js';
import { type Rules, type RulesRequest, rulesFor } from './trace-rules.js';

export interface VerifyRequest extends RulesRequest {
  against: string;
  output: 'text' | 'json';
}

interface Difference {
  servicePort: string;
  packet: string;
  /** Ways only the dump's rules take, and ways only kproxy's take. */
  theirs: string[];
  ours: string[];
}

export async function runVerify(req: VerifyRequest): Promise<{ text: string; exitCode: number }> {
  if (!req.snapshot)
    throw new UsageError("verify needs the cluster's objects: give --from-file or --kubeconfig");
  const differences: Difference[] = [];
  const skipped = new Map<string, Step>();
  let classes = 0;
  for (const family of req.options.ipFamilies) {
    const model = buildProxyModel(req.snapshot as ClusterSnapshot, req.node, family);
    const theirs: Rules = await rulesFor(req, family);
    const { against: _, ...desired } = req;
    const ours: Rules = await rulesFor(desired, family);
    const serviceCIDRs = serviceCIDRsOf(req.options.serviceCIDRs, req.snapshot?.serviceCIDRs);
    for (const c of packetClasses(model, req.options.clusterCIDRs, serviceCIDRs)) {
      classes++;
      const a = theirs.trace(c.packet);
      for (const s of notEvaluated(a)) skipped.set(`${s.table} ${s.chain} ${s.index}`, s);
      const diff = fateDifference(fateOf(a), fateOf(ours.trace(c.packet)));
      if (diff)
        differences.push({
          servicePort: c.servicePort,
          packet: c.label,
          theirs: diff.only,
          ours: diff.onlyOther,
        });
    }
  }
  const exitCode = differences.length === 0 ? 0 : 1;
  if (req.output === 'json') {
    const notEvaluatedRules = [...skipped.values()];
    return {
      text: `${JSON.stringify({ against: req.against, classes, differences, notEvaluated: notEvaluatedRules, exitCode }, null, 2)}\n`,
      exitCode,
    };
  }
  const lines = [
    `verify: ${classes} packet classes traced through ${req.against} and through the rules kproxy would write for node ${req.node.name}`,
  ];
  for (const d of differences) {
    lines.push('', `${d.servicePort}: ${d.packet}`);
    for (const w of d.theirs) lines.push(`  ${req.against}: ${w}`);
    for (const w of d.ours) lines.push(`  kproxy: ${w}`);
  }
  if (skipped.size > 0) {
    lines.push('', `not evaluated in ${req.against} (assumed not to match): ${skipped.size} rule(s)`);
    for (const s of skipped.values()) lines.push(`  ${s.table} ${s.chain} rule ${s.index}: ${s.rule}`);
  }
  lines.push(
    '',
    differences.length === 0 ? 'no packet class differs' : `${differences.length} packet class(es) differ`,
  );
  return { text: `${lines.join('\n')}\n`, exitCode };
}
