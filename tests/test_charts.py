"""The report's SVG charts: well-formed, escaped, accessible, proportional, and so in Chromium."""

from __future__ import annotations

import threading
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from service.evaluation.charts import BAR_FILL, SECOND_FILL, funnel_svg, share_bars_svg
from tests.browser import (
    bounding_box,
    colour_mask,
    dump_dom,
    hex_to_rgb,
    needs_chromium,
    pixels_of,
    screenshot,
)

SVG = "{http://www.w3.org/2000/svg}"
CSP = "default-src 'none'; style-src 'unsafe-inline'"
FUNNEL = [
    ("requested", 40),
    ("asked", 40),
    ("both said yes", 22),
    ("introduced", 22),
    ("evaluated", 15),
    ("led to business", 6),
]
RADAR = [("2026-07", 0.4, 0.1), ("2026-08", None, 0.25), ("2026-09", 0.15, None)]
RADAR_LABELS = ("led to business", "declined as not relevant")


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def of_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if cls in e.get("class", "").split()]


def texts(root: ET.Element, cls: str) -> list[str]:
    return [e.text or "" for e in of_class(root, "text", cls)]


def desc(root: ET.Element) -> str:
    return root.find(f"{SVG}desc").text


def widths(root: ET.Element, cls: str = "bar") -> list[float]:
    return [float(e.get("width")) for e in of_class(root, "rect", cls)]


# Pure: the markup itself.


def test_every_step_is_labelled_and_counted_in_text_and_desc() -> None:
    root = parse(funnel_svg(FUNNEL, "Referral funnel"))
    assert texts(root, "label") == [label for label, _ in FUNNEL]
    values = texts(root, "value")
    assert values[0] == "40 (100%)"
    assert values[-1] == "6 (15%)"
    for (label, count), value in zip(FUNNEL, values, strict=True):
        assert value.split()[0] == str(count)
        assert f"{label}: {value}" in desc(root)


def test_it_is_an_image_named_by_its_title_and_described_by_its_desc() -> None:
    root = parse(funnel_svg(FUNNEL, "Referral funnel"))
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(f"{SVG}title").get("id") == title_id
    assert root.find(f"{SVG}title").text == "Referral funnel"
    assert root.find(f"{SVG}desc").get("id") == desc_id
    assert root.get("width") == "100%"
    assert root.get("viewBox").startswith("0 0 640 ")


def test_two_different_charts_on_one_page_do_not_share_ids() -> None:
    one = parse(funnel_svg(FUNNEL, "Referral funnel")).get("aria-labelledby")
    two = parse(funnel_svg(FUNNEL[:3], "Referral funnel")).get("aria-labelledby")
    assert one != two
    assert funnel_svg(FUNNEL, "Referral funnel") == funnel_svg(FUNNEL, "Referral funnel")


def test_markup_in_labels_and_title_is_text_not_markup() -> None:
    label = "<script>alert(1)</script> & co"
    svg = funnel_svg([(label, 3), ('Tom & Jerry\'s "pick"', 1)], "<b>A & B</b>")
    root = parse(svg)
    assert "<script>" not in svg
    assert not list(root.iter(f"{SVG}script"))
    assert texts(root, "label") == [label, 'Tom & Jerry\'s "pick"']
    assert root.find(f"{SVG}title").text == "<b>A & B</b>"
    assert label in desc(root)


def test_arabic_labels_and_stray_control_characters_stay_well_formed() -> None:
    root = parse(funnel_svg([("طُلب", 5), ("bell\x07", 2)], "قمع الإحالات", rtl=True))
    assert texts(root, "label") == ["طُلب", "bell"]


def test_bar_widths_are_proportional_to_the_counts() -> None:
    bars = widths(parse(funnel_svg(FUNNEL, "Referral funnel")))
    assert len(bars) == len(FUNNEL)
    for (_, count), width in zip(FUNNEL, bars, strict=True):
        assert width / bars[0] == pytest.approx(count / FUNNEL[0][1], abs=0.001)


def test_the_longest_bar_fits_the_view_box_with_its_figure() -> None:
    root = parse(funnel_svg(FUNNEL, "Referral funnel", width=480))
    bar = of_class(root, "rect", "bar")[0]
    assert float(bar.get("x")) + float(bar.get("width")) < 480 - 9 * 7


