// Grouped-query attention on tensor cores (attention.h with s.bf16_operands): the same op as
// attention.cu's warp-per-row kernels, blocked as FlashAttention-2 is, with bf16 operands and fp32
// accumulation, as flash attention runs in bf16 training. q, k, v and dout are rounded to bf16 when a
// tile is loaded into shared memory; scores, the online softmax, lse, delta = dO . O and every
// accumulator stay fp32; the probabilities (and dS in backward) are rounded to bf16 only as operands
// of their products, while the softmax's row sums use the fp32 values. delta takes the same bf16 dO
// as dP = dO V^T does (FlashAttention computes it from its bf16 dO), so each row of dS = P (dP - delta)
// still sums to zero, up to rounding, as the exact gradient's does.
//
// A block owns 16 rows per warp (query rows in the forward and dQ kernels, key rows in the dK/dV
// kernel) and walks the other side in tiles of kTile tokens in order, so every output has one owner
// that adds its terms in a fixed order: no atomics, the same bits run to run. Products are warp-level
// 16x16x16 WMMA tiles; each intermediate (scores, probabilities, accumulators) is kept in shared
// memory, whose layout is explicit, rather than in fragments, whose element layout is not: that is
// what lets one warp's lanes rescale rows and apply masks. Keeping accumulators in registers (with
// mma.sync's documented layout) is the next step for speed.
//
// Shared memory grows with head_dim; each kernel takes the most warps (4, 2, 1) whose layout fits the
// device's per-block limit, and attention.cu falls back to the warp-per-row kernels when none does.
#include <mma.h>

#include <algorithm>
#include <type_traits>

#include "attention_flash.h"
#include "common.cuh"

namespace medix::cuda {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kTile = 64;        // tokens of the other side per step: keys (forward, dQ) or queries (dK/dV)
constexpr int kLdS = kTile + 4;  // fp32 [rows, kTile] tiles (a multiple of 4, as WMMA's fp32 loads need)
constexpr int kLdP = kTile + 8;  // bf16 [rows, kTile] tiles (a multiple of 8); the padding spreads banks
__host__ __device__ inline int ld_bf16(int dp) { return dp + 8; }  // bf16 [rows, head_dim] tiles
__host__ __device__ inline int ld_f32(int dp) { return dp + 4; }   // fp32 [rows, head_dim] tiles

struct FlashDims {
  int64_t H, KV, n_seqs;
  int D, Dp;  // head_dim, and head_dim padded to WMMA's 16 (the padding holds zeros)
  float scale;
  bool causal;
};

// Carves one block's dynamic shared memory into arrays, each 128-byte aligned (WMMA needs 32). The
// host carves from address 0 to learn the size; the kernels carve their real buffer the same way.
class Carve {
 public:
  __host__ __device__ explicit Carve(uintptr_t base) : base_(base) {}
  template <typename T>
  __host__ __device__ T* take(int64_t n) {
    used_ = (used_ + 127) / 128 * 128;
    T* p = reinterpret_cast<T*>(base_ + used_);
    used_ += sizeof(T) * static_cast<size_t>(n);
    return p;
  }
  __host__ __device__ size_t used() const { return used_; }

