"""The phone path over ADB: devices, push, on-device run and profile (runner or app), the host runner and a loopback device.

Modules are imported by name (``mobile_mllm.device.push`` ...): importing this package loads
neither adb_shell nor executorch.
"""

__all__ = ["adb", "adb_server", "app", "discover", "loopback", "profile", "push", "run", "runner"]
