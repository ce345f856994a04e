// AES-128 in counter mode, the PRF behind correlated randomness. Three
// kernels give the same keystream: VAES (two blocks per 256-bit register),
// AES-NI, and a portable bitsliced one that is constant-time, since the key is
// secret. The key schedule is computed once per call by the bitsliced S-box,
// so it is constant-time on every path.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "internal.hpp"

namespace cg {
namespace {

using RoundKeys = uint8_t[11][16];

// ------------------------------------------------------------ bitsliced core
//
// Four blocks live in eight 64-bit planes: plane i holds bit i of every byte,
// and byte (row r, column c) of block b sits at bit 16 r + 4 c + b. ShiftRows
// is then a rotation of nibbles within each 16-bit row, and the row below is
// one 16-bit rotation away, which MixColumns needs.

// The AES S-box on 64 bytes at once, no tables: plane i holds bit i of every
// byte. The S-box is inversion in GF(2^8) = GF(2)[x] / (x^8 + x^4 + x^3 + x + 1)
// followed by an affine map (FIPS-197 5.1.1); the inverse is computed as
// a^254 by the addition chain 2, 3, 6, 12, 15, 240, 252, 254 (four
// multiplications, seven squarings), with 0 mapped to 0 as AES requires.

// Reduction of a 15-coefficient product modulo the AES polynomial:
// x^k = x^(k-8) (x^4 + x^3 + x + 1) for k >= 8.
void gf_reduce(u64* p, u64* out) {
  for (int k = 14; k >= 8; k--) {
    p[k - 4] ^= p[k];
    p[k - 5] ^= p[k];
    p[k - 7] ^= p[k];
    p[k - 8] ^= p[k];
  }
  for (int i = 0; i < 8; i++) out[i] = p[i];
}

void gf_mul(const u64* a, const u64* b, u64* out) {
  u64 p[15] = {};
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) p[i + j] ^= a[i] & b[j];
  gf_reduce(p, out);
}

// Squaring is linear in GF(2^8): coefficient i moves to 2i.
void gf_square(const u64* a, u64* out) {
  u64 p[15] = {};
  for (int i = 0; i < 8; i++) p[2 * i] = a[i];
  gf_reduce(p, out);
}

void sbox(u64* q) {
  u64 x2[8], x3[8], x6[8], x12[8], x15[8], t[8], inv[8];
  gf_square(q, x2);
  gf_mul(x2, q, x3);
  gf_square(x3, x6);
  gf_square(x6, x12);
  gf_mul(x12, x3, x15);
  gf_square(x15, t);  // x^30
  gf_square(t, t);    // x^60
  gf_square(t, t);    // x^120
  gf_square(t, t);    // x^240
  gf_mul(t, x12, t);  // x^252
  gf_mul(t, x2, inv); // x^254
  // Affine map: bit i = b_i ^ b_(i+4) ^ b_(i+5) ^ b_(i+6) ^ b_(i+7) ^ c_i, c = 0x63.
  for (int i = 0; i < 8; i++) {
    u64 s = inv[i] ^ inv[(i + 4) & 7] ^ inv[(i + 5) & 7] ^ inv[(i + 6) & 7] ^ inv[(i + 7) & 7];
    q[i] = (0x63 >> i) & 1 ? ~s : s;
  }
}

inline u64 rotr(u64 x, int k) { return (x >> k) | (x << (64 - k)); }

void shift_rows(u64* q) {
  for (int i = 0; i < 8; i++) {
    const u64 x = q[i];
    q[i] = (x & 0x000000000000FFFF) | ((x & 0x00000000FFF00000) >> 4) | ((x & 0x00000000000F0000) << 12) |
           ((x & 0x0000FF0000000000) >> 8) | ((x & 0x000000FF00000000) << 8) |
           ((x & 0xF000000000000000) >> 12) | ((x & 0x0FFF000000000000) << 4);
  }
}

// Row r becomes 2 (a_r ^ a_r+1) ^ a_r+1 ^ (a_r+2 ^ a_r+3); rotr by 16 brings
// row r+1 into row r's place, and doubling in GF(2^8) is a shift of the planes
// with the reduction by x^8 = x^4 + x^3 + x + 1 folded in.
void mix_columns(u64* q) {
  u64 t[8], up[8];
  for (int i = 0; i < 8; i++) {
    up[i] = rotr(q[i], 16);
    t[i] = q[i] ^ up[i];
  }
  q[0] = t[7] ^ up[0] ^ rotr(t[0], 32);
  q[1] = t[0] ^ t[7] ^ up[1] ^ rotr(t[1], 32);
  q[2] = t[1] ^ up[2] ^ rotr(t[2], 32);
  q[3] = t[2] ^ t[7] ^ up[3] ^ rotr(t[3], 32);
  q[4] = t[3] ^ t[7] ^ up[4] ^ rotr(t[4], 32);
  q[5] = t[4] ^ up[5] ^ rotr(t[5], 32);
  q[6] = t[5] ^ up[6] ^ rotr(t[6], 32);
  q[7] = t[6] ^ up[7] ^ rotr(t[7], 32);
}

// Transposes eight words viewed as 8 x 8 matrices of bits, one per byte
// position: bit i of byte j of w[k] trades places with bit k of byte j of w[i].
// Its own inverse.
void transpose(u64* w) {
  auto swap = [](u64& a, u64& b, u64 mask, int s) {
    const u64 x = (a & mask) | ((b & mask) << s);
    b = ((a >> s) & mask) | (b & ~mask);
    a = x;
  };
  for (int k = 0; k < 8; k += 2) swap(w[k], w[k + 1], 0x5555555555555555, 1);
  for (int k : {0, 1, 4, 5}) swap(w[k], w[k + 2], 0x3333333333333333, 2);
  for (int k = 0; k < 4; k++) swap(w[k], w[k + 4], 0x0F0F0F0F0F0F0F0F, 4);
}

// Byte p = 4 c + r of block b goes to byte 2 r + c / 2 of word 4 (c % 2) + b,
// so that after the transpose it sits at bit 16 r + 4 c + b of its plane.
inline int word_of(int b, int p) { return 4 * ((p >> 2) & 1) + b; }
inline int shift_of(int p) { return 8 * (2 * (p & 3) + (p >> 3)); }

void to_planes(const uint8_t (*blocks)[16], u64* q) {
  for (int k = 0; k < 8; k++) q[k] = 0;
  for (int b = 0; b < 4; b++)
    for (int p = 0; p < 16; p++) q[word_of(b, p)] |= u64(blocks[b][p]) << shift_of(p);
  transpose(q);
}

void from_planes(u64* q, uint8_t (*blocks)[16]) {
  transpose(q);
  for (int b = 0; b < 4; b++)
    for (int p = 0; p < 16; p++) blocks[b][p] = uint8_t(q[word_of(b, p)] >> shift_of(p));
}

// A round key in plane form, repeated for the four blocks.
void key_planes(const uint8_t* rk, u64* q) {
  for (int i = 0; i < 8; i++) {
    q[i] = 0;
    for (int p = 0; p < 16; p++) q[i] |= (u64((rk[p] >> i) & 1) * 0xF) << (16 * (p & 3) + 4 * (p >> 2));
  }
}

// SubWord of the key schedule: four bytes through the bitsliced S-box.
void sub_word(uint8_t* w) {
  u64 q[8];
  for (int i = 0; i < 8; i++) {
    q[i] = 0;
    for (int k = 0; k < 4; k++) q[i] |= u64((w[k] >> i) & 1) << k;
  }
  sbox(q);
  for (int k = 0; k < 4; k++) {
    w[k] = 0;
    for (int i = 0; i < 8; i++) w[k] |= uint8_t(((q[i] >> k) & 1) << i);
  }
}

// FIPS-197 section 5.2. The round constants are public; everything the key
// touches goes through shifts, masks and the S-box circuit.
void expand_key(const uint8_t* key, RoundKeys rk) {
  std::memcpy(rk[0], key, 16);
  uint8_t rcon = 1;
  for (int r = 1; r <= 10; r++) {
    uint8_t t[4] = {rk[r - 1][13], rk[r - 1][14], rk[r - 1][15], rk[r - 1][12]};
    sub_word(t);
    t[0] ^= rcon;
    rcon = uint8_t((rcon << 1) ^ (rcon & 0x80 ? 0x1b : 0));
    for (int i = 0; i < 16; i++) rk[r][i] = rk[r - 1][i] ^ (i < 4 ? t[i] : rk[r][i - 4]);
  }
}

inline void store_be64(uint8_t* p, u64 v) {
  for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (56 - 8 * i));
}

