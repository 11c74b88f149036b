package org.mobilemllm.core

/**
 * A small JSON reader and writer (RFC 8259), so the pure-Kotlin core needs no library.
 *
 * Values map to Kotlin as: object -> LinkedHashMap<String, Any?> (key order kept), array ->
 * List<Any?>, string -> String, number -> Long when it has no fraction or exponent, else Double,
 * true/false -> Boolean, null -> null. The writer takes the same types (plus Int, Float, Short
 * and arrays of numbers) and writes one line, keys in map order, like Python's
 * json.dumps(separators=(",", ":")).
 */
object Json {
    /** Characters written as a backslash and a letter, and the letters read back (plus `\/`). */
    private val ESCAPES = linkedMapOf('"' to '"', '\\' to '\\', '\n' to 'n', '\r' to 'r', '\t' to 't', '\b' to 'b', '\u000C' to 'f')
    private val UNESCAPES = ESCAPES.entries.associate { (k, v) -> v to k } + ('/' to '/')

    /** Parses [text]; throws [ContractException] naming the offset of the first error. */
    fun parse(text: String): Any? {
        val p = Parser(text)
        p.skipWs()
        val v = p.value()
        p.skipWs()
        if (p.pos != text.length) p.fail("trailing characters")
        return v
    }

    /** One-line JSON of [value]. */
    fun write(value: Any?): String {
        val sb = StringBuilder()
        writeTo(sb, value)
        return sb.toString()
    }

    private fun writeTo(sb: StringBuilder, v: Any?) {
        when (v) {
            null -> sb.append("null")
            is String -> quote(sb, v)
            is Boolean -> sb.append(if (v) "true" else "false")
            is Long, is Int, is Short, is Byte -> sb.append(v.toString())
            is Double -> number(sb, v)
            is Float -> number(sb, v.toDouble())
            is Map<*, *> -> {
                sb.append('{')
                var first = true
                for ((k, item) in v) {
                    if (!first) sb.append(',')
                    first = false
                    quote(sb, k.toString())
                    sb.append(':')
                    writeTo(sb, item)
                }
                sb.append('}')
            }
            is Iterable<*> -> {
                sb.append('[')
                var first = true
                for (item in v) {
                    if (!first) sb.append(',')
                    first = false
                    writeTo(sb, item)
                }
                sb.append(']')
            }
            is IntArray -> writeTo(sb, v.toList())
            is LongArray -> writeTo(sb, v.toList())
            is DoubleArray -> writeTo(sb, v.toList())
            is FloatArray -> writeTo(sb, v.toList())
            is Array<*> -> writeTo(sb, v.toList())
            else -> throw IllegalArgumentException("cannot write ${v.javaClass.name} as JSON")
        }
    }

    private fun number(sb: StringBuilder, d: Double) {
        if (d.isNaN() || d.isInfinite()) {
            sb.append("null") // JSON has no NaN or infinity
        } else {
            sb.append(d.toString()) // shortest repr that round-trips, like Python's float repr
        }
    }

    private fun quote(sb: StringBuilder, s: String) {
        sb.append('"')
        for (c in s) {
            val e = ESCAPES[c]
            when {
                e != null -> sb.append('\\').append(e)
                c < ' ' -> sb.append(String.format(java.util.Locale.ROOT, "\\u%04x", c - '\u0000'))
                else -> sb.append(c)
            }
        }
        sb.append('"')
    }

    private class Parser(val s: String) {
        var pos = 0

        fun fail(what: String): Nothing = throw ContractException("invalid JSON at offset $pos: $what")

