// The kproxy command line. Each command is a thin shell around pure functions;
// exit codes (errors.ts): 0 success or no difference, 1 difference found or an
// expected failure, 2 usage or input error, 70 internal error.
import { parseArgs } from 'node:util';
import { firstLine, operatorCause } from '../backends/common/errors.js';
import { loadDaemonConfig } from '../config/daemon-config.js';
import { daemonFlagSpecs } from '../config/daemon-options.js';
import { proxyFlagSpecs } from '../config/options.js';
import { createLogger } from '../log.js';
import { type CliIO, kernelFlags, loadInput, loadObjectsFlag, parseCommand } from './command.js';
import { type DiffOutput, runDiff } from './diff.js';
import { failureOutcome, UsageError } from './errors.js';
import { traceCommand, verifyCommand } from './inspect.js';
import { runCleanup, runSync } from './sync.js';

export type { CliIO };

const usage = `kproxy: a kube-proxy for people who want to see what their nodes do.

Usage:
  kproxy diff --from-file FILE [flags]    show the rule changes a sync would make (or --kubeconfig K)
  kproxy sync --from-file FILE [flags]    apply them to this network namespace's kernel, once
  kproxy cleanup [--proxy-mode MODE]      remove every rule and chain kproxy owns (ipvs: also its
                                          virtual servers, ipsets and kube-ipvs0)
  kproxy run [--config FILE] [flags]      the node agent: watch the API server and keep the kernel in step
  kproxy trace TARGET [flags]             where one packet to TARGET goes on this node, and why
  kproxy verify --against DUMP [flags]    every Service packet class traced through DUMP and through
                                          kproxy's rules: list those whose fate differs (exit 1 if any)
  kproxy help                             show this text

Flags (kube-proxy's names and defaults):
  --from-file FILE              Services, EndpointSlices, Nodes and ServiceCIDRs (YAML or JSON, kubectl -o yaml)
  --proxy-mode MODE             iptables (default), ipvs or nftables
  --ipvs-scheduler S            IPVS scheduler: rr (default), wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh
  --hostname-override NAME      the node to compute rules for (default: this host's name)
  --cluster-cidr CIDR[,CIDR]    pod CIDRs; traffic from elsewhere to a ClusterIP is masqueraded
  --masquerade-all              SNAT all traffic sent to ClusterIPs
  --nodeport-addresses CIDRS    addresses NodePorts answer on ("primary", or CIDRs; default all)
  --iptables-masquerade-bit N   mark bit for masquerade (default 14)
  --iptables-localhost-nodeports true|false   NodePorts on 127.0.0.1 (default true)
  --detect-local-mode MODE      ClusterCIDR (default), NodeCIDR, BridgeInterface, InterfaceNamePrefix
  --node-ip IP[,IP]             the node's addresses when the file has no Node object for it
  --ip-family F[,F]             (kproxy's own) IPv4, IPv6, or IPv4,IPv6: exactly these families.
                                Default: run proxies both where the node can (as kube-proxy), the
                                other commands IPv4
  --service-cidrs CIDR[,CIDR]   (kproxy's own) service CIDRs besides the cluster's ServiceCIDR objects;
                                nftables mode drops traffic to their addresses no Service holds
  --nftables-layout flat|upstream   (kproxy's own) flat (default): shared chains and map elements,
                                scales to 10,000s of Services; upstream: upstream v1.37.2's table text
  --v N                         log verbosity

diff flags:
  --against DUMP                compare with an iptables-save dump instead of an empty kernel
  --kubeconfig K                read the objects from the API server instead of --from-file
  --output diff|rules|json      unified diff (default), complete iptables-restore input (ipvs: the whole
                                IPVS state), or the proxy model

run flags (kube-proxy's): --config, --kubeconfig, --healthz-bind-address (0.0.0.0:10256),
  --metrics-bind-address (127.0.0.1:10249), --iptables-sync-period (30s), --iptables-min-sync-period (1s),
  --cleanup, --v; kproxy's: --dry-run (log each sync's rule diff, never touch the kernel; needs no root)

trace flags (TARGET: a Service name as a pod writes it, web, web.shop, web.shop.svc.cluster.local,
  with :PORT or :PORTNAME and /tcp|udp|sctp; or ADDRESS:PORT, a ClusterIP, NodePort, externalIP or LB IP):
  --from POD_IP|node|external:IP  who sends (default: a pod of this node)
  --namespace NS                the sending pod's namespace, for DNS search (default default)
  --cluster-domain D            (default cluster.local)
  --kubeconfig K                read the cluster's objects from the API server instead of --from-file
  --against DUMP|kernel         the rules traced: a dump (iptables-save; nft list ruleset with --proxy-mode
                                nftables; iptables-save, ipset save and ipvsadm -Sn one after the other
                                with --proxy-mode ipvs), or this namespace's kernel. Default: the rules kproxy would write
                                when objects are given, else the kernel
  --in-interface IF             the interface the packet arrives on (for rules that match -i)
  -o, --output text|json        (default text); exit 0 delivered, 1 rejected, dropped or unhandled, 2 bad input

sync and cleanup flags:
  --state-dir DIR               where sync remembers what it applied (default /var/lib/kproxy)
  --iptables-flavour F          auto (default: the one the host's rules use), legacy or nft
  --full                        compare with the kernel and repair everything, not only what changed
                                (ipvs syncs always compare with the kernel)
  --ipvs-strict-arp             sync: set arp_ignore=1 and arp_announce=2, as kube-proxy's --ipvs-strict-arp

Exit codes: 0 done (diff: no change); 1 diff: changes, or an expected failure, said in one line
  (a missing tool, no CAP_NET_ADMIN, a read-only /proc/sys, a kernel feature missing); 2 a bad
  command line, config, kubeconfig or objects file; 70 a bug in kproxy (with a stack trace).
`;

