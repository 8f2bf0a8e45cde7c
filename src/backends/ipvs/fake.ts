// An in-memory IPVS node for tests without root (this machine's kernel has no
// IPVS at all): ipvsadm's table of virtual and real servers, ipset's sets and the
// addresses of kube-ipvs0, behind the same IpvsHost and LinkHost the syncer uses,
// with iptables-lib's fake for the mode's iptables part. It refuses what the
// tools refuse (a service that exists, a real server that does not, a set in use,
// an entry of the wrong form) and keeps their partial semantics: `ipvsadm -R`
// goes on after a failed line and reports it at the end; `ipset restore` stops at
// its first failed line, keeping the lines before it. Dumps read as the kernel's.
import { canonicalIP, familyOf, type IPFamily, joinHostPort } from '../../util/ip.js';
import { FakeIptablesHost } from '../iptables-lib/fake.js';
import type { Flavour } from '../iptables-lib/host.js';
import { IpvsCommandError, type IpvsHost } from './host.js';
import {
  type ConnCounts,
  parseIpvsadmSave,
  type RealServer,
  rsKey,
  serviceArgs,
  type VirtualServer,
  vsKey,
} from './ipvsadm.js';
import type { LinkAddresses, LinkHost } from './link.js';

class Refused extends Error {}

/** A virtual server's selector, its key and the options after them, of one ipvsadm command line. */
function command(line: string): { op: string; key: string; selector: string; rest: string } {
  const [op = '', flag = '', addr = '', ...rest] = line.trim().split(/\s+/);
  const selector = `${flag} ${addr}`;
  // -A's parse reads the selector (and the options when the op is -A or -E).
  const parsed = parseIpvsadmSave(`-A ${selector} -s rr\n`).servers;
  const key = [...parsed.keys()][0];
  if (!key) throw new Refused(`bad service in "${line}"`);
  return { op, key, selector, rest: rest.join(' ') };
}

/** The service -A or -E describes: scheduler (wlc when not given, as ipvsadm), persistence, flags. */
function serviceOf(selector: string, rest: string): VirtualServer {
  const vs = [...parseIpvsadmSave(`-A ${selector} ${rest}\n`).servers.values()][0] as VirtualServer;
  return { ...vs, scheduler: vs.scheduler || 'wlc' };
}

/** The real server -a, -e or -d names: forwarding gatewaying and weight 1 unless given, as ipvsadm. */
function serverOf(selector: string, rest: string): RealServer {
  const parsed = parseIpvsadmSave(`-A ${selector} -s rr\n-a ${selector} ${rest}\n`).servers;
  const rs = [...parsed.values()][0]?.realServers[0];
  if (!rs) throw new Refused(`no real server in "${rest}"`);
  return { ...rs, forward: rs.forward ?? 'g' };
}

/** `ipvsadm -Sn`'s lines: each service, then its real servers with their forwarding. */
function savedLines(servers: Iterable<VirtualServer>): string[] {
  const lines: string[] = [];
  for (const vs of servers) {
    let s = `-A ${serviceArgs(vs)} -s ${vs.scheduler}`;
    if (vs.persistence !== undefined) s += ` -p ${vs.persistence}`;
    if (vs.flags) s += ` -b ${vs.flags}`;
    lines.push(s);
    for (const rs of vs.realServers)
      lines.push(`-a ${serviceArgs(vs)} -r ${rsKey(rs)} -${rs.forward ?? 'g'} -w ${rs.weight}`);
  }
  return lines;
}

const text = (lines: readonly string[]): string => (lines.length ? `${lines.join('\n')}\n` : '');

interface FakeSet {
  type: string;
  /** `create`'s options as ipset save prints them (family, hashsize, maxelem or range). */
  options: string;
  family: IPFamily | undefined;
  entries: Set<string>;
}

