"""The book end to end: every chapter executes (tiny profile, CPU), the findings are written from its
records, the site builds strictly, and a real headless Chromium with no network opens every page at
1280 px: nothing fails to load or render, no console error or warning (Vega's included), and no cell
output, table or chart is wider than the content column.

The site is built in a temporary copy (the stored runs in book/runs are not touched). The browser is
Debian's ``chromium`` (``make chromium``), driven over the DevTools protocol with tornado's websocket
client. Screenshots go to ``_build/screenshots/``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import html
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium")
# the flags that keep Chromium off the (closed) network: no background services, and every host but
# the loopback resolves to nothing
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
# pages whose screenshots are kept (page -> name): the landing page, a concept chapter, a task page, a
# task chapter's page and Results; a page with charts also gets <name>_chart.png (its first chart)
SHOTS = {"book/intro.html": "intro", "book/runs/rg_lru.html": "rg_lru", "book/tasks/mqar.html": "tasks_mqar",
         "book/runs/mqar/griffin.html": "mqar_griffin", "book/runs/results.html": "results"}

pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Execute every chapter of the grid with the tiny profile into a copy of the book, then build it."""
    root = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml", "references.bib"):  # the staging tree's files (seqlib.book.pages)
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("runs"))
    grid = subprocess.run(
        [sys.executable, "-m", "seqlib.book.grid", "--profile", "tiny", "--force", "--out", str(root / "book" / "runs"),
         "--failed", str(root / "failed")], capture_output=True, text=True, timeout=1200)
    assert grid.returncode == 0, f"a chapter failed under the tiny profile:\n{grid.stdout}\n{grid.stderr[-3000:]}"
    findings = subprocess.run([sys.executable, "-m", "seqlib.book.findings", "--profile", "tiny", "--pages",
                               str(root / "book" / "runs")], capture_output=True, text=True, timeout=600)
    assert findings.returncode == 0, findings.stderr[-3000:]
    # the table of contents of the tiny pages, as `BOOK_PROFILE=... make book` writes one for a staged site: a
    # chapter the committed profile has no page of yet (the text chapter) is in it
    toc = subprocess.run([sys.executable, "-m", "seqlib.book.toc", "--profile", "tiny", "--pages", str(root / "book" / "runs"),
                          "--out", str(root / "_toc.yml")], capture_output=True, text=True, timeout=600)
    assert toc.returncode == 0, toc.stderr[-3000:]
    build = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(root), "--all", "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, f"strict book build failed:\n{build.stdout[-5000:]}\n{build.stderr[-3000:]}"
    return root / "_build" / "html"


def test_every_chapter_is_in_the_grid():
    grid = yaml.safe_load((REPO / "params" / "grid.yaml").read_text())
    in_grid = {entry["chapter"] for entry in grid["runs"]}
    chapters = {p.stem for p in (REPO / "chapters").glob("*.py")}
    assert chapters <= in_grid, f"chapters missing from params/grid.yaml (never executed): {chapters - in_grid}"


def test_stored_runs_are_not_executed_by_the_build():
    """execute.exclude_patterns are matched right-anchored (myst-nb: PurePosixPath.match): every run must match."""
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    patterns = config["execute"]["exclude_patterns"]
    for run in ["book/runs/rg_lru.ipynb", "book/runs/mqar/hawk.ipynb", *map(str, (REPO / "book" / "runs").rglob("*.ipynb"))]:
        assert any(PurePosixPath(REPO / run).match(p) for p in patterns), f"{run} would be re-executed"


