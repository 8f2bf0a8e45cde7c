// Writing into an NftTable: chains on first use, rules in order, sets and their
// elements. Shared by the skeleton (render.ts) and the per-port writer (render-port.ts).
import type { NftablesConfig } from './config.js';
import { kubeProxyTable, nftFamily } from './names.js';
import { type BaseChainSpec, emptyTable, type NftElement, type NftTable, quote } from './table.js';

export class Builder {
  readonly table: NftTable;
  constructor(readonly cfg: NftablesConfig) {
    this.table = emptyTable(nftFamily(cfg.family), kubeProxyTable, 'rules for kube-proxy');
  }
  chain(name: string, extra: { base?: BaseChainSpec; comment?: string } = {}): void {
    if (!this.table.chains.has(name)) this.table.chains.set(name, { name, ...extra, rules: [] });
  }
  rule(chain: string, text: string, comment?: string): void {
    this.chain(chain);
    this.table.chains.get(chain)?.rules.push(comment ? `${text} comment ${quote(comment)}` : text);
  }
  set(
    name: string,
    kind: 'set' | 'map',
    type: string,
    extra: { comment?: string; flags?: string[]; timeoutSeconds?: number } = {},
  ): void {
    if (!this.table.sets.has(name))
      this.table.sets.set(name, { name, kind, type, ...extra, elements: new Map() });
  }
  element(set: string, e: NftElement): void {
    this.table.sets.get(set)?.elements.set(e.key, e);
  }
}

/** Writes one port on its own: elements of the shared sets and maps are recorded, not stored. */
export class FragmentBuilder extends Builder {
  readonly elements: [string, NftElement][] = [];
  override element(set: string, e: NftElement): void {
    this.elements.push([set, e]);
  }
}

/** The masquerade bit as nft prints a mark: `0x4000` -> `0x00004000`. */
export function markHex(mark: string): string {
  return `0x${Number(mark).toString(16).padStart(8, '0')}`;
}

/** `meta mark set meta mark | 0x00004000`: marks the packet for masquerading in postrouting. */
export function setMasqMark(mark: string): string {
  return `meta mark set meta mark | ${markHex(mark)}`;
}