// Every kernel writes blocks (hi, lo + j), j < n, to out; the caller splits
// runs so that lo + j never wraps.
using Kernel = void (*)(const RoundKeys& rk, u64 hi, u64 lo, u64 n, uint8_t* out);

void ctr_portable(const RoundKeys& rk, u64 hi, u64 lo, u64 n, uint8_t* out) {
  u64 kq[11][8];
  for (int r = 0; r < 11; r++) key_planes(rk[r], kq[r]);
  for (u64 j = 0; j < n; j += 4) {
    uint8_t blocks[4][16];
    for (int b = 0; b < 4; b++) {
      store_be64(blocks[b], hi);
      store_be64(blocks[b] + 8, lo + j + b);
    }
    u64 q[8];
    to_planes(blocks, q);
    for (int i = 0; i < 8; i++) q[i] ^= kq[0][i];
    for (int r = 1; r <= 10; r++) {
      sbox(q);
      shift_rows(q);
      if (r < 10) mix_columns(q);
      for (int i = 0; i < 8; i++) q[i] ^= kq[r][i];
    }
    from_planes(q, blocks);
    std::memcpy(out + 16 * j, blocks, 16 * std::min<u64>(4, n - j));
  }
}

// ------------------------------------------------------------------- AES-NI

// Counters are kept as native (lo, hi) lanes and byte-reversed into the
// big-endian block.
__attribute__((target("aes,sse4.1"))) void ctr_aesni(const RoundKeys& rk, u64 hi, u64 lo, u64 n, uint8_t* out) {
  __m128i k[11];
  for (int r = 0; r < 11; r++) k[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rk[r]));
  const __m128i reverse = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m128i one = _mm_set_epi64x(0, 1);
  __m128i ctr = _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo));
  u64 j = 0;
  // Eight independent blocks hide the latency of aesenc.
  for (; j + 8 <= n; j += 8) {
    __m128i b[8];
    for (int i = 0; i < 8; i++) {
      b[i] = _mm_xor_si128(_mm_shuffle_epi8(ctr, reverse), k[0]);
      ctr = _mm_add_epi64(ctr, one);
    }
    for (int r = 1; r < 10; r++)
      for (int i = 0; i < 8; i++) b[i] = _mm_aesenc_si128(b[i], k[r]);
    for (int i = 0; i < 8; i++)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * (j + i)), _mm_aesenclast_si128(b[i], k[10]));
  }
  for (; j < n; j++) {
    __m128i b = _mm_xor_si128(_mm_shuffle_epi8(ctr, reverse), k[0]);
    ctr = _mm_add_epi64(ctr, one);
    for (int r = 1; r < 10; r++) b = _mm_aesenc_si128(b, k[r]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * j), _mm_aesenclast_si128(b, k[10]));
  }
}

