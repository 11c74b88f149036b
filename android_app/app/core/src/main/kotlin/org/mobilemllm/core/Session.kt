package org.mobilemllm.core

/**
 * The inference loop of mobile_mllm/runtime/session.py in Kotlin: plan the turn (grid shrunk to
 * leave room for the answer), tile and normalise the image, encode tiles in batches, lay the
 * prompt out, prefill in chunks, decode token by token, and record [Stats]. The program is
 * reached only through [ProgramMethods], which the app implements over ExecuTorch's
 * org.pytorch.executorch.Module (one call per method), so this file needs no Android.
 */
interface ProgramMethods {
    /** KV-cache positions of text_decoder. */
    val maxContextLen: Int

    /** `vision_encoder` on [n] tiles `[n, 3, S, S]` (flattened); returns `[n, tokens_per_tile, D]` flattened. */
    fun visionEncoder(tiles: FloatArray, n: Int, tileSize: Int): FloatArray

    /** `token_embedding` on `[1, T]` ids; returns `[1, T, D]` flattened. */
    fun tokenEmbedding(ids: LongArray): FloatArray

    /** `text_decoder` on `[1, T, D]` embeddings at [startPos]; returns the last position's logits `[V]`. */
    fun textDecoder(embeds: FloatArray, numPositions: Int, startPos: Long): FloatArray
}

/** One answer: its text, token ids (a stop token included), why it stopped, and its stats. */
data class Answer(val text: String, val tokens: List<Int>, val stopReason: String, val stats: Stats)

/** Sampling and length; temperature 0 is greedy (argmax, first maximum on ties, as torch.argmax). */
data class GenerationConfig(
    val maxNewTokens: Int = 128,
    val temperature: Double = 0.0,
    val seed: Long = 0,
    /** Positions per text_decoder call while prefilling (the manifest's prefill_chunk unless set). */
    val prefillChunk: Int? = null,
    /** Tiles per vision_encoder call (the manifest's tile_batch unless set). */
    val tileBatch: Int? = null
)

/** The plan of one turn, before any pixel is decoded or any model call. */
class TurnPlan internal constructor(val segments: List<Segment>, val numPositions: Int, val tiles: TilePlan?)

