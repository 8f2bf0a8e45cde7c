// The trace's only contact with the host: the rules and addresses of the
// network namespace it runs in. Everything else in src/trace is pure.
import { networkInterfaces } from 'node:os';
import { runTool, toolFailed } from '../backends/common/exec.js';
import { execIptablesHost, type Flavour } from '../backends/iptables-lib/host.js';
import { nftBinary } from '../backends/nftables/host.js';
import type { IPFamily } from '../util/ip.js';

/** iptables-save of this namespace, and words naming it. */
export async function kernelIptables(
  flavour: Flavour,
  family: IPFamily,
): Promise<{ text: string; source: string }> {
  const host = execIptablesHost(flavour, family);
  const text = await host.save();
  const tool = `${family === 'IPv4' ? 'iptables' : 'ip6tables'}-${flavour}-save`;
  return { text, source: `${tool} of this network namespace (the kernel's rules, whoever wrote them)` };
}

/** Every address of this namespace's interfaces that are up: what `addrtype LOCAL` matches. */
export function kernelLocalAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) =>
    (list ?? []).map((a) => a.address.split('%')[0] as string),
  );
}

/** `nft list ruleset` of this namespace: kube-proxy's table and every other table. */
export async function kernelNftRuleset(): Promise<{ text: string; source: string }> {
  const nft = nftBinary();
  const r = await runTool(nft, ['list', 'ruleset']);
  if (r.exitCode !== 0) throw toolFailed(nft, ['list', 'ruleset'], r);
  return {
    text: r.stdout,
    source: "nft list ruleset of this network namespace (the kernel's rules)",
  };
}

/** Runs a tool of this namespace; the IPVS read takes another in tests (this machine has no IPVS). */
export type ToolRunner = (bin: string, args: string[]) => Promise<string>;

const runChecked: ToolRunner = async (bin, args) => {
  const r = await runTool(bin, args);
  if (r.exitCode !== 0) throw toolFailed(bin, args, r);
  return r.stdout;
};

/** IPVS mode's rules of this namespace: iptables-save, ipset save and ipvsadm -Sn, in the combined dump form. */
export async function kernelIpvs(
  flavour: Flavour,
  family: IPFamily,
  run: ToolRunner = runChecked,
): Promise<{ text: string; source: string }> {
  const iptables =
    run === runChecked ? (await kernelIptables(flavour, family)).text : await run('iptables-save', []);
  const ipset = await run('ipset', ['save']);
  const ipvsadm = await run('ipvsadm', ['-Sn']);
  // One output per line block: a runner that strips the final newline (execa's default)
  // would glue ipset's last line to ipvsadm's first.
  const block = (out: string) => (out === '' || out.endsWith('\n') ? out : `${out}\n`);
  return {
    text: `${block(iptables)}${block(ipset)}${block(ipvsadm)}`,
    source:
      "iptables-save, ipset save and ipvsadm -Sn of this network namespace (the kernel's rules, sets and virtual servers)",
  };
}
