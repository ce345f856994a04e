/*
 * cryptgpu native library: the one C ABI.
 *
 * Every operation works on tensors of the ring Z_2^64 held in memory the library
 * owns (host memory in libcryptgpu_cpu.so, device memory in libcryptgpu_cuda.so).
 * Callers hold opaque 64-bit buffer handles; a handle that was freed, belongs to
 * another context or was never issued is refused with CG_EHANDLE, never
 * dereferenced. All arithmetic wraps mod 2^64 and is exact: both builds give the
 * same words, bit for bit.
 *
 * Conventions
 * - Every function returns a cg_status; on failure cg_last_error(ctx) holds a
 *   one-line message naming the function and the cause.
 * - Sizes and offsets are counted in 64-bit words. A buffer holds a flat array of
 *   words; shapes are the caller's business and are passed per call.
 * - Work is ordered per context. The CPU build completes each call before
 *   returning; the CUDA build may queue it on the context's stream. cg_sync waits
 *   for everything queued; downloads wait implicitly.
 * - A context may be used from any thread, one call at a time (calls are
 *   serialised on the context's lock). No state lives in thread-local storage.
 * - Outputs may alias inputs only where a function says so.
 */
#ifndef CRYPTGPU_H
#define CRYPTGPU_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CG_ABI_VERSION 3
#define CG_MAX_DIMS 8

typedef struct cg_ctx cg_ctx;
typedef uint64_t cg_buf; /* 0 is never a valid handle */

typedef enum cg_status {
  CG_OK = 0,
  CG_EINVAL = 1,       /* an argument is out of range or shapes disagree */
  CG_EHANDLE = 2,      /* freed, foreign or unknown buffer handle */
  CG_ENOMEM = 3,       /* allocation failed */
  CG_ENULL = 4,        /* a required pointer is NULL */
  CG_EDEVICE = 5,      /* the device failed or is absent */
  CG_ERANGE = 6,       /* a value does not fit (fixed-point encoding) */
  CG_EUNSUPPORTED = 7, /* not available in this build or on this machine */
  CG_EINTERNAL = 8,
  CG_EAUTH = 9 /* an authenticated ciphertext failed its check (cg_gcm_open) */
} cg_status;

/* ---------------------------------------------------------------- library */

/* A static JSON object describing the build:
 * {"abi":1,"backend":"cpu","version":"...","compiler":"...","features":{...}} */
const char* cg_build_info(void);

/* Devices this build can run on (the CPU build reports one: the host). */
int cg_device_count(int32_t* out);
/* JSON description of device i written to buf (NUL-terminated, truncated to len). */
int cg_device_info(int32_t device, char* buf, uint64_t len);

/* ---------------------------------------------------------------- context */

/* threads <= 0 means every core present; device selects the GPU (CPU build: 0). */
int cg_ctx_create(int32_t device, int32_t threads, cg_ctx** out);
int cg_ctx_destroy(cg_ctx* ctx); /* frees every buffer the context still owns */
/* The message of the last failed call on ctx ("" if none). Valid until the next
 * call on ctx. With ctx == NULL: the message of the last failed cg_ctx_create. */
const char* cg_last_error(const cg_ctx* ctx);
int cg_sync(cg_ctx* ctx);
/* Live buffers and the words they hold: tests use these to prove nothing leaks. */
int cg_live_buffers(const cg_ctx* ctx, uint64_t* count, uint64_t* words);
int cg_ctx_threads(const cg_ctx* ctx, int32_t* out);
/* Maps and touches `bytes` of the memory the context's buffers come from, so
 * that the first buffers of a run take no page faults (the CPU build: an arena
 * of host pages, 2 MiB pages where the kernel allows them, that allocations
 * draw from before the heap; the CUDA build: kept in its stream-ordered pool).
 * Once per context; at most CG_RESERVE_MAX bytes (CG_EINVAL); 0 does nothing. */
#define CG_RESERVE_MAX (UINT64_C(1) << 30)
int cg_reserve(cg_ctx* ctx, uint64_t bytes);

/* ----------------------------------------------------------------- memory */

