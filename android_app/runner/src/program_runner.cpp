#include "program_runner.h"

#include <cstring>
#include <stdexcept>

#include "errors.h"

#include <executorch/runtime/core/exec_aten/exec_aten.h>
#include <executorch/runtime/core/portable_type/tensor_impl.h>

namespace mobile_mllm {

using executorch::aten::ScalarType;
using executorch::aten::Tensor;
using executorch::aten::TensorImpl;
using executorch::extension::MmapDataLoader;
using executorch::runtime::Error;
using executorch::runtime::EValue;
using executorch::runtime::HierarchicalAllocator;
using executorch::runtime::MemoryAllocator;
using executorch::runtime::MemoryManager;
using executorch::runtime::Program;
using executorch::runtime::Span;

namespace {
std::string err(const std::string& what, Error e) {
  return what + " (ExecuTorch error 0x" + [&] {
    char b[16];
    std::snprintf(b, sizeof b, "%x", static_cast<unsigned>(e));
    return std::string(b);
  }() + ")";
}

FloatTensor copy_float(const EValue& v, const char* what) {
  if (!v.isTensor()) throw std::runtime_error(std::string(what) + ": output is not a tensor");
  const Tensor& t = v.toTensor();
  if (t.scalar_type() != ScalarType::Float) throw std::runtime_error(std::string(what) + ": output is not float32");
  FloatTensor out;
  for (int i = 0; i < t.dim(); ++i) out.sizes.push_back(t.size(i));
  const float* p = t.const_data_ptr<float>();
  out.data.assign(p, p + t.numel());
  return out;
}
}  // namespace

ProgramRunner::ProgramRunner(const std::string& pte_path, executorch::runtime::EventTracer* tracer) : tracer_(tracer) {
  auto loader = MmapDataLoader::from(pte_path.c_str());
  if (!loader.ok()) throw ContractError(err("cannot open " + pte_path, loader.error()));
  loader_ = std::make_unique<MmapDataLoader>(std::move(loader.get()));
  auto program = Program::load(loader_.get(), Program::Verification::Minimal);
  if (!program.ok()) {
    throw ContractError(err("cannot load program " + pte_path +
                                 " (corrupt, truncated or from an incompatible ExecuTorch)", program.error()));
  }
  program_ = std::make_unique<Program>(std::move(program.get()));
}

std::vector<std::string> ProgramRunner::method_names() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < program_->num_methods(); ++i) {
    auto n = program_->get_method_name(i);
    if (n.ok()) names.emplace_back(n.get());
  }
  return names;
}

bool ProgramRunner::has_method(const std::string& name) const {
  for (const auto& n : method_names()) if (n == name) return true;
  return false;
}

LoadedMethod& ProgramRunner::method(const std::string& name) {
  auto it = methods_.find(name);
  if (it != methods_.end()) return *it->second;
  auto meta = program_->method_meta(name.c_str());
  if (!meta.ok()) throw std::runtime_error(err("program has no method " + name, meta.error()));
  auto m = std::make_unique<LoadedMethod>();
  for (size_t i = 0; i < meta->num_memory_planned_buffers(); ++i) {
    auto size = meta->memory_planned_buffer_size(i);
    if (!size.ok()) throw std::runtime_error(err(name + ": bad planned buffer", size.error()));
    m->planned.emplace_back(static_cast<size_t>(size.get()));
  }
  for (auto& b : m->planned) m->spans.emplace_back(b.data(), b.size());
  m->planned_allocator = std::make_unique<HierarchicalAllocator>(Span<Span<uint8_t>>(m->spans.data(), m->spans.size()));
  m->method_pool.resize(16u << 20);  // method metadata (EValues, tensor impls, delegate state)
  m->temp_pool.resize(16u << 20);    // kernel / delegate scratch, reset after each execute
  m->method_allocator = std::make_unique<MemoryAllocator>(m->method_pool.size(), m->method_pool.data());
  m->temp_allocator = std::make_unique<MemoryAllocator>(m->temp_pool.size(), m->temp_pool.data());
  m->memory = std::make_unique<MemoryManager>(m->method_allocator.get(), m->planned_allocator.get(),
                                              m->temp_allocator.get());
  auto method = program_->load_method(name.c_str(), m->memory.get(), tracer_);
  if (!method.ok()) {
    throw std::runtime_error(err("cannot load method " + name +
                                 " (a missing kernel is named in the log above)", method.error()));
  }
  m->method = std::make_unique<executorch::runtime::Method>(std::move(method.get()));
  auto& ref = *m;
  methods_[name] = std::move(m);
  return ref;
}

