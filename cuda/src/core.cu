// The context's machinery: buffer handles, device memory in stream order,
// pinned staging for host transfers, error checks, and the fill kernel.
#include <cstdio>
#include <cstring>
#include <string>

#include "internal.cuh"

namespace cg {

static std::string hex(u64 v) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Buffer& lookup(cg_ctx* ctx, cg_buf handle, const char* what) {
  u64 serial = handle >> 48, slot = handle & 0xffffffffu;
  if (handle == 0) fail(CG_EHANDLE, std::string(what) + ": null buffer handle");
  if (serial != (ctx->serial & 0xffff))
    fail(CG_EHANDLE, std::string(what) + ": buffer handle " + hex(handle) + " belongs to another context");
  if (slot == 0 || slot > ctx->slots.size() || ctx->slots[slot - 1].handle != handle)
    fail(CG_EHANDLE, std::string(what) + ": buffer handle " + hex(handle) + " is freed or unknown");
  return ctx->slots[slot - 1];
}

u64* words_of(cg_ctx* ctx, cg_buf handle, u64 off, u64 words, const char* what) {
  Buffer& b = lookup(ctx, handle, what);
  if (off > b.words || words > b.words - off)
    fail(CG_EINVAL, std::string(what) + ": needs words [" + std::to_string(off) + ", " + std::to_string(off) + "+" +
                        std::to_string(words) + ") of a buffer of " + std::to_string(b.words) + " words");
  return b.data + off;
}

const u64* cwords_of(cg_ctx* ctx, cg_buf handle, u64 off, u64 words, const char* what) {
  return words_of(ctx, handle, off, words, what);
}

u64 mul_checked(u64 a, u64 b, const char* what) {
  u64 r;
  if (__builtin_mul_overflow(a, b, &r)) fail(CG_EINVAL, std::string(what) + ": size overflows 64 bits");
  return r;
}

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(CG_EDEVICE, std::string(what) + ": CUDA error: " + cudaGetErrorString(e));
}

void check_launch(const char* what) { check_cuda(cudaGetLastError(), what); }

unsigned grid_for(const cg_ctx* ctx, u64 items, unsigned block) {
  // Enough blocks to fill every SM several times over; kernels stride over
  // the rest, so the grid never exceeds the launch limits.
  const u64 cap = u64(ctx->sm_count) * 32;
  return unsigned(max_u64(1, min_u64(ceil_div(items, block), cap)));
}

void* device_alloc(cg_ctx* ctx, size_t bytes) {
  void* p = nullptr;
  // At least one word, so that a buffer always has an address.
  bytes = bytes < 8 ? 8 : bytes;
  cudaError_t e = ctx->pool ? cudaMallocFromPoolAsync(&p, bytes, ctx->pool, ctx->stream) : cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();  // an allocation failure is not sticky: clear it
    return nullptr;
  }
  return p;
}

void device_free(cg_ctx* ctx, void* p) {
  if (!p) return;
  if (ctx->pool)
    cudaFreeAsync(p, ctx->stream);
  else
    cudaFree(p);  // waits for the device: the work that used p is done
}

Scratch::Scratch(cg_ctx* ctx, size_t bytes, const char* what) : ctx_(ctx), p_(bytes ? device_alloc(ctx, bytes) : nullptr) {
  if (bytes && !p_)
    fail(CG_ENOMEM, std::string(what) + ": out of device memory for " + std::to_string(bytes) + " bytes of scratch");
}

Scratch::~Scratch() { device_free(ctx_, p_); }

// Staging halves grow to the largest transfer seen, up to this size; longer
// transfers go through in chunks.
constexpr size_t kStagingMax = size_t(8) << 20;
constexpr size_t kStagingMin = size_t(64) << 10;

