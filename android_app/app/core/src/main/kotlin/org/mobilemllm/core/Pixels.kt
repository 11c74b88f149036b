package org.mobilemllm.core

/**
 * Pixels to tiles, as mobile_mllm/vision/tiling.render_tiles and normalize.normalize: Pillow's
 * resize reproduced bit for bit (bicubic, bilinear and lanczos as Pillow's separable fixed-point
 * resampling with an antialiasing support widened by the downscale factor, horizontal pass
 * first; nearest as Pillow's affine nearest mapping), pasting on a pad_color canvas, row-major
 * cutting, the thumbnail (for smolvlm: after its first resize, the canvas squashed to one tile),
 * and normalisation to float32 CHW. Decoding the file (and EXIF
 * orientation) is the platform's job: Android's BitmapFactory in the app, PIL on the host.
 */

/** An 8-bit RGB image, rows top to bottom, 3 bytes per pixel. */
class RgbImage(val width: Int, val height: Int, val rgb: ByteArray) {
    init {
        require(rgb.size == width * height * 3) { "rgb has ${rgb.size} bytes, expected ${width * height * 3} for ${width}x$height" }
    }
    val size: Size get() = Size(width, height)

    companion object {
        /**
         * RGB from Android-style ARGB ints (non-premultiplied, as Bitmap.getPixels gives), with
         * transparency composited on [background] exactly as PIL's alpha_composite does.
         */
        @JvmStatic
        fun fromArgb(width: Int, height: Int, argb: IntArray, background: List<Int>): RgbImage {
            val out = ByteArray(width * height * 3)
            val bg = intArrayOf(background[0], background[1], background[2])
            val src = IntArray(3)
            val px = IntArray(3)
            for (i in 0 until width * height) {
                val c = argb[i]
                val a = (c ushr 24) and 0xFF
                src[0] = (c shr 16) and 0xFF
                src[1] = (c shr 8) and 0xFF
                src[2] = c and 0xFF
                Pixels.compositeOver(src, a, bg, px)
                out[3 * i] = px[0].toByte()
                out[3 * i + 1] = px[1].toByte()
                out[3 * i + 2] = px[2].toByte()
            }
            return RgbImage(width, height, out)
        }
    }
}

object Pixels {
    private const val PRECISION_BITS = 32 - 8 - 2

    /**
     * The upright image for an EXIF orientation (1..8), as PIL's ImageOps.exif_transpose (which
     * vision/io.load_image applies): 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90
     * clockwise, 7 transverse, 8 rotate 90 counter-clockwise; anything else leaves it as it is.
     */
    @JvmStatic
    fun exifTranspose(img: RgbImage, orientation: Int): RgbImage {
        if (orientation < 2 || orientation > 8) return img
        val w = img.width
        val h = img.height
        val swap = orientation >= 5
        val ow = if (swap) h else w
        val oh = if (swap) w else h
        val out = ByteArray(img.rgb.size)
        for (y in 0 until oh) {
            for (x in 0 until ow) {
                val sx: Int
                val sy: Int
                when (orientation) {
                    2 -> { sx = w - 1 - x; sy = y }
                    3 -> { sx = w - 1 - x; sy = h - 1 - y }
                    4 -> { sx = x; sy = h - 1 - y }
                    5 -> { sx = y; sy = x }
                    6 -> { sx = y; sy = h - 1 - x }
                    7 -> { sx = w - 1 - y; sy = h - 1 - x }
                    else -> { sx = w - 1 - y; sy = x }
                }
                System.arraycopy(img.rgb, (sy * w + sx) * 3, out, (y * ow + x) * 3, 3)
            }
        }
        return RgbImage(ow, oh, out)
    }

    /** PIL's alpha_composite of one pixel over an opaque background (its integer arithmetic). */
    @JvmStatic
    fun compositeOver(src: IntArray, alpha: Int, bg: IntArray, out: IntArray) {
        if (alpha == 255) {
            out[0] = src[0]; out[1] = src[1]; out[2] = src[2]
            return
        }
        if (alpha == 0) {
            out[0] = bg[0]; out[1] = bg[1]; out[2] = bg[2]
            return
        }
        val shift = 7
        val blend = 255L * (255 - alpha)
        val outa255 = alpha * 255L + blend
        val coef1 = alpha * 255L * 255L * (1L shl shift) / outa255
        val coef2 = 255L * (1L shl shift) - coef1
        for (k in 0..2) {
            val tmp = src[k] * coef1 + bg[k] * coef2 + (0x80L shl shift)
            out[k] = ((((tmp shr 8) + tmp) shr 8) shr shift).toInt()
        }
    }

    private fun bilinear(x0: Double): Double {
        val x = Math.abs(x0)
        return if (x < 1.0) 1.0 - x else 0.0
    }

    private fun bicubic(x0: Double): Double { // Keys' cubic convolution, a = -0.5, as Pillow
        val a = -0.5
        val x = Math.abs(x0)
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a
        return 0.0
    }

    private fun sinc(x0: Double): Double {
        if (x0 == 0.0) return 1.0
        val x = x0 * Math.PI
        return StrictMath.sin(x) / x // fdlibm: the same double on every JVM and Android device
    }