/** An entry as ipset stores and prints it; Refused when it has not the set's form. */
function storedEntry(set: FakeSet, entry: string): string {
  const dims = set.type.split(':')[1]?.split(',') ?? [];
  const parts = set.type === 'bitmap:port' ? [entry] : entry.split(',');
  if (parts.length !== dims.length) throw new Refused(`Syntax error: "${entry}" is not a ${set.type} entry`);
  return parts
    .map((part, i) => {
      const dim = set.type === 'bitmap:port' ? 'port' : dims[i];
      if (dim === 'port') {
        const m = /^(?:(tcp|udp|sctp):)?(\d+)$/.exec(part);
        if (!m || Number(m[2]) > 65535) throw new Refused(`Syntax error: bad port "${part}"`);
        return set.type === 'bitmap:port' ? m[2] : `${m[1] ?? 'tcp'}:${m[2]}`;
      }
      const [ip = '', prefix] = part.split('/');
      const canonical = canonicalIP(ip);
      if (!canonical || (set.family && familyOf(canonical) !== set.family))
        throw new Refused(`Syntax error: "${part}" is not an address of the set's family`);
      const host = prefix === undefined || prefix === (set.family === 'IPv6' ? '128' : '32');
      if (dim === 'ip' && prefix !== undefined && !host) throw new Refused(`Syntax error: "${part}"`);
      return host ? canonical : `${canonical}/${prefix}`;
    })
    .join(',');
}

/** ipvsadm and ipset in memory. */
export class FakeIpvsHost implements IpvsHost {
  /** Virtual servers by vsKey, in the order they were added (ipvsadm -Sn's order here). */
  readonly servers = new Map<string, VirtualServer>();
  readonly sets = new Map<string, FakeSet>();
  /** Connection counters by `vsKey rsKey` (0 when absent): tests set them to hold a real server. */
  readonly conns = new Map<string, ConnCounts>();
  timeouts = { tcp: 0, tcpFin: 0, udp: 0 };
  /**
   * `inUse`: whether a kernel component (an iptables rule) refers to the set.
   * `calls`: where each change is logged (`ipvsadm N` lines, `ipset restore`), refused ones too.
   */
  constructor(
    private readonly inUse: (set: string) => boolean = () => false,
    readonly calls: string[] = [],
  ) {}

  async save(): Promise<string> {
    return text(savedLines(this.servers.values()));
  }

  async listConnections(servers: readonly VirtualServer[]): Promise<string> {
    const lines = ['IP Virtual Server version 1.2.1 (size=4096)', 'Prot LocalAddress:Port Scheduler Flags'];
    lines.push('  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn');
    const wanted = new Set(servers.map(vsKey));
    for (const [key, vs] of this.servers) {
      if (!wanted.has(key)) continue;
      const persistent = vs.persistence !== undefined ? ` persistent ${vs.persistence}` : '';
      lines.push(`${vs.protocol.padEnd(5)}${joinHostPort(vs.ip, vs.port)} ${vs.scheduler}${persistent}`);
      for (const rs of vs.realServers) {
        const c = this.conns.get(`${key} ${rsKey(rs)}`) ?? { active: 0, inactive: 0 };
        const forward = { m: 'Masq', g: 'Route', i: 'Tunnel' }[rs.forward ?? 'g'];
        lines.push(
          `  -> ${rsKey(rs).padEnd(28)} ${forward.padEnd(7)} ${rs.weight}      ${c.active} ${c.inactive}`,
        );
      }
    }
    return text(lines);
  }

  async apply(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return;
    this.calls.push(`ipvsadm ${lines.length}`);
    const errors: string[] = [];
    for (const line of lines) {
      try {
        this.command(line);
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        errors.push(err.message);
        if (lines.length === 1) break;
      }
    }
    if (errors.length > 0) {
      const what = lines.length === 1 ? `ipvsadm ${lines[0]}` : 'ipvsadm -R';
      throw new IpvsCommandError(`${what} failed: ${errors.join('; ')}`, text(lines));
    }
  }

  /** One ipvsadm command, with the messages ipvsadm gives for what the kernel refuses. */
  private command(line: string): void {
    const { op, key, selector, rest } = command(line);
    const vs = this.servers.get(key);
    if (op === '-A') {
      if (vs) throw new Refused('Service already exists');
      this.servers.set(key, { ...serviceOf(selector, rest), realServers: [] });
      return;
    }
    if (!vs) throw new Refused(op === '-a' ? 'Service not defined' : 'No such service');
    if (op === '-E') this.servers.set(key, { ...serviceOf(selector, rest), realServers: vs.realServers });
    else if (op === '-D') this.servers.delete(key);
    else if (op === '-a' || op === '-e' || op === '-d') this.server(vs, op, serverOf(selector, rest));
    else throw new Refused(`unknown command ${op}`);
  }

