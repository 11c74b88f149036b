"""Which devices are there, and what they are: serial, state, model, SoC, ABI, Android version, RAM, free space.

Candidates are the ``host:port`` serials in ``$MOBILE_MLLM_ADB_DEVICES`` (comma-separated)
when it is set (and only those), else the local ports adb itself scans for emulators
(127.0.0.1:5555 to 5585, odd ports), the devices a running adb server holds, and USB devices
where ``libusb1`` is installed. Each candidate is connected to
once; one command reads every fact, so listing a device costs one round trip.
Deliberately not here: choosing what to do with a device (cli.py), pushing (push.py).
"""

from __future__ import annotations

import logging
import os
import shlex
import socket
from dataclasses import asdict, dataclass
from typing import Any

from mobile_mllm.errors import DeviceError, DeviceNotFoundError, DeviceUnauthorizedError

logger = logging.getLogger(__name__)

__all__ = ["WORK_DIR", "DeviceInfo", "candidate_serials", "describe", "list_devices", "open_device", "parse_df_available", "resolve_serial"]

WORK_DIR = "/data/local/tmp/mobile_mllm"
"""Where programs go on the device (writable by the shell user on every Android phone)."""
ENV_DEVICES = "MOBILE_MLLM_ADB_DEVICES"
_SEP = "--mobile-mllm--"
_PROPS = ("ro.product.model", "ro.soc.model", "ro.board.platform", "ro.product.cpu.abi", "ro.build.version.release")


@dataclass(frozen=True)
class DeviceInfo:
    """One device as ``mobile-mllm devices`` lists it; facts are empty unless ``state == "device"``."""

    serial: str
    state: str
    """"device" (ready), "unauthorized" (accept the prompt on the phone) or "offline"."""
    model: str = ""
    soc: str = ""
    abi: str = ""
    android_version: str = ""
    cpu_cores: int = 0
    ram_bytes: int = 0
    free_bytes: int = 0
    """Free space in the work folder's file system (/data/local/tmp)."""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _usb_serials() -> list[str]:
    try:
        import usb1  # noqa: F401  (adb-shell[usb]); absent: no USB
    except ImportError:
        return []
    try:
        from adb_shell.transport.usb_transport import UsbTransport

        return [t.serial_number for t in UsbTransport.find_all_adb_devices()]
    except Exception as e:  # libusb errors vary by platform; USB is optional here
        logger.debug("USB scan failed: %s", e)
        return []


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def candidate_serials() -> list[str]:
    """Serials worth trying: ``$MOBILE_MLLM_ADB_DEVICES``, else listening local ports, adb server devices, USB."""
    env = os.environ.get(ENV_DEVICES)
    if env is not None:
        return [s.strip() for s in env.split(",") if s.strip()]
    tcp = [f"127.0.0.1:{p}" for p in range(5555, 5586, 2) if _listening(p)]
    from mobile_mllm.device.adb_server import server_devices

    held = [serial for serial, _state in server_devices() or []]
    return tcp + [s for s in held if s not in tcp] + [s for s in _usb_serials() if s not in held]


def parse_df_available(text: str) -> int:
    """Available bytes from ``df -k DIR`` output (toybox and GNU: the KiB column before ``Use%``).

    The column is found from the ``NN%`` field, because GNU df wraps a long device name onto its own line.

    Example:
        >>> parse_df_available("Filesystem 1K-blocks Used Available Use% Mounted on\\n/dev/sda 100 40 60 40% /data\\n")
        61440
    """
    fields = text.strip().splitlines()[-1].split()
    try:
        at = next(i for i, f in enumerate(fields) if f.endswith("%") and f[:-1].isdigit())
        return int(fields[at - 1]) * 1024
    except (StopIteration, IndexError, ValueError) as e:
        raise DeviceError(f"cannot read free space from df's output {text.strip()[-120:]!r}") from e


def facts_command(work_dir: str = WORK_DIR) -> str:
    """One shell command printing every fact, separated by marker lines (nothing user-typed in it)."""
    parts = [f"getprop {p}" for p in _PROPS]
    parts += ["grep MemTotal /proc/meminfo", "grep -c ^processor /proc/cpuinfo",
              f"mkdir -p {shlex.quote(work_dir)} && df -k {shlex.quote(work_dir)}"]
    return f"; echo {_SEP}; ".join(parts)


def describe(device: Any, serial: str) -> DeviceInfo:
    """The facts of a connected :class:`~mobile_mllm.device.adb.AdbDevice`."""
    out = device.run(facts_command()).stdout.split(_SEP)
    out = [o.strip() for o in out] + [""] * (10 - len(out))
    model, soc_model, platform, abi, release, mem, cores, df = out[:8]
    return DeviceInfo(
        serial=serial, state="device", model=model, soc=soc_model or platform, abi=abi, android_version=release,
        cpu_cores=int(cores) if cores.isdigit() else 0,
        ram_bytes=int(mem.split()[1]) * 1024 if len(mem.split()) > 1 and mem.split()[1].isdigit() else 0,
        free_bytes=parse_df_available(df) if df else 0,
    )


def list_devices(serials: list[str] | None = None) -> list[DeviceInfo]:
    """Every candidate device with its state and facts (a device that fails is listed with its state and error)."""
    from mobile_mllm.device.adb import AdbDevice

    infos = []
    for serial in serials if serials is not None else candidate_serials():
        try:
            with AdbDevice(serial, timeout_s=10, auth_timeout_s=2) as dev:  # listing does not wait for the prompt
                infos.append(describe(dev, serial))
        except DeviceUnauthorizedError as e:
            infos.append(DeviceInfo(serial, "unauthorized", error=str(e)))
        except DeviceError as e:
            infos.append(DeviceInfo(serial, "offline", error=str(e)))
    return infos


def resolve_serial(serial: str | None) -> str:
    """``serial`` if given, else the one connected device.

    Raises:
        DeviceNotFoundError: no device, or several and no ``serial``.
    """
    if serial:
        return serial
    ready = [d.serial for d in list_devices() if d.state == "device"]
    if not ready:
        raise DeviceNotFoundError(
            f"no device found; connect a phone (USB debugging on), pass --serial HOST:PORT, or set ${ENV_DEVICES}"
        )
    if len(ready) > 1:
        raise DeviceNotFoundError(f"several devices ({', '.join(ready)}); choose one with --serial")
    return ready[0]


def open_device(serial: str | None, *, timeout_s: float = 30.0) -> Any:
    """An :class:`~mobile_mllm.device.adb.AdbDevice` for ``serial`` (or the one connected device)."""
    from mobile_mllm.device.adb import AdbDevice

    return AdbDevice(resolve_serial(serial), timeout_s=timeout_s)
