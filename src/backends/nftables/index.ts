// The nftables backend's API, for the CLI and the daemon.
export { cleanupNftables, type NftCleanupReport } from './cleanup.js';
export { type DesiredNftables, desiredNftables, type NftablesOptions, nftablesConfigFor } from './desired.js';
export {
  checkNft,
  execNftHost,
  NftError,
  type NftHost,
  type NftKernelFeatures,
  nftKernelFeatures,
} from './host.js';
export { listingFromDump, listingText } from './listing.js';
export { type NftablesSyncerDeps, nftablesMode, nftablesSyncer } from './mode.js';
export { kubeProxyTable, nftFamily } from './names.js';
export { type NftSyncContext, type NftSyncReport, summarizeNftables, syncNftables } from './sync.js';
export { tableLines } from './table.js';
