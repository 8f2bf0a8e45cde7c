import { OperatorError } from './errors.js';

/**
 * The kernel tool refused an input (iptables-restore, nft -f, ipvsadm -R); nothing of
 * it was applied with the first two, which are atomic. Keeps the input to point at
 * the refused line. An operator error: the previous rules stay and the tool says why.
 */
export class RejectedInputError extends OperatorError {
  constructor(
    message: string,
    /** 1-based line of the input the tool complained about, when it said so. */
    readonly line: number | undefined,
    readonly input: string,
  ) {
    super(message);
  }

  /** The refused line with two lines of context either side, numbered. */
  excerpt(): string {
    if (this.line === undefined) return '';
    const lines = this.input.split('\n');
    const from = Math.max(this.line - 3, 0);
    return lines
      .slice(from, this.line + 2)
      .map((l, i) => `${from + i + 1 === this.line ? '>' : ' '} ${from + i + 1}: ${l}`)
      .join('\n');
  }
}
