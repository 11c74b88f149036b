package org.mobilemllm.core

import java.io.File
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/**
 * The pure-Kotlin core against vectors the Python toolkit wrote (tests/android_app/test_kotlin_core.py):
 * grid choices of shared/testdata/grid_cases.json and of the smolvlm policy, tile plans and tile pixels (Pillow's resize,
 * lanczos included),
 * normalised floats, tokenizer ids and text, prompt layouts, manifest checks, stats records.
 * The folder comes from the system property `mobile_mllm.vectors`, the grid table from
 * `mobile_mllm.grid_cases`.
 */
@Suppress("UNCHECKED_CAST")
class VectorsTest {
    private val dir = File(System.getProperty("mobile_mllm.vectors") ?: error("set -Dmobile_mllm.vectors=DIR"))

    private fun load(name: String): Any? = Json.parse(File(dir, name).readText(Charsets.UTF_8))

    private fun ints(v: Any?): List<Int> = (v as List<Any?>).map { (it as Long).toInt() }

    /** Structural JSON equality: same keys in the same order, numbers equal as doubles. */
    private fun assertSameJson(where: String, expected: Any?, actual: Any?) {
        when (expected) {
            is Map<*, *> -> {
                val a = actual as? Map<*, *> ?: fail("$where: expected an object, got $actual") as Nothing
                assertEquals("$where: keys", expected.keys.toList(), a.keys.toList())
                for (k in expected.keys) assertSameJson("$where.$k", expected[k], a[k])
            }
            is List<*> -> {
                val a = (actual as? List<*>) ?: fail("$where: expected an array, got $actual") as Nothing
                assertEquals("$where: length", expected.size, a.size)
                for (i in expected.indices) assertSameJson("$where[$i]", expected[i], a[i])
            }
            is Number -> {
                assertTrue("$where: expected $expected, got $actual", actual is Number)
                assertEquals(where, expected.toDouble(), (actual as Number).toDouble(), 0.0)
            }
            else -> assertEquals(where, expected, actual)
        }
    }

    @Test
    fun gridCasesOfSharedTestdata() {
        val cases = Json.parse(File(System.getProperty("mobile_mllm.grid_cases")).readText()) as List<Any?>
        assertTrue(cases.size >= 100)
        for (c0 in cases) {
            val c = c0 as Map<String, Any?>
            val size = Size((c["width"] as Long).toInt(), (c["height"] as Long).toInt())
            val side = (c["max_side"] as Long).toInt()
            val base = (c["base"] as Long).toInt()
            val bySide = GridRules.candidateGrids(side, null)
            val byTiles = GridRules.candidateGrids(null, side * side)
            val got = mapOf(
                "relaxed" to GridRules.selectRelaxed(size, bySide, base, 0.1),
                "llava_next" to GridRules.selectLlavaNext(size, bySide, base),
                "internvl" to GridRules.selectInternvl(size, byTiles, base)
            )
            for ((policy, grid) in got) {
                assertEquals("$policy $size max_side $side", ints(c[policy]), listOf(grid.cols, grid.rows))
            }
        }
    }

    /** Plan of a tiles.json-style case equal to Python's (summary and boxes), or the same error type (then null). */
    private fun checkPlan(c: Map<String, Any?>, cfg: VisionConfig, size: Size): TilePlan? {
        val name = c["name"] as String
        val budget = (c["token_budget"] as Long?)?.toInt()
        if (c["error"] != null) {
            try {
                Tiling.planTiles(size, cfg, budget)
                fail("$name: expected ${c["error"]}")
            } catch (e: MobileMllmException) {
                assertEquals(name, c["error"], e.errorType)
            }
            return null
        }
        val plan = Tiling.planTiles(size, cfg, budget)
        assertSameJson("$name.summary", c["summary"], plan.summary())
        val boxes = (c["boxes"] as List<Any?>).map { ints(it) }
        assertEquals("$name.boxes", boxes, plan.boxes.map { listOf(it.left, it.top, it.right, it.bottom) })
        return plan
    }