 private:
  uintptr_t base_;
  size_t used_ = 0;
};

// rows: the block's own rows (16 per warp).
struct ForwardSmem {
  bf16 *q, *k, *v, *p;
  float *s, *o, *m, *l;
  __host__ __device__ ForwardSmem(Carve& c, int rows, int dp)
      : q(c.take<bf16>(rows * ld_bf16(dp))),
        k(c.take<bf16>(kTile * ld_bf16(dp))),
        v(c.take<bf16>(kTile * ld_bf16(dp))),
        p(c.take<bf16>(rows * kLdP)),
        s(c.take<float>(rows * kLdS)),
        o(c.take<float>(rows * ld_f32(dp))),
        m(c.take<float>(rows)),
        l(c.take<float>(rows)) {}
};

struct DqSmem {
  bf16 *q, *dout, *k, *v, *ds;
  float *p, *stage, *acc, *lse, *delta;
  __host__ __device__ DqSmem(Carve& c, int rows, int dp)
      : q(c.take<bf16>(rows * ld_bf16(dp))),
        dout(c.take<bf16>(rows * ld_bf16(dp))),
        k(c.take<bf16>(kTile * ld_bf16(dp))),
        v(c.take<bf16>(kTile * ld_bf16(dp))),
        ds(c.take<bf16>(rows * kLdP)),
        p(c.take<float>(rows * kLdS)),
        stage(c.take<float>(rows * 16)),
        acc(c.take<float>(rows * ld_f32(dp))),
        lse(c.take<float>(rows)),
        delta(c.take<float>(rows)) {}
};

// Here the block's rows are keys and the tiles walk queries: p and ds hold P^T and dS^T.
struct DkvSmem {
  bf16 *k, *v, *q, *dout, *pt, *dst;
  float *p, *stage, *dk, *dv, *lse, *delta;
  __host__ __device__ DkvSmem(Carve& c, int rows, int dp)
      : k(c.take<bf16>(rows * ld_bf16(dp))),
        v(c.take<bf16>(rows * ld_bf16(dp))),
        q(c.take<bf16>(kTile * ld_bf16(dp))),
        dout(c.take<bf16>(kTile * ld_bf16(dp))),
        pt(c.take<bf16>(rows * kLdP)),
        dst(c.take<bf16>(rows * kLdP)),
        p(c.take<float>(rows * kLdS)),
        stage(c.take<float>(rows * 16)),
        dk(c.take<float>(rows * ld_f32(dp))),
        dv(c.take<float>(rows * ld_f32(dp))),
        lse(c.take<float>(kTile)),
        delta(c.take<float>(kTile)) {}
};

template <typename Smem>
size_t smem_bytes(int warps, int dp) {
  Carve c(0);
  Smem layout(c, 16 * warps, dp);
  return c.used();
}

// One 16-column block (columns j..j+15) of C[16, n] (+)= A[16, kdim] B[kdim, n], by one warp: `block`
// points at C's element (0, j), fp32 row-major (ldc). A is bf16 row-major (lda); B is bf16, element
// (r, c) at b[r * ldb + c] (row_major) or at b[c * ldb + r] (col_major: B is the transpose of a
// row-major array). kdim is a multiple of 16.
template <typename BLayout>
__device__ void warp_mma_block(float* block, int ldc, const bf16* a, int lda, const bf16* b, int ldb, int kdim, int j,
                               bool accumulate) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, BLayout> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
  if (accumulate)
    wmma::load_matrix_sync(fc, block, ldc, wmma::mem_row_major);
  else
    wmma::fill_fragment(fc, 0.0f);
  constexpr bool kRowMajor = std::is_same<BLayout, wmma::row_major>::value;
  for (int kk = 0; kk < kdim; kk += 16) {
    wmma::load_matrix_sync(fa, a + kk, lda);
    wmma::load_matrix_sync(
        fb, kRowMajor ? b + static_cast<int64_t>(kk) * ldb + j : b + static_cast<int64_t>(j) * ldb + kk, ldb);
    wmma::mma_sync(fc, fa, fb, fc);
  }
  wmma::store_matrix_sync(block, fc, ldc, wmma::mem_row_major);
}

// All of C[16, n] (n a multiple of 16), block after block.
template <typename BLayout>
__device__ void warp_mma(float* c, int ldc, const bf16* a, int lda, const bf16* b, int ldb, int kdim, int n,
                         bool accumulate) {
  for (int j = 0; j < n; j += 16) warp_mma_block<BLayout>(c + j, ldc, a, lda, b, ldb, kdim, j, accumulate);
}

