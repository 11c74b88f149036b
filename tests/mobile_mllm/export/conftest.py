"""Fixtures of the export tests. The tiny model's programs (``exported``, ``export_sizes``) live in
tests/conftest.py, so the native-runner tests (tests/android_app) share the same exports.
"""
