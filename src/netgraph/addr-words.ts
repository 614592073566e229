// IP addresses as 32-bit words (one for IPv4, four for IPv6), most significant first: the flat
// trie and the lookup indexes compare and mask whole words instead of bytes. Words are held as
// int32 (what bitwise operators produce); "biased" words have the top bit flipped, so plain
// signed comparison orders them as unsigned addresses.

/** XOR a word with this to bias or unbias it. */
export const BIAS = -0x80000000;

/** The word of buf[at..at+4), big-endian, as int32. */
export function wordAt(buf: Uint8Array, at: number): number {
  return (buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!;
}

/** Writes the address bytes as raw words into out[at..]. */
export function toWords(bytes: Uint8Array, out: Int32Array, at: number): void {
  for (let w = 0; w < bytes.length >> 2; w++) out[at + w] = wordAt(bytes, w * 4);
}

/** The mask of the first `bits` bits of word `w` of an address (bits counted from the top). */
export function maskWord(bits: number, w: number): number {
  const here = bits - w * 32;
  return here >= 32 ? -1 : here <= 0 ? 0 : -1 << (32 - here);
}

/** Bit `index` of the address in words[at..]. */
export function bitOf(words: Int32Array, at: number, index: number): number {
  return (words[at + (index >>> 5)]! >>> (31 - (index & 31))) & 1;
}

/** Leading bits the addresses at a[at..] and b[bt..] (n words each) share. */
export function commonBits(a: Int32Array, at: number, b: Int32Array, bt: number, n: number): number {
  for (let w = 0; w < n; w++) {
    const diff = a[at + w]! ^ b[bt + w]!;
    if (diff !== 0) return w * 32 + Math.clz32(diff);
  }
  return n * 32;
}

/** The 32 bits starting `offset` (0..31) bits into word `hi`, continuing into `lo`. */
export function windowAt(hi: number, lo: number, offset: number): number {
  // (lo >>> 1) >>> (31 - offset) is lo >>> (32 - offset), also for offset 0 (where >>> 32 would not shift).
  return (hi << offset) | ((lo >>> 1) >>> (31 - offset));
}

/** Whether the biased address at a[at..] is before the one at b[bt..] (n words each). */
export function lessWords(a: Int32Array, at: number, b: Int32Array, bt: number, n: number): boolean {
  for (let w = 0; w < n; w++) if (a[at + w] !== b[bt + w]) return a[at + w]! < b[bt + w]!;
  return false;
}
