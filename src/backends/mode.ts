// One contract for a proxy mode (iptables, IPVS, nftables) and the registry the
// daemon, every CLI command and the tests go through: nothing outside a mode's
// folder switches on the mode. As upstream's one Provider per mode built by one
// createProxier, with the pure and the effectful halves apart: `desired` and
// `listing` touch nothing; `open` checks the kernel and returns what syncs it.
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { ProxyMode as ModeName, ProxyOptions } from '../config/options.js';
import type { Logger } from '../log.js';
import type { NoLocalEndpoints } from '../model/no-local-endpoints.js';
import type { NodeContext, ProxyModel } from '../model/types.js';
import type { ModeTracer } from '../trace/mode-tracer.js';
import type { IPFamily } from '../util/ip.js';
import { iptablesMode } from './iptables/mode.js';
import type { FlavourChoice } from './iptables-lib/host.js';
import type { KernelFeatures } from './iptables-lib/kernel-features.js';
import { ipvsMode } from './ipvs/mode.js';
import type { IpvsSetup } from './ipvs/setup.js';
import { nftablesMode } from './nftables/mode.js';

export type { ModeName };

/** What shapes a mode's desired state and its setup: the flags or the config file. */
export interface ModeSettings {
  options: ProxyOptions;
  /** IPVS mode: --ipvs-scheduler, --ipvs-exclude-cidrs, --ipvs-strict-arp and the timeouts. */
  ipvs: IpvsSetup & { excludeCIDRs: readonly string[] };
  /** Test-only (nftables): delete stale chains a sync later, as on kernels before 6.2. */
  deferChainDeletes?: boolean;
  /**
   * iptables: kernel features to render for in place of those assumed without a
   * kernel: `kproxy diff --against DUMP`, the ones the dump shows (`dumpKernel`);
   * `kproxy diff` and the dry run, this namespace's kernel's (`peekKernel`).
   */
  kernel?: Partial<KernelFeatures>;
}

export interface ModeDesired {
  model: ProxyModel;
}

/** One family's sync, as the daemon's log, metrics and debug store and `kproxy sync` read it. */
export interface ModeSyncReport {
  mode: 'full' | 'partial';
  /** Why the sync was full. */
  reason?: string;
  /**
   * When the family's last full sync started (this one's start when it was full):
   * the time in the mode's record, by which common/sync-policy.ts decides the hourly
   * full resync, and which the daemon's Proxier follows. Absent in modes that keep
   * no record (IPVS compares with the kernel at every sync).
   */
  lastFullSyncMs?: number;
  durationMs: number;
  /** Of durationMs, the time spent waiting on the kernel's tools (iptables and nftables modes). */
  kernelMs?: number;
  /** What was written, per target ('' when unchanged): nat and filter, nftables, or ipvs and ipset too. */
  restoreInput: Record<string, string>;
  /** iptables mode: rules kproxy owns per table after the sync (kubeproxy_sync_proxy_rules_iptables_total). */
  rulesTotal?: Record<'nat' | 'filter', number>;
  /** iptables mode: rules this sync wrote into kproxy's chains per table (..._iptables_last). */
  rulesWritten?: Record<'nat' | 'filter', number>;
  /** Service ports (IPVS: Services) whose Local policy finds no endpoint here (..._no_local_endpoints_total). */
  noLocalEndpoints?: NoLocalEndpoints;
  /** Fields of the daemon's "synced" log line. */
  details: Record<string, number | string>;
  /** The tool the family was synced with (`legacy`, `nftables`, `iptables-nft`), for `kproxy sync`'s line. */
  tool: string;
  /** `kproxy sync`'s one-line summary, and the lines that follow it. */
  summary: string;
  notes?: string[];
}

/** Syncs the kernel of this network namespace, one family at a time. */
export interface ModeSyncer {
  /**
   * Throws SyncFailure (common/sync-failure.ts) when the kernel refused the sync.
   * `model`: the family's model of `snapshot` for `node`, built already (the
   * daemon's ModelCache); with it the syncer renders through its per-family memo,
   * so that ports whose model entry is the same object as before are not rendered
   * again. Without it the model is built from the snapshot.
   */
  sync(
    snapshot: ClusterSnapshot,
    node: NodeContext,
    family: IPFamily,
    full: boolean,
    model?: ProxyModel,
  ): Promise<ModeSyncReport>;
  /**
   * For a periodic sync that has nothing new to apply (the daemon asks only then):
   * resolves true when kproxy's rules are still in the kernel (the mode's canary), so
   * the sync can be skipped without rendering or planning anything. Modes without
   * it (IPVS) always sync.
   */
  rulesIntact?(family: IPFamily): Promise<boolean>;
  /** Releases what `open` holds (a netlink socket in IPVS mode). */
  close(): void;
}

export interface OpenContext {
  settings: ModeSettings;
  log: Logger;
  flavour: FlavourChoice;
  /**
   * The one-shot `kproxy sync` keeps what it applied in files here, for its next
   * run; without it (the daemon) the record is held in memory.
   */
  stateDir?: string;
  /**
   * The daemon: check each tool once before the first sync, and set up the kernel
   * for every family at start; the one-shot `kproxy sync` finds out as it goes.
   */
  daemon: boolean;
}

