// One service port -> its rules in the shared chains (KUBE-SERVICES, KUBE-NODEPORTS,
// the firewall chains) and the nat chains it owns (service, external, firewall,
// endpoint chains). Pure; renderIptables (render.ts) writes the shared parts and
// merges each port's fragment in model order.

import type { ServicePort } from '../../model/types.js';
import { externallyAccessible, usesClusterEndpoints, usesLocalEndpoints } from '../../model/types.js';
import { parseCidr } from '../../util/ip.js';
import { nfacctCounters } from '../iptables-lib/chains.js';
import { commentArgs as comment, type TableBuilder } from '../iptables-lib/ruleset.js';
import { writeBalancing } from './balancing.js';
import type { IptablesConfig } from './config.js';
import {
  endpointChain,
  KUBE_EXTERNAL_SERVICES,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
  serviceChains,
} from './names.js';

export interface PortContext {
  cfg: IptablesConfig;
  filter: TableBuilder;
  nat: TableBuilder;
  largeCluster: boolean;
  localhostNodePorts: boolean;
}

/** What a port's rules depend on, decided once for all its chains. */
interface PortShape {
  sp: ServicePort;
  proto: string;
  chains: ReturnType<typeof serviceChains>;
  /** kube-proxy writes the protocol match before the protocol itself: `-m tcp -p tcp`. */
  l4: string[];
  match(dest: string, port: number): string[];
  hasEndpoints: boolean;
  internalChain: string;
  hasInternalEndpoints: boolean;
  externalPolicyChain: string;
  hasExternalEndpoints: boolean;
  usesExternalChain: boolean;
  usesFirewallChain: boolean;
  usesClusterChain: boolean;
  usesLocalChain: boolean;
  lbChain: string;
  /** The filter verdict for traffic to the ClusterIP / to external addresses, when it is not DNATed. */
  internalFilter?: { target: string; comment: string[] };
  externalFilter?: { target: string; comment: string[] };
}

function portShape(sp: ServicePort): PortShape {
  const proto = sp.protocol.toLowerCase();
  const chains = serviceChains(sp.id, proto);
  const sel = sp.endpoints;
  const l4 = ['-m', proto, '-p', proto];
  const hasEndpoints = sel.hasAny;
  const hasInternalEndpoints = hasEndpoints && (!sp.internalPolicyLocal || sel.local.length > 0);
  const hasExternalEndpoints = hasEndpoints && (!sp.externalPolicyLocal || sel.local.length > 0);
  const usesFirewallChain =
    hasEndpoints && sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;
  const shape: PortShape = {
    sp,
    proto,
    chains,
    l4,
    match: (dest, port) => [...l4, '-d', dest, '--dport', String(port)],
    hasEndpoints,
    internalChain: sp.internalPolicyLocal ? chains.local : chains.cluster,
    hasInternalEndpoints,
    externalPolicyChain: sp.externalPolicyLocal ? chains.local : chains.cluster,
    hasExternalEndpoints,
    // The EXT chain also carries the short-circuit for traffic from this node and its
    // pods, so it exists even when there is no endpoint for external traffic.
    usesExternalChain: hasEndpoints && externallyAccessible(sp),
    usesFirewallChain,
    usesClusterChain: sel.cluster.length > 0 && usesClusterEndpoints(sp),
    usesLocalChain: sel.local.length > 0 && usesLocalEndpoints(sp),
    lbChain: usesFirewallChain ? chains.firewall : chains.external,
  };
  if (!hasEndpoints) {
    // Refuse at once rather than let clients time out.
    shape.internalFilter = shape.externalFilter = {
      target: 'REJECT',
      comment: comment(`${sp.id} has no endpoints`),
    };
  } else {
    const noLocal = { target: 'DROP', comment: comment(`${sp.id} has no local endpoints`) };
    if (!hasInternalEndpoints) shape.internalFilter = noLocal;
    if (!hasExternalEndpoints) shape.externalFilter = noLocal;
  }
  return shape;
}

