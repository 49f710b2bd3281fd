"""The HTML report in a real browser: headless Chromium decodes every plot, and the page
it draws is not blank.

Uses Debian's `chromium` and `chromium-driver` (`.ci/run` installs them) through Selenium,
with the driver's path given so that Selenium Manager never downloads anything. Without
a browser the test fails when BEMCTL_REQUIRE_BROWSER=1 (CI) and is skipped otherwise (a
developer machine without Chromium). BEMCTL_SCREENSHOT_DIR keeps the screenshot.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlmodel import col, delete, select

from store import queries
from store.db import Store
from store.models import Experiment, StepMetric
from tests.bemctl.tui.helpers import add_comparison

# Read at import: the `project` fixture clears every BEMCTL_* variable (they are settings
# overrides) before the test body runs.
REQUIRE_BROWSER = os.environ.get("BEMCTL_REQUIRE_BROWSER") == "1"
SCREENSHOT_DIR = os.environ.get("BEMCTL_SCREENSHOT_DIR")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-device-scale-factor=1",
    "--window-size=1280,1000",
)


def _browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths, or fail/skip saying what is missing."""
    binary = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = shutil.which("chromedriver")
    if not (binary and driver):
        missing = "Chromium and its driver (apt-get install chromium chromium-driver)"
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            missing = "the selenium package (pip install -e '.[dev]')"
        else:
            return binary, driver
    if REQUIRE_BROWSER:
        pytest.fail(f"BEMCTL_REQUIRE_BROWSER=1 but {missing} is not installed")
    pytest.skip(f"no headless browser: {missing} is not installed")


def _results_store(db: Path) -> None:
    """Two experiments on different metric scales (fractions; chrF/BLEU points), one whose
    variant logs another curve quantity (AR1's policy objective), one underpowered."""
    with Store(db) as store:
        add_comparison(store, "v1_dynrank", "PROMOTE", 0.06, [], min_improvement=0.005)
        comparison = add_comparison(
            store,
            "v3_kron",
            "INCONCLUSIVE (underpowered)",
            0.004,
            ["underpowered: chrf: n=120 < 200"],
            metrics=(("chrf", 100.0), ("bleu", 100.0)),
            min_improvement=0.005,
            underpowered={"chrf": "n=120 < 200"},
        )
        bundle = next(b for b in queries.latest_comparisons(store) if b[1].id == comparison)
        variant = bundle[5]
        assert variant.id is not None
        queries.update_run(store, variant.id, curve_quantity="policy objective (−mean reward)")
        with store.session() as session:  # rounds of -(mean reward): negative, falling
            session.exec(delete(StepMetric).where(col(StepMetric.run_id) == variant.id))
        queries.record_steps(
            store, variant.id, [(r, -0.2 - 0.03 * r, 0.05, 2.0 * r) for r in range(1, 11)]
        )
        with store.session() as session:  # the spec fields a report shows
            for experiment in session.exec(select(Experiment)).all():
                experiment.spec_json = json.dumps(
                    {
                        "experiment_name": experiment.name,
                        "description": f"{experiment.name} (fixed numbers)",
                        "bem_config": {"variant": "fixed"},
                    }
                )


def _not_blank(pixels: np.ndarray) -> tuple[float, int]:
    """(share of pixels that are not near-white, number of distinct colours)."""
    rgb = pixels[..., :3].reshape(-1, 3)
    inked = float((rgb.min(axis=1) < 235).mean())
    return inked, len(np.unique(rgb, axis=0))


def test_report_plots_render_in_headless_chromium(
    project: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    _results_store(project / ".bemctl" / "bemctl.db")
    page = tmp_path / "report.html"
    made = cli("report", "--format", "html", "--output", str(page))
    assert made.code == 0, made.err
    html = page.read_text()
    # forest (one figure, a panel per metric) + a curve figure per experiment
    assert html.count("<img ") == 3

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        options.add_argument(flag)
    monkeypatch.setenv("SE_OFFLINE", "true")  # belt and braces: no Selenium Manager lookups
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        driver.set_page_load_timeout(60)
        driver.get(page.as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "return document.readyState === 'complete' && "
                "Array.from(document.images).every(i => i.complete)"
            )
        )
        images = driver.execute_script(
            "return Array.from(document.images).map(i => {"
            " const r = i.getBoundingClientRect();"
            " return {alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,"
            " x: r.left + window.scrollX, y: r.top + window.scrollY,"
            " width: r.width, height: r.height}; })"
        )
        assert len(images) == 3
        for image in images:
            assert image["complete"] and image["w"] > 0 and image["h"] > 0, image["alt"]
        alts = [i["alt"] for i in images]
        assert alts[0].startswith("forest plot")
        assert "policy objective (−mean reward)" in alts[2] and "language-model loss" in alts[2]

        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 200, 12000))
        deadline = time.monotonic() + 10  # the resize is asynchronous: wait until it took
        while driver.execute_script("return window.innerHeight") < min(height, 11000):
            assert time.monotonic() < deadline, "window did not grow to the page height"
            time.sleep(0.05)
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()

    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(SCREENSHOT_DIR) / "report.png")
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    inked, colours = _not_blank(pixels)
    assert inked > 0.02 and colours > 50, (inked, colours)
    for image in images:  # every plot drew something where the page shows it
        x, y = int(image["x"]), int(image["y"])
        crop = pixels[y : y + int(image["height"]), x : x + int(image["width"])]
        assert crop.size, image["alt"]
        inked, colours = _not_blank(crop)
        assert inked > 0.01 and colours > 20, (image["alt"], inked, colours)


@pytest.mark.parametrize(("required", "outcome"), [(True, "fail"), (False, "skip")])
def test_a_missing_browser_fails_when_required_else_skips(
    required: bool, outcome: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "REQUIRE_BROWSER", required)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected) as caught:
        _browser()
    assert "chromium" in str(caught.value).casefold()
