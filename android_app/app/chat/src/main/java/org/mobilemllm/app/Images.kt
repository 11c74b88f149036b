package org.mobilemllm.app

import android.content.ContentResolver
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.media.ExifInterface
import android.net.Uri
import java.io.File
import java.io.InputStream
import org.mobilemllm.core.ImageException
import org.mobilemllm.core.Pixels
import org.mobilemllm.core.RgbImage
import org.mobilemllm.core.VisionConfig

/**
 * Image files to [RgbImage], as mobile_mllm/vision/io.py: EXIF orientation applied (core's
 * Pixels.exifTranspose, PIL's rule), the pixel
 * count checked against vision.max_pixels from the header before decoding, transparency
 * composited on vision.background (PIL's arithmetic, in core). Decoding is Android's
 * (BitmapFactory); its JPEG decoder may differ from PIL's libjpeg by a few levels per pixel,
 * PNG decodes identically.
 */
object Images {
    fun load(path: String, cfg: VisionConfig): RgbImage {
        val file = File(path)
        if (!file.isFile) throw ImageException("image file not found: $path (check the path)")
        return decode({ file.inputStream() }, path, cfg)
    }

    fun load(resolver: ContentResolver, uri: Uri, cfg: VisionConfig): RgbImage =
        decode({ resolver.openInputStream(uri) ?: throw ImageException("cannot open $uri") }, uri.toString(), cfg)

    private fun decode(open: () -> InputStream, name: String, cfg: VisionConfig): RgbImage {
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        open().use { BitmapFactory.decodeStream(it, null, bounds) }
        if (bounds.outWidth <= 0 || bounds.outHeight <= 0) throw ImageException("not a readable image file: $name")
        val pixels = bounds.outWidth.toLong() * bounds.outHeight
        if (pixels > cfg.maxPixels) {
            throw ImageException("image is too large: $name is ${bounds.outWidth}x${bounds.outHeight} = $pixels pixels, over vision.max_pixels=${cfg.maxPixels}")
        }
        val options = BitmapFactory.Options().apply { inPreferredConfig = Bitmap.Config.ARGB_8888 }
        val bitmap = open().use { BitmapFactory.decodeStream(it, null, options) }
            ?: throw ImageException("image file is truncated or corrupt: $name")
        val orientation = open().use { ExifInterface(it).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL) }
        val argb = IntArray(bitmap.width * bitmap.height)
        bitmap.getPixels(argb, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height) // non-premultiplied ARGB
        return Pixels.exifTranspose(RgbImage.fromArgb(bitmap.width, bitmap.height, argb, cfg.background), orientation)
    }

    /** An RgbImage as a Bitmap (for display and the grid overlay). */
    fun toBitmap(img: RgbImage): Bitmap {
        val argb = IntArray(img.width * img.height) {
            val r = img.rgb[3 * it].toInt() and 0xFF
            val g = img.rgb[3 * it + 1].toInt() and 0xFF
            val b = img.rgb[3 * it + 2].toInt() and 0xFF
            (0xFF shl 24) or (r shl 16) or (g shl 8) or b
        }
        return Bitmap.createBitmap(argb, img.width, img.height, Bitmap.Config.ARGB_8888)
    }
}