int cg_alloc(cg_ctx* ctx, uint64_t words, cg_buf* out); /* contents undefined */
int cg_free(cg_ctx* ctx, cg_buf buf);
/* A new handle on words [off, off + words) of buf, sharing its memory (a
 * contiguous slice without a copy): writing either writes both. The memory
 * stays until buf and all its views are freed. Kernels may read views of one
 * buffer together; an output must not overlap an input. */
int cg_view(cg_ctx* ctx, cg_buf buf, uint64_t off, uint64_t words, cg_buf* out);
int cg_buf_words(cg_ctx* ctx, cg_buf buf, uint64_t* out);
int cg_upload(cg_ctx* ctx, cg_buf dst, uint64_t dst_off, const void* host, uint64_t words);
int cg_download(cg_ctx* ctx, cg_buf src, uint64_t src_off, void* host, uint64_t words);
/* dst[dst_off + i] = src[src_off + i]; the ranges may overlap only if dst == src
 * and dst_off == src_off. */
int cg_copy(cg_ctx* ctx, cg_buf dst, uint64_t dst_off, cg_buf src, uint64_t src_off, uint64_t words);
int cg_fill(cg_ctx* ctx, cg_buf dst, uint64_t dst_off, uint64_t words, uint64_t value);
/* Host address of a buffer's words, for zero-copy network I/O; CG_EUNSUPPORTED
 * where the memory is not host-addressable (CUDA build). */
int cg_host_pointer(cg_ctx* ctx, cg_buf buf, void** out);

/* ------------------------------------------------------------ elementwise */

typedef enum cg_binop {
  CG_ADD = 0,
  CG_SUB = 1,
  CG_MUL = 2,
  CG_XOR = 3,
  CG_AND = 4,
  CG_OR = 5,
  CG_RSUB = 6 /* b - a */
} cg_binop;

/* out[i] = a[i] op b[(i / inner) % nb], i < n, with nb * inner dividing n.
 * nb = n, inner = 1: same shape. nb = 1: a scalar held in a buffer.
 * [R, C] with a row [C]: nb = C, inner = 1. With a column [R, 1]: nb = R,
 * inner = C. NCHW with a per-channel [C]: nb = C, inner = H * W.
 * out may alias a or b. */
int cg_binary(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, cg_buf b, uint64_t n, uint64_t nb,
              uint64_t inner);
/* out[i] = a[i] op s (public scalar). out may alias a. */
int cg_scalar(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, uint64_t s, uint64_t n);

typedef enum cg_unop {
  CG_NEG = 0, /* -a mod 2^64 */
  CG_NOT = 1, /* ~a */
  CG_SHL = 2, /* a << k, k in [0, 63] */
  CG_SHR = 3, /* logical a >> k */
  CG_SAR = 4, /* arithmetic a >> k (a read as int64) */
  CG_BIT = 5  /* (a >> k) & 1 */
} cg_unop;

int cg_unary(cg_ctx* ctx, int32_t op, cg_buf out, cg_buf a, uint64_t n, uint32_t k);

/* The local half of a replicated product, elementwise and fused (one pass
 * instead of six), for a party holding shares (x0, x1) and (y0, y1) and the
 * two PRF draws r0 (own key) and r1 (previous party's key) of a zero-share:
 *   CG_PRODUCT_RING: out = x0 * (y0 + y1) + x1 * y0 + (r0 - r1)   mod 2^64
 *   CG_PRODUCT_BITS: out = (x0 & (y0 ^ y1)) ^ (x1 & y0) ^ (r0 ^ r1)
 * All operands hold n words; out may alias any of them. */
typedef enum cg_product_kind { CG_PRODUCT_RING = 0, CG_PRODUCT_BITS = 1 } cg_product_kind;

int cg_replicated_product(cg_ctx* ctx, int32_t kind, cg_buf out, cg_buf x0, cg_buf x1, cg_buf y0, cg_buf y1,
                          cg_buf r0, cg_buf r1, uint64_t n);

/* ----------------------------------------------------------------- layout */

/* For every index vector idx < shape (ndim <= CG_MAX_DIMS):
 *   dst[dst_off + sum idx[d] * dst_strides[d]] = src[src_off + sum idx[d] * src_strides[d]].
 * Strides are in words and may be zero (broadcast reads) or negative; every
 * address touched must lie inside its buffer. Permute, slice, concat and pad
 * are this copy with the right strides and offsets. dst and src must not overlap. */
