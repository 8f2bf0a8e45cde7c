// The IPVS state as text, for `kproxy diff` and the daemon's dry run: addresses
// on kube-ipvs0, virtual servers in `ipvsadm -Sn` form, ipsets in `ipset save`
// form and the rules in iptables-save form. Sorted, so that two states diff line
// by line.
import type { Listing } from '../iptables-lib/listing.js';
import { listingText } from '../iptables-lib/listing.js';
import { ipsetText } from './ipset.js';
import { formatTable, type VirtualServer } from './ipvsadm.js';
import type { DesiredIpvs } from './render.js';

const section = (title: string, body: string): string => (body ? `# ${title}\n${body}` : '');

export function serversText(servers: Iterable<VirtualServer>): string {
  const sorted = [...servers].sort(
    (a, b) => cmp(a.protocol, b.protocol) || cmp(a.ip, b.ip) || a.port - b.port,
  );
  return formatTable(sorted);
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function ipvsListingText(d: DesiredIpvs, device = 'kube-ipvs0'): string {
  const iptables: Listing = new Map();
  for (const table of ['filter', 'nat'] as const) {
    const chains = new Map<string, string[]>();
    for (const j of d.jumps.filter((x) => x.table === table)) {
      chains.set(j.chain, [...(chains.get(j.chain) ?? []), j.rule]);
    }
    for (const [chain, rules] of d.ruleset[table].chains) chains.set(chain, [...rules]);
    iptables.set(table, chains);
  }
  const addresses = d.bindAddresses.map((ip) => `${ip}/${ip.includes(':') ? 128 : 32}\n`).join('');
  return [
    section(`${device} addresses`, addresses),
    section('IPVS virtual servers (ipvsadm -Sn)', serversText(d.servers.values())),
    section('ipsets (ipset save)', ipsetText(d.ipsets)),
    section('iptables (iptables-save)', listingText(iptables)),
  ].join('');
}
