// `kproxy trace` and `kproxy verify` on the command line: flags to requests.

import { defaultIpvsOptions } from '../backends/ipvs/config.js';
import { type CliIO, kernelFlags, loadObjectsFlag, parseCommand } from './command.js';
import { UsageError } from './errors.js';
import { runTrace } from './trace.js';
import { runVerify } from './verify.js';

export async function traceCommand(args: string[], io: CliIO): Promise<number> {
  const { flags, log, options, positionals, scheduler, flavour } = parseCommand(
    args,
    {
      ...kernelFlags,
      from: { type: 'string' },
      namespace: { type: 'string', default: 'default' },
      'cluster-domain': { type: 'string', default: 'cluster.local' },
      kubeconfig: { type: 'string' },
      against: { type: 'string' },
      'in-interface': { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
    },
    io,
    true,
  );
  const [target, ...more] = positionals;
  if (!target || more.length > 0) throw new UsageError('trace takes one TARGET (try "kproxy help")');
  const output = flags.output as string;
  if (output !== 'text' && output !== 'json')
    throw new UsageError(`--output: "${output}" is not text or json`);
  const str = (k: string) => flags[k] as string | undefined;
  const input = await loadObjectsFlag(flags, options, log);
  const result = await runTrace({
    target,
    namespace: str('namespace') as string,
    clusterDomain: (str('cluster-domain') as string).replace(/\.$/, ''),
    output,
    snapshot: input.snapshot,
    node: input.node,
    options,
    flavour,
    ipvs: { ...defaultIpvsOptions, scheduler },
    ...(str('from') ? { from: str('from') } : {}),
    ...(str('against') ? { against: str('against') } : {}),
    ...(str('in-interface') ? { inInterface: str('in-interface') } : {}),
  });
  io.stdout.write(result.text);
  return result.exitCode;
}

export async function verifyCommand(args: string[], io: CliIO): Promise<number> {
  const { flags, log, options, scheduler, flavour } = parseCommand(
    args,
    {
      ...kernelFlags,
      kubeconfig: { type: 'string' },
      against: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
    },
    io,
  );
  const output = flags.output as string;
  if (output !== 'text' && output !== 'json')
    throw new UsageError(`--output: "${output}" is not text or json`);
  const against = flags.against as string | undefined;
  if (!against)
    throw new UsageError('verify compares with the rules of --against DUMP (or --against kernel)');
  const { snapshot, node } = await loadObjectsFlag(flags, options, log);
  const result = await runVerify({
    against,
    output,
    node,
    options,
    flavour,
    ipvs: { ...defaultIpvsOptions, scheduler },
    ...(snapshot ? { snapshot } : {}),
  });
  io.stdout.write(result.text);
  return result.exitCode;
}
