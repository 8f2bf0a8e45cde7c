// Tests run by hand, not by `npm test` or CI: each has an open finding that makes it
// fail now and then (docs/testing-cluster.md says which and why). Run as root with
//   npm run test:manual
export default {
  files: ['test/manual/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '3m',
};
