// `kproxy diff`: what a sync would change, computed from a file of objects,
// against an empty kernel or a dump of one. Exits like diff(1). The mode (the
// registry's, src/backends/mode.ts) renders and lists; this file only compares.
import { readFile } from 'node:fs/promises';
import { quote } from '../backends/iptables-lib/ruleset.js';
import { type ModeSettings, modeFor } from '../backends/mode.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import { unifiedDiff } from '../diff/unified.js';
import type { Logger } from '../log.js';
import type { NodeContext } from '../model/types.js';
import { UsageError } from './errors.js';

export type DiffOutput = 'diff' | 'rules' | 'json';

export interface DiffRequest {
  snapshot: ClusterSnapshot;
  settings: ModeSettings;
  node: NodeContext;
  output: DiffOutput;
  /** Path of a dump to compare against (iptables-save, or nft list); empty kernel when undefined. */
  against?: string;
  color: boolean;
  log: Logger;
}

/**
 * The kernel a sync would render for: the dump's node's (what the dump shows:
 * upstream's nfacct counters), else this namespace's, asked read-only, so that the
 * diff is what `kproxy sync` here would apply.
 */
async function kernelFor(req: DiffRequest, dump: string | undefined): Promise<ModeSettings> {
  const mode = modeFor(req.settings.options.proxyMode);
  if (dump !== undefined)
    return mode.dumpKernel ? { ...req.settings, kernel: mode.dumpKernel(dump) } : req.settings;
  // Only the diff: the JSON model does not depend on the kernel, and `--output rules`
  // (without a dump) must program an empty namespace through iptables-restore alone,
  // which cannot create the nfacct counters a sync creates first.
  if (req.output !== 'diff' || !mode.peekKernel) return req.settings;
  return { ...req.settings, kernel: await mode.peekKernel(req.log) };
}

export interface DiffResult {
  text: string;
  /** 0: nothing to change, 1: there are changes (diff output only). */
  exitCode: number;
}

export async function readAgainst(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--against ${quote(path)}: cannot read (${(err as NodeJS.ErrnoException).code})`);
  }
}

export async function runDiff(req: DiffRequest): Promise<DiffResult> {
  const { options } = req.settings;
  const mode = modeFor(options.proxyMode);
  if (req.against && !mode.dumpListing) {
    throw new UsageError(
      `--against compares with an iptables-save dump: not available with --proxy-mode ${mode.name}`,
    );
  }
  if (req.against && options.ipFamilies.length !== 1) {
    throw new UsageError('--against compares with one dump: choose one family with --ip-family');
  }
  const dump = req.against ? await readAgainst(req.against) : undefined;
  const settings = await kernelFor(req, dump);
  const desired = options.ipFamilies.map((family) => mode.desired(req.snapshot, req.node, family, settings));
  if (req.output === 'json') {
    const models = desired.map((d) => d.model);
    return { text: `${JSON.stringify(models.length === 1 ? models[0] : models, null, 2)}\n`, exitCode: 0 };
  }
  if (req.output === 'rules') {
    if (mode.rulesForOneFamily && desired.length !== 1)
      throw new UsageError('--output rules prints one family: choose it with --ip-family');
    return { text: mode.rulesText(desired), exitCode: 0 };
  }
  let text = '';
  for (const d of desired) {
    const label = mode.diffLabel(d.model.family);
    const current =
      req.against && dump !== undefined && mode.dumpListing
        ? mode.dumpListing(dump, d.model.family, req.against)
        : '';
    text += unifiedDiff(
      `${label}: ${req.against ?? 'empty kernel'}`,
      current,
      `${label}: desired for node ${req.node.name}`,
      mode.listing(d),
      req.color,
    );
  }
  return { text, exitCode: text === '' ? 0 : 1 };
}
