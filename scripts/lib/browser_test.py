"""Drives Tessera's management page in headless Chromium: create a token, see it once, list, revoke, see the status change."""
import argparse
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--screenshot", default=None)
    args = parser.parse_args()

    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"]:
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(driver, 10)
    steps = []

    def step(text):
        steps.append(text)
        print(f"ok - {text}", flush=True)

    try:
        driver.get(args.url)
        assert driver.title.startswith("Tessera"), driver.title

        # Without a key, the page says what to do, in words.
        driver.find_element(By.ID, "create-user").send_keys("browser-user")
        driver.find_element(By.ID, "create-form").submit()
        message = wait.until(EC.visibility_of_element_located((By.ID, "message")))
        assert "API key" in message.text, message.text
        step("an action without a key explains that one is needed")

        # Enter the key by keyboard only: type it and press Enter.
        key_field = driver.find_element(By.ID, "api-key")
        key_field.send_keys(args.key + Keys.ENTER)
        wait.until(EC.text_to_be_present_in_element((By.ID, "key-status"), "memory only"))
        assert driver.execute_script("return window.localStorage.length + window.sessionStorage.length") == 0
        assert driver.get_cookies() == []
        step("the key is held in memory: nothing in storage or cookies")

        # An API error is shown in words, naming the field.
        minutes = driver.find_element(By.ID, "create-minutes")
        minutes.clear()
        minutes.send_keys("1")
        driver.execute_script("document.getElementById('create-minutes').value = '0'")
        driver.execute_script("document.getElementById('create-minutes').removeAttribute('min')")
        driver.find_element(By.ID, "create-form").submit()
        wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "expiresInMinutes"))
        step("a validation error from the API is shown in words: " + driver.find_element(By.ID, "message").text[:80])

        # Create a token.
        minutes = driver.find_element(By.ID, "create-minutes")
        minutes.clear()
        minutes.send_keys("60")
        driver.find_element(By.ID, "create-scopes").send_keys("read write")
        driver.find_element(By.ID, "create-name").send_keys("from the browser test")
        driver.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
        secret = wait.until(EC.visibility_of_element_located((By.ID, "secret-value")))
        token = secret.get_attribute("value")
        assert token.startswith("tsr_") and len(token) == 53, token
        warning = driver.find_element(By.CSS_SELECTOR, "#secret-panel .warning").text
        assert "only time" in warning, warning
        assert driver.find_element(By.ID, "copy-secret").is_displayed()
        step("the new token is shown once, with a warning and a copy button")

        driver.find_element(By.ID, "copy-secret").click()
        wait.until(lambda d: d.find_element(By.ID, "copy-status").text != "")
        step("copy: " + driver.find_element(By.ID, "copy-status").text)

        driver.find_element(By.ID, "dismiss-secret").click()
        assert not driver.find_element(By.ID, "secret-panel").is_displayed()
        assert token not in driver.page_source
        step("after dismissing it, the token is gone from the page")

        # List the user's tokens.
        driver.find_element(By.ID, "list-user").send_keys("browser-user")
        Select(driver.find_element(By.ID, "list-status")).select_by_value("all")
        driver.find_element(By.CSS_SELECTOR, "#list-form button[type=submit]").click()
        row = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#token-rows tr")))
        cells = row.find_elements(By.TAG_NAME, "td")
        assert cells[0].text == token[:8] + "…", cells[0].text
        assert cells[3].text == "active", cells[3].text
        assert token not in driver.page_source
        step(f"the list shows {cells[0].text} as active, never the token")

        # Revoke it (confirming the dialog) and see the status change.
        revoke = row.find_element(By.XPATH, ".//button[text()='Revoke']")
        revoke.send_keys(Keys.ENTER)
        wait.until(EC.alert_is_present())
        driver.switch_to.alert.accept()
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#token-rows tr td:nth-child(4)"), "revoked"))
        step("after revoking, the list shows the token as revoked")

        # HTTP error statuses are logged as "network" entries (the test provoked a 400 on purpose); anything else,
        # such as a script error or a Content-Security-Policy violation, fails the test.
        severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE" and entry.get("source") != "network"]
        assert not severe, f"console errors (a CSP violation would show here): {severe}"
        step("no console errors or Content-Security-Policy violations")
        if args.screenshot:
            driver.save_screenshot(args.screenshot)
    finally:
        driver.quit()
    print(f"browser test passed ({len(steps)} steps)")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # report and fail
        print(f"browser test failed: {error!r}")
        sys.exit(1)
