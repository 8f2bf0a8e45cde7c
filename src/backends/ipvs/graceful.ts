// Graceful termination of real servers, as upstream's GracefulTerminationManager
// decides it: a TCP real server whose endpoint went away but which still carries
// connections is kept with weight 0 (no new connections, the old ones finish) and
// deleted once they are gone; UDP and SCTP ones go at once (expire_nodest_conn=1
// drops their flows on the next packet). Pure: the kernel's counters are the state,
// so a restarted kproxy picks up where the previous one stopped.
import type { Protocol } from '../../model/types.js';
import type { ConnCounts, RealServer } from './ipvsadm.js';

/** delete: remove now; quiesce: set weight 0 and wait; wait: already at weight 0, still busy. */
export type DrainDecision = 'delete' | 'quiesce' | 'wait';

/** Upstream's IsRsGracefulTerminationNeeded: only connection-oriented TCP is drained. */
export function needsGracefulTermination(protocol: Protocol): boolean {
  return protocol === 'TCP';
}

/**
 * What to do with a real server that is no longer wanted. `conns` undefined means
 * the counters were not read: assume the server is busy rather than cut connections.
 */
export function drainDecision(
  protocol: Protocol,
  rs: Pick<RealServer, 'weight'>,
  conns?: ConnCounts,
): DrainDecision {
  if (!needsGracefulTermination(protocol)) return 'delete';
  if (conns && conns.active + conns.inactive === 0) return 'delete';
  return rs.weight === 0 ? 'wait' : 'quiesce';
}
