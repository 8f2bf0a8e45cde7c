// A conntrack table in memory for tests: lists its entries in the tool's own
// format and deletes what a filter matches, as `conntrack -L` / `-D` do.
import { familyOf } from '../../util/ip.js';
import type { ConntrackHost } from './host.js';
import type { ConntrackEntry, Tuple } from './listing.js';
import type { FlowFilter } from './reconcile.js';

const tupleText = (t: Tuple) => `src=${t.src} dst=${t.dst} sport=${t.sport} dport=${t.dport}`;

/** One line of `conntrack -L` for an entry. */
export function entryLine(e: ConntrackEntry): string {
  const number = e.protocol === 'udp' ? 17 : e.protocol === 'tcp' ? 6 : 132;
  const unreplied = e.unreplied ? ' [UNREPLIED]' : '';
  const zone = e.zone ? ` zone=${e.zone}` : '';
  return `${e.protocol.padEnd(8)} ${number} 29 ${tupleText(e.original)}${unreplied} ${tupleText(e.reply)} mark=0${zone} use=1`;
}

export const matches = (e: ConntrackEntry, f: FlowFilter): boolean =>
  e.protocol === 'udp' &&
  e.original.dst === f.origDst &&
  e.original.dport === f.origPortDst &&
  e.reply.src === f.replySrc &&
  e.reply.sport === f.replyPortSrc;

export class FakeConntrack implements ConntrackHost {
  /** Every `deleteUdp` call's filters, in order. */
  readonly deletes: FlowFilter[][] = [];
  listings = 0;

  constructor(public entries: ConntrackEntry[] = []) {}

  async listUdp(family: 'IPv4' | 'IPv6'): Promise<string> {
    this.listings++;
    const mine = this.entries.filter((e) => e.protocol === 'udp' && familyOf(e.original.src) === family);
    return mine.map((e) => `${entryLine(e)}\n`).join('');
  }

  async deleteUdp(filters: readonly FlowFilter[]): Promise<number> {
    this.deletes.push([...filters]);
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => !filters.some((f) => matches(e, f)));
    return before - this.entries.length;
  }
}
