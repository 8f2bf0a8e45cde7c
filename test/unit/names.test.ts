// kube-proxy's per-port chain names: the first 16 characters of
// base32(sha256(servicePortName + protocol [+ endpoint])), with Go's base32.StdEncoding.
// Every expected name below was computed by upstream kube-proxy, not by us.
import test from 'ava';
import { base32 } from '../../src/backends/common/base32.js';
import {
  chainPrefixes,
  endpointChain,
  isServiceChain,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_SERVICES,
  portProtoHash,
  serviceChains,
} from '../../src/backends/iptables/names.js';

// RFC 4648 section 10 test vectors (Go's base32.StdEncoding), without the '=' padding,
// which kube-proxy never reaches since it keeps 16 of sha256's 52 characters.
const rfc4648: [string, string][] = [
  ['', ''],
  ['f', 'MY'],
  ['fo', 'MZXQ'],
  ['foo', 'MZXW6'],
  ['foob', 'MZXW6YQ'],
  ['fooba', 'MZXW6YTB'],
  ['foobar', 'MZXW6YTBOI'],
];
for (const [input, encoded] of rfc4648) {
  test(`base32 RFC 4648 vector ${JSON.stringify(input)}`, (t) => {
    t.is(base32(new TextEncoder().encode(input)), encoded);
  });
}

test('base32 of every byte value round-trips through the 5-bit groups', (t) => {
  // 0xff x5 is 40 one-bits: eight '7's (31); 0x00 x5 is eight 'A's.
  t.is(base32(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff])), '77777777');
  t.is(base32(new Uint8Array(5)), 'AAAAAAAA');
  t.is(base32(new Uint8Array([0x80])), 'QA');
});

// [servicePortName, protocol, KUBE-SVC/SVL/EXT/FW hash]
const portHashes: [string, string, string, string][] = [
  // TestOverallIPTablesRules (pkg/proxy/iptables/proxier_test.go)
  ['ns1/svc1:p80', 'tcp', 'XPGD46QRK7WJZT7O', 'TestOverallIPTablesRules svc1'],
  ['ns2/svc2:p80', 'tcp', 'GNZBNJ2PO5MGZ6GT', 'TestOverallIPTablesRules svc2'],
  ['ns3/svc3:p80', 'tcp', 'X27LE4BHSL4DOUIK', 'TestOverallIPTablesRules svc3'],
  ['ns4/svc4:p80', 'tcp', '4SW47YFZTEDKD3PK', 'TestOverallIPTablesRules svc4'],
  ['ns5/svc5:p80', 'tcp', 'NUKIZ6OKUXPJNT4C', 'TestOverallIPTablesRules svc5'],
  // TestInternalTrafficPolicy / TestTerminatingEndpointsTrafficPolicyLocal: an unnamed port.
  ['ns1/svc1', 'tcp', 'AQI2S6QIMU7PVVRP', 'TestInternalTrafficPolicy (unnamed port)'],
  // Names kube-proxy gives the default Services of every cluster, as seen in
  // iptables-save output of real clusters (they depend on nothing but the names).
  ['default/kubernetes:https', 'tcp', 'NPX46M4PTMTKRN6Y', 'default/kubernetes'],
  ['kube-system/kube-dns:dns', 'udp', 'TCOU7JCQXEZGVUNU', 'kube-dns UDP'],
  ['kube-system/kube-dns:dns-tcp', 'tcp', 'ERIFXISQEP7F7OF4', 'kube-dns TCP'],
  ['kube-system/kube-dns:metrics', 'tcp', 'JD5MR3NA4I4DYORP', 'kube-dns metrics'],
];
for (const [name, proto, hash, source] of portHashes) {
  test(`portProtoHash ${name} ${proto} (${source})`, (t) => {
    t.is(portProtoHash(name, proto), hash);
    t.deepEqual(serviceChains(name, proto), {
      cluster: `KUBE-SVC-${hash}`,
      local: `KUBE-SVL-${hash}`,
      external: `KUBE-EXT-${hash}`,
      firewall: `KUBE-FW-${hash}`,
    });
  });
}

