import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { exampleCluster, kindWorkerArgs, runCli } from '../helpers/cli.js';

const base = ['diff', ...kindWorkerArgs];
const tmp = mkdtempSync(join(tmpdir(), 'kproxy-cli-'));

test('diff against an empty kernel lists every rule as added and exits 1', async (t) => {
  const r = await runCli(...base);
  t.is(r.code, 1);
  t.regex(r.stdout, /^--- iptables: empty kernel\n\+\+\+ iptables: desired for node kind-worker\n/);
  // kube-dns UDP port, its two endpoints, and the NodePort of shop/web.
  t.regex(
    r.stdout,
    /\+-A KUBE-SERVICES -d 10\.96\.0\.10\/32 -p udp -m comment --comment "kube-system\/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-/,
  );
  t.regex(r.stdout, /-j DNAT --to-destination 10\.244\.0\.3:53/);
  t.regex(
    r.stdout,
    /\+-A KUBE-NODEPORTS -p tcp -m comment --comment "shop\/web:http" -m tcp --dport 30080 -j KUBE-EXT-/,
  );
  // No line is removed from an empty kernel, and colour is off when not a terminal.
  t.false(/^-[^-]/m.test(r.stdout));
  t.false(r.stdout.includes('\x1b['));
});

test('the terminating endpoint of shop/web is not used while others are ready', async (t) => {
  const r = await runCli(...base, '--output', 'json');
  t.is(r.code, 0);
  const model = JSON.parse(r.stdout);
  const web = model.servicePorts.find((sp: { id: string }) => sp.id === 'shop/web:http');
  t.deepEqual(
    web.endpoints.cluster.map((e: { key: string }) => e.key),
    ['10.244.0.15:8080', '10.244.1.12:8080', '10.244.2.7:8080'],
  );
  t.deepEqual(web.sessionAffinity, { timeoutSeconds: 600 });
  // Headless and ExternalName Services are not in the model.
  t.false(model.servicePorts.some((sp: { name: string }) => sp.name === 'db' || sp.name === 'payments-api'));
});

test('internalTrafficPolicy Local without a local endpoint renders a DROP, no endpoints a REJECT', async (t) => {
  const r = await runCli(...base, '--output', 'rules');
  t.is(r.code, 0);
  t.regex(
    r.stdout,
    /-A KUBE-SERVICES -m comment --comment "shop\/cache:redis has no local endpoints" .* -j DROP/,
  );
  t.regex(
    r.stdout,
    /-A KUBE-SERVICES -m comment --comment "shop\/reports:http has no endpoints" .* -j REJECT/,
  );
  t.regex(r.stdout, /^-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES$/m);
});

test('diff against a dump that already holds the desired rules is empty and exits 0', async (t) => {
  const desired = await runCli(...base, '--output', 'rules');
  // A dump is what iptables-save prints; our own listing of the desired state is in that form.
  const listing = (await runCli(...base)).stdout
    .split('\n')
    .filter((l) => l.startsWith('+') && !l.startsWith('+++'))
    .map((l) => l.slice(1));
  t.true(desired.stdout.length > 0);
  const dump = join(tmp, 'same.dump');
  const tables = { filter: [] as string[], nat: [] as string[] };
  let table: 'filter' | 'nat' = 'filter';
  for (const l of listing) {
    if (l === '*nat') table = 'nat';
    else if (l.startsWith('-A ')) tables[table].push(l);
    else if (l.startsWith(':')) tables[table].push(`${l} - [0:0]`);
  }
  writeFileSync(
    dump,
    `*filter\n${tables.filter.join('\n')}\nCOMMIT\n*nat\n${tables.nat.join('\n')}\nCOMMIT\n`,
  );
  const r = await runCli(...base, '--against', dump);
  t.is(r.stderr, '');
  t.is(r.stdout, '');
  t.is(r.code, 0);
});

