// CPU kernels for the two LLM custom ops our text_decoder uses, which the wheel's torch-free
// libraries lack (shared/design/device.md): llama::update_cache.out and llama::custom_sdpa.out.
// Schemas (executorch/extension/llm/custom_ops, checked with torch.ops.llama.*._schema):
//   update_cache.out(Tensor value, Tensor(a!) cache, SymInt start_pos, *, Tensor(b!) out) -> Tensor(b!)
//   custom_sdpa.out(Tensor query, Tensor key, Tensor value, SymInt start_pos, Tensor? attn_mask=None,
//                   float drpout_p=0., bool is_causal=False, float? scale=None, *, Tensor(a!) out) -> Tensor(a!)
// Layouts as in ExecuTorch's own kernels: value/query [B, S, H, D] (sequence in dim 1), caches
// [B, max_context_len, H_kv, D]. float32 only (what our fp32 and 8da4w programs carry here).
#include "llm_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <executorch/runtime/core/exec_aten/util/tensor_util.h>
#include <executorch/runtime/kernel/kernel_includes.h>
#include <executorch/runtime/kernel/operator_registry.h>
#include <executorch/runtime/kernel/thread_parallel_interface.h>
#include <executorch/runtime/platform/log.h>

namespace mobile_mllm {
namespace {

using executorch::aten::ScalarType;
using executorch::aten::Tensor;
using executorch::runtime::Error;
using executorch::runtime::EValue;
using executorch::runtime::Kernel;
using executorch::runtime::KernelRuntimeContext;
using executorch::runtime::Span;

bool contiguous_float(const Tensor& t, int dim) {
  return t.scalar_type() == ScalarType::Float && t.dim() == dim &&
         executorch::runtime::tensor_is_contiguous(t);
}

}  // namespace

bool update_cache(const Tensor& value, Tensor& cache, int64_t start_pos) {
  if (!contiguous_float(value, 4) || !contiguous_float(cache, 4)) return false;
  const int64_t B = value.size(0), S = value.size(1), H = value.size(2), D = value.size(3);
  const int64_t L = cache.size(1);
  if (cache.size(0) != B || cache.size(2) != H || cache.size(3) != D) return false;
  if (start_pos < 0 || start_pos + S > L) return false;
  const float* src = value.const_data_ptr<float>();
  float* dst = cache.mutable_data_ptr<float>();
  const int64_t row = H * D;
  for (int64_t b = 0; b < B; ++b) {
    std::memcpy(dst + (b * L + start_pos) * row, src + b * S * row, sizeof(float) * S * row);
  }
  return true;
}

namespace {

// Work split (the same idea as ExecuTorch's op_sdpa, written for this layout): one task is one
// (batch, KV head with its group of query heads, block of kQueryBlock query rows); tasks run on
// ExecuTorch's thread pool (the one XNNPACK uses, sized by --threads) and share nothing but read-only
// inputs, so the result does not depend on the thread count. Inside a task the keys go by blocks of
// kKeyBlock, packed transposed ([D][kKeyBlock], zero-padded) once for the group, and both products
// run as small register tiles of kRows query rows x kCols columns (keys for Q*K^T, features for
// P*V): the tile's accumulators stay in registers and its column loads are contiguous. Every score
// is still summed over d = 0..D-1 and every output over keys j = 0..visible-1 in that order, as the
// plain loops before did, so on x86-64 the results are bit for bit theirs (the fp32 answers that
// must equal the host runner's stay where they were); on arm64 the compiler fuses the tiles'
// multiply-adds (fmla), which moves outputs by float32 rounding only (~2e-6, the kernel test's
// tolerance). Rows of a tile that see fewer keys add exact zeros.
constexpr int64_t kQueryBlock = 32;  // a multiple of kRows
constexpr int64_t kKeyBlock = 128;   // a multiple of kCols
constexpr int kRows = 4;
constexpr int kCols = 8;  // a multiple of 4 (Lane below)
// Calls with fewer multiply-adds than this per product (decode steps of a small decoder) run on the
// calling thread: waking the pool would cost more than the work.
constexpr int64_t kSerialWork = int64_t{1} << 18;

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

struct Attention {
  const float* q;
  const float* k;
  const float* v;
  float* out;
  const float* mask;  // [S, mask_stride] additive, or null
  int64_t mask_stride;
  int64_t S, H, Hkv, D, L, start_pos, num_keys;
  bool causal;
  float scale;