int cg_copy_strided(cg_ctx* ctx, cg_buf dst, uint64_t dst_off, const int64_t* dst_strides, cg_buf src,
                    uint64_t src_off, const int64_t* src_strides, const uint64_t* shape, uint32_t ndim);

/* out[o, i] = sum_j in[o, j, i] for in viewed as [outer, d, inner]. */
int cg_sum_axis(cg_ctx* ctx, cg_buf out, cg_buf in, uint64_t outer, uint64_t d, uint64_t inner);

/* Geometry of a 2-D convolution or pooling window, NCHW. Passed by pointer;
 * the TypeScript side packs it as a BigInt64Array of 14 entries in this order. */
typedef struct cg_conv2d {
  int64_t n, c, h, w; /* input batch, channels, height, width */
  int64_t oc;         /* output channels (pooling: must equal c) */
  int64_t kh, kw;     /* window */
  int64_t sh, sw;     /* stride */
  int64_t ph, pw;     /* zero padding on each side */
  int64_t dh, dw;     /* dilation */
  int64_t groups;     /* convolution groups (pooling: ignored) */
} cg_conv2d;
/* Output size: oh = (h + 2 ph - dh (kh - 1) - 1) / sh + 1, likewise ow. */

/* Windows gathered into columns: in [n, c, h, w] -> out [n, c*kh*kw, oh*ow],
 * row index (ci * kh + ki) * kw + kj, padding read as 0. */
int cg_im2col(cg_ctx* ctx, cg_buf out, cg_buf in, const cg_conv2d* g);
/* The adjoint: in [n, c*kh*kw, oh*ow] summed back into out [n, c, h, w]. */
int cg_col2im(cg_ctx* ctx, cg_buf out, cg_buf in, const cg_conv2d* g);

/* --------------------------------------------------------------- bilinear */

typedef enum cg_mm_flags {
  CG_TRANS_A = 1,    /* A stored [k, m] per batch */
  CG_TRANS_B = 2,    /* B stored [n, k] per batch */
  CG_BCAST_A = 4,    /* one A for every batch entry */
  CG_BCAST_B = 8,    /* one B for every batch entry */
  CG_ACCUMULATE = 16 /* out += product instead of out = product */
} cg_mm_flags;

/* How a bilinear product is computed; every method gives the same words. */
typedef enum cg_method {
  CG_METHOD_AUTO = 0,    /* fastest exact method for the shape */
  CG_METHOD_NAIVE = 1,   /* reference: plain i-k-j loop, one thread */
  CG_METHOD_DIRECT = 2,  /* blocked 64-bit integer kernel (CPU: vectorised, threaded) */
  CG_METHOD_FP64 = 3,    /* CUDA: 16-bit limbs in FP64 (paper, Section II-B) */
  CG_METHOD_INT8 = 4     /* CUDA: 8-bit limbs on int8 tensor cores */
} cg_method;

/* out[b] = op(A[b]) . op(B[b]) for b < batch; out is [batch, m, n], A [batch, m, k]
 * (or one [m, k] with CG_BCAST_A), B [batch, k, n] (or one). out must not alias
 * a or b. flags: cg_mm_flags; method: cg_method (CG_EUNSUPPORTED if absent). */
int cg_matmul(cg_ctx* ctx, cg_buf out, cg_buf a, cg_buf b, uint64_t batch, uint64_t m, uint64_t n,
              uint64_t k, uint32_t flags, int32_t method);

/* Convolution, exact mod 2^64. weight is [oc, c/groups, kh, kw]; x is [n, c, h, w];
 * y is [n, oc, oh, ow]. flags: CG_ACCUMULATE only. */
int cg_conv2d_forward(cg_ctx* ctx, cg_buf y, cg_buf x, cg_buf weight, const cg_conv2d* g, uint32_t flags);
/* dx = gradient of sum(dy * conv(x, weight)) with respect to x. */
int cg_conv2d_backward_input(cg_ctx* ctx, cg_buf dx, cg_buf dy, cg_buf weight, const cg_conv2d* g,
                             uint32_t flags);