def test_a_zero_step_keeps_its_label_and_figure_but_has_no_bar() -> None:
    root = parse(funnel_svg([("requested", 4), ("introduced", 0)], "Funnel"))
    assert texts(root, "label") == ["requested", "introduced"]
    assert texts(root, "value") == ["4 (100%)", "0 (0%)"]
    assert len(widths(root)) == 1
    assert "introduced: 0 (0%)" in desc(root)


def test_all_zero_draws_no_bars_but_every_label_and_zero() -> None:
    root = parse(funnel_svg([(label, 0) for label, _ in FUNNEL], "Funnel"))
    assert widths(root) == []
    assert texts(root, "label") == [label for label, _ in FUNNEL]
    assert texts(root, "value") == ["0"] * len(FUNNEL)


def test_no_steps_is_still_an_svg() -> None:
    root = parse(funnel_svg([], "Funnel"))
    assert widths(root) == []


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        funnel_svg([("requested", -1)], "Funnel")


def test_rtl_mirrors_every_x_position() -> None:
    ltr = parse(funnel_svg(FUNNEL, "Funnel", width=600))
    rtl = parse(funnel_svg(FUNNEL, "Funnel", width=600, rtl=True))
    assert rtl.get("direction") == "rtl"
    assert ltr.get("direction") is None
    for a, b in zip(of_class(ltr, "rect", "bar"), of_class(rtl, "rect", "bar"), strict=True):
        assert float(b.get("x")) + float(b.get("width")) == pytest.approx(600 - float(a.get("x")))
        assert b.get("width") == a.get("width")
    for a, b in zip(ltr.iter(f"{SVG}text"), rtl.iter(f"{SVG}text"), strict=True):
        assert float(b.get("x")) == pytest.approx(600 - float(a.get("x")))
        assert b.get("text-anchor") == a.get("text-anchor")
        assert b.text == a.text


def test_share_bars_show_both_shares_and_a_dash_for_none() -> None:
    root = parse(share_bars_svg(RADAR, "Referral radar", RADAR_LABELS))
    assert root.get("role") == "img"
    assert texts(root, "label") == ["2026-07", "2026-08", "2026-09"]
    assert texts(root, "value") == ["40%", "10%", "–", "25%", "15%", "–"]
    assert texts(root, "legend") == list(RADAR_LABELS)
    assert widths(root, "bar-1")[0] / widths(root, "bar-1")[1] == pytest.approx(0.4 / 0.15)
    assert widths(root, "bar-2")[0] / widths(root, "bar-2")[1] == pytest.approx(0.1 / 0.25)
    assert desc(root) == (
        "2026-07: led to business 40%, declined as not relevant 10%; "
        "2026-08: led to business –, declined as not relevant 25%; "
        "2026-09: led to business 15%, declined as not relevant –."
    )


def test_share_bars_are_on_a_fixed_scale_and_clamped() -> None:
    full = parse(share_bars_svg([("a", 1.0, 0.0)], "R", RADAR_LABELS))
    over = parse(share_bars_svg([("a", 1.7, -0.2)], "R", RADAR_LABELS))
    assert widths(over, "bar-1") == widths(full, "bar-1")
    assert widths(over, "bar-2") == widths(full, "bar-2") == []


def test_share_bars_escape_and_mirror() -> None:
    labels = ("<i>yes</i> & more", "نعم")
    ltr = parse(share_bars_svg([("<b>", 0.5, 0.5)], "R", labels))
    rtl = parse(share_bars_svg([("<b>", 0.5, 0.5)], "R", labels, rtl=True))
    assert texts(ltr, "legend") == list(labels)
    assert texts(ltr, "label") == ["<b>"]
    for a, b in zip(of_class(ltr, "rect", "bar"), of_class(rtl, "rect", "bar"), strict=True):
        assert float(b.get("x")) + float(b.get("width")) == pytest.approx(640 - float(a.get("x")))


# In a browser: the same page the report serves, under the same CSP.


def page(*charts: str, lang: str = "en", direction: str = "ltr") -> bytes:
    body = "".join(f"<figure>{chart}</figure>" for chart in charts)
    return (
        f'<!doctype html><html lang="{lang}" dir="{direction}"><head><meta charset="utf-8">'
        "<title>Report</title>"
        # The <script> checks the CSP really is in force: it must not run.
        "<script>document.title = 'scripts ran'</script></head>"
        '<body style="margin:24px;background:#fff;font-family:sans-serif">'
        f"<h1>Your referrals</h1>{body}</body></html>"
    ).encode()


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server on 127.0.0.1 serving `pages` with the report's CSP."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def serve(site: tuple[str, dict[str, bytes]], path: str, body: bytes) -> str:
    base, pages = site
    pages[path] = body
    return base + path


