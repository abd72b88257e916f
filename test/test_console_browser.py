"""The console as a person uses it: Debian's Chromium (headless, through chromium-driver and
Selenium) against the real HTTPS server with recorder-made incidents.

Screenshots go to the test's temp folder; with VSS_CONSOLE_SCREENSHOTS=docs they replace
docs/console_*.png (small PNGs for the README).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import cv2
import pytest

from console_support import (PASSWORD, SCENE_CUE, T0, behaviour_cdrs, console_settings, detections_cdr, event_cdr,
                             jpeg_cdr, record_incident, running_console, scene, totp_code)
from kaiserslautern_vss.console.live import LiveState
from kaiserslautern_vss.events.incident import Incident, IncidentUpdate

webdriver = pytest.importorskip('selenium.webdriver')
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow
CHROMIUM, DRIVER = Path('/usr/bin/chromium'), Path('/usr/bin/chromedriver')
DOCS = Path(__file__).resolve().parents[1] / 'docs'
SCREENSHOT_WIDTH = 960
#: how many pixels of a box canvas are painted
PAINTED = ("const c = document.getElementById('{canvas}');"
           "return c.width ? c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
           ".filter((v, i) => i % 4 == 3 && v).length : 0;")
#: how many pixels of a canvas are painted in the skeletons' limb colour (#1ae5ff; boxes are #4da3ff)
LIMBS_PAINTED = ("const d = document.getElementById('{canvas}').getContext('2d').getImageData(0, 0, 4000, 4000).data;"
                 "let n = 0; for (let i = 0; i < d.length; i += 4) {{ if (d[i] < 60 && d[i + 1] > 200 && d[i + 2] > 240"
                 " && d[i + 3] > 200) n++; }} return n;")


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    """A console for two cameras with one recorded incident and a live feed on cam01."""
    if not (CHROMIUM.exists() and DRIVER.exists()):
        pytest.skip('Debian chromium and chromium-driver are not installed (scripts/setup_env.sh installs them)')
    tmp = tmp_path_factory.mktemp('console')
    settings = console_settings(tmp, tmp / 'recordings', cameras=('cam01', 'cam02'), live_refresh_hz=5.0)
    folder = record_incident(settings.record_root, settings.signing_key_file, camera='cam01', seconds=8.0,
                             behaviour=True)
    live = LiveState(list(settings.cameras), time.time)
    feeding = threading.Event()

    def feed():
        index = 0
        while not feeding.is_set():
            for number, camera in enumerate(settings.cameras):
                image, boxes = scene(index + 40 * number)
                live.on_image(camera, jpeg_cdr(T0 + index, image, camera))
                live.on_detections(camera, detections_cdr(T0 + index, boxes, camera))
                cues, skeletons = behaviour_cdrs(T0 + index, boxes, camera)
                live.on_behaviour(camera, cues)
                live.on_skeletons(camera, skeletons)
            index += 1
            feeding.wait(0.2)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    with running_console(settings, live=live) as running:
        yield running, folder, tmp
    feeding.set()
    feeder.join()


@pytest.fixture(scope='module')
def browser(site):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
                     '--window-size=1920,1080', '--lang=de-DE', '--no-first-run'):
        options.add_argument(argument)
    options.accept_insecure_certs = True  # the commissioning certificate is self-signed
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(DRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait(browser, condition, timeout_s: float = 20.0, poll_s: float = 0.05):
    # A page redraw between finding an element and reading it is a retry, not a failure.
    return WebDriverWait(browser, timeout_s, poll_frequency=poll_s,
                         ignored_exceptions=(StaleElementReferenceException,)).until(lambda _: condition())


def screenshot(browser, name: str, tmp: Path) -> None:
    """A small PNG (960 px wide) in the temp folder, and in docs/ when asked for."""
    path = tmp / f'console_{name}.png'
    browser.save_screenshot(str(path))
    image = cv2.imread(str(path))
    small = cv2.resize(image, (SCREENSHOT_WIDTH, round(image.shape[0] * SCREENSHOT_WIDTH / image.shape[1])),
                       interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if os.environ.get('VSS_CONSOLE_SCREENSHOTS') == 'docs':
        shutil.copy(path, DOCS / path.name)


def login(browser, running, user: str) -> None:
    """Log in as ``user`` unless this browser already is (a TOTP code is good once)."""
    browser.get(running.url + '/incidents')
    who = browser.find_elements(By.CLASS_NAME, 'who')
    if who and who[0].text.startswith(f'{user} '):
        return
    browser.delete_all_cookies()
    browser.get(running.url + '/login')
    browser.find_element(By.ID, 'user').send_keys(user)
    browser.find_element(By.ID, 'password').send_keys(PASSWORD)
    browser.find_element(By.ID, 'totp').send_keys(totp_code(running.accounts[user]))
    browser.find_element(By.ID, 'login').click()
    wait(browser, lambda: '/login' not in browser.current_url)


def csp_violations(browser) -> list[str]:
    return [entry['message'] for entry in browser.get_log('browser') if 'Content Security Policy' in entry['message']]


def test_login_with_totp_and_live_grid_updates(site, browser):
    running, _, tmp = site
    browser.get(running.url + '/live')
    assert browser.current_url.endswith('/login')
    screenshot(browser, 'login', tmp)
    browser.find_element(By.ID, 'user').send_keys('olga')
    browser.find_element(By.ID, 'password').send_keys(PASSWORD)
    browser.find_element(By.ID, 'totp').send_keys('000000')
    browser.find_element(By.ID, 'login').click()
    wait(browser, lambda: 'Anmeldung fehlgeschlagen' in browser.find_element(By.CLASS_NAME, 'error').text)
    login(browser, running, 'olga')
    assert browser.current_url.endswith('/live')
    tile = browser.find_element(By.ID, 'tile-cam01')
    first = int(wait(browser, lambda: int(tile.find_element(By.TAG_NAME, 'img').get_attribute('data-seq') or 0)))
    wait(browser, lambda: int(tile.find_element(By.TAG_NAME, 'img').get_attribute('data-seq')) > first + 2)
    natural_width = "return document.querySelector('#tile-cam01 img').naturalWidth"
    wait(browser, lambda: browser.execute_script(natural_width) == 640)
    tile.click()  # one camera large, its detections drawn over it
    wait(browser, lambda: browser.execute_script("return document.getElementById('large-image').naturalWidth") == 640)
    wait(browser, lambda: browser.execute_script(PAINTED.format(canvas='large-boxes')) > 0)
    wait(browser, lambda: browser.execute_script(LIMBS_PAINTED.format(canvas='large-boxes')) > 50)  # skeletons
    # The list is redrawn on every poll: read kinds and texts in one script, never through stale elements.
    cues = wait(browser, lambda: browser.execute_script(
        "return Array.from(document.querySelectorAll('#large-cues li.cue'), li => [li.dataset.kind, li.textContent])"))
    assert [kind for kind, _ in cues] == ['person_down']  # fleeing scored 0: not shown
    assert cues[0][1].startswith('Person am Boden (person_down) 0.87 · Personen #1 · box_aspect_change 1.9')
    screenshot(browser, 'large', tmp)
    browser.find_element(By.ID, 'close-large').click()
    assert csp_violations(browser) == []


def test_alert_arrives_within_a_second_and_is_acknowledged(site, browser):
    running, _, tmp = site
    login(browser, running, 'olga')
    browser.get(running.url + '/live')
    wait(browser, lambda: browser.find_element(By.ID, 'stream-state').text == 'Verbunden')
    incident = Incident(id='d4' * 16, rule='zone_intrusion', camera='cam02', kind='zone_intrusion',
                        started_ns=T0, updated_ns=T0)
    published_ms = time.time() * 1000  # browser and server share this host's clock
    running.console.live.on_event(event_cdr(IncidentUpdate('start', incident)))
    fight = Incident(id='e5' * 16, rule='assault_square', camera='cam01', kind='assault', started_ns=T0,
                     updated_ns=T0)
    running.console.live.on_event(event_cdr(IncidentUpdate('start', fight), [{
        'rule': 'assault_square', 'kind': 'assault', 'score': 0.91, 'track_ids': [3, 7],
        'evidence': {'limb_speed_heights_per_s': 3.1, 'contact_s': 1.2}}]))
    why = wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, '#alert-e5e5e5e5 .alert-cues li.cue'))
    assert why[0].text == ('Körperliche Auseinandersetzung (assault) 0.91 · Personen #3, #7 · '
                           'limb_speed_heights_per_s 3.1, contact_s 1.2')
    alert = wait(browser, lambda: browser.find_elements(By.ID, 'alert-d4d4d4d4'), timeout_s=10.0)[0]
    arrived_s = (int(alert.get_attribute('data-arrived-ms')) - published_ms) / 1000
    assert arrived_s < 1.0, f'alert took {arrived_s:.2f} s to reach the screen'
    print(f'alert on screen {1000 * arrived_s:.0f} ms after it was published')
    wait(browser, lambda: 'alarm' in browser.find_element(By.ID, 'tile-cam02').get_attribute('class').split())
    wait(browser, lambda: browser.execute_script(
        "return [...document.querySelectorAll('.tile img')].every((img) => img.naturalWidth > 0)"))
    screenshot(browser, 'live', tmp)
    alert = browser.find_element(By.ID, 'alert-d4d4d4d4')
    alert.find_element(By.NAME, 'comment').send_keys('Streife verständigt')
    alert.find_element(By.CSS_SELECTOR, 'form.ack button').click()
    wait(browser, lambda: 'Quittiert von olga' in alert.find_element(By.CLASS_NAME, 'acked').text)


def test_incident_plays_with_timeline_and_steps(site, browser):
    running, folder, tmp = site
    login(browser, running, 'olga')
    browser.get(running.url + '/incidents')
    screenshot(browser, 'incidents', tmp)
    browser.find_element(By.CSS_SELECTOR, f'a[href="/incidents/{folder.name}"]').click()
    clock = browser.find_element(By.ID, 'clock')
    wait(browser, lambda: clock.text.startswith('Bild 1 / '))
    wait(browser, lambda: browser.execute_script(PAINTED.format(canvas='boxes')) > 0)  # detections drawn
    wait(browser, lambda: browser.execute_script(LIMBS_PAINTED.format(canvas='boxes')) > 50)  # recorded skeletons
    cues = wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, '#frame-cues li.cue'))
    assert cues[0].text.startswith(f'Person am Boden (person_down) {SCENE_CUE.score:.2f}')
    fired = browser.find_elements(By.CSS_SELECTOR, '#incident-cues li.cue')  # why the incident was recorded
    assert [item.text for item in fired] == ['Person am Boden (person_down) 0.87 · Personen #1 · '
                                             'box_aspect_change 1.9, seconds_down 1.2']
    browser.find_element(By.ID, 'play').click()
    wait(browser, lambda: int(clock.text.split()[1]) >= 10)
    browser.find_element(By.ID, 'play').click()  # pause
    time.sleep(0.3)
    paused_at = int(clock.text.split()[1])
    time.sleep(0.5)
    assert int(clock.text.split()[1]) == paused_at
    browser.find_element(By.ID, 'step-forward').click()
    wait(browser, lambda: int(clock.text.split()[1]) == paused_at + 1)
    browser.find_element(By.ID, 'step-back').click()
    wait(browser, lambda: int(clock.text.split()[1]) == paused_at)
    assert browser.find_element(By.ID, 'trigger-mark').is_displayed()
    assert 'Auslösung' in clock.text
    screenshot(browser, 'incident', tmp)
    assert csp_violations(browser) == []


def test_operator_is_refused_the_audit_log(site, browser):
    running, _, tmp = site
    login(browser, running, 'olga')
    assert not browser.find_elements(By.LINK_TEXT, 'Protokoll')  # not offered ...
    browser.get(running.url + '/audit')  # ... and refused when typed in
    assert browser.find_element(By.ID, 'refused').text == 'Zugriff verweigert'
    screenshot(browser, 'refused', tmp)


def test_investigator_marks_evidence_verifies_and_exports(site, browser):
    running, folder, tmp = site
    login(browser, running, 'ingo')
    browser.get(f'{running.url}/incidents/{folder.name}')
    browser.find_element(By.ID, 'evidence-reason').send_keys('Az. 4711/26, Sachbeschädigung')
    browser.find_element(By.ID, 'evidence-submit').click()
    wait(browser, lambda: 'Az. 4711/26' in browser.find_element(By.ID, 'evidence-mark').text)
    browser.find_element(By.ID, 'verify').click()
    wait(browser, lambda: 'Signatur gültig' in browser.find_element(By.ID, 'verification').text)
    browser.find_element(By.ID, 'export').click()  # without case reference: the browser refuses
    assert not browser.find_elements(By.ID, 'exported')
    browser.find_element(By.ID, 'case-reference').send_keys('4711 Js 26/26')
    browser.find_element(By.ID, 'export').click()
    wait(browser, lambda: 'Exportiert nach' in browser.find_element(By.ID, 'exported').text)
    assert (running.console.settings.export_root / '4711%20Js%2026%2F26' / folder.name / 'manifest.json').is_file()
    archive = browser.find_element(By.ID, 'archive').get_attribute('href')
    assert archive.endswith(f'/exports/4711%2520Js%252026%252F26/{folder.name}.zip')
    wait(browser, lambda: browser.find_element(By.ID, 'clock').text.startswith('Bild 1'))
    screenshot(browser, 'evidence', tmp)


def test_admin_reads_the_audit_log_and_tablet_layout(site, browser):
    running, folder, tmp = site
    login(browser, running, 'anna')
    browser.get(running.url + '/audit')
    assert 'Protokollkette intakt' in browser.find_element(By.ID, 'chain').text
    rows = browser.find_elements(By.CSS_SELECTOR, '#audit tbody tr')
    actions = {row.find_elements(By.TAG_NAME, 'td')[3].text for row in rows}
    assert {'login', 'login failed', 'view recording', 'acknowledge', 'refused', 'evidence mark', 'verify',
            'export'} <= actions
    screenshot(browser, 'audit', tmp)
    try:
        browser.set_window_size(800, 1280)  # a tablet, portrait
        browser.get(running.url + '/live')
        tile = browser.find_element(By.CSS_SELECTOR, '#tile-cam01 img')
        wait(browser, lambda: int(tile.get_attribute('data-seq')) > 0)
        assert browser.execute_script('return document.documentElement.scrollWidth <= window.innerWidth')
        screenshot(browser, 'tablet', tmp)
    finally:
        browser.set_window_size(1920, 1080)


def test_session_ends_after_logout(site, browser):
    running, _, _ = site
    login(browser, running, 'olga')
    browser.find_element(By.CSS_SELECTOR, 'form.logout button').click()
    wait(browser, lambda: browser.current_url.endswith('/login'))
    browser.get(running.url + '/live')
    try:
        wait(browser, lambda: browser.current_url.endswith('/login'), timeout_s=5)
    except TimeoutException:
        pytest.fail('the live view stayed reachable after logout')
