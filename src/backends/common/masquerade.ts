// The packet mark that flags traffic for masquerade, shared by every mode.

/** `0x4000` for bit 14: the form iptables-save prints and upstream writes into its rules. */
export function masqueradeMark(bit: number): string {
  return `0x${(2 ** bit).toString(16)}`;
}
