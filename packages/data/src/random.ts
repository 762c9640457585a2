/**
 * Seeded random streams.
 *
 * `Random` is xoshiro128** (Blackman and Vigna), 32-bit words, period 2^128 - 1.
 * Streams are keyed: `Random.stream(seed, epoch, batch)` gives the same numbers for the
 * same key on any machine and in any thread, which is what makes sampling independent
 * of how many consumers there are.
 */

const TWO_POW_32 = 4294967296;
const TWO_POW_21 = 2097152;

/** splitmix32 step: a good 32-bit mixer used to expand seeds into states. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/**
 * Hashes a seed and a list of integer keys into one 32-bit word. Keys may be any safe
 * integers (negative or above 2^32 included).
 */
export function deriveSeed(seed: number, ...keys: readonly number[]): number {
  let h = mix32(hashInteger(seed, 0x3c6ef372));
  for (let k = 0; k < keys.length; k++) {
    h = mix32(h ^ hashInteger(keys[k]!, 0xa54ff53a + k));
  }
  return h;
}

function hashInteger(value: number, salt: number): number {
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`seed keys must be safe integers, got ${value}`);
  }
  const lo = (value % TWO_POW_32) >>> 0;
  const hi = Math.floor(value / TWO_POW_32) >>> 0;
  return mix32(mix32(lo ^ salt) ^ hi);
}

/** A seeded stream of random numbers (xoshiro128**). Not cryptographic. */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareGaussian = 0;
  private hasSpareGaussian = false;

  /** Starts a stream from a seed (any safe integer). */
  constructor(seed: number) {
    let s = deriveSeed(seed);
    this.a = s = mix32(s);
    this.b = s = mix32(s);
    this.c = s = mix32(s);
    this.d = mix32(s);
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  /** The stream for a key, e.g. `(seed, epoch, batchIndex)`: the same key gives the same numbers. */
  static stream(seed: number, ...keys: readonly number[]): Random {
    return new Random(deriveSeed(seed, ...keys));
  }

  /**
   * The four 32-bit state words, for hot loops that inline the generator (see
   * `TripleSampler`); `setState` puts them back so the stream continues exactly.
   */
  getState(): [number, number, number, number] {
    return [this.a, this.b, this.c, this.d];
  }

  /** Restores state words taken with {@link Random.getState} (after advancing them). */
  setState(state: readonly [number, number, number, number]): void {
    [this.a, this.b, this.c, this.d] = state;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /**
   * A uniform integer in [0, n), exactly uniform (rejection, no modulo bias).
   * @param n - 1 <= n <= 2^53
   */
  nextInt(n: number): number {
    if (!(n >= 1) || !Number.isSafeInteger(n)) {
      throw new RangeError(`nextInt bound must be a positive safe integer, got ${n}`);
    }
    if (n <= TWO_POW_21) {
      // Lemire's nearly divisionless multiply-shift with rejection; r * n < 2^53 is exact.
      let m = this.nextUint32() * n;
      let hi = Math.floor(m / TWO_POW_32);
      if (m - hi * TWO_POW_32 < n) {
        const threshold = (TWO_POW_32 - n) % n;
        while (m - hi * TWO_POW_32 < threshold) {
          m = this.nextUint32() * n;
          hi = Math.floor(m / TWO_POW_32);
        }
      }
      return hi;
    }
    const limit = Math.floor(9007199254740992 / n) * n;
    for (;;) {
      const x = (this.nextUint32() >>> 11) * TWO_POW_32 + this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** A standard normal draw (Box-Muller, both values used). */
  nextGaussian(): number {
    if (this.hasSpareGaussian) {
      this.hasSpareGaussian = false;
      return this.spareGaussian;
    }
    let u = 0;
    while (u === 0) u = this.nextFloat();
    const v = this.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareGaussian = r * Math.sin(2 * Math.PI * v);
    this.hasSpareGaussian = true;
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Shuffles `array` in place (Fisher-Yates) and returns it. */
  shuffle<T extends { length: number; [index: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