// By the whole block: dst[r, c] = bf16(src[(first + r) * stride + c]) for r < valid and c < D, and 0 in
// the rest of [rows, dp] (padding rows and columns must be zeros: they enter the products).
__device__ void load_rows(bf16* dst, int ld, const float* src, int64_t stride, int64_t first, int64_t valid, int rows,
                          int D, int dp) {
  for (int i = threadIdx.x; i < rows * dp; i += blockDim.x) {
    const int r = i / dp, c = i % dp;
    const float x = r < valid && c < D ? src[(first + r) * stride + c] : 0.0f;
    dst[r * ld + c] = __float2bfloat16_rn(x);
  }
}

__device__ void zero(float* dst, int n) {
  for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = 0.0f;
}

// Tokens [begin, end) of one tile, in the sequence [seq_begin, seq_end).
struct TileRange {
  int64_t begin, end, seq_begin, seq_end;
};

// The tile-th tile of `rows` tokens, counting every sequence's tiles in packing order (an empty
// sequence has none; the grid has exactly the tiles). A linear walk over the sequences: a packed
// batch holds at most a few hundred, against a block's thousands of products.
__device__ TileRange find_tile(const int32_t* cu, int64_t n_seqs, int64_t tile, int rows) {
  for (int64_t s = 0; s < n_seqs; ++s) {
    const int64_t b = cu[s], e = cu[s + 1], n = (e - b + rows - 1) / rows;
    if (tile < n) return {b + tile * rows, min(e, b + (tile + 1) * rows), b, e};
    tile -= n;
  }
  return {0, 0, 0, 0};
}

// ---- forward: one block per (query tile, head) ---------------------------------------------------

template <int kWarps>
__global__ void __launch_bounds__(32 * kWarps)
    flash_forward_kernel(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* cu,
                         FlashDims d) {
  constexpr int R = 16 * kWarps;
  extern __shared__ __align__(128) unsigned char smem[];
  Carve carve(reinterpret_cast<uintptr_t>(smem));
  const ForwardSmem sm(carve, R, d.Dp);
  const TileRange t = find_tile(cu, d.n_seqs, blockIdx.x, R);
  const int64_t h = blockIdx.y, kvh = h / (d.H / d.KV);
  const int lane = threadIdx.x % 32, r0 = threadIdx.x / 32 * 16, ldh = ld_bf16(d.Dp), ldo = ld_f32(d.Dp);
  load_rows(sm.q, ldh, q + h * d.D, d.H * d.D, t.begin, t.end - t.begin, R, d.D, d.Dp);
  zero(sm.o, R * ldo);
  for (int i = threadIdx.x; i < R; i += blockDim.x) {
    sm.m[i] = -INFINITY;
    sm.l[i] = 0.0f;
  }
  // Causal: no row of the tile sees a key past its last row.
  const int64_t key_end = d.causal ? t.end : t.seq_end;
  for (int64_t k0 = t.seq_begin; k0 < key_end; k0 += kTile) {
    const int64_t nk = min(static_cast<int64_t>(kTile), t.seq_end - k0);
    __syncthreads();  // the previous step's K and V are no longer read; the first time, the setup is done
    load_rows(sm.k, ldh, k + kvh * d.D, d.KV * d.D, k0, nk, kTile, d.D, d.Dp);
    load_rows(sm.v, ldh, v + kvh * d.D, d.KV * d.D, k0, nk, kTile, d.D, d.Dp);
    __syncthreads();
    // S = Q K^T for this warp's 16 rows (K^T: K's rows read as columns).
    warp_mma<wmma::col_major>(sm.s + r0 * kLdS, kLdS, sm.q + r0 * ldh, ldh, sm.k, ldh, d.Dp, kTile, false);
    __syncwarp();
    // Online softmax, a row at a time, lanes over the tile's keys: masked keys get p = 0. A row past
    // the tile's end sees none, keeps m = -inf, and its correction stays 1.
    for (int r = r0; r < r0 + 16; ++r) {
      const int64_t row = t.begin + r;
      float x[2];
      bool seen[2];
      for (int half = 0; half < 2; ++half) {
        const int c = lane + 32 * half;
        const int64_t key = k0 + c;
        seen[half] = row < t.end && key < t.seq_end && (!d.causal || key <= row);
        x[half] = seen[half] ? d.scale * sm.s[r * kLdS + c] : -INFINITY;
      }
      const float m_old = sm.m[r], m_new = fmaxf(m_old, warp_max(fmaxf(x[0], x[1])));
      const float correction = m_new == -INFINITY ? 1.0f : expf(m_old - m_new);
      float sum = 0.0f;
      for (int half = 0; half < 2; ++half) {
        const float p = seen[half] ? expf(x[half] - m_new) : 0.0f;
        sum += p;
        sm.p[r * kLdP + lane + 32 * half] = __float2bfloat16_rn(p);
      }
      sum = warp_sum(sum);
      for (int c = lane; c < d.Dp; c += 32) sm.o[r * ldo + c] *= correction;
      __syncwarp();  // every lane has read m[r] and l[r]
      if (lane == 0) {
        sm.m[r] = m_new;
        sm.l[r] = sm.l[r] * correction + sum;
      }
    }
    __syncwarp();
    warp_mma<wmma::row_major>(sm.o + r0 * ldo, ldo, sm.p + r0 * kLdP, kLdP, sm.v, ldh, kTile, d.Dp, true);
  }
  __syncwarp();
  for (int r = r0; r < r0 + 16 && t.begin + r < t.end; ++r) {
    const int64_t row = t.begin + r;
    const float l = sm.l[r], inv = 1.0f / l;
    for (int c = lane; c < d.D; c += 32) out[(row * d.H + h) * d.D + c] = sm.o[r * ldo + c] * inv;
    if (lane == 0) lse[row * d.H + h] = sm.m[r] + logf(l);
  }
}

