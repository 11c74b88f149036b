// CPU kernels for the two LLM custom ops our text_decoder uses, which the wheel's torch-free
// libraries lack (shared/design/device.md): llama::update_cache.out and llama::custom_sdpa.out.
// Schemas (executorch/extension/llm/custom_ops, checked with torch.ops.llama.*._schema):
//   update_cache.out(Tensor value, Tensor(a!) cache, SymInt start_pos, *, Tensor(b!) out) -> Tensor(b!)
//   custom_sdpa.out(Tensor query, Tensor key, Tensor value, SymInt start_pos, Tensor? attn_mask=None,
//                   float drpout_p=0., bool is_causal=False, float? scale=None, *, Tensor(a!) out) -> Tensor(a!)
// Layouts as in ExecuTorch's own kernels: value/query [B, S, H, D] (sequence in dim 1), caches
// [B, max_context_len, H_kv, D]. float32 only (what our fp32 and 8da4w programs carry here).
#include "llm_kernels.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <executorch/runtime/core/exec_aten/util/tensor_util.h>
#include <executorch/runtime/kernel/kernel_includes.h>
#include <executorch/runtime/kernel/operator_registry.h>
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
  const int64_t num_keys = start_pos + S;
  const float* mask_data = nullptr;
  int64_t mask_stride = 0;
  if (mask != nullptr) {
    // [S, num_keys or more] float additive mask, as ExecuTorch's kernel takes it
    if (mask->scalar_type() != ScalarType::Float || mask->dim() != 2 || mask->size(0) != S ||
        mask->size(1) < num_keys) {
      return false;
    }
    mask_data = mask->const_data_ptr<float>();
    mask_stride = mask->size(1);
  }
  const float sc = has_scale ? static_cast<float>(scale) : 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t group = H / Hkv;
  const float* qd = q.const_data_ptr<float>();
  const float* kd = k.const_data_ptr<float>();
  const float* vd = v.const_data_ptr<float>();
  float* od = out.mutable_data_ptr<float>();
  std::vector<float> scores(num_keys);
  std::vector<float> acc(D);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < S; ++i) {
      const int64_t visible = is_causal ? start_pos + i + 1 : num_keys;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t hk = h / group;
        const float* qrow = qd + ((b * S + i) * H + h) * D;
        float mx = -INFINITY;
        for (int64_t j = 0; j < visible; ++j) {
          const float* krow = kd + ((b * L + j) * Hkv + hk) * D;
          float dot = 0.f;
          for (int64_t d = 0; d < D; ++d) dot += qrow[d] * krow[d];
          float s = dot * sc;
          if (mask_data != nullptr) s += mask_data[i * mask_stride + j];
          scores[j] = s;
          if (s > mx) mx = s;
        }
        float sum = 0.f;
        for (int64_t j = 0; j < visible; ++j) {
          scores[j] = (mx == -INFINITY) ? 0.f : std::exp(scores[j] - mx);
          sum += scores[j];
        }
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t j = 0; j < visible; ++j) {
          const float w = scores[j];
          const float* vrow = vd + ((b * L + j) * Hkv + hk) * D;
          for (int64_t d = 0; d < D; ++d) acc[d] += w * vrow[d];
        }
        float* orow = od + ((b * S + i) * H + h) * D;
        const float inv = sum > 0.f ? 1.f / sum : 0.f;
        for (int64_t d = 0; d < D; ++d) orow[d] = acc[d] * inv;
      }
    }
  }
  return true;
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
