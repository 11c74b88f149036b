// The Android app of mobile-mllm (issue 17): `core` is pure Kotlin (grid policies, tiling,
// Pillow-exact resize, manifest, tokenizer, prompt layout, stats, the inference loop) and builds
// on any JVM; `chat` is the Android application (chat screen + BenchmarkActivity) over
// org.pytorch:executorch-android. See ../README.md for the exact build steps.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "mobile-mllm-app"
include(":core", ":chat")
