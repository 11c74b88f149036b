package org.mobilemllm.app

import android.app.Activity
import android.content.Intent
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.net.Uri
import android.os.Bundle
import android.provider.MediaStore
import android.text.InputType
import android.view.ViewGroup.LayoutParams.MATCH_PARENT
import android.view.ViewGroup.LayoutParams.WRAP_CONTENT
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.EditText
import android.widget.ImageView
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.Spinner
import android.widget.TextView
import androidx.core.content.FileProvider
import java.io.File
import java.util.concurrent.Executors
import org.mobilemllm.core.GenerationConfig
import org.mobilemllm.core.RgbImage
import org.mobilemllm.core.Session
import org.mobilemllm.core.Stats
import org.mobilemllm.core.TilePlan
import org.mobilemllm.core.Tiling

/**
 * The chat screen: choose a program folder (pushed to /data/local/tmp/mobile_mllm/... or in the
 * app's storage), pick or take a photo (shown with its tile grid), ask, read the answer as it
 * streams, and the stats of every answer (tiles, image tokens, encode ms, time to first token,
 * prefill and decode tok/s, peak memory). A new photo starts a new conversation; questions
 * without one continue it. Views are built in code to keep the app free of support libraries.
 */
class ChatActivity : Activity() {
    private val worker = Executors.newSingleThreadExecutor()
    private var model: LoadedModel? = null
    private var session: Session? = null
    @Volatile private var photo: RgbImage? = null
    @Volatile private var photoIsNew = false
    private var cameraFile: File? = null

