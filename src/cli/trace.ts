// `kproxy trace TARGET`: where one packet goes on this node, and why. Resolves
// the target as a pod would, builds the packet, reads the rules (the kernel of
// this namespace, a dump, or what kproxy would write) and runs the mode's
// evaluator over them. Exit 0 when the packet reaches an endpoint (or the node
// itself), 1 when it is rejected, dropped or handled by no Service rule.
import { type Destination, destinationFor, type NotTraced } from '../trace/destination.js';
import { defaultPodSource, ofFamily } from '../trace/source.js';
import { parseTarget } from '../trace/target.js';
import { traceText } from '../trace/text.js';
import {
  notEvaluated,
  type Packet,
  type SourceKind,
  type TraceResult,
  traceExitCode,
} from '../trace/types.js';
import { canonicalIP, familyOf, type IPFamily, isLoopback } from '../util/ip.js';
import { UsageError } from './errors.js';
import { type RulesRequest, rulesFor } from './trace-rules.js';

export interface TraceRequest extends RulesRequest {
  target: string;
  /** --from: a pod IP, `node` or `external:IP`; a pod of this node when undefined. */
  from?: string;
  namespace: string;
  clusterDomain: string;
  output: 'text' | 'json';
  inInterface?: string;
}

/** The packet's source: `--from` read, or a pod of this node by default. */
function sourceFor(req: TraceRequest, family: IPFamily, dst: string, local: string[]) {
  const from = req.from;
  const result = (src: string, kind: SourceKind, words: string) => ({ src, kind, words });
  if (from === 'node') {
    if (isLoopback(dst)) return result(family === 'IPv4' ? '127.0.0.1' : '::1', 'node', 'the node itself');
    const own =
      ofFamily(req.node.addresses, family)[0] ?? ofFamily(local, family).find((ip) => !isLoopback(ip));
    if (!own) throw new UsageError("--from node: the node's address is not known (give --node-ip)");
    return result(own, 'node', 'the node itself');
  }
  if (from?.startsWith('external:')) {
    const ip = canonicalIP(from.slice('external:'.length));
    if (!ip) throw new UsageError(`--from ${from}: not an IP address after "external:"`);
    return result(ip, 'external', 'a client outside the node');
  }
  if (from !== undefined) {
    const ip = canonicalIP(from);
    if (!ip) throw new UsageError(`--from "${from}": give a pod's IP, node or external:IP`);
    return result(ip, 'pod', 'a pod');
  }
  const pod = defaultPodSource(req.node, req.options.clusterCIDRs, family);
  if (!pod) {
    throw new UsageError(
      '--from: no pod CIDR is known for this node (Node spec.podCIDR or --cluster-cidr): give --from POD_IP, node or external:IP',
    );
  }
  return result(pod.ip, 'pod', `a pod of this node (an address of ${pod.cidr}; choose one with --from)`);
}

function jsonResult(
  req: TraceRequest,
  d: Destination | NotTraced,
  r: TraceResult | undefined,
  exitCode: number,
) {
  const dns = d.dns && {
    name: req.target,
    fqdn: d.dns.fqdn,
    kind: d.dns.kind,
    service: `${d.dns.service.metadata?.namespace}/${d.dns.service.metadata?.name}`,
    ...(d.dns.kind === 'external-name' ? { cname: d.dns.cname } : { addresses: d.dns.addresses }),
    tried: d.tried,
  };
  const servicePort = 'servicePort' in d ? d.servicePort : undefined;
  const extra = r ? { ...r, notEvaluated: notEvaluated(r) } : {};
  return `${JSON.stringify({ target: req.target, dns, servicePort, ...extra, exitCode }, null, 2)}\n`;
}

export async function runTrace(req: TraceRequest): Promise<{ text: string; exitCode: number }> {
  const target = parseTarget(req.target);
  const family = target.kind === 'address' ? familyOf(target.ip) : (req.options.ipFamilies[0] as IPFamily);
  const resolver = { namespace: req.namespace, clusterDomain: req.clusterDomain };
  const d = destinationFor(target, req.snapshot, resolver, family);
  if (!('ip' in d)) {
    const text = `dns:     ${req.target} -> ${d.dns.fqdn} CNAME ${d.dns.cname} (ExternalName Service: resolved by DNS outside the cluster; no Service rule is involved)\n`;
    return { text: req.output === 'json' ? jsonResult(req, d, undefined, 0) : text, exitCode: 0 };
  }
  const rules = await rulesFor(req, family);
  const source = sourceFor(req, family, d.ip, rules.local);
  const packet: Packet = {
    src: source.src,
    dst: d.ip,
    proto: d.proto,
    dport: d.port,
    from: source.kind,
    ...(req.inInterface ? { inInterface: req.inInterface } : {}),
  };
  const result = rules.trace(packet);
  result.notes.unshift(`source ${packet.src}: ${source.words}`);
  // A headless Service's Pods are reached directly: no Service rule is the expected way.
  const direct = d.dns?.kind === 'headless' && result.outcomes.every((o) => o.verdict === 'unchanged');
  const exitCode = direct ? 0 : traceExitCode(result);
  if (req.output === 'json') return { text: jsonResult(req, d, result, exitCode), exitCode };
  return { text: traceText(req.target, d, result), exitCode };
}
