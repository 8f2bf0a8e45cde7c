// The one place kproxy starts system tools (iptables, nft, ipvsadm, ipset,
// modprobe). It turns the failures an operator must fix into OperatorErrors that
// say how: a tool that is not installed, a missing capability, a kernel feature
// that is not there. Every other outcome goes back to the caller with its exit code.
import { basename } from 'node:path';
import { execa } from 'execa';
import {
  firstLine,
  KernelFeatureError,
  type OperatorError,
  PermissionError,
  ToolFailedError,
  ToolMissingError,
} from './errors.js';

export interface ToolResult {
  /** -1 when the tool was killed (timeout or signal). */
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ToolOptions {
  input?: string;
  /** Do not collect stdout (iptables-restore of an input starting with -S prints whole tables). */
  ignoreStdout?: boolean;
  timeoutMs?: number;
}

interface ToolInfo {
  debianPackage: string;
  /** The capability the kernel checks when the tool is refused. */
  capability: 'NET_ADMIN' | 'SYS_MODULE';
}

const toolInfo: [RegExp, ToolInfo][] = [
  [/^ip6?tables/, { debianPackage: 'iptables', capability: 'NET_ADMIN' }],
  [/^nft$/, { debianPackage: 'nftables', capability: 'NET_ADMIN' }],
  [/^ipvsadm$/, { debianPackage: 'ipvsadm', capability: 'NET_ADMIN' }],
  [/^ipset$/, { debianPackage: 'ipset', capability: 'NET_ADMIN' }],
  [/^conntrack$/, { debianPackage: 'conntrack', capability: 'NET_ADMIN' }],
  [/^modprobe$/, { debianPackage: 'kmod', capability: 'SYS_MODULE' }],
];

function infoFor(bin: string): ToolInfo {
  const name = basename(bin);
  return toolInfo.find(([re]) => re.test(name))?.[1] ?? { debianPackage: name, capability: 'NET_ADMIN' };
}

/** The kernel module behind an iptables extension, for the modprobe hint. */
function extensionModule(name: string, ipv6: boolean): string {
  if (name === 'DNAT' || name === 'SNAT') return 'xt_nat';
  if (name === 'REJECT') return ipv6 ? 'ip6t_REJECT' : 'ipt_REJECT';
  return `xt_${name === 'MARK' ? 'mark' : name}`;
}

/** The first stderr line matching `re`, with the match. */
function find(stderr: string, re: RegExp): { line: string; m: RegExpExecArray } | undefined {
  for (const line of stderr.split('\n')) {
    const m = re.exec(line);
    if (m) return { line: line.trim(), m };
  }
  return undefined;
}

/** Targets are also how iptables names chains, so only the extensions kproxy uses count. */
const extensionFailure =
  /Extension (\S+) revision \d+ not supported, missing kernel module|Couldn't load match `([^']+)'|Couldn't load target `(MASQUERADE|DNAT|SNAT|MARK|REJECT)'/;

function iptablesKernelFailure(bin: string, what: string, stderr: string): OperatorError | undefined {
  const ipv6 = basename(bin).startsWith('ip6');
  const ext = find(stderr, extensionFailure);
  if (ext) {
    const name = (ext.m[1] ?? ext.m[2] ?? ext.m[3]) as string;
    const module = extensionModule(name, ipv6);
    return new KernelFeatureError(
      `the kernel lacks the iptables extension "${name}" (${what}: ${ext.line}): load it with "modprobe ${module}", or use a kernel that has it`,
      ext.line,
    );
  }
  const table = find(stderr, /table `(\w+)': Table does not exist/);
  if (table) {
    const module = `${ipv6 ? 'ip6table' : 'iptable'}_${table.m[1]}`;
    return new KernelFeatureError(
      `the kernel has no iptables ${table.m[1]} table (${what}): load it with "modprobe ${module}", or use --iptables-flavour nft`,
      table.line,
    );
  }
  const nf = find(stderr, /Protocol not supported|Address family not supported/);
  if (nf) {
    return new KernelFeatureError(
      `the kernel refused ${what} (${nf.line}): iptables-nft needs nf_tables ("modprobe nf_tables"), or use --iptables-flavour legacy`,
      nf.line,
    );
  }
  return undefined;
}

