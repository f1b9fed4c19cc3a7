"""Screenshots of TensorBoard's Scalars and HParams dashboards for the README.

Needs Debian's chromium (`apt-get install chromium`) and `pip install websocket-client`
(only for this script). Start TensorBoard on a sweep first, e.g.

    tensorboard --logdir outputs --port 6006 --host 127.0.0.1
    python docs/tools/tensorboard_screenshots.py --url http://127.0.0.1:6006 --out docs/img

Headless chromium is driven over the DevTools protocol so that the pages can be set up the way a
user would (smoothing off, outliers kept, only the options that differ shown) before the shot.
"""
from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket  # websocket-client

# Every element under `root`, through shadow roots (TensorBoard's dashboards are Polymer).
DEEP = """
function deepAll(root, sel, out) {
  out = out || [];
  root.querySelectorAll(sel).forEach(e => out.push(e));
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) deepAll(e.shadowRoot, sel, out); });
  return out;
}
function setCheckbox(label, wanted) {
  const boxes = deepAll(document, 'paper-checkbox')
      .filter(b => b.textContent.trim() === label);
  boxes.forEach(b => { if (!!b.checked !== wanted) b.click(); });
  return boxes.length;
}
"""


class Page:
    def __init__(self, port: int) -> None:
        for _ in range(100):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                page = next(t for t in targets if t["type"] == "page")
                break
            except (OSError, StopIteration):
                time.sleep(0.2)
        else:
            raise RuntimeError("chromium did not open its DevTools port")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=DEEP + expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def goto(self, url: str, settle: float) -> None:
        self.call("Page.navigate", url=url)
        time.sleep(settle)

    def shot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:6006")
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--hide", nargs="*", default=["batch_size", "dataset", "epochs"],
                        help="HParams options to untick (those the sweep does not vary)")
    parser.add_argument("--port", type=int, default=9333)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp()
    browser = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--window-size=1400,900",
         f"--remote-debugging-port={args.port}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = Page(args.port)
        page.call("Emulation.setDeviceMetricsOverride", width=1400, height=900,
                  deviceScaleFactor=1, mobile=False)
        page.goto(f"{args.url}/#scalars&tagFilter=val%2F&_smoothingWeight=0", 6)
        page.js("setCheckbox('Ignore outliers in chart scaling', false)")
        time.sleep(2)
        page.shot(args.out / "tensorboard_scalars.png")

        page.call("Emulation.setDeviceMetricsOverride", width=1800, height=520,
                  deviceScaleFactor=1, mobile=False)
        page.goto(f"{args.url}/#hparams", 6)
        for name in args.hide:
            page.js(f"setCheckbox({json.dumps(name)}, false)")
        time.sleep(2)
        page.shot(args.out / "tensorboard_hparams.png")
    finally:
        browser.terminate()
        browser.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
