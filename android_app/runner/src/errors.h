// The runner's error kinds, named and numbered as mobile_mllm/errors.py names them, so a batch
// line's "error_type" and the exit code mean the same from the host and the native runner
// (android_app/RUNNER.md: 2 bad arguments, 3 image, 5 context, 6 contract, 1 anything else).
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>

namespace mobile_mllm {

class MllmError : public std::runtime_error {
 public:
  MllmError(const char* type, int exit_code, const std::string& msg)
      : std::runtime_error(msg), type_(type), exit_code_(exit_code) {}
  const char* type() const { return type_; }
  int exit_code() const { return exit_code_; }

 private:
  const char* type_;
  int exit_code_;
};

struct ConfigError : MllmError {
  explicit ConfigError(const std::string& m) : MllmError("ConfigError", 2, m) {}
};
struct ImageError : MllmError {
  explicit ImageError(const std::string& m) : MllmError("ImageError", 3, m) {}
};
struct ModelLoadError : MllmError {  // errors.py gives it 4; the contract reports it as 1
  explicit ModelLoadError(const std::string& m) : MllmError("ModelLoadError", 1, m) {}
};
struct ContextOverflowError : MllmError {
  explicit ContextOverflowError(const std::string& m) : MllmError("ContextOverflowError", 5, m) {}
};
struct ContractError : MllmError {
  explicit ContractError(const std::string& m) : MllmError("ContractError", 6, m) {}
};

// Runs body() and returns its exit code; an exception becomes one "error:" line on stderr and the
// contract's exit code (an MllmError's own, 1 for anything else).
template <class Body>
int exit_code_of(Body&& body) {
  try {
    return body();
  } catch (const MllmError& e) {
    std::fprintf(stderr, "mobile-mllm-runner: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mobile-mllm-runner: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace mobile_mllm
