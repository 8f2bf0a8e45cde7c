// Credentials only @kubernetes/client-node knows how to get: an `exec` plugin
// (aws, gke-gcloud-auth-plugin, kubelogin...), an `auth-provider`, or a SOCKS
// proxy. Imported dynamically by api.ts for such a kubeconfig only: the library
// loads ~830 modules, about a second of CPU, that everyone else is spared.
import type { RequestOptions, Transport } from './connection.js';

/** Headers and dispatcher from client-node's KubeConfig, loaded as it loads (file, or its defaults). */
export async function clientNodeTransport(file: string | undefined): Promise<Transport> {
  const { HttpMethod, KubeConfig, RequestContext } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  const server = kc.getCurrentCluster()?.server ?? '';
  return {
    async prepare(): Promise<RequestOptions> {
      const ctx = new RequestContext(server, HttpMethod.GET);
      await kc.applySecurityAuthentication(ctx);
      const dispatcher = ctx.getDispatcher();
      return { headers: ctx.getHeaders(), ...(dispatcher ? { dispatcher } : {}) };
    },
  };
}
