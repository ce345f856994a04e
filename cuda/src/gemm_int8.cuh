// Layout of the INT8 method, shared by its kernels and the host-side checks.
//
// A word is eight unsigned bytes (plane p holds byte p), and
// a . b = sum over i + j <= 7 of 2^(8 (i + j)) a_i b_j mod 2^64: 36 byte
// products, computed by mma.sync m16n8k32 with u8 operands and s32
// accumulation. A block computes a 128 x 128 tile of the output; for each
// 32-wide slice of the reduction and each shift s it sums the products with
// i + j = s in s32, at most 8 * 32 * 255^2 < 2^24, then adds that sum times
// 2^(8 s) to a 64-bit accumulator. Every s32 sum is exact, whatever k is.
//
// Before the product, each operand is split into its byte planes, zero
// padded to whole tiles and stored in the order the fragments are read: for
// every 32-wide k slice and 128-row block, the 8 planes, each as eight
// 16 x 32 tiles (A) or 32 x 16 tiles (B) of 512 bytes, each tile as 32 lanes
// of 16 bytes, exactly the registers that lane passes to mma.sync. A block's
// stage of the pipeline is then one contiguous 32 KiB per operand, and a warp
// reads a fragment as 512 contiguous bytes.
//
// Fragment layout of mma.m16n8k32 with 8-bit operands (PTX ISA), lane =
// 4 g + t: A register 0 holds row g, columns 4t..4t+3; register 1 row g + 8,
// the same columns; registers 2 and 3 the same rows at columns 16 + 4t..
// 16 + 4t + 3. B register 0 holds rows (k) 4t..4t+3 of column g, register 1
// rows 16 + 4t..16 + 4t + 3. Accumulator registers 0 and 1 hold row g,
// columns 2t and 2t + 1; registers 2 and 3 row g + 8. Byte b of a register is
// the element at offset b.
#pragma once

#include "common.cuh"

namespace cg {
namespace int8 {

constexpr unsigned kTile = 128;        // output rows and columns per block
constexpr unsigned kSlice = 32;        // reduction length per pipeline stage
constexpr unsigned kPlanes = 8;
constexpr unsigned kStageBytes = kPlanes * kTile * kSlice;  // one operand's stage: 32 KiB

// Byte offset, in a packed operand with `blocks` 128-row (A) or 128-column
// (B) blocks, of the 4-byte group holding reduction indices kk..kk+3 (kk a
// multiple of 4) of row (A) or column (B) `x`, in plane p.
CG_HD u64 packed_a_offset(u64 x, u64 kk, unsigned p, u64 blocks) {
  const u64 slice = kk / kSlice, block = x / kTile;
  const unsigned row = unsigned(x % kTile), k = unsigned(kk % kSlice);
  const unsigned tile = row / 16, g = row % 8, upper = (row % 16) / 8, t = (k % 16) / 4, half = k / 16;
  const unsigned lane = 4 * g + t, reg = 2 * half + upper;
  return ((slice * blocks + block) * kPlanes + p) * (kTile * kSlice) + tile * 512 + lane * 16 + reg * 4;
}

CG_HD u64 packed_b_offset(u64 x, u64 kk, unsigned p, u64 blocks) {
  const u64 slice = kk / kSlice, block = x / kTile;
  const unsigned col = unsigned(x % kTile), k = unsigned(kk % kSlice);
  const unsigned tile = col / 16, n8 = (col % 16) / 8, g = col % 8, t = (k % 16) / 4, half = k / 16;
  const unsigned lane = 4 * g + t, reg = 2 * n8 + half;
  return ((slice * blocks + block) * kPlanes + p) * (kTile * kSlice) + tile * 512 + lane * 16 + reg * 4;
}

// Byte p of four words, element e at byte e.
CG_HD u32 byte_plane(const u64 v[4], unsigned p) {
  u32 r = 0;
  for (unsigned e = 0; e < 4; e++) r |= u32((v[e] >> (8 * p)) & 0xff) << (8 * e);
  return r;
}

// Warps of a block: 2 along the rows x 4 along the columns, each owning a
// 64 x 32 part of the tile: 4 row tiles (16) x 4 column tiles (8).
constexpr unsigned kWarpsM = 2, kWarpsN = 4, kThreads = 32 * kWarpsM * kWarpsN;
constexpr unsigned kWarpRows = kTile / kWarpsM, kWarpCols = kTile / kWarpsN;
constexpr unsigned kMi = kWarpRows / 16, kNj = kWarpCols / 8;

// Position within the block tile of accumulator register r of (row tile mi,
// column tile nj) held by `lane` of warp (wm, wn).
CG_HD void acc_position(unsigned wm, unsigned wn, unsigned lane, unsigned mi, unsigned nj, unsigned r, unsigned& row,
                        unsigned& col) {
  row = wm * kWarpRows + mi * 16 + lane / 4 + (r >= 2 ? 8 : 0);
  col = wn * kWarpCols + nj * 8 + 2 * (lane % 4) + (r & 1);
}

// Index, in 16-byte units within a stage, of the A fragment of plane p, row
// tile mi of warp row wm, and of the B fragment pair (column tiles 2 nj2 and
// 2 nj2 + 1) of warp column wn.
CG_HD unsigned a_fragment(unsigned p, unsigned wm, unsigned mi, unsigned lane) {
  return (p * (kTile / 16) + wm * kMi + mi) * 32 + lane;
}
CG_HD unsigned b_fragment(unsigned p, unsigned wn, unsigned nj2, unsigned lane) {
  return (p * (kTile / 16) + wn * (kNj / 2) + nj2) * 32 + lane;
}

// Splitting one operand: entry e of `entries`, element (x, p) at
// src[e * src_stride + x * sx + p * sp], x < xs valid of xp padded, p < k
// valid of kp padded, packed into `blocks` blocks per slice.
struct Split {
  const u64* src;
  u64 src_stride, sx, sp;
  uint8_t* dst;
  u64 dst_stride;  // bytes
  u64 entries, xs, xp, k, kp, blocks;
  bool is_b;
};

// Item t of entries * xp * kp / 4: one x and four consecutive reduction
// indices, written as a 4-byte group to each plane. Consecutive items take
// consecutive groups or consecutive x, whichever is contiguous in memory.
CG_HD void split_item(const Split& s, u64 t) {
  const u64 groups = s.kp / 4, per = s.xp * groups;
  const bool k_fastest = s.sp == 1;
  const u64 e = t / per, r = t % per;
  const u64 x = k_fastest ? r / groups : r % s.xp, kk = 4 * (k_fastest ? r % groups : r / s.xp);
  const u64* src = s.src + e * s.src_stride;
  u64 v[4];
  for (int b = 0; b < 4; b++) v[b] = x < s.xs && kk + b < s.k ? src[x * s.sx + (kk + b) * s.sp] : 0;
  uint8_t* dst = s.dst + e * s.dst_stride;
  for (unsigned p = 0; p < kPlanes; p++) {
    const u64 off = s.is_b ? packed_b_offset(x, kk, p, s.blocks) : packed_a_offset(x, kk, p, s.blocks);
    *reinterpret_cast<u32*>(dst + off) = byte_plane(v, p);
  }
}

}  // namespace int8
}  // namespace cg