def test_site_has_no_external_scripts_or_stylesheets(site):
    """No page loads a script, stylesheet, font, image or frame from another host."""
    tag = re.compile(r"<(script|link|img|iframe|source|embed)\b[^>]*>", re.I)
    remote = re.compile(r"""\b(src|href)\s*=\s*["']?(https?:)?//""", re.I)
    offenders = []
    for page in site.rglob("*.html"):
        text = page.read_text(errors="replace")
        for m in tag.finditer(text):
            element = m.group(0)
            loads = not element.lower().startswith("<link") or re.search(r"rel=[\"']?(stylesheet|preload|modulepreload|icon)", element, re.I)
            if loads and remote.search(element):
                offenders.append(f"{page.relative_to(site)}: {element}")
        assert "THEBE_JS_URL" not in text and "unpkg.com" not in text, f"{page}: thebe/CDN script left in the page"
    assert not offenders, "pages load from the network:\n" + "\n".join(offenders)


def test_model_pages_are_titled_by_task_and_model(site):
    """Each model page of a task chapter is "<task page title> · <model title>" in its heading, its tab
    and its neighbours' previous/next links, not the chapter's title repeated on every copy."""
    from seqlib.book.toc import entry_models, model_title

    grid = yaml.safe_load((REPO / "params" / "grid.yaml").read_text())
    titles = {}
    for entry in (e for e in grid["runs"] if "task" in e):
        landing = (REPO / "book" / "tasks" / f"{entry['task']}.md").read_text()
        task = next(line[2:].strip() for line in landing.splitlines() if line.startswith("# "))
        for model in entry_models(grid, entry, "tiny")[0]:  # the models the site's profile runs
            titles[f"book/runs/{entry['task']}/{model}.html"] = f"{task} · {model_title(model)}"
    assert titles
    for page, title in titles.items():
        text = html.unescape((site / page).read_text())
        assert f"<title>{title} — " in text, (page, re.search(r"<title>[^<]*", text).group(0))
        assert re.search(rf"<h1>{re.escape(title)}(?=[<\s])", text), page
        links = re.findall(r'prev-next-title">([^<]*)<', text)
        assert title not in links and len(set(links)) == len(links), (page, links)


NOISE = re.compile(r"Warning\b|According to Bo|/tmp/|/var/folders/|pytest-of-")


def test_pages_show_no_warnings_or_machine_paths(site):
    """No executed page shows a Python warning, fla's RWKV notice or a path of the machine that ran it."""
    found = []
    for page in (site / "book" / "runs").rglob("*.html"):
        text = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(errors="replace")))
        found += [f"{page.relative_to(site)}: ...{text[max(m.start() - 60, 0):m.end() + 60]!r}..."
                  for m in NOISE.finditer(text)]
    assert not found, "\n".join(found[:20])


# what a page must not show: pandas' cut of a long table, a printed JSON dump, a missing value as NaN
TRUNCATED = re.compile(r"\d+ rows × \d+ columns|<t[dh][^>]*>\s*(\.\.\.|…)\s*</t[dh]>")
RAW_JSON = re.compile(r"goals[^:<\n]{0,40}:\s*\{|^\s*\"[\w .+-]+\": ", re.M)
STREAM = re.compile(r'<div class="output stream[^"]*">(.*?)</div>\s*</div>', re.S)
NAN_CELL = re.compile(r"<td>\s*(NaN|nan|None|&lt;NA&gt;)\s*</td>")


def test_pages_show_whole_tables_not_json_dumps_or_nan(site):
    """No page shows a table pandas cut ("132 rows × 3 columns" and a row of "..."), a JSON dump printed
    as text (Efficiency's ``goals: {...}``) or a table cell reading NaN."""
    found = []
    for page in sorted((site / "book").rglob("*.html")):
        text, name = page.read_text(errors="replace"), page.relative_to(site)
        found += [f"{name}: a cut table: {m.group(0)!r}" for m in TRUNCATED.finditer(text)]
        for stream in STREAM.findall(text):
            found += [f"{name}: raw JSON: {m.group(0)!r}" for m in RAW_JSON.finditer(html.unescape(re.sub(r"<[^>]+>", "", stream)))]
        found += [f"{name}: a NaN cell: {m.group(0)!r}" for m in NAN_CELL.finditer(text)]
    assert not found, "\n".join(found[:30])


