// Kernel tests need root and a few binaries. They fail (never skip) when these are
// missing, saying what to install, so a green run always means the test ran.
import { existsSync } from 'node:fs';

// System directories only: under `npm test`, node_modules/.bin is first on PATH and
// holds unrelated programs with the same names (ava's dependency installs an `nft`).
const systemDirs = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The absolute path of a system binary (a bare name or an absolute path), or undefined. */
export function systemBinary(name: string): string | undefined {
  if (name.startsWith('/')) return existsSync(name) ? name : undefined;
  return systemDirs.map((d) => `${d}/${name}`).find((p) => existsSync(p));
}

export function missingForKernelTests(binaries: readonly string[]): string | undefined {
  if (process.getuid?.() !== 0) return 'kernel tests must run as root (they create network namespaces)';
  const missing = binaries.filter((b) => systemBinary(b) === undefined);
  if (missing.length > 0) {
    return `missing binaries: ${missing.join(', ')} (install Debian packages iptables, iproute2, conntrack, nftables; scripts/install-test-deps.sh does it)`;
  }
  return undefined;
}
