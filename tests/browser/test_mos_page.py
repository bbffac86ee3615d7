"""The MOS page in a real browser: headless Chromium (Debian `chromium` + `chromium-driver`)
driven by Selenium loads the page from file://, rates every image with the keyboard,
downloads the CSV, and `usmr mos score` reads it back.

CI needs: `apt-get install -y chromium chromium-driver` and `pip install -e ".[browser]"`
(Selenium). Without them the test is skipped with the reason. Set USMR_MOS_SCREENSHOT=path.png
to also save a screenshot of the page.
"""

import json
import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from usmr_tf.cli import main as cli
from usmr_tf.metrics import synthetic
from usmr_tf.metrics.image_sets import unit_to_grey

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install -e '.[browser]')")

CHROMIUM = os.environ.get("USMR_CHROMIUM") or shutil.which("chromium") or shutil.which(
    "chromium-browser")
CHROMEDRIVER = os.environ.get("USMR_CHROMEDRIVER") or shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("headless Chromium test needs the chromium and chromedriver binaries "
                "(Debian: apt-get install -y chromium chromium-driver)", allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


def _write_pngs(folder, seeds, invert=False):
    folder.mkdir()
    for s in seeds:
        image = synthetic.head_phantom(48, seed=s)
        Image.fromarray(unit_to_grey(-image if invert else image)).save(folder / f"{s:03d}.png")
    return folder


@pytest.fixture
def browser(tmp_path, monkeypatch):
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=820,900",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver, downloads
    finally:
        driver.quit()


def _wait_for_csv(folder, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == ".csv"]
        if done and not any(p.suffix == ".crdownload" for p in folder.iterdir()):
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no CSV downloaded into {folder}: {list(folder.iterdir())}")


def _rating_for(image_id):  # deterministic "opinion" the test gives each image
    return int(image_id, 16) % 5 + 1


def test_rate_every_image_download_and_score(browser, tmp_path, capsys):
    driver, downloads = browser
    ours = _write_pngs(tmp_path / "ours", range(6))
    cyclegan = _write_pngs(tmp_path / "cyclegan", range(6, 12), invert=True)
    real = _write_pngs(tmp_path / "real", range(12, 18))
    page_dir, key_path = tmp_path / "page", tmp_path / "page-key.json"
    assert cli.main(["mos", "make", "--images", f"ours={ours}", f"cyclegan={cyclegan}",
                     "--real", str(real), "--n", "12", "--out", str(page_dir), "--seed", "1",
                     "--size", "64"]) == 0
    key = json.loads(key_path.read_text())

    driver.get((page_dir / "index.html").as_uri())
    driver.find_element(By.ID, "start").click()  # no rater id yet: refused with a message
    assert "rater ID" in driver.find_element(By.ID, "error").text
    driver.find_element(By.ID, "rater").send_keys("tester, one")  # comma: CSV quoting
    driver.find_element(By.ID, "group-expert").click()
    driver.find_element(By.ID, "start").click()
    assert driver.find_element(By.ID, "study").is_displayed()
    body = driver.find_element(By.TAG_NAME, "body")
    image = driver.find_element(By.ID, "image")

    body.send_keys(Keys.ARROW_RIGHT)  # arrows navigate without rating
    assert driver.find_element(By.ID, "position").text == "Image 2 of 12"
    body.send_keys(Keys.ARROW_LEFT)
    assert driver.find_element(By.ID, "position").text == "Image 1 of 12"

    given, seen = {}, []
    for step in range(12):
        image_id = image.get_attribute("data-image-id")
        seen.append(image_id)
        assert driver.execute_script("return arguments[0].naturalWidth", image) == 64
        given[image_id] = _rating_for(image_id)
        body.send_keys(str(given[image_id]))  # key 1-5 rates and moves on
        assert driver.find_element(By.ID, "progress-text").text == f"{step + 1} of 12 rated"
    assert sorted(seen) == sorted(key["images"])  # every image shown once
    assert driver.find_element(By.ID, "done").is_displayed()
    screenshot = os.environ.get("USMR_MOS_SCREENSHOT")
    if screenshot:
        body.send_keys(Keys.ARROW_LEFT)
        driver.save_screenshot(screenshot)

    driver.find_element(By.ID, "download").click()
    csv_path = _wait_for_csv(downloads)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "rater_id,group,image_id,rating" and len(lines) == 13
    assert lines[1].startswith('"tester, one",expert,')

    out = tmp_path / "mos.json"
    assert cli.main(["mos", "score", str(csv_path), "--key", str(key_path),
                     "--json", str(out)]) == 0
    table = json.loads(out.read_text())["mos"]
    for method in ("ours", "cyclegan", "real"):
        values = [given[i] for i, e in key["images"].items() if e["method"] == method]
        assert table[method]["expert"]["n"] == len(values) == 4
        assert table[method]["expert"]["mean"] == pytest.approx(np.mean(values))
        assert "beginner" not in table[method]
    assert "MOS (95% CI)" in capsys.readouterr().out
