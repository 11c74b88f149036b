package org.mobilemllm.core

/**
 * The result file BenchmarkActivity writes and `mobile-mllm profile --via app` reads
 * (mobile_mllm/device/app.py, read_result): one JSON object, format + version, the runner
 * contract's stats records, or an error with the contract's exit code. Here, not in the Android
 * module, so the JVM tests can hand a file to the Python reader.
 */
object BenchmarkResult {
    const val FORMAT = "mobile-mllm-app-benchmark"
    const val VERSION = 1

    /** The file's text for measured runs (each a [Stats.record]). */
    @JvmStatic
    fun success(records: List<Map<String, Any?>>): String = document(records, null)

    /** The file's text for a failure: the message, its error family and the contract's exit code. */
    @JvmStatic
    fun failure(message: String, errorType: String, exitCode: Int): String =
        document(emptyList(), linkedMapOf("error" to message, "error_type" to errorType, "exit_code" to exitCode))

    /** [failure] of one of the toolkit's errors. */
    @JvmStatic
    fun failure(e: MobileMllmException): String = failure(e.message ?: e.toString(), e.errorType, e.exitCode)

    private fun document(records: List<Map<String, Any?>>, error: Map<String, Any?>?): String =
        Json.write(linkedMapOf("format" to FORMAT, "version" to VERSION, "records" to records, "error" to error))
}
