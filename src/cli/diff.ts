// `kproxy diff`: what a sync would change, computed from a file of objects,
// against an empty kernel or an iptables-save dump. Exits like diff(1).
import { readFile } from 'node:fs/promises';
import { desiredIptables } from '../backends/iptables/desired.js';
import { KUBE_PROXY_CANARY } from '../backends/iptables-lib/chains.js';
import {
  type Listing,
  listingFromDesired,
  listingFromDump,
  listingText,
} from '../backends/iptables-lib/listing.js';
import { parseIptablesDump } from '../backends/iptables-lib/parse.js';
import { quote, rulesetRestoreText } from '../backends/iptables-lib/ruleset.js';
import type { IpvsOptions } from '../backends/ipvs/config.js';
import { desiredIpvs } from '../backends/ipvs/desired.js';
import { ipvsListingText } from '../backends/ipvs/listing.js';
import {
  desiredNftables,
  listingFromDump as listingFromNftDump,
  nftFamily,
  listingText as nftListingText,
  tableLines,
} from '../backends/nftables/index.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { ProxyOptions } from '../config/options.js';
import { unifiedDiff } from '../diff/unified.js';
import type { NodeContext } from '../model/types.js';
import type { IPFamily } from '../util/ip.js';
import { UsageError } from './errors.js';

export type DiffOutput = 'diff' | 'rules' | 'json';

export interface DiffRequest {
  snapshot: ClusterSnapshot;
  options: ProxyOptions;
  node: NodeContext;
  output: DiffOutput;
  /** Path of an iptables-save dump to compare against; empty kernel when undefined. */
  against?: string;
  color: boolean;
  /** IPVS mode settings (--ipvs-scheduler). */
  ipvs?: IpvsOptions;
}

export interface DiffResult {
  text: string;
  /** 0: nothing to change, 1: there are changes (diff output only). */
  exitCode: number;
}

const familyLabel = (f: IPFamily): string => (f === 'IPv4' ? 'iptables' : 'ip6tables');

/** iptables-restore input that builds the whole state in an empty namespace, jumps included. */
export function completeRestoreText(d: ReturnType<typeof desiredIptables>): string {
  const base = rulesetRestoreText(d.ruleset);
  const jumps = (table: 'filter' | 'nat') =>
    d.jumps
      .filter((j) => j.table === table)
      .map((j) => `-I ${j.chain} ${j.rule}\n`)
      .join('');
  // Jumps go just before each table's COMMIT, after the chains they target exist.
  return base
    .replace(/\*filter\n([\s\S]*?)COMMIT\n/, (_m, body) => `*filter\n${body}${jumps('filter')}COMMIT\n`)
    .replace(/\*nat\n([\s\S]*?)COMMIT\n/, (_m, body) => `*nat\n${body}${jumps('nat')}COMMIT\n`);
}

/**
 * The IPVS mode's diff against an empty kernel: kube-ipvs0's addresses, virtual
 * and real servers, ipset entries and the nat/filter rules. NodePort virtual
 * servers use the node's addresses from its Node object or --node-ip (a sync
 * uses the addresses the host really has).
 */
function runIpvsDiff(req: DiffRequest): DiffResult {
  const { options } = req;
  if (req.against)
    throw new UsageError(
      '--against compares with an iptables-save dump: not available with --proxy-mode ipvs',
    );
  const desired = options.ipFamilies.map((family) =>
    desiredIpvs(req.snapshot, options, req.node, family, req.ipvs),
  );
  if (req.output === 'json') {
    const models = desired.map((d) => d.model);
    return { text: `${JSON.stringify(models.length === 1 ? models[0] : models, null, 2)}\n`, exitCode: 0 };
  }
  if (req.output === 'rules') return { text: desired.map((d) => ipvsListingText(d)).join(''), exitCode: 0 };
  let text = '';
  for (const d of desired) {
    const family = d.model.family;
    text += unifiedDiff(
      `ipvs ${family}: empty kernel`,
      '',
      `ipvs ${family}: desired for node ${req.node.name}`,
      ipvsListingText(d),
      req.color,
    );
  }
  return { text, exitCode: text === '' ? 0 : 1 };
}

