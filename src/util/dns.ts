// DNS name rules from Kubernetes' apimachinery validation. A Service is reached as
// <name>.<namespace>.svc.cluster.local, so its name must be a DNS-1035 label.

const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Returns why `name` is not a DNS-1035 label, or undefined when it is one. */
export function dns1035LabelError(name: string): string | undefined {
  if (name.length > 63) return `must be no more than 63 characters (has ${name.length})`;
  if (!dns1035Label.test(name)) {
    return "must be a DNS-1035 label: lower case alphanumerics or '-', starting with a letter and ending with an alphanumeric";
  }
  return undefined;
}

/** Namespaces are DNS-1123 labels. */
export function dns1123LabelError(name: string): string | undefined {
  if (name.length > 63) return `must be no more than 63 characters (has ${name.length})`;
  if (!dns1123Label.test(name)) {
    return "must be a DNS-1123 label: lower case alphanumerics or '-', starting and ending with an alphanumeric";
  }
  return undefined;
}

/** EndpointSlice and Node names are DNS-1123 subdomains. */
export function dns1123SubdomainError(name: string): string | undefined {
  if (name.length > 253) return `must be no more than 253 characters (has ${name.length})`;
  if (!dns1123Subdomain.test(name)) return 'must be a DNS-1123 subdomain';
  return undefined;
}
