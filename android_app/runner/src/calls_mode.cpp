// The method-level debug mode of mobile_mllm_runner (main.cpp dispatches here on --calls):
//   mobile_mllm_runner --calls CALLS.jsonl --pte model.pte
// Runs a sequence of method calls on one loaded program (state such as the KV cache carries from
// one call to the next, as in a session) with inputs read from raw files, and writes each call's
// first output (float32, native byte order) to a file. One JSON object per line:
//   {"method": "text_decoder", "output": "out.bin",
//    "inputs": [{"dtype": "float32", "shape": [1, 5, 64], "file": "embeds.bin"},
//               {"dtype": "int64", "shape": [1], "file": "pos.bin"}]}
// Prints {"method": ..., "shape": [...]} per call. Why: a test or a bench script feeds both this
// runner and ExecuTorch's Python runtime bit-identical inputs, method by method, so a difference
// in the outputs belongs to the kernels, not to preprocessing (bench/RESULTS.md, "native runner").
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <executorch/runtime/core/exec_aten/exec_aten.h>
#include <executorch/runtime/core/portable_type/tensor_impl.h>

#include "errors.h"
#include "json.h"
#include "program_runner.h"

namespace mobile_mllm {
namespace {

using executorch::aten::ScalarType;
using executorch::aten::Tensor;
using executorch::aten::TensorImpl;

// One input tensor with the storage its TensorImpl points into.
struct HostTensor {
  std::vector<TensorImpl::SizesType> sizes;
  std::vector<TensorImpl::DimOrderType> order;
  std::vector<TensorImpl::StridesType> strides;
  std::vector<uint8_t> bytes;
  std::unique_ptr<TensorImpl> impl;
};

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void host_tensor(const Json& spec, HostTensor* t) {
  const std::string& dtype = spec.at("dtype").as_string("dtype");
  const ScalarType type = dtype == "float32" ? ScalarType::Float : dtype == "int64" ? ScalarType::Long : ScalarType::Undefined;
  if (type == ScalarType::Undefined) throw ConfigError("dtype " + dtype + " (float32 or int64)");
  size_t numel = 1;
  for (const Json& d : spec.at("shape").as_array("shape")) {
    t->sizes.push_back(static_cast<TensorImpl::SizesType>(d.as_int("shape")));
    numel *= static_cast<size_t>(t->sizes.back());
  }
  const size_t n = t->sizes.size();
  t->order.resize(n);
  t->strides.resize(n);
  TensorImpl::StridesType stride = 1;
  for (size_t i = n; i-- > 0;) {
    t->order[i] = static_cast<TensorImpl::DimOrderType>(i);
    t->strides[i] = stride;
    stride *= t->sizes[i];
  }
  t->bytes = read_bytes(spec.at("file").as_string("file"));
  if (t->bytes.size() != numel * (type == ScalarType::Float ? 4 : 8)) {
    throw ConfigError(spec.at("file").as_string() + " has " + std::to_string(t->bytes.size()) +
                      " bytes, not what its shape and dtype need");
  }
  t->impl = std::make_unique<TensorImpl>(type, static_cast<ssize_t>(n), t->sizes.data(), t->bytes.data(),
                                         t->order.data(), t->strides.data());
}

}  // namespace

int calls_mode(int argc, char** argv) {
  std::string calls, pte;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--calls") calls = argv[i + 1];
    else if (k == "--pte") pte = argv[i + 1];
    else {
      std::fprintf(stderr, "mobile-mllm-runner: error: unknown --calls argument %s\n", k.c_str());
      return 2;
    }
  }
  return exit_code_of([&] {
    if (pte.empty()) throw ConfigError("--calls needs --pte model.pte");
    ProgramRunner program(pte);
    std::ifstream in(calls);
    if (!in) throw ConfigError("cannot read " + calls);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const Json call = Json::parse(line);
      const Json::Array& specs = call.at("inputs").as_array("inputs");
      std::vector<HostTensor> tensors(specs.size());
      std::vector<executorch::runtime::EValue> inputs;
      for (size_t i = 0; i < specs.size(); ++i) {
        host_tensor(specs[i], &tensors[i]);
        inputs.emplace_back(Tensor(tensors[i].impl.get()));
      }
      const std::string& name = call.at("method").as_string("method");
      const FloatTensor out = program.execute(name, inputs);
      const std::string& path = call.at("output").as_string("output");
      std::ofstream f(path, std::ios::binary);
      f.write(reinterpret_cast<const char*>(out.data.data()), static_cast<std::streamsize>(out.data.size() * 4));
      if (!f) throw std::runtime_error("cannot write " + path);
      Json shape = Json::array();
      for (int64_t d : out.sizes) shape.items().push_back(Json::integer(d));
      Json r = Json::object();
      r.set("method", Json::string(name));
      r.set("shape", shape);
      std::printf("%s\n", r.dump().c_str());
    }
    return 0;
  });
}

}  // namespace mobile_mllm
