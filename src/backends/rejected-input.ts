/**
 * The kernel tool refused an input (iptables-restore, nft -f); nothing of it was
 * applied, since both are atomic. Keeps the input to point at the refused line.
 */
export class RejectedInputError extends Error {
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
