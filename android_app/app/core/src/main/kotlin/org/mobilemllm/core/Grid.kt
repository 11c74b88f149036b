package org.mobilemllm.core

/**
 * Tile-grid selection, as mobile_mllm/vision/grid.py (the toolkit's rules, reproduced exactly so
 * the phone cuts the tiles the host would): relaxed (BlueLM-V-3B Algorithm 1), llava_next,
 * internvl and smolvlm (SmolVLM/Idefics3's image splitting: longest edge resized, then rounded up
 * to whole tiles), over the candidates allowed by max_side / max_tiles, with an optional token
 * budget that removes candidates before the policy runs. Sizes only: no pixels here.
 */

/** Width x height in pixels. */
data class Size(val width: Int, val height: Int) {
    val area: Long get() = width.toLong() * height.toLong()
    override fun toString(): String = "${width}x$height"
}

/** A tile grid: [cols] across (m), [rows] down (n). */
data class Grid(val cols: Int, val rows: Int) {
    val numTiles: Int get() = cols * rows
    fun canvas(tileSize: Int): Size = Size(cols * tileSize, rows * tileSize)
    override fun toString(): String = "$cols:$rows"
}

/** Effective resolution (pixels kept, capped at the original) and wasted canvas pixels. */
data class Resolution(val effective: Long, val wasted: Long)

enum class GridPolicy(val value: String) { RELAXED("relaxed"), LLAVA_NEXT("llava_next"), INTERNVL("internvl"), SMOLVLM("smolvlm") }

enum class ThumbnailPosition(val value: String) { FIRST("first"), LAST("last"), NONE("none") }

enum class Resample(val value: String) { BICUBIC("bicubic"), BILINEAR("bilinear"), NEAREST("nearest"), LANCZOS("lanczos") }

internal fun <E : Enum<E>> enumOf(values: Array<E>, text: String, key: String, name: (E) -> String): E =
    values.firstOrNull { name(it) == text }
        ?: throw ContractException("vision.$key: '$text' is not one of ${values.map(name)}")

/** Everything that decides how an image becomes tiles (the manifest's `vision` object). */
data class VisionConfig(
    val policy: GridPolicy = GridPolicy.RELAXED,
    val tileSize: Int = 384,
    val maxSide: Int? = 3,
    val maxTiles: Int? = null,
    val alpha: Double = 0.1,
    val thumbnail: ThumbnailPosition = ThumbnailPosition.LAST,
    val thumbnailForSingle: Boolean = false,
    val mean: List<Double> = listOf(0.5, 0.5, 0.5),
    val std: List<Double> = listOf(0.5, 0.5, 0.5),
    val padColor: List<Int> = listOf(127, 127, 127),
    val background: List<Int> = listOf(255, 255, 255),
    val maxPixels: Long = 80000000L,
    val tokensPerTile: Int = 196,
    val resample: Resample = Resample.BICUBIC,
    /** smolvlm only: the longest edge an image is first resized to (null: max_side, else max_tiles, tiles). */
    val longestEdgePx: Int? = null
) {
    init {
        if (maxSide == null && maxTiles == null) throw ConfigException("vision: set max_side or max_tiles (or both); neither bounds the grid")
        if (tileSize <= 0) throw ConfigException("vision.tile_size must be positive, got $tileSize")
        if (!(alpha >= 0 && alpha < Double.POSITIVE_INFINITY)) throw ConfigException("vision.alpha must be a finite number >= 0, got $alpha")
        if (mean.size != 3 || std.size != 3) throw ConfigException("vision.mean and vision.std need 3 values (RGB), got $mean and $std")
        if (std.any { it <= 0 }) throw ConfigException("vision.std must be positive in every channel, got $std")
        if (longestEdgePx != null && longestEdgePx <= 0) throw ConfigException("vision.longest_edge_px must be positive, got $longestEdgePx")
    }

    /** Whether the policy keeps the aspect ratio and pads (all but internvl and smolvlm, which stretch). */
    val padsCanvas: Boolean get() = policy != GridPolicy.INTERNVL && policy != GridPolicy.SMOLVLM

    /** The smolvlm policy's first longest edge: longest_edge_px, else max_side (else max_tiles) tiles. */
    val smolvlmLongestEdgePx: Int get() = longestEdgePx ?: tileSize * (maxSide ?: maxTiles ?: 1)

    companion object {
        /** The manifest's `vision` object (already checked against the schema). */
        @JvmStatic
        fun fromJson(v: Map<String, Any?>): VisionConfig {
            val w = "vision"
            fun ints(key: String): List<Int> = v.list(key, w).map { (it as Long).toInt() }
            fun doubles(key: String): List<Double> = v.list(key, w).map { if (it is Long) it.toDouble() else it as Double }
            return VisionConfig(
                policy = enumOf(GridPolicy.values(), v.str("policy", w), "policy") { it.value },
                tileSize = v.long("tile_size", w).toInt(),
                maxSide = v.longOrNull("max_side", w)?.toInt(),
                maxTiles = v.longOrNull("max_tiles", w)?.toInt(),
                alpha = v.double("alpha", w),
                thumbnail = enumOf(ThumbnailPosition.values(), v.str("thumbnail", w), "thumbnail") { it.value },
                thumbnailForSingle = v["thumbnail_for_single"] as Boolean,
                mean = doubles("mean"),
                std = doubles("std"),
                padColor = ints("pad_color"),
                background = ints("background"),
                maxPixels = v.long("max_pixels", w),
                tokensPerTile = v.long("tokens_per_tile", w).toInt(),
                resample = enumOf(Resample.values(), v.str("resample", w), "resample") { it.value },
                longestEdgePx = v.longOrNull("longest_edge_px", w)?.toInt()
            )
        }
    }
}

