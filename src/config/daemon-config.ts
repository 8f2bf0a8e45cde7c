// The settings of `kproxy run`: defaults, overridden by the --config file (a
// KubeProxyConfiguration, from-file.ts), overridden by the flags (from-flags.ts), then
// checked once (check-config.ts), every error reported together.
import { readFile } from 'node:fs/promises';
import { checkConfig } from './check-config.js';
import { type ConfigPatch, defaultConfig, effective, mergeConfig } from './config.js';
import type { DaemonOptions } from './daemon-options.js';
import { patchFromFile } from './from-file.js';
import { patchFromFlags } from './from-flags.js';
import { OptionError, type ProxyOptions, type RawFlags } from './options.js';

export interface ResolvedConfig {
  proxy: ProxyOptions;
  daemon: DaemonOptions;
  warnings: string[];
}

/**
 * Flags that override --config without a warning: those kube-proxy still honours then,
 * kproxy's own flags, and --proxy-mode, which kproxy's DaemonSet overlays use to pick
 * the mode without a config file of their own.
 */
const honouredWithConfig = new Set([
  'config',
  'proxy-mode',
  'hostname-override',
  'v',
  'cleanup',
  'dry-run',
  'state-dir',
  'iptables-flavour',
  'node-ip',
  'ip-family',
]);

/** One OptionError for every error found: one line, so a pod's log keeps it whole. */
export function configError(errors: string[]): OptionError {
  return new OptionError(errors.join('; '));
}

function overrideWarning(flags: RawFlags, source: string): string[] {
  const overriding = Object.keys(flags).filter((k) => flags[k] !== undefined && !honouredWithConfig.has(k));
  if (overriding.length === 0) return [];
  return [
    `${overriding.map((k) => `--${k}`).join(', ')} override ${source}; kube-proxy would ignore ` +
      `${overriding.length === 1 ? 'this flag' : 'these flags'} when --config is given`,
  ];
}

/**
 * The settings of `kproxy run`: defaults, overridden by the KubeProxyConfiguration in
 * `fileText` (the content of --config), overridden by the flags given. `flags` are
 * parseArgs values for proxyFlagSpecs and daemonFlagSpecs. Throws one OptionError
 * naming every bad flag or field and why.
 */
export function resolveDaemonConfig(flags: RawFlags, fileText?: string): ResolvedConfig {
  const configPath = typeof flags.config === 'string' ? flags.config : undefined;
  if (configPath !== undefined && fileText === undefined) {
    throw new Error(
      'resolveDaemonConfig: --config is given but the file was not read (use loadDaemonConfig)',
    );
  }
  const source = configPath ?? 'config file';
  const patches: ConfigPatch[] = fileText === undefined ? [] : [patchFromFile(fileText, source)];
  patches.push(patchFromFlags(flags));
  const { config: merged, origins } = mergeConfig(defaultConfig(), ...patches);
  merged.daemon.configFile = configPath ?? '';
  const checked = checkConfig(merged, origins);
  const errors = [...patches.flatMap((p) => p.errors), ...checked.errors];
  if (errors.length > 0) throw configError(errors);
  const { proxy, daemon } = effective(checked.config);
  const warnings = [
    ...patches.flatMap((p) => p.warnings),
    ...checked.warnings,
    ...(fileText === undefined ? [] : overrideWarning(flags, source)),
  ];
  return { proxy, daemon, warnings };
}

/** resolveDaemonConfig, reading the --config file first when one is given. */
export async function loadDaemonConfig(flags: RawFlags): Promise<ResolvedConfig> {
  const path = typeof flags.config === 'string' ? flags.config : undefined;
  if (path === undefined) return resolveDaemonConfig(flags);
  if (path.trim() === '') throw new OptionError('--config: give the path of a KubeProxyConfiguration file');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new OptionError(`--config: cannot read ${path}: ${(err as Error).message}`);
  }
  return resolveDaemonConfig(flags, text);
}
