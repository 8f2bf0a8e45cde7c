// Runs one nftables sync (or cleanup) as `kproxy sync --proxy-mode nftables` does, with
// test-only switches (--defer-chain-deletes): kernel tests run it inside a topology's
// node namespace.
//
//   node --import tsx test/helpers/nft-sync-driver.ts <objects.json> <stateDir> [flags]
//
// Flags: kube-proxy's (--hostname-override, --cluster-cidr, --masquerade-all,
// --nodeport-addresses, --ip-family...) and kproxy's --service-cidrs, plus --full,
// --defer-chain-deletes (behave as on a kernel before 6.2) and --cleanup (delete the
// table(s) instead; the objects file is not read). Prints the sync summary on
// stderr; exit code 1 when a sync fails.
import { parseArgs } from 'node:util';
import { execConntrackHost } from '../../src/backends/conntrack/host.js';
import {
  cleanupNftables,
  desiredNftables,
  execNftHost,
  nftKernelFeatures,
  summarizeNftables,
  syncNftables,
} from '../../src/backends/nftables/index.js';
import { loadObjectsFile } from '../../src/cluster/load.js';
import { optionsFromFlags, proxyFlagSpecs } from '../../src/config/options.js';
import { createLogger } from '../../src/log.js';
import { nodeContext } from '../../src/model/node.js';

const { values, positionals } = parseArgs({
  options: {
    ...proxyFlagSpecs,
    full: { type: 'boolean' },
    cleanup: { type: 'boolean' },
    'defer-chain-deletes': { type: 'boolean' },
  },
  allowPositionals: true,
});
const flags = values as Record<string, string | boolean | undefined>;
const log = createLogger({ json: false, stream: process.stderr, verbosity: 2 });

async function main(): Promise<number> {
  const [objectsFile, stateDir] = positionals;
  const options = { ...optionsFromFlags(flags), proxyMode: 'nftables' as const };
  if (flags.cleanup) {
    const r = await cleanupNftables(options.ipFamilies.length === 1 ? options.ipFamilies[0] : undefined);
    log.info(`cleanup: deleted the kube-proxy table of ${r.deleted.join(', ') || 'no family'}`);
    return 0;
  }
  if (!objectsFile || !stateDir) throw new Error('usage: nft-sync-driver <objects.json> <stateDir> [flags]');
  const { snapshot } = await loadObjectsFile(objectsFile);
  const nodeObject = snapshot.nodes.find((n) => n.metadata?.name === options.hostnameOverride);
  const node = nodeContext(options.hostnameOverride, nodeObject, { addresses: options.nodeIPs });
  const kernel = flags['defer-chain-deletes'] ? { deferChainDeletes: true } : nftKernelFeatures();
  for (const family of options.ipFamilies) {
    const desired = desiredNftables(snapshot, options, node, family, kernel);
    const report = await syncNftables(desired, {
      host: execNftHost(family),
      stateDir,
      log,
      conntrack: execConntrackHost,
      forceFull: flags.full === true,
    });
    log.info(`${family}: ${summarizeNftables(report)}`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    log.error(`sync failed: ${err.message}`);
    process.exit(1);
  },
);