  // Keys query row i sees: 0..visible(i)-1.
  int64_t visible(int64_t i) const { return causal ? start_pos + i + 1 : num_keys; }
  const float* key(int64_t b, int64_t j, int64_t hk) const { return k + ((b * L + j) * Hkv + hk) * D; }
  const float* value(int64_t b, int64_t j, int64_t hk) const { return v + ((b * L + j) * Hkv + hk) * D; }
};

// Per-thread scratch: the packed key block, a tile's queries (each value repeated 4 times, one
// register each), the task's score rows, their sums, output accumulators (rows rounded up to kRows;
// the extra rows are computed and never read).
struct Scratch {
  std::vector<float> kt, qb, scores, sums, acc;
};

// Four floats in one SIMD register (SSE2 on x86-64, NEON on arm64) through the GCC/Clang vector
// extension, which both our compilers (GCC here, the NDK's Clang) have; element-wise + and *, so a
// tile adds in exactly the order the scalar loops would. Other compilers get the same arithmetic on a
// plain struct.
#if defined(__GNUC__)
typedef float Lane __attribute__((vector_size(16)));
inline Lane lane(float x0, float x1, float x2, float x3) { return Lane{x0, x1, x2, x3}; }
#else
struct Lane {
  float x[4];
  Lane& operator+=(const Lane& o) { for (int i = 0; i < 4; ++i) x[i] += o.x[i]; return *this; }
  Lane operator*(const Lane& o) const { Lane r; for (int i = 0; i < 4; ++i) r.x[i] = x[i] * o.x[i]; return r; }
};
inline Lane lane(float x0, float x1, float x2, float x3) { return Lane{{x0, x1, x2, x3}}; }
#endif
inline Lane splat(float x) { return lane(x, x, x, x); }
constexpr int kLanes = kCols / 4;  // Lanes per tile row
inline Lane load(const float* p) { Lane v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(float* p, const Lane& v) { std::memcpy(p, &v, sizeof v); }

// out[r][c] = sum over d of q[r][d] * kt[d * kKeyBlock + c], d in order; qb holds q[r][d] at
// (d * kRows + r) * 4, repeated 4 times.
inline void score_tile(const float* qb, const float* kt, int64_t D, float (&out)[kRows][kCols]) {
  Lane t[kRows][kLanes];
  for (auto& row : t) std::fill(row, row + kLanes, splat(0.f));
  for (int64_t d = 0; d < D; ++d) {
    Lane kd[kLanes];
    for (int c = 0; c < kLanes; ++c) kd[c] = load(kt + d * kKeyBlock + 4 * c);
    for (int r = 0; r < kRows; ++r) {
      const Lane qv = load(qb + (d * kRows + r) * 4);
      for (int c = 0; c < kLanes; ++c) t[r][c] += qv * kd[c];
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int c = 0; c < kLanes; ++c) store(out[r] + 4 * c, t[r][c]);
  }
}

// acc[r * D + c0 + c] += sum over j in [j0, j1) of p[r][j] * value_j[c0 + c], c < kCols, j in order.
inline void value_tile(const float* const* p, const Attention& a, int64_t b, int64_t hk, int64_t j0, int64_t j1,
                       int64_t c0, float* acc) {
  Lane t[kRows][kLanes];
  for (int r = 0; r < kRows; ++r) {
    for (int c = 0; c < kLanes; ++c) t[r][c] = load(acc + r * a.D + c0 + 4 * c);
  }
  for (int64_t j = j0; j < j1; ++j) {
    const float* vj = a.value(b, j, hk) + c0;
    Lane vv[kLanes];
    for (int c = 0; c < kLanes; ++c) vv[c] = load(vj + 4 * c);
    for (int r = 0; r < kRows; ++r) {
      const Lane w = splat(p[r][j]);
      for (int c = 0; c < kLanes; ++c) t[r][c] += w * vv[c];
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int c = 0; c < kLanes; ++c) store(acc + r * a.D + c0 + 4 * c, t[r][c]);
  }
}

// value_tile for one feature column c0 (head sizes that are not a multiple of kCols).
inline void value_column(const float* const* p, const Attention& a, int64_t b, int64_t hk, int64_t j0, int64_t j1,
                         int64_t c0, float* acc) {
  for (int r = 0; r < kRows; ++r) {
    float t = acc[r * a.D + c0];
    for (int64_t j = j0; j < j1; ++j) t += p[r][j] * a.value(b, j, hk)[c0];
    acc[r * a.D + c0] = t;
  }
}

// Scores of rows i0..i1-1 of every query head of KV head hk against keys j0..j0+jn-1, scaled and
// masked, into scores[(g * padded_rows + i - i0) * stride + j] (g: the head within hk's group). The
// key block is packed once for the group.
void block_scores(const Attention& a, int64_t b, int64_t hk, int64_t i0, int64_t i1, int64_t j0, int64_t jn,
                  int64_t stride, Scratch& s) {
  const int64_t D = a.D, group = a.H / a.Hkv, padded_rows = round_up(i1 - i0, kRows);
  float* kt = s.kt.data();
  int64_t jj = 0;
  for (; jj + 4 <= jn; jj += 4) {  // four keys a register: one store per feature
    const float *k0 = a.key(b, j0 + jj, hk), *k1 = a.key(b, j0 + jj + 1, hk);
    const float *k2 = a.key(b, j0 + jj + 2, hk), *k3 = a.key(b, j0 + jj + 3, hk);
    for (int64_t d = 0; d < D; ++d) store(kt + d * kKeyBlock + jj, lane(k0[d], k1[d], k2[d], k3[d]));
  }
  for (; jj < round_up(jn, kCols); ++jj) {  // the last keys, then zeros up to the tile's width
    const float* krow = jj < jn ? a.key(b, j0 + jj, hk) : nullptr;
    for (int64_t d = 0; d < D; ++d) kt[d * kKeyBlock + jj] = krow != nullptr ? krow[d] : 0.f;
  }
  for (int64_t g = 0; g < group; ++g) {
    const int64_t h = hk * group + g;
    float* scores = s.scores.data() + g * padded_rows * stride;
    for (int64_t r0 = 0; r0 < i1 - i0; r0 += kRows) {
      const int64_t last = std::min(i0 + r0 + kRows, i1) - 1;  // the tile's row that sees the most keys
      const int64_t n = std::min(jn, a.visible(last) - j0);
      if (n <= 0) continue;
      float* qb = s.qb.data();
      for (int r = 0; r < kRows; ++r) {
        const float* q = a.q + ((b * a.S + std::min(i0 + r0 + r, last)) * a.H + h) * D;
        for (int64_t d = 0; d < D; ++d) store(qb + (d * kRows + r) * 4, splat(q[d]));
      }
      for (int64_t c0 = 0; c0 < n; c0 += kCols) {
        float acc[kRows][kCols];
        score_tile(qb, kt + c0, D, acc);
        for (int r = 0; r < kRows; ++r) {
          float* srow = scores + (r0 + r) * stride + j0 + c0;
          for (int c = 0; c < kCols; ++c) srow[c] = acc[r][c] * a.scale;
        }
      }
      if (a.mask == nullptr) continue;
      for (int64_t i = i0 + r0; i <= last; ++i) {
        const int64_t ni = std::min(jn, a.visible(i) - j0);
        const float* mrow = a.mask + i * a.mask_stride + j0;
        float* srow = scores + (i - i0) * stride + j0;
        for (int64_t jj = 0; jj < ni; ++jj) srow[jj] += mrow[jj];
      }
    }
  }
}

// One task: rows i0..i1-1 of the query heads of KV head hk, batch b, written to out.
void attend_rows(const Attention& a, int64_t b, int64_t hk, int64_t i0, int64_t i1, Scratch& s) {
  const int64_t D = a.D, group = a.H / a.Hkv, rows = i1 - i0, padded_rows = round_up(rows, kRows);
  const int64_t keys = a.visible(i1 - 1);  // the last row sees the most
  const int64_t stride = round_up(keys, kCols);
  s.scores.resize(group * padded_rows * stride);
  s.sums.resize(group * padded_rows);
  s.acc.assign(group * padded_rows * D, 0.f);
  for (int64_t j0 = 0; j0 < keys; j0 += kKeyBlock) {
    block_scores(a, b, hk, i0, i1, j0, std::min(kKeyBlock, keys - j0), stride, s);
  }
  for (int64_t row = 0; row < group * padded_rows; ++row) {
    float* srow = s.scores.data() + row * stride;
    const int64_t r = row % padded_rows, n = r < rows ? a.visible(i0 + r) : 0;
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) mx = srow[j] > mx ? srow[j] : mx;
    if (mx == -INFINITY) {
      std::fill(srow, srow + n, 0.f);  // every key masked out
    } else {
      for (int64_t j = 0; j < n; ++j) srow[j] = std::exp(srow[j] - mx);
    }
    float sum = 0.f;
    for (int64_t j = 0; j < n; ++j) sum += srow[j];
    std::fill(srow + n, srow + stride, 0.f);  // keys this row does not see weigh exactly 0 in P*V
    s.sums[row] = sum;
  }
  // P*V by key blocks, so a block of value rows is reused by every tile while it is in cache
  const int64_t tiled = D / kCols * kCols;
  for (int64_t j0 = 0; j0 < keys; j0 += kKeyBlock) {
    for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
      const int64_t end = std::min(std::min(keys, j0 + kKeyBlock), a.visible(std::min(i0 + r0 + kRows, i1) - 1));
      if (end <= j0) continue;
      for (int64_t g = 0; g < group; ++g) {
        const float* p[kRows];
        for (int r = 0; r < kRows; ++r) p[r] = s.scores.data() + (g * padded_rows + r0 + r) * stride;
        float* acc = s.acc.data() + (g * padded_rows + r0) * D;
        for (int64_t c0 = 0; c0 < tiled; c0 += kCols) value_tile(p, a, b, hk, j0, end, c0, acc);
        for (int64_t c0 = tiled; c0 < D; ++c0) value_column(p, a, b, hk, j0, end, c0, acc);
      }
    }
  }
  for (int64_t g = 0; g < group; ++g) {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = g * padded_rows + r;
      const float inv = s.sums[row] > 0.f ? 1.f / s.sums[row] : 0.f;
      const float* acc = s.acc.data() + row * D;
      float* orow = a.out + ((b * a.S + i0 + r) * a.H + hk * group + g) * D;
      for (int64_t d = 0; d < D; ++d) orow[d] = acc[d] * inv;
    }
  }
}

}  // namespace