/** Writes one service port's rules; returns the nat chains it owns. */
export function renderServicePort(sp: ServicePort, ctx: PortContext): string[] {
  const s = portShape(sp);
  const { chains } = s;
  writeAddressRules(s, ctx);
  writeNodePortRules(s, ctx);
  writeInternalMasquerade(s, ctx);
  const owned: string[] = [];
  if (s.usesExternalChain) {
    owned.push(chains.external);
    writeExternalChain(s, ctx);
  }
  if (s.usesFirewallChain) {
    owned.push(chains.firewall);
    writeFirewallChain(s, ctx);
  }
  if (s.usesClusterChain) {
    owned.push(chains.cluster);
    writeBalancing(ctx.nat, sp, chains.cluster, sp.endpoints.cluster, ctx.largeCluster);
  }
  if (s.usesLocalChain) {
    owned.push(chains.local);
    writeBalancing(ctx.nat, sp, chains.local, sp.endpoints.local, ctx.largeCluster);
  }
  return [...owned, ...writeEndpointChains(s, ctx)];
}

/** KUBE-SERVICES and the filter chains for the ClusterIP, externalIPs and load-balancer IPs. */
function writeAddressRules(s: PortShape, ctx: PortContext): void {
  const { sp, chains, match, hasEndpoints, internalFilter, externalFilter } = s;
  const { filter, nat } = ctx;
  if (s.hasInternalEndpoints) {
    nat.append(
      KUBE_SERVICES,
      comment(`${sp.id} cluster IP`),
      match(sp.clusterIP, sp.port),
      '-j',
      s.internalChain,
    );
  } else if (internalFilter) {
    filter.append(
      KUBE_SERVICES,
      internalFilter.comment,
      match(sp.clusterIP, sp.port),
      '-j',
      internalFilter.target,
    );
  }

  for (const ip of sp.externalIPs) {
    if (hasEndpoints) {
      nat.append(KUBE_SERVICES, comment(`${sp.id} external IP`), match(ip, sp.port), '-j', chains.external);
    }
    if (externalFilter) {
      filter.append(
        KUBE_EXTERNAL_SERVICES,
        externalFilter.comment,
        match(ip, sp.port),
        '-j',
        externalFilter.target,
      );
    }
  }

  for (const ip of sp.loadBalancerVIPs) {
    if (hasEndpoints)
      nat.append(KUBE_SERVICES, comment(`${sp.id} loadbalancer IP`), match(ip, sp.port), '-j', s.lbChain);
    if (s.usesFirewallChain) {
      filter.append(
        KUBE_PROXY_FIREWALL,
        comment(`${sp.id} traffic not accepted by ${chains.firewall}`),
        match(ip, sp.port),
        '-j DROP',
      );
    }
  }
  if (externalFilter) {
    for (const ip of sp.loadBalancerVIPs) {
      filter.append(
        KUBE_EXTERNAL_SERVICES,
        externalFilter.comment,
        match(ip, sp.port),
        '-j',
        externalFilter.target,
      );
    }
  }
}

/** KUBE-NODEPORTS and the filter verdict for the NodePort, and the health check NodePort's accept. */
function writeNodePortRules(s: PortShape, ctx: PortContext): void {
  const { sp, chains, l4, hasEndpoints, externalFilter } = s;
  const { cfg, filter, nat } = ctx;
  if (sp.nodePort !== 0) {
    if (hasEndpoints) {
      // NodePorts are not subject to loadBalancerSourceRanges (upstream behaviour users rely on).
      if (ctx.localhostNodePorts && cfg.nfacct) {
        nat.append(
          KUBE_NODEPORTS,
          comment(sp.id),
          l4,
          '-d 127.0.0.0/8 --dport',
          String(sp.nodePort),
          '-m nfacct --nfacct-name',
          nfacctCounters.localhostNodePorts,
          '-j',
          chains.external,
        );
      }
      nat.append(KUBE_NODEPORTS, comment(sp.id), l4, '--dport', String(sp.nodePort), '-j', chains.external);
    }
    if (externalFilter) {
      filter.append(
        KUBE_EXTERNAL_SERVICES,
        externalFilter.comment,
        '-m addrtype --dst-type LOCAL',
        l4,
        '--dport',
        String(sp.nodePort),
        '-j',
        externalFilter.target,
      );
    }
  }

  if (sp.healthCheckNodePort !== 0) {
    // Load balancers probe this port whether or not the node has local endpoints.
    filter.append(
      KUBE_NODEPORTS,
      comment(`${sp.id} health check node port`),
      '-m tcp -p tcp --dport',
      String(sp.healthCheckNodePort),
      '-j ACCEPT',
    );
  }
}