/**
 * The nftables mode's diff: the kube-proxy table as `nft list table` prints it,
 * against an empty kernel or a dump (`nft list table ip kube-proxy` or `nft list ruleset`).
 */
async function runNftablesDiff(req: DiffRequest): Promise<DiffResult> {
  const { options } = req;
  if (req.against && options.ipFamilies.length !== 1) {
    throw new UsageError('--against compares with one dump: choose one family with --ip-family');
  }
  const desired = options.ipFamilies.map((family) =>
    desiredNftables(req.snapshot, options, req.node, family),
  );
  if (req.output === 'json') {
    const models = desired.map((d) => d.model);
    return { text: `${JSON.stringify(models.length === 1 ? models[0] : models, null, 2)}\n`, exitCode: 0 };
  }
  if (req.output === 'rules') {
    // The transaction that builds the table in an empty kernel: `nft -f` input.
    return { text: desired.map((d) => `${tableLines(d.table).join('\n')}\n`).join(''), exitCode: 0 };
  }
  let text = '';
  for (const d of desired) {
    const family = d.model.family;
    const nftFam = nftFamily(family);
    const current = req.against ? listingFromNftDump(await readAgainst(req.against), nftFam) : '';
    text += unifiedDiff(
      `nftables ${nftFam} kube-proxy: ${req.against ?? 'empty kernel'}`,
      current,
      `nftables ${nftFam} kube-proxy: desired for node ${req.node.name}`,
      nftListingText(d.table),
      req.color,
    );
  }
  return { text, exitCode: text === '' ? 0 : 1 };
}

/**
 * A node kproxy synced also holds the empty KUBE-PROXY-CANARY chains, which a sync
 * adds outside its rule set to notice when someone flushes the tables: markers, not
 * rules, so the comparison leaves them out rather than report them as removed.
 */
function withoutCanaries(listing: Listing): Listing {
  for (const chains of listing.values()) chains.delete(KUBE_PROXY_CANARY);
  return listing;
}

export async function readAgainst(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--against ${quote(path)}: cannot read (${(err as NodeJS.ErrnoException).code})`);
  }
}

export async function runDiff(req: DiffRequest): Promise<DiffResult> {
  const { options } = req;
  if (options.proxyMode === 'ipvs') return runIpvsDiff(req);
  if (options.proxyMode === 'nftables') return runNftablesDiff(req);
  if (req.against && options.ipFamilies.length !== 1) {
    throw new UsageError('--against compares with one dump: choose one family with --ip-family');
  }
  const desired = options.ipFamilies.map((family) =>
    desiredIptables(req.snapshot, options, req.node, family),
  );
  if (req.output === 'json') {
    const models = desired.map((d) => d.model);
    return { text: `${JSON.stringify(models.length === 1 ? models[0] : models, null, 2)}\n`, exitCode: 0 };
  }
  if (req.output === 'rules') {
    if (desired.length !== 1)
      throw new UsageError('--output rules prints one family: choose it with --ip-family');
    return { text: completeRestoreText(desired[0] as (typeof desired)[number]), exitCode: 0 };
  }
  let text = '';
  for (const d of desired) {
    const family = d.model.family;
    let currentText = '';
    let currentName = `${familyLabel(family)}: empty kernel`;
    if (req.against) {
      const dumpText = await readAgainst(req.against);
      currentText = listingText(withoutCanaries(listingFromDump(parseIptablesDump(dumpText, req.against))));
      currentName = `${familyLabel(family)}: ${req.against}`;
    }
    const desiredText = listingText(listingFromDesired(d, family));
    text += unifiedDiff(
      currentName,
      currentText,
      `${familyLabel(family)}: desired for node ${req.node.name}`,
      desiredText,
      req.color,
    );
  }
  return { text, exitCode: text === '' ? 0 : 1 };
}
