// `kproxy diff --proxy-mode ipvs`: the IPVS state a node would get, as a diff
// against an empty kernel; no root, no kernel.
import test from 'ava';
import { kindWorkerArgs, runCli } from '../helpers/cli.js';

const base = ['diff', ...kindWorkerArgs];

test('prints addresses, virtual and real servers, ipset entries and iptables rules; exit 1 (there are changes)', async (t) => {
  const r = await runCli(...base, '--proxy-mode', 'ipvs');
  t.is(r.code, 1, r.stderr);
  t.regex(r.stdout, /^--- ipvs IPv4: empty kernel\n\+\+\+ ipvs IPv4: desired for node kind-worker\n/);
  for (const line of [
    '+# kube-ipvs0 addresses',
    '+10.96.0.10/32',
    '+# IPVS virtual servers (ipvsadm -Sn)',
    // shop/web: NodePort with ClientIP affinity (600 s), on the node's address too
    '+-A -t 10.96.120.7:80 -s rr -p 600',
    '+-A -t 172.18.0.3:30080 -s rr -p 600',
    '+-a -u 10.96.0.10:53 -r 10.244.0.3:53 -m -w 1',
    '+# ipsets (ipset save)',
    '+add KUBE-CLUSTER-IP 10.96.0.10,udp:53',
    '+add KUBE-NODE-PORT-TCP 30080',
    '+# iptables (iptables-save)',
    '+-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER',
    '+-A KUBE-SERVICES ! -s 10.244.0.0/16 -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ',
  ]) {
    t.true(r.stdout.split('\n').includes(line), `missing: ${line}`);
  }
});

test('--ipvs-scheduler shapes the virtual servers; a scheduler the kernel does not ship is refused', async (t) => {
  const r = await runCli(...base, '--proxy-mode', 'ipvs', '--ipvs-scheduler', 'mh', '--output', 'rules');
  t.is(r.code, 0);
  t.true(r.stdout.includes('-A -t 10.96.0.1:443 -s mh -b mh-port\n'));
  const bad = await runCli(...base, '--proxy-mode', 'ipvs', '--ipvs-scheduler', 'fifo');
  t.is(bad.code, 2);
  t.regex(
    bad.stderr,
    /--ipvs-scheduler: "fifo" is not one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh/,
  );
});

test('--against takes an iptables-save dump: refused with ipvs, clearly', async (t) => {
  const r = await runCli(...base, '--proxy-mode', 'ipvs', '--against', '/dev/null');
  t.is(r.code, 2);
  t.regex(r.stderr, /--against .*not available with --proxy-mode ipvs/);
});

test('--output json prints the same proxy model as the iptables mode', async (t) => {
  const ipvs = await runCli(...base, '--proxy-mode', 'ipvs', '--output', 'json');
  const iptables = await runCli(...base, '--output', 'json');
  t.is(ipvs.code, 0);
  t.deepEqual(JSON.parse(ipvs.stdout), JSON.parse(iptables.stdout));
});