def test_the_patterns_catch_cut_tables_json_dumps_and_nan():
    assert TRUNCATED.search("<p>132 rows × 3 columns</p>") and TRUNCATED.search("<tr><td>...</td></tr>")
    assert not TRUNCATED.search("<td>0.5</td>")
    assert RAW_JSON.search('goals: {\n "griffin_vs_transformer_4096": 1.05') and RAW_JSON.search('goals (wall clock): {')
    assert RAW_JSON.search(' "hawk": {') and not RAW_JSON.search("scan: fwd >= 60% of copy bandwidth (met)")
    assert NAN_CELL.search("<td>NaN</td>") and not NAN_CELL.search("<td>–</td>")


def test_the_landing_page_states_findings_with_their_evidence(site):
    """The landing page has a Findings section generated from the records, and every finding links to
    an executed page of the site."""
    page = (site / "book" / "intro.html").read_text()
    section = re.search(r'<section id="findings">(.*?)</section>', page, re.S)
    assert section, "book/intro.md has no Findings section"
    assert "runs of the <code class=\"docutils literal notranslate\"><span class=\"pre\">tiny</span></code> profile" in section.group(1)
    links = re.findall(r'href="(runs/[^"#]+\.html)', section.group(1))
    assert links, "no finding links to its evidence"
    assert all((site / "book" / link).exists() for link in links), links


def test_site_pages_in_a_real_browser(site):
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed: run `make chromium` (as root) first")
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                   if not p.relative_to(site).as_posix().startswith(("_static/", "_sources/")))
    with serve(site) as base:
        problems = asyncio.run(visit_all(base, pages))
    assert not problems, "\n".join(problems)
    for shot in SHOTS.values():
        assert (SCREENSHOTS / f"{shot}.png").stat().st_size > 10_000, f"screenshot {shot}.png is missing or blank"


WIDE_PAGE = """<!doctype html><html><body style="margin:0"><main><article class="bd-article" style="width:688px">
<div class="cell_output"><div id="wide" style="width:1400px">a chart 1400 px wide</div></div>
<div class="cell_output"><table><tr><td>a table that fits</td></tr></table></div>
<div class="cell tag_full-width" style="width:936px"><div class="cell_output"><div style="width:900px">full width</div></div></div>
</article></main><script>console.warn("WARN Infinite extent for field \\"lower_ci_low\\"")</script></body></html>"""


def test_the_browser_checks_catch_a_wide_output_and_a_vega_warning(tmp_path):
    """The layout check flags the output wider than the column (and only it: a full-width cell may use
    its own width), and a console warning such as Vega's is a problem."""
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed: run `make chromium` (as root) first")
    (tmp_path / "wide.html").write_text(WIDE_PAGE)
    with serve(tmp_path) as base:
        problems = asyncio.run(visit_all(base, ["wide.html"]))
    wide = [p for p in problems if "wider than" in p]
    assert len(wide) == 1 and "a chart 1400 px wide" in wide[0], problems
    assert any("console warning: WARN Infinite extent" in p for p in problems), problems


# ---- helpers ---------------------------------------------------------------------------------------


