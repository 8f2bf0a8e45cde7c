// Kernel tests need root and a few binaries. They fail (never skip) when these are
// missing, saying what to install, so a green run always means the test ran.
import { execFileSync } from 'node:child_process';

export function missingForKernelTests(binaries: readonly string[]): string | undefined {
  if (process.getuid?.() !== 0) return 'kernel tests must run as root (they create network namespaces)';
  const missing = binaries.filter((b) => {
    try {
      execFileSync('sh', ['-c', `command -v ${b}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    return `missing binaries: ${missing.join(', ')} (install Debian packages iptables, iproute2, conntrack, nftables; scripts/install-test-deps.sh does it)`;
  }
  return undefined;
}
