#!/usr/bin/env python3
"""Drives the operator console of a running `kliq-webhooks serve` in headless Chromium (selenium),
as an operator would: the overview's counters update without a reload, the events filter, an event's
attempts, a job's detections as SVG boxes, a confirmed bulk re-drive of dead letters, a single re-drive,
and script-bearing payloads that must not run. With --screenshots DIR it saves a picture of each page.

    python3 Tests/Browser/console_browser.py PATH/TO/kliq-webhooks [--screenshots DIR]

Prints one line per check and "N checks, 0 failed" at the end; exits 1 when any failed.
Talks only to 127.0.0.1 and stops serve (and Chromium) when it ends.
"""
import hashlib, hmac, json, os, re, shutil, subprocess, sys, tempfile, time, urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SECRET = "whsec_browser_test"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = "<script>window.__xss=1</script>"
IMG = '"><img src=x onerror="window.__xss=2">'
checks, failed = 0, 0


def check(ok, what):
    global checks, failed
    checks += 1
    if not ok:
        failed += 1
    print(("ok   " if ok else "FAIL ") + what, flush=True)


def deliver(port, body):
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/kliq", data=body, method="POST",
                                     headers={"X-Kliq-Signature": signature, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def visit(event_id, note="v"):
    return json.dumps({"id": event_id, "type": "visit.submitted", "tenantId": "t_1", "timestamp": "2026-04-28T12:00:00Z",
                       "data": {"visitId": event_id, "note": note}}).encode()


def hostile_job():
    return json.dumps({"id": "evt_xss_job", "type": "cv.job.completed", "tenantId": "t_1", "timestamp": "2026-04-28T12:00:00Z",
                       "data": {"jobId": "job_xss", "status": "completed", "model": "shelf-detection-v2",
                                "result": {"detections": [{"objectName": SCRIPT, "confidence": 0.9,
                                                           "boundingBox": {"x": 10, "y": 20, "width": 30, "height": 40},
                                                           "attributes": {"priceTag": IMG}}],
                                           "summary": {"note": SCRIPT}}}}).encode()


def wait(predicate, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            pass
        time.sleep(0.1)
    return False


def main():
    binary = os.path.abspath(sys.argv[1])
    screenshots = sys.argv[sys.argv.index("--screenshots") + 1] if "--screenshots" in sys.argv else None
    work = tempfile.mkdtemp(prefix="kliq-browser-")
    ok_file = os.path.join(work, "handlers-ok")
    # Visits fail (and, with one attempt, are dead at once) until the test creates ok_file.
    command = f'cat > /dev/null; test "$KLIQ_EVENT_TYPE" != visit.submitted || test -e "{ok_file}"'
    serve = subprocess.Popen([binary, "serve", "--port", "0", "--data-dir", os.path.join(work, "data"), "--metrics-port", "off",
                              "--admin-port", "0", "--exec", command, "--retry-attempts", "1"],
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KLIQ_WEBHOOK_SECRET": SECRET},
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=work)
    driver = None
    try:
        lines = [serve.stdout.readline() for _ in range(2)]
        port = int(re.search(r"listening on http://127\.0\.0\.1:(\d+)/", lines[0]).group(1))
        console = re.search(r"console at (http://127\.0\.0\.1:\d+)/", lines[1]).group(1)

        shelf = open(os.path.join(REPO, "Fixtures", "cv.job.completed.shelf-detection-v2.json"), "rb").read()
        for body in [shelf, visit("evt_visit_a"), visit("evt_visit_b"), visit("evt_visit_c", note=SCRIPT + IMG), hostile_job()]:
            assert deliver(port, body) == 200

        options = Options()
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"]:
            options.add_argument(argument)
        chromium = shutil.which("chromium")
        if chromium:
            options.binary_location = chromium
        driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
        driver.set_page_load_timeout(20)

        def shot(name):
            if screenshots:
                os.makedirs(screenshots, exist_ok=True)
                driver.save_screenshot(os.path.join(screenshots, f"console-{name}.png"))

        # Overview: the counters change without a reload.
        driver.get(console + "/")
        driver.execute_script("window.__sameDocument = true")
        accepted = lambda: driver.find_element(By.CSS_SELECTOR, '[data-stat="accepted"]').text
        check(accepted() == "5", f"overview shows 5 accepted (shows {accepted()})")
        check(wait(lambda: driver.find_element(By.CSS_SELECTOR, '[data-stat="dead"]').text == "3"), "overview shows the 3 dead visits")
        assert deliver(port, visit("evt_visit_d")) == 200
        check(wait(lambda: accepted() == "6", timeout=8), "the accepted counter updates within 5 s")
        check(driver.execute_script("return window.__sameDocument === true"), "...without reloading the page")
        shot("overview")

        # Events, filtered by type through the form.
        driver.get(console + "/events")
        field = driver.find_element(By.NAME, "type")
        field.send_keys("cv.job.completed")
        field.submit()
        WebDriverWait(driver, 10).until(lambda d: "type=cv.job.completed" in d.current_url)
        ids = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.events tbody a[href^='/events/']")]
        check(sorted(ids) == ["evt_shelf_0001", "evt_xss_job"], f"the type filter lists the two job events ({ids})")
        shot("events")

        # An event, opened from the list: its body, its handler's attempts.
        driver.find_element(By.LINK_TEXT, "evt_shelf_0001").click()
        WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith("/events/evt_shelf_0001"))
        check("Coca-Cola 330ml" in driver.find_element(By.CSS_SELECTOR, "pre.body").text, "the event page shows the body")
        check(len(shelf) == int(re.search(r"(\d+) bytes", driver.page_source).group(1)), "...and its byte count")

        # A job's detections, as boxes.
        driver.get(console + "/jobs/job_shelf_0001")
        boxes = driver.find_elements(By.CSS_SELECTOR, "svg.frame rect.detection")
        labels = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "svg.frame text.label")]
        check(len(boxes) == 4, f"the job shows its 4 detections as boxes ({len(boxes)})")
        check("Coca-Cola 330ml" in labels, f"...labelled with their objectName ({labels})")
        shot("job")
        driver.get(console + "/jobs")
        shot("jobs")

        # Payloads that carry scripts: shown as text, never run.
        for path in ["/events/evt_visit_c", "/jobs/job_xss", "/events?jobId=job_xss", "/dead"]:
            driver.get(console + path)
            time.sleep(0.3)
            check(driver.execute_script("return window.__xss === undefined"), f"no script from the payload ran on {path}")
        driver.get(console + "/jobs/job_xss")
        check(SCRIPT in driver.find_element(By.CSS_SELECTOR, "svg.frame text.label").text, "the script-bearing name shows as text")

        # One event re-driven from its page.
        driver.get(console + "/events/evt_visit_a")
        shot("event")
        open(ok_file, "w").close()
        driver.find_element(By.CSS_SELECTOR, "[data-redrive]").click()
        check(wait(lambda: "Re-driven" in driver.find_element(By.CSS_SELECTOR, "output.result").text), "the re-drive button re-drives the event")
        check(wait(lambda: "succeeded" in urllib.request.urlopen(console + "/api/events/evt_visit_a").read().decode()), "...and its handler succeeds")

        # Dead letters: the bulk re-drive shows the count and asks to confirm it.
        driver.get(console + "/dead")
        shot("dead")
        count = driver.find_element(By.CSS_SELECTOR, "[data-dead-count]").text
        check(count == "3", f"three dead letters are left ({count})")
        driver.find_element(By.CSS_SELECTOR, "[data-bulk-redrive]").click()
        alert = WebDriverWait(driver, 5).until(lambda d: d.switch_to.alert)
        check("Re-drive 3 dead events?" in alert.text, f"the confirmation names the count ({alert.text!r})")
        alert.accept()
        check(wait(lambda: "Re-driven: 3" in driver.find_element(By.CSS_SELECTOR, "output.result").text), "the bulk re-drive re-drives the 3")
        check(wait(lambda: json.loads(urllib.request.urlopen(console + "/api/stats").read())["dead"] == 0), "...and none is dead after")
    finally:
        if driver:
            driver.quit()
        serve.terminate()
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{checks} checks, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
