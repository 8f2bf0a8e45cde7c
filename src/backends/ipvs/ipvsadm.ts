// IPVS virtual and real servers as kproxy handles them, and their ipvsadm text:
// the lines `ipvsadm -Sn` prints and `ipvsadm -R` reads, and the connection
// counters of `ipvsadm -Ln`. Pure.
import type { Protocol } from '../../model/types.js';
import { canonicalIP, joinHostPort } from '../../util/ip.js';

export interface RealServer {
  ip: string;
  port: number;
  weight: number;
  /** ipvsadm's forwarding flag: kproxy only writes 'm' (masquerading). */
  forward?: 'm' | 'g' | 'i';
}

export interface VirtualServer {
  protocol: Protocol;
  ip: string;
  port: number;
  scheduler: string;
  /** Persistence timeout in seconds (ClientIP session affinity); undefined when not persistent. */
  persistence?: number;
  /** Scheduler flags (`-b`), e.g. `mh-port`; '' when none. */
  flags: string;
  realServers: RealServer[];
}

/** `TCP/10.96.0.10:80`: one virtual server per protocol, address and port. */
export function vsKey(vs: Pick<VirtualServer, 'protocol' | 'ip' | 'port'>): string {
  return `${vs.protocol}/${joinHostPort(vs.ip, vs.port)}`;
}

export function rsKey(rs: Pick<RealServer, 'ip' | 'port'>): string {
  return joinHostPort(rs.ip, rs.port);
}

const protocolFlag: Record<Protocol, string> = { TCP: '-t', UDP: '-u', SCTP: '--sctp-service' };
const flagProtocol: Record<string, Protocol> = {
  '-t': 'TCP',
  '--tcp-service': 'TCP',
  '-u': 'UDP',
  '--udp-service': 'UDP',
  '--sctp-service': 'SCTP',
};

/** The service selector of a command, e.g. `-t 10.96.0.10:80`. */
export function serviceArgs(vs: Pick<VirtualServer, 'protocol' | 'ip' | 'port'>): string {
  return `${protocolFlag[vs.protocol]} ${joinHostPort(vs.ip, vs.port)}`;
}

/** `-s rr -p 10800 -b mh-port`: the attributes -A and -E set. */
function serviceOptions(vs: VirtualServer): string {
  let s = `-s ${vs.scheduler}`;
  if (vs.persistence !== undefined) s += ` -p ${vs.persistence}`;
  if (vs.flags) s += ` -b ${vs.flags}`;
  return s;
}

export const addService = (vs: VirtualServer): string => `-A ${serviceArgs(vs)} ${serviceOptions(vs)}`;
export const editService = (vs: VirtualServer): string => `-E ${serviceArgs(vs)} ${serviceOptions(vs)}`;
export const deleteService = (vs: VirtualServer): string => `-D ${serviceArgs(vs)}`;
export const addServer = (vs: VirtualServer, rs: RealServer): string =>
  `-a ${serviceArgs(vs)} -r ${rsKey(rs)} -m -w ${rs.weight}`;
export const editServer = (vs: VirtualServer, rs: RealServer): string =>
  `-e ${serviceArgs(vs)} -r ${rsKey(rs)} -m -w ${rs.weight}`;
export const deleteServer = (vs: VirtualServer, rs: Pick<RealServer, 'ip' | 'port'>): string =>
  `-d ${serviceArgs(vs)} -r ${rsKey(rs)}`;

