"""End-to-end browser test: JupyterLab + Chromium run the quickstart and click Generate.

    make e2e                       # installs Debian's chromium if missing, then runs this
    .venv/bin/python e2e/run_e2e.py [--preset smoke|full] [--out build/e2e] [--chromium PATH]

What it does, step by step (each step bounded by a timeout, each timed):

1. copies ``notebooks/00_quickstart.ipynb`` into a temporary folder (the committed notebook stays
   stripped) and sets ``PRESET`` in its parameters cell (default ``smoke``: 17 frames, 6 steps,
   so the browser run checks the plumbing, not the model);
2. starts JupyterLab on 127.0.0.1 (random free port, random token, kernel ``framepack-lab``,
   ``HF_HUB_OFFLINE=1``, throw-away settings/workspace/runtime folders) and starts the notebook's
   kernel through the REST API, so the page attaches to it instead of showing a kernel picker;
3. drives Chromium with Playwright (the system executable; Playwright's own browser download is
   not needed): opens the notebook, waits for the kernel to be attached and idle (dismissing any
   dialog), runs *Run > Run All Cells*, waits until
   every code cell has an execution count and the kernel is idle;
4. in the GeneratePanel, sets the order dropdown to ``vanilla`` and the seed to 1, clicks
   **Generate**, and waits for a new ``<video>`` in the panel's output and a status line that
   says ``done: ... (vanilla, ...)`` (proof the widget changes reached the kernel), and checks the
   new video replaced the previous one rather than piling up below it;
5. asserts no cell shows an error output or a traceback, and that the browser can decode the
   video;
6. saves screenshots (``01_loaded.png``, ``02_run_all.png``, ``03_generated.png``,
   ``04_panel.png``; ``99_failure.png`` on failure), the server log and the browser console under
   ``--out``; always stops the server it started (and its kernel), even on failure or Ctrl-C.

Exit status 0 on success, 1 with a ``E2E FAILED: ...`` line otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "00_quickstart.ipynb"
KERNEL = "framepack-lab"
CHROMIUM_ARGS = [  # as root, in a closed network: no sandbox, no GPU, no background connections
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# JupyterLab settings for the throw-away settings folder: every cell in the DOM (no windowing),
# no news / update checks (the network is closed and their toasts cover the page).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}
# What counts as an error in a cell's output area: a rendered error (IPython exception), any
# output with a traceback in it (e.g. an exception on the panel's worker thread printed to
# stderr), a widget that failed to render. Warnings on stderr are fine.
FIND_ERRORS_JS = r"""
() => {
  const found = [];
  document.querySelectorAll('.jp-Notebook .jp-Cell').forEach((cell, i) => {
    cell.querySelectorAll('.jp-OutputArea-output').forEach(out => {
      const mime = out.getAttribute('data-mime-type') || '';
      const text = out.innerText || '';
      if (mime === 'application/vnd.jupyter.error' || /Traceback \(most recent call last\)/.test(text)
          || /Error displaying widget|Error rendering output/.test(text)) {
        found.push({cell: i, mime: mime, text: text.slice(0, 1500)});
      }
    });
  });
  return found;
}
"""
# The notebook is open and usable: cells rendered, our kernel attached (toolbar shows its display
# name) and idle. The execution indicator alone says "idle" before any kernel is attached.
NOTEBOOK_READY_JS = r"""
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return 'no notebook panel';
  if (!panel.querySelector('.jp-Notebook .jp-CodeCell .jp-InputArea')) return 'no cells rendered';
  const name = panel.querySelector('.jp-Toolbar-kernelName');
  const kname = name ? name.innerText.trim() : '';
  if (!/framepack-lab/.test(kname)) return 'kernel: ' + (kname || 'none');
  const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const status = ind ? ind.getAttribute('data-status') : null;
  return status === 'idle' ? 'ready' : 'kernel status: ' + status;
}
"""
CELL_STATE_JS = r"""
() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
    .map(p => p.innerText.trim());
  const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return {prompts: prompts, status: ind ? ind.getAttribute('data-status') : null};
}
"""


class E2EFailure(Exception):
    pass


def log(msg: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_notebook(workdir: Path, preset: str, break_it: bool) -> Path:
    """Copy the quickstart into ``workdir`` with ``PRESET = preset`` in its parameters cell."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(params) != 1:
        raise E2EFailure(f"{NOTEBOOK.name}: expected one cell tagged `parameters`, got {len(params)}")
    source, n = re.subn(r"(?m)^PRESET\s*=.*$", f"PRESET = {preset!r}", params[0].source)
    if n != 1:
        raise E2EFailure(f"{NOTEBOOK.name}: no `PRESET = ...` line in the parameters cell")
    params[0].source = source
    if break_it:  # self-check of the error detection: the run must then fail
        nb.cells.append(nbformat.v4.new_code_cell("1 / 0  # e2e --break"))
    path = workdir / "notebooks" / NOTEBOOK.name
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