std::optional<std::vector<int64_t>> ProgramRunner::constant_ints(const std::string& name) {
  if (!has_method(name)) return std::nullopt;
  auto& m = method(name);
  Error e = m.method->execute();
  if (e != Error::Ok) throw std::runtime_error(err("constant method " + name + " failed", e));
  std::vector<int64_t> values;
  for (size_t i = 0; i < m.method->outputs_size(); ++i) {
    const EValue& v = m.method->get_output(i);
    if (v.isInt()) {
      values.push_back(v.toInt());
    } else if (v.isBool()) {
      values.push_back(v.toBool() ? 1 : 0);
    } else if (v.isTensor()) {
      const Tensor& t = v.toTensor();
      for (ssize_t j = 0; j < t.numel(); ++j) {
        switch (t.scalar_type()) {
          case ScalarType::Long: values.push_back(t.const_data_ptr<int64_t>()[j]); break;
          case ScalarType::Int: values.push_back(t.const_data_ptr<int32_t>()[j]); break;
          case ScalarType::Bool: values.push_back(t.const_data_ptr<bool>()[j] ? 1 : 0); break;
          default: throw std::runtime_error(name + ": unsupported constant tensor dtype");
        }
      }
    } else {
      throw std::runtime_error(name + ": unsupported constant output type");
    }
  }
  return values;
}

FloatTensor ProgramRunner::execute(const std::string& name, const std::vector<EValue>& inputs) {
  auto& m = method(name);
  for (size_t i = 0; i < inputs.size(); ++i) {
    Error e = m.method->set_input(inputs[i], i);
    if (e != Error::Ok) throw std::runtime_error(err(name + ": set_input(" + std::to_string(i) + ")", e));
  }
  Error e = m.method->execute();
  if (e != Error::Ok) throw std::runtime_error(err(name + " failed", e));
  return copy_float(m.method->get_output(0), name.c_str());
}

FloatTensor ProgramRunner::vision_encoder(const float* tiles, int64_t B, int64_t S) {
  std::vector<float> data(tiles, tiles + B * 3 * S * S);
  TensorImpl::SizesType sizes[4] = {static_cast<TensorImpl::SizesType>(B), 3, static_cast<TensorImpl::SizesType>(S),
                                    static_cast<TensorImpl::SizesType>(S)};
  TensorImpl::DimOrderType order[4] = {0, 1, 2, 3};
  TensorImpl::StridesType strides[4] = {static_cast<TensorImpl::StridesType>(3 * S * S),
                                        static_cast<TensorImpl::StridesType>(S * S),
                                        static_cast<TensorImpl::StridesType>(S), 1};
  TensorImpl impl(ScalarType::Float, 4, sizes, data.data(), order, strides);
  return execute("vision_encoder", {EValue(Tensor(&impl))});
}

FloatTensor ProgramRunner::token_embedding(const std::vector<int64_t>& ids) {
  std::vector<int64_t> data(ids);
  TensorImpl::SizesType sizes[2] = {1, static_cast<TensorImpl::SizesType>(ids.size())};
  TensorImpl::DimOrderType order[2] = {0, 1};
  TensorImpl::StridesType strides[2] = {static_cast<TensorImpl::StridesType>(ids.size()), 1};
  TensorImpl impl(ScalarType::Long, 2, sizes, data.data(), order, strides);
  return execute("token_embedding", {EValue(Tensor(&impl))});
}

FloatTensor ProgramRunner::text_decoder(const float* embeds, int64_t T, int64_t D, int64_t start_pos) {
  std::vector<float> data(embeds, embeds + T * D);
  TensorImpl::SizesType sizes[3] = {1, static_cast<TensorImpl::SizesType>(T), static_cast<TensorImpl::SizesType>(D)};
  TensorImpl::DimOrderType order[3] = {0, 1, 2};
  TensorImpl::StridesType strides[3] = {static_cast<TensorImpl::StridesType>(T * D),
                                        static_cast<TensorImpl::StridesType>(D), 1};
  TensorImpl impl(ScalarType::Float, 3, sizes, data.data(), order, strides);
  int64_t pos = start_pos;
  TensorImpl::SizesType psizes[1] = {1};
  TensorImpl::DimOrderType porder[1] = {0};
  TensorImpl::StridesType pstrides[1] = {1};
  TensorImpl pimpl(ScalarType::Long, 1, psizes, &pos, porder, pstrides);
  return execute("text_decoder", {EValue(Tensor(&impl)), EValue(Tensor(&pimpl))});
}

}  // namespace mobile_mllm