/** Virtual servers in `ipvsadm -Sn` form: each service line, then its real servers. */
export function formatTable(servers: Iterable<VirtualServer>): string {
  const lines: string[] = [];
  for (const vs of servers) {
    lines.push(addService(vs));
    for (const rs of vs.realServers) lines.push(addServer(vs, rs));
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** `10.0.0.1:80` or `[fd00::1]:80`. */
export function splitHostPort(text: string): { ip: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const ip = m ? canonicalIP(m[1] as string) : undefined;
  return ip && m ? { ip, port: Number(m[2]) } : undefined;
}

export class IpvsParseError extends Error {
  override name = 'IpvsParseError';
}

export interface ParsedTable {
  /** Key -> virtual server (TCP, UDP and SCTP services; real servers in kernel order). */
  servers: Map<string, VirtualServer>;
  /** Firewall-mark services (`-A -f N`): never kproxy's, kept out of `servers`. */
  fwmarkServices: number;
}

/** Reads `ipvsadm -Sn` (or `-R` input of -A/-a lines). Unknown options are an error, not a guess. */
export function parseIpvsadmSave(text: string): ParsedTable {
  const servers = new Map<string, VirtualServer>();
  let fwmarkServices = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `ipvsadm -Sn line ${i + 1}`;
    const args = line.split(/\s+/);
    const cmd = args[0];
    if (cmd !== '-A' && cmd !== '-a') throw new IpvsParseError(`${where}: unexpected "${line}"`);
    const sel = args[1] as string;
    if (sel === '-f' || sel === '--fwmark-service') {
      if (cmd === '-A') fwmarkServices++;
      return;
    }
    const protocol = flagProtocol[sel];
    const addr = splitHostPort(args[2] ?? '');
    if (!protocol || !addr) throw new IpvsParseError(`${where}: bad service in "${line}"`);
    const key = vsKey({ protocol, ...addr });
    const opts = args.slice(3);
    if (cmd === '-A') {
      const vs: VirtualServer = { protocol, ...addr, scheduler: '', flags: '', realServers: [] };
      for (let j = 0; j < opts.length; j++) {
        const o = opts[j];
        const value = (): string => opts[++j] ?? '';
        if (o === '-s' || o === '--scheduler') vs.scheduler = value();
        else if (o === '-p' || o === '--persistent') vs.persistence = Number(value());
        else if (o === '-b' || o === '--sched-flags') vs.flags = value();
        // Persistence netmask and engine: kproxy never sets them and does not compare them.
        else if (o === '-M' || o === '--netmask' || o === '--pe') value();
        else if (o !== '-o' && o !== '--ops')
          throw new IpvsParseError(`${where}: unknown option ${o} in "${line}"`);
      }
      servers.set(key, vs);
      return;
    }
    const vs = servers.get(key);
    if (!vs) throw new IpvsParseError(`${where}: real server before its service in "${line}"`);
    let rs: { ip: string; port: number } | undefined;
    let forward: RealServer['forward'];
    let weight = 1;
    for (let j = 0; j < opts.length; j++) {
      const o = opts[j];
      const value = (): string => opts[++j] ?? '';
      if (o === '-r' || o === '--real-server') rs = splitHostPort(value()) ?? { ip: '', port: 0 };
      else if (o === '-w' || o === '--weight') weight = Number(value());
      else if (o === '-m' || o === '--masquerading') forward = 'm';
      else if (o === '-g' || o === '--gatewaying') forward = 'g';
      else if (o === '-i' || o === '--ipip') forward = 'i';
      else if (o === '-x' || o === '-y' || o === '--u-threshold' || o === '--l-threshold') value();
      else if (o?.startsWith('--tun')) value();
      else throw new IpvsParseError(`${where}: unknown option ${o} in "${line}"`);
    }
    if (!rs || rs.ip === '') throw new IpvsParseError(`${where}: bad real server in "${line}"`);
    vs.realServers.push({ ip: rs.ip, port: rs.port, weight, ...(forward ? { forward } : {}) });
  });
  return { servers, fwmarkServices };
}

export interface ConnCounts {
  active: number;
  inactive: number;
}

/** Connection counters from `ipvsadm -Ln`: virtual server key -> real server key -> counts. */
export function parseConnCounts(text: string): Map<string, Map<string, ConnCounts>> {
  const out = new Map<string, Map<string, ConnCounts>>();
  let current: Map<string, ConnCounts> | undefined;
  for (const raw of text.split('\n')) {
    const svc = /^(TCP|UDP|SCTP)\s+(\S+)/.exec(raw);
    if (svc) {
      const addr = splitHostPort(svc[2] as string);
      current = addr ? new Map() : undefined;
      if (addr && current) out.set(vsKey({ protocol: svc[1] as Protocol, ...addr }), current);
      continue;
    }
    if (/^FWM\s/.test(raw)) {
      current = undefined;
      continue;
    }
    const dest = /^\s+->\s+(\S+)\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)/.exec(raw);
    const addr = dest ? splitHostPort(dest[1] as string) : undefined;
    if (dest && addr && current)
      current.set(rsKey(addr), { active: Number(dest[3]), inactive: Number(dest[4]) });
  }
  return out;
}
