package org.mobilemllm.core

/**
 * The order of positions in a prompt, as mobile_mllm/runtime/layout.py: runs of token ids and
 * references to tile embeddings. The image block is
 * `image_start, [thumbnail_marker, THUMB], TILE_0, tile_sep, ..., image_end` with the thumbnail
 * first or last as the tiles come, `row_sep` after a row's last tile when set; empty special
 * strings are left out and adjacent token runs merged. Formats that mark tiles with text
 * (SmolVLM: tile_start with the tile's row and column, row_end, tiles_end, thumbnail_start) get
 * each run of text between two tiles tokenized as one piece, as the family's processor does.
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

    /**
     * The segments of one image. With [encode] (text to ids, special tokens recognised) each run of
     * strings between two tiles is joined and tokenized at once; without it every string is a
     * special token looked up in [tokenIds], which a format marking tiles with text cannot use.
     */
    @JvmStatic
    @JvmOverloads
    fun imageBlock(
        fmt: PromptFormat, grid: Grid, thumbnailIndex0: Int?, tokensPerTile: Int, tokenIds: Map<String, Int>,
        encode: ((String) -> IntArray)? = null
    ): List<Segment> {
        var nLocal = grid.numTiles
        var thumbnailIndex = thumbnailIndex0
        if (thumbnailIndex != null && thumbnailIndex != 0 && thumbnailIndex != nLocal) {
            throw ConfigException("thumbnail_index must be 0, $nLocal (the number of local tiles) or None, got $thumbnailIndex")
        }
        if (encode == null && fmt.marksTilesWithText) {
            throw ConfigException("this prompt format marks tiles with text (tile_start, row_end, ...): pass encode")
        }
        if (fmt.singleTileAsThumbnail && nLocal == 1 && thumbnailIndex == null) { // the lone tile is the global view
            nLocal = 0
            thumbnailIndex = 0
        }
        val offset = if (thumbnailIndex == 0) 1 else 0
        // items: strings (special tokens, or text) and tile references
        val thumb = ArrayList<Any>()
        if (thumbnailIndex != null) {
            thumb.add(fmt.thumbnailStart)
            thumb.add(fmt.thumbnailMarker)
            thumb.add(TileRef(thumbnailIndex, tokensPerTile))
        }
        val local = ArrayList<Any>()
        for (i in 0 until nLocal) {
            val lastInRow = (i + 1) % grid.cols == 0
            val sep = if (lastInRow && fmt.rowSep.isNotEmpty()) fmt.rowSep else fmt.tileSep
            local.add(fmt.tileStartText(i / grid.cols + 1, i % grid.cols + 1))
            local.add(TileRef(i + offset, tokensPerTile))
            local.add(sep)
            if (lastInRow) local.add(fmt.rowEnd)
        }
        val body = if (thumbnailIndex == 0) thumb + local else local + (if (thumb.isEmpty()) emptyList() else listOf(fmt.tilesEnd)) + thumb
        return merge(tokenize(listOf<Any>(fmt.imageStart) + body + fmt.imageEnd, tokenIds, encode))
    }

    /** Layout items to segments: each run of strings between two tiles becomes one token run. */
    private fun tokenize(items: List<Any>, tokenIds: Map<String, Int>, encode: ((String) -> IntArray)?): List<Segment> {
        val out = ArrayList<Segment>()
        val run = ArrayList<String>()
        fun flush() {
            if (encode != null) {
                out.add(TokenRun(if (run.isEmpty()) emptyList() else encode(run.joinToString("")).toList()))
            } else {
                out.add(TokenRun(run.flatMap { special(it, tokenIds) }))
            }
            run.clear()
        }
        for (item in items) {
            if (item is TileRef) {
                flush()
                out.add(item)
            } else if ((item as String).isNotEmpty()) {
                run.add(item)
            }
        }
        flush()
        return out
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
            if (n == 0) content = fmt.imagePlaceholder + fmt.imageJoin + question
        }
        if (image == null || !content.startsWith(fmt.imagePlaceholder)) content = fmt.textLead + content
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
        merge(listOf(TokenRun(unfedAnswer), TokenRun(encode(fmt.turnEnd + fmt.userTurn(fmt.textLead + question)).toList())))

    @JvmStatic
    fun countPositions(segments: List<Segment>): Int {
        var n = 0
        for (s in segments) n += if (s is TokenRun) s.ids.size else (s as TileRef).numTokens
        return n
    }
}
