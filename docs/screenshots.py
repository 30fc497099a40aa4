"""Screenshots of the built site as a person sees it: headless Chromium (Debian's ``chromium``) at desktop
and phone widths, of the home page, a tutorial and the API reference, into ``docs/screenshots/``.

    mkdocs build --strict && python docs/screenshots.py        # then look at docs/screenshots/*.png
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
OUT = ROOT / "docs" / "screenshots"
PAGES = {"home": "", "tutorial-imputation": "tutorials/imputation/", "api": "reference/api/"}
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per screenshot is enough
        pass


def main() -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("error: no Chromium found: apt-get install chromium")
    if not (SITE / "index.html").exists():
        raise SystemExit("error: no built site: run mkdocs build --strict first")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # directory URLs need a server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    OUT.mkdir(exist_ok=True)
    try:
        for name, path in PAGES.items():
            for size, (width, height) in SIZES.items():
                target = OUT / f"{name}-{size}.png"
                url = f"http://127.0.0.1:{server.server_port}/{path}"
                subprocess.run(
                    [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                     f"--window-size={width},{height}", f"--screenshot={target}", url],
                    check=True, capture_output=True, timeout=120,
                )  # fmt: skip
                print(f"{target.relative_to(ROOT)}  <- {path or '/'} at {width}x{height}")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