object GridRules {
    /** All grids with m, n <= maxSide and/or m * n <= maxTiles, ascending on (cols, rows). */
    @JvmStatic
    fun candidateGrids(maxSide: Int?, maxTiles: Int?): List<Grid> {
        if (maxSide == null && maxTiles == null) throw ConfigException("vision: set max_side or max_tiles (or both); neither bounds the grid")
        if (maxSide != null && maxSide < 1) throw ConfigException("vision.max_side must be >= 1, got $maxSide")
        if (maxTiles != null && maxTiles < 1) throw ConfigException("vision.max_tiles must be >= 1, got $maxTiles")
        val side = maxSide ?: maxTiles!!
        val out = ArrayList<Grid>()
        for (m in 1..side) {
            val nMax = if (maxTiles == null) side else Math.min(side, maxTiles / m)
            for (n in 1..nMax) out.add(Grid(m, n))
        }
        return out
    }

    /** Re and Rw of an image resized (aspect kept) into a grid's canvas, in doubles as Python's floats. */
    @JvmStatic
    fun resolutionOn(image: Size, grid: Grid, tileSize: Int): Resolution {
        val canvas = grid.canvas(tileSize)
        val scale = Math.min(canvas.width.toDouble() / image.width, canvas.height.toDouble() / image.height)
        val ew = (image.width * scale).toLong() // int() truncates toward zero, as here
        val eh = (image.height * scale).toLong()
        val effective = Math.min(ew * eh, image.area)
        return Resolution(effective, canvas.area - effective)
    }

    private val byColsRows = Comparator<Grid> { a, b -> if (a.cols != b.cols) a.cols.compareTo(b.cols) else a.rows.compareTo(b.rows) }

    @JvmStatic
    fun selectRelaxed(image: Size, candidates: List<Grid>, tileSize: Int, alpha: Double): Grid {
        require(candidates)
        var best: Grid? = null
        var reMax = 0L
        var rwMin = Double.POSITIVE_INFINITY
        for (grid in candidates.sortedWith(byColsRows.reversed())) {
            val res = resolutionOn(image, grid, tileSize)
            val bound = alpha * reMax
            val aboutAsMuch = (reMax - res.effective) < bound || (res.effective == 0L && reMax == 0L)
            if ((res.effective - reMax) > bound || (aboutAsMuch && res.wasted < rwMin)) {
                best = grid
                reMax = res.effective
                rwMin = res.wasted.toDouble()
            }
        }
        return best!!
    }

    @JvmStatic
    fun selectLlavaNext(image: Size, candidates: List<Grid>, tileSize: Int): Grid {
        require(candidates)
        var best = candidates[0]
        var bestRes = Resolution(-1, 0)
        for (grid in candidates.sortedWith(byColsRows)) {
            val res = resolutionOn(image, grid, tileSize)
            if (res.effective > bestRes.effective || (res.effective == bestRes.effective && res.wasted < bestRes.wasted)) {
                best = grid
                bestRes = res
            }
        }
        return best
    }

    @JvmStatic
    fun selectInternvl(image: Size, candidates: List<Grid>, tileSize: Int): Grid {
        require(candidates)
        val aspect = image.width.toDouble() / image.height
        var best = Grid(1, 1)
        var bestDiff = Double.POSITIVE_INFINITY
        val order = candidates.sortedWith(Comparator { a, b ->
            if (a.numTiles != b.numTiles) a.numTiles.compareTo(b.numTiles) else byColsRows.compare(a, b)
        })
        for (grid in order) {
            val diff = Math.abs(aspect - grid.cols.toDouble() / grid.rows)
            if (diff < bestDiff) {
                best = grid
                bestDiff = diff
            } else if (diff == bestDiff && image.area > 0.5 * tileSize * tileSize * grid.numTiles) {
                best = grid
            }
        }
        return best
    }

    /** SmolVLM's bound on the first resize's longest edge (its processor's MAX_IMAGE_SIZE). */
    private const val SMOLVLM_MAX_PX = 4096

