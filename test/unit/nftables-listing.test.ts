// Reading `nft list table` output and printing the diffable listing; the host's
// pure helpers. The same comparison runs against the real kernel in
// test/kernel/nftables-traffic.test.ts.
import test from 'ava';
import { ToolMissingError } from '../../src/backends/common/errors.js';
import {
  durationText,
  parseDuration,
  parsePriority,
  printRule,
  priorityText,
} from '../../src/backends/nftables/canonical.js';
import { execNftHost, NftError, nftKernelFeatures } from '../../src/backends/nftables/host.js';
import { listingFromDump } from '../../src/backends/nftables/listing.js';
import { parseElement, parseListing } from '../../src/backends/nftables/parse.js';

// As nft 1.0.6 lists it (elements in hash order, a dynamic set with live entries),
// inside a whole-ruleset listing with another program's table around it.
const ruleset = `table inet other {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 22 accept
	}
}
table ip6 kube-proxy {
	comment "rules for kube-proxy"
	set cluster-ips {
		type ipv6_addr
		comment "Active ClusterIPs"
		elements = { fd00:10:96::1, fd00:10:96::a }
	}

	map no-endpoint-services {
		type ipv6_addr . inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to services with no endpoints"
		elements = { fd00:10:96::a . tcp . 80 comment "ns1/svc, with a comma:p80" : goto reject-chain,
			     2001:db8::7 . udp . 53 comment "ns2/x:dns" : drop }
	}

	set affinity-ABCDEFGH-ns1/svc1/tcp/p80__fd00.10..5/80 {
		type ipv6_addr
		size 65535
		flags dynamic,timeout
		timeout 3h
		elements = { fd00:10::2 timeout 3h expires 2h59m57s }
	}

	chain filter-prerouting-pre-dnat {
		type filter hook prerouting priority dstnat - 10; policy accept;
		ct state new jump firewall-check
	}

	chain reject-chain {
		comment "helper for @no-endpoint-services / @no-endpoint-nodeports"
		reject
	}

	chain firewall-check {
	}
}
table ip filter {
	chain FORWARD {
		type filter hook forward priority filter; policy accept;
	}
}
`;

test('parses kproxy table out of a whole ruleset', (t) => {
  const table = parseListing(ruleset, 'ip6', 'kube-proxy');
  if (!table) return t.fail('not found');
  t.is(table.comment, 'rules for kube-proxy');
  t.deepEqual([...table.chains.keys()], ['filter-prerouting-pre-dnat', 'reject-chain', 'firewall-check']);
  t.deepEqual(table.chains.get('filter-prerouting-pre-dnat')?.base, {
    type: 'filter',
    hook: 'prerouting',
    priority: -110,
  });
  t.is(
    table.chains.get('reject-chain')?.comment,
    'helper for @no-endpoint-services / @no-endpoint-nodeports',
  );
  t.deepEqual(table.chains.get('reject-chain')?.rules, ['reject']);
  t.deepEqual(
    [...(table.sets.get('cluster-ips')?.elements.keys() ?? [])],
    ['fd00:10:96::1', 'fd00:10:96::a'],
  );
  t.deepEqual(
    [...(table.sets.get('no-endpoint-services')?.elements.values() ?? [])],
    [
      { key: 'fd00:10:96::a . tcp . 80', value: 'goto reject-chain', comment: 'ns1/svc, with a comma:p80' },
      { key: '2001:db8::7 . udp . 53', value: 'drop', comment: 'ns2/x:dns' },
    ],
  );
  const affinity = table.sets.get('affinity-ABCDEFGH-ns1/svc1/tcp/p80__fd00.10..5/80');
  t.deepEqual([affinity?.flags, affinity?.timeoutSeconds], [['dynamic', 'timeout'], 10800]);
  t.is(parseListing(ruleset, 'ip', 'kube-proxy'), undefined);
});

test('the listing is sorted, one element per line, without live affinity entries or set sizes', (t) => {
  t.is(
    listingFromDump(ruleset, 'ip6'),
    `table ip6 kube-proxy {
	comment "rules for kube-proxy"
	set affinity-ABCDEFGH-ns1/svc1/tcp/p80__fd00.10..5/80 {
		type ipv6_addr
		flags dynamic,timeout
		timeout 3h
	}

	set cluster-ips {
		type ipv6_addr
		comment "Active ClusterIPs"
		elements = { fd00:10:96::1,
			     fd00:10:96::a }
	}

	map no-endpoint-services {
		type ipv6_addr . inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to services with no endpoints"
		elements = { 2001:db8::7 . udp . 53 comment "ns2/x:dns" : drop,
			     fd00:10:96::a . tcp . 80 comment "ns1/svc, with a comma:p80" : goto reject-chain }
	}

	chain filter-prerouting-pre-dnat {
		type filter hook prerouting priority dstnat - 10; policy accept;
		ct state new jump firewall-check
	}

	chain firewall-check {
	}

	chain reject-chain {
		comment "helper for @no-endpoint-services / @no-endpoint-nodeports"
		reject
	}
}
`,
  );
  t.is(listingFromDump(ruleset, 'ip'), '');
});

