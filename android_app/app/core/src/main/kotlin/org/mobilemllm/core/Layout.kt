package org.mobilemllm.core

/**
 * The order of positions in a prompt, as mobile_mllm/runtime/layout.py: runs of token ids and
 * references to tile embeddings. The image block is
 * `image_start, [thumbnail_marker, THUMB], TILE_0, tile_sep, ..., image_end` with the thumbnail
 * first or last as the tiles come, `row_sep` after a row's last tile when set; empty special
 * strings are left out and adjacent token runs merged.
 */
sealed class Segment

/** Positions filled by the embeddings of these token ids. */
data class TokenRun(val ids: List<Int>) : Segment()

/** Positions filled by one tile's embeddings (vision_encoder output row [tile]). */
data class TileRef(val tile: Int, val numTokens: Int) : Segment()

object Layout {
    /** Each non-empty special string of [fmt] mapped to its id in [tokenizer]. */
    @JvmStatic
    fun specialTokenIds(tokenizer: Tokenizer, fmt: PromptFormat): Map<String, Int> {
        val names = listOf(fmt.imageStart, fmt.imageEnd, fmt.tileSep, fmt.rowSep, fmt.thumbnailMarker, fmt.bos) + fmt.eos
        val out = LinkedHashMap<String, Int>()
        for (name in names) {
            if (name.isEmpty()) continue
            out[name] = tokenizer.tokenToId(name) ?: throw ContractException(
                "special token '$name' of the prompt format is not in the tokenizer; check that tokenizer.json belongs to this model"
            )
        }
        return out
    }

    private fun special(name: String, ids: Map<String, Int>): List<Int> = if (name.isEmpty()) emptyList() else listOf(ids.getValue(name))

    @JvmStatic
    fun imageBlock(fmt: PromptFormat, grid: Grid, thumbnailIndex: Int?, tokensPerTile: Int, tokenIds: Map<String, Int>): List<Segment> {
        val nLocal = grid.numTiles
        if (thumbnailIndex != null && thumbnailIndex != 0 && thumbnailIndex != nLocal) {
            throw ConfigException("thumbnail_index must be 0, $nLocal (the number of local tiles) or None, got $thumbnailIndex")
        }
        val offset = if (thumbnailIndex == 0) 1 else 0
        val thumb = ArrayList<Segment>()
        if (thumbnailIndex != null) {
            thumb.add(TokenRun(special(fmt.thumbnailMarker, tokenIds)))
            thumb.add(TileRef(thumbnailIndex, tokensPerTile))
        }
        val local = ArrayList<Segment>()
        for (i in 0 until nLocal) {
            val lastInRow = (i + 1) % grid.cols == 0
            val sep = if (lastInRow && fmt.rowSep.isNotEmpty()) fmt.rowSep else fmt.tileSep
            local.add(TileRef(i + offset, tokensPerTile))
            local.add(TokenRun(special(sep, tokenIds)))
        }
        val body = if (thumbnailIndex == 0) thumb + local else local + thumb
        return merge(listOf<Segment>(TokenRun(special(fmt.imageStart, tokenIds))) + body + TokenRun(special(fmt.imageEnd, tokenIds)))
    }

    @JvmStatic
    fun merge(segments: List<Segment>): List<Segment> {
        val out = ArrayList<Segment>()
        for (seg in segments) {
            if (seg is TokenRun) {
                if (seg.ids.isEmpty()) continue
                val last = out.lastOrNull()
                if (last is TokenRun) {
                    out[out.size - 1] = TokenRun(last.ids + seg.ids)
                    continue
                }
            }
            out.add(seg)
        }
        return out
    }

    private fun count(text: String, sub: String): Int {
        if (sub.isEmpty()) return text.length + 1 // Python's str.count("") semantics
        var n = 0
        var i = text.indexOf(sub)
        while (i >= 0) {
            n++
            i = text.indexOf(sub, i + sub.length)
        }
        return n
    }

    /** The first turn: bos, system, the user turn with the image where the placeholder is (or before the question). */
    @JvmStatic
    fun firstTurn(fmt: PromptFormat, question: String, encode: (String) -> IntArray, tokenIds: Map<String, Int>, image: List<Segment>?): List<Segment> {
        var content = question
        if (image != null) {
            val n = count(question, fmt.imagePlaceholder)
            if (n > 1) throw ConfigException("the prompt holds $n image placeholders '${fmt.imagePlaceholder}'; a conversation takes one image: keep at most one")
            if (n == 0) content = fmt.imagePlaceholder + "\n" + question
        }
        val text = fmt.system + fmt.userTurn(content)
        val segments = ArrayList<Segment>()
        segments.add(TokenRun(special(fmt.bos, tokenIds)))
        if (image == null) {
            segments.add(TokenRun(encode(text).toList()))
        } else {
            val at = text.indexOf(fmt.imagePlaceholder)
            segments.add(TokenRun(encode(text.substring(0, at)).toList()))
            segments.addAll(image)
            segments.add(TokenRun(encode(text.substring(at + fmt.imagePlaceholder.length)).toList()))
        }
        return merge(segments)
    }

    /** A follow-up turn, prefilled right after the previous answer ([unfedAnswer]: its tokens not yet in the cache). */
    @JvmStatic
    fun nextTurn(fmt: PromptFormat, question: String, encode: (String) -> IntArray, unfedAnswer: List<Int>): List<Segment> =
        merge(listOf(TokenRun(unfedAnswer), TokenRun(encode(fmt.turnEnd + fmt.userTurn(question)).toList())))

    @JvmStatic
    fun countPositions(segments: List<Segment>): Int {
        var n = 0
        for (s in segments) n += if (s is TokenRun) s.ids.size else (s as TileRef).numTokens
        return n
    }
}