def bars(png: Path, colour: str) -> list[tuple[int, int, int]]:
    """(top, left, length) of each horizontal bar of `colour`, measured on its middle row."""
    mask = colour_mask(png, hex_to_rgb(colour))
    width, height = mask.size
    rows = [mask.crop((0, y, width, y + 1)).getbbox() is not None for y in range(height)]
    bands, start = [], None
    for y, filled in enumerate([*rows, False]):
        if filled and start is None:
            start = y
        elif not filled and start is not None:
            bands.append((start, y))
            start = None
    found = []
    pixels = mask.load()
    for top, bottom in bands:
        middle = (top + bottom) // 2
        run, best = None, (0, 0)
        for x in range(width + 1):
            if x < width and pixels[x, middle]:
                run = x if run is None else run
            elif run is not None:
                best = max(best, (x - run, run))
                run = None
        found.append((top, best[1], best[0]))
    return found


@needs_chromium
def test_chromium_shows_the_inline_svg_under_the_csp(site) -> None:
    chart = funnel_svg([*FUNNEL[:2], ("<script>document.title='x'</script> & co", 5)], "Funnel")
    url = serve(site, "/dom", page(chart))
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Security-Policy"] == CSP
    dom = dump_dom(url)
    assert "<svg" in dom
    assert dom.count('class="bar"') == 3
    assert dom.count('class="track"') == 3
    assert "&lt;script&gt;document.title='x'&lt;/script&gt; &amp; co" in dom
    assert "<title>Report</title>" in dom, "the page's own <script> ran despite the CSP"


@needs_chromium
def test_screenshot_bars_are_proportional_to_the_counts(site, tmp_path) -> None:
    url = serve(site, "/funnel", page(funnel_svg(FUNNEL, "Referral funnel")))
    png = screenshot(url, tmp_path / "funnel.png")
    rgb = hex_to_rgb(BAR_FILL)
    assert pixels_of(png, rgb) > 1000
    found = bars(png, BAR_FILL)
    assert len(found) == len(FUNNEL)
    assert len({left for _, left, _ in found}) == 1, "LTR bars start at one edge"
    longest = found[0][2]
    # Drawn at its natural width: the 640-unit view box is 640 CSS pixels.
    assert 380 < longest < 460
    for (_, count), (_, _, length) in zip(FUNNEL, found, strict=True):
        assert length / longest == pytest.approx(count / FUNNEL[0][1], abs=0.03)
    # The body and figure margins plus the chart: its max-width held in a wider window.
    right = bounding_box(png, rgb)[2]
    assert right <= 24 + 40 + 640


@needs_chromium
def test_screenshot_rtl_bars_grow_from_the_right(site, tmp_path) -> None:
    steps = [("طُلب", 40), ("سُئل", 30), ("قال الطرفان نعم", 10), ("تم التعارف", 0)]
    chart = funnel_svg(steps, "قمع الإحالات", rtl=True)
    url = serve(site, "/rtl", page(chart, lang="ar", direction="rtl"))
    png = screenshot(url, tmp_path / "rtl.png", size=(800, 600))
    found = bars(png, BAR_FILL)
    assert len(found) == 3
    rights = {left + length for _, left, length in found}
    assert max(rights) - min(rights) <= 1, "RTL bars end at one edge"
    assert len({left for _, left, _ in found}) == 3
    for (_, count), (_, _, length) in zip(steps, found, strict=False):
        assert length / found[0][2] == pytest.approx(count / 40, abs=0.03)


@needs_chromium
def test_screenshot_share_bars(site, tmp_path) -> None:
    url = serve(site, "/radar", page(share_bars_svg(RADAR, "Referral radar", RADAR_LABELS)))
    png = screenshot(url, tmp_path / "radar.png")
    blue, red = bars(png, BAR_FILL), bars(png, SECOND_FILL)
    # The legend's swatches come first, then one bar per known share.
    assert len(blue) == 1 + 2
    assert len(red) == 1 + 2
    assert blue[1][2] / blue[2][2] == pytest.approx(0.4 / 0.15, rel=0.03)
    assert red[1][2] / red[2][2] == pytest.approx(0.1 / 0.25, rel=0.03)
