// Benchmark of the stale-UDP conntrack clean-up (src/backends/conntrack/) against a
// real conntrack table, in a throw-away network namespace (run as root):
//
//   npx tsx scripts/bench-conntrack.ts [--services 10000] [--flows 20000,100000] [--gone 1,10]
//
// The cluster is test/helpers/generate-cluster.ts's (N Services x 3 endpoints) with every
// tenth Service UDP (about 1,000 UDP Services at 10,000). The table holds F UDP
// flows from pods to those ClusterIPs, each DNATed to one of its endpoints,
// inserted with `conntrack -I`. Then, through clearStaleUdpFlows and the real
// conntrack tool, it times:
//   - a restart: nothing stale (the old state-file clean-up cut every flow here);
//   - then one endpoint gone in each of G more UDP Services, for each G of --gone
//     (every -D line walks the whole table: the cost grows with G times F).
// It prints the time, the entries deleted and how many conntrack processes ran.
// The machine may be shared: run it twice and keep the lower numbers.
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { clearStaleUdpFlows } from '../src/backends/conntrack/clear.js';
import { conntrackHost, execConntrackRun } from '../src/backends/conntrack/host.js';
import type { ClusterSnapshot } from '../src/cluster/snapshot.js';
import { createLogger } from '../src/log.js';
import { buildProxyModel } from '../src/model/build.js';
import { nodeContext } from '../src/model/node.js';
import type { ProxyModel } from '../src/model/types.js';
import { generateCluster } from '../test/helpers/generate-cluster.js';

const conntrack = '/usr/sbin/conntrack';
const log = createLogger({ stream: new PassThrough(), json: true });

/** Every tenth Service (and its slice) switched to UDP. */
function withUdp(s: ClusterSnapshot): ClusterSnapshot {
  const udp = (i: number) => i % 10 === 5;
  return {
    ...s,
    services: s.services.map((svc, i) =>
      udp(i)
        ? { ...svc, spec: { ...svc.spec, ports: svc.spec?.ports?.map((p) => ({ ...p, protocol: 'UDP' })) } }
        : svc,
    ),
    endpointSlices: s.endpointSlices.map((sl, i) =>
      udp(i) ? { ...sl, ports: sl.ports?.map((p) => ({ ...p, protocol: 'UDP' })) } : sl,
    ),
  };
}

/** `conntrack -I` lines: `flows` UDP flows spread over the UDP ClusterIPs and their endpoints. */
function insertLines(model: ProxyModel, flows: number): string {
  const ports = model.servicePorts.filter((sp) => sp.protocol === 'UDP');
  const lines: string[] = [];
  for (let i = 0; i < flows; i++) {
    const sp = ports[i % ports.length];
    const ep = sp?.endpoints.all[i % 3];
    if (!sp || !ep) continue;
    const client = `10.250.${(i >> 8) & 255}.${i & 255}`;
    const sport = 20000 + Math.floor(i / 65536);
    lines.push(
      `-I -p udp -s ${client} -d ${sp.clusterIP} --sport ${sport} --dport ${sp.port} ` +
        `-r ${ep.ip} -q ${client} --reply-port-src ${ep.port} --reply-port-dst ${sport} -t 600`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The model with the first endpoint of `count` UDP Services gone. */
function withoutEndpoints(model: ProxyModel, count: number): ProxyModel {
  let left = count;
  return {
    ...model,
    servicePorts: model.servicePorts.map((sp) => {
      if (sp.protocol !== 'UDP' || left-- <= 0) return sp;
      return { ...sp, endpoints: { ...sp.endpoints, all: sp.endpoints.all.slice(1) } };
    }),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      services: { type: 'string', default: '10000' },
      flows: { type: 'string', default: '20000,100000' },
      gone: { type: 'string', default: '1,10' },
    },
  });
  const services = Number(values.services);
  const snapshot = withUdp(generateCluster({ services, endpointsPerService: 3, nodeName: 'node-a' }));
  const model = buildProxyModel(snapshot, nodeContext('node-a', snapshot.nodes[0]), 'IPv4');
  const udpServices = model.servicePorts.filter((sp) => sp.protocol === 'UDP').length;
  console.log(`${services} Services, ${udpServices} of them UDP`);
  console.log('flows    | step                                  |     ms | deleted | processes');
  for (const flows of values.flows.split(',').map(Number)) {
    const ns = `kpbench-ct-${randomBytes(3).toString('hex')}`;
    await execa('ip', ['netns', 'add', ns]);
    try {
      const tool = execConntrackRun(['ip', 'netns', 'exec', ns, conntrack]);
      let processes = 0;
      const host = conntrackHost((args, batch) => {
        processes++;
        return tool(args, batch);
      });
      const run = async (step: string, m: ProxyModel) => {
        processes = 0;
        const started = performance.now();
        const { deleted } = await clearStaleUdpFlows(host, m, log);
        const ms = Math.round(performance.now() - started);
        console.log(
          `${String(flows).padEnd(8)} | ${step.padEnd(37)} | ${String(ms).padStart(6)} | ${String(deleted).padStart(7)} | ${processes}`,
        );
      };
      const inserted = await tool(['-R'], insertLines(model, flows));
      if (inserted.exitCode !== 0) throw new Error(`conntrack -I: ${inserted.stderr}`);
      await run('restart, nothing stale', model);
      let gone = 0;
      for (const more of values.gone.split(',').map(Number)) {
        gone += more;
        await run(`1 endpoint gone in ${more} more UDP Services`, withoutEndpoints(model, gone));
      }
    } finally {
      await execa('ip', ['netns', 'del', ns], { reject: false });
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
