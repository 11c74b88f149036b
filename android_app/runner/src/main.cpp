// mobile_mllm_runner: the runner contract of android_app/RUNNER.md over ExecuTorch's C++ runtime.
//   mobile_mllm_runner --program-dir DIR (--image PATH --prompt TEXT | --requests FILE.jsonl)
//       [--max-new-tokens N] [--tile-batch N] [--prefill-chunk N] [--threads N] [--runs N]
//       [--warmup N] [--temperature T] [--etdump PATH] [--no-stream] [--dump-tiles PATH]
// --dump-tiles (debug, not in the contract) writes the last run's normalised tiles, float32
// [N, 3, S, S] in native byte order, so a test can compare them with mobile_mllm.vision.preprocess.
// `--model ...` selects the token-level debug mode (token_mode.cpp), `--calls` the method-level one
// (calls_mode.cpp); `--preprocess`, `--resize`, `--layout` and
// `--tokenizer` the program-free debug modes (debug_tools.cpp).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <executorch/devtools/etdump/etdump_flatcc.h>
#include <executorch/runtime/platform/runtime.h>

#include "errors.h"
#include "json.h"
#include "llm_kernels.h"
#include "session.h"

namespace executorch::extension::threadpool {
// The wheel ships libexecutorch_threadpool but not threadpool.h: the two calls used here, declared
// with the library's own (non-virtual, exported) signatures.
class ThreadPool {
 public:
  bool _unsafe_reset_threadpool(uint32_t num_threads);
  size_t get_thread_count() const;
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

namespace mobile_mllm {
int token_mode(int argc, char** argv);
int debug_tool(int argc, char** argv);
int calls_mode(int argc, char** argv);
}

namespace {

using mobile_mllm::Json;

struct Args {
  std::string program_dir, image, prompt, requests, etdump, dump_tiles;
  bool has_prompt = false, no_stream = false;
  long max_new_tokens = 128, tile_batch = 0, prefill_chunk = 0, threads = 0, runs = 1, warmup = 0;
  double temperature = 0.0;
};

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "mobile-mllm-runner: error: %s\n", msg.c_str());
  return 2;
}

bool parse_long(const std::string& text, long* out) {
  char* end = nullptr;
  *out = std::strtol(text.c_str(), &end, 10);
  return !text.empty() && end != nullptr && *end == '\0';
}

// 0 on success, else the exit code (2) after printing the error.
int parse_args(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (k == "--no-stream") {
      a->no_stream = true;
      continue;
    }
    if (k == "-h" || k == "--help") {
      std::printf("usage: mobile_mllm_runner --program-dir DIR (--image PATH --prompt TEXT | --requests FILE.jsonl) "
                  "[--max-new-tokens N] [--tile-batch N] [--prefill-chunk N] [--threads N] [--runs N] [--warmup N] "
                  "[--temperature T] [--etdump PATH] [--no-stream] [--dump-tiles PATH]\n(android_app/RUNNER.md)\n");
      std::exit(0);
    }
    if (!value(&v)) return usage_error("argument " + k + " needs a value (or is unknown)");
    long n = 0;
    auto number = [&](long* out, long least) {
      if (!parse_long(v, &n) || n < least) return false;
      *out = n;
      return true;
    };
    if (k == "--program-dir") a->program_dir = v;
    else if (k == "--image") a->image = v;
    else if (k == "--prompt") { a->prompt = v; a->has_prompt = true; }
    else if (k == "--requests") a->requests = v;
    else if (k == "--etdump") a->etdump = v;
    else if (k == "--dump-tiles") a->dump_tiles = v;
    else if (k == "--max-new-tokens") { if (!number(&a->max_new_tokens, 1)) return usage_error("--max-new-tokens must be an integer >= 1, got " + v); }
    else if (k == "--tile-batch") { if (!number(&a->tile_batch, 1)) return usage_error("--tile-batch must be an integer >= 1, got " + v); }
    else if (k == "--prefill-chunk") { if (!number(&a->prefill_chunk, 1)) return usage_error("--prefill-chunk must be an integer >= 1, got " + v); }
    else if (k == "--threads") { if (!number(&a->threads, 0)) return usage_error("--threads must be an integer >= 0, got " + v); }
    else if (k == "--runs") { if (!number(&a->runs, 1)) return usage_error("--runs must be an integer >= 1, got " + v); }
    else if (k == "--warmup") { if (!number(&a->warmup, 0)) return usage_error("--warmup must be an integer >= 0, got " + v); }
    else if (k == "--temperature") {
      char* end = nullptr;
      a->temperature = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(a->temperature >= 0)) return usage_error("--temperature must be a number >= 0, got " + v);
    } else {
      return usage_error("unknown argument " + k);
    }
  }
  if (a->program_dir.empty()) return usage_error("--program-dir is required");
  if (a->requests.empty() == !a->has_prompt || (!a->requests.empty() && !a->image.empty())) {
    return usage_error("give --prompt (with --image) or --requests, not both");
  }
  return 0;
}

