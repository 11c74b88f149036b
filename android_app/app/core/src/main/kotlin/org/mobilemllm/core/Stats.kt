package org.mobilemllm.core

/**
 * Raw timestamps (ms since the epoch) and counts of one answer, and the rates derived from them,
 * as mobile_mllm/runtime/stats.py (ExecuTorch's stats.h): the same keys in the same order, the
 * same derive_rates, so the app's records, the runners' `PyTorchObserver` lines and the host's
 * reports compare directly. [rows] is stats_text.stats_rows, the chat screen's per-message panel.
 */
data class Stats(
    val modelLoadStartMs: Double = 0.0,
    val modelLoadEndMs: Double = 0.0,
    val inferenceStartMs: Double = 0.0,
    val imageEncodeStartMs: Double = 0.0,
    val imageEncodeEndMs: Double = 0.0,
    val visionBatchMs: List<Double> = emptyList(),
    val visionBatchSizes: List<Int> = emptyList(),
    val promptEvalEndMs: Double = 0.0,
    val firstTokenMs: Double = 0.0,
    val inferenceEndMs: Double = 0.0,
    val numPromptTokens: Int = 0,
    val numImageTokens: Int = 0,
    val numTiles: Int = 0,
    val numGeneratedTokens: Int = 0,
    val numCachedTokens: Int = 0,
    val grid: Grid? = null,
    val reducedByBudget: Boolean = false,
    val peakRssBytes: Long = 0,
    val extra: Map<String, Any?> = emptyMap()
) {
    /** Raw fields then derived rates, keys and order as Stats.to_dict(). */
    fun toMap(): LinkedHashMap<String, Any?> {
        val out = linkedMapOf<String, Any?>(
            "model_load_start_ms" to modelLoadStartMs,
            "model_load_end_ms" to modelLoadEndMs,
            "inference_start_ms" to inferenceStartMs,
            "image_encode_start_ms" to imageEncodeStartMs,
            "image_encode_end_ms" to imageEncodeEndMs,
            "vision_batch_ms" to visionBatchMs,
            "vision_batch_sizes" to visionBatchSizes,
            "prompt_eval_end_ms" to promptEvalEndMs,
            "first_token_ms" to firstTokenMs,
            "inference_end_ms" to inferenceEndMs,
            "num_prompt_tokens" to numPromptTokens,
            "num_image_tokens" to numImageTokens,
            "num_tiles" to numTiles,
            "num_generated_tokens" to numGeneratedTokens,
            "num_cached_tokens" to numCachedTokens,
            "grid" to (if (grid == null) null else listOf(grid.cols, grid.rows)),
            "reduced_by_budget" to reducedByBudget,
            "peak_rss_bytes" to peakRssBytes,
            "extra" to extra
        )
        out.putAll(deriveRates())
        return out
    }

    private fun rate(count: Int, ms: Double): Double = if (ms > 0) count * 1000.0 / ms else 0.0

    /** Every rate and duration, as stats.derive_rates. */
    fun deriveRates(): LinkedHashMap<String, Double> {
        val prefillStart = if (imageEncodeEndMs != 0.0) imageEncodeEndMs else inferenceStartMs
        val encodeMs = imageEncodeEndMs - imageEncodeStartMs
        val prefillMs = promptEvalEndMs - prefillStart
        val decodeMs = inferenceEndMs - promptEvalEndMs
        return linkedMapOf(
            "model_load_ms" to modelLoadEndMs - modelLoadStartMs,
            "image_encode_ms" to encodeMs,
            "image_encode_ms_per_tile" to (if (numTiles != 0) encodeMs / numTiles else 0.0),
            "prefill_ms" to prefillMs,
            "prefill_tok_s" to rate(numPromptTokens, prefillMs),
            "time_to_first_token_ms" to (if (firstTokenMs != 0.0) firstTokenMs - inferenceStartMs else 0.0),
            "decode_ms" to decodeMs,
            "decode_tok_s" to rate(numGeneratedTokens, decodeMs),
            "total_ms" to inferenceEndMs - inferenceStartMs
        )
    }

    /**
     * The runner contract's record (android_app/RUNNER.md, "The stats line"): [toMap] plus
     * ExecuTorch's prompt_tokens, generated_tokens, SCALING_FACTOR_UNITS_PER_SECOND and ours run,
     * text, stop_reason.
     */
    fun record(run: Int, text: String, stopReason: String): LinkedHashMap<String, Any?> {
        val out = toMap()
        out["prompt_tokens"] = numPromptTokens
        out["generated_tokens"] = numGeneratedTokens
        out["SCALING_FACTOR_UNITS_PER_SECOND"] = 1000
        out["run"] = run
        out["text"] = text
        out["stop_reason"] = stopReason
        return out
    }

    companion object {
        /** Wall-clock ms since the epoch, fractional (a tiny model's tile takes under 1 ms). */
        private val epochAtStartMs = System.currentTimeMillis()
        private val nanoAtStart = System.nanoTime()

        @JvmStatic
        fun nowMs(): Double = epochAtStartMs + (System.nanoTime() - nanoAtStart) / 1e6

        /** Python's f"{v:.Nf}": the exact binary value rounded half to even. */
        private fun f(format: String, v: Double): String {
            val digits = format.substring(2, format.length - 1).toInt()
            return java.math.BigDecimal(v).setScale(digits, java.math.RoundingMode.HALF_EVEN).toPlainString()
        }

        /** `(label, value)` rows of one answer's stats (a Stats.to_dict()-shaped map), as stats_text.stats_rows. */
        @JvmStatic
        fun rows(s: Map<String, Any?>): List<Pair<String, String>> {
            fun d(k: String): Double = (s[k] as Number).toDouble()
            fun n(k: String): Long = (s[k] as Number).toLong()
            val g = s["grid"] as List<*>?
            val grid = if (g != null && g.isNotEmpty()) "${g[0]}x${g[1]}" else "-"
            val reduced = if (s["reduced_by_budget"] == true) " (reduced to fit the context)" else ""
            return listOf(
                Pair("model load", "${f("%.0f", d("model_load_ms"))} ms"),
                Pair("grid", "$grid$reduced, ${n("num_tiles")} tiles, ${n("num_image_tokens")} image tokens"),
                Pair("image encode", "${f("%.1f", d("image_encode_ms"))} ms (${f("%.1f", d("image_encode_ms_per_tile"))} ms/tile)"),
                Pair("prefill", "${n("num_prompt_tokens")} tokens in ${f("%.1f", d("prefill_ms"))} ms (${f("%.1f", d("prefill_tok_s"))} tok/s)"),
                Pair("cached", "${n("num_cached_tokens")} tokens reused"),
                Pair("first token", "${f("%.1f", d("time_to_first_token_ms"))} ms"),
                Pair("decode", "${n("num_generated_tokens")} tokens (${f("%.1f", d("decode_tok_s"))} tok/s)"),
                Pair("peak RSS", "${f("%.0f", d("peak_rss_bytes") / 1048576.0)} MiB")
            )
        }
    }
}

/** The process's memory from /proc/self/status (Linux and Android), as runtime/stats.peak_rss_bytes. */
object ProcStatus {
    @JvmStatic
    fun peakRssBytes(): Long {
        return try {
            java.io.File("/proc/self/status").readLines().firstOrNull { it.startsWith("VmHWM:") }
                ?.split(Regex("\\s+"))?.get(1)?.toLong()?.times(1024) ?: 0L
        } catch (e: java.io.IOException) {
            0L
        }
    }
}
