// The token-level debug mode of mobile_mllm_runner (main.cpp dispatches here on --model):
//   mobile_mllm_runner --model DIR_OR_PTE --tokens 1,2,3 --max-new-tokens N [--prefill-chunk C]
//                      [--dump-logits FILE] | --model DIR_OR_PTE --info
// --dump-logits writes the logits each greedy pick was made from (float32, native order, one row of
// vocab_size values per generated token) so a test can compare them with the Python runtime's.
// Prints the program's constants and, on one line, "generated: id,id,..." (a stop token included,
// as mobile_mllm.runtime.session.decode_n_tokens returns it) and "stop_reason: ...".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <vector>

#include <executorch/runtime/platform/runtime.h>

#include "llm_kernels.h"
#include "program_runner.h"

namespace mobile_mllm {
namespace {

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "error: %s\nusage: mobile_mllm_runner --model DIR|model.pte --tokens ID,ID,... --max-new-tokens N "
               "[--prefill-chunk C] [--dump-logits FILE] | --model ... --info\n",
               msg);
  std::exit(2);
}

std::vector<int64_t> parse_ids(const std::string& s) {
  std::vector<int64_t> ids;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (end == item.c_str() || *end != '\0' || v < 0) usage(("bad token id '" + item + "'").c_str());
    ids.push_back(v);
  }
  return ids;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

int64_t argmax(const std::vector<float>& x) {
  int64_t best = 0;
  for (size_t i = 1; i < x.size(); ++i) if (x[i] > x[best]) best = static_cast<int64_t>(i);
  return best;
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int token_mode(int argc, char** argv) {
  std::string model, tokens_arg, dump_path;
  long max_new = -1, chunk_arg = 0;
  bool info = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--model") model = next();
    else if (a == "--tokens") tokens_arg = next();
    else if (a == "--max-new-tokens") max_new = std::atol(next().c_str());
    else if (a == "--prefill-chunk") chunk_arg = std::atol(next().c_str());
    else if (a == "--dump-logits") dump_path = next();
    else if (a == "--info") info = true;
    else usage(("unknown argument " + a).c_str());
  }
  if (model.empty()) usage("--model is required");
  struct stat st {};
  if (stat(model.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) model += "/model.pte";
  if (!info && (tokens_arg.empty() || max_new < 1)) usage("--tokens and --max-new-tokens >= 1 are required");

  try {
    auto t0 = std::chrono::steady_clock::now();
    mobile_mllm::ProgramRunner runner(model);
    for (const char* m : {"token_embedding", "text_decoder", "get_max_seq_len"}) {
      if (!runner.has_method(m)) throw std::runtime_error(model + " lacks method " + m + "; re-export it");
    }
    const int64_t max_seq_len = runner.constant_ints("get_max_seq_len")->at(0);
    auto ctx = runner.constant_ints("get_max_context_len");
    const int64_t max_context_len = ctx ? ctx->at(0) : max_seq_len;
    auto eos = runner.constant_ints("get_eos_ids");
    std::vector<int64_t> eos_ids = eos ? *eos : std::vector<int64_t>{};
    auto vocab = runner.constant_ints("get_vocab_size");
    std::printf("max_seq_len: %lld\nmax_context_len: %lld\neos_ids: %s\n", (long long)max_seq_len,
                (long long)max_context_len, join(eos_ids).c_str());
    if (vocab) std::printf("vocab_size: %lld\n", (long long)vocab->at(0));
    if (info) {
      for (const auto& n : runner.method_names()) std::printf("method: %s\n", n.c_str());
      return 0;
    }
    const int64_t chunk = chunk_arg > 0 ? std::min<int64_t>(chunk_arg, max_seq_len) : max_seq_len;
    const std::vector<int64_t> prompt = parse_ids(tokens_arg);
    if (prompt.empty()) usage("--tokens is empty");
    if (static_cast<int64_t>(prompt.size()) > max_context_len) {
      throw std::runtime_error("the prompt (" + std::to_string(prompt.size()) + " tokens) does not fit the KV cache of " +
                               std::to_string(max_context_len) + " positions");
    }
    // prefill in chunks (embedding is per token, so embedding chunk by chunk equals embedding all at once)
    auto tp = std::chrono::steady_clock::now();
    mobile_mllm::FloatTensor logits;
    for (size_t i = 0; i < prompt.size(); i += chunk) {
      std::vector<int64_t> part(prompt.begin() + i, prompt.begin() + std::min(prompt.size(), i + chunk));
      auto emb = runner.token_embedding(part);
      const int64_t D = emb.sizes.back();
      logits = runner.text_decoder(emb.data.data(), static_cast<int64_t>(part.size()), D, static_cast<int64_t>(i));
    }
    const double prefill_ms = ms_since(tp);
    // greedy decode, as session.decode_n_tokens
    auto td = std::chrono::steady_clock::now();
    std::vector<int64_t> out;
    std::string reason;
    FILE* dump = nullptr;
    if (!dump_path.empty() && (dump = std::fopen(dump_path.c_str(), "wb")) == nullptr) {
      throw std::runtime_error("cannot write " + dump_path);
    }
    int64_t pos = static_cast<int64_t>(prompt.size());
    while (true) {
      if (dump != nullptr) std::fwrite(logits.data.data(), sizeof(float), logits.data.size(), dump);
      const int64_t tok = argmax(logits.data);
      out.push_back(tok);
      bool stop = false;
      for (int64_t e : eos_ids) stop = stop || e == tok;
      if (stop) { reason = "eos"; break; }
      if (static_cast<long>(out.size()) >= max_new) { reason = "max_new_tokens"; break; }
      if (pos >= max_context_len) { reason = "context_full"; break; }
      auto emb = runner.token_embedding({tok});
      logits = runner.text_decoder(emb.data.data(), 1, emb.sizes.back(), pos);
      ++pos;
    }
    const double decode_ms = ms_since(td);
    if (dump != nullptr) std::fclose(dump);
    std::printf("generated: %s\nstop_reason: %s\n", join(out).c_str(), reason.c_str());
    std::printf("timing_ms: total %.1f prefill %.1f decode %.1f (prompt %zu, generated %zu)\n", ms_since(t0),
                prefill_ms, decode_ms, prompt.size(), out.size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

}  // namespace mobile_mllm
