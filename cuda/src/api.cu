// The extern "C" entry points of the CUDA build: the context lock, the
// device selection of the calling thread, argument checks that need no
// kernel, device memory and host transfers, and the translation of cg::Error
// into a status and cg_last_error's message.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>

#include "internal.cuh"

using namespace cg;

namespace {

// Selects the context's device (guards.inc).
void enter(cg_ctx* ctx, const char* name) { check_cuda(cudaSetDevice(ctx->device), name); }
int32_t ctx_threads(cg_ctx* ctx) { return ctx->threads; }

#include "../shared/guards.inc"

#define CG_STR2(x) #x
#define CG_STR(x) CG_STR2(x)

// CRYPTGPU_CUDA_AUTO=naive|direct|fp64|int8 makes CG_METHOD_AUTO use that
// method in the contexts created afterwards: for testing every method
// through the convolutions, and for tuning the heuristic.
bool forced_method(int32_t* out) {
  const char* v = std::getenv("CRYPTGPU_CUDA_AUTO");
  *out = CG_METHOD_AUTO;
  if (!v || !*v || !std::strcmp(v, "auto")) return true;
  const char* names[] = {"auto", "naive", "direct", "fp64", "int8"};
  for (int32_t i = 1; i <= CG_METHOD_INT8; i++)
    if (!std::strcmp(v, names[i])) {
      *out = i;
      return true;
    }
  return false;
}

void* new_allocation(cg_ctx* ctx, u64 words) { return device_alloc(ctx, words * 8); }
void release_allocation(cg_ctx* ctx, void* base, u64) { device_free(ctx, base); }
const char* const kMemory = " of device memory";

#include "../shared/handles.inc"

// Releases what a context holds; safe on a partly built context.
void destroy(cg_ctx* ctx) {
  cudaSetDevice(ctx->device);
  if (ctx->stream) cudaStreamSynchronize(ctx->stream);
  release_all(ctx);
  if (ctx->stream) cudaStreamSynchronize(ctx->stream);
  if (ctx->pool) cudaMemPoolDestroy(ctx->pool);
  release_stages(ctx);
  if (ctx->stream) cudaStreamDestroy(ctx->stream);
  cudaGetLastError();
  delete ctx;
}

// cg_reserve's work. Device memory is mapped when allocated: what there is to do is to grow the pool once, which
// keeps what is freed to it (its release threshold, set at creation). Without a pool there is nothing to keep it in.
void reserve_memory(cg_ctx* ctx, size_t bytes) {
  if (!bytes) return;
  if (ctx->reserved) fail(CG_EINVAL, "cg_reserve: this context already has its reserved memory");
  ctx->reserved = true;
  if (!ctx->pool) return;
  void* p = device_alloc(ctx, bytes);
  if (!p) fail(CG_ENOMEM, "cg_reserve: cannot allocate " + std::to_string(bytes) + " bytes of device memory");
  device_free(ctx, p);
  check_cuda(cudaStreamSynchronize(ctx->stream), "cg_reserve");
}

}  // namespace

extern "C" {

const char* cg_build_info(void) {
  // "aesni" names the CG_AES_NI path, which in this build is the GPU kernel.
  static const char* info = "{\"abi\":" CG_STR(CG_ABI_VERSION) ",\"backend\":\"cuda\",\"compiler\":\"nvcc " CG_STR(
      __CUDACC_VER_MAJOR__) "." CG_STR(__CUDACC_VER_MINOR__) "." CG_STR(__CUDACC_VER_BUILD__) " (cudart " CG_STR(CUDART_VERSION) ", host g++ " __VERSION__
                            ")\",\"features\":{\"aesni\":true,\"fp64\":true,\"int8\":true}}";
  return info;
}

int cg_device_count(int32_t* out) {
  if (!out) return CG_ENULL;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    count = 0;  // no driver or no GPU: this build has no devices
  }
  *out = count;
  return CG_OK;
}

int cg_device_info(int32_t device, char* buf, uint64_t len) {
  if (!buf) return CG_ENULL;
  if (len == 0) return CG_EINVAL;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return CG_EDEVICE;
  }
  if (device < 0 || device >= count) return CG_EINVAL;
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, device) != cudaSuccess) {
    cudaGetLastError();
    return CG_EDEVICE;
  }
  std::string s = "{\"index\":" + std::to_string(device) + ",\"kind\":\"cuda\",\"name\":\"" + json_escape(p.name) +
                  "\",\"memory_bytes\":" + std::to_string(p.totalGlobalMem) +
                  ",\"sm\":" + std::to_string(p.multiProcessorCount) + ",\"compute_capability\":\"" +
                  std::to_string(p.major) + "." + std::to_string(p.minor) +
                  "\",\"methods\":[\"naive\",\"direct\",\"fp64\",\"int8\"]}";
  std::snprintf(buf, len, "%s", s.c_str());
  return CG_OK;
}

