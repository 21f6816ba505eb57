"""The demo page at / in headless Chromium (Debian's chromium and chromium-driver, driven by
selenium): it loads without console errors, a drawn digit and an uploaded image each get a
prediction, and a screenshot shows it."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest

pytest.importorskip("starlette", reason="cnnkit serve needs the serve extra (Starlette)")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium drives the browser")

from serve_helpers import png_bytes, server, tiny_cnn  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not CHROMIUM or not DRIVER:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium "
                    "chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=900,700"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for_prediction(driver, previous=""):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(
        lambda d: d.find_element("id", "status").text.startswith("model ")
        and d.find_element("id", "status").text != previous)
    return driver.find_element("id", "status").text


def test_page_draw_upload_screenshot(browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains

    model = tiny_cnn(seed=4)
    model.save(tmp_path / "digits.cnnkit")
    with server([str(tmp_path / "digits.cnnkit")], "--reload-interval", "0") as s:
        browser.get(s["url"] + "/")
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(browser, 30).until(lambda d: d.find_element("id", "status").text ==
                                         "ready")
        pad = browser.find_element("id", "pad")
        ActionChains(browser).move_to_element_with_offset(pad, -40, -80).click_and_hold() \
            .move_by_offset(60, 40).move_by_offset(-20, 90).move_by_offset(10, 30) \
            .release().perform()
        browser.find_element("id", "predict").click()
        drawn = _wait_for_prediction(browser)
        rows = browser.find_elements("css selector", "#result tr.prediction")
        assert len(rows) == 5 and "%" in rows[0].text
        shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("L")
        pixels = np.asarray(shot)
        assert pixels.std() > 20  # not blank: the drawing, the table and the bars
        canvas = np.asarray(Image.open(io.BytesIO(pad.screenshot_as_png)).convert("L"))
        assert (canvas > 128).mean() > 0.01  # the stroke is on the pad
        img = tmp_path / "seven.png"
        img.write_bytes(png_bytes(np.random.default_rng(1).integers(0, 256, (28, 28, 1))))
        browser.find_element("id", "upload").send_keys(str(img))
        uploaded = _wait_for_prediction(browser, drawn)
        assert uploaded.startswith("model digits")
        assert uploaded.endswith("(answer 2)")
        browser.save_screenshot(str(tmp_path / "page.png"))
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
