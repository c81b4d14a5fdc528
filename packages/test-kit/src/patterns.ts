/**
 * Block signatures and a seeded random generator shared by the conformance suite and the
 * worker side of the multi-worker harness.
 *
 * A signed block starts with a 16-byte signature and is filled after it with bytes derived
 * from the signature, so any overwrite, overlap or lost copy shows up when it is verified:
 *
 * ```text
 *  +0 SIGNATURE_MAGIC | +4 writer (thread id) | +8 sequence | +12 size | +16 fill bytes ...
 * ```
 * Blocks shorter than 16 bytes carry only the fill pattern.
 */

/** 'SIG!' little-endian. */
export const SIGNATURE_MAGIC = 0x21474953;
export const SIGNATURE_BYTES = 16;

/** The fill byte at `offset` of a block whose pattern seed is `seed`. */
export function patternByte(seed: number, offset: number): number {
  return (seed + offset * 0x9d + (offset >>> 8)) & 0xff;
}

/** Fills `[address, address + size)` with the pattern of `seed`. */
export function fillPattern(u8: Uint8Array, address: number, size: number, seed: number): void {
  for (let offset = 0; offset < size; offset++) u8[address + offset] = patternByte(seed, offset);
}

/**
 * Returns the offset of the first byte that differs from the pattern of `seed`, or -1.
 */
export function findPatternMismatch(u8: Uint8Array, address: number, size: number, seed: number): number {
  for (let offset = 0; offset < size; offset++) {
    if (u8[address + offset] !== patternByte(seed, offset)) return offset;
  }
  return -1;
}

/** What a signature says about its block. */
export interface Signature {
  /** Who wrote the block (a thread id, or any small number). */
  writer: number;
  /** Which of the writer's blocks this is. */
  sequence: number;
  /** Bytes signed, so a thread that receives the block knows how much to verify. */
  size: number;
}

function seedOf(signature: Signature): number {
  return (signature.writer * 131 + signature.sequence * 31 + signature.size) & 0xff;
}

/** Writes a signature and fills the rest of the block from it. */
export function signBlock(u8: Uint8Array, address: number, signature: Signature): void {
  const seed = seedOf(signature);
  const size = signature.size;
  if (size < SIGNATURE_BYTES) {
    fillPattern(u8, address, size, seed);
    return;
  }
  const view = new DataView(u8.buffer, u8.byteOffset + address, SIGNATURE_BYTES);
  view.setUint32(0, SIGNATURE_MAGIC, true);
  view.setUint32(4, signature.writer, true);
  view.setUint32(8, signature.sequence, true);
  view.setUint32(12, signature.size, true);
  fillPattern(u8, address + SIGNATURE_BYTES, size - SIGNATURE_BYTES, seed);
}

/**
 * Verifies a signed block. Returns null when intact, else a sentence saying what differs.
 * `expected` may be omitted for a block received from another thread (at least
 * `SIGNATURE_BYTES` long): then its own signature says what its fill must be.
 */
export function verifyBlock(u8: Uint8Array, address: number, expected?: Signature): string | null {
  if (expected !== undefined && expected.size < SIGNATURE_BYTES) {
    const at = findPatternMismatch(u8, address, expected.size, seedOf(expected));
    return at < 0 ? null : `byte ${at} of the ${expected.size}-byte block at ${address} was overwritten`;
  }
  const found = readSignature(u8, address);
  if (found === null) return `block at ${address} lost its signature`;
  if (expected !== undefined && (found.writer !== expected.writer || found.sequence !== expected.sequence || found.size !== expected.size)) {
    return `block at ${address} carries signature ${JSON.stringify(found)}, expected ${JSON.stringify(expected)}`;
  }
  const size = found.size;
  const at = findPatternMismatch(u8, address + SIGNATURE_BYTES, size - SIGNATURE_BYTES, seedOf(found));
  return at < 0 ? null : `byte ${at + SIGNATURE_BYTES} of the ${size}-byte block at ${address} was overwritten`;
}

/** Reads the signature at `address`, or null when the magic word is not there. */
export function readSignature(u8: Uint8Array, address: number): Signature | null {
  const view = new DataView(u8.buffer, u8.byteOffset + address, SIGNATURE_BYTES);
  if (view.getUint32(0, true) !== SIGNATURE_MAGIC) return null;
  return { writer: view.getUint32(4, true), sequence: view.getUint32(8, true), size: view.getUint32(12, true) };
}

export { Random } from '@heaplab/core';
