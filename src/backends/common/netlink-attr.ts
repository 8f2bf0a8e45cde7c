// A netlink attribute holding a NUL-terminated string, as the kernel's NLA_STRING and
// NLA_NUL_STRING policies read it: 4-byte header (length without padding, type),
// the text and its NUL, zero-padded to 4 bytes. Host byte order, as netlink is.
export function stringAttribute(type: number, text: string): Buffer {
  const value = Buffer.from(`${text}\0`);
  const len = 4 + value.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  value.copy(out, 4);
  return out;
}
