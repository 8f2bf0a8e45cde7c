// A small cluster the sync tests share: a TCP Service (shop/web, 172.30.0.10:80)
// and a UDP one (kube-system/dns, 172.30.0.11:53), with the endpoints given.
import { endpoint, service, slice, slicePort, snapshot, svcPort } from './builders.js';

export function webAndDns(webEndpoints: string[], dnsEndpoints: string[]) {
  return snapshot(
    [
      service('shop/web', { clusterIP: '172.30.0.10', ports: [svcPort('p80', 80)] }),
      service('kube-system/dns', { clusterIP: '172.30.0.11', ports: [svcPort('dns', 53, 'UDP')] }),
    ],
    [
      slice(
        'shop/web',
        webEndpoints.map((ip) => endpoint(ip)),
      ),
      slice(
        'kube-system/dns',
        dnsEndpoints.map((ip) => endpoint(ip)),
        { ports: [slicePort('dns', 53, 'UDP')] },
      ),
    ],
  );
}
