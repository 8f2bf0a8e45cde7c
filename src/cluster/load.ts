// Reads a file of Kubernetes objects: `kubectl get svc,endpointslices,nodes,servicecidrs -A -o yaml`
// output (a kind: List), multi-document YAML, or the JSON equivalents.
import { readFile } from 'node:fs/promises';
import type { V1EndpointSlice, V1Node, V1Service, V1ServiceCIDR } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { InputError } from '../backends/common/errors.js';
import { serviceCIDRApiVersions, validateServiceCIDR } from './service-cidr.js';
import type { ClusterSnapshot, Problem } from './snapshot.js';
import { validateEndpointSlice, validateNode, validateService } from './validate.js';

/** The input is not a file of Kubernetes objects at all (as opposed to holding a bad object). */
export class LoadError extends InputError {
  override name = 'LoadError';
}

export interface LoadResult {
  snapshot: ClusterSnapshot;
  /** Objects left out, one entry per object. */
  problems: Problem[];
  /** Objects of kinds kproxy does not read (Pods, ConfigMaps...), counted per kind. */
  ignoredKinds: Map<string, number>;
}

type KubeObject = { kind?: unknown; apiVersion?: unknown; items?: unknown; [k: string]: unknown };

function isObject(v: unknown): v is KubeObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseDocuments(text: string, source: string): unknown[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(text);
      return Array.isArray(parsed) ? parsed : [parsed];
    } catch {
      // Not JSON after all: YAML is a superset, let the YAML parser report the error.
    }
  }
  try {
    return yaml.loadAll(text).filter((d) => d !== null && d !== undefined);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new LoadError(`${source}: not valid YAML or JSON: ${reason}`);
  }
}

/** Flattens `kind: List` (and typed lists such as ServiceList) into their items. */
function flatten(doc: KubeObject, out: KubeObject[]): void {
  const kind = typeof doc.kind === 'string' ? doc.kind : '';
  // `items:` with nothing after it is null in YAML: an empty list, like kubectl's `items: []`.
  if (kind.endsWith('List') && (Array.isArray(doc.items) || doc.items == null)) {
    const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
    for (const item of (doc.items as unknown[] | null | undefined) ?? []) {
      if (!isObject(item)) continue;
      flatten(itemKind && item.kind === undefined ? { ...item, kind: itemKind } : item, out);
    }
    return;
  }
  out.push(doc);
}

/** Parses objects from text. Throws LoadError when the text holds no Kubernetes objects at all. */
export function loadObjects(text: string, source = 'input'): LoadResult {
  const docs = parseDocuments(text, source);
  const objects: KubeObject[] = [];
  docs.forEach((doc, i) => {
    if (!isObject(doc)) {
      throw new LoadError(`${source}: document ${i + 1} is not a Kubernetes object (got ${typeof doc})`);
    }
    flatten(doc, objects);
  });
  const services: V1Service[] = [];
  const endpointSlices: V1EndpointSlice[] = [];
  const nodes: V1Node[] = [];
  const serviceCIDRs: V1ServiceCIDR[] = [];
  const problems: Problem[] = [];
  const ignoredKinds = new Map<string, number>();
  // Keeps a valid object, or records one problem for it.
  const accept = <T>(obj: T, problemsOf: (o: T) => Problem[], into: T[]): void => {
    const found = problemsOf(obj);
    if (found.length === 0) into.push(obj);
    else problems.push(summarize(found));
  };
  for (const obj of objects) {
    const kind = typeof obj.kind === 'string' ? obj.kind : '<no kind>';
    if (kind === 'Service') accept(obj as V1Service, validateService, services);
    else if (kind === 'EndpointSlice' && obj.apiVersion === 'discovery.k8s.io/v1') {
      accept(obj as unknown as V1EndpointSlice, validateEndpointSlice, endpointSlices);
    } else if (kind === 'Node') accept(obj as V1Node, validateNode, nodes);
    else if (kind === 'ServiceCIDR' && serviceCIDRApiVersions.includes(String(obj.apiVersion))) {
      accept(obj as V1ServiceCIDR, validateServiceCIDR, serviceCIDRs);
    } else {
      const key = ['EndpointSlice', 'ServiceCIDR'].includes(kind)
        ? `${kind} ${String(obj.apiVersion)}`
        : kind;
      ignoredKinds.set(key, (ignoredKinds.get(key) ?? 0) + 1);
    }
  }
  return { snapshot: { services, endpointSlices, nodes, serviceCIDRs }, problems, ignoredKinds };
}

/** One message per object: its first problem, with the others appended. */
function summarize(all: Problem[]): Problem {
  const [first, ...rest] = all as [Problem, ...Problem[]];
  if (rest.length === 0) return first;
  return {
    ...first,
    reason: `${first.reason} (also ${rest.map((p) => `${p.field}: ${p.reason}`).join('; ')})`,
  };
}

export async function loadObjectsFile(path: string): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LoadError(`${path}: cannot read file (${code ?? String(err)})`);
  }
  return loadObjects(text, path);
}
