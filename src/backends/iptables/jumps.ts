// The rules kproxy adds to chains it does not own (PREROUTING, INPUT, ...): the
// jumps into its own chains, as upstream installs them.

import { commentArgs as comment, type JumpRule } from '../iptables-lib/ruleset.js';
import {
  KUBE_EXTERNAL_SERVICES,
  KUBE_FIREWALL,
  KUBE_FORWARD,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
} from './names.js';

/** Jumps from built-in chains into kproxy's chains, as upstream installs them. */
export function jumpRules(withKubeletFirewall: boolean): JumpRule[] {
  const newOnly = '-m conntrack --ctstate NEW';
  const j = (
    table: 'filter' | 'nat',
    chain: string,
    extra: string,
    text: string,
    target: string,
  ): JumpRule => ({
    table,
    chain,
    rule: [extra, ...comment(text), '-j', target].filter((s) => s !== '').join(' '),
  });
  const rules = [
    j('filter', 'INPUT', newOnly, 'kubernetes externally-visible service portals', KUBE_EXTERNAL_SERVICES),
    j('filter', 'FORWARD', newOnly, 'kubernetes externally-visible service portals', KUBE_EXTERNAL_SERVICES),
    j('filter', 'INPUT', '', 'kubernetes health check service ports', KUBE_NODEPORTS),
    j('filter', 'FORWARD', newOnly, 'kubernetes service portals', KUBE_SERVICES),
    j('filter', 'OUTPUT', newOnly, 'kubernetes service portals', KUBE_SERVICES),
    j('filter', 'FORWARD', '', 'kubernetes forwarding rules', KUBE_FORWARD),
    j('filter', 'INPUT', newOnly, 'kubernetes load balancer firewall', KUBE_PROXY_FIREWALL),
    j('filter', 'OUTPUT', newOnly, 'kubernetes load balancer firewall', KUBE_PROXY_FIREWALL),
    j('filter', 'FORWARD', newOnly, 'kubernetes load balancer firewall', KUBE_PROXY_FIREWALL),
    j('nat', 'OUTPUT', '', 'kubernetes service portals', KUBE_SERVICES),
    j('nat', 'PREROUTING', '', 'kubernetes service portals', KUBE_SERVICES),
    j('nat', 'POSTROUTING', '', 'kubernetes postrouting rules', KUBE_POSTROUTING),
  ];
  if (withKubeletFirewall) {
    rules.push({ table: 'filter', chain: 'INPUT', rule: `-j ${KUBE_FIREWALL}` });
    rules.push({ table: 'filter', chain: 'OUTPUT', rule: `-j ${KUBE_FIREWALL}` });
  }
  return rules;
}
