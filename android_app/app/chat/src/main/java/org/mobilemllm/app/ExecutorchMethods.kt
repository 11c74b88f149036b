package org.mobilemllm.app

import org.mobilemllm.core.Contract
import org.mobilemllm.core.ProgramMethods
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

/**
 * The program's three methods over ExecuTorch's Android API (org.pytorch.executorch.Module):
 * one `Module` for model.pte, memory-mapped; `execute(method, EValue...)` per call. ExecuTorch's
 * Module loads each method with its own planned memory, so text_decoder's KV cache (a mutable
 * buffer of that method) survives token_embedding and vision_encoder calls in between.
 */
class ExecutorchMethods(programPath: String, threads: Int, override val maxContextLen: Int, private val hiddenSize: Int) :
    ProgramMethods, AutoCloseable {
    private val module: Module = Module.load(programPath, Module.LOAD_MODE_MMAP, threads)

    init {
        // load every method now, so the first answer's timings hold no loading
        for (m in listOf(Contract.VISION_ENCODER, Contract.TOKEN_EMBEDDING, Contract.TEXT_DECODER)) module.loadMethod(m)
    }

    override fun visionEncoder(tiles: FloatArray, n: Int, tileSize: Int): FloatArray {
        val input = Tensor.fromBlob(tiles, longArrayOf(n.toLong(), 3, tileSize.toLong(), tileSize.toLong()))
        return module.execute(Contract.VISION_ENCODER, EValue.from(input))[0].toTensor().dataAsFloatArray
    }

    override fun tokenEmbedding(ids: LongArray): FloatArray {
        val input = Tensor.fromBlob(ids, longArrayOf(1, ids.size.toLong()))
        return module.execute(Contract.TOKEN_EMBEDDING, EValue.from(input))[0].toTensor().dataAsFloatArray
    }

    override fun textDecoder(embeds: FloatArray, numPositions: Int, startPos: Long): FloatArray {
        val x = Tensor.fromBlob(embeds, longArrayOf(1, numPositions.toLong(), hiddenSize.toLong()))
        val pos = Tensor.fromBlob(longArrayOf(startPos), longArrayOf(1))
        return module.execute(Contract.TEXT_DECODER, EValue.from(x), EValue.from(pos))[0].toTensor().dataAsFloatArray
    }

    override fun close() {
        module.destroy()
    }
}