// ---- backward: dQ (and delta) per (query tile, head), then dK and dV per (key tile, kv head) -------

// Rows [r0, r0 + 16) of dS = P * (dP - delta) as bf16, with dP = A B^T computed 16 columns at a time
// into `stage` (this warp's 16 x 16 floats): a is dO (dQ kernel) or V (dK/dV kernel) at this warp's
// rows, b the other side's V or dO tile. p holds P (or P^T) in fp32; delta is indexed by row
// (row_delta) or by column.
__device__ void warp_ds(bf16* ds, const float* p, float* stage, const bf16* a, const bf16* b, int ldh, int dp,
                        const float* delta, bool row_delta, int r0) {
  const int lane = threadIdx.x % 32;
  for (int j = 0; j < kTile; j += 16) {
    warp_mma_block<wmma::col_major>(stage, 16, a, ldh, b, ldh, dp, j, false);
    __syncwarp();
    for (int e = lane; e < 256; e += 32) {
      const int r = r0 + e / 16, c = j + e % 16;
      const float dl = row_delta ? delta[r] : delta[c];
      ds[r * kLdP + c] = __float2bfloat16_rn(p[r * kLdS + c] * (stage[e] - dl));
    }
    __syncwarp();  // stage is written again by the next block
  }
}

template <int kWarps>
__global__ void __launch_bounds__(32 * kWarps)
    flash_dq_kernel(float* dq, float* delta, const float* dout, const float* out, const float* lse, const float* q,
                    const float* k, const float* v, const int32_t* cu, FlashDims d) {
  constexpr int R = 16 * kWarps;
  extern __shared__ __align__(128) unsigned char smem[];
  Carve carve(reinterpret_cast<uintptr_t>(smem));
  const DqSmem sm(carve, R, d.Dp);
  const TileRange t = find_tile(cu, d.n_seqs, blockIdx.x, R);
  const int64_t h = blockIdx.y, kvh = h / (d.H / d.KV);
  const int lane = threadIdx.x % 32, r0 = threadIdx.x / 32 * 16, ldh = ld_bf16(d.Dp), ldo = ld_f32(d.Dp);
  load_rows(sm.q, ldh, q + h * d.D, d.H * d.D, t.begin, t.end - t.begin, R, d.D, d.Dp);
  load_rows(sm.dout, ldh, dout + h * d.D, d.H * d.D, t.begin, t.end - t.begin, R, d.D, d.Dp);
  zero(sm.acc, R * ldo);
  // delta = bf16(dO) . O in fp32, saved for the dK/dV kernel; lse for the rows.
  for (int r = r0; r < r0 + 16; ++r) {
    const int64_t row = t.begin + r;
    float dl = 0.0f, l = 0.0f;
    if (row < t.end) {  // the same for the whole warp
      const float* o_row = out + (row * d.H + h) * d.D;
      const float* do_row = dout + (row * d.H + h) * d.D;
      for (int c = lane; c < d.D; c += 32) dl += to_f32(__float2bfloat16_rn(do_row[c])) * o_row[c];
      dl = warp_sum(dl);
      l = lse[row * d.H + h];
      if (lane == 0) delta[row * d.H + h] = dl;
    }
    if (lane == 0) {
      sm.delta[r] = dl;
      sm.lse[r] = l;
    }
  }
  float* stage = sm.stage + r0 * 16;
  const int64_t key_end = d.causal ? t.end : t.seq_end;
  for (int64_t k0 = t.seq_begin; k0 < key_end; k0 += kTile) {
    const int64_t nk = min(static_cast<int64_t>(kTile), t.seq_end - k0);
    __syncthreads();
    load_rows(sm.k, ldh, k + kvh * d.D, d.KV * d.D, k0, nk, kTile, d.D, d.Dp);
    load_rows(sm.v, ldh, v + kvh * d.D, d.KV * d.D, k0, nk, kTile, d.D, d.Dp);
    __syncthreads();
    warp_mma<wmma::col_major>(sm.p + r0 * kLdS, kLdS, sm.q + r0 * ldh, ldh, sm.k, ldh, d.Dp, kTile, false);
    __syncwarp();
    // P = exp(scale S - lse), 0 where masked (and on rows past the tile's end).
    for (int e = lane; e < 16 * kTile; e += 32) {
      const int r = r0 + e / kTile, c = e % kTile;
      const int64_t row = t.begin + r, key = k0 + c;
      const bool seen = row < t.end && key < t.seq_end && (!d.causal || key <= row);
      float& p = sm.p[r * kLdS + c];
      p = seen ? expf(d.scale * p - sm.lse[r]) : 0.0f;
    }
    __syncwarp();
    warp_ds(sm.ds, sm.p, stage, sm.dout + r0 * ldh, sm.v, ldh, d.Dp, sm.delta, true, r0);
    warp_mma<wmma::row_major>(sm.acc + r0 * ldo, ldo, sm.ds + r0 * kLdP, kLdP, sm.k, ldh, kTile, d.Dp, true);
  }
  __syncwarp();
  for (int r = r0; r < r0 + 16 && t.begin + r < t.end; ++r)
    for (int c = lane; c < d.D; c += 32) dq[((t.begin + r) * d.H + h) * d.D + c] += d.scale * sm.acc[r * ldo + c];
}