class LabServer:
    """``jupyter lab`` on 127.0.0.1 in its own process group; :meth:`stop` always cleans up."""

    def __init__(self, workdir: Path, root_dir: Path, log_path: Path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        settings = workdir / "lab-settings"
        for rel, value in LAB_SETTINGS.items():
            (settings / rel).parent.mkdir(parents=True, exist_ok=True)
            (settings / rel).write_text(json.dumps(value))
        for d in ("lab-workspaces", "runtime", "config"):
            (workdir / d).mkdir()
        env = dict(os.environ, HF_HUB_OFFLINE="1", JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
                   JUPYTER_CONFIG_DIR=str(workdir / "config"))
        cmd = [str(Path(sys.executable).parent / "jupyter"), "lab",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", "--ServerApp.open_browser=False",
               f"--ServerApp.root_dir={root_dir}", f"--MultiKernelManager.default_kernel_name={KERNEL}",
               f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workdir / 'lab-workspaces'}"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log_file = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT, env=env,
                                     cwd=root_dir, start_new_session=True)
        log(f"jupyter lab pid {self.proc.pid} on {self.url} (log: {log_path})")

    def api(self, path: str, method: str = "GET", timeout: float = 5, data: dict | None = None):
        headers = {"Authorization": f"token {self.token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(f"{self.url}{path}", method=method, headers=headers,
                                     data=None if data is None else json.dumps(data).encode())
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            return json.loads(body) if body else None

    def start_session(self, nb_name: str, timeout: float = 120) -> str:
        """Start the notebook's kernel through the REST API before the page opens, so JupyterLab
        attaches to a running ``framepack-lab`` kernel instead of asking which one to start."""
        session = self.api("/api/sessions", method="POST", timeout=timeout,
                           data={"path": nb_name, "name": nb_name, "type": "notebook", "kernel": {"name": KERNEL}})
        log(f"kernel {session['kernel']['name']} started for {nb_name} ({session['kernel']['id'][:8]})")
        return session["kernel"]["id"]

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise E2EFailure(f"jupyter lab exited with status {self.proc.returncode} before it was "
                                 f"ready; see {self.log_file.name}")
            try:
                self.api("/api/status")
                return
            except OSError:
                time.sleep(0.5)
        raise E2EFailure(f"jupyter lab did not answer on {self.url} within {timeout:.0f} s; see {self.log_file.name}")

    def _descendants(self) -> list[int]:
        """Pids of every live process below the server (its kernels run in their own sessions)."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
            except (OSError, IndexError, ValueError):
                continue
        out, todo = [], [self.proc.pid]
        while todo:
            for c in children.get(todo.pop(), []):
                out.append(c)
                todo.append(c)
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            below = self._descendants()
            try:  # clean shutdown: the server shuts its kernels down
                self.api("/api/shutdown", method="POST")
            except OSError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                    try:
                        os.killpg(self.proc.pid, sig)
                        self.proc.wait(wait)
                        break
                    except (ProcessLookupError, subprocess.TimeoutExpired):
                        continue
            for pid in below:  # a kernel that outlived its server
                try:
                    os.kill(pid, signal.SIGKILL)
                    log(f"killed leftover process {pid}")
                except (ProcessLookupError, PermissionError):
                    pass
        self.log_file.close()
        log(f"jupyter lab stopped (exit status {self.proc.returncode})")


def dismiss_dialogs(page) -> None:
    for _ in range(5):
        dialog = page.locator(".jp-Dialog")
        if dialog.count() == 0 or not dialog.first.is_visible():
            return
        log(f"dismissing dialog: {dialog.first.inner_text()[:200]!r}")
        accept = dialog.first.locator(".jp-Dialog-button.jp-mod-accept")
        if accept.count():
            accept.first.click()
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(500)


def check_no_errors(page, where: str) -> None:
    errors = page.evaluate(FIND_ERRORS_JS)
    if errors:
        detail = "\n".join(f"--- cell {e['cell']} ({e['mime'] or 'no mime'}):\n{e['text']}" for e in errors)
        raise E2EFailure(f"{len(errors)} error output(s) {where}:\n{detail}")


def wait_run_all(page, n_code_cells: int, timeout: float) -> None:
    """Until every code cell shows ``[n]:`` and the kernel is idle; fails fast on an error."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        check_no_errors(page, "while running all cells")
        dismiss_dialogs(page)
        state = page.evaluate(CELL_STATE_JS)
        done = sum(bool(re.fullmatch(r"\[\d+\]:", p)) for p in state["prompts"])
        if (done, state["status"]) != last:
            log(f"  cells executed {done}/{n_code_cells}, kernel {state['status']}")
            last = (done, state["status"])
        if done == n_code_cells == len(state["prompts"]) and state["status"] == "idle":
            return
        page.wait_for_timeout(1000)
    raise E2EFailure(f"run-all did not finish within {timeout:.0f} s (last: {last}, prompts {state['prompts']})")


