// The rules of IPVS mode in one text: what a person collects from a node with
//   (iptables-save; ipset save; ipvsadm -Sn) > node.dump
// i.e. the three outputs one after the other. iptables-save's lines sit between
// a `*table` line and COMMIT; outside those, `create`/`add` lines are ipset's and
// `-A`/`-a` lines ipvsadm's. Also kproxy's desired state in that form. Pure.
import type { ParsedDump } from '../../backends/iptables-lib/parse.js';
import { ipsetText } from '../../backends/ipvs/ipset.js';
import { formatTable } from '../../backends/ipvs/ipvsadm.js';
import type { DesiredIpvs } from '../../backends/ipvs/render.js';
import { dumpFromDesired } from '../iptables/assume.js';
import type { Ipsets } from './sets.js';
import type { IpvsRules } from './trace.js';

export class IpvsDumpError extends Error {
  override name = 'IpvsDumpError';
}

export interface IpvsDumpParts {
  iptables: string;
  ipset: string;
  ipvsadm: string;
}

export function splitIpvsDump(text: string): IpvsDumpParts {
  const parts = { iptables: [] as string[], ipset: [] as string[], ipvsadm: [] as string[] };
  let inTable = false;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (inTable || line.startsWith('*')) {
      parts.iptables.push(line);
      inTable = line !== 'COMMIT';
    } else if (line === '' || line.startsWith('#')) {
      // blank lines and comments (iptables-save's header and trailer) say nothing
    } else if (/^(create|add) /.test(line)) parts.ipset.push(line);
    else if (/^-[Aa] /.test(line)) parts.ipvsadm.push(line);
    else
      throw new IpvsDumpError(
        `line ${i + 1}: "${line.slice(0, 60)}" is neither iptables-save (inside *table ... COMMIT), ipset save nor ipvsadm -Sn output`,
      );
  });
  const join = (l: string[]) => (l.length ? `${l.join('\n')}\n` : '');
  return { iptables: join(parts.iptables), ipset: join(parts.ipset), ipvsadm: join(parts.ipvsadm) };
}

/** A parsed dump as iptables-save prints it (chains declared, then rules, per table). */
export function iptablesSaveText(dump: ParsedDump): string {
  const lines: string[] = [];
  for (const [table, t] of dump) {
    lines.push(`*${table}`);
    for (const chain of t.chains.keys()) lines.push(`:${chain} ${t.policies?.get(chain) ?? '-'} [0:0]`);
    for (const [chain, rules] of t.chains) for (const r of rules) lines.push(`-A ${chain} ${r}`);
    lines.push('COMMIT');
  }
  return `${lines.join('\n')}\n`;
}

/** kproxy's rendering as the kernel would hold it after a sync into an empty namespace. */
export function rulesFromDesired(d: DesiredIpvs): IpvsRules {
  const ipsets: Ipsets = new Map(
    d.ipsets.map((s) => [s.name, { type: s.type, entries: new Set(s.entries) }]),
  );
  return { iptables: dumpFromDesired(d.ruleset, d.jumps), ipsets, servers: d.servers };
}

/** kproxy's rendering in the combined dump form: what the three tools would print after a sync. */
export function desiredDumpText(d: DesiredIpvs): string {
  return (
    iptablesSaveText(dumpFromDesired(d.ruleset, d.jumps)) +
    ipsetText(d.ipsets) +
    formatTable(d.servers.values())
  );
}
