// Runs the kproxy CLI in-process and captures what it prints.
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

export async function runCli(...argv: string[]): Promise<CliRun> {
  const out = capture();
  const err = capture();
  const code = await main(argv, { stdout: out.stream, stderr: err.stream });
  await new Promise((r) => setImmediate(r));
  return { code, stdout: out.text(), stderr: err.text() };
}

export const exampleCluster = new URL('../../examples/kind-cluster.yaml', import.meta.url).pathname;

/** The example cluster as node kind-worker sees it: the flags most CLI tests share. */
export const kindWorkerArgs = [
  '--from-file',
  exampleCluster,
  '--hostname-override',
  'kind-worker',
  '--cluster-cidr',
  '10.244.0.0/16',
];
