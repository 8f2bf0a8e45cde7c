// Named packet counters of nfnetlink_acct, the objects the iptables `-m nfacct
// --nfacct-name NAME` match adds to. They live in the network namespace, outside
// any table: one must exist before a rule naming it is restored. Reached through a
// NETLINK_NETFILTER socket of the netlink package (subsystem NFNL_SUBSYS_ACCT), so
// no `nfacct` binary is needed. The message layout is pure and tested apart.

import { createNetlink, FlagsGet, FlagsNew, type NetlinkSocket, Protocol, parseAttributes } from 'netlink';
import { stringAttribute } from '../common/netlink-attr.js';

/** NFNL_SUBSYS_ACCT (linux/netfilter/nfnetlink.h), NFNL_MSG_ACCT_NEW, _GET and _DEL (nfnetlink_acct.h). */
const nfnl = { subsysAcct: 7, msgNew: 0, msgGet: 1, msgDel: 3 } as const;
/** NFACCT_NAME, NFACCT_PKTS, NFACCT_BYTES. */
const attr = { name: 1, packets: 2, bytes: 3 } as const;
/** NFACCT_NAME_MAX, the terminating NUL included. */
const NAME_MAX = 32;
/** A kernel answers at once; a socket that does not is treated as a missing subsystem. */
const timeoutMs = 2000;

export interface NfacctCounter {
  name: string;
  packets: bigint;
  bytes: bigint;
}

export interface NfacctClient {
  /** Every counter of this network namespace (an empty list when there are none). */
  list(): Promise<NfacctCounter[]>;
  /** Creates the counter unless it exists; an existing one keeps its count. */
  ensure(name: string): Promise<void>;
  /**
   * Deletes the counter: 'absent' when there is none, 'busy' (EBUSY, nothing
   * deleted) while a rule still names it; any other refusal throws.
   */
  remove(name: string): Promise<'removed' | 'absent' | 'busy'>;
  close(): void;
}

export const nfacctMessageType = (cmd: number): number => (nfnl.subsysAcct << 8) | cmd;

/** struct nfgenmsg (family AF_UNSPEC, version 0, res_id 0), then NFACCT_NAME when given. */
export function nfacctPayload(name?: string): Buffer {
  const header = Buffer.alloc(4);
  if (name === undefined) return header;
  if (name === '' || Buffer.byteLength(name) >= NAME_MAX)
    throw new Error(`nfacct counter name ${JSON.stringify(name)}: 1 to ${NAME_MAX - 1} bytes`);
  return Buffer.concat([header, stringAttribute(attr.name, name)]);
}

/** One counter from a NEW/GET answer's payload (nfgenmsg, then attributes); undefined if incomplete. */
export function parseNfacctCounter(payload: Buffer): NfacctCounter | undefined {
  let name: string | undefined;
  let packets: bigint | undefined;
  let bytes: bigint | undefined;
  parseAttributes(payload.subarray(4), ({ type, data }) => {
    // The kernel sends the counts in network byte order (NLA_U64 as __be64).
    if (type === attr.name) name = data.toString('utf8').replace(/\0.*$/s, '');
    else if (type === attr.packets && data.length === 8) packets = data.readBigUInt64BE(0);
    else if (type === attr.bytes && data.length === 8) bytes = data.readBigUInt64BE(0);
  });
  if (name === undefined || packets === undefined || bytes === undefined) return undefined;
  return { name, packets, bytes };
}

/** The errno name of a refused request ("Request rejected: EBUSY"), or the message. */
export function nfacctErrno(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return /Request rejected: (\w+)/.exec(message)?.[1] ?? message;
}

/** A client on a NETLINK_NETFILTER socket of this process's network namespace. */
export function netlinkNfacct(): NfacctClient {
  let socket: NetlinkSocket | undefined;
  // One request at a time: the kernel refuses a dump while another runs on the
  // socket (EBUSY), and the metrics are scraped concurrently.
  let queue: Promise<unknown> = Promise.resolve();
  const request = (cmd: number, payload: Buffer, flags: number) => {
    const run = queue.then(() => {
      socket ??= createNetlink(Protocol.NETFILTER);
      return socket.request(nfacctMessageType(cmd), payload, { flags, timeout: timeoutMs });
    });
    queue = run.catch(() => undefined);
    return run;
  };
  return {
    async list() {
      // A dump, not a GET by name: the kernel flags a GET's single answer as
      // multipart without ending it, which the package rejects.
      const [msgs] = await request(nfnl.msgGet, nfacctPayload(), FlagsGet.DUMP);
      return msgs.map((m) => parseNfacctCounter(m.data)).filter((c) => c !== undefined);
    },
    async ensure(name) {
      try {
        // Without NLM_F_REPLACE an existing counter is left alone and answers EBUSY.
        await request(nfnl.msgNew, nfacctPayload(name), FlagsNew.CREATE);
      } catch (err) {
        if (nfacctErrno(err) !== 'EBUSY') throw err;
      }
    },
    async remove(name) {
      try {
        await request(nfnl.msgDel, nfacctPayload(name), 0);
        return 'removed';
      } catch (err) {
        const errno = nfacctErrno(err);
        if (errno === 'ENOENT') return 'absent';
        if (errno === 'EBUSY') return 'busy';
        throw err;
      }
    },
    close() {
      socket?.close();
      socket = undefined;
    },
  };
}
