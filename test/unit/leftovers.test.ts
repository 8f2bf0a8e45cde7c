// Start-up's clean-up of other modes' rules: which modes each mode clears (as
// kube-proxy: nftables clears iptables and IPVS; those two clear nftables), and a
// clean-up that fails is one warning while the next one still runs.
import { PassThrough } from 'node:stream';
import test from 'ava';
import { type ModeName, modeFor, type ProxyMode } from '../../src/backends/mode.js';
import { removeLeftovers } from '../../src/daemon/leftovers.js';
import { createLogger } from '../../src/log.js';

test('each mode clears the modes kube-proxy clears when it starts in it', (t) => {
  t.deepEqual(modeFor('nftables').clearsAtStart, ['iptables', 'ipvs']);
  t.deepEqual(modeFor('iptables').clearsAtStart, ['nftables']);
  t.deepEqual(modeFor('ipvs').clearsAtStart, ['nftables']);
});

test('a failed clean-up is a warning and the next mode is still cleared', async (t) => {
  const out = new PassThrough();
  let logged = '';
  out.on('data', (d) => {
    logged += d;
  });
  const cleared: string[] = [];
  const fake = (name: ModeName): ProxyMode => ({
    ...modeFor(name),
    async cleanup({ families, flavour }) {
      if (name === 'iptables') throw new Error('iptables-legacy-save: not found');
      cleared.push(`${name} ${families.join(',')} ${flavour}`);
    },
  });
  await removeLeftovers(
    modeFor('nftables'),
    ['IPv4', 'IPv6'],
    createLogger({ stream: out, json: false }),
    'auto',
    fake,
  );
  t.deepEqual(cleared, ['ipvs IPv4,IPv6 auto']);
  t.regex(logged, /cannot remove the iptables mode's leftovers: iptables-legacy-save: not found; going on/);
  t.regex(logged, /removing what the ipvs mode left on this node \(kproxy runs in nftables mode\)/);
});