    /** Longest side to [edge], the other `int(edge / aspect)` (made even when asked), in doubles as grid._fit_longest. */
    private fun fitLongest(image: Size, edge: Int, even: Boolean): Size {
        val aspect = image.width.toDouble() / image.height
        var w: Int
        var h: Int
        if (image.width >= image.height) {
            w = edge
            h = (edge / aspect).toInt()
            if (even && h % 2 != 0) h++
        } else {
            w = (edge * aspect).toInt()
            h = edge
            if (even && w % 2 != 0) w++
        }
        return Size(Math.max(w, 1), Math.max(h, 1))
    }

    /**
     * The two resizes of SmolVLM's splitting (grid.smolvlm_sizes): the longest edge to
     * [longestEdgePx] (short side made even, at most 4096 px), then up to whole tiles (the long side
     * rounded up, the short side derived from it and rounded up too). Returns (first, canvas).
     */
    @JvmStatic
    fun smolvlmSizes(image: Size, longestEdgePx: Int, tileSize: Int): Pair<Size, Size> {
        var first = fitLongest(image, longestEdgePx, true)
        if (Math.max(first.width, first.height) > SMOLVLM_MAX_PX) first = fitLongest(first, SMOLVLM_MAX_PX, false)
        val aspect = first.width.toDouble() / first.height
        fun up(v: Int): Int = Math.ceil(v.toDouble() / tileSize).toInt() * tileSize
        val w: Int
        val h: Int
        if (first.width >= first.height) {
            w = up(first.width)
            h = up((w / aspect).toInt())
        } else {
            h = up(first.height)
            w = up((h * aspect).toInt())
        }
        return Pair(first, Size(Math.max(w, tileSize), Math.max(h, tileSize)))
    }

    /** The longest edges the smolvlm policy tries, largest first: the configured one, then whole tiles below it. */
    @JvmStatic
    fun smolvlmEdges(longestEdgePx: Int, tileSize: Int): List<Int> {
        val out = arrayListOf(longestEdgePx)
        var k = Math.ceil(longestEdgePx.toDouble() / tileSize).toInt() - 1
        while (k > 0) {
            out.add(k * tileSize)
            k--
        }
        return out
    }

    /** The grid of the largest longest edge (smolvlmEdges) whose grid is a candidate (grid.select_smolvlm). */
    @JvmStatic
    fun selectSmolvlm(image: Size, candidates: List<Grid>, tileSize: Int, longestEdgePx: Int): Grid {
        require(candidates)
        val allowed = candidates.toSet()
        for (edge in smolvlmEdges(longestEdgePx, tileSize)) {
            val canvas = smolvlmSizes(image, edge, tileSize).second
            val grid = Grid(canvas.width / tileSize, canvas.height / tileSize)
            if (grid in allowed) return grid
        }
        throw ConfigException(
            "no longest edge up to $longestEdgePx px gives $image a grid within vision.max_side/max_tiles; allow the 1:1 grid"
        )
    }

    /**
     * The first of SmolVLM's two resizes for the [grid] selectSmolvlm picked: that of the largest
     * longest edge giving this grid (tiling._smolvlm_first_resize).
     */
    @JvmStatic
    fun smolvlmFirstResize(image: Size, grid: Grid, cfg: VisionConfig): Size {
        for (edge in smolvlmEdges(cfg.smolvlmLongestEdgePx, cfg.tileSize)) {
            val sizes = smolvlmSizes(image, edge, cfg.tileSize)
            if (sizes.second == grid.canvas(cfg.tileSize)) return sizes.first
        }
        throw ConfigException("grid $grid is not a smolvlm grid of a $image image (longest edge <= ${cfg.smolvlmLongestEdgePx} px)")
    }

    @JvmStatic
    fun hasThumbnail(grid: Grid, cfg: VisionConfig): Boolean =
        cfg.thumbnail != ThumbnailPosition.NONE && (grid.numTiles > 1 || cfg.thumbnailForSingle)

    @JvmStatic
    fun countTiles(grid: Grid, cfg: VisionConfig): Int = grid.numTiles + (if (hasThumbnail(grid, cfg)) 1 else 0)

    @JvmStatic
    fun select(image: Size, candidates: List<Grid>, cfg: VisionConfig): Grid = when (cfg.policy) {
        GridPolicy.RELAXED -> selectRelaxed(image, candidates, cfg.tileSize, cfg.alpha)
        GridPolicy.LLAVA_NEXT -> selectLlavaNext(image, candidates, cfg.tileSize)
        GridPolicy.INTERNVL -> selectInternvl(image, candidates, cfg.tileSize)
        GridPolicy.SMOLVLM -> selectSmolvlm(image, candidates, cfg.tileSize, cfg.smolvlmLongestEdgePx)
    }

    private fun require(candidates: List<Grid>) {
        if (candidates.isEmpty()) throw ConfigException("no candidate grids to choose from; check vision.max_side and vision.max_tiles")
    }
}