bool custom_sdpa(const Tensor& q, const Tensor& k, const Tensor& v, int64_t start_pos, const Tensor* mask,
                 bool is_causal, double scale, bool has_scale, Tensor& out) {
  if (!contiguous_float(q, 4) || !contiguous_float(k, 4) || !contiguous_float(v, 4) || !contiguous_float(out, 4)) {
    return false;
  }
  const int64_t B = q.size(0), S = q.size(1), H = q.size(2), D = q.size(3);
  const int64_t L = k.size(1), Hkv = k.size(2);
  if (k.size(0) != B || v.size(0) != B || v.size(1) != L || v.size(2) != Hkv || k.size(3) != D ||
      v.size(3) != D || Hkv == 0 || H % Hkv != 0 || start_pos < 0 || start_pos + S > L) {
    return false;
  }
  Attention a{};
  a.num_keys = start_pos + S;
  if (mask != nullptr) {
    // [S, num_keys or more] float additive mask, as ExecuTorch's kernel takes it
    if (mask->scalar_type() != ScalarType::Float || mask->dim() != 2 || mask->size(0) != S ||
        mask->size(1) < a.num_keys) {
      return false;
    }
    a.mask = mask->const_data_ptr<float>();
    a.mask_stride = mask->size(1);
  }
  if (B == 0 || S == 0 || H == 0) return true;
  a.q = q.const_data_ptr<float>();
  a.k = k.const_data_ptr<float>();
  a.v = v.const_data_ptr<float>();
  a.out = out.mutable_data_ptr<float>();
  a.S = S, a.H = H, a.Hkv = Hkv, a.D = D, a.L = L, a.start_pos = start_pos, a.causal = is_causal;
  a.scale = has_scale ? static_cast<float>(scale) : 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t qblocks = (S + kQueryBlock - 1) / kQueryBlock, tasks = B * Hkv * qblocks;
  const auto run = [&](int64_t begin, int64_t end) {
    Scratch s;
    s.kt.resize(D * kKeyBlock);
    s.qb.resize(kRows * D * 4);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t qb = t % qblocks, hk = (t / qblocks) % Hkv, b = t / (qblocks * Hkv);
      attend_rows(a, b, hk, qb * kQueryBlock, std::min(S, (qb + 1) * kQueryBlock), s);
    }
  };
  if (B * H * S * a.num_keys * D < kSerialWork) {
    run(0, tasks);
    return true;
  }
  return executorch::extension::parallel_for(0, tasks, 1, run);
}