test('rules of KUBE-SERVICES in another order are no difference, unless the last rule moved', async (t) => {
  // A partial sync inserts at the top of the editable chains, so the kernel's order is
  // not the render's; only the last rule's place matters (it matches every local address).
  const listing = (await runCli(...base)).stdout
    .split('\n')
    .filter((l) => l.startsWith('+') && !l.startsWith('+++'))
    .map((l) => l.slice(1));
  const dumpWith = (reorder: (rules: string[]) => string[]) => {
    const tables = { filter: [] as string[], nat: [] as string[] };
    let table: 'filter' | 'nat' = 'filter';
    const services: string[] = [];
    for (const l of listing) {
      if (l === '*nat') table = 'nat';
      else if (table === 'nat' && l.startsWith('-A KUBE-SERVICES ')) services.push(l);
      else if (l.startsWith('-A ')) tables[table].push(l);
      else if (l.startsWith(':')) tables[table].push(`${l} - [0:0]`);
    }
    t.true(services.length > 3, 'the example has several nat KUBE-SERVICES rules');
    const file = join(tmp, `reordered-${Math.random()}.dump`);
    const nat = [...tables.nat, ...reorder(services)];
    writeFileSync(file, `*filter\n${tables.filter.join('\n')}\nCOMMIT\n*nat\n${nat.join('\n')}\nCOMMIT\n`);
    return file;
  };
  const reversedButLast = (rules: string[]) => [...rules.slice(0, -1).reverse(), ...rules.slice(-1)];
  const same = await runCli(...base, '--against', dumpWith(reversedButLast));
  t.is(same.stdout, '');
  t.is(same.code, 0);
  const lastMoved = await runCli(
    ...base,
    '--against',
    dumpWith((rules) => [...rules].reverse()),
  );
  t.is(lastMoved.code, 1);
  t.regex(lastMoved.stdout, /must be the last rule/);
});

test('the canary chains a sync adds are not reported as removed', async (t) => {
  const dump = join(tmp, 'canary.dump');
  writeFileSync(
    dump,
    '*mangle\n:KUBE-PROXY-CANARY - [0:0]\nCOMMIT\n' +
      '*filter\n:KUBE-PROXY-CANARY - [0:0]\nCOMMIT\n*nat\n:KUBE-PROXY-CANARY - [0:0]\nCOMMIT\n',
  );
  const r = await runCli(...base, '--against', dump);
  t.is(r.code, 1);
  t.regex(r.stdout, /^\+-A KUBE-SERVICES /m, 'the rules are still to be added');
  t.false(r.stdout.includes('KUBE-PROXY-CANARY'));
});

test('a rule changed in the dump shows as one removed and one added line', async (t) => {
  const dump = join(tmp, 'changed.dump');
  writeFileSync(
    dump,
    '*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-MARK-MASQ - [0:0]\n-A KUBE-MARK-MASQ -j MARK --set-xmark 0x8000/0x8000\n-A PREROUTING -j DOCKER\nCOMMIT\n',
  );
  const r = await runCli(...base, '--against', dump);
  t.is(r.code, 1);
  t.regex(r.stdout, /^--A KUBE-MARK-MASQ -j MARK --set-xmark 0x8000\/0x8000$/m);
  t.regex(r.stdout, /^\+-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000\/0x4000$/m);
  // Docker's rule is not kproxy's: it is neither shown nor removed.
  t.false(r.stdout.includes('DOCKER'));
});