def drive(page, server: LabServer, nb_name: str, n_code_cells: int, out: Path, timeout: float,
          timings: dict[str, float]) -> None:
    t = time.monotonic()
    page.goto(f"{server.url}/lab/tree/{nb_name}?token={server.token}", timeout=120_000)
    deadline, state, last = time.monotonic() + 180, None, None
    while state != "ready":
        if time.monotonic() > deadline:
            raise E2EFailure(f"the notebook did not open with an idle framepack-lab kernel within 180 s "
                             f"(last: {state})")
        dismiss_dialogs(page)  # e.g. a kernel picker, should JupyterLab still show one
        state = page.evaluate(NOTEBOOK_READY_JS)
        if state != last:
            log(f"  opening: {state}")
            last = state
        if state != "ready":
            page.wait_for_timeout(500)
    timings["open notebook + kernel idle"] = time.monotonic() - t
    page.screenshot(path=str(out / "01_loaded.png"))

    t = time.monotonic()
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})  # focus the notebook
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    log("Run > Run All Cells")
    wait_run_all(page, n_code_cells, timeout)
    timings["run all cells"] = time.monotonic() - t
    check_no_errors(page, "after Run All Cells")
    page.screenshot(path=str(out / "02_run_all.png"))

    t = time.monotonic()
    generate = page.locator("button.widget-button", has_text=re.compile(r"^\s*Generate\s*$"))
    if generate.count() != 1:
        raise E2EFailure(f"expected one Generate button in the page, found {generate.count()}")
    panel = page.locator(".widget-vbox").filter(has=generate).last
    panel.scroll_into_view_if_needed()
    # mark the video the notebook's own panel.run() left, so only a video made by the click counts
    panel.evaluate("p => p.querySelectorAll('video').forEach(v => v.setAttribute('data-e2e-before', ''))")

    def labelled(kind: str, label: str):
        return panel.locator(f".{kind}").filter(
            has=page.locator("label.widget-label", has_text=re.compile(rf"^\s*{label}\s*$")))

    labelled("widget-dropdown", "order").locator("select").select_option("vanilla")
    seed = labelled("widget-text", "seed").locator("input")
    seed.fill("1")
    seed.press("Enter")
    log("set order=vanilla, seed=1; clicking Generate")
    page.wait_for_timeout(500)  # let the widget state reach the kernel before the click
    generate.click()
    status = panel.locator(".widget-html")
    try:
        panel.locator("video:not([data-e2e-before])").first.wait_for(state="attached", timeout=timeout * 1000)
        page.wait_for_function(
            "el => /done:/.test(el.innerText)", arg=status.element_handle(), timeout=30_000)
    except Exception as e:
        raise E2EFailure(f"no new <video> in the panel's output within {timeout:.0f} s of clicking Generate "
                         f"(panel status: {status.inner_text()!r}): {type(e).__name__}") from None
    timings["click Generate -> video"] = time.monotonic() - t
    text = status.inner_text()
    log(f"panel status: {text}")
    if "(vanilla," not in text:
        raise E2EFailure(f"the run did not use the order picked in the dropdown: status {text!r}")
    if "error" in text.lower():
        raise E2EFailure(f"the panel reports an error: {text!r}")
    n_videos = panel.locator("video").count()
    if n_videos != 1:  # the new run replaces the previous video; it does not pile up below it
        raise E2EFailure(f"expected the panel to show one video after Generate, it shows {n_videos}")
    video = panel.locator("video:not([data-e2e-before])").first
    video.scroll_into_view_if_needed()
    state = video.evaluate("""v => new Promise(resolve => {
        const t0 = Date.now();
        (function poll() {
          if (v.error || v.readyState >= 2 || Date.now() - t0 > 20000)
            resolve({ready: v.readyState, error: v.error ? v.error.code : null, w: v.videoWidth,
                     h: v.videoHeight, duration: v.duration});
          else setTimeout(poll, 200);
        })();
    })""")
    log(f"video element: {state}")
    if state["error"] is not None or state["ready"] < 1:
        raise E2EFailure(f"the browser could not load the generated video: {state}")
    page.wait_for_timeout(1000)  # a frame or two of playback for the screenshot
    check_no_errors(page, "after clicking Generate")
    page.screenshot(path=str(out / "03_generated.png"))
    panel.screenshot(path=str(out / "04_panel.png"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="smoke", choices=["smoke", "full"],
                   help="PRESET for the temporary copy of the notebook (default smoke: plumbing, not quality)")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "e2e", help="screenshots and logs")
    p.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    p.add_argument("--timeout", type=float, default=600, help="seconds for run-all, and again for Generate")
    p.add_argument("--headed", action="store_true", help="show the browser (needs a display)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--break", dest="break_it", action="store_true",
                   help="append a failing cell to the copy: checks that the error detection fails the run")
    a = p.parse_args()

    if not Path(a.chromium).exists():
        print(f"E2E FAILED: no Chromium at {a.chromium}; `make e2e` installs Debian's (apt-get install chromium)",
              file=sys.stderr)
        return 1
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("E2E FAILED: the `playwright` package is missing; `make e2e` installs it (the `e2e` extra)", file=sys.stderr)
        return 1

    # turn a SIGTERM (e.g. a CI timeout) into an exception, so the finally blocks stop the server
    def on_sigterm(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    out = a.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    workdir = Path(tempfile.mkdtemp(prefix="framepack-e2e-"))
    timings: dict[str, float] = {}
    t_all = time.monotonic()
    server = None
    try:
        nb_path = prepare_notebook(workdir, a.preset, a.break_it)
        import nbformat

        n_code = sum(c.cell_type == "code" for c in nbformat.read(nb_path, as_version=4).cells)
        log(f"notebook copy: {nb_path} (PRESET={a.preset!r}, {n_code} code cells)")
        t = time.monotonic()
        server = LabServer(workdir, nb_path.parent, out / "jupyter-server.log")
        server.wait_ready(timeout=120)
        server.start_session(nb_path.name)
        timings["start jupyter lab"] = time.monotonic() - t
        with sync_playwright() as pw:
            t = time.monotonic()
            browser = pw.chromium.launch(executable_path=a.chromium, headless=not a.headed,
                                         args=[x for x in CHROMIUM_ARGS if not (a.headed and x == "--headless")])
            timings["start chromium"] = time.monotonic() - t
            log(f"chromium {browser.version}")
            console = open(out / "browser-console.log", "w")
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("console", lambda m: console.write(f"[{m.type}] {m.text}\n"))
                page.on("pageerror", lambda e: console.write(f"[pageerror] {e}\n"))
                try:
                    drive(page, server, nb_path.name, n_code, out, a.timeout, timings)
                except Exception:
                    try:
                        page.screenshot(path=str(out / "99_failure.png"))
                    except Exception:
                        pass
                    raise
            finally:
                browser.close()
                console.close()
    except E2EFailure as e:
        print(f"E2E FAILED: {e}\n(screenshots and logs in {out})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("E2E FAILED: interrupted", file=sys.stderr)
        return 1
    except Exception as e:  # Playwright timeouts and the like: still a clear one-line verdict
        print(f"E2E FAILED: {type(e).__name__}: {e}\n(screenshots and logs in {out})", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
        if a.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    timings["total"] = time.monotonic() - t_all
    print("\ne2e timings (s):")
    for k, v in timings.items():
        print(f"  {k:<30s} {v:7.1f}")
    print(f"E2E PASSED: quickstart ran (PRESET={a.preset}), Generate made a video; screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
