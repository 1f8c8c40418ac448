"""Drives Tessera's management page in headless Chromium: create a token, see it once, list, revoke, see the status
change; then act on users whose ids need escaping (spaces, +, %, &, #, non-ASCII) and check that lists, revokes,
rotations and the audit filter reach exactly that user."""
import argparse
import base64
import json
import subprocess
import sys
import urllib.request
import traceback
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
    parser.add_argument("--github-key", required=True, help="the private key that signs leak reports in GitHub's place")
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

        # User ids that a careless query string would confuse: each list, revoke, rotation and audit filter must act
        # on exactly the user typed.
        tricky = ["a b", "a+b", "50% & #1", "ünïcode 名前", "a%20b"]

        def fill(field_id, text):
            field = driver.find_element(By.ID, field_id)
            field.clear()
            field.send_keys(text)

        def create(user, name):
            fill("create-user", user)
            fill("create-scopes", "read")
            fill("create-name", name)
            driver.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
            wait.until(EC.visibility_of_element_located((By.ID, "secret-value")))
            driver.find_element(By.ID, "dismiss-secret").click()

        def submitted_rows(form, table, caption):
            """The second and fourth cells of each row of `table` once `form` is submitted and its caption is `caption`."""
            driver.execute_script(f"document.getElementById('{table}-rows').replaceChildren(); document.getElementById('{table}-caption').textContent = ''")
            driver.find_element(By.CSS_SELECTOR, f"#{form}-form button[type=submit]").click()
            # textContent, not the rendered text: the caption is hidden when the list is empty, and rendering folds spaces.
            wait.until(lambda d: d.execute_script(f"return document.getElementById('{table}-caption').textContent") == caption)
            rows = driver.find_elements(By.CSS_SELECTOR, f"#{table}-rows tr")
            return sorted((r.find_elements(By.TAG_NAME, "td")[1].text, r.find_elements(By.TAG_NAME, "td")[3].text) for r in rows)

        def listed(user):
            """(name, status) of every token the page lists for `user`."""
            fill("list-user", user)
            Select(driver.find_element(By.ID, "list-status")).select_by_value("all")
            return submitted_rows("list", "token", f"Tokens of {user} (all)")

        for index, user in enumerate(tricky):
            create(user, f"token {index}")
        for index, user in enumerate(tricky):
            assert listed(user) == [(f"token {index}", "active")], (user, listed(user))
        step("users " + ", ".join(repr(u) for u in tricky) + " each list exactly their own token")

        # Revoke the token of "a b" from its list; "a+b" and "a%20b" keep theirs.
        listed("a b")
        row = driver.find_element(By.CSS_SELECTOR, "#token-rows tr")
        row.find_element(By.XPATH, ".//button[text()='Revoke']").click()
        wait.until(EC.alert_is_present())
        driver.switch_to.alert.accept()
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#token-rows tr td:nth-child(4)"), "revoked"))
        assert listed("a b") == [("token 0", "revoked")], listed("a b")
        assert listed("a+b") == [("token 1", "active")], listed("a+b")
        assert listed("a%20b") == [("token 4", "active")], listed("a%20b")
        step("revoking the token of 'a b' leaves those of 'a+b' and 'a%20b' active")

        # Rotate the token of "50% & #1": the new token is listed under that user, the old one expired.
        listed("50% & #1")
        row = driver.find_element(By.CSS_SELECTOR, "#token-rows tr")
        row.find_element(By.XPATH, ".//button[text()='Rotate']").click()
        wait.until(EC.visibility_of_element_located((By.ID, "rotate-dialog")))
        driver.find_element(By.CSS_SELECTOR, "#rotate-form button[value=rotate]").click()
        wait.until(EC.visibility_of_element_located((By.ID, "secret-value")))
        driver.find_element(By.ID, "dismiss-secret").click()
        assert listed("50% & #1") == [("token 2", "active"), ("token 2", "expired")], listed("50% & #1")
        for other in ["50", "50%", "50% "]:
            assert listed(other) == [], (other, listed(other))
        step("rotating the token of '50% & #1' keeps both tokens under exactly that user")

        # Revoke every active token of "a+b" at once (with a second one made for it); "a%20b" keeps its token.
        create("a+b", "token 5")
        listed("a+b")
        driver.find_element(By.ID, "revoke-all").click()
        wait.until(EC.alert_is_present())
        assert "every active token of a+b" in driver.switch_to.alert.text, driver.switch_to.alert.text
        driver.switch_to.alert.accept()
        wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "Revoked 2 active tokens of a+b"))
        assert listed("a+b") == [("token 1", "revoked"), ("token 5", "revoked")], listed("a+b")
        assert listed("a%20b") == [("token 4", "active")], listed("a%20b")
        step("revoking all of 'a+b''s tokens revokes exactly those two")

        # A token with restrictions and data made in the page's optional fields; paused and resumed from its row.
        fill("create-user", "policy-user")
        fill("create-scopes", "read")
        fill("create-name", "restricted")
        driver.find_element(By.CSS_SELECTOR, "#create-form summary").click()
        fill("create-audiences", "admin")
        fill("create-cidrs", "203.0.113.0/24")
        fill("create-meta", '{"plan": "pro"}')
        fill("create-rate-limit", "100/60s")
        driver.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
        restricted = wait.until(EC.visibility_of_element_located((By.ID, "secret-value"))).get_attribute("value")
        driver.find_element(By.ID, "dismiss-secret").click()
        for field in ["create-audiences", "create-cidrs", "create-meta", "create-rate-limit"]:
            driver.find_element(By.ID, field).clear()
        def verify(token, client_ip):
            """The verify answer for `token` from `client_ip`, asked from inside the page (same origin)."""
            return driver.execute_async_script(
                """const [key, token, clientIp, done] = arguments;
                fetch('/api/tokens/verify', {method: 'POST', headers: {'X-API-Key': key, 'Content-Type': 'application/json'},
                    body: JSON.stringify({token, clientIp})}).then(r => r.json()).then(done);""", args.key, token, client_ip)

        inside, outside = verify(restricted, "203.0.113.5"), verify(restricted, "198.51.100.1")
        assert inside.get("active") is True and inside.get("meta") == {"plan": "pro"}, inside
        assert inside.get("rateLimit", {}).get("limit") == 100, inside
        assert outside.get("code") == "IP_NOT_ALLOWED", outside
        step("a token made with audiences, networks, data and a rate limit from the page verifies inside its network only")

        # A usage-limited token with a daily refill, made in the page.
        fill("create-user", "uses-user")
        fill("create-name", "counted")
        fill("create-max-uses", "10")
        Select(driver.find_element(By.ID, "create-refill-every")).select_by_value("day")
        fill("create-refill-amount", "4")
        driver.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
        counted = wait.until(EC.visibility_of_element_located((By.ID, "secret-value"))).get_attribute("value")
        driver.find_element(By.ID, "dismiss-secret").click()
        for field in ["create-max-uses", "create-refill-amount"]:
            driver.find_element(By.ID, field).clear()
        Select(driver.find_element(By.ID, "create-refill-every")).select_by_value("")
        answer = verify(counted, None)
        assert answer.get("active") is True and answer.get("remaining") == 9, answer
        step("a token made with most uses and a daily refill from the page counts its uses")

        assert listed("policy-user") == [("restricted", "active")], listed("policy-user")
        driver.find_element(By.XPATH, "//tbody[@id='token-rows']//button[text()='Pause']").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "is paused"))
        assert listed("policy-user") == [("restricted", "paused")], listed("policy-user")
        driver.find_element(By.XPATH, "//tbody[@id='token-rows']//button[text()='Resume']").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "is resumed"))
        assert listed("policy-user") == [("restricted", "active")], listed("policy-user")
        step("pausing a token from its row shows it paused; resuming makes it active again")

        # Edit it: a new name, no networks, a usage limit; the API then shows exactly that.
        driver.find_element(By.XPATH, "//tbody[@id='token-rows']//button[text()='Edit']").click()
        wait.until(EC.visibility_of_element_located((By.ID, "edit-dialog")))
        assert driver.find_element(By.ID, "edit-cidrs").get_attribute("value") == "203.0.113.0/24"
        assert driver.find_element(By.ID, "edit-meta").get_attribute("value") == '{"plan":"pro"}'
        fill("edit-name", "edited")
        driver.find_element(By.ID, "edit-cidrs").clear()
        fill("edit-max-uses", "3")
        driver.find_element(By.CSS_SELECTOR, "#edit-form button[value=save]").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "is updated"))
        assert listed("policy-user") == [("edited", "active")], listed("policy-user")
        after = verify(restricted, "198.51.100.1")
        assert after.get("active") is True and after.get("remaining") == 2 and after.get("meta") == {"plan": "pro"}, after
        step("editing a token from its row renames it, lifts its networks and limits its uses")

        # Edit it again: narrower scopes, an earlier expiry, a daily refill and a tighter rate limit.
        def metadata(user):
            return driver.execute_async_script(
                """const [key, user, done] = arguments;
                fetch('/api/tokens?userId=' + encodeURIComponent(user), {headers: {'X-API-Key': key}}).then(r => r.json()).then(done);""",
                args.key, user)["tokens"][0]

        before = metadata("policy-user")
        driver.find_element(By.XPATH, "//tbody[@id='token-rows']//button[text()='Edit']").click()
        wait.until(EC.visibility_of_element_located((By.ID, "edit-dialog")))
        assert driver.find_element(By.ID, "edit-rate-limit").get_attribute("value") == "100/60s"
        assert driver.find_element(By.ID, "edit-scopes").get_attribute("value") == "read"
        driver.find_element(By.ID, "edit-scopes").clear()
        driver.execute_script("document.getElementById('edit-expires').value = localDateTime(new Date(Date.now() + 30 * 60000))")
        Select(driver.find_element(By.ID, "edit-refill-every")).select_by_value("day")
        fill("edit-refill-amount", "3")
        fill("edit-rate-limit", "1/3600s")
        driver.find_element(By.CSS_SELECTOR, "#edit-form button[value=save]").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "is updated"))
        edited = metadata("policy-user")
        assert edited["scopes"] == [] and edited["refill"] == {"amount": 3, "every": "day"} and edited["rateLimit"] == "1/3600s", edited
        assert edited["expiresAt"] < before["expiresAt"], (edited["expiresAt"], before["expiresAt"])
        first, second = verify(restricted, None), verify(restricted, None)
        assert first.get("active") is True and first.get("rateLimit", {}).get("remaining") == 0, first
        assert second.get("code") == "RATE_LIMITED", second
        step("editing a token's scopes, expiry, refill and rate limit from its row takes effect at once")

        # The audit filter shows exactly one user's events.
        def audited(user):
            """(action, user) of every event the audit section shows for `user`."""
            fill("audit-user", user)
            return submitted_rows("audit", "audit", f"Latest audit events for {user}")

        assert audited("a b") == [("token.create", "a b"), ("token.revoke", "a b")], audited("a b")
        assert audited("a+b") == [("token.create", "a+b"), ("token.create", "a+b"), ("tokens.revoke", "a+b")], audited("a+b")
        assert audited("ünïcode 名前") == [("token.create", "ünïcode 名前")], audited("ünïcode 名前")
        assert audited("50% & #1") == [("token.create", "50% & #1"), ("token.create", "50% & #1"), ("token.rotate", "50% & #1")], audited("50% & #1")
        step("the audit filter shows exactly the events of the user typed")

        # GitHub reports a token of "leak-user" found in a public repository: the page then lists it revoked, and the
        # audit section shows who revoked it and where it leaked.
        create("leak-user", "kept")  # another token of the same user, which must stay active
        fill("create-user", "leak-user")
        fill("create-name", "leaked")
        driver.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
        leaked = wait.until(EC.visibility_of_element_located((By.ID, "secret-value"))).get_attribute("value")
        driver.find_element(By.ID, "dismiss-secret").click()
        report = json.dumps([{"token": leaked, "type": "tessera_token", "url": "https://github.com/o/r/blob/1/.env", "source": "content"}]).encode()
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", args.github_key], input=report, capture_output=True, check=True).stdout
        request = urllib.request.Request(args.url + "api/secret-scanning/github", data=report, method="POST", headers={
            "Content-Type": "application/json", "Github-Public-Key-Identifier": "browser-test",
            "Github-Public-Key-Signature": base64.b64encode(signature).decode()})
        labels = json.load(urllib.request.urlopen(request))
        assert [label["label"] for label in labels] == ["true_positive"], labels
        assert sorted(status for _, status in listed("leak-user")) == ["active", "revoked"], listed("leak-user")
        fill("audit-user", "leak-user")
        driver.execute_script("document.getElementById('audit-rows').replaceChildren(); document.getElementById('audit-caption').textContent = ''")
        driver.find_element(By.CSS_SELECTOR, "#audit-form button[type=submit]").click()
        wait.until(lambda d: d.execute_script("return document.getElementById('audit-caption').textContent") == "Latest audit events for leak-user")
        rows = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in driver.find_elements(By.CSS_SELECTOR, "#audit-rows tr")]
        revocations = [row for row in rows if row[1] == "token.revoke"]
        assert len(revocations) == 1 and revocations[0][2] == "secret-scanning:github", rows
        assert "url: https://github.com/o/r/blob/1/.env" in revocations[0][5], revocations
        step("a token GitHub reports leaked is revoked, and the audit section shows it with the reporter and the URL")

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
    except Exception as error:  # report and fail, saying where
        print(f"browser test failed: {error!r}\n{traceback.format_exc()}")
        sys.exit(1)