  private server(vs: VirtualServer, op: string, rs: RealServer): void {
    const at = vs.realServers.findIndex((r) => rsKey(r) === rsKey(rs));
    if (op === '-a') {
      if (at >= 0) throw new Refused('Destination already exists');
      vs.realServers.push(rs);
      return;
    }
    if (at < 0) throw new Refused('No such destination');
    if (op === '-e') vs.realServers[at] = rs;
    else vs.realServers.splice(at, 1);
  }

  async setTimeouts(tcp: number, tcpFin: number, udp: number): Promise<void> {
    this.timeouts = { tcp, tcpFin, udp };
  }

  async ipsetSave(): Promise<string> {
    const lines: string[] = [];
    for (const [name, s] of this.sets) {
      // The kernel adds bucket and seed details to hash sets: readers must take them.
      const extra = s.type.startsWith('hash:') ? ' bucketsize 12 initval 0x2a5c1e0d' : '';
      lines.push(`create ${name} ${s.type} ${s.options}${extra}`);
      for (const e of s.entries) lines.push(`add ${name} ${e}`);
    }
    return text(lines);
  }

  async ipsetRestore(input: string): Promise<void> {
    if (input === '') return;
    this.calls.push('ipset restore');
    for (const [i, raw] of input.split('\n').entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      try {
        this.ipsetLine(line);
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        throw new IpvsCommandError(`ipset restore failed: Error in line ${i + 1}: ${err.message}`, input);
      }
    }
  }

  private ipsetLine(line: string): void {
    const words = line.split(/\s+/);
    const exist = words.includes('-exist');
    const [cmd = '', name = '', ...args] = words.filter((w) => w !== '-exist');
    const set = this.sets.get(name);
    if (cmd === 'create') this.create(name, args, exist);
    else if (!set) throw new Refused('The set with the given name does not exist');
    else if (cmd === 'destroy') this.destroy(name);
    else if (cmd === 'flush') set.entries.clear();
    else if (cmd === 'add' || cmd === 'del') this.entry(set, cmd, storedEntry(set, args[0] ?? ''), exist);
    else throw new Refused(`unknown command ${cmd}`);
  }

  private entry(set: FakeSet, cmd: 'add' | 'del', entry: string, exist: boolean): void {
    if (cmd === 'add') {
      if (set.entries.has(entry) && !exist)
        throw new Refused("Element cannot be added to the set: it's already added");
      set.entries.add(entry);
    } else {
      if (!set.entries.has(entry) && !exist)
        throw new Refused("Element cannot be deleted from the set: it's not added");
      set.entries.delete(entry);
    }
  }

  private create(name: string, args: string[], exist: boolean): void {
    const [type = '', ...options] = args;
    if (!/^(hash:ip(,port(,ip|,net)?)?|hash:net|bitmap:port)$/.test(type))
      throw new Refused(`Syntax error: unknown set type ${type}`);
    const fam = options[options.indexOf('family') + 1];
    const family: IPFamily | undefined = type.startsWith('bitmap:')
      ? undefined
      : fam === 'inet6'
        ? 'IPv6'
        : 'IPv4';
    const have = this.sets.get(name);
    if (have) {
      // -exist takes an identical create; a different one is refused even so.
      if (exist && have.type === type && have.options === options.join(' ')) return;
      throw new Refused('Set cannot be created: set with the same name already exists');
    }
    this.sets.set(name, { type, options: options.join(' '), family, entries: new Set() });
  }

  private destroy(name: string): void {
    if (this.inUse(name)) throw new Refused('Set cannot be destroyed: it is in use by a kernel component');
    this.sets.delete(name);
  }

  async ipsetDestroy(name: string): Promise<boolean> {
    if (!this.sets.has(name)) return false;
    try {
      this.destroy(name);
    } catch (err) {
      throw new IpvsCommandError(
        `ipset destroy ${name} failed: ${(err as Error).message}`,
        `destroy ${name}`,
      );
    }
    return true;
  }
}

