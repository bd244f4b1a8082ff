"""report.html: written by a real search as it goes, self-contained, rewritten by nas-report; checked in a real
browser (headless Chromium) when one is installed."""
import shutil
import subprocess
from html.parser import HTMLParser

import pandas as pd
import pytest

from nas.cli.report import main as report_main
from tests.test_search import _search


class PageParts(HTMLParser):
    """Counts what a test checks in a page: candidate rows, block boxes per drawing, external references."""

    def __init__(self):
        super().__init__()
        self.table_rows, self.blocks, self.networks, self.external = 0, [], 0, []
        self._in_candidates = self._in_body = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "candidates":
            self._in_candidates = True
        if self._in_candidates and tag == "tbody":
            self._in_body = True
        if self._in_body and tag == "tr":
            self.table_rows += 1
        if tag == "svg" and "network" in attrs.get("class", ""):
            self.networks += 1
            self.blocks.append(0)
        if tag == "g" and attrs.get("class") == "block":
            self.blocks[-1] += 1
        for name in ("src", "href"):
            if attrs.get(name):
                self.external.append(attrs[name])
        if tag in ("link", "iframe", "object", "embed", "img"):
            self.external.append(tag)

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        if tag == "table":
            self._in_candidates = False


def _parts(html: str) -> PageParts:
    parts = PageParts()
    parts.feed(html)
    return parts


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    """One tiny real search (5 candidates at concurrency 1)."""
    root = tmp_path_factory.mktemp("report")
    code, out = _search(root, "run", "--trials", "5", "--controller", "random")
    assert code == 0
    return out


def test_a_search_writes_a_self_contained_page_of_its_run(search_run):
    html = (search_run / "report.html").read_text()
    parts = _parts(html)
    trials = pd.read_csv(search_run / "trials.csv")
    assert parts.table_rows == len(trials) == 5  # every candidate a row
    assert parts.networks == 2 and parts.blocks == [7, 7]  # the best and EfficientNet-B0, one box per block
    assert parts.external == []  # nothing to fetch: no src, href, link or img
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "(finished)" in html and "5 of 5 candidates evaluated" in html
    best = trials.sort_values("reward", ascending=False).iloc[0]
    assert f"best found (trial {best['trial']})" in html
    assert html.count("<circle class=\"point") >= 5  # the candidates drawn (reward chart and accuracy chart)
    assert "What the controller learned" in html and "b0.op" in html


def test_nas_report_rewrites_a_page_and_says_where(search_run, capsys, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(search_run, copy)
    (copy / "report.html").unlink()
    (copy / "trials.csv").write_text("\n".join((copy / "trials.csv").read_text().splitlines()[:3]) + "\n")
    assert report_main([str(copy)]) == 0
    assert capsys.readouterr().out.strip() == str(copy / "report.html")
    html = (copy / "report.html").read_text()
    assert _parts(html).table_rows == 2
    assert "interrupted: continue with nas-search --resume --out" in html  # 2 of 5 done, nothing running


def test_a_live_page_reloads_itself_and_a_finished_or_rewritten_one_does_not(search_run, tmp_path):
    from nas.report import write_report
    from nas.report.page import REFRESH_SECONDS

    reload = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
    assert reload not in (search_run / "report.html").read_text()  # as the finished search left it
    copy = tmp_path / "copy"
    shutil.copytree(search_run, copy)
    html = write_report(copy, "running").read_text()  # as the search writes it while it runs
    assert html.count(reload) == 1 and "(running)" in html
    assert reload not in write_report(copy, "interrupted").read_text()
    assert reload not in write_report(copy).read_text()  # nas-report, after the fact


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_nas_report_of_something_that_is_not_a_run_is_one_line(make, tmp_path, capsys):
    target = tmp_path / "nothing"
    if make == "empty":
        target.mkdir()
    assert report_main([str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(target) in err and "Traceback" not in err


def test_a_page_that_cannot_be_drawn_warns_and_the_run_goes_on(tmp_path):
    from nas.report import refresh_report

    (tmp_path / "search.json").write_text("{not json")
    problem = refresh_report(tmp_path)
    assert problem and "nas-report" in problem and not (tmp_path / "report.html").exists()


def _browser() -> str | None:
    return next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


@pytest.mark.skipif(_browser() is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_the_page_renders_in_a_real_browser(search_run, tmp_path):
    browser = _browser()
    page = (search_run / "report.html").resolve()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    parts = _parts(dom)  # the document after the browser parsed it and ran its script
    assert parts.table_rows == len(pd.read_csv(search_run / "trials.csv"))
    assert parts.blocks == [7, 7]
    shot = tmp_path / "page.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1400,2400", page.as_uri()],
                   capture_output=True, timeout=120)
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1400, 2400)
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 50  # drawn: not a blank page
