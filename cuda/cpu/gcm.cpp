// AES-128-GCM (NIST SP 800-38D) on host memory: the authenticated encryption
// of the parties' channels. Each frame is sealed under a per-direction key
// with a 96-bit nonce. Two paths give the same bytes: AES-NI (or VAES) with a
// PCLMULQDQ GHASH that folds four blocks per reduction, and a portable one
// (bitsliced AES, GHASH by masked shifts), both constant-time in the key and
// the data. No context: these run on any thread, outside the context lock.
#include <immintrin.h>

#include <cstring>

#include "internal.hpp"

namespace cg {
namespace {

// Blocks of keystream made at a time: 4 KiB stays in L1 beside the data.
constexpr u64 kChunkBlocks = 256;
// Below 2^32 - 2 blocks, the counter never wraps its 32-bit field.
constexpr u64 kGcmMaxBytes = ((u64(1) << 32) - 2) * 16;

inline u64 load_be64(const uint8_t* p) {
  u64 v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}
inline void store_be64(uint8_t* p, u64 v) {
  for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (56 - 8 * i));
}

// ------------------------------------------------------ portable GHASH
//
// Blocks as (hi, lo) big-endian halves: bit 0 of the standard is the top bit
// of hi. Multiplication in GF(2^128) by SP 800-38D's Algorithm 1, with masks
// instead of branches.
struct Block {
  u64 hi, lo;
};

Block gf128_mul(Block x, Block y) {
  Block z{0, 0}, v = y;
  for (int i = 0; i < 128; i++) {
    const u64 bit = i < 64 ? (x.hi >> (63 - i)) & 1 : (x.lo >> (127 - i)) & 1;
    const u64 take = 0 - bit;
    z.hi ^= v.hi & take;
    z.lo ^= v.lo & take;
    const u64 carry = 0 - (v.lo & 1);
    v.lo = (v.lo >> 1) | (v.hi << 63);
    v.hi = (v.hi >> 1) ^ (0xe100000000000000ull & carry);
  }
  return z;
}

struct GhashPortable {
  Block h, y{0, 0};
  explicit GhashPortable(const uint8_t* hkey) : h{load_be64(hkey), load_be64(hkey + 8)} {}
  // Whole blocks, the last zero-padded.
  void update(const uint8_t* p, u64 n) {
    for (u64 off = 0; off < n; off += 16) {
      uint8_t b[16] = {};
      std::memcpy(b, p + off, n - off < 16 ? n - off : 16);
      y.hi ^= load_be64(b);
      y.lo ^= load_be64(b + 8);
      y = gf128_mul(y, h);
    }
  }
  void digest(uint8_t* out) const {
    store_be64(out, y.hi);
    store_be64(out + 8, y.lo);
  }
};

// ------------------------------------------------------ PCLMULQDQ GHASH
//
// Blocks are byte-reversed into registers, so that the standard's bit 0 is
// the register's bit 127: carry-less products then come out reflected and one
// bit short, which a shift left by one restores, and reduction modulo
// x^128 + x^7 + x^2 + x + 1 works on the low half (the reflected polynomial).

struct Wide {
  __m128i lo, hi;
};

__attribute__((target("pclmul,sse4.1"))) inline Wide clmul_wide(__m128i a, __m128i b) {
  const __m128i lo = _mm_clmulepi64_si128(a, b, 0x00), hi = _mm_clmulepi64_si128(a, b, 0x11);
  const __m128i mid = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01), _mm_clmulepi64_si128(a, b, 0x10));
  return {_mm_xor_si128(lo, _mm_slli_si128(mid, 8)), _mm_xor_si128(hi, _mm_srli_si128(mid, 8))};
}

__attribute__((target("pclmul,sse4.1"))) inline __m128i reduce(Wide w) {
  // [hi:lo] <<= 1 across the 256 bits.
  const __m128i lo_c = _mm_srli_epi64(w.lo, 63), hi_c = _mm_srli_epi64(w.hi, 63);
  __m128i lo = _mm_or_si128(_mm_slli_epi64(w.lo, 1), _mm_slli_si128(lo_c, 8));
  const __m128i hi =
      _mm_or_si128(_mm_or_si128(_mm_slli_epi64(w.hi, 1), _mm_slli_si128(hi_c, 8)), _mm_srli_si128(lo_c, 8));
  // Fold the low 64 bits into the next 64 (x^63, x^62, x^57 terms of the reflected polynomial) ...
  const __m128i t = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi64(lo, 63), _mm_slli_epi64(lo, 62)),
                                  _mm_slli_epi64(lo, 57));
  lo = _mm_xor_si128(lo, _mm_slli_si128(t, 8));
  // ... then the low 128 bits into the high half (shifts right by 1, 2 and 7 across the 128 bits).
  auto shr128 = [](__m128i v, int k) {
    return _mm_or_si128(_mm_srli_epi64(v, k), _mm_srli_si128(_mm_slli_epi64(v, 64 - k), 8));
  };
  const __m128i folded = _mm_xor_si128(_mm_xor_si128(lo, shr128(lo, 1)), _mm_xor_si128(shr128(lo, 2), shr128(lo, 7)));
  return _mm_xor_si128(hi, folded);
}