// One block per (key tile, kv head): the query heads sharing the kv head in order, and for each the
// query tiles that can see the block's keys (from the tile's first key when causal), in order.
template <int kWarps>
__global__ void __launch_bounds__(32 * kWarps)
    flash_dkv_kernel(float* dk, float* dv, const float* delta, const float* dout, const float* lse, const float* q,
                     const float* k, const float* v, const int32_t* cu, FlashDims d) {
  constexpr int R = 16 * kWarps;
  extern __shared__ __align__(128) unsigned char smem[];
  Carve carve(reinterpret_cast<uintptr_t>(smem));
  const DkvSmem sm(carve, R, d.Dp);
  const TileRange t = find_tile(cu, d.n_seqs, blockIdx.x, R);
  const int64_t kvh = blockIdx.y, group = d.H / d.KV;
  const int lane = threadIdx.x % 32, r0 = threadIdx.x / 32 * 16, ldh = ld_bf16(d.Dp), ldo = ld_f32(d.Dp);
  load_rows(sm.k, ldh, k + kvh * d.D, d.KV * d.D, t.begin, t.end - t.begin, R, d.D, d.Dp);
  load_rows(sm.v, ldh, v + kvh * d.D, d.KV * d.D, t.begin, t.end - t.begin, R, d.D, d.Dp);
  zero(sm.dk, R * ldo);
  zero(sm.dv, R * ldo);
  float* stage = sm.stage + r0 * 16;
  const int64_t q_first = d.causal ? t.begin : t.seq_begin;
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
    for (int64_t q0 = q_first; q0 < t.seq_end; q0 += kTile) {
      const int64_t nq = min(static_cast<int64_t>(kTile), t.seq_end - q0);
      __syncthreads();
      load_rows(sm.q, ldh, q + h * d.D, d.H * d.D, q0, nq, kTile, d.D, d.Dp);
      load_rows(sm.dout, ldh, dout + h * d.D, d.H * d.D, q0, nq, kTile, d.D, d.Dp);
      for (int i = threadIdx.x; i < kTile; i += blockDim.x) {
        sm.lse[i] = i < nq ? lse[(q0 + i) * d.H + h] : 0.0f;
        sm.delta[i] = i < nq ? delta[(q0 + i) * d.H + h] : 0.0f;
      }
      __syncthreads();
      // S^T = K Q^T for this warp's 16 keys, then P^T (fp32 for dS^T, bf16 for dV).
      warp_mma<wmma::col_major>(sm.p + r0 * kLdS, kLdS, sm.k + r0 * ldh, ldh, sm.q, ldh, d.Dp, kTile, false);
      __syncwarp();
      for (int e = lane; e < 16 * kTile; e += 32) {
        const int r = r0 + e / kTile, c = e % kTile;
        const int64_t key = t.begin + r, query = q0 + c;
        const bool seen = key < t.end && query < t.seq_end && (!d.causal || query >= key);
        float& p = sm.p[r * kLdS + c];
        p = seen ? expf(d.scale * p - sm.lse[c]) : 0.0f;
        sm.pt[r * kLdP + c] = __float2bfloat16_rn(p);
      }
      __syncwarp();
      // dS^T = P^T * (V dO^T - delta), delta by query (column).
      warp_ds(sm.dst, sm.p, stage, sm.v + r0 * ldh, sm.dout, ldh, d.Dp, sm.delta, false, r0);
      warp_mma<wmma::row_major>(sm.dv + r0 * ldo, ldo, sm.pt + r0 * kLdP, kLdP, sm.dout, ldh, kTile, d.Dp, true);
      warp_mma<wmma::row_major>(sm.dk + r0 * ldo, ldo, sm.dst + r0 * kLdP, kLdP, sm.q, ldh, kTile, d.Dp, true);
    }
  }
  __syncwarp();
  for (int r = r0; r < r0 + 16 && t.begin + r < t.end; ++r) {
    const int64_t row = (t.begin + r) * d.KV + kvh;
    for (int c = lane; c < d.D; c += 32) {
      dk[row * d.D + c] += d.scale * sm.dk[r * ldo + c];
      dv[row * d.D + c] += sm.dv[r * ldo + c];
    }
  }
}