class serve:
    """Serve a folder over HTTP on 127.0.0.1 in a thread; the context value is the base URL."""

    def __init__(self, folder: Path):
        handler = functools.partial(QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Links(HTMLParser):
    """Collects a page's ``href``s and element ``id``s."""

    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def parse(html: str) -> Links:
    links = Links()
    links.feed(html)
    return links


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8", errors="replace")


class DevTools:
    """A minimal Chrome DevTools protocol client: commands with replies, events kept in a list."""

    def __init__(self, conn):
        self.conn, self.next_id, self.events = conn, 0, []

    async def send(self, method: str, **params) -> dict:
        self.next_id += 1
        await self.conn.write_message(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            raw = await asyncio.wait_for(self.conn.read_message(), timeout=60)
            assert raw is not None, "chromium closed the DevTools connection"
            message = json.loads(raw)
            if message.get("id") == self.next_id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message["result"]
            if "method" in message:
                self.events.append(message)

    async def evaluate(self, expression: str):
        result = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, f"{expression[:60]}...: {result['exceptionDetails']}"
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.evaluate(expression):
                return True
            await asyncio.sleep(0.1)
        return False


# true once MathJax has typeset (or when the page has no math), and every vega-embed chart has drawn
MATH_DONE = "!window.MathJax || !MathJax.startup || !MathJax.startup.promise ? true : MathJax.startup.promise.then(() => true)"
CHARTS_DONE = "[...document.querySelectorAll('.vega-chart')].every(d => d.querySelector('svg, canvas'))"
PAGE_STATE = """(() => ({
  math: document.querySelectorAll('div.math, span.math').length,
  typeset: document.querySelectorAll('mjx-container').length,
  mathErrors: document.querySelectorAll('mjx-merror').length,
  charts: document.querySelectorAll('.vega-chart').length,
  drawn: [...document.querySelectorAll('.vega-chart')].filter(d => d.querySelector('svg, canvas')).length,
  brokenImages: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
}))()"""


# every cell output, table and chart of the article fits the content column at 1280 px: nothing scrolls
# sideways inside it or reaches past its right edge (a cell tagged full-width may use that cell's width)
LAYOUT = """(() => {
  const article = document.querySelector('article.bd-article');
  if (!article) return {column: 0, wide: []};
  const style = getComputedStyle(article), box = article.getBoundingClientRect();
  const column = box.right - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth), wide = [];
  for (const el of article.querySelectorAll('.cell_output, .output, .vega-chart, table, .pst-scrollable-table-container')) {
    if (el.closest('pre')) continue;
    const full = el.closest('.tag_full-width');
    const limit = full ? full.getBoundingClientRect().right : column, rect = el.getBoundingClientRect();
    const over = Math.max(el.scrollWidth - el.clientWidth, rect.right - limit);
    if (over > 1) wide.push({what: el.tagName.toLowerCase() + '.' + [...el.classList].join('.'),
                             width: Math.round(el.scrollWidth), over: Math.round(over),
                             text: (el.innerText || '').trim().slice(0, 70)});
  }
  return {column: Math.round(column - box.left - parseFloat(style.paddingLeft) - parseFloat(style.borderLeftWidth)), wide};
})()"""


def layout_problems(layout: dict) -> list[str]:
    """One line per element of :data:`LAYOUT`'s result that is wider than the content column; an
    element inside a wider one is left out (its container is reported)."""
    shown, lines = [], []
    for item in layout["wide"]:
        if any(item["text"] and item["text"] in outer for outer in shown):
            continue
        shown.append(item["text"])
        lines.append(f"{item['what']} is {item['over']} px wider than the {layout['column']} px column "
                     f"(scrollWidth {item['width']}): {item['text']!r}")
    return lines


async def visit_all(base: str, pages: list[str], check=None) -> list[str]:
    """The problems ``check`` (default :func:`check_page`) finds on each page, in one headless Chromium."""
    from tornado.websocket import websocket_connect

    problems = []
    # chromium's helper processes may still write to the profile as it exits: stop the whole process
    # group, and let the temporary profile's clean-up tolerate a late file
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile_dir:
        browser = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--remote-debugging-port=0",
             "--window-size=1280,1000", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            port_file = Path(profile_dir) / "DevToolsActivePort"
            for _ in range(300):
                if port_file.exists() and port_file.read_text().strip():
                    break
                await asyncio.sleep(0.1)
            port = port_file.read_text().split()[0]
            targets = json.loads(fetch(f"http://127.0.0.1:{port}/json/list"))
            ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            conn = await websocket_connect(ws_url, max_message_size=256 * 1024 * 1024)
            tools = DevTools(conn)
            for domain in ("Page", "Runtime", "Log", "Network"):
                await tools.send(f"{domain}.enable")
            await tools.send("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1,
                             mobile=False)
            for page in pages:
                problems += await (check or check_page)(tools, base, page)
            conn.close()
        finally:
            os.killpg(browser.pid, signal.SIGTERM)
            browser.wait(timeout=10)
    return problems


async def check_page(tools: DevTools, base: str, page: str) -> list[str]:
    url = urljoin(base, page)
    tools.events.clear()
    await tools.send("Page.navigate", url=url)
    if not await tools.wait_for("document.readyState === 'complete'"):
        return [f"{page}: did not finish loading"]
    problems = []
    if not await tools.wait_for(MATH_DONE):
        problems.append(f"{page}: MathJax did not finish")
    if not await tools.wait_for(CHARTS_DONE):
        problems.append(f"{page}: a chart did not render")
    state = await tools.evaluate(PAGE_STATE)
    if state["math"] and not state["typeset"]:
        problems.append(f"{page}: {state['math']} equations but no mjx-container (MathJax did not typeset)")
    if state["mathErrors"]:
        problems.append(f"{page}: {state['mathErrors']} MathJax errors")
    if state["drawn"] != state["charts"]:
        problems.append(f"{page}: {state['charts'] - state['drawn']} of {state['charts']} charts not drawn")
    problems += [f"{page}: image did not load: {src}" for src in state["brokenImages"]]
    problems += [f"{page}: {problem}" for problem in layout_problems(await tools.evaluate(LAYOUT))]
    await asyncio.sleep(0.3)  # let late console messages arrive
    await tools.evaluate("1")
    problems += [f"{page}: {problem}" for problem in console_problems(tools.events, base)]
    problems += [f"{page}: {problem}" for problem in broken_links(base, page)]

    name = SHOTS.get(page)
    if name:
        await screenshot(tools, name)
        if state["charts"]:
            await tools.evaluate("document.querySelector('.vega-chart').scrollIntoView({block: 'center'})")
            await screenshot(tools, f"{name}_chart")
    return problems


def console_problems(events: list[dict], base: str) -> list[str]:
    problems = []
    for event in events:
        method, params = event["method"], event["params"]
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            problems.append(f"JS exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert", "warning"):
            kind = "warning" if params["type"] == "warning" else "error"  # Vega logs its warnings here
            problems.append(f"console {kind}: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif (method == "Log.entryAdded" and params["entry"]["level"] == "error"
              and not params["entry"].get("url", "").endswith("/favicon.ico")):
            problems.append(f"browser error: {params['entry']['text']} {params['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent":
            request_url = params["request"]["url"]
            if not request_url.startswith((base, "data:", "blob:", "about:", "chrome")):
                problems.append(f"request leaves the site: {request_url}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"a resource failed to load: {params.get('errorText')}")
        elif (method == "Network.responseReceived" and params["response"]["status"] >= 400
              and not params["response"]["url"].endswith("/favicon.ico")):  # the browser's own request
            problems.append(f"HTTP {params['response']['status']}: {params['response']['url']}")
    return problems


def broken_links(base: str, page: str) -> list[str]:
    """Every same-site link of the page points at a file that exists, and its #fragment at an id there."""
    problems = []
    url = urljoin(base, page)
    for href in parse(fetch(url)).hrefs:
        target = urljoin(url, href)
        if not target.startswith(base) or href.startswith(("mailto:", "javascript:")):
            continue
        parts = urlsplit(target)
        try:
            text = fetch(parts._replace(fragment="").geturl())
        except OSError as err:
            problems.append(f"broken link {href}: {err}")
            continue
        fragment = unquote(parts.fragment)
        if fragment and parts.path.endswith(".html") and fragment not in parse(text).ids:
            problems.append(f"broken anchor {href}")
    return problems


async def screenshot(tools: DevTools, name: str) -> None:
    await asyncio.sleep(0.3)
    shot = await tools.send("Page.captureScreenshot", format="png")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
