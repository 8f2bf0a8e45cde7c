// The pieces of kube-ipvs0's netlink handling that need no kernel: the dummy
// link's IFLA_LINKINFO attribute and address conversions.
import test from 'ava';
import { addressBytes, addressText, linkInfoKind } from '../../src/backends/ipvs/link.js';

test('IFLA_LINKINFO for a dummy link: one nested IFLA_INFO_KIND "dummy", NUL-terminated, 4-byte aligned', (t) => {
  t.deepEqual([...linkInfoKind('dummy')], [10, 0, 1, 0, 0x64, 0x75, 0x6d, 0x6d, 0x79, 0, 0, 0]);
});

test('addresses to netlink bytes and back, in canonical form', (t) => {
  t.deepEqual([...addressBytes('10.96.0.10')], [10, 96, 0, 10]);
  t.is(addressBytes('fd00::10').length, 16);
  t.is(addressText(addressBytes('fd00:0:0::10')), 'fd00::10');
  t.is(addressText(Buffer.from([192, 168, 0, 2])), '192.168.0.2');
  t.is(addressText(Buffer.from([1, 2, 3])), undefined);
  t.is(addressText(undefined), undefined);
});