/** The network namespace's links and addresses in memory: kube-ipvs0 and the node's own addresses. */
export class FakeLinkHost implements LinkHost {
  /** Device -> its addresses. */
  readonly devices = new Map<string, Set<string>>();
  closed = false;

  /**
   * `elsewhere`: the node's addresses on its other interfaces (loopback included).
   * `calls`: where each change of addresses is logged (`bind IP...`, `unbind IP...`).
   */
  constructor(
    readonly elsewhere: readonly string[] = ['127.0.0.1', '::1'],
    readonly calls: string[] = [],
  ) {}

  async ensureDummy(name: string): Promise<boolean> {
    if (this.devices.has(name)) return false;
    this.devices.set(name, new Set());
    return true;
  }

  async deleteLink(name: string): Promise<boolean> {
    return this.devices.delete(name);
  }

  async addresses(device: string): Promise<LinkAddresses> {
    const onDevice = [...(this.devices.get(device) ?? [])];
    const others = [...this.devices].filter(([d]) => d !== device).flatMap(([, a]) => [...a]);
    return { onDevice, elsewhere: [...this.elsewhere, ...others] };
  }

  async bind(ips: readonly string[], device: string): Promise<void> {
    const a = this.device(ips, device);
    if (a) this.calls.push(`bind ${ips.join(' ')}`);
    for (const ip of a ? ips : []) a?.add(canonicalIP(ip) ?? ip);
  }

  async unbind(ips: readonly string[], device: string): Promise<void> {
    const a = this.device(ips, device);
    if (a) this.calls.push(`unbind ${ips.join(' ')}`);
    for (const ip of a ? ips : []) a?.delete(canonicalIP(ip) ?? ip);
  }

  /** The device's addresses; as with netlink, a missing device is an error only when there is work to do. */
  private device(ips: readonly string[], device: string): Set<string> | undefined {
    if (ips.length === 0) return undefined;
    const a = this.devices.get(device);
    if (!a) throw new Error(`no device ${device}`);
    return a;
  }

  close(): void {
    this.closed = true;
  }
}

/** iptables-lib's fake, its restores logged beside the IPVS node's other changes. */
class LoggedIptablesHost extends FakeIptablesHost {
  constructor(
    family: IPFamily,
    flavour: Flavour,
    private readonly calls: string[],
  ) {
    super(family, flavour);
  }

  override async restore(input: string): Promise<void> {
    this.calls.push(`iptables-restore ${input.split('\n')[0]}`);
    await super.restore(input);
  }
}

/** A whole IPVS-mode node: ipvsadm, ipset, the links, and each family's iptables. */
export interface FakeIpvsNode {
  /** Every change, in order: `bind IP...`, `ipvsadm N`, `ipset restore`, `iptables-restore *nat`, `unbind IP...`. */
  calls: string[];
  ipvs: FakeIpvsHost;
  link: FakeLinkHost;
  iptables: ReadonlyMap<IPFamily, FakeIptablesHost>;
  /** `iptables-save; ipset save; ipvsadm -Sn` of the family: the combined dump `kproxy trace --against` reads. */
  dump(family: IPFamily): Promise<string>;
}

export function fakeIpvsNode(
  localAddresses: readonly string[] = [],
  flavour: Flavour = 'legacy',
): FakeIpvsNode {
  const calls: string[] = [];
  const iptables = new Map(
    (['IPv4', 'IPv6'] as const).map((f) => [f, new LoggedIptablesHost(f, flavour, calls)] as const),
  );
  // A set is in use while a rule of either family matches it.
  const inUse = (name: string) =>
    [...iptables.values()].some((h) =>
      [...h.tables.values()].some((t) =>
        [...t.values()].some((rules) => rules.some((r) => r.includes(`--match-set ${name} `))),
      ),
    );
  const ipvs = new FakeIpvsHost(inUse, calls);
  const link = new FakeLinkHost(['127.0.0.1', '::1', ...localAddresses], calls);
  return {
    calls,
    ipvs,
    link,
    iptables,
    async dump(family) {
      const h = iptables.get(family) as FakeIptablesHost;
      return (await h.save()) + (await ipvs.ipsetSave()) + (await ipvs.save());
    },
  };
}
