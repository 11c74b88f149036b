plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

val executorchVersion: String by project

android {
    namespace = "org.mobilemllm.app"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.mobilemllm.app"
        minSdk = 28
        targetSdk = 35
        versionCode = 1
        versionName = "0.1"
        ndk {
            abiFilters += listOf("arm64-v8a", "x86_64") // the ABIs of the executorch-android AAR
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
    sourceSets["main"].assets.srcDir(layout.buildDirectory.dir("generated/schemaAssets"))
}

// The manifest schema the toolkit validates with (mobile_mllm/manifest.schema.json) ships in the
// APK's assets unchanged: one file for exporter, host runtime and app.
val copySchema by tasks.registering(Copy::class) {
    from(rootDir.resolve("../../mobile_mllm/manifest.schema.json"))
    into(layout.buildDirectory.dir("generated/schemaAssets"))
}
tasks.named("preBuild") { dependsOn(copySchema) }

dependencies {
    implementation(project(":core"))
    implementation("org.pytorch:executorch-android:$executorchVersion")
    implementation("androidx.core:core-ktx:1.13.1") // FileProvider for the camera photo
}
