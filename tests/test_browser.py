"""The rendered book in a real browser: build the HTML, serve it on localhost and open every page
in headless Chromium (Debian's `chromium`, driven by Playwright). Per page: the math is typeset,
every image loads and has alt text, the saved widgets are drawn, the Colab button opens this
page's notebook, and the page's scripts log no error.

The pages load MathJax, require.js and the ipywidgets embed manager from CDNs. This machine (and
CI) has no internet beyond package registries, so the test answers those exact CDN URLs with the
same files fetched once from the npm registry (`npm pack`, cached); every other outside request is
refused and fails the test. One difference from a reader's browser: the npm package of require.js
ships the unminified file, not cdnjs's byte-identical minified one, so the pages are served with
that one script tag's `integrity` hash removed. Missing Chromium is installed with apt-get when running as root;
where that is impossible the test skips and says why.
"""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [
    chapter["file"] for part in TOC["parts"] for chapter in part["chapters"]
]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# CDN prefix the built pages ask for -> (npm package to `npm pack`, folder inside the package).
CDN_PACKAGES = {
    "https://cdn.jsdelivr.net/npm/mathjax@3/": ("mathjax@3.2.2", ""),
    "https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1.0.6/": (
        "@jupyter-widgets/html-manager@1.0.6",
        "",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.4/require.min.js": (
        "requirejs@2.3.4",
        "require.js",
    ),
}
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "fasttd3-book"
    / "cdn"
)


def find_chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    # Root on Debian/Ubuntu (CI): install the distribution's browser once.
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "install", "-y", "-q", "chromium"],
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "chromium"],
    ):
        subprocess.run(command, env=env, capture_output=True, timeout=900)
        if shutil.which("chromium"):
            break
    return shutil.which("chromium")