test("rules are rewritten into nft's print form", (t) => {
  t.is(printRule('mark set mark or 0x4000'), 'meta mark set meta mark | 0x00004000');
  t.is(printRule('mark and 0x4000 == 0 return'), 'meta mark & 0x00004000 == 0x00000000 return');
  t.is(printRule('mark set mark xor 0x4000'), 'meta mark set meta mark ^ 0x00004000');
  t.is(printRule('ip saddr != { 203.0.113.0/25 } drop'), 'ip saddr != 203.0.113.0/25 drop');
  t.is(
    printRule('ip saddr != { 203.0.113.0/25, 5.6.7.8, 203.0.113.128/25 } drop'),
    'ip saddr != { 5.6.7.8, 203.0.113.0/24 } drop',
  );
  t.is(printRule('ip daddr { 10.0.0.0/24, 10.0.1.0/25 } drop'), 'ip daddr { 10.0.0.0-10.0.1.127 } drop');
  t.is(
    printRule('ip6 saddr != { fd00::/8, 2001:db8::1 } drop'),
    'ip6 saddr != { 2001:db8::1, fd00::/8 } drop',
  );
  t.is(
    printRule('numgen random mod 2 vmap { 0 : goto a , 1 : goto b }'),
    'numgen random mod 2 vmap { 0 : goto a, 1 : goto b }',
  );
  t.is(printRule('iifname != veth* jump mark-for-masquerade'), 'iifname != "veth*" jump mark-for-masquerade');
  t.is(printRule('iif cbr0 goto x'), 'iif "cbr0" goto x');
  t.is(printRule('meta l4proto tcp dnat to [fd00::1]:80'), 'meta l4proto tcp dnat to [fd00::1]:80');
});

test('priorities and durations in nft words', (t) => {
  t.is(priorityText(-110, 'prerouting'), 'dstnat - 10');
  t.is(priorityText(-110, 'output'), '-110');
  t.is(priorityText(-100, 'output'), '-100');
  t.is(priorityText(100, 'postrouting'), 'srcnat');
  t.is(priorityText(0, 'forward'), 'filter');
  for (const [text, n] of [
    ['dstnat - 10', -110],
    ['filter', 0],
    ['-110', -110],
    ['srcnat + 5', 105],
  ] as const)
    t.is(parsePriority(text), n);
  t.is(durationText(10800), '3h');
  t.is(durationText(90061), '1d1h1m1s');
  t.is(parseDuration('1d1h1m1s'), 90061);
  t.is(parseDuration('3h'), 10800);
  t.deepEqual(parseElement('tcp . 3001 comment "ns2/svc2:p80" : drop', true), {
    key: 'tcp . 3001',
    value: 'drop',
    comment: 'ns2/svc2:p80',
  });
});

// What nft's failures mean for the operator: test/unit/operator-errors.test.ts.
test('host helpers: kernel versions, refused lines', (t) => {
  t.true(nftKernelFeatures('5.15.0-91-generic').deferChainDeletes);
  t.true(nftKernelFeatures('6.1.0-18-amd64').deferChainDeletes);
  t.false(nftKernelFeatures('6.2.0').deferChainDeletes);
  t.false(nftKernelFeatures('6.18.44-fc').deferChainDeletes);
  const e = new NftError('refused', 3, 'a\nb\nc\nd\ne\nf\n');
  t.is(e.excerpt(), '  1: a\n  2: b\n> 3: c\n  4: d\n  5: e');
});

test('a missing nft binary is a clear error, not a crash', async (t) => {
  const saved = process.env.KPROXY_NFT;
  process.env.KPROXY_NFT = '/nonexistent/nft';
  t.teardown(() => {
    if (saved === undefined) delete process.env.KPROXY_NFT;
    else process.env.KPROXY_NFT = saved;
  });
  await t.throwsAsync(execNftHost('IPv4').listTable(), {
    instanceOf: ToolMissingError,
    message: /\/nonexistent\/nft is not installed: install it \(Debian\/Ubuntu package: nftables\)/,
  });
});
