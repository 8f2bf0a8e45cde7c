// What the one-shot commands share: the flags every command takes, parsing them,
// and loading the cluster's objects (a file, or one list from an API server).
import { parseArgs } from 'node:util';
import { defaultStateDir } from '../backends/common/state-file.js';
import { listObjects } from '../cluster/list-once.js';
import { type LoadResult, loadObjectsFile } from '../cluster/load.js';
import { type ClusterSnapshot, formatProblem } from '../cluster/snapshot.js';
import { configFromFlags } from '../config/from-flags.js';
import { type ProxyOptions, proxyFlagSpecs } from '../config/options.js';
import { createLogger, type Logger } from '../log.js';
import { nodeContext } from '../model/node.js';
import type { NodeContext } from '../model/types.js';
import { UsageError } from './errors.js';

export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export async function loadInput(
  path: string | undefined,
  options: ProxyOptions,
  log: Logger,
  load: (path: string) => Promise<LoadResult> = loadObjectsFile,
) {
  if (!path) throw new UsageError('--from-file is required');
  const { snapshot, problems, ignoredKinds } = await load(path);
  for (const p of problems) log.warn(formatProblem(p));
  for (const [kind, n] of ignoredKinds) log.debug(`ignored ${n} object(s) of kind ${kind}`);
  const nodeObject = snapshot.nodes.find((n) => n.metadata?.name === options.hostnameOverride);
  if (!nodeObject) {
    log.warn(
      `no Node object named "${options.hostnameOverride}" in ${path}: no endpoint counts as local, ` +
        'topology labels are unknown and node addresses come from --node-ip',
    );
  }
  const node: NodeContext = nodeContext(options.hostnameOverride, nodeObject, { addresses: options.nodeIPs });
  return { snapshot, node };
}

export const commonFlags = {
  ...proxyFlagSpecs,
  'from-file': { type: 'string' },
  'ipvs-scheduler': { type: 'string', default: 'rr' },
  v: { type: 'string', default: '0' },
} as const;
export const kernelFlags = {
  'state-dir': { type: 'string', default: defaultStateDir },
  'iptables-flavour': { type: 'string', default: 'auto' },
} as const;

export type FlagSpecs = Record<
  string,
  { type: 'string' | 'boolean'; default?: string | boolean; short?: string }
>;

/** Parses the flags every command shares plus `extra`, the command's own. */
export function parseCommand(args: string[], extra: FlagSpecs, io: CliIO, allowPositionals = false) {
  const { values, positionals } = parseArgs({
    args,
    options: { ...commonFlags, ...extra },
    strict: true,
    allowPositionals,
  });
  const flags = values as Record<string, string | boolean | undefined>;
  const { proxy: options, daemon } = configFromFlags(flags);
  // One-shot commands talk to a person (or a script reading lines): plain text, not JSON.
  const log = createLogger({ verbosity: daemon.logging.verbosity, stream: io.stderr, json: false });
  const { scheduler } = daemon.ipvs;
  const flavour = daemon.iptablesFlavour;
  return { flags, log, options, scheduler, flavour, positionals };
}

/** The objects of --from-file or --kubeconfig (one of them, or none), and this node's context. */
export async function loadObjectsFlag(
  flags: Record<string, string | boolean | undefined>,
  options: ProxyOptions,
  log: Logger,
): Promise<{ snapshot: ClusterSnapshot | undefined; node: NodeContext }> {
  const file = flags['from-file'] as string | undefined;
  const kubeconfig = flags.kubeconfig as string | undefined;
  if (file && kubeconfig) throw new UsageError('give --from-file or --kubeconfig, not both');
  if (file) return loadInput(file, options, log);
  if (kubeconfig) return loadInput(kubeconfig, options, log, listObjects);
  return {
    snapshot: undefined,
    node: nodeContext(options.hostnameOverride, undefined, { addresses: options.nodeIPs }),
  };
}