// [servicePortName, protocol, endpoint string, KUBE-SEP name, source]
const endpointChains: [string, string, string, string, string][] = [
  // TestOverallIPTablesRules
  ['ns1/svc1:p80', 'tcp', '10.180.0.1:80', 'KUBE-SEP-SXIVWICOYRO3J4NJ', 'TestOverallIPTablesRules'],
  ['ns2/svc2:p80', 'tcp', '10.180.0.2:80', 'KUBE-SEP-RS4RBKLTHTF2IUXJ', 'TestOverallIPTablesRules'],
  ['ns3/svc3:p80', 'tcp', '10.180.0.3:80', 'KUBE-SEP-OYPFS5VJICHGATKP', 'TestOverallIPTablesRules'],
  ['ns4/svc4:p80', 'tcp', '10.180.0.4:80', 'KUBE-SEP-UKSFD7AGPMPPLUHC', 'TestOverallIPTablesRules'],
  ['ns4/svc4:p80', 'tcp', '10.180.0.5:80', 'KUBE-SEP-C6EBXVWJJZMIWKLZ', 'TestOverallIPTablesRules'],
  // The same endpoint behind another Service port gets another chain.
  ['ns5/svc5:p80', 'tcp', '10.180.0.3:80', 'KUBE-SEP-I77PXRDZVX7PMWMN', 'TestOverallIPTablesRules'],
  // TestEnableLocalhostNodePortsIPv4 / TestDisableLocalhostNodePortsIPv4WithNodeAddress
  ['ns1/svc1:p80', 'tcp', '10.244.0.1:80', 'KUBE-SEP-6KG6DFHVBKBK53RU', 'TestDisableLocalhostNodePortsIPv4'],
  ['ns1/svc1:p80', 'tcp', '10.244.2.1:80', 'KUBE-SEP-KDGX2M2ONE25PSWH', 'TestDisableLocalhostNodePortsIPv4'],
  // TestEnableLocalhostNodePortsIPv6 / TestDisableLocalhostNodePortsIPv6: IPv6 endpoints, bracketed.
  ['ns1/svc1:p80', 'tcp', '[ff06::c1]:80', 'KUBE-SEP-LIGRYQQLSZN4UWQ5', 'TestEnableLocalhostNodePortsIPv6'],
  ['ns1/svc1:p80', 'tcp', '[ff06::c2]:80', 'KUBE-SEP-XJJ5QXWGJG344QDZ', 'TestEnableLocalhostNodePortsIPv6'],
  // TestInternalTrafficPolicy / TestTerminatingEndpointsTrafficPolicyLocal (unnamed port)
  ['ns1/svc1', 'tcp', '10.0.1.1:80', 'KUBE-SEP-3JOIVZTXZZRGORX4', 'TestInternalTrafficPolicy'],
  ['ns1/svc1', 'tcp', '10.0.1.2:80', 'KUBE-SEP-IO5XOSKPAXIFQXAJ', 'TestInternalTrafficPolicy'],
  ['ns1/svc1', 'tcp', '10.0.1.3:80', 'KUBE-SEP-XGJFVO3L2O5SRFNT', 'TestInternalTrafficPolicy'],
  [
    'ns1/svc1',
    'tcp',
    '10.0.1.5:80',
    'KUBE-SEP-EQCHZ7S2PJ72OHAY',
    'TestTerminatingEndpointsTrafficPolicyLocal',
  ],
  // A UDP endpoint of kube-dns, from a real cluster's iptables-save output.
  ['kube-system/kube-dns:dns', 'udp', '10.244.0.10:53', 'KUBE-SEP-R7EMXN5TTQQVP4UW', 'kube-dns'],
  ['kube-system/kube-dns:dns', 'udp', '10.244.0.5:53', 'KUBE-SEP-LPGSDLJ3FDW46N4W', 'kube-dns'],
];
for (const [name, proto, ep, chain, source] of endpointChains) {
  test(`endpointChain ${name} ${proto} ${ep} (${source})`, (t) => {
    t.is(endpointChain(name, proto, ep), chain);
  });
}

test('chain names fit iptables 28-character limit', (t) => {
  for (const [name, proto] of portHashes) {
    for (const chain of Object.values(serviceChains(name, proto))) t.true(chain.length <= 28, chain);
  }
  t.is(endpointChain('ns1/svc1:p80', 'tcp', '[ff06::c1]:80').length, 'KUBE-SEP-'.length + 16);
});

test('the protocol is part of the hash: lower case as kube-proxy writes it', (t) => {
  t.not(portProtoHash('ns1/svc1:p80', 'TCP'), portProtoHash('ns1/svc1:p80', 'tcp'));
  t.not(portProtoHash('ns1/svc1:p80', 'udp'), portProtoHash('ns1/svc1:p80', 'tcp'));
});

const serviceChainCases: [string, boolean][] = [
  ['KUBE-SVC-XPGD46QRK7WJZT7O', true],
  ['KUBE-SVL-XPGD46QRK7WJZT7O', true],
  ['KUBE-EXT-XPGD46QRK7WJZT7O', true],
  ['KUBE-FW-XPGD46QRK7WJZT7O', true],
  ['KUBE-SEP-SXIVWICOYRO3J4NJ', true],
  [KUBE_SERVICES, false],
  [KUBE_NODEPORTS, false],
  [KUBE_MARK_MASQ, false],
];
for (const [chain, expected] of serviceChainCases) {
  test(`isServiceChain ${chain}`, (t) => {
    t.is(isServiceChain(chain), expected);
  });
}

test('chain prefixes are upstream names', (t) => {
  t.deepEqual(chainPrefixes, {
    cluster: 'KUBE-SVC-',
    local: 'KUBE-SVL-',
    external: 'KUBE-EXT-',
    firewall: 'KUBE-FW-',
    endpoint: 'KUBE-SEP-',
  });
});