// ---- launches ----------------------------------------------------------------------------------------

int padded_head_dim(int64_t head_dim) { return static_cast<int>((head_dim + 15) / 16 * 16); }

// The current device's per-block opt-in limit, asked once per thread and device (every layer's
// attention asks; a backend's work runs on its own thread).
int shared_memory_limit() {
  thread_local int cached_device = -1, cached_limit = 0;
  int device = 0;
  check(cudaGetDevice(&device), "flash attention (device)");
  if (device != cached_device) {
    check(cudaDeviceGetAttribute(&cached_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
          "flash attention (shared memory limit)");
    cached_device = device;
  }
  return cached_limit;
}

// The most warps (4, 2 or 1) whose layout fits `limit` bytes, or 0.
template <typename Smem>
int warps_that_fit(int dp, int limit) {
  for (int w : {4, 2, 1})
    if (smem_bytes<Smem>(w, dp) <= static_cast<size_t>(limit)) return w;
  return 0;
}

// Tiles of `rows` tokens over every sequence (the host copy of cu_seqlens).
int64_t tile_count(const AttentionShape& s, int rows) {
  int64_t n = 0;
  for (int64_t i = 0; i < s.n_seqs; ++i) n += (s.cu_seqlens[i + 1] - s.cu_seqlens[i] + rows - 1) / rows;
  return n;
}

FlashDims dims_of(const AttentionShape& s) {
  return {s.n_heads, s.n_kv_heads, s.n_seqs, static_cast<int>(s.head_dim), padded_head_dim(s.head_dim),
          s.scale,   s.causal};
}

// Launches kernel<w> (w = 4, 2, 1) over (tiles of 16 w rows) x heads, with its shared memory.
template <typename Smem, typename Kernels, typename... Args>
void launch(const Kernels& kernels, int warps, const AttentionShape& s, int64_t heads, cudaStream_t stream,
            const char* what, Args... args) {
  const int dp = padded_head_dim(s.head_dim);
  const size_t bytes = smem_bytes<Smem>(warps, dp);
  const auto kernel = warps == 4 ? kernels.w4 : warps == 2 ? kernels.w2 : kernels.w1;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)), what);
  const int64_t tiles = tile_count(s, 16 * warps);
  if (tiles == 0) return;
  kernel<<<dim3(static_cast<unsigned int>(tiles), static_cast<unsigned int>(heads)), 32 * warps, bytes, stream>>>(
      args...);
  MEDIX_CUDA_LAUNCHED(what);
}

