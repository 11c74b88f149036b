package org.mobilemllm.app

import android.content.Context
import java.io.File
import org.mobilemllm.core.Contract
import org.mobilemllm.core.ContractException
import org.mobilemllm.core.GenerationConfig
import org.mobilemllm.core.Manifest
import org.mobilemllm.core.Session
import org.mobilemllm.core.Stats
import org.mobilemllm.core.Tokenizer

/** Where program folders are looked for: what `mobile-mllm push` writes, then the app's own storage. */
object ModelFolders {
    const val PUSHED_ROOT = "/data/local/tmp/mobile_mllm"

    /** Folders holding model.pte + manifest.json + tokenizer.json, pushed ones first. */
    fun list(context: Context): List<File> {
        val roots = listOf(File(PUSHED_ROOT), File(context.filesDir, "models"), context.getExternalFilesDir("models"))
        return roots.filterNotNull().flatMap { root -> root.listFiles()?.filter { isProgramDir(it) }?.sortedBy { it.name } ?: emptyList() }
    }

    fun isProgramDir(dir: File): Boolean =
        listOf(Contract.PROGRAM_FILE, Contract.MANIFEST_FILE, Contract.TOKENIZER_FILE).all { File(dir, it).isFile }
}

/** A loaded program folder: the manifest, the tokenizer, the methods, and the load timestamps. */
class LoadedModel private constructor(
    val dir: File,
    val manifest: Manifest,
    val tokenizer: Tokenizer,
    val methods: ExecutorchMethods,
    val loadMs: Pair<Double, Double>
) : AutoCloseable {
    fun newSession(generation: GenerationConfig): Session = Session(methods, tokenizer, manifest, generation, loadMs)

    override fun close() = methods.close()

    companion object {
        /**
         * Reads and checks manifest.json against the schema shipped in the assets, reads the
         * tokenizer, loads model.pte (the model-load timestamps cover all of it, as the runner's do).
         */
        fun open(context: Context, dir: File, threads: Int): LoadedModel {
            val start = Stats.nowMs()
            if (!ModelFolders.isProgramDir(dir)) {
                throw ContractException("$dir is not a program folder: it needs ${Contract.PROGRAM_FILE}, ${Contract.MANIFEST_FILE} and ${Contract.TOKENIZER_FILE} (mobile-mllm push)")
            }
            val schema = context.assets.open("manifest.schema.json").use { it.readBytes().toString(Charsets.UTF_8) }
            val manifest = Manifest.parse(File(dir, Contract.MANIFEST_FILE).readText(), schema, File(dir, Contract.MANIFEST_FILE).path)
            if (manifest.visionEngine != Contract.ENGINE_EXECUTORCH) {
                throw ContractException("${dir.name}: vision_engine ${manifest.visionEngine} is not supported by the app (only executorch)")
            }
            val tokenizer = Tokenizer.fromJson(File(dir, Contract.TOKENIZER_FILE).readText())
            val methods = ExecutorchMethods(File(dir, Contract.PROGRAM_FILE).path, threads, manifest.maxContextLen, manifest.hiddenSize)
            return LoadedModel(dir, manifest, tokenizer, methods, Pair(start, Stats.nowMs()))
        }
    }
}