    private lateinit var folders: Spinner
    private lateinit var status: TextView
    private lateinit var preview: ImageView
    private lateinit var messages: LinearLayout
    private lateinit var scroll: ScrollView
    private lateinit var question: EditText
    private lateinit var ask: Button

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val root = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; setPadding(16, 16, 16, 16) }
        val top = LinearLayout(this).apply { orientation = LinearLayout.HORIZONTAL }
        folders = Spinner(this)
        val load = Button(this).apply { text = "Load"; setOnClickListener { loadSelected() } }
        top.addView(folders, LinearLayout.LayoutParams(0, WRAP_CONTENT, 1f))
        top.addView(load)
        status = TextView(this).apply { text = "Choose a program folder (mobile-mllm push puts them in ${ModelFolders.PUSHED_ROOT})" }
        val photoRow = LinearLayout(this).apply { orientation = LinearLayout.HORIZONTAL }
        photoRow.addView(Button(this).apply { text = "Pick photo"; setOnClickListener { pickPhoto() } })
        photoRow.addView(Button(this).apply { text = "Take photo"; setOnClickListener { takePhoto() } })
        preview = ImageView(this).apply { adjustViewBounds = true; maxHeight = 600 }
        messages = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        scroll = ScrollView(this).apply { addView(messages) }
        val askRow = LinearLayout(this).apply { orientation = LinearLayout.HORIZONTAL }
        question = EditText(this).apply { hint = "Ask about the photo"; inputType = InputType.TYPE_CLASS_TEXT }
        ask = Button(this).apply { text = "Ask"; isEnabled = false; setOnClickListener { askQuestion() } }
        askRow.addView(question, LinearLayout.LayoutParams(0, WRAP_CONTENT, 1f))
        askRow.addView(ask)
        for (v in listOf(top, status, photoRow, preview)) root.addView(v, LinearLayout.LayoutParams(MATCH_PARENT, WRAP_CONTENT))
        root.addView(scroll, LinearLayout.LayoutParams(MATCH_PARENT, 0, 1f))
        root.addView(askRow, LinearLayout.LayoutParams(MATCH_PARENT, WRAP_CONTENT))
        setContentView(root)
        refreshFolders()
    }

    private fun refreshFolders() {
        val dirs = ModelFolders.list(this)
        folders.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, dirs.map { it.path })
        if (dirs.isEmpty()) status.text = "No program folder found in ${ModelFolders.PUSHED_ROOT} or app storage; run mobile-mllm push"
    }

    private fun loadSelected() {
        val path = folders.selectedItem as String? ?: return
        status.text = "Loading $path ..."
        ask.isEnabled = false
        worker.execute {
            try {
                model?.close()
                val loaded = LoadedModel.open(this, File(path), 0)
                model = loaded
                session = loaded.newSession(GenerationConfig(maxNewTokens = 256))
                photoIsNew = photo != null // a new model starts a new conversation over the current photo
                val ms = loaded.loadMs.second - loaded.loadMs.first
                runOnUiThread {
                    status.text = "${File(path).name}: loaded in ${ms.toLong()} ms, ${loaded.manifest.vision.policy.value} grid, " +
                        "${loaded.manifest.maxContextLen} positions"
                    ask.isEnabled = true
                    photo?.let { showPhoto(it) }
                }
            } catch (e: Exception) {
                runOnUiThread { status.text = "Cannot load $path: ${e.message}" }
            }
        }
    }

    private fun pickPhoto() {
        startActivityForResult(Intent(Intent.ACTION_GET_CONTENT).setType("image/*"), PICK)
    }

    private fun takePhoto() {
        val dir = File(cacheDir, "photos").apply { mkdirs() }
        val file = File(dir, "camera.jpg")
        cameraFile = file
        val uri = FileProvider.getUriForFile(this, "org.mobilemllm.app.photos", file)
        val intent = Intent(MediaStore.ACTION_IMAGE_CAPTURE).putExtra(MediaStore.EXTRA_OUTPUT, uri)
            .addFlags(Intent.FLAG_GRANT_WRITE_URI_PERMISSION)
        startActivityForResult(intent, CAMERA)
    }

    @Deprecated("the platform Activity API; no support library here")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        super.onActivityResult(requestCode, resultCode, data)
        if (resultCode != RESULT_OK) return
        val vision = model?.manifest?.vision ?: org.mobilemllm.core.VisionConfig()
        worker.execute {
            try {
                val img = when (requestCode) {
                    PICK -> Images.load(contentResolver, data?.data ?: return@execute, vision)
                    CAMERA -> Images.load(cameraFile?.path ?: return@execute, vision)
                    else -> return@execute
                }
                photo = img
                photoIsNew = true
                runOnUiThread { showPhoto(img) }
            } catch (e: Exception) {
                runOnUiThread { status.text = "Cannot read the photo: ${e.message}" }
            }
        }
    }

    /** The photo with its local tiles' rectangles (the plan's boxes, in photo pixels) drawn on it. */
    private fun showPhoto(img: RgbImage) {
        val bitmap = Images.toBitmap(img).copy(Bitmap.Config.ARGB_8888, true)
        val manifest = model?.manifest
        if (manifest != null) {
            val plan: TilePlan = Tiling.planTiles(img.size, manifest.vision)
            val paint = Paint().apply {
                style = Paint.Style.STROKE
                color = Color.YELLOW
                strokeWidth = Math.max(2f, img.width / 300f)
            }
            val canvas = Canvas(bitmap)
            for ((i, b) in plan.boxes.withIndex()) {
                if (i == plan.thumbnailIndex || b.isEmpty) continue
                canvas.drawRect(b.left.toFloat(), b.top.toFloat(), b.right.toFloat(), b.bottom.toFloat(), paint)
            }
            status.text = "grid ${plan.grid.cols}x${plan.grid.rows}: ${plan.numTiles} tiles, ${plan.imageTokens} image tokens"
        }
        preview.setImageBitmap(bitmap)
    }

    private fun askQuestion() {
        val text = question.text.toString()
        val current = session ?: return
        val image = if (photoIsNew) photo else null
        question.setText("")
        addMessage("You: $text", Color.DKGRAY)
        val answerView = addMessage("", Color.BLACK)
        val statsView = addMessage("", Color.GRAY)
        ask.isEnabled = false
        worker.execute {
            try {
                val answer = current.ask(text, image, { piece -> runOnUiThread { answerView.append(piece); scrollDown() } })
                photoIsNew = false
                val rows = Stats.rows(answer.stats.toMap()).joinToString("\n") { "${it.first}: ${it.second}" }
                runOnUiThread { statsView.text = rows }
            } catch (e: Exception) {
                runOnUiThread { answerView.text = "Error: ${e.message}" }
            } finally {
                runOnUiThread { ask.isEnabled = true; scrollDown() }
            }
        }
    }

    private fun addMessage(text: String, color: Int): TextView {
        val view = TextView(this).apply { this.text = text; setTextColor(color); setPadding(0, 8, 0, 8) }
        messages.addView(view)
        scrollDown()
        return view
    }

    private fun scrollDown() {
        scroll.post { scroll.fullScroll(ScrollView.FOCUS_DOWN) }
    }

    override fun onDestroy() {
        worker.shutdown()
        model?.close()
        super.onDestroy()
    }

    companion object {
        private const val PICK = 1
        private const val CAMERA = 2
    }
}