template <typename K>
struct Kernels {
  K w4, w2, w1;
};

}  // namespace

FlashPlan flash_attention_plan(const AttentionShape& s) {
  if (s.head_dim < 1 || s.head_dim > kFlashMaxHeadDim) return {};
  const int dp = padded_head_dim(s.head_dim), limit = shared_memory_limit();
  return {warps_that_fit<ForwardSmem>(dp, limit), warps_that_fit<DqSmem>(dp, limit),
          warps_that_fit<DkvSmem>(dp, limit)};
}

void flash_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                             const int32_t* cu_seqlens_device, const AttentionShape& s, const FlashPlan& p,
                             cudaStream_t stream) {
  const Kernels<decltype(&flash_forward_kernel<4>)> kernels{&flash_forward_kernel<4>, &flash_forward_kernel<2>,
                                                            &flash_forward_kernel<1>};
  launch<ForwardSmem>(kernels, p.forward, s, s.n_heads, stream, "flash attention forward", out, lse, q, k, v,
                      cu_seqlens_device, dims_of(s));
}

void flash_attention_backward(float* dq, float* dk, float* dv, float* delta, const float* dout, const float* out,
                              const float* lse, const float* q, const float* k, const float* v,
                              const int32_t* cu_seqlens_device, const AttentionShape& s, const FlashPlan& p,
                              cudaStream_t stream) {
  const Kernels<decltype(&flash_dq_kernel<4>)> dq_kernels{&flash_dq_kernel<4>, &flash_dq_kernel<2>,
                                                          &flash_dq_kernel<1>};
  launch<DqSmem>(dq_kernels, p.dq, s, s.n_heads, stream, "flash attention backward (dq)", dq, delta, dout, out, lse, q,
                 k, v, cu_seqlens_device, dims_of(s));
  const Kernels<decltype(&flash_dkv_kernel<4>)> dkv_kernels{&flash_dkv_kernel<4>, &flash_dkv_kernel<2>,
                                                            &flash_dkv_kernel<1>};
  launch<DkvSmem>(dkv_kernels, p.dkv, s, s.n_kv_heads, stream, "flash attention backward (dk, dv)", dk, dv,
                  static_cast<const float*>(delta), dout, lse, q, k, v, cu_seqlens_device, dims_of(s));
}

}  // namespace medix::cuda