/* dweight = gradient with respect to the weight. */
int cg_conv2d_backward_weight(cg_ctx* ctx, cg_buf dweight, cg_buf x, cg_buf dy, const cg_conv2d* g,
                              uint32_t flags);

/* Sum pooling over windows (g->oc == g->c, groups ignored), padding read as 0:
 * y [n, c, oh, ow]; backward spreads dy over each window into dx [n, c, h, w]. */
int cg_sumpool2d_forward(cg_ctx* ctx, cg_buf y, cg_buf x, const cg_conv2d* g);
int cg_sumpool2d_backward(cg_ctx* ctx, cg_buf dx, cg_buf dy, const cg_conv2d* g);

/* ------------------------------------------------------------------- bits */

/* Packed bit streams: bit j of a stream lives in word j / 64 at bit j % 64.
 * A stream of rows: row e occupies bits [e * w, (e + 1) * w).
 *
 * Gather: out bit (e * count + t) = in bit (e * w_in + start + t * step), for
 * e < n, t < count; the unused high bits of out's last word are zeroed. Needs
 * start + (count - 1) * step < w_in. With w_in = 64 and a word per element this
 * packs bit `start` of every word (count = 1), or compacts the live bits of a
 * prefix-circuit level (step = 2). */
int cg_bits_gather(cg_ctx* ctx, cg_buf out, cg_buf in, uint64_t n, uint32_t w_in, uint32_t start,
                   uint32_t step, uint32_t count);
/* Scatter, the inverse: out bit (e * w_out + start + t * step) = in bit (e * count + t);
 * every other bit of out keeps its value. */
int cg_bits_scatter(cg_ctx* ctx, cg_buf out, cg_buf in, uint64_t n, uint32_t w_out, uint32_t start,
                    uint32_t step, uint32_t count);

/* One level of a parallel-prefix carry, the local half of its AND fused with
 * the layout work around it (msb's carry tree runs one of these per round).
 * A "unit" is a (propagate, generate) pair of bits, P at an even bit and G at
 * the odd bit above it. A level combines units 2j (low) and 2j + 1 (high) into
 *   P' = P_hi & P_lo,   G' = G_hi ^ (P_hi & G_lo),
 * both ANDs as one replicated binary AND. The layouts:
 *   CG_CARRY_WORDS (the first level): n 64-bit values, their propagate words
 *     p and generate words g; the units are group 0 = (0, 0) and group k =
 *     (bit k - 1 of p, bit k - 1 of g) for k = 1..63, so that the carry out
 *     of the 64 groups is the carry into bit 63. 64 units in, 32 units (n
 *     words) out.
 *   CG_CARRY_UNITS (the levels after): a packed stream of n bits of units, n
 *     a multiple of 4; n / 2 bits out. g0, g1 are unused (pass 0).
 * cg_carry_and: out = AND shares of every pair, (P_hi & P_lo) at the even bit
 *   and (P_hi & G_lo) at the odd bit of each output unit, for a party holding
 *   shares (p0, p1) (and (g0, g1)) and the zero-share draws r0, r1 (out's size):
 *   out = (X0 & (Y0 ^ Y1)) ^ (X1 & Y0) ^ r0 ^ r1.
 * cg_carry_merge: one share of the level's units from the same share of the
 *   input (the generate words g for CG_CARRY_WORDS, the units for
 *   CG_CARRY_UNITS) and of the AND: out = (G_hi at each odd bit) ^ z.
 * Output bits past the end of the stream are zero. out must not alias an
 * input. */
typedef enum cg_carry_layout { CG_CARRY_WORDS = 0, CG_CARRY_UNITS = 1 } cg_carry_layout;

int cg_carry_and(cg_ctx* ctx, int32_t layout, cg_buf out, cg_buf p0, cg_buf p1, cg_buf g0, cg_buf g1, cg_buf r0,
                 cg_buf r1, uint64_t n);
int cg_carry_merge(cg_ctx* ctx, int32_t layout, cg_buf out, cg_buf a, cg_buf z, uint64_t n);