namespace {

void update_cache_out(KernelRuntimeContext& ctx, Span<EValue*> stack) {
  // value, cache, start_pos, out (+ the returned alias, when the emitter passes it)
  if (stack.size() < 4) {
    ET_LOG(Error, "llama::update_cache.out: %zu arguments", stack.size());
    ctx.fail(Error::InvalidArgument);
    return;
  }
  const Tensor& value = stack[0]->toTensor();
  Tensor cache = stack[1]->toTensor();
  const int64_t start = stack[2]->toInt();
  if (!update_cache(value, cache, start)) {
    ET_LOG(Error, "llama::update_cache.out: unsupported shapes/dtype or start_pos %lld out of range",
           static_cast<long long>(start));
    ctx.fail(Error::InvalidArgument);
  }
}

void custom_sdpa_out(KernelRuntimeContext& ctx, Span<EValue*> stack) {
  if (stack.size() < 9) {
    ET_LOG(Error, "llama::custom_sdpa.out: %zu arguments", stack.size());
    ctx.fail(Error::InvalidArgument);
    return;
  }
  const Tensor& q = stack[0]->toTensor();
  const Tensor& k = stack[1]->toTensor();
  const Tensor& v = stack[2]->toTensor();
  const int64_t start = stack[3]->toInt();
  const Tensor* mask = stack[4]->isTensor() ? &stack[4]->toTensor() : nullptr;
  const double dropout = stack[5]->isDouble() ? stack[5]->toDouble() : 0.0;
  const bool causal = stack[6]->isBool() ? stack[6]->toBool() : false;
  const bool has_scale = stack[7]->isDouble();
  const double scale = has_scale ? stack[7]->toDouble() : 0.0;
  Tensor out = stack[8]->toTensor();
  if (dropout != 0.0) {
    ET_LOG(Error, "llama::custom_sdpa.out: dropout %f is not supported", dropout);
    ctx.fail(Error::InvalidArgument);
    return;
  }
  if (executorch::runtime::resize_tensor(out, q.sizes()) != Error::Ok) {
    ET_LOG(Error, "llama::custom_sdpa.out: cannot resize out to the query's shape");
    ctx.fail(Error::InvalidArgument);
    return;
  }
  if (!custom_sdpa(q, k, v, start, mask, causal, scale, has_scale, out)) {
    ET_LOG(Error, "llama::custom_sdpa.out: unsupported shapes/dtype or start_pos %lld out of range",
           static_cast<long long>(start));
    ctx.fail(Error::InvalidArgument);
  }
}

}  // namespace

bool register_llm_kernels() {
  static const Kernel kernels[] = {
      Kernel("llama::update_cache.out", update_cache_out),
      Kernel("llama::custom_sdpa.out", custom_sdpa_out),
  };
  const Error err = executorch::runtime::register_kernels({kernels, 2});
  if (err != Error::Ok) {
    ET_LOG(Error, "registering the llama:: kernels failed: 0x%x", static_cast<unsigned>(err));
    return false;
  }
  return true;
}

}  // namespace mobile_mllm
