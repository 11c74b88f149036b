// Loads model.pte the way ExecuTorch's Module does: one Program, and each method loaded with its
// own MemoryManager (its own planned-memory buffers), so the KV cache planned into text_decoder's
// arena is never touched by a token_embedding or vision_encoder call.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <executorch/extension/data_loader/mmap_data_loader.h>
#include <executorch/runtime/core/evalue.h>
#include <executorch/runtime/core/hierarchical_allocator.h>
#include <executorch/runtime/core/memory_allocator.h>
#include <executorch/runtime/executor/memory_manager.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/core/event_tracer.h>

namespace mobile_mllm {

struct LoadedMethod {
  std::vector<std::vector<uint8_t>> planned;
  std::vector<executorch::runtime::Span<uint8_t>> spans;
  std::unique_ptr<executorch::runtime::HierarchicalAllocator> planned_allocator;
  std::vector<uint8_t> method_pool;
  std::vector<uint8_t> temp_pool;
  std::unique_ptr<executorch::runtime::MemoryAllocator> method_allocator;
  std::unique_ptr<executorch::runtime::MemoryAllocator> temp_allocator;
  std::unique_ptr<executorch::runtime::MemoryManager> memory;
  std::unique_ptr<executorch::runtime::Method> method;
};

// A float tensor copied out of a method's output: shape and data.
struct FloatTensor {
  std::vector<int64_t> sizes;
  std::vector<float> data;
};

class ProgramRunner {
 public:
  // Throws ContractError (missing/corrupt program) or std::runtime_error with a message.
  // `tracer` (may be null): ExecuTorch's event tracer (an ETDumpGen), shared by every method as
  // ExecuTorch's Module shares its one.
  explicit ProgramRunner(const std::string& pte_path, executorch::runtime::EventTracer* tracer = nullptr);

  std::vector<std::string> method_names() const;
  bool has_method(const std::string& name) const;
  // Runs a constant method (no inputs); its outputs as integers (Int, Bool, or the elements of int tensors).
  std::optional<std::vector<int64_t>> constant_ints(const std::string& name);

  // Sets `inputs` (tensors must outlive the call) on method `name`, executes it, and copies its first
  // output (float32). The typed calls below and the --calls debug mode go through here.
  FloatTensor execute(const std::string& name, const std::vector<executorch::runtime::EValue>& inputs);

  // vision_encoder: tiles [B, 3, S, S] float32 -> [B, N, D]
  FloatTensor vision_encoder(const float* tiles, int64_t B, int64_t S);
  // token_embedding: ids [1, T] int64 -> [1, T, D]
  FloatTensor token_embedding(const std::vector<int64_t>& ids);
  // text_decoder: embeds [1, T, D] at start_pos -> logits (flattened, last position)
  FloatTensor text_decoder(const float* embeds, int64_t T, int64_t D, int64_t start_pos);

 private:
  LoadedMethod& method(const std::string& name);
  std::unique_ptr<executorch::extension::MmapDataLoader> loader_;
  std::unique_ptr<executorch::runtime::Program> program_;
  std::map<std::string, std::unique_ptr<LoadedMethod>> methods_;
  executorch::runtime::EventTracer* tracer_ = nullptr;
};

}  // namespace mobile_mllm
