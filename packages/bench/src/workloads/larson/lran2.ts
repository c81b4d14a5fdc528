/**
 * Wolfram Gloger's lran2, the small generator Larson's benchmark draws its victims and sizes
 * from (a linear congruential generator, modulus 714025, behind a 97-entry shuffle table).
 * Ported so heaplab's loop and its C port draw the same numbers from the same seed. Every
 * value stays below 714025 and every product below 2^31, so plain number arithmetic is exact.
 */

/** The modulus: every output is in [0, LRAN2_MODULUS). */
export const LRAN2_MODULUS = 714_025;
const MULTIPLIER = 1366;
const INCREMENT = 150_889;
/** Entries of the shuffle table. */
export const LRAN2_TABLE = 97;
/** Words a generator's state takes when stored: x, y and the table. */
export const LRAN2_STATE_WORDS = 2 + LRAN2_TABLE;

/** One generator; its state can be saved to and loaded from 32-bit words (see `save`, `load`). */
export class Lran2 {
  private x = 0;
  private y = 0;
  private readonly table = new Int32Array(LRAN2_TABLE);

  constructor(seed = 0) {
    this.seed(seed);
  }

  /** Restarts the sequence from `seed`, as the C `lran2_init` does. */
  seed(seed: number): void {
    let x = Math.abs((INCREMENT - seed) % LRAN2_MODULUS);
    for (let i = 0; i < LRAN2_TABLE; i++) {
      x = (MULTIPLIER * x + INCREMENT) % LRAN2_MODULUS;
      this.table[i] = x;
    }
    this.x = (MULTIPLIER * x + INCREMENT) % LRAN2_MODULUS;
    this.y = this.x;
  }

  /** The next value, in [0, LRAN2_MODULUS). */
  next(): number {
    const slot = this.y % LRAN2_TABLE;
    this.y = this.table[slot]!;
    this.x = (MULTIPLIER * this.x + INCREMENT) % LRAN2_MODULUS;
    this.table[slot] = this.x;
    return this.y;
  }

  /** Writes the state into `words` from `at` (`LRAN2_STATE_WORDS` words). */
  save(words: Int32Array, at: number): void {
    words[at] = this.x;
    words[at + 1] = this.y;
    words.set(this.table, at + 2);
  }

  /** Takes the state `save` wrote at `at`. */
  load(words: Int32Array, at: number): void {
    this.x = words[at]!;
    this.y = words[at + 1]!;
    this.table.set(words.subarray(at + 2, at + 2 + LRAN2_TABLE));
  }
}
