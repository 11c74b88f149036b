// Pure Kotlin, no Android: the same sources CI compiles with Debian's kotlinc
// (tests/android_app/test_kotlin_core.py). `./gradlew :core:test -Pvectors=DIR` runs the JUnit
// tests here too, DIR written by `python tests/android_app/kotlin_vectors.py DIR`.
plugins {
    id("org.jetbrains.kotlin.jvm")
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    val vectors = providers.gradleProperty("vectors")
    onlyIf { vectors.isPresent }
    systemProperty("mobile_mllm.vectors", vectors.getOrElse(""))
    systemProperty("mobile_mllm.grid_cases", rootDir.resolve("../../tests/assets/grid_cases.json").absolutePath)
}
