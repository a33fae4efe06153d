"""Drive Debian's headless Chromium from tests: dump a page's DOM, take and measure screenshots."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageChops

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium); .ci/run installs it",
)

# --no-sandbox because tests may run as root, where Chromium refuses its sandbox; the rest
# keep a headless run quiet and offline: no first-run work, no component or field-trial
# downloads, no /dev/shm (tiny in containers), and CSS pixels equal to screenshot pixels.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--mute-audio",
    "--force-device-scale-factor=1",
)


class ChromiumError(RuntimeError):
    pass


def _run(args: list[str], timeout: float) -> str:
    if CHROMIUM is None:
        raise ChromiumError("chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
        # Debian's chromium is a shell script that starts the browser, which starts its own
        # helpers: a session of their own lets a timeout kill all of them, not just the script.
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            out, err = process.communicate()
            raise ChromiumError(f"chromium took longer than {timeout}s: {_tail(err)}") from None
        finally:
            # A helper that outlives the browser would keep the profile busy.
            _kill_group(process)
    if process.returncode != 0:
        raise ChromiumError(f"chromium exited with {process.returncode}: {_tail(err)}")
    return out.decode("utf-8", "replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _tail(err: bytes, lines: int = 15) -> str:
    return "\n".join(err.decode("utf-8", "replace").splitlines()[-lines:])


def dump_dom(url: str, timeout: float = 60) -> str:
    """The page's DOM after loading, serialized as HTML."""
    return _run(["--dump-dom", url], timeout)


def screenshot(
    url: str,
    path: Path,
    size: tuple[int, int] = (1000, 1400),
    timeout: float = 60,
    language: str = "en",
) -> Path:
    """A PNG of the page's viewport at `size` CSS pixels, as a browser set to `language`
    (its Accept-Language) sees it."""
    path = Path(path).resolve()
    path.unlink(missing_ok=True)
    width, height = size
    _run(
        [
            f"--lang={language}",
            f"--accept-lang={language}",
            f"--screenshot={path}",
            f"--window-size={width},{height}",
            "--hide-scrollbars",
            "--run-all-compositor-stages-before-draw",
            url,
        ],
        timeout,
    )
    if not path.exists():
        raise ChromiumError(f"chromium did not write {path}")
    return path


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    if len(value) != 6:
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def colour_mask(path: Path, rgb: tuple[int, int, int], tolerance: int = 12) -> Image.Image:
    """A black-and-white image: white where every channel is within `tolerance` of `rgb`."""
    with Image.open(path) as image:
        bands = image.convert("RGB").split()
    masks = [
        band.point(lambda v, c=c: 255 if abs(v - c) <= tolerance else 0)
        for band, c in zip(bands, rgb, strict=True)
    ]
    return ImageChops.logical_and(
        ImageChops.logical_and(masks[0].convert("1"), masks[1].convert("1")), masks[2].convert("1")
    )


def pixels_of(path: Path, rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    """How many pixels of the image are `rgb`, give or take `tolerance` per channel."""
    return colour_mask(path, rgb, tolerance).convert("L").histogram()[255]


def bounding_box(
    path: Path, rgb: tuple[int, int, int], tolerance: int = 12
) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the pixels matching `rgb`, right and bottom exclusive."""
    return colour_mask(path, rgb, tolerance).getbbox()
