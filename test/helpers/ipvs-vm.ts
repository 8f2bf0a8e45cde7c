// The IPVS test VM (scripts/ipvs-vm/run.sh) as the VM tests use it: what it needs
// on the host, said as one message naming the fix.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const ipvsVmCache = `${process.env.KPROXY_CACHE ?? '/var/cache/kproxy'}/ipvs-vm`;

export async function missingVmPrerequisites(): Promise<string | undefined> {
  const missing: string[] = [];
  const qemu = await execa('sh', ['-c', 'command -v qemu-system-x86_64'], { reject: false });
  if (qemu.exitCode !== 0) missing.push('qemu-system-x86_64');
  if (!existsSync(`${ipvsVmCache}/fetch.stamp`) || !existsSync(`${ipvsVmCache}/kernel/vmlinux`))
    missing.push(`the VM image cache in ${ipvsVmCache}`);
  if (missing.length === 0) return undefined;
  return `the IPVS VM tests need ${missing.join(' and ')}: run "bash scripts/ipvs-vm/fetch.sh" as root (it installs QEMU and caches Debian's kernel and tools)`;
}

const repo = fileURLToPath(new URL('../..', import.meta.url));

/** One boot of the VM (2 vCPUs) running run.sh's arguments ARGS (options, then the guest script and its arguments). */
export function runVm(timeoutSeconds: number, args: readonly string[]) {
  return execa(
    'bash',
    ['scripts/ipvs-vm/run.sh', '--smp', '2', '--timeout', String(timeoutSeconds), ...args],
    {
      cwd: repo,
      reject: false,
    },
  );
}
