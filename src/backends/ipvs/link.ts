// kube-ipvs0 and its addresses through rtnetlink (the netlink package): no `ip`
// binary involved. A dummy link has no native typing in the package, so its
// IFLA_LINKINFO attribute (a nested IFLA_INFO_KIND "dummy") is encoded here.
import ipaddr from 'ipaddr.js';
import { createRtNetlink, type RtNetlinkSocket } from 'netlink';
import { canonicalIP, familyOf } from '../../util/ip.js';
import { stringAttribute } from '../common/netlink-attr.js';

export interface LinkAddresses {
  /** Addresses on the named device. */
  onDevice: string[];
  /** Every other address of the namespace (loopback included). */
  elsewhere: string[];
}

export interface LinkHost {
  /** Creates the dummy device unless it exists; resolves true when it was created. */
  ensureDummy(name: string): Promise<boolean>;
  /** Deletes the device; resolves false when there was none. */
  deleteLink(name: string): Promise<boolean>;
  addresses(device: string): Promise<LinkAddresses>;
  /** Adds /32 (/128) addresses to the device; ones already there are fine. */
  bind(ips: readonly string[], device: string): Promise<void>;
  /** Removes addresses from the device; ones already gone are fine. */
  unbind(ips: readonly string[], device: string): Promise<void>;
  close(): void;
}

const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const IFLA_INFO_KIND = 1;
const AF_INET = 2;
const AF_INET6 = 10;
/** Address requests sent before waiting for their answers (the socket buffer holds far more ACKs). */
const inFlight = 64;

/** IFLA_LINKINFO payload: one nested attribute IFLA_INFO_KIND = kind (NUL-terminated, 4-byte aligned). */
export function linkInfoKind(kind: string): Buffer {
  return stringAttribute(IFLA_INFO_KIND, kind);
}

export function addressBytes(ip: string): Buffer {
  return Buffer.from(ipaddr.parse(ip).toByteArray());
}

export function addressText(bytes: Buffer | undefined): string | undefined {
  if (!bytes || (bytes.length !== 4 && bytes.length !== 16)) return undefined;
  return canonicalIP(ipaddr.fromByteArray([...bytes]).toString());
}

const exists = (err: unknown): boolean => /EEXIST/.test((err as Error).message);
const gone = (err: unknown): boolean => /EADDRNOTAVAIL|ENODEV|ESRCH|ENOENT/.test((err as Error).message);

export function netlinkLinkHost(): LinkHost {
  let socket: RtNetlinkSocket | undefined;
  const sock = (): RtNetlinkSocket => {
    socket ??= createRtNetlink();
    return socket;
  };
  const indexOf = async (name: string): Promise<number | undefined> => {
    const links = await sock().getLinks();
    return links.find((l) => l.attrs.ifname === name)?.data.index;
  };
  const address = async (ip: string, index: number, device: string, add: boolean): Promise<void> => {
    const v4 = familyOf(ip) === 'IPv4';
    const data = {
      family: v4 ? AF_INET : AF_INET6,
      prefixlen: v4 ? 32 : 128,
      index,
      ...(v4 ? {} : { flags: { nodad: true as const } }),
    };
    const bytes = addressBytes(ip);
    const attrs = { local: bytes, address: bytes };
    try {
      if (add) await sock().newAddress(data, attrs, { flags: NLM_F_CREATE | NLM_F_EXCL });
      else await sock().delAddress(data, attrs);
    } catch (err) {
      if (add ? !exists(err) : !gone(err))
        throw new Error(`${add ? 'adding' : 'removing'} ${ip} on ${device}: ${(err as Error).message}`);
    }
  };
  /**
   * Many requests in flight at once: each is answered by an ACK matched on its
   * sequence number, so a batch costs a few round trips instead of one each.
   */
  const addresses = async (ips: readonly string[], device: string, add: boolean): Promise<void> => {
    if (ips.length === 0) return;
    const index = await indexOf(device);
    if (index === undefined) throw new Error(`no device ${device}`);
    for (let i = 0; i < ips.length; i += inFlight) {
      await Promise.all(ips.slice(i, i + inFlight).map((ip) => address(ip, index, device, add)));
    }
  };
  return {
    async ensureDummy(name) {
      if ((await indexOf(name)) !== undefined) return false;
      try {
        await sock().newLink(
          {},
          { ifname: name, linkinfo: linkInfoKind('dummy') },
          { flags: NLM_F_CREATE | NLM_F_EXCL },
        );
        return true;
      } catch (err) {
        if (exists(err)) return false;
        const why = (err as Error).message;
        // EOPNOTSUPP: the kernel has no dummy driver (this is what a kernel without CONFIG_DUMMY answers).
        throw new Error(
          `cannot create dummy interface ${name}: ${why}${/EOPNOTSUPP|ENOTSUP/.test(why) ? ' (load the dummy kernel module: modprobe dummy)' : ''}`,
        );
      }
    },
    async deleteLink(name) {
      const index = await indexOf(name);
      if (index === undefined) return false;
      await sock().delLink({ index });
      return true;
    },
    async addresses(device) {
      // One dump at a time: the package mixes up the parts of concurrent multipart replies.
      const links = await sock().getLinks();
      const addrs = await sock().getAddresses();
      const index = links.find((l) => l.attrs.ifname === device)?.data.index;
      const out: LinkAddresses = { onDevice: [], elsewhere: [] };
      for (const a of addrs) {
        const ip = addressText(a.attrs.local ?? a.attrs.address);
        if (ip) (a.data.index === index ? out.onDevice : out.elsewhere).push(ip);
      }
      return out;
    },
    bind: (ips, device) => addresses(ips, device, true),
    unbind: (ips, device) => addresses(ips, device, false),
    close() {
      socket?.socket.close();
      socket = undefined;
    },
  };
}