        fun skipWs() {
            while (pos < s.length && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\t')) pos++
        }

        fun value(): Any? {
            if (pos >= s.length) fail("unexpected end")
            return when (s[pos]) {
                '{' -> obj()
                '[' -> arr()
                '"' -> str()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> num()
            }
        }

        fun literal(word: String, v: Any?): Any? {
            if (!s.startsWith(word, pos)) fail("expected $word")
            pos += word.length
            return v
        }

        /** The items of an object or array (after its opening bracket) up to [close]. */
        private inline fun items(close: Char, what: String, item: () -> Unit) {
            pos++
            skipWs()
            if (pos < s.length && s[pos] == close) {
                pos++
                return
            }
            while (true) {
                skipWs()
                item()
                skipWs()
                if (pos >= s.length) fail("unexpected end in $what")
                if (s[pos] == close) {
                    pos++
                    return
                }
                if (s[pos] != ',') fail("expected ',' or '$close'")
                pos++
            }
        }

        fun obj(): Map<String, Any?> {
            val out = LinkedHashMap<String, Any?>()
            items('}', "object") {
                if (pos >= s.length || s[pos] != '"') fail("expected a key")
                val k = str()
                skipWs()
                if (pos >= s.length || s[pos] != ':') fail("expected ':'")
                pos++
                skipWs()
                out[k] = value()
            }
            return out
        }

        fun arr(): List<Any?> {
            val out = ArrayList<Any?>()
            items(']', "array") { out.add(value()) }
            return out
        }

        fun str(): String {
            pos++ // opening quote
            val sb = StringBuilder()
            while (true) {
                if (pos >= s.length) fail("unterminated string")
                val c = s[pos++]
                when {
                    c == '"' -> return sb.toString()
                    c == '\\' -> {
                        if (pos >= s.length) fail("unterminated escape")
                        val e = s[pos++]
                        if (e == 'u') {
                            if (pos + 4 > s.length) fail("short \\u escape")
                            val code = s.substring(pos, pos + 4).toIntOrNull(16) ?: fail("bad \\u escape")
                            sb.append(Character.toChars(code))
                            pos += 4
                        } else {
                            sb.append(UNESCAPES[e] ?: fail("bad escape \\$e"))
                        }
                    }
                    c < ' ' -> fail("control character in string")
                    else -> sb.append(c)
                }
            }
        }

        fun num(): Any {
            val start = pos
            if (pos < s.length && s[pos] == '-') pos++
            var fraction = false
            while (pos < s.length) {
                val c = s[pos]
                if (c in '0'..'9') {
                    pos++
                } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
                    fraction = true
                    pos++
                } else {
                    break
                }
            }
            val t = s.substring(start, pos)
            if (t.isEmpty() || t == "-") fail("unexpected character '${if (pos < s.length) s[pos] else ' '}'")
            return if (fraction) {
                t.toDoubleOrNull() ?: fail("bad number $t")
            } else {
                t.toLongOrNull() ?: (t.toDoubleOrNull() ?: fail("bad number $t"))
            }
        }
    }
}

/** Typed access to parsed JSON objects, each failure a [ContractException] naming the key. */
internal fun Map<String, Any?>.obj(key: String, where: String): Map<String, Any?> {
    @Suppress("UNCHECKED_CAST")
    return this[key] as? Map<String, Any?> ?: throw ContractException("$where.$key: expected an object, got ${this[key]}")
}

internal fun Map<String, Any?>.str(key: String, where: String): String =
    this[key] as? String ?: throw ContractException("$where.$key: expected a string, got ${this[key]}")

internal fun Map<String, Any?>.long(key: String, where: String): Long =
    this[key] as? Long ?: throw ContractException("$where.$key: expected an integer, got ${this[key]}")

internal fun Map<String, Any?>.longOrNull(key: String, where: String): Long? {
    val v = this[key] ?: return null
    return v as? Long ?: throw ContractException("$where.$key: expected an integer or null, got $v")
}

internal fun Map<String, Any?>.double(key: String, where: String): Double {
    val v = this[key]
    return when (v) {
        is Long -> v.toDouble()
        is Double -> v
        else -> throw ContractException("$where.$key: expected a number, got $v")
    }
}

internal fun Map<String, Any?>.list(key: String, where: String): List<Any?> {
    @Suppress("UNCHECKED_CAST")
    return this[key] as? List<Any?> ?: throw ContractException("$where.$key: expected an array, got ${this[key]}")
}
