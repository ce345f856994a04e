// The context's machinery: buffer handles, device memory in stream order,
// pinned staging for host transfers, error checks, and the fill kernel.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "internal.cuh"

namespace cg {

#include "../shared/buffer_checks.inc"

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

// Transfers move in chunks of at most kChunk bytes, each through a stage of
// a power-of-two size; the stages of a context hold at most kStagingCap bytes.
constexpr size_t kChunk = size_t(8) << 20;
constexpr size_t kStageMin = size_t(64) << 10;
constexpr size_t kStagingCap = size_t(64) << 20;

static bool stage_free(const Stage& s, const char* what) {
  if (s.held) return false;
  const cudaError_t e = cudaEventQuery(s.done);
  if (e == cudaErrorNotReady) {
    cudaGetLastError();  // "not ready" is an answer, not an error
    return false;
  }
  check_cuda(e, what);
  return true;
}

static void drop_stage(cg_ctx* ctx, Stage& s) {
  cudaEventSynchronize(s.done);
  cudaEventDestroy(s.done);
  cudaFreeHost(s.host);
  ctx->staging_bytes -= s.bytes;
}

static Stage* add_stage(cg_ctx* ctx, size_t bytes, const char* what) {
  auto s = std::make_unique<Stage>();
  if (cudaMallocHost(reinterpret_cast<void**>(&s->host), bytes) != cudaSuccess) {
    cudaGetLastError();
    fail(CG_ENOMEM, std::string(what) + ": could not allocate " + std::to_string(bytes) + " bytes of pinned host memory");
  }
  const cudaError_t e = cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming);
  if (e != cudaSuccess) {
    cudaFreeHost(s->host);
    check_cuda(e, what);
  }
  s->bytes = bytes;
  ctx->staging_bytes += bytes;
  ctx->stages.push_back(std::move(s));
  return ctx->stages.back().get();
}

void release_stages(cg_ctx* ctx) {
  for (auto& s : ctx->stages) drop_stage(ctx, *s);
  ctx->stages.clear();
}

// A stage of at least `bytes` whose copies have finished: a free one, else a
// new one while the cap allows, else one freed by waiting (trading idle
// stages that are too small for one that fits).
static Stage* take_stage(cg_ctx* ctx, size_t bytes, const char* what) {
  size_t want = kStageMin;
  while (want < bytes) want *= 2;
  for (auto& s : ctx->stages)
    if (s->bytes >= want && stage_free(*s, what)) return s.get();
  if (ctx->staging_bytes + want <= kStagingCap) return add_stage(ctx, want, what);
  for (auto& s : ctx->stages)
    if (!s->held) check_cuda(cudaEventSynchronize(s->done), what);
  for (auto& s : ctx->stages)
    if (!s->held && s->bytes >= want) return s.get();
  for (auto& s : ctx->stages)
    if (!s->held) drop_stage(ctx, *s);
  ctx->stages.erase(std::remove_if(ctx->stages.begin(), ctx->stages.end(), [](const auto& s) { return !s->held; }),
                    ctx->stages.end());
  return add_stage(ctx, want, what);
}

void to_device(cg_ctx* ctx, void* dev, size_t bytes, const Fill& fill, const char* what) {
  for (size_t off = 0; off < bytes; off += kChunk) {
    const size_t len = bytes - off < kChunk ? bytes - off : kChunk;
    Stage* s = take_stage(ctx, len, what);
    fill(s->host, off, len);
    check_cuda(cudaMemcpyAsync(static_cast<uint8_t*>(dev) + off, s->host, len, cudaMemcpyHostToDevice, ctx->stream),
               what);
    check_cuda(cudaEventRecord(s->done, ctx->stream), what);
  }
}

void from_device(cg_ctx* ctx, const void* dev, size_t bytes, const Drain& drain, const char* what) {
  // The copy of the next chunk is queued before this one is drained, so the
  // copies and the host work overlap. A queued chunk's stage is held until it
  // is drained; the holds are released however the transfer ends.
  Stage* held[2] = {nullptr, nullptr};
  struct Release {
    Stage** held;
    ~Release() {
      for (int i = 0; i < 2; i++)
        if (held[i]) held[i]->held = false;
    }
  } release{held};
  auto issue = [&](size_t off, int slot) {
    const size_t len = bytes - off < kChunk ? bytes - off : kChunk;
    Stage* s = take_stage(ctx, len, what);
    s->held = true;
    held[slot] = s;
    check_cuda(cudaMemcpyAsync(s->host, static_cast<const uint8_t*>(dev) + off, len, cudaMemcpyDeviceToHost, ctx->stream),
               what);
    check_cuda(cudaEventRecord(s->done, ctx->stream), what);
  };
  if (bytes == 0) return;
  issue(0, 0);
  for (size_t off = 0, c = 0; off < bytes; off += kChunk, c ^= 1) {
    if (off + kChunk < bytes) issue(off + kChunk, int(c ^ 1));
    Stage* s = held[c];
    check_cuda(cudaEventSynchronize(s->done), what);
    drain(s->host, off, bytes - off < kChunk ? bytes - off : kChunk);
    s->held = false;
    held[c] = nullptr;
  }
}

// dst[i] = value. The body is written in aligned pairs; thread 0 also writes
// a leading word that breaks 16-byte alignment and a trailing odd word.
__global__ void fill_kernel(u64* dst, u64 words, u64 value) {
  const u64 head = (reinterpret_cast<uintptr_t>(dst) & 15) ? 1 : 0;
  const u64 pairs = (words - head) / 2;
  ulonglong2* body = reinterpret_cast<ulonglong2*>(dst + head);
  const ulonglong2 v = make_ulonglong2(value, value);
  for (u64 i = thread_index(); i < pairs; i += thread_count()) body[i] = v;
  if (thread_index() == 0) {
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