    @Test
    fun smolvlmGridsEqualPython() { // grid.select_smolvlm through plan_tiles, and both resizes of every edge tried
        val cases = load("smolvlm_grids.json") as List<Any?>
        assertTrue(cases.size >= 500)
        for (c0 in cases) {
            val c = c0 as Map<String, Any?>
            val cfg = VisionConfig.fromJson(c["vision"] as Map<String, Any?>)
            val wh = ints(c["size"])
            val size = Size(wh[0], wh[1])
            checkPlan(c, cfg, size)
            val edges = (c["edges"] as List<Any?>).map { it as List<Any?> }
            assertEquals("${c["name"]} edges", edges.map { (it[0] as Long).toInt() }, GridRules.smolvlmEdges(cfg.smolvlmLongestEdgePx, cfg.tileSize))
            for (e in edges) {
                val sizes = GridRules.smolvlmSizes(size, (e[0] as Long).toInt(), cfg.tileSize)
                assertEquals("${c["name"]} edge ${e[0]}", listOf(ints(e[1]), ints(e[2])),
                    listOf(listOf(sizes.first.width, sizes.first.height), listOf(sizes.second.width, sizes.second.height)))
            }
        }
    }

    @Test
    fun resizeEqualsPillow() { // Image.resize up, down, one axis, mixed; lanczos mostly
        val cases = load("resize.json") as List<Any?>
        val filters = HashSet<Resample>()
        for (c0 in cases) {
            val c = c0 as Map<String, Any?>
            val wh = ints(c["size"])
            val to = ints(c["target"])
            val filter = enumOf(Resample.values(), c["resample"] as String, "resample") { it.value }
            filters.add(filter)
            val out = Pixels.resize(RgbImage(wh[0], wh[1], File(dir, c["source"] as String).readBytes()), to[0], to[1], filter)
            val want = File(dir, c["expected"] as String).readBytes()
            assertEquals("$wh -> $to ${filter.value}: size", listOf(to[0], to[1]), listOf(out.width, out.height))
            assertArrayEquals("$wh -> $to ${filter.value}", want, out.rgb)
        }
        assertTrue(Resample.LANCZOS in filters)
    }

    @Test
    fun tilePlansAndPixelsEqualPython() {
        val cases = load("tiles.json") as List<Any?>
        var pixelCases = 0
        for (c0 in cases) {
            val c = c0 as Map<String, Any?>
            val name = c["name"] as String
            val cfg = VisionConfig.fromJson(c["vision"] as Map<String, Any?>)
            val wh = ints(c["size"])
            val size = Size(wh[0], wh[1])
            val plan = checkPlan(c, cfg, size) ?: continue
            val source = c["source"] as String? ?: continue
            pixelCases++
            val img = RgbImage(size.width, size.height, File(dir, source).readBytes())
            val tiles = Pixels.renderTiles(img, plan, cfg)
            val expected = File(dir, c["tiles"] as String).readBytes()
            val s = cfg.tileSize * cfg.tileSize * 3
            assertEquals("$name: tile count", expected.size / s, tiles.size)
            for ((i, t) in tiles.withIndex()) {
                val want = expected.copyOfRange(i * s, (i + 1) * s)
                if (!want.contentEquals(t.rgb)) {
                    var first = 0
                    while (want[first] == t.rgb[first]) first++
                    fail("$name: tile $i differs first at byte $first (pixel ${first / 3 % cfg.tileSize},${first / 3 / cfg.tileSize}): " +
                        "python ${want[first].toInt() and 0xFF}, kotlin ${t.rgb[first].toInt() and 0xFF}")
                }
            }
            val f32 = c["normalized"] as String?
            if (f32 != null) {
                val buf = java.nio.ByteBuffer.wrap(File(dir, f32).readBytes()).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
                val want = FloatArray(buf.remaining())
                buf.get(want)
                assertArrayEquals("$name: normalized", want, Pixels.normalize(tiles, cfg.mean, cfg.std), 0.0f)
            }
        }
        assertTrue("no pixel cases ran", pixelCases > 0)
        assertTrue("no smolvlm pixel cases", cases.any { ((it as Map<String, Any?>)["name"] as String).startsWith("smolvlm") && it["source"] != null })
    }

