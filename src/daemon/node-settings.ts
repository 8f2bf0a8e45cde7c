// What kube-proxy sets on its node at start-up besides rules: the conntrack table and
// timeouts (conntrack.*) and its own OOM score (oomScoreAdj), so the kernel kills it
// last. Not in a dry run, which touches nothing.

import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { DaemonOptions } from '../config/daemon-options.js';
import type { Logger } from '../log.js';
import { applyConntrackSettings, type ConntrackRoots } from './conntrack-sysctls.js';

export interface NodeSettingsPaths extends ConntrackRoots {
  /** /proc/self/oom_score_adj */
  oomScoreAdj: string;
}

export async function applyNodeSettings(
  daemon: DaemonOptions,
  log: Logger,
  paths?: NodeSettingsPaths,
): Promise<void> {
  await applyConntrackSettings(daemon.conntrack, availableParallelism(), log, paths);
  const oomFile = paths?.oomScoreAdj ?? '/proc/self/oom_score_adj';
  try {
    await writeFile(oomFile, String(daemon.oomScoreAdj));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Lowering it needs CAP_SYS_RESOURCE, which an unprivileged container lacks.
    log.warn(`cannot set oomScoreAdj ${daemon.oomScoreAdj} (${oomFile}): ${e.code ?? e.message}; going on`);
  }
}