// Two blocks per 256-bit register, sixteen in flight; the tail goes to AES-NI.
__attribute__((target("vaes,avx2"))) void ctr_vaes(const RoundKeys& rk, u64 hi, u64 lo, u64 n, uint8_t* out) {
  __m256i k[11];
  for (int r = 0; r < 11; r++)
    k[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rk[r])));
  const __m256i reverse = _mm256_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,  //
                                          0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m256i two = _mm256_set_epi64x(0, 2, 0, 2);
  const auto h = static_cast<long long>(hi);
  __m256i ctr = _mm256_set_epi64x(h, static_cast<long long>(lo + 1), h, static_cast<long long>(lo));
  u64 j = 0;
  for (; j + 16 <= n; j += 16) {
    __m256i b[8];
    for (int i = 0; i < 8; i++) {
      b[i] = _mm256_xor_si256(_mm256_shuffle_epi8(ctr, reverse), k[0]);
      ctr = _mm256_add_epi64(ctr, two);
    }
    for (int r = 1; r < 10; r++)
      for (int i = 0; i < 8; i++) b[i] = _mm256_aesenc_epi128(b[i], k[r]);
    for (int i = 0; i < 8; i++)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * (j + 2 * i)), _mm256_aesenclast_epi128(b[i], k[10]));
  }
  if (j < n) ctr_aesni(rk, hi, lo + j, n - j, out + 16 * j);
}