/**
 * What a failed run means for the operator, from the tool's stderr (pure); undefined
 * when it is nothing kproxy can advise on (the caller decides: a refused input,
 * a missing chain).
 */
export function classifyFailure(
  bin: string,
  args: readonly string[],
  stderr: string,
): OperatorError | undefined {
  const name = basename(bin);
  const what = [name, ...args.slice(0, 6)].join(' ');
  const info = infoFor(bin);
  if (find(stderr, /you must be root|Operation not permitted|CAP_NET_ADMIN/i)) {
    return new PermissionError(
      `${what} was refused: kproxy needs CAP_${info.capability}: run it as root, or give its container the ${info.capability} capability`,
    );
  }
  if (/^ip6?tables/.test(name)) return iptablesKernelFailure(bin, what, stderr);
  const kernel = (re: RegExp, lacks: string, fix: string) => {
    const hit = find(stderr, re);
    return hit && new KernelFeatureError(`the kernel ${lacks} (${what}: ${hit.line}): ${fix}`, hit.line);
  };
  if (name === 'nft') {
    return kernel(
      /Protocol not supported|Address family not supported|Operation not supported/,
      'lacks nf_tables or an nft module kproxy uses',
      'load it with "modprobe nf_tables", or use --proxy-mode iptables',
    );
  }
  if (name === 'ipvsadm') {
    return kernel(
      /Can't initialize ipvs|Protocol not available/,
      'has no IPVS',
      'load it with "modprobe ip_vs", or use --proxy-mode iptables',
    );
  }
  if (name === 'ipset') {
    return kernel(
      /Cannot open session to kernel|Protocol not supported|[Ss]et type not supported/,
      'lacks ip_set or a set type kproxy uses',
      'load them with "modprobe ip_set_hash_ip ip_set_hash_ipport ip_set_hash_ipportip ip_set_hash_ipportnet ip_set_hash_net ip_set_bitmap_port"',
    );
  }
  return undefined;
}

/** Why a tool could not be started at all. */
function notStarted(bin: string, err: { code?: string; message?: string }): OperatorError {
  if (err.code === 'ENOENT') return new ToolMissingError(bin, infoFor(bin).debianPackage);
  return new ToolFailedError(`cannot run ${bin}: ${err.code ?? firstLine(err.message ?? '')}`);
}

/**
 * Runs a system tool and resolves with its exit code and output, whatever the
 * code. Throws ToolMissingError when it is not installed, and PermissionError or
 * KernelFeatureError when a failure's stderr says so (see classifyFailure).
 */
export async function runTool(
  bin: string,
  args: readonly string[],
  opts: ToolOptions = {},
): Promise<ToolResult> {
  let r: Awaited<ReturnType<typeof execa>>;
  try {
    r = await execa(bin, args, {
      reject: false,
      stripFinalNewline: false,
      // nft and iptables-save listings of 10,000 Services run to hundreds of MB.
      maxBuffer: 1024 * 1024 * 1024,
      ...(opts.input !== undefined ? { input: opts.input } : {}),
      ...(opts.ignoreStdout ? { stdout: 'ignore' as const } : {}),
      ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
    });
  } catch (err) {
    throw notStarted(bin, err as { code?: string; message?: string });
  }
  // With reject: false, a tool that could not be started comes back as a result.
  const spawnError = (r as { code?: string }).code;
  if (r.failed && r.exitCode === undefined && !r.signal && !r.timedOut && spawnError) {
    throw notStarted(bin, { code: spawnError, message: r.message });
  }
  const result = {
    exitCode: r.exitCode ?? -1,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
  };
  if (result.exitCode !== 0) {
    const failure = classifyFailure(bin, args, result.stderr);
    if (failure) throw failure;
  }
  return result;
}

/** What a failed run said: its first stderr line, or its exit code when it said nothing. */
export function toolSaid(r: ToolResult): string {
  return firstLine(r.stderr) || `exit code ${r.exitCode}`;
}

/** A failure runTool had no advice for, as one line quoting the tool. */
export function toolFailed(bin: string, args: readonly string[], r: ToolResult): ToolFailedError {
  return new ToolFailedError(`${[basename(bin), ...args].join(' ')} failed: ${toolSaid(r)}`);
}
