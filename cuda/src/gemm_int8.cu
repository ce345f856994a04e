// CG_METHOD_INT8: 8-bit limbs on the int8 tensor cores (see gemm_int8.cuh for
// the arithmetic and the packed layout). Two steps per product: split each
// operand into byte planes in fragment order, then a 128 x 128-tile kernel
// streams 32-deep slices of both through shared memory with cp.async and
// runs the 36 byte products of each slice on mma.sync.
#include "gemm.cuh"
#include "gemm_int8.cuh"

namespace cg {
namespace {

using namespace int8;

// Scratch for the packed operands of one group of batch entries.
constexpr u64 kScratchBytes = u64(512) << 20;

// A thread per item of split_item.
__global__ void split_kernel(Split s) {
  const u64 total = s.entries * s.xp * (s.kp / 4);
  for (u64 t = thread_index(); t < total; t += thread_count())
    split_item(s, t);
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// d += a . b for one 16 x 8 x 32 tile, u8 operands, s32 accumulators.
__device__ __forceinline__ void mma_u8(u32 (&d)[4], const uint4& a, u32 b0, u32 b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.s32.u8.u8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
}

// acc += d w, and acc += (d w) 2^32 (mod 2^64).
__device__ __forceinline__ void add_low(u64& acc, u32 d, u32 w) {
  asm("mad.wide.u32 %0, %1, %2, %0;\n" : "+l"(acc) : "r"(d), "r"(w));
}
__device__ __forceinline__ void add_high(u64& acc, u32 d, u32 w) {
  asm("{\n .reg .u32 lo, hi;\n mov.b64 {lo, hi}, %0;\n mad.lo.u32 hi, %1, %2, hi;\n mov.b64 %0, {lo, hi};\n}\n"
      : "+l"(acc)
      : "r"(d), "r"(w));
}

// Packed operands pa (a_blocks row blocks) and pb (b_blocks column blocks),
// `slices` slices deep, one entry per blockIdx.z. kStages = 2 overlaps the
// loads of the next slice with the products of this one.
template <int kStages>
__global__ void __launch_bounds__(kThreads, 1)
    int8_kernel(const uint8_t* pa, u64 pa_stride, const uint8_t* pb, u64 pb_stride, u64* c, u64 c_stride, u64 m,
                u64 n, u64 a_blocks, u64 b_blocks, u64 slices, bool accumulate, u64 y0, u64 z0) {
  extern __shared__ uint4 smem[];  // per stage: A, then B, 2048 x 16 bytes each
  constexpr unsigned kChunks = kStageBytes / 16;
  const u64 mb = blockIdx.y + y0, nb = blockIdx.x, e = blockIdx.z + z0;
  const uint8_t* ga = pa + e * pa_stride + mb * kStageBytes;
  const uint8_t* gb = pb + e * pb_stride + nb * kStageBytes;
  const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32, wm = warp / kWarpsN, wn = warp % kWarpsN;

  auto load = [&](u64 slice, unsigned buf) {
    uint4* sa = smem + buf * 2 * kChunks;
    uint4* sb = sa + kChunks;
    const uint8_t* a = ga + slice * a_blocks * kStageBytes;
    const uint8_t* b = gb + slice * b_blocks * kStageBytes;
    for (unsigned q = tid; q < kChunks; q += kThreads) {
      cp_async16(sa + q, a + 16 * u64(q));
      cp_async16(sb + q, b + 16 * u64(q));
    }
    cp_async_commit();
  };

  u64 acc[kMi][kNj][4] = {};
  load(0, 0);
  for (u64 slice = 0; slice < slices; slice++) {
    const unsigned buf = kStages == 2 ? unsigned(slice & 1) : 0;
    if (kStages == 2 && slice + 1 < slices) {
      load(slice + 1, buf ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const uint4* sa = smem + buf * 2 * kChunks;
    const uint4* sb = sa + kChunks;
#pragma unroll 1
    for (unsigned s = 0; s < 8; s++) {
      // The products with i + j = s, summed exactly in s32, then shifted in.
      u32 d[kMi][kNj][4] = {};
#pragma unroll 1
      for (unsigned i = 0; i <= s; i++) {
        const unsigned j = s - i;
        uint4 fa[kMi], fb[kNj / 2];
#pragma unroll
        for (unsigned mi = 0; mi < kMi; mi++) fa[mi] = sa[a_fragment(i, wm, mi, lane)];
#pragma unroll
        for (unsigned nj2 = 0; nj2 < kNj / 2; nj2++) fb[nj2] = sb[b_fragment(j, wn, nj2, lane)];
#pragma unroll
        for (unsigned mi = 0; mi < kMi; mi++) {
#pragma unroll
          for (unsigned nj = 0; nj < kNj; nj++) {
            const uint4& f = fb[nj / 2];
            if (nj % 2 == 0)
              mma_u8(d[mi][nj], fa[mi], f.x, f.y);
            else
              mma_u8(d[mi][nj], fa[mi], f.z, f.w);
          }
        }
      }
      // acc += d 2^(8 s): one wide multiply-add while the weight fits 32
      // bits, else one multiply-add on the high word.
      const u32 weight = s < 4 ? 1u << (8 * s) : 1u << (8 * s - 32);
#pragma unroll
      for (unsigned mi = 0; mi < kMi; mi++)
#pragma unroll
        for (unsigned nj = 0; nj < kNj; nj++)
#pragma unroll
          for (unsigned r = 0; r < 4; r++) {
            if (s < 4)
              add_low(acc[mi][nj][r], d[mi][nj][r], weight);
            else
              add_high(acc[mi][nj][r], d[mi][nj][r], weight);
          }
    }
    __syncthreads();  // every warp is done with this buffer before it is refilled
    if (kStages == 1 && slice + 1 < slices) load(slice + 1, 0);
  }

  u64* ce = c + e * c_stride;
  const u64 row0 = mb * kTile, col0 = u64(nb) * kTile;
#pragma unroll
  for (unsigned mi = 0; mi < kMi; mi++)
#pragma unroll
    for (unsigned nj = 0; nj < kNj; nj++)
#pragma unroll
      for (unsigned r = 0; r < 4; r++) {
        unsigned row, col;
        acc_position(wm, wn, lane, mi, nj, r, row, col);
        const u64 i = row0 + row, j = col0 + col;
        if (i < m && j < n) ce[i * n + j] = accumulate ? ce[i * n + j] + acc[mi][nj][r] : acc[mi][nj][r];
      }
}

void split(cg_ctx* ctx, const Split& s) {
  const u64 items = s.entries * s.xp * (s.kp / 4);
  split_kernel<<<grid_for(ctx, items, 256), 256, 0, ctx->stream>>>(s);
  check_launch("cg_matmul (int8 split)");
}

}  // namespace

void gemm_int8(cg_ctx* ctx, const Product& g) {
  const u64 mp = round_up(g.m, kTile), np = round_up(g.n, kTile), kp = round_up(g.k, kSlice);
  const u64 a_blocks = mp / kTile, b_blocks = np / kTile, slices = kp / kSlice;
  const u64 a_bytes = mp * kp * kPlanes, b_bytes = np * kp * kPlanes;  // one packed entry each

  // Entries go in groups whose packed operands fit the scratch budget; a
  // broadcast operand is packed once for all of them.
  const u64 per_entry = (g.sa ? a_bytes : 0) + (g.sb ? b_bytes : 0);
  const u64 fixed = (g.sa ? 0 : a_bytes) + (g.sb ? 0 : b_bytes);
  const u64 room = kScratchBytes > fixed ? kScratchBytes - fixed : 0;
  const u64 group = per_entry ? min_u64(g.batch, max_u64(1, room / per_entry)) : g.batch;
  Scratch packed_a(ctx, (g.sa ? group : 1) * a_bytes, "cg_matmul (int8)");
  Scratch packed_b(ctx, (g.sb ? group : 1) * b_bytes, "cg_matmul (int8)");
  Split sa{g.a, g.sa, g.ta ? 1 : g.k, g.ta ? g.m : 1, packed_a.as<uint8_t>(), a_bytes, 1, g.m, mp, g.k, kp, a_blocks,
           false};
  Split sb{g.b, g.sb, g.tb ? g.k : 1, g.tb ? 1 : g.n, packed_b.as<uint8_t>(), b_bytes, 1, g.n, np, g.k, kp, b_blocks,
           true};
  if (!g.sa) split(ctx, sa);
  if (!g.sb) split(ctx, sb);

  const bool two_stages = ctx->smem_optin >= 4 * kStageBytes;
  const unsigned smem = (two_stages ? 4 : 2) * kStageBytes;
  auto kernel = two_stages ? int8_kernel<2> : int8_kernel<1>;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "cg_matmul (int8)");
  for (u64 e0 = 0; e0 < g.batch; e0 += group) {
    const u64 ne = min_u64(group, g.batch - e0);
    if (g.sa) {
      Split s = sa;
      s.src = g.a + e0 * g.sa;
      s.entries = ne;
      split(ctx, s);
    }
    if (g.sb) {
      Split s = sb;
      s.src = g.b + e0 * g.sb;
      s.entries = ne;
      split(ctx, s);
    }
    for_each_grid(b_blocks, a_blocks, ne, [&](dim3 grid, u64 y0, u64 z0) {
      kernel<<<grid, kThreads, smem, ctx->stream>>>(packed_a.as<uint8_t>(), g.sa ? a_bytes : 0,
                                                     packed_b.as<uint8_t>(), g.sb ? b_bytes : 0, g.c + e0 * g.sc, g.sc,
                                                     g.m, g.n, a_blocks, b_blocks, slices, g.accumulate, y0, z0);
      check_launch("cg_matmul (int8)");
    });
  }
}

}  // namespace cg
