// Our CPU kernels for llama::update_cache.out and llama::custom_sdpa.out (see llm_kernels.cpp).
#pragma once

#include <cstdint>

#include <executorch/runtime/core/exec_aten/exec_aten.h>

namespace mobile_mllm {

// Registers both kernels with ExecuTorch's operator registry; call once, before loading methods.
bool register_llm_kernels();

// The computations, exposed for direct use: false on shapes/dtypes they do not handle.
bool update_cache(const executorch::aten::Tensor& value, executorch::aten::Tensor& cache, int64_t start_pos);
bool custom_sdpa(const executorch::aten::Tensor& q, const executorch::aten::Tensor& k,
                 const executorch::aten::Tensor& v, int64_t start_pos, const executorch::aten::Tensor* mask,
                 bool is_causal, double scale, bool has_scale, executorch::aten::Tensor& out);

}  // namespace mobile_mllm
