// Per-service-port render output kept between renders, keyed on the identity of
// the model's ServicePort (model/cache.ts keeps an unchanged port's object), so
// that a sync renders only the ports that changed. A render stays a pure
// function of its inputs: the memo only skips recomputing what it would give.
import type { ServicePort } from './types.js';

export class ServicePortMemo<F> {
  private fragments = new WeakMap<ServicePort, F>();
  private context: string | undefined;
  /** Of the last render: ports rendered anew, and ports whose fragment was reused. */
  stats = { rendered: 0, reused: 0 };

  /**
   * Starts a render. `context` fingerprints everything else the fragments depend
   * on (the config, cluster-wide facts); when it differs from the last render's,
   * every fragment is dropped.
   */
  begin(context: string): void {
    if (context !== this.context) {
      this.fragments = new WeakMap();
      this.context = context;
    }
    this.stats = { rendered: 0, reused: 0 };
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
}
