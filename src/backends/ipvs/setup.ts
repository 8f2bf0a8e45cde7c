// Once before the first sync in IPVS mode: check that the kernel and the tools
// are there, then set the sysctls and timeouts upstream sets.
import type { IPVSOptions } from '../../config/daemon-options.js';
import type { Logger } from '../../log.js';
import { execIpvsHost, type IpvsHost } from './host.js';
import { checkIpvs, hostProbes, type Probes } from './preflight.js';
import { applySysctls, ipvsSysctls } from './sysctl.js';

export type IpvsSetup = { scheduler: string } & Pick<IPVSOptions, 'strictARP'> &
  Partial<Pick<IPVSOptions, 'tcpTimeoutMs' | 'tcpFinTimeoutMs' | 'udpTimeoutMs'>>;

export async function prepareIpvs(
  o: IpvsSetup,
  log: Logger,
  deps: { probes?: Probes; host?: IpvsHost; sysctlRoot?: string } = {},
): Promise<void> {
  for (const line of await checkIpvs(o.scheduler || 'rr', deps.probes ?? hostProbes)) log.info(line);
  const changed = await applySysctls(ipvsSysctls(o.strictARP), deps.sysctlRoot);
  if (changed.length > 0) log.info(`set sysctls ${changed.map((p) => p.replaceAll('/', '.')).join(', ')}`);
  const s = (ms = 0) => Math.round(ms / 1000);
  // 0 keeps the kernel's value, as `ipvsadm --set` reads it.
  if (s(o.tcpTimeoutMs) > 0 || s(o.tcpFinTimeoutMs) > 0 || s(o.udpTimeoutMs) > 0) {
    await (deps.host ?? execIpvsHost).setTimeouts(s(o.tcpTimeoutMs), s(o.tcpFinTimeoutMs), s(o.udpTimeoutMs));
  }
}