test('nftables mode prints the kube-proxy table as nft lists it', async (t) => {
  const r = await runCli(...base, '--proxy-mode', 'nftables');
  t.is(r.code, 1, r.stderr);
  t.regex(r.stdout, /^\+\+\+ nftables ip kube-proxy: desired for node kind-worker$/m);
  t.regex(r.stdout, /^\+table ip kube-proxy \{$/m);
  // The flat layout (default): a shared pick chain and the endpoints as map elements.
  t.regex(r.stdout, /10\.96\.0\.10 \. udp \. 53 : goto pick-2/);
  t.regex(r.stdout, /10\.96\.0\.10 \. udp \. 53 \. 1 : 10\.244\.0\.4 \. 53/);
  const upstream = await runCli(...base, '--proxy-mode', 'nftables', '--nftables-layout', 'upstream');
  t.regex(upstream.stdout, /10\.96\.0\.10 \. udp \. 53 : goto service-/);
  const rules = await runCli(...base, '--proxy-mode', 'nftables', '--output', 'rules');
  t.is(rules.code, 0);
  t.regex(rules.stdout, /^add table ip kube-proxy/m);
});
test('bad flags and bad files exit 2 with a message naming the problem', async (t) => {
  const notYaml = join(tmp, 'not.yaml');
  writeFileSync(notYaml, 'kind: [unclosed\n  : : :\n\t{{{');
  const cases: [string[], RegExp][] = [
    [
      [...base, '--proxy-mode', 'userspace'],
      /--proxy-mode: "userspace" is not one of iptables, ipvs, nftables/,
    ],
    [[...base, '--cluster-cidr', '10.244.0.0/33'], /--cluster-cidr: "10\.244\.0\.0\/33" is not a valid CIDR/],
    [[...base, '--no-such-flag'], /Unknown option '--no-such-flag'/],
    [['diff', '--from-file', notYaml], /not valid YAML or JSON/],
    [['diff', '--from-file', join(tmp, 'missing.yaml')], /cannot read file \(ENOENT\)/],
    [['diff'], /--from-file FILE or --kubeconfig K is required/],
    [
      ['diff', '--from-file', exampleCluster, '--kubeconfig', notYaml],
      /give --from-file or --kubeconfig, not both/,
    ],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [argv, message] of cases) {
    const r = await runCli(...argv);
    t.is(r.code, 2, argv.join(' '));
    t.regex(r.stderr, message);
  }
});

test('an invalid object is skipped with one message and the rest is still rendered', async (t) => {
  const file = join(tmp, 'mixed.yaml');
  writeFileSync(
    file,
    [
      'apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name, namespace: ns}\nspec: {clusterIP: 10.0.0.9, ports: [{port: 80}]}',
      'apiVersion: v1\nkind: Service\nmetadata: {name: good, namespace: ns}\nspec: {clusterIP: 10.0.0.10, ports: [{port: 80}]}',
    ].join('\n---\n'),
  );
  const r = await runCli('diff', '--from-file', file, '--hostname-override', 'n1', '--node-ip', '192.0.2.1');
  t.is(r.code, 1);
  const warnings = r.stderr.split('\n').filter((l) => l.includes('Bad_Name'));
  t.is(warnings.length, 1);
  t.regex(warnings[0] as string, /Service ns\/Bad_Name: metadata\.name: "Bad_Name" must be a DNS-1035 label/);
  t.regex(r.stdout, /ns\/good has no endpoints/);
});

// kind-worker has no IPv6 address: upstream serves its IPv6 NodePorts on every local address.
for (const family of ['IPv4', 'IPv6']) {
  const fixture = (name: string) => new URL(`../fixtures/upstream/${name}`, import.meta.url).pathname;
  test(`nftables ${family}: the upstream layout for kind-worker is exactly upstream v1.37.2's real dump (no diff, exit 0)`, async (t) => {
    const r = await runCli(
      'diff',
      '--proxy-mode',
      'nftables',
      '--nftables-layout',
      'upstream',
      '--ip-family',
      family,
      '--against',
      fixture('v1.37.2-kind-worker.nftables'),
      '--from-file',
      fixture('v1.37.2-kind-worker.nftables.cluster.yaml'),
      '--hostname-override',
      'kind-worker',
      '--cluster-cidr',
      '10.244.0.0/16',
    );
    t.is(r.stdout, '', r.stderr);
    t.is(r.code, 0);
  });
}

// The flat layout's text differs from upstream's; what every packet meets must not.
for (const family of ['IPv4', 'IPv6']) {
  test(`nftables ${family}: the flat layout for kind-worker gives every packet class upstream v1.37.2's fate`, async (t) => {
    const fixture = (name: string) => new URL(`../fixtures/upstream/${name}`, import.meta.url).pathname;
    const args = ['--proxy-mode', 'nftables', '--ip-family', family, '--hostname-override', 'kind-worker'];
    args.push('--cluster-cidr', '10.244.0.0/16', '--against', fixture('v1.37.2-kind-worker.nftables'));
    args.push('--from-file', fixture('v1.37.2-kind-worker.nftables.cluster.yaml'));
    const text = await runCli('diff', ...args);
    t.is(text.code, 1, 'the table text differs from upstream');
    t.regex(text.stdout, /^\+\tmap endpoints \{$/m);
    const r = await runCli('verify', ...args);
    t.is(r.code, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /no packet class differs\n$/);
  });
}
