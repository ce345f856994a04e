// AES-128 (FIPS-197) for the counter-mode kernel and its host-side key
// schedule. State and round keys are four 32-bit columns, byte r of a column
// in bits 8r..8r+7: the little-endian reading of the 16-byte block.
#pragma once

#include "common.cuh"

namespace cg {

// Multiplication in GF(2^8) = GF(2)[x] / (x^8 + x^4 + x^3 + x + 1) by masks,
// without branches or tables: the time does not depend on the operands.
CG_HD u32 gf_mul(u32 a, u32 b) {
  u32 p = 0;
  for (int i = 0; i < 8; i++) {
    p ^= (0u - (b & 1)) & a;
    a = ((a << 1) ^ ((0u - (a >> 7)) & 0x1b)) & 0xff;
    b >>= 1;
  }
  return p;
}

// The S-box: inversion as a^254 (0 maps to 0), then the affine map
// b ^ rotl(b, 1) ^ rotl(b, 2) ^ rotl(b, 3) ^ rotl(b, 4) ^ 0x63.
CG_HD u32 aes_sbox(u32 a) {
  u32 r = 1;
  for (int bit = 7; bit >= 0; bit--) {  // 254 = 0b11111110, square and multiply
    r = gf_mul(r, r);
    if ((254 >> bit) & 1) r = gf_mul(r, a);
  }
  u32 s = r;
  for (int k = 1; k <= 4; k++) s ^= ((r << k) | (r >> (8 - k))) & 0xff;
  return s ^ 0x63;
}

// T0[x] = (2 S[x], S[x], S[x], 3 S[x]): one column's share of SubBytes and
// MixColumns for a byte in row 0; rows 1 to 3 use it rotated by 8, 16, 24 bits.
CG_HD u32 aes_t0(u32 x) {
  const u32 s = aes_sbox(x);
  return gf_mul(s, 2) | (s << 8) | (s << 16) | (gf_mul(s, 3) << 24);
}

CG_HD u32 rotl32(u32 x, int k) { return (x << k) | (x >> (32 - k)); }

struct AesKey {
  u32 rk[44];  // 11 round keys of four columns
};

// FIPS-197 section 5.2. The key is secret: SubWord goes through the
// arithmetic S-box, never through a table.
inline AesKey aes_expand_key(const uint8_t* key) {
  AesKey k;
  for (int i = 0; i < 4; i++)
    k.rk[i] = u32(key[4 * i]) | u32(key[4 * i + 1]) << 8 | u32(key[4 * i + 2]) << 16 | u32(key[4 * i + 3]) << 24;
  u32 rcon = 1;
  for (int i = 4; i < 44; i++) {
    u32 t = k.rk[i - 1];
    if (i % 4 == 0) {
      t = (t >> 8) | (t << 24);  // RotWord: bytes (a1, a2, a3, a0)
      t = aes_sbox(t & 0xff) | aes_sbox((t >> 8) & 0xff) << 8 | aes_sbox((t >> 16) & 0xff) << 16 |
          aes_sbox(t >> 24) << 24;
      t ^= rcon;
      rcon = gf_mul(rcon, 2);
    }
    k.rk[i] = k.rk[i - 4] ^ t;
  }
  return k;
}

// Encrypts one block in place; t(x) returns T0[x]. ShiftRows is folded into
// which column each row's byte comes from.
template <class Table>
CG_HD void aes_encrypt(const AesKey& k, u32 s[4], const Table& t) {
  u32 a0 = s[0] ^ k.rk[0], a1 = s[1] ^ k.rk[1], a2 = s[2] ^ k.rk[2], a3 = s[3] ^ k.rk[3];
  for (int r = 1; r < 10; r++) {
    const u32* rk = k.rk + 4 * r;
    const u32 b0 = t(a0 & 0xff) ^ rotl32(t((a1 >> 8) & 0xff), 8) ^ rotl32(t((a2 >> 16) & 0xff), 16) ^
                   rotl32(t(a3 >> 24), 24) ^ rk[0];
    const u32 b1 = t(a1 & 0xff) ^ rotl32(t((a2 >> 8) & 0xff), 8) ^ rotl32(t((a3 >> 16) & 0xff), 16) ^
                   rotl32(t(a0 >> 24), 24) ^ rk[1];
    const u32 b2 = t(a2 & 0xff) ^ rotl32(t((a3 >> 8) & 0xff), 8) ^ rotl32(t((a0 >> 16) & 0xff), 16) ^
                   rotl32(t(a1 >> 24), 24) ^ rk[2];
    const u32 b3 = t(a3 & 0xff) ^ rotl32(t((a0 >> 8) & 0xff), 8) ^ rotl32(t((a1 >> 16) & 0xff), 16) ^
                   rotl32(t(a2 >> 24), 24) ^ rk[3];
    a0 = b0;
    a1 = b1;
    a2 = b2;
    a3 = b3;
  }
  // Last round: no MixColumns; S[x] is byte 1 of T0[x].
  auto sb = [&](u32 x) { return (t(x) >> 8) & 0xff; };
  s[0] = (sb(a0 & 0xff) | sb((a1 >> 8) & 0xff) << 8 | sb((a2 >> 16) & 0xff) << 16 | sb(a3 >> 24) << 24) ^ k.rk[40];
  s[1] = (sb(a1 & 0xff) | sb((a2 >> 8) & 0xff) << 8 | sb((a3 >> 16) & 0xff) << 16 | sb(a0 >> 24) << 24) ^ k.rk[41];
  s[2] = (sb(a2 & 0xff) | sb((a3 >> 8) & 0xff) << 8 | sb((a0 >> 16) & 0xff) << 16 | sb(a1 >> 24) << 24) ^ k.rk[42];
  s[3] = (sb(a3 & 0xff) | sb((a0 >> 8) & 0xff) << 8 | sb((a1 >> 16) & 0xff) << 16 | sb(a2 >> 24) << 24) ^ k.rk[43];
}

CG_HD u32 bswap32(u32 x) { return (x >> 24) | ((x >> 8) & 0xff00) | ((x << 8) & 0xff0000) | (x << 24); }

// Counter block j for the 128-bit big-endian counter (hi, lo): its columns,
// then the two output words of its keystream, little-endian.
template <class Table>
CG_HD void aes_ctr_block(const AesKey& k, u64 hi, u64 lo, u64 j, const Table& t, u64& w0, u64& w1) {
  const u64 l = lo + j, h = hi + (l < lo);  // j < 2^64: at most one carry
  u32 s[4] = {bswap32(u32(h >> 32)), bswap32(u32(h)), bswap32(u32(l >> 32)), bswap32(u32(l))};
  aes_encrypt(k, s, t);
  w0 = u64(s[0]) | u64(s[1]) << 32;
  w1 = u64(s[2]) | u64(s[3]) << 32;
}

}  // namespace cg
