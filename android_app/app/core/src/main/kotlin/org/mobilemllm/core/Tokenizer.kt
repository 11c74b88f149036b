package org.mobilemllm.core

import java.util.regex.Pattern

/**
 * The models' tokenizer.json (Hugging Face tokenizers format), byte-level BPE as GPT-2 defines
 * it: added tokens matched first (leftmost, longest), the rest split by GPT-2's pre-tokenizer
 * regex, bytes mapped to printable characters, merged by rank; decoding maps characters back to
 * bytes. Supported: model BPE without dropout, normalizer null, decoder ByteLevel, pre_tokenizer
 * ByteLevel or `Sequence[Digits(individual_digits), ByteLevel]` (SmolLM2's, so SmolVLM's: every
 * numeric character its own piece before the regex); anything else is refused with a
 * [ContractException] naming it.
 */
class Tokenizer private constructor(
    private val vocab: Map<String, Int>,
    private val idToToken: Map<Int, String>,
    private val mergeRank: Map<String, Int>,
    private val added: List<Pair<String, Int>>,
    private val specialIds: Set<Int>,
    private val addPrefixSpace: Boolean,
    /** Digits(individual_digits) before ByteLevel: each numeric character is a piece of its own. */
    private val splitDigits: Boolean,
    /** The BPE model's unk_token id: a character outside the vocabulary becomes it (null: the character is dropped, as the tokenizers library does). */
    private val unkId: Int?,
    /** Consecutive unknown characters give one unk_token. */
    private val fuseUnk: Boolean
) {
    private val cache = HashMap<String, IntArray>()

    /** Id of a token (added tokens included), or null. */
    fun tokenToId(token: String): Int? = vocab[token]

    /** Token ids of [text], added tokens recognised, nothing added around it. */
    fun encode(text: String): IntArray {
        val out = ArrayList<Int>()
        var start = 0
        var i = 0
        while (i < text.length) {
            var match: Pair<String, Int>? = null
            for (a in added) { // longest first
                if (text.startsWith(a.first, i)) {
                    match = a
                    break
                }
            }
            if (match == null) {
                i++
                continue
            }
            encodePlain(text.substring(start, i), out)
            out.add(match.second)
            i += match.first.length
            start = i
        }
        encodePlain(text.substring(start), out)
        return out.toIntArray()
    }

    private fun encodePlain(text0: String, out: MutableList<Int>) {
        if (!splitDigits) {
            encodePiece(text0, out)
            return
        }
        var start = 0
        var i = 0
        while (i < text0.length) {
            val cp = text0.codePointAt(i)
            val n = Character.charCount(cp)
            if (isNumeric(cp)) {
                encodePiece(text0.substring(start, i), out)
                encodePiece(text0.substring(i, i + n), out)
                start = i + n
            }
            i += n
        }
        encodePiece(text0.substring(start), out)
    }

    /** One pre-tokenized piece through ByteLevel: the optional prefix space, GPT-2's split, BPE. */
    private fun encodePiece(text0: String, out: MutableList<Int>) {
        if (text0.isEmpty()) return
        val text = if (addPrefixSpace && !text0.startsWith(" ")) " $text0" else text0
        val m = SPLIT.matcher(text)
        while (m.find()) {
            val piece = m.group()
            val cached = cache[piece]
            if (cached != null) {
                for (id in cached) out.add(id)
                continue
            }
            val ids = bpe(byteChars(piece))
            cache[piece] = ids
            for (id in ids) out.add(id)
        }
    }

    private fun bpe(word: String): IntArray {
        val parts = ArrayList<String>()
        var k = 0
        while (k < word.length) {
            val n = Character.charCount(word.codePointAt(k))
            val ch = word.substring(k, k + n)
            k += n
            when {
                vocab.containsKey(ch) -> parts.add(ch)
                unkId == null -> Unit // dropped: the tokenizers library's BPE without unk_token
                !(fuseUnk && parts.lastOrNull() == UNK) -> parts.add(UNK)
            }
        }
        while (parts.size > 1) {
            var best = -1
            var bestRank = Int.MAX_VALUE
            for (j in 0 until parts.size - 1) {
                val r = mergeRank[parts[j] + SEP + parts[j + 1]]
                if (r != null && r < bestRank) {
                    bestRank = r
                    best = j
                }
            }
            if (best < 0) break
            val merged = parts[best] + parts[best + 1]
            val left = parts[best]
            val right = parts[best + 1]
            // merge every occurrence of this pair, left to right, as the BPE model does
            val next = ArrayList<String>()
            var j = 0
            while (j < parts.size) {
                if (j < parts.size - 1 && parts[j] == left && parts[j + 1] == right) {
                    next.add(merged)
                    j += 2
                } else {
                    next.add(parts[j])
                    j++
                }
            }
            parts.clear()
            parts.addAll(next)
        }
        return IntArray(parts.size) { (if (parts[it] == UNK) unkId else vocab[parts[it]]) ?: throw ContractException("tokenizer: no id for '${parts[it]}' (a merge result missing from the vocabulary)") }
    }

    /** Text of [ids]; special tokens left out when [skipSpecialTokens]. Invalid UTF-8 becomes U+FFFD. */
    fun decode(ids: IntArray, skipSpecialTokens: Boolean): String {
        val bytes = java.io.ByteArrayOutputStream()
        for (id in ids) {
            if (skipSpecialTokens && id in specialIds) continue
            val tok = idToToken[id] ?: continue
            // a token's characters map back to bytes; a token with any other character (an added
            // token outside the byte alphabet) contributes its own UTF-8, as the ByteLevel decoder does
            val mapped = java.io.ByteArrayOutputStream()
            var k = 0
            var whole = true
            while (k < tok.length) {
                val cp = tok.codePointAt(k)
                val b = UNICODE_TO_BYTE[cp]
                if (b == null) {
                    whole = false
                    break
                }
                mapped.write(b)
                k += Character.charCount(cp)
            }
            val piece = if (whole) mapped.toByteArray() else tok.toByteArray(Charsets.UTF_8)
            bytes.write(piece, 0, piece.size)
        }
        return String(bytes.toByteArray(), Charsets.UTF_8)
    }

    companion object {
        private const val SEP = "\u0000" // never inside a byte-level token
        private const val UNK = "\u0000unk" // a part standing for unk_token (never a vocabulary entry or merge)
        /**
         * Unicode White_Space, spelled out: what `\\s` means to the tokenizers library (Oniguruma),
         * without Pattern.UNICODE_CHARACTER_CLASS, which Android does not support.
         */
        private const val WS = "\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000"

        /** GPT-2's pre-tokenizer split (`\\p{L}`, `\\p{N}` are Unicode categories on the JVM and Android alike). */
        private val SPLIT: Pattern = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^$WS\\p{L}\\p{N}]+|[$WS]+(?![^$WS])|[$WS]+"
        )
        private val BYTE_TO_UNICODE = IntArray(256)
        private val UNICODE_TO_BYTE = HashMap<Int, Int>()

        init { // GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n
            var n = 0
            for (b in 0..255) {
                val printable = b in 33..126 || b in 161..172 || b in 174..255
                BYTE_TO_UNICODE[b] = if (printable) b else 256 + n++
                UNICODE_TO_BYTE[BYTE_TO_UNICODE[b]] = b
            }
        }

        /** Rust's char::is_numeric, which the Digits pre-tokenizer splits on: categories Nd, Nl and No. */
        private fun isNumeric(cp: Int): Boolean {
            val t = Character.getType(cp)
            return t == Character.DECIMAL_DIGIT_NUMBER.toInt() || t == Character.LETTER_NUMBER.toInt() || t == Character.OTHER_NUMBER.toInt()
        }

        /** The ByteLevel step of [pre] (alone, or after Digits(individual_digits) in a Sequence) and whether digits split first. */
        @Suppress("UNCHECKED_CAST")
        private fun byteLevelStep(pre: Map<String, Any?>?): Pair<Map<String, Any?>, Boolean>? {
            if (pre?.get("type") == "ByteLevel") return Pair(pre, false)
            val steps = (pre?.get("pretokenizers") as List<Any?>?)?.map { it as Map<String, Any?> } ?: return null
            if (pre?.get("type") != "Sequence" || steps.size != 2) return null
            if (steps[0]["type"] != "Digits" || steps[0]["individual_digits"] != true || steps[1]["type"] != "ByteLevel") return null
            return Pair(steps[1], true)
        }

        private fun byteChars(piece: String): String {
            val sb = StringBuilder()
            for (b in piece.toByteArray(Charsets.UTF_8)) sb.appendCodePoint(BYTE_TO_UNICODE[b.toInt() and 0xFF])
            return sb.toString()
        }

        /** Reads tokenizer.json text; refuses what this implementation does not do. */
        @JvmStatic
        @Suppress("UNCHECKED_CAST")
        fun fromJson(text: String): Tokenizer {
            val root = Json.parse(text) as? Map<String, Any?> ?: throw ContractException("tokenizer.json: not a JSON object")
            if (root["normalizer"] != null) throw ContractException("tokenizer.json: normalizer ${(root["normalizer"] as Map<String, Any?>)["type"]} is not supported (only none)")
            val step = byteLevelStep(root["pre_tokenizer"] as Map<String, Any?>?)
            if (step == null || step.first["use_regex"] == false) {
                throw ContractException(
                    "tokenizer.json: pre_tokenizer ${Json.write(root["pre_tokenizer"])} is not supported " +
                        "(only ByteLevel with use_regex, alone or after Digits with individual_digits)"
                )
            }
            val pre = step.first
            val dec = root["decoder"] as Map<String, Any?>?
            if (dec == null || dec["type"] != "ByteLevel") throw ContractException("tokenizer.json: decoder ${dec?.get("type")} is not supported (only ByteLevel)")
            val model = root["model"] as Map<String, Any?>? ?: throw ContractException("tokenizer.json: no model")
            if (model["type"] != "BPE") throw ContractException("tokenizer.json: model ${model["type"]} is not supported (only BPE)")
            if (model["dropout"] != null) throw ContractException("tokenizer.json: BPE dropout is not supported")
            for (key in listOf("ignore_merges", "byte_fallback")) {
                if (model[key] == true) throw ContractException("tokenizer.json: BPE $key is not supported")
            }
            for (key in listOf("continuing_subword_prefix", "end_of_word_suffix")) {
                if (!((model[key] as String?) ?: "").isEmpty()) throw ContractException("tokenizer.json: BPE $key '${model[key]}' is not supported")
            }
            val vocab = HashMap<String, Int>()
            for ((k, v) in model["vocab"] as Map<String, Any?>) vocab[k] = (v as Long).toInt()
            val ranks = HashMap<String, Int>()
            for ((rank, m) in (model["merges"] as List<Any?>).withIndex()) {
                val pair = if (m is String) {
                    val at = m.indexOf(' ')
                    Pair(m.substring(0, at), m.substring(at + 1))
                } else {
                    val l = m as List<Any?>
                    Pair(l[0] as String, l[1] as String)
                }
                ranks[pair.first + SEP + pair.second] = rank
            }
            val added = ArrayList<Pair<String, Int>>()
            val special = HashSet<Int>()
            for (a in (root["added_tokens"] as List<Any?>?) ?: emptyList<Any?>()) {
                val t = a as Map<String, Any?>
                val content = t["content"] as String
                if (t["lstrip"] == true || t["rstrip"] == true || t["single_word"] == true) {
                    throw ContractException("tokenizer.json: added token '$content' uses lstrip/rstrip/single_word, not supported")
                }
                val id = (t["id"] as Long).toInt()
                added.add(Pair(content, id))
                vocab[content] = id
                if (t["special"] == true) special.add(id)
            }
            added.sortWith(Comparator { x, y -> y.first.length.compareTo(x.first.length) })
            val inverse = HashMap<Int, String>()
            for ((k, v) in vocab) inverse[v] = k
            val unk = model["unk_token"] as String?
            val unkId = if (unk == null) null else vocab[unk] ?: throw ContractException("tokenizer.json: BPE unk_token '$unk' is not in the vocabulary")
            return Tokenizer(vocab, inverse, ranks, added, special, pre["add_prefix_space"] == true, step.second, unkId, model["fuse_unk"] == true)
        }
    }
}