export interface CleanupContext {
  families: readonly IPFamily[];
  flavour: FlavourChoice;
  log: Logger;
}

export interface FakeKernelContext {
  settings: ModeSettings;
  log: Logger;
  /** The node's addresses on its interfaces (loopback is added). */
  localAddresses: readonly string[];
}

/** A mode's syncer over in-memory hosts that refuse what the kernel refuses: tests without root. */
export interface FakeKernel {
  syncer: ModeSyncer;
  /** The family's state as the mode's tools print it: what `tracer.fromDump` reads. */
  dump(family: IPFamily): Promise<string>;
  /** Every address of the namespace, as `addrtype LOCAL` matches (IPVS: kube-ipvs0's too). */
  localAddresses(): Promise<string[]>;
}

/** Upstream's per-mode rules for the sync metrics. */
export interface ModeMetrics {
  /** Full and partial sync duration histograms beside the overall one (upstream's IPVS has only that). */
  readonly fullAndPartialHistograms: boolean;
  /** A failed partial sync is counted in sync_proxy_rules_iptables_partial_restore_failures_total. */
  readonly countsPartialRestoreFailures: boolean;
  /** A refused input is one nft transaction, counted in sync_proxy_rules_nftables_sync_failures_total. */
  readonly refusedInputIsTransaction: boolean;
  /** Upstream's two nfacct-backed counters, where the kernel has nfnetlink_acct (iptables only). */
  readonly nfacctCounters: boolean;
}

export interface ProxyMode<D extends ModeDesired = ModeDesired> {
  readonly name: ModeName;
  /** Only the nftables mode has a rule that reads ServiceCIDR objects (as upstream). */
  readonly watchesServiceCIDRs: boolean;
  /** --nodeport-addresses when none is given (upstream's platformApplyDefaults: nftables means `primary`). */
  readonly defaultNodePortAddresses: readonly string[];
  /**
   * The modes whose rules `kproxy run` removes when it starts in this one (as
   * kube-proxy: nftables clears iptables and IPVS; iptables and IPVS clear nftables,
   * not each other, since they share chain names).
   */
  readonly clearsAtStart: readonly ModeName[];
  readonly metrics: ModeMetrics;
  /**
   * The desired state of one family, without asking the kernel (`kproxy diff`, the
   * dry run). `model`: that family's model of `snapshot` for `node`, built already.
   */
  desired(
    snapshot: ClusterSnapshot,
    node: NodeContext,
    family: IPFamily,
    settings: ModeSettings,
    model?: ProxyModel,
  ): D;
  /** The desired state as sorted text, diffed against a dump or the previous sync. */
  listing(d: D): string;
  /** What `kproxy diff` calls one family's rules in its headers. */
  diffLabel(family: IPFamily): string;
  /** `kproxy diff --output rules`: the input that builds the state in an empty kernel. */
  rulesText(desired: readonly D[]): string;
  /** Whether `rulesText` takes one family only. */
  readonly rulesForOneFamily: boolean;
  /** `kproxy diff --against`: a dump of the kernel as a listing; absent when the mode cannot read one. */
  dumpListing?(dump: string, family: IPFamily, source: string): string;
  /** The kernel features a dump shows its node has (iptables: nfacct), for `ModeSettings.kernel`. */
  dumpKernel?(dump: string): Partial<KernelFeatures>;
  /**
   * The kernel features of this namespace, asked without changing anything (iptables:
   * whether nfnetlink_acct answers; no counter is created), for `ModeSettings.kernel`:
   * so that `kproxy diff` and the dry run render what `open` would sync here.
   */
  peekKernel?(log: Logger): Promise<Partial<KernelFeatures>>;
  /**
   * Whether this namespace's kernel and tools can program `family`, asked without
   * changing anything: undefined when they can, else why not. `kproxy run` asks it
   * for both families when --ip-family is not given (config/ip-families.ts).
   */
  familyUnsupported(family: IPFamily, flavour: FlavourChoice): Promise<string | undefined>;
  /** Checks the kernel and tools (start-up stops with what is missing) and returns the syncer. */
  open(ctx: OpenContext): Promise<ModeSyncer>;
  /** Removes everything the mode owns, and nothing else; says what went through the log. */
  cleanup(ctx: CleanupContext): Promise<void>;
  /** Its rules as `kproxy trace` and `kproxy verify` walk them, and the tests' oracle. */
  readonly tracer: ModeTracer<D>;
  /** The syncer `open` returns, over a fake kernel instead of this namespace's. */
  fakeKernel(ctx: FakeKernelContext): FakeKernel;
}

export const proxyModes: readonly ProxyMode[] = [iptablesMode, ipvsMode, nftablesMode];

export function modeFor(name: ModeName): ProxyMode {
  const mode = proxyModes.find((m) => m.name === name);
  if (!mode) throw new Error(`no proxy mode named ${name}`);
  return mode;
}