    @Test
    fun compositingEqualsPillowAlphaComposite() {
        val c = load("composite.json") as Map<String, Any?>
        val argb = (c["argb"] as List<Any?>).map { (it as Long).toInt() }.toIntArray()
        val img = RgbImage.fromArgb(argb.size, 1, argb, ints(c["background"]))
        assertEquals(ints(c["rgb"]), img.rgb.map { it.toInt() and 0xFF })
    }

    @Test
    fun exifOrientationEqualsPillowExifTranspose() {
        val c = load("exif.json") as Map<String, Any?>
        val wh = ints(c["size"])
        val img = RgbImage(wh[0], wh[1], ints(c["rgb"]).map { it.toByte() }.toByteArray())
        for (k0 in c["cases"] as List<Any?>) {
            val k = k0 as Map<String, Any?>
            val o = (k["orientation"] as Long).toInt()
            val up = Pixels.exifTranspose(img, o)
            assertEquals("orientation $o size", ints(k["size"]), listOf(up.width, up.height))
            assertEquals("orientation $o pixels", ints(k["rgb"]), up.rgb.map { it.toInt() and 0xFF })
        }
    }

    @Test
    fun tokenizerEqualsHuggingFaceTokenizers() {
        checkTokenizer("tokenizer.json")
    }

    @Test
    fun digitSplittingTokenizerEqualsHuggingFaceTokenizers() { // SmolLM2's Sequence[Digits(individual_digits), ByteLevel]
        checkTokenizer("tokenizer_digits.json")
    }

    @Test
    fun charactersOutsideTheVocabularyAndRefusedOptionsAsHuggingFace() { // dropped, unk_token, fused unk_token; options named
        val g = load("tokenizer_gaps.json") as Map<String, Any?>
        for (c in g["cases"] as List<Any?>) checkTokenizerCases(c as Map<String, Any?>)
        for (r0 in g["refused"] as List<Any?>) {
            val r = r0 as Map<String, Any?>
            try {
                Tokenizer.fromJson(File(r["tokenizer"] as String).readText(Charsets.UTF_8))
                fail("accepted ${r["key"]}")
            } catch (e: ContractException) {
                assertTrue(e.message!!, e.message!!.contains(r["key"] as String))
            }
        }
    }

    private fun checkTokenizer(file: String) = checkTokenizerCases(load(file) as Map<String, Any?>)

    private fun checkTokenizerCases(c: Map<String, Any?>) {
        val tok = Tokenizer.fromJson(File(c["tokenizer"] as String).readText(Charsets.UTF_8))
        for (e0 in c["encode"] as List<Any?>) {
            val e = e0 as Map<String, Any?>
            assertEquals("encode ${e["text"]}", ints(e["ids"]), tok.encode(e["text"] as String).toList())
        }
        for (d0 in c["decode"] as List<Any?>) {
            val d = d0 as Map<String, Any?>
            assertEquals("decode ${d["ids"]}", d["text"], tok.decode(ints(d["ids"]).toIntArray(), d["skip"] as Boolean))
        }
    }

    private fun segmentsJson(segs: List<Segment>): List<Any?> = segs.map {
        if (it is TokenRun) linkedMapOf("ids" to it.ids) else linkedMapOf("tile" to (it as TileRef).tile, "num_tokens" to it.numTokens)
    }

    @Test
    fun promptLayoutsEqualPython() {
        checkPromptLayouts("prompts.json")
    }

    @Test
    fun smolvlmPromptLayoutsEqualPython() { // text tile markers tokenized with the text around them, the global image
        checkPromptLayouts("smolvlm_prompts.json")
    }