static size_t ensure_staging(cg_ctx* ctx, size_t bytes, const char* what) {
  size_t want = kStagingMin;
  while (want < bytes && want < kStagingMax) want *= 2;
  if (ctx->staging_half >= want) return ctx->staging_half;
  // The old halves may still feed queued copies.
  for (cudaEvent_t e : ctx->staging_done) check_cuda(cudaEventSynchronize(e), what);
  if (ctx->staging) check_cuda(cudaFreeHost(ctx->staging), what);
  ctx->staging = nullptr;
  ctx->staging_half = 0;
  void* p = nullptr;
  if (cudaMallocHost(&p, 2 * want) != cudaSuccess) {
    cudaGetLastError();
    fail(CG_ENOMEM, std::string(what) + ": could not allocate " + std::to_string(2 * want) + " bytes of pinned host memory");
  }
  ctx->staging = static_cast<uint8_t*>(p);
  ctx->staging_half = want;
  return want;
}

void to_device(cg_ctx* ctx, void* dev, size_t bytes, const Fill& fill, const char* what) {
  if (bytes == 0) return;
  const size_t half = ensure_staging(ctx, bytes, what);
  int i = 0;
  for (size_t off = 0; off < bytes; off += half, i ^= 1) {
    const size_t len = bytes - off < half ? bytes - off : half;
    uint8_t* stage = ctx->staging + i * half;
    check_cuda(cudaEventSynchronize(ctx->staging_done[i]), what);  // its previous copy has left
    fill(stage, off, len);
    check_cuda(cudaMemcpyAsync(static_cast<uint8_t*>(dev) + off, stage, len, cudaMemcpyHostToDevice, ctx->stream),
               what);
    check_cuda(cudaEventRecord(ctx->staging_done[i], ctx->stream), what);
  }
}

void from_device(cg_ctx* ctx, const void* dev, size_t bytes, const Drain& drain, const char* what) {
  if (bytes == 0) return;
  const size_t half = ensure_staging(ctx, bytes, what);
  const size_t chunks = ceil_div(bytes, half);
  // Chunk c goes through half c % 2; the next chunk's copy is queued before
  // this one is drained, so the copy and the host work overlap.
  auto issue = [&](size_t c) {
    const size_t off = c * half, len = bytes - off < half ? bytes - off : half;
    uint8_t* stage = ctx->staging + (c & 1) * half;
    check_cuda(cudaMemcpyAsync(stage, static_cast<const uint8_t*>(dev) + off, len, cudaMemcpyDeviceToHost, ctx->stream),
               what);
    check_cuda(cudaEventRecord(ctx->staging_done[c & 1], ctx->stream), what);
  };
  issue(0);
  for (size_t c = 0; c < chunks; c++) {
    if (c + 1 < chunks) issue(c + 1);
    check_cuda(cudaEventSynchronize(ctx->staging_done[c & 1]), what);
    const size_t off = c * half, len = bytes - off < half ? bytes - off : half;
    drain(ctx->staging + (c & 1) * half, off, len);
  }
}

// dst[i] = value. The body is written in aligned pairs; thread 0 also writes
// a leading word that breaks 16-byte alignment and a trailing odd word.
__global__ void fill_kernel(u64* dst, u64 words, u64 value) {
  const u64 head = (reinterpret_cast<uintptr_t>(dst) & 15) ? 1 : 0;
  const u64 pairs = (words - head) / 2;
  ulonglong2* body = reinterpret_cast<ulonglong2*>(dst + head);
  const ulonglong2 v = make_ulonglong2(value, value);
  const u64 stride = u64(gridDim.x) * blockDim.x;
  for (u64 i = u64(blockIdx.x) * blockDim.x + threadIdx.x; i < pairs; i += stride) body[i] = v;
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    if (head) dst[0] = value;
    if ((words - head) & 1) dst[words - 1] = value;
  }
}

void fill_words(cg_ctx* ctx, u64* dst, u64 words, u64 value, const char* what) {
  if (words == 0) return;
  fill_kernel<<<grid_for(ctx, words / 2 + 1, 256), 256, 0, ctx->stream>>>(dst, words, value);
  check_launch(what);
}

}  // namespace cg