int cg_ctx_create(int32_t device, int32_t threads, cg_ctx** out) {
  if (!out) return CG_ENULL;
  *out = nullptr;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return set_create_error(CG_EDEVICE, std::string("cg_ctx_create: no usable CUDA device: ") + cudaGetErrorString(e));
  }
  if (device < 0 || device >= count)
    return set_create_error(CG_EDEVICE, "cg_ctx_create: CUDA device " + std::to_string(device) + " does not exist (" +
                                            std::to_string(count) + " present)");
  cudaDeviceProp p;
  if ((e = cudaGetDeviceProperties(&p, device)) != cudaSuccess) {
    cudaGetLastError();
    return set_create_error(CG_EDEVICE, std::string("cg_ctx_create: ") + cudaGetErrorString(e));
  }
  if (p.major < 8)
    return set_create_error(CG_EDEVICE, "cg_ctx_create: device " + std::to_string(device) + " (" + p.name +
                                            ") has compute capability " + std::to_string(p.major) + "." +
                                            std::to_string(p.minor) + "; this build needs 8.0 or newer");
  int32_t method;
  if (!forced_method(&method))
    return set_create_error(CG_EINVAL, std::string("cg_ctx_create: CRYPTGPU_CUDA_AUTO=") +
                                           std::getenv("CRYPTGPU_CUDA_AUTO") +
                                           " is not one of auto, naive, direct, fp64, int8");
  cg_ctx* ctx;
  try {
    ctx = new cg_ctx();
  } catch (const std::exception& ex) {
    return set_create_error(CG_ENOMEM, std::string("cg_ctx_create: ") + ex.what());
  }
  ctx->device = device;
  ctx->threads = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
  ctx->serial = next_serial.fetch_add(1);
  ctx->sm_count = p.multiProcessorCount;
  ctx->smem_optin = p.sharedMemPerBlockOptin;
  ctx->forced_method = method;
  auto step = [&](cudaError_t r, const char* what) {
    if (r == cudaSuccess) return true;
    cudaGetLastError();
    set_create_error(CG_EDEVICE, std::string("cg_ctx_create: ") + what + ": " + cudaGetErrorString(r));
    return false;
  };
  int pools = 0;
  bool ok = step(cudaSetDevice(device), "selecting the device") &&
            step(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking), "creating a stream") &&
            step(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device), "querying memory pools");
  if (ok && pools) {
    cudaMemPoolProps props;
    std::memset(&props, 0, sizeof props);
    props.allocType = cudaMemAllocationTypePinned;
    props.handleTypes = cudaMemHandleTypeNone;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device;
    // Freed memory stays in the pool for the next allocation instead of
    // going back to the driver at every synchronisation.
    uint64_t keep = ~uint64_t(0);
    ok = step(cudaMemPoolCreate(&ctx->pool, &props), "creating a memory pool") &&
         step(cudaMemPoolSetAttribute(ctx->pool, cudaMemPoolAttrReleaseThreshold, &keep), "configuring the pool");
  }
  if (!ok) {
    destroy(ctx);
    return CG_EDEVICE;
  }
  *out = ctx;
  return CG_OK;
}

int cg_ctx_destroy(cg_ctx* ctx) {
  if (!ctx) return CG_ENULL;
  destroy(ctx);
  return CG_OK;
}

int cg_sync(cg_ctx* ctx) {
  return guarded(ctx, "cg_sync", [&] { check_cuda(cudaStreamSynchronize(ctx->stream), "cg_sync"); });
}

int cg_upload(cg_ctx* ctx, cg_buf dst, uint64_t dst_off, const void* host, uint64_t words) {
  return guarded(ctx, "cg_upload", [&] {
    if (words) require_ptr(host, "cg_upload", "host source");
    u64* d = words_of(ctx, dst, dst_off, words, "cg_upload");
    const uint8_t* src = static_cast<const uint8_t*>(host);
    to_device(
        ctx, d, words * 8, [&](uint8_t* stage, size_t off, size_t bytes) { std::memcpy(stage, src + off, bytes); },
        "cg_upload");
  });
}

int cg_download(cg_ctx* ctx, cg_buf src, uint64_t src_off, void* host, uint64_t words) {
  return guarded(ctx, "cg_download", [&] {
    if (words) require_ptr(host, "cg_download", "host destination");
    const u64* s = cwords_of(ctx, src, src_off, words, "cg_download");
    uint8_t* dst = static_cast<uint8_t*>(host);
    from_device(
        ctx, s, words * 8, [&](const uint8_t* stage, size_t off, size_t bytes) { std::memcpy(dst + off, stage, bytes); },
        "cg_download");
  });
}

int cg_copy(cg_ctx* ctx, cg_buf dst, uint64_t dst_off, cg_buf src, uint64_t src_off, uint64_t words) {
  return guarded(ctx, "cg_copy", [&] {
    u64* d;
    const u64* s;
    if (!copy_ranges(ctx, dst, dst_off, src, src_off, words, d, s)) return;
    check_cuda(cudaMemcpyAsync(d, s, words * 8, cudaMemcpyDeviceToDevice, ctx->stream), "cg_copy");
  });
}

int cg_fill(cg_ctx* ctx, cg_buf dst, uint64_t dst_off, uint64_t words, uint64_t value) {
  return guarded(ctx, "cg_fill", [&] {
    u64* d = words_of(ctx, dst, dst_off, words, "cg_fill");
    fill_words(ctx, d, words, value, "cg_fill");
  });
}

int cg_host_pointer(cg_ctx* ctx, cg_buf buf, void** out) {
  return guarded(ctx, "cg_host_pointer", [&] {
    require_ptr(out, "cg_host_pointer", "out");
    *out = nullptr;
    lookup(ctx, buf, "cg_host_pointer");
    fail(CG_EUNSUPPORTED, "cg_host_pointer: buffers of the CUDA build live in device memory");
  });
}

#include "../shared/kernel_entries.inc"

}  // extern "C"