// Blocks ctr + j, j < n, for a 128-bit counter (hi, lo): at most one wrap of
// the low half, where the high half takes the carry.
void ctr_run(Kernel kernel, const RoundKeys& rk, u64 hi, u64 lo, u64 n, uint8_t* out) {
  const u64 before_wrap = lo == 0 ? n : std::min(n, 0 - lo);
  kernel(rk, hi, lo, before_wrap, out);
  if (before_wrap < n) kernel(rk, hi + 1, 0, n - before_wrap, out + 16 * before_wrap);
}

// Blocks per chunk: some 50 microseconds of work, which outweighs waking a
// thread.
constexpr u64 kGrainHardware = 1 << 15, kGrainPortable = 1 << 9;

}  // namespace

void aes128_expand_key(const uint8_t* key, uint8_t (*rk)[16]) { expand_key(key, rk); }

void aes128_blocks(const uint8_t (*rk)[16], bool hardware, u64 hi, u64 lo, u64 n, uint8_t* out) {
  const Kernel kernel = hardware ? (has_vaes() ? ctr_vaes : ctr_aesni) : ctr_portable;
  ctr_run(kernel, *reinterpret_cast<const RoundKeys*>(rk), hi, lo, n, out);
}

void aes128_ctr(cg_ctx* ctx, cg_buf out, u64 out_off, u64 words, const uint8_t* key, const uint8_t* iv,
                int32_t impl) {
  if (key == nullptr) fail(CG_ENULL, "cg_aes128_ctr: key is NULL");
  if (iv == nullptr) fail(CG_ENULL, "cg_aes128_ctr: iv is NULL");
  Kernel kernel;
  switch (impl) {
    case CG_AES_AUTO:
      kernel = has_aesni() ? (has_vaes() ? ctr_vaes : ctr_aesni) : ctr_portable;
      break;
    case CG_AES_PORTABLE:
      kernel = ctr_portable;
      break;
    case CG_AES_NI:
      if (!has_aesni()) fail(CG_EUNSUPPORTED, "cg_aes128_ctr: this CPU has no AES-NI");
      kernel = has_vaes() ? ctr_vaes : ctr_aesni;
      break;
    default:
      fail(CG_EINVAL, "cg_aes128_ctr: unknown impl " + std::to_string(impl));
  }
  auto* dst = reinterpret_cast<uint8_t*>(words_of(ctx, out, out_off, words, "cg_aes128_ctr"));

  RoundKeys rk;
  expand_key(key, rk);
  u64 hi = 0, lo = 0;
  for (int i = 0; i < 8; i++) {
    hi = hi << 8 | iv[i];
    lo = lo << 8 | iv[8 + i];
  }
  const u64 full = words / 2;
  ctx->pool.parallel_for(full, kernel == ctr_portable ? kGrainPortable : kGrainHardware, [&](u64 begin, u64 end) {
    const u64 l = lo + begin;
    ctr_run(kernel, rk, hi + (l < lo), l, end - begin, dst + 16 * begin);
  });
  if (words % 2) {
    uint8_t last[16];
    const u64 l = lo + full;
    ctr_run(kernel, rk, hi + (l < lo), l, 1, last);
    std::memcpy(dst + 16 * full, last, 8);
  }
}

}  // namespace cg