class Session(
    private val methods: ProgramMethods,
    private val tokenizer: Tokenizer,
    private val manifest: Manifest,
    private val generation: GenerationConfig = GenerationConfig(),
    private val modelLoadMs: Pair<Double, Double> = Pair(0.0, 0.0),
    /** The process's peak resident set (VmHWM), read after each answer. */
    private val peakRss: () -> Long = { ProcStatus.peakRssBytes() }
) {
    private val tokenIds = Layout.specialTokenIds(tokenizer, manifest.prompt)
    private val eosIds = manifest.eosIds.toSet()
    private val prefillChunk = generation.prefillChunk ?: manifest.prefillChunk
    private val tileBatch = generation.tileBatch ?: manifest.tileBatch
    private var pos = 0
    private var unfed: List<Int> = emptyList()
    private var started = false
    private var random = java.util.Random(generation.seed)

    init {
        if (prefillChunk < 1 || prefillChunk > manifest.maxSeqLen) {
            throw ConfigException("prefill_chunk must be in 1..${manifest.maxSeqLen} (the program's max_seq_len), got $prefillChunk")
        }
        if (tileBatch < 1 || tileBatch > manifest.tileBatch) {
            throw ConfigException("tile_batch must be in 1..${manifest.tileBatch} (the program's), got $tileBatch")
        }
    }

    /** KV-cache positions holding the conversation so far. */
    val position: Int get() = pos

    /** Forget the conversation; the next question starts at position 0. */
    fun reset() {
        pos = 0
        unfed = emptyList()
        started = false
        random = java.util.Random(generation.seed)
    }

    private fun encode(text: String): IntArray = tokenizer.encode(text)

    /**
     * Lays the turn out and sizes it, shrinking the grid until the prompt leaves room for
     * max_new_tokens answer tokens, as Session._plan does.
     *
     * @throws ConfigException an empty question.
     * @throws ContextOverflowException the turn does not fit the KV cache.
     */
    fun plan(question0: String, imageSize: Size?, tokenBudget: Int? = null): TurnPlan {
        if (question0.trim().isEmpty()) throw ConfigException("the question is empty ('$question0'); ask something")
        val question = manifest.prompt.styleQuestion(question0)
        if (imageSize == null) {
            val segs = if (started) Layout.nextTurn(manifest.prompt, question, ::encode, unfed)
            else Layout.firstTurn(manifest.prompt, question, ::encode, tokenIds, null)
            return checked(TurnPlan(segs, Layout.countPositions(segs), null), pos)
        }
        val room = methods.maxContextLen - generation.maxNewTokens
        var plan = imagePlan(question, Tiling.planTiles(imageSize, manifest.vision, tokenBudget))
        while (plan.numPositions > room) {
            val current = plan.tiles!!
            val budget = current.imageTokens - (plan.numPositions - room)
            val smaller = try {
                Tiling.planTiles(imageSize, manifest.vision, budget)
            } catch (e: ContextOverflowException) {
                break
            }
            if (smaller.imageTokens >= current.imageTokens) break
            plan = imagePlan(question, smaller)
        }
        return checked(plan, 0)
    }

    private fun imagePlan(question: String, tiles: TilePlan): TurnPlan {
        val block = Layout.imageBlock(manifest.prompt, tiles.grid, tiles.thumbnailIndex, manifest.vision.tokensPerTile, tokenIds, ::encode)
        val segs = Layout.firstTurn(manifest.prompt, question, ::encode, tokenIds, block)
        return TurnPlan(segs, Layout.countPositions(segs), tiles)
    }

    private fun checked(plan: TurnPlan, start: Int): TurnPlan {
        val free = methods.maxContextLen - start
        if (plan.numPositions > free) {
            throw ContextOverflowException(
                "the prompt needs ${plan.numPositions} positions but only $free of max_context_len ${methods.maxContextLen} are free; " +
                    "shorten the prompt, use a smaller image grid or start a new conversation"
            )
        }
        return plan
    }

    /**
     * Answers [question] about [image] (which starts a new conversation) or, without one,
     * continues this conversation; [onText] gets each new piece of answer text.
     */
    fun ask(question: String, image: RgbImage?, onText: ((String) -> Unit)? = null, tokenBudget: Int? = null): Answer {
        val start = Stats.nowMs()
        val plan = plan(question, image?.size, tokenBudget)
        if (image != null) reset()
        val cached = pos
        var stats = Stats(modelLoadStartMs = modelLoadMs.first, modelLoadEndMs = modelLoadMs.second, inferenceStartMs = start, numCachedTokens = cached)
        var imageEmbeds: FloatArray? = null
        if (plan.tiles != null && image != null) {
            val tiles = Pixels.renderTiles(image, plan.tiles, manifest.vision)
            val pixels = Pixels.normalize(tiles, manifest.vision.mean, manifest.vision.std)
            val encodeStart = Stats.nowMs()
            val s = manifest.vision.tileSize
            val perTile = 3 * s * s
            val batchMs = ArrayList<Double>()
            val batchSizes = ArrayList<Int>()
            val outputs = ArrayList<FloatArray>()
            var i = 0
            while (i < tiles.size) {
                val n = Math.min(tileBatch, tiles.size - i)
                val t0 = Stats.nowMs()
                outputs.add(methods.visionEncoder(pixels.copyOfRange(i * perTile, (i + n) * perTile), n, s))
                batchMs.add(Stats.nowMs() - t0)
                batchSizes.add(n)
                i += n
            }
            imageEmbeds = concat(outputs)
            stats = stats.copy(
                imageEncodeStartMs = encodeStart, imageEncodeEndMs = Stats.nowMs(), visionBatchMs = batchMs,
                visionBatchSizes = batchSizes, numTiles = tiles.size, grid = plan.tiles.grid,
                reducedByBudget = plan.tiles.reducedByBudget
            )
        }
        val embeds = embedSegments(plan.segments, imageEmbeds, plan.tiles?.numTiles ?: 0)
        val hidden = embeds.size / plan.numPositions
        var logits: FloatArray? = null
        var p = 0
        while (p < plan.numPositions) {
            val n = Math.min(prefillChunk, plan.numPositions - p)
            logits = methods.textDecoder(embeds.copyOfRange(p * hidden, (p + n) * hidden), n, (pos + p).toLong())
            p += n
        }
        pos += plan.numPositions
        started = true
        stats = stats.copy(promptEvalEndMs = Stats.nowMs())
        val tokens = ArrayList<Int>()
        var shown = ""
        var reason: String
        var current = logits ?: throw ContextOverflowException("nothing to prefill: the prompt is empty")
        var next = pos
        while (true) {
            val token = pick(current)
            if (tokens.isEmpty()) stats = stats.copy(firstTokenMs = Stats.nowMs())
            tokens.add(token)
            if (onText != null) {
                val text = decodeAnswer(tokens)
                if (text.length > shown.length && text.startsWith(shown)) {
                    onText(text.substring(shown.length))
                    shown = text
                }
            }
            if (token in eosIds) { reason = "eos"; break }
            if (tokens.size >= generation.maxNewTokens) { reason = "max_new_tokens"; break }
            if (next >= methods.maxContextLen) { reason = "context_full"; break }
            current = methods.textDecoder(methods.tokenEmbedding(longArrayOf(token.toLong())), 1, next.toLong())
            next++
        }
        pos += tokens.size - 1 // every token but the last was fed to the decoder
        unfed = if (reason == "eos") emptyList() else listOf(tokens[tokens.size - 1])
        var imageTokens = 0
        for (s in plan.segments) if (s is TileRef) imageTokens += s.numTokens
        stats = stats.copy(
            inferenceEndMs = Stats.nowMs(), numPromptTokens = plan.numPositions, numImageTokens = imageTokens,
            numGeneratedTokens = tokens.size, peakRssBytes = peakRss()
        )
        return Answer(decodeAnswer(tokens), tokens, reason, stats)
    }

    private fun decodeAnswer(tokens: List<Int>): String =
        tokenizer.decode(tokens.filter { it !in eosIds }.toIntArray(), true)

    private fun embedSegments(segments: List<Segment>, image: FloatArray?, numTiles: Int): FloatArray {
        val parts = ArrayList<FloatArray>()
        for (seg in segments) {
            if (seg is TokenRun) {
                var i = 0
                while (i < seg.ids.size) {
                    val n = Math.min(prefillChunk, seg.ids.size - i)
                    val ids = LongArray(n) { seg.ids[i + it].toLong() }
                    parts.add(methods.tokenEmbedding(ids))
                    i += n
                }
            } else {
                val ref = seg as TileRef
                if (image == null || ref.tile >= numTiles) {
                    throw ContractException("the layout wants tile ${ref.tile} but vision_encoder gave ${if (image == null) "nothing" else "$numTiles tiles"}")
                }
                val perTile = image.size / numTiles
                if (perTile % ref.numTokens != 0) {
                    throw ContractException("vision_encoder gave $perTile values per tile, not a multiple of tokens_per_tile ${ref.numTokens}; check vision.tokens_per_tile against the model")
                }
                parts.add(image.copyOfRange(ref.tile * perTile, (ref.tile + 1) * perTile))
            }
        }
        return concat(parts)
    }

    private fun pick(logits: FloatArray): Int {
        if (generation.temperature == 0.0) {
            var best = 0
            for (i in 1 until logits.size) if (logits[i] > logits[best]) best = i
            return best
        }
        var max = Double.NEGATIVE_INFINITY
        for (v in logits) if (v > max) max = v.toDouble()
        val probs = DoubleArray(logits.size) { Math.exp((logits[it] - max) / generation.temperature) }
        var total = 0.0
        for (v in probs) total += v
        var r = random.nextDouble() * total
        for (i in probs.indices) {
            r -= probs[i]
            if (r <= 0) return i
        }
        return probs.size - 1
    }

    private fun concat(parts: List<FloatArray>): FloatArray {
        var n = 0
        for (p in parts) n += p.size
        val out = FloatArray(n)
        var at = 0
        for (p in parts) {
            System.arraycopy(p, 0, out, at, p.size)
            at += p.size
        }
        return out
    }
}
