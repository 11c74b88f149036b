package org.mobilemllm.core

/**
 * The error families of the toolkit (mobile_mllm/errors.py), each with the runner contract's exit
 * code (android_app/RUNNER.md), so the benchmark activity reports failures the way the native and
 * host runners do.
 */
open class MobileMllmException(message: String, val exitCode: Int, val errorType: String) : RuntimeException(message)

/** A setting is invalid (exit code 2, as bad arguments). */
class ConfigException(message: String) : MobileMllmException(message, 2, "ConfigError")

/** The image cannot be loaded or has no pixels (exit code 3). */
class ImageException(message: String) : MobileMllmException(message, 3, "ImageError")

/** The prompt (with its image tokens) does not fit the context (exit code 5). */
class ContextOverflowException(message: String) : MobileMllmException(message, 5, "ContextOverflowError")

/** The program, manifest or tokenizer violates the contract (exit code 6). */
class ContractException(message: String) : MobileMllmException(message, 6, "ContractError")