// ExecuTorch's form: the JSON after "PyTorchObserver ", one line, flushed.
void emit(const Json& record) {
  std::string line = "PyTorchObserver " + record.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

// observer_record of mobile_mllm/device/runner.py: Stats.to_dict() plus ExecuTorch's and the contract's keys.
Json observer_record(const mobile_mllm::Answer& a, long run) {
  Json r = a.stats.to_json();
  r.set("prompt_tokens", Json::integer(a.stats.num_prompt_tokens));
  r.set("generated_tokens", Json::integer(a.stats.num_generated_tokens));
  r.set("SCALING_FACTOR_UNITS_PER_SECOND", Json::integer(1000));
  r.set("run", Json::integer(run));
  r.set("text", Json::string(a.text));
  r.set("stop_reason", Json::string(a.stop_reason));
  return r;
}

void write_file(const std::string& path, const void* data, size_t size) {
  const std::string tmp = path + ".part";
  std::ofstream out(tmp, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out || std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot write " + path);
}

int run_single(const Args& a, mobile_mllm::Session& s) {
  for (long i = 0; i < a.warmup; ++i) {
    s.reset();  // every run a new conversation, with or without an image
    s.ask(a.prompt, a.image, a.max_new_tokens, nullptr);
  }
  auto stream = [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  for (long run = 0; run < a.runs; ++run) {
    s.reset();
    const mobile_mllm::Answer ans =
        s.ask(a.prompt, a.image, a.max_new_tokens, a.no_stream ? std::function<void(const std::string&)>() : stream);
    std::fputs("\n", stdout);
    emit(observer_record(ans, run));
  }
  if (!a.dump_tiles.empty()) {
    const auto& t = s.last_tiles();
    write_file(a.dump_tiles, t.data(), t.size() * sizeof(float));
  }
  return 0;
}

int run_batch(const Args& a, mobile_mllm::Session& s) {
  std::ifstream in(a.requests);
  if (!in) throw mobile_mllm::ConfigError("--requests " + a.requests + " cannot be read");
  std::string line;
  std::vector<Json> requests;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      requests.push_back(Json::parse(line));
    } catch (const mobile_mllm::JsonError& e) {
      throw mobile_mllm::ConfigError("--requests " + a.requests + ": not JSON lines (" + e.what() + ")");
    }
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    const Json& req = requests[i];
    Json id = Json::string(std::to_string(i));
    if (const Json* v = req.find("id")) id = *v;
    try {
      const Json* prompt = req.find("prompt");
      if (prompt == nullptr || !prompt->is_string()) throw mobile_mllm::ConfigError("request has no \"prompt\" string");
      std::string image;
      if (const Json* im = req.find("image"); im != nullptr && !im->is_null()) image = im->as_string("image");
      long max_new = a.max_new_tokens;
      if (const Json* m = req.find("max_new_tokens")) max_new = static_cast<long>(m->as_int("max_new_tokens"));
      if (max_new < 1) throw mobile_mllm::ConfigError("max_new_tokens must be >= 1");
      bool styled = true;
      if (const Json* st = req.find("styled"); st != nullptr && !st->is_null()) styled = st->as_bool("styled");
      // a request is a new conversation unless it says "follow_up": true (then, without an image, it
      // continues the previous request's conversation)
      bool follow_up = false;
      if (const Json* f = req.find("follow_up"); f != nullptr && !f->is_null()) follow_up = f->as_bool("follow_up");
      if (!follow_up) s.reset();
      const mobile_mllm::Answer ans = s.ask(prompt->as_string(), image, max_new, nullptr, styled);
      Json r = observer_record(ans, static_cast<long>(i));
      r.set("id", id);
      emit(r);
    } catch (const mobile_mllm::MllmError& e) {
      Json r = Json::object();
      r.set("id", id);
      const std::string msg = e.what();
      r.set("error", Json::string(msg.substr(0, msg.find('\n'))));
      r.set("error_type", Json::string(e.type()));
      emit(r);
    } catch (const mobile_mllm::JsonError& e) {
      Json r = Json::object();
      r.set("id", id);
      r.set("error", Json::string(e.what()));
      r.set("error_type", Json::string("ConfigError"));
      emit(r);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  executorch::runtime::runtime_init();
  if (!mobile_mllm::register_llm_kernels()) return 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--model") == 0) return mobile_mllm::token_mode(argc, argv);
    if (std::strcmp(argv[i], "--calls") == 0) return mobile_mllm::calls_mode(argc, argv);
    if (std::strcmp(argv[i], "--preprocess") == 0 || std::strcmp(argv[i], "--tokenizer") == 0 ||
        std::strcmp(argv[i], "--resize") == 0 || std::strcmp(argv[i], "--layout") == 0) {
      return mobile_mllm::debug_tool(argc, argv);
    }
  }
  Args a;
  if (int rc = parse_args(argc, argv, &a)) return rc;
  if (a.threads > 0) {
    auto* pool = executorch::extension::threadpool::get_threadpool();
    if (pool != nullptr) pool->_unsafe_reset_threadpool(static_cast<uint32_t>(a.threads));
  }
  std::unique_ptr<executorch::etdump::ETDumpGen> etdump;
  if (!a.etdump.empty()) etdump = std::make_unique<executorch::etdump::ETDumpGen>();
  return mobile_mllm::exit_code_of([&] {
    mobile_mllm::SessionOptions opt;
    opt.tile_batch = a.tile_batch;
    opt.prefill_chunk = a.prefill_chunk;
    opt.temperature = a.temperature;
    opt.tracer = etdump.get();
    mobile_mllm::Session session(a.program_dir, opt);
    const int rc = a.requests.empty() ? run_single(a, session) : run_batch(a, session);
    if (etdump) {
      const auto result = etdump->get_etdump_data();
      if (result.buf != nullptr) {
        write_file(a.etdump, result.buf, result.size);
        std::free(result.buf);
      } else {
        std::fprintf(stderr, "mobile-mllm-runner: no ETDump data was recorded\n");
      }
    }
    return rc;
  });
}
