"""The console in a real headless Chromium, on `floodgate up --demo`: the bursting account
shows in Top subjects, then in Actions in force; the Lift button (with who and why) ends
its action, and the policy service answers DUNNO for it again. A console on a non-loopback
address refuses requests without its token, and will not start without one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from connectors.kafka.embedded_broker import free_port
from connectors.postfix_policy.client import ask
from tests.fixtures.browser import headless_chromium
from tests.fixtures.processes import REPO, start, stop, up_environment, wait_listening

pytestmark = pytest.mark.slow
CONFIG = REPO / "deploy" / "examples" / "single-host.yaml"
# set to a folder (e.g. connectors/http/screenshots) to save the README's screenshots
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
BURSTING = "sasl_username:compromised"
QUESTION = {"sasl_username": "compromised", "sender": "compromised@example.net",
            "client_address": "10.0.0.7"}


def wait_for_text(path: Path, text: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not in {path}: {content[-2000:]}")


def test_console_shows_the_burst_and_lifts_it(tmp_path: Path) -> None:
    policy_port, console_port = free_port(), free_port()
    env = up_environment(tmp_path, policy_port, console_port, "console")
    out = tmp_path / "up.out"
    up = start([sys.executable, "-m", "pipeline.cli", "up", "--config", str(CONFIG), "--demo",
                "--state-dir", str(tmp_path / "state")], out, env)
    browser = None
    try:
        text = wait_for_text(out, f"console: http://127.0.0.1:{console_port}/")
        broker = text.split("embedded broker (Tansu) on ", 1)[1].split()[0]
        wait_listening(console_port, up)
        browser = headless_chromium()
        browser.get(f"http://127.0.0.1:{console_port}/")
        started = time.monotonic()
        # the first view ranks by nearness to a limit: the burst shows there, whatever the
        # ordinary customers' volume
        near = WebDriverWait(browser, 90, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda b: b.find_element(By.CSS_SELECTOR,
                                     f'#top [data-view="limits"] tr[data-subject="{BURSTING}"]').text)
        in_top = time.monotonic() - started
        assert "burst" in near and "/ 60" in near, near
        row = WebDriverWait(browser, 120).until(seen.presence_of_element_located(
            (By.CSS_SELECTOR, f'#actions tr[data-subject="{BURSTING}"]')))
        assert "defer" in row.text and "burst" in row.text and "60 messages" in row.text
        assert ask("127.0.0.1", policy_port, QUESTION).action.startswith("DEFER")
        # the account is flagged in Top subjects too
        WebDriverWait(browser, 10).until(seen.presence_of_element_located(
            (By.CSS_SELECTOR, f'#top tr.acted[data-subject="{BURSTING}"]')))

        exempt_and_back(browser, policy_port)

        if SCREENSHOTS:
            browser.set_window_size(1400, 1720)
            time.sleep(2.5)  # a refresh at the new size
            browser.save_screenshot(str(Path(SCREENSHOTS) / "console.png"))
        # the table is redrawn every 2 s: a row found just before a redraw is gone at the
        # click, so find and click are retried together
        lift = f'#actions tr[data-subject="{BURSTING}"] button.lift'
        WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda b: b.find_element(By.CSS_SELECTOR, lift).click() or True)
        dialog = WebDriverWait(browser, 10).until(seen.visibility_of_element_located(
            (By.ID, "confirm")))
        assert BURSTING in dialog.text
        browser.find_element(By.ID, "confirm-ok").click()  # who and why are required
        assert "required" in browser.find_element(By.ID, "confirm-error").text
        browser.find_element(By.ID, "f-actor").send_keys("abuse-desk")
        browser.find_element(By.ID, "f-reason").send_keys("customer reset the password")
        if SCREENSHOTS:
            browser.set_window_size(1000, 560)
            browser.save_screenshot(str(Path(SCREENSHOTS) / "lift.png"))
        browser.find_element(By.ID, "confirm-ok").click()
        WebDriverWait(browser, 10).until(seen.invisibility_of_element_located(
            (By.CSS_SELECTOR, f'#actions tr[data-subject="{BURSTING}"]')))
        lifted_at = time.monotonic()
        # the policy service learns of the lift from the action topic, like every change
        while (answer := ask("127.0.0.1", policy_port, QUESTION).action) != "DUNNO":
            assert time.monotonic() - lifted_at < 10, answer
            time.sleep(0.2)

        # the chart has drawn the demo's policy answers
        assert browser.find_elements(By.CSS_SELECTOR, "#chart canvas")
        assert float(browser.find_element(By.ID, "rps").text) > 0
        assert in_top < 90

        guarded_console(tmp_path, broker)
    finally:
        if browser is not None:
            browser.quit()
        stop(up, signal.SIGTERM, timeout_s=90)
    assert up.returncode == 0


def exempt_and_back(browser: webdriver.Chrome, policy_port: int) -> None:
    """The subject settings dialog: an exemption set there lets the deferred account's mail
    through within 10 s, with its action still in force and shown as exempt; removing the
    settings brings the deferral back."""
    browser.find_element(By.ID, "settings-open").click()
    WebDriverWait(browser, 10).until(seen.visibility_of_element_located((By.ID, "settings")))
    browser.find_element(By.ID, "s-subject").send_keys(BURSTING, Keys.TAB)
    WebDriverWait(browser, 10).until(seen.text_to_be_present_in_element(
        (By.ID, "s-current"), f"{BURSTING}: no settings (class standard)"))
    assert "burst: >= " in browser.find_element(By.ID, "s-effective").text
    browser.find_element(By.ID, "s-exempt").click()
    browser.find_element(By.ID, "settings-set").click()  # who and why are required
    assert "required" in browser.find_element(By.ID, "settings-error").text
    browser.find_element(By.ID, "s-actor").send_keys("abuse-desk")
    browser.find_element(By.ID, "s-reason").send_keys("our own notification system")
    browser.find_element(By.ID, "settings-set").click()
    WebDriverWait(browser, 10).until(seen.text_to_be_present_in_element(
        (By.ID, "s-current"), "exempt (set by abuse-desk"))
    set_at = time.monotonic()
    while (answer := ask("127.0.0.1", policy_port, QUESTION).action) != "DUNNO":
        assert time.monotonic() - set_at < 10, answer
        time.sleep(0.2)
    browser.find_element(By.ID, "settings-cancel").click()
    WebDriverWait(browser, 10).until(seen.text_to_be_present_in_element(
        (By.CSS_SELECTOR, f'#actions tr[data-subject="{BURSTING}"] td.class'), "exempt"))
    browser.find_element(By.ID, "settings-open").click()
    browser.find_element(By.ID, "s-subject").send_keys(BURSTING, Keys.TAB)
    WebDriverWait(browser, 10).until(seen.text_to_be_present_in_element(
        (By.ID, "s-current"), "exempt (set by"))
    browser.find_element(By.ID, "s-reason").send_keys("not ours after all")
    browser.find_element(By.ID, "settings-unset").click()
    WebDriverWait(browser, 10).until(seen.text_to_be_present_in_element(
        (By.ID, "s-current"), "no settings"))
    browser.find_element(By.ID, "settings-cancel").click()
    unset_at = time.monotonic()
    while not (answer := ask("127.0.0.1", policy_port, QUESTION).action).startswith("DEFER"):
        assert time.monotonic() - unset_at < 10, answer
        time.sleep(0.2)


def guarded_console(tmp_path: Path, bootstrap: str) -> None:
    """``floodgate console`` on every address: without a token it does not start; with one,
    a request without it is refused."""
    port = free_port()
    env = {**os.environ, "FLOODGATE_KAFKA__BOOTSTRAP_SERVERS": bootstrap}
    env.pop("FLOODGATE_CONSOLE_TOKEN", None)
    command = [sys.executable, "-m", "pipeline.cli", "console", "--config", str(CONFIG),
               "--listen", f"0.0.0.0:{port}"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60,
                             cwd=REPO)
    assert refused.returncode == 1 and "FLOODGATE_CONSOLE_TOKEN" in refused.stderr
    console = start(command, tmp_path / "console.out", {**env, "FLOODGATE_CONSOLE_TOKEN": "s3cret"})
    try:
        wait_listening(port, console)
        address = outside_address() or "127.0.0.1"
        url = f"http://{address}:{port}/api/actions"
        with pytest.raises(urllib.error.HTTPError) as failure:
            urllib.request.urlopen(url, timeout=10)
        assert failure.value.code == 401
        request = urllib.request.Request(url, headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert "actions" in json.loads(response.read())
    finally:
        stop(console)


def outside_address() -> str | None:
    """This host's own non-loopback address, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: it only picks a route
            address: str = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address
