// One watch request: GET ?watch=true, a stream of JSON lines, one event each.
// `done` runs once: null when the server ends the stream, else the error (an
// ApiError with the HTTP status for a non-200 answer, e.g. 410 Gone; a TimeoutError
// after timeoutMs without data; an AbortError after the abort function; undici's
// error when the connection fails). A 410 inside the stream arrives as an ERROR
// event instead, with the Status as its object: list-watch.ts handles both.
import { fetch } from 'undici';
import { statusError } from './api-error.js';
import type { Transport } from './connection.js';

export type RawEvent = { type: string; object: unknown };

/** Splits text arriving in chunks into lines; a line split across chunks comes out whole. */
export class LineSplitter {
  private rest = '';

  push(text: string): string[] {
    const lines: string[] = [];
    let start = 0;
    let nl = text.indexOf('\n');
    if (nl >= 0) {
      lines.push(this.rest + text.slice(0, nl));
      this.rest = '';
      start = nl + 1;
      for (nl = text.indexOf('\n', start); nl >= 0; nl = text.indexOf('\n', start)) {
        lines.push(text.slice(start, nl));
        start = nl + 1;
      }
    }
    this.rest += text.slice(start);
    return lines.filter((l) => l.trim() !== '');
  }

  /** What is left after the stream's end: a last line without its newline. */
  end(): string[] {
    const last = this.rest;
    this.rest = '';
    return last.trim() === '' ? [] : [last];
  }
}

/** The library's way of saying "nothing for timeoutMs"; list-watch.ts treats it as an idle end. */
const timeoutError = () => new DOMException('The operation was aborted due to timeout', 'TimeoutError');

async function readLines(
  body: AsyncIterable<Uint8Array>,
  onData: () => void,
  onLine: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  const lines = new LineSplitter();
  for await (const chunk of body) {
    onData();
    for (const l of lines.push(decoder.decode(chunk, { stream: true }))) onLine(l);
  }
  for (const l of [...lines.push(decoder.decode()), ...lines.end()]) onLine(l);
}

function parseLine(line: string, onEvent: (e: RawEvent) => void): void {
  try {
    const e = JSON.parse(line) as RawEvent;
    onEvent({ type: e.type, object: e.object });
  } catch {
    // As client-node's Watch did: a line that is not JSON (or a handler that throws)
    // does not end the watch.
  }
}

export async function openWatch(
  transport: Transport,
  server: string,
  path: string,
  query: Record<string, string | number | boolean>,
  onEvent: (e: RawEvent) => void,
  done: (err: unknown) => void,
  timeoutMs: number,
): Promise<() => void> {
  const url = new URL(server + path);
  url.searchParams.set('watch', 'true');
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  let ended = false;
  // Until the answer comes, a connect timeout; then, reset by each chunk, an inactivity timeout.
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort(timeoutError());
    }, timeoutMs);
    timer.unref();
  };
  const end = (err: unknown) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    controller.abort();
    done(err && timedOut ? timeoutError() : err);
  };
  arm();
  try {
    const { headers, dispatcher } = await transport.prepare();
    const res = await fetch(url, {
      headers,
      signal: controller.signal,
      ...(dispatcher ? { dispatcher } : {}),
    });
    if (res.status !== 200) throw await statusError(`GET ${path} (watch)`, res);
    arm();
    if (!res.body) throw new Error(`GET ${path} (watch): no body`);
    readLines(res.body, arm, (line) => parseLine(line, onEvent)).then(() => end(null), end);
  } catch (err) {
    end(err);
  }
  return () => controller.abort();
}
