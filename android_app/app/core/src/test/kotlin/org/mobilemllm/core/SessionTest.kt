package org.mobilemllm.core

import java.io.File
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/**
 * The loop of Session.kt against a scripted program: which calls it makes (tile batches, prefill
 * chunks at their start positions, one decode call per fed token), when it stops, and the counts
 * it records, each expected value worked out by hand from the contract (RUNNER.md, session.py).
 */
@Suppress("UNCHECKED_CAST")
class SessionTest {
    private val dir = File(System.getProperty("mobile_mllm.vectors") ?: error("set -Dmobile_mllm.vectors=DIR"))
    private val hidden = 4

    private class Call(val method: String, val size: Int, val startPos: Long)

    private inner class Scripted(val answer: List<Int>, override val maxContextLen: Int, val vocab: Int, val tokensPerTile: Int) : ProgramMethods {
        val calls = ArrayList<Call>()
        /** Position right after the prompt: a call ending there picks answer[0], each later one the next. */
        var promptEnd = 0

        override fun visionEncoder(tiles: FloatArray, n: Int, tileSize: Int): FloatArray {
            assertEquals(n * 3 * tileSize * tileSize, tiles.size)
            calls.add(Call("vision_encoder", n, -1))
            return FloatArray(n * tokensPerTile * hidden)
        }

        override fun tokenEmbedding(ids: LongArray): FloatArray {
            calls.add(Call("token_embedding", ids.size, -1))
            return FloatArray(ids.size * hidden)
        }

        override fun textDecoder(embeds: FloatArray, numPositions: Int, startPos: Long): FloatArray {
            assertEquals(numPositions * hidden, embeds.size)
            calls.add(Call("text_decoder", numPositions, startPos))
            val logits = FloatArray(vocab)
            val k = Math.max(0, (startPos + numPositions - promptEnd).toInt())
            logits[answer[Math.min(k, answer.size - 1)]] = 1f
            return logits
        }
    }

    private fun fixtures(): Pair<Manifest, Tokenizer> {
        val m = Json.parse(File(dir, "manifests.json").readText()) as Map<String, Any?>
        val valid = (m["cases"] as List<Any?>).map { it as Map<String, Any?> }.first { (it["error_paths"] as List<*>).isEmpty() }
        val manifest = Manifest.parse(valid["text"] as String, File(m["schema"] as String).readText())
        val p = Json.parse(File(dir, "prompts.json").readText()) as Map<String, Any?>
        return Pair(manifest, Tokenizer.fromJson(File(p["tokenizer"] as String).readText()))
    }

    @Test
    fun imageTurnEncodesInBatchesPrefillsInChunksAndStopsOnEos() {
        val (manifest, tok) = fixtures()
        val eos = manifest.eosIds[0]
        val word = tok.encode(" red")
        val script = word.toList() + eos
        val methods = Scripted(script, manifest.maxContextLen, 600, manifest.tokensPerTile)
        val session = Session(methods, tok, manifest, GenerationConfig(maxNewTokens = 10))
        // 3:2 relaxed grid of a wide image, thumbnail last: 7 tiles
        val w = manifest.vision.tileSize * 3
        val h = manifest.vision.tileSize * 2
        val image = RgbImage(w, h, ByteArray(w * h * 3))
        val plan = session.plan("What colour?", image.size)
        assertEquals(Grid(3, 2), plan.tiles!!.grid)
        methods.promptEnd = plan.numPositions
        val texts = ArrayList<String>()
        val answer = session.ask("What colour?", image, { texts.add(it) })
        assertEquals("eos", answer.stopReason)
        assertEquals(script, answer.tokens)
        assertEquals(" red", answer.text)
        assertEquals(" red", texts.joinToString(""))
        val batch = manifest.tileBatch
        val sizes = methods.calls.filter { it.method == "vision_encoder" }.map { it.size }
        val expectSizes = ArrayList<Int>()
        var left = 7
        while (left > 0) { expectSizes.add(Math.min(batch, left)); left -= batch }
        assertEquals(expectSizes, sizes)
        assertEquals(expectSizes, answer.stats.visionBatchSizes)
        val decoder = methods.calls.filter { it.method == "text_decoder" }
        val positions = plan.numPositions
        val chunk = manifest.prefillChunk
        val prefill = decoder.take((positions + chunk - 1) / chunk)
        assertEquals(prefill.indices.map { it.toLong() * chunk }, prefill.map { it.startPos })
        assertEquals(positions, prefill.fold(0) { acc, c -> acc + c.size })
        // every answer token but the last is fed back, one position each, right after the prompt
        val fed = decoder.drop(prefill.size)
        assertEquals((0 until script.size - 1).map { positions.toLong() + it }, fed.map { it.startPos })
        assertEquals(7, answer.stats.numTiles)
        assertEquals(7 * manifest.tokensPerTile, answer.stats.numImageTokens)
        assertEquals(positions, answer.stats.numPromptTokens)
        assertEquals(script.size, answer.stats.numGeneratedTokens)
        assertEquals(positions + script.size - 1, session.position)
        assertTrue("VmHWM of this JVM", answer.stats.peakRssBytes > 1 shl 20)
        val s = answer.stats
        assertTrue(s.inferenceStartMs <= s.imageEncodeStartMs && s.imageEncodeEndMs <= s.promptEvalEndMs &&
            s.promptEvalEndMs <= s.firstTokenMs && s.firstTokenMs <= s.inferenceEndMs)
    }

