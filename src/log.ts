// Logging through winston: readable lines on a terminal, JSON elsewhere (a
// cluster's log pipeline), and kube-proxy-style --v verbosity on top of levels.
import winston from 'winston';

export type Logger = winston.Logger;

export interface LogOptions {
  /** --v: 0 is info, 2 adds per-sync detail, 4 and up adds debug. */
  verbosity?: number;
  json?: boolean;
  stream?: NodeJS.WritableStream;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const stream = opts.stream ?? process.stderr;
  const json = opts.json ?? !(stream as NodeJS.WriteStream).isTTY;
  const v = opts.verbosity ?? 0;
  const level = v >= 4 ? 'debug' : v >= 2 ? 'verbose' : 'info';
  const format = json
    ? winston.format.combine(winston.format.timestamp(), winston.format.json())
    : winston.format.combine(
        winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
        winston.format.printf(({ timestamp, level: lvl, message, ...rest }) => {
          const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
          return `${timestamp} ${lvl.toUpperCase().padEnd(5)} ${message}${extra}`;
        }),
      );
  return winston.createLogger({ level, format, transports: [new winston.transports.Stream({ stream })] });
}
