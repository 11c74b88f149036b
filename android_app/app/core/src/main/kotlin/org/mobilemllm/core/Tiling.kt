package org.mobilemllm.core

/**
 * Canvas layout, tile boxes and the size-only tile plan, as mobile_mllm/vision/tiling.py and
 * processor.plan_tiles: integer arithmetic only, so host and phone agree to the pixel.
 * Padding policies resize keeping the aspect ratio and centre the image on a pad_color canvas;
 * internvl stretches. Tiles are row-major; the thumbnail goes first or last.
 */

/** A rectangle in original image pixels; empty for a tile that shows only padding. */
data class Box(val left: Int, val top: Int, val right: Int, val bottom: Int) {
    val isEmpty: Boolean get() = right <= left || bottom <= top
}

/** Where the resized image sits on a canvas. */
data class CanvasLayout(val canvas: Size, val resized: Size, val left: Int, val top: Int)

/** How an image of a given size becomes tiles, known before any pixel is decoded. */
data class TilePlan(
    val originalSize: Size,
    val policy: GridPolicy,
    val grid: Grid,
    val preferredGrid: Grid,
    val canvas: Size,
    val layout: CanvasLayout,
    /** Per tile in model order, the original-image rectangle it shows (thumbnail: the whole image). */
    val boxes: List<Box>,
    val thumbnailIndex: Int?,
    val numLocalTiles: Int,
    val numTiles: Int,
    val imageTokens: Int
) {
    val reducedByBudget: Boolean get() = grid != preferredGrid

    /** The JSON-ready view `mobile-mllm grid --json` prints (same keys, same order). */
    fun summary(): Map<String, Any?> = linkedMapOf(
        "image" to listOf(originalSize.width, originalSize.height),
        "policy" to policy.value,
        "grid" to listOf(grid.cols, grid.rows),
        "tiles" to numTiles,
        "local_tiles" to numLocalTiles,
        "thumbnail_index" to thumbnailIndex,
        "canvas" to listOf(canvas.width, canvas.height),
        "resized" to listOf(layout.resized.width, layout.resized.height),
        "image_tokens" to imageTokens,
        "reduced_by_budget" to reducedByBudget,
        "preferred_grid" to listOf(preferredGrid.cols, preferredGrid.rows)
    )
}

object Tiling {
    /** round(num / den) for non-negative integers, halves up, as tiling._round_div. */
    @JvmStatic
    fun roundDiv(num: Long, den: Long): Long = Math.floorDiv(2 * num + den, 2 * den)

    @JvmStatic
    fun layoutCanvas(image: Size, canvas: Size, pad: Boolean): CanvasLayout {
        if (!pad) return CanvasLayout(canvas, canvas, 0, 0)
        val w0 = image.width.toLong()
        val h0 = image.height.toLong()
        val resized = if (canvas.width * h0 <= canvas.height * w0) {
            Size(canvas.width, Math.min(canvas.height.toLong(), Math.max(1L, roundDiv(h0 * canvas.width, w0))).toInt())
        } else {
            Size(Math.min(canvas.width.toLong(), Math.max(1L, roundDiv(w0 * canvas.height, h0))).toInt(), canvas.height)
        }
        return CanvasLayout(canvas, resized, (canvas.width - resized.width) / 2, (canvas.height - resized.height) / 2)
    }

    @JvmStatic
    fun tileBoxes(image: Size, layout: CanvasLayout, grid: Grid, tileSize: Int): List<Box> {
        fun toOriginal(pos: Int, offset: Int, resized: Int, original: Int): Int =
            Math.min(original.toLong(), Math.max(0L, roundDiv((pos - offset).toLong() * original, resized.toLong()))).toInt()
        val out = ArrayList<Box>()
        for (row in 0 until grid.rows) {
            for (col in 0 until grid.cols) {
                val x0 = col * tileSize
                val y0 = row * tileSize
                out.add(Box(
                    toOriginal(x0, layout.left, layout.resized.width, image.width),
                    toOriginal(y0, layout.top, layout.resized.height, image.height),
                    toOriginal(x0 + tileSize, layout.left, layout.resized.width, image.width),
                    toOriginal(y0 + tileSize, layout.top, layout.resized.height, image.height)
                ))
            }
        }
        return out
    }

    /** The thumbnail (if any) first or last among the local items; the items and its index. */
    @JvmStatic
    fun <T> orderTiles(local: List<T>, thumbnail: T?, position: ThumbnailPosition): Pair<List<T>, Int?> {
        if (thumbnail == null || position == ThumbnailPosition.NONE) return Pair(local, null)
        if (position == ThumbnailPosition.FIRST) return Pair(listOf(thumbnail) + local, 0)
        return Pair(local + thumbnail, local.size)
    }

    /**
     * Grid, canvas, boxes and token count for an image size, under a token budget when given.
     *
     * @throws ImageException for a non-positive size.
     * @throws ContextOverflowException when even the smallest grid needs more tokens than the budget.
     */
    @JvmStatic
    @JvmOverloads
    fun planTiles(image: Size, cfg: VisionConfig, tokenBudget: Int? = null): TilePlan {
        if (image.width <= 0 || image.height <= 0) throw ImageException("image size must be positive, got $image (width x height)")
        val candidates = GridRules.candidateGrids(cfg.maxSide, cfg.maxTiles)
        val preferred = GridRules.select(image, candidates, cfg)
        var grid = preferred
        if (tokenBudget != null) {
            val fitting = candidates.filter { GridRules.countTiles(it, cfg) * cfg.tokensPerTile <= tokenBudget }
            if (fitting.isEmpty()) {
                var smallest = Int.MAX_VALUE
                for (g in candidates) smallest = Math.min(smallest, GridRules.countTiles(g, cfg) * cfg.tokensPerTile)
                throw ContextOverflowException(
                    "token budget $tokenBudget is below the $smallest image tokens of the smallest grid " +
                        "(${cfg.tokensPerTile} per tile); raise the budget or lower vision.tokens_per_tile"
                )
            }
            grid = GridRules.select(image, fitting, cfg)
        }
        val canvas = grid.canvas(cfg.tileSize)
        val layout = layoutCanvas(image, canvas, cfg.padsCanvas)
        val local = tileBoxes(image, layout, grid, cfg.tileSize)
        val thumb = if (GridRules.hasThumbnail(grid, cfg)) Box(0, 0, image.width, image.height) else null
        val ordered = orderTiles(local, thumb, cfg.thumbnail)
        val numTiles = GridRules.countTiles(grid, cfg)
        return TilePlan(image, cfg.policy, grid, preferred, canvas, layout, ordered.first, ordered.second,
            grid.numTiles, numTiles, numTiles * cfg.tokensPerTile)
    }
}