// Eight blocks per reduction: the products of C1..C8 with H^8..H^1 are
// independent and pipeline, and only the one reduction sits on the chain
// from one group of blocks to the next.
constexpr int kFold = 8;

struct GhashClmul {
  __m128i reverse, h[kFold], y;  // h[k] = H^(k+1)

  __attribute__((target("pclmul,sse4.1"))) explicit GhashClmul(const uint8_t* hkey) {
    reverse = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    h[0] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(hkey)), reverse);
    for (int k = 1; k < kFold; k++) h[k] = reduce(clmul_wide(h[k - 1], h[0]));
    y = _mm_setzero_si128();
  }

  __attribute__((target("pclmul,sse4.1"))) __m128i load(const uint8_t* p, u64 n) const {
    if (n >= 16) return _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), reverse);
    uint8_t b[16] = {};
    std::memcpy(b, p, n);
    return _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), reverse);
  }

  // Y <- (Y + C1) H^8 + C2 H^7 + ... + C8 H, which is eight steps of Y <- (Y + C) H.
  __attribute__((target("pclmul,sse4.1"))) void update(const uint8_t* p, u64 n) {
    u64 off = has_vpclmul() ? update_wide(p, n) : 0;
    for (; off + 16 * kFold <= n; off += 16 * kFold) {
      Wide acc = clmul_wide(_mm_xor_si128(y, load(p + off, 16)), h[kFold - 1]);
      for (int k = 1; k < kFold; k++) {
        const Wide w = clmul_wide(load(p + off + 16 * k, 16), h[kFold - 1 - k]);
        acc.lo = _mm_xor_si128(acc.lo, w.lo);
        acc.hi = _mm_xor_si128(acc.hi, w.hi);
      }
      y = reduce(acc);
    }
    for (; off < n; off += 16) y = reduce(clmul_wide(_mm_xor_si128(y, load(p + off, n - off)), h[0]));
  }

  // The same eight-block step with VPCLMULQDQ, two blocks per instruction; returns the bytes it consumed.
  __attribute__((target("vpclmulqdq,avx2,pclmul,sse4.1"))) u64 update_wide(const uint8_t* p, u64 n) {
    const __m256i rev = _mm256_broadcastsi128_si256(reverse);
    __m256i pw[4];  // [H^8, H^7], [H^6, H^5], [H^4, H^3], [H^2, H^1]: block k of a group meets H^(8-k)
    for (int i = 0; i < 4; i++) pw[i] = _mm256_set_m128i(h[kFold - 2 - 2 * i], h[kFold - 1 - 2 * i]);
    u64 off = 0;
    for (; off + 16 * kFold <= n; off += 16 * kFold) {
      __m256i lo = _mm256_setzero_si256(), hi = lo, mid = lo;
      for (int i = 0; i < 4; i++) {
        __m256i d = _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + off + 32 * i)), rev);
        if (i == 0) d = _mm256_xor_si256(d, _mm256_set_m128i(_mm_setzero_si128(), y));
        lo = _mm256_xor_si256(lo, _mm256_clmulepi64_epi128(d, pw[i], 0x00));
        hi = _mm256_xor_si256(hi, _mm256_clmulepi64_epi128(d, pw[i], 0x11));
        mid = _mm256_xor_si256(mid, _mm256_xor_si256(_mm256_clmulepi64_epi128(d, pw[i], 0x01),
                                                     _mm256_clmulepi64_epi128(d, pw[i], 0x10)));
      }
      // the two lanes' sums add up (the products are linear in the blocks)
      const __m128i l = _mm_xor_si128(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1));
      const __m128i m = _mm_xor_si128(_mm256_castsi256_si128(mid), _mm256_extracti128_si256(mid, 1));
      const __m128i u = _mm_xor_si128(_mm256_castsi256_si128(hi), _mm256_extracti128_si256(hi, 1));
      y = reduce({_mm_xor_si128(l, _mm_slli_si128(m, 8)), _mm_xor_si128(u, _mm_srli_si128(m, 8))});
    }
    return off;
  }

  __attribute__((target("pclmul,sse4.1"))) void digest(uint8_t* out) const {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_shuffle_epi8(y, reverse));
  }
};

// The AES-128 key schedule by AESKEYGENASSIST: as constant-time as the
// bitsliced one, and some hundred times faster, which matters for a
// frame of a few bytes.
template <int Rcon>
__attribute__((target("aes,sse4.1"))) inline __m128i expand_step(__m128i k) {
  const __m128i t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(k, Rcon), 0xff);
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
  return _mm_xor_si128(k, t);
}