/** Masquerade for ClusterIP traffic from outside the cluster (or all of it, --masquerade-all). */
function writeInternalMasquerade(s: PortShape, ctx: PortContext): void {
  const { sp, match, internalChain } = s;
  const { cfg, nat } = ctx;
  if (s.hasInternalEndpoints) {
    const args = [...comment(`${sp.id} cluster IP`), ...match(sp.clusterIP, sp.port)];
    if (cfg.masqueradeAll) nat.append(internalChain, args, '-j', KUBE_MARK_MASQ);
    else if (cfg.localDetector) {
      // Off-cluster clients may route the service range to any node; that traffic
      // can leave the node again, so it is masqueraded.
      nat.append(internalChain, args, cfg.localDetector.ifNotLocal, '-j', KUBE_MARK_MASQ);
    }
  }
}

/** The EXT chain: masquerade, the short-circuit for the node and its pods, then the policy chain. */
function writeExternalChain(s: PortShape, ctx: PortContext): void {
  const { sp, chains } = s;
  const { cfg, nat } = ctx;
  nat.declare(chains.external);
  if (!sp.externalPolicyLocal) {
    // The endpoint may be on another node: masquerade so replies come back here.
    nat.append(
      chains.external,
      comment(`masquerade traffic for ${sp.id} external destinations`),
      '-j',
      KUBE_MARK_MASQ,
    );
  } else {
    // Pods and the node itself reaching an external address are treated as if
    // they went out to the load balancer and came back: Cluster policy applies.
    if (cfg.localDetector) {
      nat.append(
        chains.external,
        comment(`pod traffic for ${sp.id} external destinations`),
        cfg.localDetector.ifLocal,
        '-j',
        chains.cluster,
      );
    }
    nat.append(
      chains.external,
      comment(`masquerade LOCAL traffic for ${sp.id} external destinations`),
      '-m addrtype --src-type LOCAL -j',
      KUBE_MARK_MASQ,
    );
    nat.append(
      chains.external,
      comment(`route LOCAL traffic for ${sp.id} external destinations`),
      '-m addrtype --src-type LOCAL -j',
      chains.cluster,
    );
  }
  if (s.hasExternalEndpoints) nat.append(chains.external, '-j', s.externalPolicyChain);
}

/** The FW chain: loadBalancerSourceRanges let through to the EXT chain. */
function writeFirewallChain(s: PortShape, ctx: PortContext): void {
  const { sp, chains } = s;
  const { cfg, nat } = ctx;
  const head = comment(`${sp.id} loadbalancer IP`);
  let allowFromNode = false;
  for (const cidr of sp.loadBalancerSourceRanges) {
    nat.append(chains.firewall, head, '-s', cidr, '-j', chains.external);
    if (cfg.nodeIP && cidrContains(cidr, cfg.nodeIP)) allowFromNode = true;
  }
  // A VIP-style LB's address is often local to the node: requests from the node
  // then arrive with the VIP as source and must be let through.
  if (allowFromNode) {
    for (const ip of sp.loadBalancerVIPs) nat.append(chains.firewall, head, '-s', ip, '-j', chains.external);
  }
  // What falls through is not DNATed and is dropped by KUBE-PROXY-FIREWALL.
  nat.append(chains.firewall, comment(`other traffic to ${sp.id} will be dropped by KUBE-PROXY-FIREWALL`));
}

/** One SEP chain per reachable endpoint: hairpin masquerade, affinity, DNAT. Returns the chains. */
function writeEndpointChains(s: PortShape, ctx: PortContext): string[] {
  const { sp, proto, l4 } = s;
  const { nat } = ctx;
  const owned: string[] = [];
  for (const ep of sp.endpoints.reachable) {
    const chain = endpointChain(sp.id, proto, ep.key);
    owned.push(chain);
    const head = ctx.largeCluster ? [] : comment(sp.id);
    // Hairpin: a pod reaching itself through the service must be masqueraded.
    nat.append(chain, head, '-s', ep.ip, '-j', KUBE_MARK_MASQ);
    const affinity = sp.sessionAffinity ? ['-m', 'recent', '--name', chain, '--set'] : [];
    nat.append(chain, head, affinity, l4, '-j', 'DNAT', '--to-destination', ep.key);
  }
  return owned;
}

function cidrContains(cidr: string, ip: string): boolean {
  return parseCidr(cidr)?.contains(ip) ?? false;
}
