package org.mobilemllm.core

/**
 * manifest.json: read, upgrade a version-1 file, check it against the shared JSON Schema
 * (mobile_mllm/manifest.schema.json, shipped in the app's assets), and expose what the phone
 * needs: vision settings, prompt format, special tokens, eos/bos ids and the program's sizes.
 * The validator implements the same JSON Schema subset as mobile_mllm/manifest_schema.py and
 * refuses any other keyword, so the schema cannot silently say more than is checked.
 */
object ManifestSchema {
    private val KNOWN = setOf(
        "\$schema", "\$id", "title", "description", "type", "const", "enum", "required", "properties",
        "additionalProperties", "items", "minItems", "maxItems", "minimum", "maximum", "pattern"
    )

    private fun isType(v: Any?, name: String): Boolean = when (name) {
        "object" -> v is Map<*, *>
        "array" -> v is List<*>
        "string" -> v is String
        "integer" -> v is Long
        "number" -> v is Long || v is Double
        "boolean" -> v is Boolean
        "null" -> v == null
        else -> throw ContractException("manifest schema: unknown type '$name'")
    }

    private fun num(v: Any?): Double = if (v is Long) v.toDouble() else v as Double

    private fun join(path: String, key: String): String = if (path.isEmpty()) key else "$path.$key"

    /** JSON equality with 1 == 1.0, as Python compares const and enum values. */
    private fun same(a: Any?, b: Any?): Boolean =
        if ((a is Long || a is Double) && (b is Long || b is Double)) num(a) == num(b) else a == b

    @Suppress("UNCHECKED_CAST")
    private fun check(value: Any?, schema: Map<String, Any?>, path: String, out: MutableList<String>) {
        val unknown = schema.keys.filter { it !in KNOWN }
        if (unknown.isNotEmpty()) throw ContractException("manifest schema at $path: unsupported keyword(s) ${unknown.sorted()}")
        val where = if (path.isEmpty()) "(top level)" else path
        if (schema.containsKey("const") && !same(value, schema["const"])) {
            out.add("$where: expected ${schema["const"]}, got $value")
            return
        }
        if (schema.containsKey("enum") && (schema["enum"] as List<Any?>).none { same(it, value) }) {
            out.add("$where: $value is not one of ${schema["enum"]}")
            return
        }
        if (schema.containsKey("type")) {
            val t = schema["type"]
            val types = if (t is List<*>) t.map { it as String } else listOf(t as String)
            if (types.none { isType(value, it) }) {
                out.add("$where: expected ${types.joinToString(" or ")}, got $value")
                return
            }
        }
        if (value is Long || value is Double) {
            if (schema.containsKey("minimum") && num(value) < num(schema["minimum"])) out.add("$where: $value is below the minimum ${schema["minimum"]}")
            if (schema.containsKey("maximum") && num(value) > num(schema["maximum"])) out.add("$where: $value is above the maximum ${schema["maximum"]}")
        }
        if (value is String && schema.containsKey("pattern") && !Regex(schema["pattern"] as String).containsMatchIn(value)) {
            out.add("$where: '$value' does not match '${schema["pattern"]}'")
        }
        if (value is List<*>) {
            val minItems = (schema["minItems"] as Long?) ?: 0L
            if (value.size < minItems) out.add("$where: needs at least $minItems item(s), got ${value.size}")
            if (schema.containsKey("maxItems") && value.size > schema["maxItems"] as Long) out.add("$where: allows at most ${schema["maxItems"]} item(s), got ${value.size}")
            if (schema.containsKey("items")) {
                for ((i, item) in value.withIndex()) check(item, schema["items"] as Map<String, Any?>, "$path[$i]", out)
            }
        }
        if (value is Map<*, *>) {
            val obj = value as Map<String, Any?>
            for (key in (schema["required"] as List<Any?>?) ?: emptyList<Any?>()) {
                if (!obj.containsKey(key as String)) out.add("${join(path, key)}: missing")
            }
            val properties = (schema["properties"] as Map<String, Any?>?) ?: emptyMap()
            val extra = if (schema.containsKey("additionalProperties")) schema["additionalProperties"] else true
            for ((key, item) in obj) {
                when {
                    properties.containsKey(key) -> check(item, properties[key] as Map<String, Any?>, join(path, key), out)
                    extra == false -> out.add("${join(path, key)}: unknown key (allowed: ${properties.keys.joinToString(", ")})")
                    extra is Map<*, *> -> check(item, extra as Map<String, Any?>, join(path, key), out)
                }
            }
        }
    }