__attribute__((target("aes,sse4.1"))) void expand_key_aesni(const uint8_t* key, uint8_t (*rk)[16]) {
  __m128i k[11];
  k[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
  k[1] = expand_step<0x01>(k[0]);
  k[2] = expand_step<0x02>(k[1]);
  k[3] = expand_step<0x04>(k[2]);
  k[4] = expand_step<0x08>(k[3]);
  k[5] = expand_step<0x10>(k[4]);
  k[6] = expand_step<0x20>(k[5]);
  k[7] = expand_step<0x40>(k[6]);
  k[8] = expand_step<0x80>(k[7]);
  k[9] = expand_step<0x1b>(k[8]);
  k[10] = expand_step<0x36>(k[9]);
  for (int r = 0; r < 11; r++) _mm_storeu_si128(reinterpret_cast<__m128i*>(rk[r]), k[r]);
}

// out = in ^ ks, sixteen bytes at a time where it can.
__attribute__((target("sse2"))) inline void xor_into(uint8_t* out, const uint8_t* in, const uint8_t* ks, u64 n) {
  u64 i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ks + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm_xor_si128(a, b));
  }
  for (; i < n; i++) out[i] = in[i] ^ ks[i];
}

// ------------------------------------------------------ GCM

template <class Ghash>
int gcm(bool hardware, bool seal, const uint8_t* key, const uint8_t* iv, const uint8_t* aad, u64 aad_len,
        const uint8_t* in, uint8_t* out, u64 len, uint8_t* tag) {
  uint8_t rk[11][16];
  if (hardware) expand_key_aesni(key, rk);
  else aes128_expand_key(key, rk);
  uint8_t hkey[16], ekj0[16];
  aes128_blocks(rk, hardware, 0, 0, 1, hkey);  // H = E_K(0^128)
  // J0 = iv || 0^31 1; the data's counter blocks are J0 + 1, J0 + 2, ... Frames
  // are capped below 2^32 blocks, so the 64-bit increment never carries past
  // the standard's 32-bit counter field.
  const u64 hi = load_be64(iv), lo = u64(iv[8]) << 56 | u64(iv[9]) << 48 | u64(iv[10]) << 40 | u64(iv[11]) << 32 | 1;
  aes128_blocks(rk, hardware, hi, lo, 1, ekj0);

  Ghash g(hkey);
  g.update(aad, aad_len);
  alignas(16) uint8_t ks[16 * kChunkBlocks];
  for (u64 off = 0, block = 1; off < len; off += sizeof ks, block += kChunkBlocks) {
    const u64 n = len - off < sizeof ks ? len - off : sizeof ks;
    aes128_blocks(rk, hardware, hi, lo + block, (n + 15) / 16, ks);
    if (!seal) g.update(in + off, n);
    xor_into(out + off, in + off, ks, n);
    if (seal) g.update(out + off, n);
  }
  uint8_t lengths[16];
  store_be64(lengths, aad_len * 8);
  store_be64(lengths + 8, len * 8);
  g.update(lengths, 16);
  uint8_t s[16];
  g.digest(s);
  for (int i = 0; i < 16; i++) s[i] ^= ekj0[i];
  if (seal) {
    std::memcpy(tag, s, 16);
    return CG_OK;
  }
  uint8_t diff = 0;  // compared in constant time
  for (int i = 0; i < 16; i++) diff |= uint8_t(s[i] ^ tag[i]);
  if (diff != 0) {
    std::memset(out, 0, len);  // a forged frame's plaintext is never left for the caller
    return CG_EAUTH;
  }
  return CG_OK;
}

int gcm_entry(bool seal, const uint8_t* key, const uint8_t* iv, const uint8_t* aad, u64 aad_len, const uint8_t* in,
              uint8_t* out, u64 len, uint8_t* tag, int32_t impl) {
  if (!key || !iv || !tag || (aad_len && !aad) || (len && (!in || !out))) return CG_ENULL;
  if (len > kGcmMaxBytes || aad_len > kGcmMaxBytes) return CG_EINVAL;
  const bool fast = has_aesni() && has_pclmul();
  if (impl == CG_AES_NI && !fast) return CG_EUNSUPPORTED;
  if (impl != CG_AES_AUTO && impl != CG_AES_NI && impl != CG_AES_PORTABLE) return CG_EINVAL;
  if (impl != CG_AES_PORTABLE && fast) return gcm<GhashClmul>(true, seal, key, iv, aad, aad_len, in, out, len, tag);
  return gcm<GhashPortable>(false, seal, key, iv, aad, aad_len, in, out, len, tag);
}

}  // namespace
}  // namespace cg

extern "C" {

int cg_gcm_seal(const uint8_t* key, const uint8_t* iv, const uint8_t* aad, uint64_t aad_len, const uint8_t* in,
                uint8_t* out, uint64_t len, uint8_t* tag, int32_t impl) {
  return cg::gcm_entry(true, key, iv, aad, aad_len, in, out, len, tag, impl);
}

int cg_gcm_open(const uint8_t* key, const uint8_t* iv, const uint8_t* aad, uint64_t aad_len, const uint8_t* in,
                uint8_t* out, uint64_t len, const uint8_t* tag, int32_t impl) {
  return cg::gcm_entry(false, key, iv, aad, aad_len, in, out, len, const_cast<uint8_t*>(tag), impl);
}
}