    private fun checkPromptLayouts(file: String) {
        val c = load(file) as Map<String, Any?>
        val tok = Tokenizer.fromJson(File(c["tokenizer"] as String).readText(Charsets.UTF_8))
        val encodeImage = c["encode_image"] == true
        for ((i, p0) in (c["cases"] as List<Any?>).withIndex()) {
            val p = p0 as Map<String, Any?>
            val fmt = PromptFormat.fromJson(p["prompt"] as Map<String, Any?>)
            val ids = Layout.specialTokenIds(tok, fmt)
            val question = fmt.styleQuestion(p["question"] as String)
            assertEquals("case $i styled", p["styled"], question)
            val encode = { s: String -> tok.encode(s) }
            val segs = if (p["next_turn"] == true) {
                Layout.nextTurn(fmt, question, encode, ints(p["unfed"]))
            } else {
                val im = p["image"] as Map<String, Any?>?
                val block = if (im == null) null else {
                    val g = ints(im["grid"])
                    Layout.imageBlock(fmt, Grid(g[0], g[1]), (im["thumbnail_index"] as Long?)?.toInt(), (im["tokens_per_tile"] as Long).toInt(), ids,
                        if (encodeImage) encode else null)
                }
                Layout.firstTurn(fmt, question, encode, ids, block)
            }
            assertSameJson("$file case $i", p["segments"], segmentsJson(segs))
            assertEquals("$file case $i positions", (p["positions"] as Long).toInt(), Layout.countPositions(segs))
        }
    }

    @Test
    fun manifestsAreCheckedLikeThePythonSchema() {
        val c = load("manifests.json") as Map<String, Any?>
        val schemaText = File(c["schema"] as String).readText(Charsets.UTF_8)
        val schema = Json.parse(schemaText) as Map<String, Any?>
        for (m0 in c["cases"] as List<Any?>) {
            val m = m0 as Map<String, Any?>
            val name = m["name"] as String
            val text = m["text"] as String
            val data = Manifest.upgrade(Json.parse(text) as Map<String, Any?>)
            val paths = ManifestSchema.errors(data, schema).map { it.substring(0, it.indexOf(':')) }
            assertEquals("$name: error paths", m["error_paths"], paths)
            val refused = m["refused"] as String?
            if (refused != null) {
                try {
                    Manifest.parse(text, schemaText)
                    fail("$name: parse accepted a layout the app does not implement")
                } catch (e: ContractException) {
                    assertTrue("$name: message names $refused: ${e.message}", e.message!!.contains(refused))
                }
            } else if (paths.isEmpty()) {
                val man = Manifest.parse(text, schemaText)
                val got = linkedMapOf<String, Any?>(
                    "policy" to man.vision.policy.value, "tile_size" to man.vision.tileSize,
                    "tokens_per_tile" to man.tokensPerTile, "eos_ids" to man.eosIds, "bos_id" to man.bosId,
                    "max_seq_len" to man.maxSeqLen, "max_context_len" to man.maxContextLen,
                    "prefill_chunk" to man.prefillChunk, "tile_batch" to man.tileBatch, "hidden_size" to man.hiddenSize,
                    "user_template" to man.prompt.userTemplate, "special_tokens" to man.specialTokens,
                    "resample" to man.vision.resample.value, "longest_edge_px" to man.vision.longestEdgePx, "prompt" to promptJson(man.prompt)
                )
                assertSameJson("$name: fields", m["fields"], got)
            } else {
                try {
                    Manifest.parse(text, schemaText)
                    fail("$name: parse accepted a manifest with errors $paths")
                } catch (e: ContractException) {
                    for (path in paths) assertTrue("$name: message names $path: ${e.message}", e.message!!.contains(path))
                }
            }
        }
    }

