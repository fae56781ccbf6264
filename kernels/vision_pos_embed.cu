// Learned position embedding of the Qwen3-VL vision tower (vision_pos_embed.h), forward and backward:
// out[p] = sum_k w_pk table[row_pk] over patch p's four bilinear taps k; backward dtable[r] += w_pk dout[p]
// for every (p, k) with row_pk = r.
//
// The taps are the CPU's own (cpu::vision_pos_embed_taps, built on the host from the host grids and
// copied over per call, 48 bytes a patch), so the weights are the same bits on both backends. The sums
// are fused multiply-adds in the CPU's order: GCC compiles the CPU's `s += w * t` and `dtable += w * d`
// to fmas (C++ contracts by default; the build's -march=x86-64-v3 has FMA). So both outputs are the
// CPU's bits (kExact in the conformance case); a host emulation of this arithmetic gave them exactly.
//
// Backward is a gather, not a scatter: neighbouring patches, every frame of an image and every image
// share table rows, so a scatter would need atomics and would add in no fixed order. The host lists, per
// table row, the (patch, weight) pairs that touch it, in the order the CPU's serial loop adds them
// (patch, then tap: a stable counting sort), as CSR; one thread per table element then adds its list
// into dtable in that order. The same bits on every run, with no atomics; untouched rows are not written.
#include <vector>

#include "backend_op.cuh"
#include "common.cuh"
#include "ops/vision_pos_embed.h"

namespace medix::cuda {
namespace {

// One (patch, weight) pair of a table row's list.
struct RowTap {
  int32_t patch;
  float weight;
};

// One thread per output element (patch p, column i): the four taps in order.
__global__ void pos_embed_forward_kernel(float* out, const float* table, const cpu::PosEmbedTaps* taps, int64_t n,
                                         int64_t dim) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n * dim) return;
  const int64_t p = e / dim, i = e % dim;
  const cpu::PosEmbedTaps& tp = taps[p];
  float s = 0.0f;
  for (int k = 0; k < 4; ++k) s = __fmaf_rn(tp.weight[k], table[tp.row[k] * dim + i], s);
  out[e] = s;
}

// One thread per table element (row r, column i): row r's list, in the CPU's order.
__global__ void pos_embed_backward_kernel(float* dtable, const float* dout, const int64_t* offsets, const RowTap* list,
                                          int64_t rows, int64_t dim) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= rows * dim) return;
  const int64_t r = e / dim, i = e % dim;
  const int64_t begin = offsets[r], end = offsets[r + 1];
  if (begin == end) return;
  float acc = dtable[e];
  for (int64_t k = begin; k < end; ++k) acc = __fmaf_rn(list[k].weight, dout[list[k].patch * dim + i], acc);
  dtable[e] = acc;
}

void check_shape(int64_t merge, int64_t side, int64_t dim, const char* fn) {
  MEDIX_CHECK(merge >= 1 && side >= 1 && dim >= 1, fn, ": bad shape merge=", merge, " side=", side, " dim=", dim);
}

// Copies a host vector into device scratch of its size, in stream order.
template <typename T>
void to_device(const Scratch<T>& dev, const std::vector<T>& host, cudaStream_t stream, const char* fn) {
  // From pageable memory: the copy has read the host vector when it returns.
  check(cudaMemcpyAsync(dev.get(), host.data(), sizeof(T) * host.size(), cudaMemcpyHostToDevice, stream), fn);
}

}  // namespace

void vision_pos_embed_forward(float* out, const float* table, const std::vector<ImageGrid>& grids, int64_t merge,
                              int64_t side, int64_t dim, cudaStream_t stream) {
  const char* fn = "vision_pos_embed_forward";
  check_shape(merge, side, dim, fn);
  const std::vector<cpu::PosEmbedTaps> taps = cpu::vision_pos_embed_taps(grids, merge, side);
  const int64_t n = static_cast<int64_t>(taps.size());
  if (n == 0) return;
  const Scratch<cpu::PosEmbedTaps> d_taps(n, stream, fn);
  to_device(d_taps, taps, stream, fn);
  pos_embed_forward_kernel<<<blocks_for(n * dim), kThreads, 0, stream>>>(out, table, d_taps.get(), n, dim);
  MEDIX_CUDA_LAUNCHED(fn);
}

void vision_pos_embed_backward(float* dtable, const float* dout, const std::vector<ImageGrid>& grids, int64_t merge,
                               int64_t side, int64_t dim, cudaStream_t stream) {
  const char* fn = "vision_pos_embed_backward";
  check_shape(merge, side, dim, fn);
  const std::vector<cpu::PosEmbedTaps> taps = cpu::vision_pos_embed_taps(grids, merge, side);
  const int64_t n = static_cast<int64_t>(taps.size()), rows = side * side;
  if (n == 0) return;
  MEDIX_CHECK(n <= INT32_MAX, fn, ": ", n, " patches is more than a 32-bit index holds");
  // CSR by table row: count, prefix sums, then fill in (patch, tap) order so each list keeps the CPU's order.
  std::vector<int64_t> offsets(static_cast<size_t>(rows + 1), 0);
  for (const cpu::PosEmbedTaps& tp : taps)
    for (int k = 0; k < 4; ++k) ++offsets[tp.row[k] + 1];
  for (int64_t r = 0; r < rows; ++r) offsets[r + 1] += offsets[r];
  std::vector<int64_t> next(offsets.begin(), offsets.end() - 1);
  std::vector<RowTap> list(static_cast<size_t>(4 * n));
  for (int64_t p = 0; p < n; ++p)
    for (int k = 0; k < 4; ++k) list[next[taps[p].row[k]]++] = {static_cast<int32_t>(p), taps[p].weight[k]};
  const Scratch<int64_t> d_offsets(rows + 1, stream, fn);
  const Scratch<RowTap> d_list(4 * n, stream, fn);
  to_device(d_offsets, offsets, stream, fn);
  to_device(d_list, list, stream, fn);
  pos_embed_backward_kernel<<<blocks_for(rows * dim), kThreads, 0, stream>>>(dtable, dout, d_offsets.get(),
                                                                             d_list.get(), rows, dim);
  MEDIX_CUDA_LAUNCHED(fn);
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(VisionPosEmbedForward, cuda::vision_pos_embed_forward);
MEDIX_CUDA_OP(VisionPosEmbedBackward, cuda::vision_pos_embed_backward);

}  // namespace medix::cuda
