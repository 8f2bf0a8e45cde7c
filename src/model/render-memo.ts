// Per-service-port render output kept between renders, keyed on the identity of
// the model's ServicePort (model/cache.ts keeps an unchanged port's object), so
// that a sync renders only the ports that changed. A render stays a pure
// function of its inputs: the memo only skips recomputing what it would give.
import { alignment } from './port-tally.js';
import type { ServicePort } from './types.js';

/** What one `fragmentsOf` changed (ServicePortMemo.lastChange). */
export interface FragmentChange<F> {
  removed: readonly F[];
  added: readonly F[];
  /** How many fragments at the start and at the end are the last call's, at the same place (alignment). */
  prefix: number;
  suffix: number;
  before: readonly F[];
  after: readonly F[];
}

export class ServicePortMemo<F> {
  private fragments = new WeakMap<ServicePort, F>();
  private context: string | undefined;
  /** The last render's ports and their fragments, by position: most ports keep theirs. */
  private lastPorts: readonly ServicePort[] = [];
  private lastFragments: readonly F[] = [];
  /** Of the last render: ports rendered anew, and ports whose fragment was reused. */
  stats = { rendered: 0, reused: 0 };
  /**
   * Of the last `fragmentsOf`: the fragments of the previous call it no longer has,
   * and those it has that the previous call did not (in model order). Found from
   * the ports not at their previous place: O(changes) when ports changed in place
   * or a Service came or went. `before` / `after`: the previous call's fragments
   * and this call's, in model order (a patch that must keep model order reads them).
   */
  lastChange: FragmentChange<F> = { removed: [], added: [], prefix: 0, suffix: 0, before: [], after: [] };

  /**
   * Starts a render. `context` fingerprints everything else the fragments depend
   * on (the config, cluster-wide facts); when it differs from the last render's,
   * every fragment is dropped (and true is returned).
   */
  begin(context: string): boolean {
    const dropped = context !== this.context;
    if (dropped) {
      this.fragments = new WeakMap();
      this.lastPorts = [];
      this.lastFragments = [];
      this.context = context;
    }
    this.stats = { rendered: 0, reused: 0 };
    return dropped;
  }

  /** The fragment kept for `sp`, if any (e.g. an entry ModelCache.lastDelta reports removed). */
  peek(sp: ServicePort): F | undefined {
    return this.fragments.get(sp);
  }

  /** The fragment of `sp`, rendered by `render` unless this very object was rendered before. */
  fragment(sp: ServicePort, render: (sp: ServicePort) => F): F {
    let f = this.fragments.get(sp);
    if (f === undefined) {
      f = render(sp);
      this.fragments.set(sp, f);
      this.stats.rendered++;
    } else this.stats.reused++;
    return f;
  }

  /**
   * The fragments of `ports`, in order. A port the last call had at the same
   * place (the same position, or as far from the end: alignment) is found
   * there, without a look-up (a model that changed a few Services keeps every
   * other port object).
   */
  fragmentsOf(ports: readonly ServicePort[], render: (sp: ServicePort) => F): F[] {
    const before = this.lastPorts;
    const kept = this.lastFragments;
    const n = ports.length;
    const m = before.length;
    const { prefix, suffix } = alignment(before, ports);
    const out = new Array<F>(n);
    for (let i = 0; i < prefix; i++) out[i] = kept[i] as F;
    for (let i = n - suffix; i < n; i++) out[i] = kept[i - n + m] as F;
    const inPlace = n === m;
    const gone = new Set<F>();
    const came: F[] = [];
    let looked = 0;
    for (let i = prefix; i < n - suffix; i++) {
      const sp = ports[i] as ServicePort;
      if (inPlace && before[i] === sp) {
        out[i] = kept[i] as F;
        continue;
      }
      looked++;
      out[i] = this.fragment(sp, render);
      came.push(out[i] as F);
      if (inPlace) gone.add(kept[i] as F);
    }
    if (!inPlace) for (let i = prefix; i < m - suffix; i++) gone.add(kept[i] as F);
    this.stats.reused += n - looked;
    // A port that only moved is in both.
    const stays = new Set(came);
    this.lastChange = {
      removed: [...gone].filter((f) => !stays.has(f)),
      added: came.filter((f) => !gone.has(f)),
      prefix,
      suffix,
      before: kept,
      after: out,
    };
    this.lastPorts = ports;
    this.lastFragments = out;
    return out;
  }
}

/**
 * A memo that also keeps the last output its fragments were merged into (a
 * backend's keeper, which the next render may patch), forgotten with them.
 */
export class KeepingMemo<F, K extends { clear(): void }> extends ServicePortMemo<F> {
  constructor(readonly keeper: K) {
    super();
  }

  override begin(context: string): boolean {
    const dropped = super.begin(context);
    if (dropped) this.keeper.clear();
    return dropped;
  }
}