def cdn_files():
    """{CDN prefix: local folder or file} with the packages unpacked from the npm registry."""
    local = {}
    for prefix, (package, inner) in CDN_PACKAGES.items():
        folder = CACHE / package.replace("/", "_")
        if not (folder / "package").exists():
            if not shutil.which("npm"):
                pytest.skip(
                    "npm not found: it fetches MathJax and the widget manager that the pages load from CDNs"
                )
            folder.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                ["npm", "pack", package, "--silent"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=300,
            )
            tarballs = list(folder.glob("*.tgz"))
            if done.returncode or not tarballs:
                pytest.skip(f"npm pack {package} failed: {done.stderr.strip()[-200:]}")
            with tarfile.open(tarballs[0]) as tar:
                tar.extractall(folder, filter="data")
        local[prefix] = folder / "package" / inner
    return local


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    chromium = find_chromium()
    if not chromium:
        pytest.skip(
            "Chromium not found and not installable here (Debian: apt-get install chromium)"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is in requirements.txt"
    )
    local = cdn_files()
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    build = subprocess.run(
        [
            str(jupyter_book),
            "build",
            str(ROOT),
            "--path-output",
            str(out),
            "-W",
            "-n",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    html = out / "_build" / "html"
    handler = functools.partial(QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_FLAGS
        )
        yield {
            "browser": browser,
            "base": f"http://127.0.0.1:{server.server_address[1]}",
            "cdn": local,
        }
        browser.close()
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


WIDGET_FONT = re.compile(
    r"/@jupyter-widgets/html-manager/dist/[0-9a-f]+\.(woff2?|ttf|eot|svg)$"
)
REQUIRE_INTEGRITY = re.compile(
    r'(<script[^>]*?) integrity="[^"]*"(?=[^>]*require\.min\.js)'
)


def route_requests(site, refused):
    """Serve localhost as is, the CDN files from the npm copies, and refuse everything else."""

    def handle(route):
        url = route.request.url
        if url.startswith(site["base"]) and url.split("?")[0].endswith(".html"):
            response = route.fetch()
            body = REQUIRE_INTEGRITY.sub(r"\1", response.text())
            return route.fulfill(response=response, body=body)
        if url.startswith(site["base"]):
            return route.continue_()
        for prefix, path in site["cdn"].items():
            if url.startswith(prefix):
                target = (
                    path / url[len(prefix) :].split("?")[0] if path.is_dir() else path
                )
                if target.is_file():
                    return route.fulfill(path=str(target))
        refused.append(url)
        return route.abort()

    return handle


def widget_views(page_file):
    notebook = ROOT / f"{page_file}.ipynb"
    if not notebook.exists():
        return 0
    cells = json.loads(notebook.read_text())["cells"]
    return sum(
        "application/vnd.jupyter.widget-view+json" in output.get("data", {})
        for cell in cells
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
    )


# Text outside code blocks and rendered math that still holds TeX delimiters was not typeset.
RAW_MATH = """() => {
  const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest('pre, code, script, style, mjx-container, .highlight')) continue;
    if (/\\$\\$|\\\\\\(|\\\\\\[|\\\\begin\\{/.test(node.textContent)) raw.push(node.textContent.trim().slice(0, 80));
  }
  return raw;
}"""


@pytest.mark.parametrize("page_file", PAGES)
def test_page_renders_in_chromium(site, page_file):
    errors, refused, missing = [], [], []
    page = site["browser"].new_page()
    page.on(
        "console",
        lambda message: message.type == "error" and errors.append(message.text),
    )
    page.on(
        "response",
        lambda response: response.status >= 400 and missing.append(response.url),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route("**/*", route_requests(site, refused))
    page.goto(f"{site['base']}/{page_file}.html", wait_until="load")

    math = page.locator(".math").count()
    if math:
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
        )
        page.evaluate("() => MathJax.startup.promise")
        assert page.locator(".math mjx-container").count() == math, (
            "some math was not typeset"
        )
    assert page.evaluate(RAW_MATH) == [], "TeX left untypeset in the text"

    views = widget_views(page_file)
    if views:
        page.wait_for_selector(".jupyter-widgets", timeout=20_000)
        drawn = page.locator(
            ".cell_output .widget-interact, .cell_output .jupyter-widgets.widget-container"
        ).count()
        assert drawn >= views, f"{views} widget views saved, {drawn} drawn"

    page.wait_for_function("() => [...document.images].every(img => img.complete)")
    # Images inside a widget view are the live output of its callback: the static figure beside
    # each widget carries the alt text.
    images = page.evaluate("""() => [...document.querySelectorAll('main img, article img')].map(
        img => ({src: img.getAttribute('src').slice(0, 80), loaded: img.complete && img.naturalWidth > 0,
                 alt: img.alt, inWidget: !!img.closest('.jupyter-widgets')}))""")
    assert all(image["loaded"] for image in images), [
        i["src"] for i in images if not i["loaded"]
    ]
    unlabelled = [
        i["src"]
        for i in images
        if not i["inWidget"]
        and (not i["alt"] or re.search(r"\.(png|svg|jpe?g)$", i["alt"]))
    ]
    assert not unlabelled, f"images without alt text: {unlabelled}"

    if (ROOT / f"{page_file}.ipynb").exists():
        repository = CONFIG["repository"]["url"].removeprefix("https://github.com/")
        colab = f"https://colab.research.google.com/github/{repository}/blob/main/{page_file}.ipynb"
        assert page.locator(f'a[href="{colab}"]').count() >= 1, (
            f"no Colab link to {colab}"
        )

    assert not refused, f"requests outside localhost and the known CDN files: {refused}"
    # Known upstream bug, not ours: the widget manager's CSS asks for its Font Awesome files at a
    # path relative to the page (book/@jupyter-widgets/html-manager/dist/...), which 404s on every
    # host; the widgets here use no icons. Any other failed request or error fails the test.
    fonts = [url for url in missing if WIDGET_FONT.search(url)]
    assert sorted(missing) == sorted(fonts), (
        f"failed requests: {sorted(set(missing) - set(fonts))}"
    )
    errors = [e for e in errors if not e.startswith("Failed to load resource")] + [
        e for e in errors if e.startswith("Failed to load resource")
    ][len(fonts) :]
    assert not errors, f"console errors: {errors}"
    page.close()


def open_page(site, page_file, width=1280, height=900):
    """A page loaded at a given window size, math typeset and images loaded."""
    page = site["browser"].new_page(viewport={"width": width, "height": height})
    page.route("**/*", route_requests(site, []))
    page.goto(f"{site['base']}/{page_file}.html", wait_until="load")
    if page.locator(".math").count():
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
        )
        page.evaluate("() => MathJax.startup.promise")
    page.wait_for_function("() => [...document.images].every(img => img.complete)")
    return page


# Code blocks (code cells, printed output, markdown code) and cell outputs whose content is wider
# than their box: on the page they scroll sideways or spill over the margin.
TOO_WIDE = """() => {
  const root = document.querySelector('main') || document.body;
  const boxes = root.querySelectorAll('pre, div.highlight, div.cell_output > *');
  return [...boxes].filter(el => el.scrollWidth > el.clientWidth + 1).map(el => {
    const line = (el.innerText || '').split('\\n').reduce((a, b) => (b.length > a.length ? b : a), '');
    return `${el.tagName.toLowerCase()}.${el.className.split(' ')[0] || ''} ` +
           `(${el.scrollWidth} > ${el.clientWidth} px): ${line.trim().slice(0, 70)}`;
  });
}"""


@pytest.mark.parametrize("page_file", PAGES)
def test_code_fits_the_page(site, page_file):
    page = open_page(site, page_file, width=1280)
    too_wide = page.evaluate(TOO_WIDE)
    page.close()
    assert not too_wide, (
        f"{len(too_wide)} code blocks or outputs wider than the page at 1280 px: {too_wide}"
    )


# Text outside code that still holds MyST role syntax ({cite}, {numref}, ...), Sphinx's "??" for
# a reference it could not number, or a docutils error, and the elements Sphinx marks as problems.
UNRESOLVED = """() => {
  const root = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const found = [];
  const pattern = /\\{[a-z][a-z:-]*\\}|\\?\\?|Unknown interpreted text role|unknown (role|directive)/i;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest('pre, code, script, style, mjx-container, .highlight')) continue;
    if (pattern.test(node.textContent)) found.push(node.textContent.trim().slice(0, 80));
  }
  for (const el of root.querySelectorAll('.problematic, .system-message, .xref.missing')) {
    found.push(`<${el.className}> ${el.textContent.trim().slice(0, 60)}`);
  }
  return found;
}"""


@pytest.mark.parametrize("page_file", PAGES)
def test_references_resolved(site, page_file):
    page = open_page(site, page_file)
    unresolved = page.evaluate(UNRESOLVED)
    page.close()
    assert not unresolved, f"unresolved citations, references or roles: {unresolved}"