/* -------------------------------------------------------- bit injection */

/* The local arithmetic of one third of a bit injection (lib/mpc/bitinject.ts,
 * protocols.md): `rows` rows of k ring elements, row i multiplied by one bit
 * read at position bit_off + i of packed bit streams. With c = b0 ^ b1 ^ flip
 * (the leader's bit), d = the other roles' bit, u = a0 + a1 and a_H = a0:
 *   CG_INJECT_LEADER, bufs = {b0, b1, a0, a1, s, s2, r, r2, A, B, T, L}:
 *     A = (1 - 2c) u + s, B = c + s2 (one word per row), T = c u - r, L = r + r2;
 *   CG_INJECT_FOLLOWER, bufs = {d, a_H, A, B, T, W, f, H}:
 *     H = d A + (1 - 2d) a_H B + T + W + d a_H - f;
 *   CG_INJECT_HELPER, bufs = {d, a_H, s, s2, r, r2, W, L}:
 *     W = -(d s + (1 - 2d) a_H s2 + r2), L = r + r2.
 * nbufs is the length of bufs (12 or 8). Per-row buffers (s2, B) hold rows
 * words, the others rows * k. Outputs are the last handles; they must not
 * alias or overlap any other. */
typedef enum cg_inject_role { CG_INJECT_LEADER = 0, CG_INJECT_FOLLOWER = 1, CG_INJECT_HELPER = 2 } cg_inject_role;

int cg_bit_inject(cg_ctx* ctx, int32_t role, const cg_buf* bufs, uint32_t nbufs, uint64_t rows, uint64_t k,
                  uint64_t bit_off, uint32_t flip);

/* -------------------------------------------------------------------- PRF */

typedef enum cg_aes_impl {
  CG_AES_AUTO = 0,
  CG_AES_PORTABLE = 1, /* table-free constant-time software path */
  CG_AES_NI = 2        /* x86 AES-NI (CUDA build: the GPU kernel) */
} cg_aes_impl;

/* AES-128 in counter mode: block j = AES_key(iv + j), the 16-byte iv read as a
 * big-endian 128-bit integer (SP 800-38A). Block j fills words 2j and 2j + 1 of
 * out (starting at out_off), read little-endian; an odd count drops the last
 * half block. */
int cg_aes128_ctr(cg_ctx* ctx, cg_buf out, uint64_t out_off, uint64_t words, const uint8_t* key,
                  const uint8_t* iv, int32_t impl);

/* AES-128-GCM (NIST SP 800-38D) of host memory, for the parties' channels:
 * 16-byte key, 12-byte iv, tag of 16 bytes; in and out may be the same
 * buffer. cg_gcm_open returns CG_EAUTH, and zeroes out, when the tag does not
 * match. len and aad_len at most (2^32 - 2) * 16 bytes (CG_EINVAL). impl as
 * for cg_aes128_ctr (CG_AES_NI also needs PCLMULQDQ). No context: they run on
 * any thread at once. Host code: only the CPU build exports them; a process
 * on the CUDA build loads the CPU build for its channels. */
int cg_gcm_seal(const uint8_t* key, const uint8_t* iv, const uint8_t* aad, uint64_t aad_len, const uint8_t* in,
                uint8_t* out, uint64_t len, uint8_t* tag, int32_t impl);
int cg_gcm_open(const uint8_t* key, const uint8_t* iv, const uint8_t* aad, uint64_t aad_len, const uint8_t* in,
                uint8_t* out, uint64_t len, const uint8_t* tag, int32_t impl);

/* ------------------------------------------------------------ fixed point */

/* out[i] = round(host[i] * 2^f) as a two's-complement word (ties away from zero).
 * CG_ERANGE, naming the index, for a value that is not finite or does not fit
 * in int64. f in [0, 62]. */
int cg_encode_fixed(cg_ctx* ctx, cg_buf out, const double* host, uint64_t n, uint32_t f);
/* host[i] = (int64) in[i] / 2^f. */
int cg_decode_fixed(cg_ctx* ctx, double* host, cg_buf in, uint64_t n, uint32_t f);

#ifdef __cplusplus
}
#endif

#endif /* CRYPTGPU_H */
