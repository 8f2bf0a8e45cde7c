// Pure: the ipvsadm commands that turn kproxy's current virtual servers into the
// desired ones, and nothing more. New virtual servers (with their real servers)
// form one batch for `ipvsadm -R`; every other change is one -E/-a/-e/-d/-D line.
// Real servers that went away are drained (graceful.ts), and a desired real server
// found with another weight (left at 0 by a drain a crash interrupted) is reset.
import { drainDecision, needsGracefulTermination } from './graceful.js';
import {
  addServer,
  addService,
  type ConnCounts,
  deleteServer,
  deleteService,
  editServer,
  editService,
  type RealServer,
  rsKey,
  type VirtualServer,
} from './ipvsadm.js';

export interface IpvsPlanInput {
  desired: ReadonlyMap<string, VirtualServer>;
  /** kproxy's virtual servers as the kernel holds them (see ownership in state.ts). */
  current: ReadonlyMap<string, VirtualServer>;
  /** Connection counters of current real servers (vsKey -> rsKey -> counts), where read. */
  conns?: ReadonlyMap<string, ReadonlyMap<string, ConnCounts>>;
}

export interface Draining {
  vs: string;
  rs: string;
  conns?: ConnCounts;
}

export interface IpvsPlan {
  /** `-A`/`-a` lines creating new virtual servers: one `ipvsadm -R` call. */
  create: string[];
  /** Single commands for existing virtual servers: -D, -E, then -d, -e, -a. */
  commands: string[];
  servicesAdded: number;
  servicesEdited: number;
  servicesDeleted: number;
  serversAdded: number;
  serversEdited: number;
  serversDeleted: number;
  /** Real servers kept at weight 0 until their connections end (set to 0 now or earlier). */
  draining: Draining[];
}

const sameService = (a: VirtualServer, b: VirtualServer): boolean =>
  a.scheduler === b.scheduler && a.persistence === b.persistence && a.flags === b.flags;

const sameServer = (want: RealServer, have: RealServer): boolean =>
  want.weight === have.weight && (have.forward ?? 'm') === 'm';

/** Virtual servers holding real servers to drain: their counters must be read before planning. */
export function drainCandidates(
  desired: ReadonlyMap<string, VirtualServer>,
  current: ReadonlyMap<string, VirtualServer>,
): string[] {
  const out: string[] = [];
  for (const [key, have] of current) {
    const want = desired.get(key);
    if (!want || !needsGracefulTermination(have.protocol)) continue;
    const wanted = new Set(want.realServers.map(rsKey));
    if (have.realServers.some((rs) => !wanted.has(rsKey(rs)))) out.push(key);
  }
  return out;
}

export function planIpvs(input: IpvsPlanInput): IpvsPlan {
  const { desired, current } = input;
  const plan: IpvsPlan = {
    create: [],
    commands: [],
    servicesAdded: 0,
    servicesEdited: 0,
    servicesDeleted: 0,
    serversAdded: 0,
    serversEdited: 0,
    serversDeleted: 0,
    draining: [],
  };
  const deletes: string[] = [];
  const edits: string[] = [];
  const servers: string[] = [];

  for (const [key, have] of current) {
    if (desired.has(key)) continue;
    // The service (or this address of it) is gone: its connections go with it, as upstream does.
    deletes.push(deleteService(have));
    plan.servicesDeleted++;
  }

  for (const [key, want] of desired) {
    const have = current.get(key);
    if (!have) {
      plan.create.push(addService(want), ...want.realServers.map((rs) => addServer(want, rs)));
      plan.servicesAdded++;
      plan.serversAdded += want.realServers.length;
      continue;
    }
    if (!sameService(want, have)) {
      edits.push(editService(want));
      plan.servicesEdited++;
    }
    const haveByKey = new Map(have.realServers.map((rs) => [rsKey(rs), rs]));
    const wantKeys = new Set(want.realServers.map(rsKey));
    for (const rs of have.realServers) {
      const k = rsKey(rs);
      if (wantKeys.has(k)) continue;
      const conns = input.conns?.get(key)?.get(k);
      const decision = drainDecision(have.protocol, rs, conns);
      if (decision === 'delete') {
        servers.push(deleteServer(have, rs));
        plan.serversDeleted++;
        continue;
      }
      if (decision === 'quiesce') {
        servers.push(editServer(have, { ...rs, weight: 0 }));
        plan.serversEdited++;
      }
      plan.draining.push({ vs: key, rs: k, ...(conns ? { conns } : {}) });
    }
    for (const rs of want.realServers) {
      const found = haveByKey.get(rsKey(rs));
      if (!found) {
        servers.push(addServer(want, rs));
        plan.serversAdded++;
      } else if (!sameServer(rs, found)) {
        // Back from a drain, or left at weight 0 by a kproxy that stopped mid-drain.
        servers.push(editServer(want, rs));
        plan.serversEdited++;
      }
    }
  }
  plan.commands = [...deletes, ...edits, ...servers];
  return plan;
}

/** Everything the plan sends to ipvsadm, in order (`ipvsadm -R` input); '' when nothing changes. */
export function planText(plan: IpvsPlan): string {
  const lines = [...plan.commands, ...plan.create];
  return lines.length ? `${lines.join('\n')}\n` : '';
}
