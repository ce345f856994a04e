// Per-word work of the packed bit gather and scatter, shared by the kernels
// and the host-side checks. Bit j of a stream lives in word j / 64 at bit
// j % 64; rows of the sparse side are w bits wide, rows of the dense side
// count bits.
#pragma once

#include "common.cuh"

namespace cg {

// Compress (the bits of x under mask, packed to the bottom) and expand (its
// inverse) without pext/pdep: Hacker's Delight, sections 7-4 and 7-5. Stage i
// moves the bits that have an odd multiple of 2^i mask zeros below them right
// by 2^i; the stage masks depend on the mask only and are computed once.
struct BitMasks {
  u64 mask;
  u64 move[6];
};

inline BitMasks bit_masks(u64 m) {
  BitMasks b;
  b.mask = m;
  u64 zeros_right = ~m << 1;
  for (int i = 0; i < 6; i++) {
    u64 odd = zeros_right ^ (zeros_right << 1);  // parallel prefix parity
    for (int s = 2; s < 64; s <<= 1) odd ^= odd << s;
    b.move[i] = odd & m;
    m = (m ^ b.move[i]) | (b.move[i] >> (1 << i));
    zeros_right &= ~odd;
  }
  return b;
}

CG_HD u64 compress_bits(const BitMasks& b, u64 x) {
  x &= b.mask;
  for (int i = 0; i < 6; i++) {
    const u64 t = x & b.move[i];
    x = (x ^ t) | (t >> (1 << i));
  }
  return x;
}

CG_HD u64 expand_bits(const BitMasks& b, u64 x) {
  for (int i = 5; i >= 0; i--) x = (x & ~b.move[i]) | ((x << (1 << i)) & b.move[i]);
  return x & b.mask;
}

// Bits [pos, pos + len) of a stream, len in [1, 64], reading only the words
// they lie in.
CG_HD u64 load_bits(const u64* s, u64 pos, unsigned len) {
  const u64 i = pos >> 6;
  const unsigned sh = unsigned(pos & 63);
  u64 v = s[i] >> sh;
  if (sh + len > 64) v |= s[i + 1] << (64 - sh);
  return v & low_mask(len);
}

struct BitRows {
  u64 n, w;
  u64 start, step, count;
};

// Gather, dense word q: its bits p < n * count come from sparse bit
// (p / count) * w + start + (p % count) * step.
CG_HD u64 gather_word(const BitRows& r, const u64* in, u64 q) {
  const u64 total = r.n * r.count, p0 = 64 * q, p1 = min_u64(total, p0 + 64);
  u64 acc = 0;
  u64 e = p0 / r.count, t = p0 % r.count;
  for (u64 p = p0; p < p1; e++, t = 0) {
    const u64 run = min_u64(r.count - t, p1 - p);  // bits of row e in this word
    const u64 src = e * r.w + r.start + t * r.step;
    if (r.step == 1) {
      acc |= load_bits(in, src, unsigned(run)) << (p - p0);
    } else {
      for (u64 b = 0; b < run; b++) {
        const u64 s = src + b * r.step;
        acc |= ((in[s >> 6] >> (s & 63)) & 1) << (p - p0 + b);
      }
    }
    p += run;
  }
  return acc;
}

// Scatter, sparse word q: the selected bits in it take their dense bits; the
// others keep their value.
CG_HD u64 scatter_word(const BitRows& r, const u64* in, u64 q, u64 old) {
  const u64 lo = 64 * q, hi = lo + 63;  // the word's bit positions
  const u64 e_end = min_u64(r.n, hi / r.w + 1);
  u64 mask = 0, bits = 0;
  for (u64 e = lo / r.w; e < e_end; e++) {
    const u64 first = e * r.w + r.start;  // selected position of t = 0
    if (first > hi) break;
    const u64 last = first + (r.count - 1) * r.step;
    if (last < lo) continue;
    const u64 t0 = first >= lo ? 0 : ceil_div(lo - first, r.step);
    const u64 t1 = min_u64(r.count - 1, (hi - first) / r.step);
    if (t0 > t1) continue;
    if (r.step == 1) {
      const unsigned len = unsigned(t1 - t0 + 1);
      const unsigned at = unsigned(first + t0 - lo);
      mask |= low_mask(len) << at;
      bits |= load_bits(in, e * r.count + t0, len) << at;
    } else {
      for (u64 t = t0; t <= t1; t++) {
        const u64 src = e * r.count + t;
        const unsigned at = unsigned(first + t * r.step - lo);
        mask |= u64(1) << at;
        bits |= ((in[src >> 6] >> (src & 63)) & 1) << at;
      }
    }
  }
  return (old & ~mask) | bits;
}

}  // namespace cg