    /** A PromptFormat as Python's to_dict writes it (field order of model/adapter.py). */
    private fun promptJson(f: PromptFormat): Map<String, Any?> = linkedMapOf(
        "user_template" to f.userTemplate, "turn_end" to f.turnEnd, "system" to f.system, "image_placeholder" to f.imagePlaceholder,
        "image_start" to f.imageStart, "image_end" to f.imageEnd, "tile_sep" to f.tileSep, "row_sep" to f.rowSep,
        "thumbnail_marker" to f.thumbnailMarker, "bos" to f.bos, "eos" to f.eos, "tile_start" to f.tileStart, "row_end" to f.rowEnd,
        "tiles_end" to f.tilesEnd, "thumbnail_start" to f.thumbnailStart, "single_tile_as_thumbnail" to f.singleTileAsThumbnail,
        "text_lead" to f.textLead, "image_join" to f.imageJoin, "question_template" to f.questionTemplate
    )

    @Test
    fun statsRecordsAndRowsEqualPython() {
        for ((i, s0) in (load("stats.json") as List<Any?>).withIndex()) {
            val s = s0 as Map<String, Any?>
            val r = s["raw"] as Map<String, Any?>
            fun d(k: String): Double = ((r[k] ?: 0L) as Number).toDouble()
            fun n(k: String): Int = ((r[k] ?: 0L) as Number).toInt()
            val g = r["grid"] as List<Any?>?
            val stats = Stats(
                d("model_load_start_ms"), d("model_load_end_ms"), d("inference_start_ms"), d("image_encode_start_ms"),
                d("image_encode_end_ms"), ((r["vision_batch_ms"] ?: emptyList<Any?>()) as List<Any?>).map { (it as Number).toDouble() },
                ints(r["vision_batch_sizes"] ?: emptyList<Any?>()), d("prompt_eval_end_ms"), d("first_token_ms"), d("inference_end_ms"),
                n("num_prompt_tokens"), n("num_image_tokens"), n("num_tiles"), n("num_generated_tokens"), n("num_cached_tokens"),
                if (g == null) null else Grid((g[0] as Long).toInt(), (g[1] as Long).toInt()),
                r["reduced_by_budget"] == true, ((r["peak_rss_bytes"] ?: 0L) as Number).toLong()
            )
            val record = stats.record((s["run"] as Long).toInt(), s["text"] as String, s["stop_reason"] as String)
            assertSameJson("stats $i", s["record"], Json.parse(Json.write(record)))
            val rows = Stats.rows(record).map { listOf(it.first, it.second) }
            assertEquals("stats $i rows", s["rows"], rows)
        }
    }

    /** Result files as BenchmarkActivity writes them, for the Python reader (device/app.read_result) to check. */
    @Test
    fun benchmarkResultFilesForThePythonReader() {
        val out = File(dir, "from_kotlin").apply { mkdirs() }
        val records = (load("stats.json") as List<Any?>).mapIndexed { i, s0 ->
            val s = s0 as Map<String, Any?>
            Stats(numPromptTokens = 10 + i, numGeneratedTokens = 3, inferenceStartMs = 1000.0, inferenceEndMs = 1100.0)
                .record(i, s["text"] as String, s["stop_reason"] as String)
        }
        File(out, "ok.json").writeText(BenchmarkResult.success(records))
        File(out, "image_error.json").writeText(BenchmarkResult.failure(ImageException("not a readable image file: /x/photo.heic")))
    }

    @Test
    fun jsonRoundTripsStrings() {
        val text = "{\"a\":\"x\\n\\\"y\\u00e9\\ud83d\\ude00\",\"b\":[1,-2.5,1e-05,true,null],\"c\":{}}"
        val v = Json.parse(text) as Map<String, Any?>
        assertEquals("x\n\"y\u00e9\ud83d\ude00", v["a"])
        assertEquals(listOf(1L, -2.5, 1e-05, true, null), v["b"])
        assertEquals(v, Json.parse(Json.write(v)))
        assertEquals("{\"c\":\"\\u0001\\t\"}", Json.write(mapOf("c" to "\u0001\t"))) // as Python's json.dumps
        for (bad in listOf("{", "[1,]", "{\"a\" 1}", "01x", "\"\\x\"", "[1] 2")) {
            try {
                Json.parse(bad)
                fail("accepted $bad")
            } catch (e: ContractException) {
                assertTrue(e.message!!.contains("offset"))
            }
        }
    }
}
