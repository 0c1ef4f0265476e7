// A small seeded generator (splitmix64 mixed into xorshift128+) so a campaign is reproducible
// from (seed, case index) alone: case i never depends on the cases before it.

export class Rng {
  private s0: bigint;
  private s1: bigint;

  constructor(seed: number, stream = 0) {
    let x = (BigInt(seed >>> 0) << 32n) ^ BigInt(stream >>> 0) ^ 0x9e3779b97f4a7c15n;
    const next = () => {
      x = (x + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
      return z ^ (z >> 31n);
    };
    this.s0 = next();
    this.s1 = next();
  }

  /** A uniform float in [0, 1). */
  next(): number {
    let a = this.s0;
    const b = this.s1;
    this.s0 = b;
    a ^= (a << 23n) & 0xffffffffffffffffn;
    this.s1 = a ^ b ^ (a >> 17n) ^ (b >> 26n);
    return Number((this.s1 + b) & 0x1fffffffffffffn) / 2 ** 53;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}