    @Test
    fun followUpStartsAfterTheAnswerAndFeedsItsLastTokenWhenNotEos() {
        val (manifest, tok) = fixtures()
        val methods = Scripted(listOf(100, 101, 102), manifest.maxContextLen, 600, manifest.tokensPerTile)
        val session = Session(methods, tok, manifest, GenerationConfig(maxNewTokens = 3))
        val first = session.ask("Hello", null)
        assertEquals("max_new_tokens", first.stopReason)
        val after = session.position
        val second = session.plan("And?", null)
        // the unfed last answer token comes first, then turn_end and the user turn
        val run = second.segments[0] as TokenRun
        assertEquals(first.tokens.last(), run.ids[0])
        assertEquals(1 + tok.encode(manifest.prompt.turnEnd + manifest.prompt.userTurn("And?")).size, second.numPositions)
        methods.calls.clear()
        val answer = session.ask("And?", null)
        assertEquals(after.toLong(), methods.calls.first { it.method == "text_decoder" }.startPos)
        assertEquals(after, answer.stats.numCachedTokens)
    }

    @Test
    fun plansEqualPythonSessionPlans() { // the grid shrinks until the answer has room, as Session._plan does
        val (manifest, tok) = fixtures()
        checkPlans(manifest, tok, Json.parse(File(dir, "session_plans.json").readText()) as List<Any?>)
    }

    /** The tiny SmolVLM's manifest (as the exporter writes it) and its tokenizer. */
    private fun smolvlmFixtures(): Triple<Manifest, Tokenizer, List<Any?>> {
        val m = Json.parse(File(dir, "manifests.json").readText()) as Map<String, Any?>
        val d = Json.parse(File(dir, "smolvlm_session_plans.json").readText()) as Map<String, Any?>
        val manifest = Manifest.parse(d["manifest"] as String, File(m["schema"] as String).readText())
        return Triple(manifest, Tokenizer.fromJson(File(d["tokenizer"] as String).readText()), d["cases"] as List<Any?>)
    }

    @Test
    fun smolvlmPlansEqualPythonSessionPlans() { // SmolVLM's text tile markers and global image, grids shrunk for the answer
        val (manifest, tok, cases) = smolvlmFixtures()
        assertEquals(GridPolicy.SMOLVLM, manifest.vision.policy)
        checkPlans(manifest, tok, cases)
    }

    private fun checkPlans(manifest: Manifest, tok: Tokenizer, cases: List<Any?>) {
        assertTrue(cases.size >= 8)
        for ((i, c0) in cases.withIndex()) {
            val c = c0 as Map<String, Any?>
            val wh = (c["size"] as List<Any?>).map { (it as Long).toInt() }
            val session = Session(Scripted(listOf(1), manifest.maxContextLen, 600, manifest.tokensPerTile), tok, manifest,
                GenerationConfig(maxNewTokens = (c["max_new_tokens"] as Long).toInt()))
            val budget = (c["token_budget"] as Long?)?.toInt()
            if (c["error"] != null) {
                try {
                    session.plan(c["question"] as String, Size(wh[0], wh[1]), budget)
                    fail("case $i: expected ${c["error"]}")
                } catch (e: MobileMllmException) {
                    assertEquals("case $i", c["error"], e.errorType)
                }
                continue
            }
            val plan = session.plan(c["question"] as String, Size(wh[0], wh[1]), budget)
            val g = (c["grid"] as List<Any?>).map { (it as Long).toInt() }
            assertEquals("case $i grid", Grid(g[0], g[1]), plan.tiles!!.grid)
            assertEquals("case $i positions", (c["positions"] as Long).toInt(), plan.numPositions)
            val segs = plan.segments.map {
                if (it is TokenRun) mapOf("ids" to it.ids.map { id -> id.toLong() })
                else mapOf("tile" to (it as TileRef).tile.toLong(), "num_tokens" to it.numTokens.toLong())
            }
            assertEquals("case $i segments", c["segments"], segs)
        }
    }

    @Test
    fun smolvlmImageTurnEncodesEveryTileAndTheGlobalImage() {
        val (manifest, tok, _) = smolvlmFixtures()
        val eos = manifest.eosIds[0]
        val methods = Scripted(listOf(eos), manifest.maxContextLen, 600, manifest.tokensPerTile)
        val session = Session(methods, tok, manifest, GenerationConfig(maxNewTokens = 8))
        val image = RgbImage(1000, 700, ByteArray(1000 * 700 * 3) { (it % 251).toByte() })
        val plan = session.plan("What colour?", image.size)
        assertEquals(Grid(4, 3), plan.tiles!!.grid) // 256 x 180 after the first resize, 256 x 192 canvas: 12 tiles + the global image
        methods.promptEnd = plan.numPositions
        val answer = session.ask("What colour?", image)
        assertEquals("eos", answer.stopReason)
        assertEquals(13, answer.stats.numTiles)
        assertEquals(13, methods.calls.filter { it.method == "vision_encoder" }.fold(0) { acc, c -> acc + c.size })
        val refs = plan.segments.filterIsInstance<TileRef>().map { it.tile }
        assertEquals((0 until 13).toList(), refs) // local tiles row-major, then the global image (thumbnail last)
        assertEquals(13 * manifest.tokensPerTile, answer.stats.numImageTokens)
    }

    @Test
    fun refusesWhatDoesNotFitAndEmptyQuestions() {
        val (manifest, tok) = fixtures()
        val session = Session(Scripted(listOf(1), manifest.maxContextLen, 600, manifest.tokensPerTile), tok, manifest)
        val long = "many words ".repeat(manifest.maxContextLen)
        try {
            session.plan(long, null)
            fail("a prompt longer than the context was accepted")
        } catch (e: ContextOverflowException) {
            assertTrue(e.message!!.contains("max_context_len ${manifest.maxContextLen}"))
        }
        try {
            session.plan("  ", null)
            fail("an empty question was accepted")
        } catch (e: ConfigException) {
            assertEquals(2, e.exitCode)
        }
    }
}
