package org.mobilemllm.app

import android.app.Activity
import android.os.Bundle
import android.util.Log
import java.io.File
import org.mobilemllm.core.GenerationConfig
import org.mobilemllm.core.BenchmarkResult
import org.mobilemllm.core.MobileMllmException

/**
 * Benchmark started over ADB (the pattern of ExecuTorch's benchmark app), the app-side half of
 * `mobile-mllm profile --via app` (mobile_mllm/device/app.py):
 *
 *     adb shell am start -W -S -n org.mobilemllm.app/.BenchmarkActivity --es program_dir DIR \
 *         --es prompt TEXT [--es image PATH] [--ei runs N] [--ei warmup N] [--ei max_new_tokens N] \
 *         [--ei threads N] [--ei tile_batch N] [--ei prefill_chunk N] [--es result NAME]
 *
 * Loads the program once, answers `warmup` times unrecorded, then `runs` times, each a new
 * conversation over the same image and prompt, and writes `files/NAME` (default
 * benchmark_result.json) in the app's storage, atomically: {"format": "mobile-mllm-app-benchmark",
 * "version": 1, "records": [the runner contract's stats records], "error": null or {"error",
 * "error_type", "exit_code"}}. Read it with `adb shell run-as org.mobilemllm.app cat files/NAME`.
 */
class BenchmarkActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val extras = intent.extras ?: Bundle()
        val resultName = extras.getString("result") ?: "benchmark_result.json"
        Thread({
            val text = try {
                BenchmarkResult.success(run(extras))
            } catch (e: MobileMllmException) {
                BenchmarkResult.failure(e)
            } catch (e: Exception) { // the runtime failed (ExecutorchRuntimeException, out of memory ...): exit code 1
                Log.e(TAG, "benchmark failed", e)
                BenchmarkResult.failure(e.toString(), e.javaClass.simpleName, 1)
            }
            writeAtomically(File(filesDir, resultName), text)
            runOnUiThread { finish() }
        }, "benchmark").start()
    }

    private fun run(extras: Bundle): List<Map<String, Any?>> {
        val dir = extras.getString("program_dir") ?: throw org.mobilemllm.core.ConfigException("--es program_dir is required")
        val prompt = extras.getString("prompt") ?: throw org.mobilemllm.core.ConfigException("--es prompt is required")
        val imagePath = extras.getString("image")
        val runs = extras.getInt("runs", 1)
        val warmup = extras.getInt("warmup", 0)
        val generation = GenerationConfig(
            maxNewTokens = extras.getInt("max_new_tokens", 128),
            prefillChunk = if (extras.containsKey("prefill_chunk")) extras.getInt("prefill_chunk") else null,
            tileBatch = if (extras.containsKey("tile_batch")) extras.getInt("tile_batch") else null
        )
        LoadedModel.open(this, File(dir), extras.getInt("threads", 0)).use { model ->
            val image = imagePath?.let { Images.load(it, model.manifest.vision) }
            val session = model.newSession(generation)
            val records = ArrayList<Map<String, Any?>>()
            for (i in 0 until warmup + runs) {
                session.reset()
                val answer = session.ask(prompt, image)
                if (i >= warmup) records.add(answer.stats.record(i - warmup, answer.text, answer.stopReason))
                Log.i(TAG, "run ${i - warmup}: ${answer.stats.numGeneratedTokens} tokens, ${answer.stopReason}")
            }
            return records
        }
    }

    private fun writeAtomically(target: File, text: String) {
        val tmp = File(target.parentFile, ".${target.name}.tmp")
        tmp.writeText(text)
        if (!tmp.renameTo(target)) Log.e(TAG, "could not write $target")
    }

    companion object {
        private const val TAG = "mobile-mllm-bench"
    }
}