    /** Every way [manifest] breaks [schema], each starting with the dotted key path; empty when valid. */
    @JvmStatic
    fun errors(manifest: Any?, schema: Map<String, Any?>): List<String> {
        val out = ArrayList<String>()
        check(manifest, schema, "", out)
        return out
    }
}

/**
 * The prompt layout of a model (the manifest's `prompt` object; model/adapter.py's PromptFormat).
 * Families that mark tiles with text (SmolVLM/Idefics3: `<fake_token_around_image><row_1_col_2>`
 * before a tile, a newline after each row, `<global-img>` before the global image) also set
 * [tileStart], [rowEnd], [tilesEnd], [thumbnailStart], [singleTileAsThumbnail], [textLead] and
 * [imageJoin]; their defaults leave the plain layout unchanged.
 */
data class PromptFormat(
    val userTemplate: String,
    val turnEnd: String,
    val system: String,
    val imagePlaceholder: String,
    val imageStart: String,
    val imageEnd: String,
    val tileSep: String,
    val rowSep: String,
    val thumbnailMarker: String,
    val bos: String,
    val eos: List<String>,
    val questionTemplate: String = "{question}",
    /** Text before each local tile; `{row}` and `{col}` are its 1-based grid position. */
    val tileStart: String = "",
    /** Text after the separator of each row's last tile. */
    val rowEnd: String = "",
    /** Text after the local tiles when the thumbnail follows them. */
    val tilesEnd: String = "",
    /** Text before thumbnail_marker. */
    val thumbnailStart: String = "",
    /** Lay a lone tile (1x1 grid, no thumbnail) out as the thumbnail (SmolVLM's unsplit image is its global image). */
    val singleTileAsThumbnail: Boolean = false,
    /** Text before a turn's content that does not begin with the image. */
    val textLead: String = "",
    /** Text between the image and the question when the question has no placeholder. */
    val imageJoin: String = "\n"
) {
    init { // a template field this app cannot fill is refused when the manifest is read, not mid-conversation
        userTurn("")
        tileStartText(1, 1)
    }

    /** The user's question in the model's prompt style. */
    fun styleQuestion(question: String): String = questionTemplate.replace("{question}", question)

    /** A user turn: user_template with {content} replaced (Python's str.format with one field). */
    fun userTurn(content: String): String = formatFields(userTemplate, mapOf("content" to content), "prompt.user_template")

    /** tile_start of the tile at 1-based [row], [col] (Python's `tile_start.format(row=..., col=...)`). */
    fun tileStartText(row: Int, col: Int): String =
        formatFields(tileStart, mapOf("row" to row.toString(), "col" to col.toString()), "prompt.tile_start")

    /** Whether the layout has text between tiles, which must be tokenized with the text around it. */
    val marksTilesWithText: Boolean
        get() = tileStart.isNotEmpty() || rowEnd.isNotEmpty() || tilesEnd.isNotEmpty() || thumbnailStart.isNotEmpty()

    companion object {
        @JvmStatic
        fun fromJson(p: Map<String, Any?>): PromptFormat {
            val w = "prompt"
            fun text(key: String, default: String): String = (p[key] as String?) ?: default
            return PromptFormat(
                p.str("user_template", w), p.str("turn_end", w), p.str("system", w), p.str("image_placeholder", w),
                p.str("image_start", w), p.str("image_end", w), p.str("tile_sep", w), p.str("row_sep", w),
                p.str("thumbnail_marker", w), p.str("bos", w), p.list("eos", w).map { it as String },
                text("question_template", "{question}"), text("tile_start", ""), text("row_end", ""),
                text("tiles_end", ""), text("thumbnail_start", ""), (p["single_tile_as_thumbnail"] as Boolean?) ?: false,
                text("text_lead", ""), text("image_join", "\n")
            )
        }

        /**
         * Python's `template.format(**values)` for plain fields: `{name}` replaced, `{{`/`}}`
         * unescaped; any other field (or a format spec) refused with a [ContractException] naming [key].
         */
        @JvmStatic
        fun formatFields(template: String, values: Map<String, String>, key: String): String {
            val sb = StringBuilder()
            var i = 0
            while (i < template.length) {
                val c = template[i]
                if (c == '{' && template.startsWith("{{", i)) {
                    sb.append('{'); i += 2
                } else if (c == '}' && template.startsWith("}}", i)) {
                    sb.append('}'); i += 2
                } else if (c == '{') {
                    val end = template.indexOf('}', i)
                    val field = if (end < 0) template.substring(i) else template.substring(i + 1, end)
                    val value = values[field]
                    if (end < 0 || value == null) throw ContractException("$key: unsupported field {$field} (only ${values.keys.joinToString(", ") { "{$it}" }})")
                    sb.append(value); i = end + 1
                } else if (c == '}') {
                    throw ContractException("$key: single '}' in '$template'")
                } else {
                    sb.append(c); i++
                }
            }
            return sb.toString()
        }
    }
}