async function syncCommand(args: string[], io: CliIO): Promise<number> {
  const { flags, log, options, scheduler, flavour } = parseCommand(
    args,
    {
      ...kernelFlags,
      full: { type: 'boolean' },
      'ipvs-strict-arp': { type: 'boolean' },
      // Test-only, not in the usage text: behave as on a kernel before 6.2 (nftables).
      'defer-chain-deletes': { type: 'boolean' },
    },
    io,
  );
  const { snapshot, node } = await loadInput(flags['from-file'] as string | undefined, options, log);
  await runSync({
    snapshot,
    settings: {
      options,
      ipvs: { scheduler, strictARP: flags['ipvs-strict-arp'] === true, excludeCIDRs: [] },
      ...(flags['defer-chain-deletes'] === true ? { deferChainDeletes: true } : {}),
    },
    node,
    stateDir: flags['state-dir'] as string,
    flavour,
    full: flags.full === true,
    log,
  });
  return 0;
}

async function cleanupCommand(args: string[], io: CliIO): Promise<number> {
  const { log, options, flavour } = parseCommand(args, kernelFlags, io);
  await runCleanup(options.proxyMode, options.ipFamiliesGiven ? options.ipFamilies : undefined, flavour, log);
  return 0;
}

/**
 * Resolves on SIGTERM or SIGINT. The listeners stay registered (not `once`):
 * execa's signal-exit kills the process again if it finds itself the only
 * listener, which a self-removing `once` listener would make it.
 */
function terminationSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => resolve(signal));
  });
}

async function runCommand(args: string[], io: CliIO): Promise<number> {
  // Daemon specs last: their --v has no default, so a config file's verbosity is not overridden.
  const { values } = parseArgs({
    args,
    options: { ...proxyFlagSpecs, ...daemonFlagSpecs },
    strict: true,
    allowPositionals: false,
  });
  const { proxy, daemon, warnings } = await loadDaemonConfig(
    values as Record<string, string | boolean | undefined>,
  );
  // JSON for a cluster's log pipeline, readable lines on a terminal.
  const json = daemon.logging.format === 'json' || !io.stderr.isTTY;
  const log = createLogger({ verbosity: daemon.logging.verbosity, stream: io.stderr, json });
  for (const w of warnings) log.warn(w);
  if (daemon.cleanup) {
    await runCleanup(
      proxy.proxyMode,
      proxy.ipFamiliesGiven ? proxy.ipFamilies : undefined,
      daemon.iptablesFlavour,
      log,
    );
    return 0;
  }
  // Loaded here only: the agent's API client is a large module tree that one-shot commands never need.
  const { startAgent } = await import('../daemon/run.js');
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try {
    agent = await startAgent(proxy, daemon, log);
  } catch (err) {
    // Said through the log, as everything the daemon says: one JSON line in a pod's log.
    const expected = operatorCause(err);
    if (!expected) throw err;
    log.error(firstLine(expected.message));
    return expected.exitCode;
  }
  const signal = await terminationSignal();
  log.info(`${signal}: stopping; the sync in flight finishes and the rules stay in place`);
  await agent.stop();
  log.info('stopped');
  return 0;
}

async function diffCommand(args: string[], io: CliIO): Promise<number> {
  const {
    flags: values,
    log,
    options,
    scheduler,
  } = parseCommand(
    args,
    {
      against: { type: 'string' },
      output: { type: 'string', default: 'diff' },
      kubeconfig: { type: 'string' },
    },
    io,
  );
  const output = values.output as string;
  if (!['diff', 'rules', 'json'].includes(output)) {
    throw new UsageError(`--output: "${output}" is not one of diff, rules, json`);
  }
  // From a file or, as kube-proxy would see it, from the API server.
  const { snapshot, node } = await loadObjectsFlag(values, options, log);
  if (!snapshot) throw new UsageError('--from-file FILE or --kubeconfig K is required');
  const result = await runDiff({
    snapshot,
    settings: { options, ipvs: { scheduler, strictARP: false, excludeCIDRs: [] } },
    node,
    output: output as DiffOutput,
    color: io.stdout.isTTY === true && !process.env.NO_COLOR,
    log,
    ...(values.against ? { against: values.against as string } : {}),
  });
  io.stdout.write(result.text);
  return result.exitCode;
}

export async function main(
  argv: string[],
  io: CliIO = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'diff':
        return await diffCommand(rest, io);
      case 'sync':
        return await syncCommand(rest, io);
      case 'cleanup':
        return await cleanupCommand(rest, io);
      case 'run':
        return await runCommand(rest, io);
      case 'trace':
        return await traceCommand(rest, io);
      case 'verify':
        return await verifyCommand(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(usage);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}" (try "kproxy help")`);
    }
  } catch (err) {
    const outcome = failureOutcome(err);
    io.stderr.write(outcome.text);
    return outcome.code;
  }
}