    private fun lanczos(x: Double): Double = if (-3.0 <= x && x < 3.0) sinc(x) * sinc(x / 3) else 0.0 // Lanczos-3, as Pillow

    /** Pillow's filter table: the kernel of a separable filter and its support (nearest has none). */
    private fun kernel(filter: Resample, x: Double): Double = when (filter) {
        Resample.BICUBIC -> bicubic(x)
        Resample.BILINEAR -> bilinear(x)
        Resample.LANCZOS -> lanczos(x)
        Resample.NEAREST -> throw IllegalArgumentException("nearest is not a separable filter")
    }

    private fun support(filter: Resample): Double = when (filter) {
        Resample.BICUBIC -> 2.0
        Resample.LANCZOS -> 3.0
        else -> 1.0
    }

    private class Coeffs(val ksize: Int, val bounds: IntArray, val kk: IntArray)

    private fun coefficients(inSize: Int, outSize: Int, filter: Resample): Coeffs {
        val support0 = support(filter)
        val scale = inSize.toDouble() / outSize
        val filterscale = Math.max(scale, 1.0)
        val support = support0 * filterscale
        val ksize = Math.ceil(support).toInt() * 2 + 1
        val bounds = IntArray(outSize * 2)
        val kk = IntArray(outSize * ksize)
        val k = DoubleArray(ksize)
        for (xx in 0 until outSize) {
            val center = (xx + 0.5) * scale
            val ss = 1.0 / filterscale
            var xmin = (center - support + 0.5).toInt()
            if (xmin < 0) xmin = 0
            var xmax = (center + support + 0.5).toInt()
            if (xmax > inSize) xmax = inSize
            xmax -= xmin
            var ww = 0.0
            for (x in 0 until xmax) {
                val w = kernel(filter, (x + xmin - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for (x in 0 until xmax) if (ww != 0.0) k[x] /= ww
            for (x in 0 until ksize) {
                val v = if (x < xmax) k[x] else 0.0
                kk[xx * ksize + x] = (if (v < 0) -0.5 + v * (1 shl PRECISION_BITS) else 0.5 + v * (1 shl PRECISION_BITS)).toInt()
            }
            bounds[2 * xx] = xmin
            bounds[2 * xx + 1] = xmax
        }
        return Coeffs(ksize, bounds, kk)
    }

    private fun clip8(v: Int): Int {
        val s = v shr PRECISION_BITS
        return if (s < 0) 0 else if (s > 255) 255 else s
    }

    private fun horizontal(src: RgbImage, outW: Int, c: Coeffs): RgbImage {
        val out = ByteArray(outW * src.height * 3)
        val inp = src.rgb
        for (y in 0 until src.height) {
            val row = y * src.width * 3
            for (xx in 0 until outW) {
                val xmin = c.bounds[2 * xx]
                val n = c.bounds[2 * xx + 1]
                val kOff = xx * c.ksize
                var s0 = 1 shl (PRECISION_BITS - 1)
                var s1 = s0
                var s2 = s0
                for (x in 0 until n) {
                    val p = row + (x + xmin) * 3
                    val w = c.kk[kOff + x]
                    s0 += (inp[p].toInt() and 0xFF) * w
                    s1 += (inp[p + 1].toInt() and 0xFF) * w
                    s2 += (inp[p + 2].toInt() and 0xFF) * w
                }
                val o = (y * outW + xx) * 3
                out[o] = clip8(s0).toByte()
                out[o + 1] = clip8(s1).toByte()
                out[o + 2] = clip8(s2).toByte()
            }
        }
        return RgbImage(outW, src.height, out)
    }

    private fun vertical(src: RgbImage, outH: Int, c: Coeffs): RgbImage {
        val out = ByteArray(src.width * outH * 3)
        val inp = src.rgb
        for (yy in 0 until outH) {
            val ymin = c.bounds[2 * yy]
            val n = c.bounds[2 * yy + 1]
            val kOff = yy * c.ksize
            for (x in 0 until src.width) {
                var s0 = 1 shl (PRECISION_BITS - 1)
                var s1 = s0
                var s2 = s0
                for (y in 0 until n) {
                    val p = ((y + ymin) * src.width + x) * 3
                    val w = c.kk[kOff + y]
                    s0 += (inp[p].toInt() and 0xFF) * w
                    s1 += (inp[p + 1].toInt() and 0xFF) * w
                    s2 += (inp[p + 2].toInt() and 0xFF) * w
                }
                val o = (yy * src.width + x) * 3
                out[o] = clip8(s0).toByte()
                out[o + 1] = clip8(s1).toByte()
                out[o + 2] = clip8(s2).toByte()
            }
        }
        return RgbImage(src.width, outH, out)
    }

    /** Pillow's nearest resize: an affine map stepped in doubles from the first pixel centre. */
    private fun nearest(src: RgbImage, w: Int, h: Int): RgbImage {
        val out = ByteArray(w * h * 3)
        val ax = src.width.toDouble() / w
        val ay = src.height.toDouble() / h
        val xin = IntArray(w) { -1 }
        var xo = ax * 0.5
        for (x in 0 until w) {
            val xi = if (xo < 0.0) -1 else xo.toInt()
            if (xi >= 0 && xi < src.width) xin[x] = xi
            xo += ax
        }
        var yo = ay * 0.5
        for (y in 0 until h) {
            val yi = if (yo < 0.0) -1 else yo.toInt()
            if (yi >= 0 && yi < src.height) {
                for (x in 0 until w) {
                    if (xin[x] >= 0) System.arraycopy(src.rgb, (yi * src.width + xin[x]) * 3, out, (y * w + x) * 3, 3)
                }
            }
            yo += ay
        }
        return RgbImage(w, h, out)
    }

    /** `img.resize((width, height), filter)` of Pillow, for 8-bit RGB. */
    @JvmStatic
    fun resize(img: RgbImage, width: Int, height: Int, filter: Resample): RgbImage {
        if (width == img.width && height == img.height) return img
        if (filter == Resample.NEAREST) return nearest(img, width, height)
        var cur = img
        if (width != img.width) cur = horizontal(cur, width, coefficients(img.width, width, filter))
        if (height != img.height) cur = vertical(cur, height, coefficients(img.height, height, filter))
        return cur
    }

    /** The image resized into [layout] and pasted on a pad_color canvas (tiling._place). */
    @JvmStatic
    fun place(img: RgbImage, layout: CanvasLayout, cfg: VisionConfig): RgbImage {
        val resized = resize(img, layout.resized.width, layout.resized.height, cfg.resample)
        if (layout.resized == layout.canvas) return resized
        val cw = layout.canvas.width
        val out = ByteArray(cw * layout.canvas.height * 3)
        val pad = byteArrayOf(cfg.padColor[0].toByte(), cfg.padColor[1].toByte(), cfg.padColor[2].toByte())
        for (i in 0 until cw * layout.canvas.height) System.arraycopy(pad, 0, out, 3 * i, 3)
        for (y in 0 until resized.height) {
            System.arraycopy(resized.rgb, y * resized.width * 3, out, ((y + layout.top) * cw + layout.left) * 3, resized.width * 3)
        }
        return RgbImage(cw, layout.canvas.height, out)
    }

    /** The plan's tiles as `S x S` RGB images in model order (local tiles row-major, thumbnail at its index). */
    @JvmStatic
    fun renderTiles(img: RgbImage, plan: TilePlan, cfg: VisionConfig): List<RgbImage> {
        if (img.size != plan.originalSize) throw ImageException("decoded image is ${img.size} but the plan is for ${plan.originalSize}")
        val s = cfg.tileSize
        val smolvlm = cfg.policy == GridPolicy.SMOLVLM
        // smolvlm resizes twice: the longest edge first (stretched), then to the canvas
        val source = if (!smolvlm) img else {
            val first = GridRules.smolvlmFirstResize(img.size, plan.grid, cfg)
            place(img, Tiling.layoutCanvas(img.size, first, false), cfg)
        }
        val canvas = place(source, Tiling.layoutCanvas(source.size, plan.canvas, cfg.padsCanvas), cfg)
        val local = ArrayList<RgbImage>()
        for (r in 0 until plan.grid.rows) {
            for (c in 0 until plan.grid.cols) {
                val tile = ByteArray(s * s * 3)
                for (y in 0 until s) System.arraycopy(canvas.rgb, ((r * s + y) * canvas.width + c * s) * 3, tile, y * s * 3, s * 3)
                local.add(RgbImage(s, s, tile))
            }
        }
        val thumbSource = if (smolvlm) canvas else img // SmolVLM's global image is the canvas squashed to one tile
        val thumb = if (plan.thumbnailIndex == null) null else place(thumbSource, Tiling.layoutCanvas(thumbSource.size, Size(s, s), cfg.padsCanvas), cfg)
        return Tiling.orderTiles(local, thumb, cfg.thumbnail).first
    }

    /**
     * Tiles as float32 `[N, 3, S, S]` (flattened): `(x / 255 - mean) / std` in float arithmetic, as
     * normalize.normalize computes it with numpy float32.
     */
    @JvmStatic
    fun normalize(tiles: List<RgbImage>, mean: List<Double>, std: List<Double>): FloatArray {
        if (tiles.isEmpty()) return FloatArray(0)
        val plane = tiles[0].width * tiles[0].height
        val out = FloatArray(tiles.size * 3 * plane)
        val m = floatArrayOf(mean[0].toFloat(), mean[1].toFloat(), mean[2].toFloat())
        val sd = floatArrayOf(std[0].toFloat(), std[1].toFloat(), std[2].toFloat())
        for ((t, tile) in tiles.withIndex()) {
            for (i in 0 until plane) {
                for (ch in 0..2) {
                    val scaled = (tile.rgb[3 * i + ch].toInt() and 0xFF).toFloat() / 255.0f
                    out[(t * 3 + ch) * plane + i] = (scaled - m[ch]) / sd[ch]
                }
            }
        }
        return out
    }
}