/** What the phone needs from manifest.json (checked against the schema on reading). */
data class Manifest(
    val vision: VisionConfig,
    val prompt: PromptFormat,
    val specialTokens: Map<String, Int>,
    val eosIds: List<Int>,
    val bosId: Int?,
    val maxSeqLen: Int,
    val maxContextLen: Int,
    val prefillChunk: Int,
    val tileBatch: Int,
    val tokensPerTile: Int,
    val hiddenSize: Int,
    val visionEngine: String,
    /** The whole parsed file, for anything else (precision, program facts). */
    val raw: Map<String, Any?>
) {
    companion object {
        /**
         * Parses manifest.json text, upgrades version 1, and checks it against [schemaText] (the
         * shared manifest.schema.json).
         *
         * @throws ContractException another format, a newer version, or any schema violation,
         *   each problem named by its key.
         */
        @JvmStatic
        fun parse(text: String, schemaText: String, source: String = Contract.MANIFEST_FILE): Manifest {
            @Suppress("UNCHECKED_CAST")
            val schema = Json.parse(schemaText) as Map<String, Any?>
            val parsed = Json.parse(text)
            @Suppress("UNCHECKED_CAST")
            val data0 = parsed as? Map<String, Any?>
            if (data0 == null || data0[Contract.M_FORMAT] != Contract.MANIFEST_FORMAT) {
                throw ContractException("$source: format is not '${Contract.MANIFEST_FORMAT}'")
            }
            val version = data0[Contract.M_VERSION]
            if (version !is Long || version > Contract.MANIFEST_VERSION) {
                throw ContractException("$source: manifest version $version is newer than this app reads (${Contract.MANIFEST_VERSION}); update the app or re-export")
            }
            val data = upgrade(data0)
            val problems = ManifestSchema.errors(data, schema)
            if (problems.isNotEmpty()) {
                throw ContractException("$source: manifest does not follow manifest.schema.json: ${problems.joinToString("; ")}. Re-export the model with mobile-mllm export")
            }
            val w = "manifest"
            @Suppress("UNCHECKED_CAST")
            val special = (data[Contract.M_SPECIAL_TOKENS] as Map<String, Any?>).mapValues { (it.value as Long).toInt() }
            return Manifest(
                vision = VisionConfig.fromJson(data.obj(Contract.M_VISION, w)),
                prompt = PromptFormat.fromJson(data.obj(Contract.M_PROMPT, w)),
                specialTokens = special,
                eosIds = data.list(Contract.M_EOS_IDS, w).map { (it as Long).toInt() },
                bosId = data.longOrNull(Contract.M_BOS_ID, w)?.toInt(),
                maxSeqLen = data.long(Contract.M_MAX_SEQ_LEN, w).toInt(),
                maxContextLen = data.long(Contract.M_MAX_CONTEXT_LEN, w).toInt(),
                prefillChunk = data.long(Contract.M_PREFILL_CHUNK, w).toInt(),
                tileBatch = data.long(Contract.M_TILE_BATCH, w).toInt(),
                tokensPerTile = data.long(Contract.M_TOKENS_PER_TILE, w).toInt(),
                hiddenSize = data.long(Contract.M_HIDDEN_SIZE, w).toInt(),
                visionEngine = (data[Contract.M_VISION_ENGINE] as String?) ?: Contract.ENGINE_EXECUTORCH,
                raw = data
            )
        }

        /** A version-1 manifest in version 2's terms (max_chunk became max_seq_len); others unchanged. */
        @JvmStatic
        fun upgrade(data: Map<String, Any?>): Map<String, Any?> {
            if (data[Contract.M_VERSION] != 1L) return data
            val out = LinkedHashMap<String, Any?>()
            for ((k, v) in data) if (k != Contract.M_V1_MAX_CHUNK) out[k] = v
            out[Contract.M_VERSION] = 2L
            if (data.containsKey(Contract.M_V1_MAX_CHUNK)) out[Contract.M_MAX_SEQ_LEN] = data[Contract.M_V1_MAX_CHUNK]
            return out
        }
    }
}
