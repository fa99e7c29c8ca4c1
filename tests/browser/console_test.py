#!/usr/bin/python3
"""Browser test of berth's web console (Selenium + headless Chromium).

Run by the C++ test that starts berthd (as `make run` does) and pushes the test images:

    /usr/bin/python3 tests/browser/console_test.py

Environment (all required unless noted):
  BERTH_URL                  berthd's API address, e.g. http://127.0.0.1:41234
  BERTH_ADMIN_KEY_ID, BERTH_ADMIN_SECRET
  BERTH_VIEWER_KEY_ID, BERTH_VIEWER_SECRET   a user allowed only reads
  BERTH_APP_IMAGE            web/app:v1 (logs a line with console-test-hello at start and per request)
  BERTH_ARM_IMAGE            web/app:arm64 (its deploy fails naming linux/arm64)
  BERTH_ROUTER_URL           the router; the service answers there at Host web.localhost
  BERTH_SCREENSHOT_DIR       optional: one PNG per page is written there

Prints one line per step; exits 1 with the reason at the first failure (and writes
failure.png and the browser's console log next to the screenshots).
"""

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                        TimeoutException, WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SHORT = 10  # seconds: page loads, forms
LONG = 60  # seconds: deployments

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


state = {}  # what one step leaves for a later one


class Failure(Exception):
    pass


def env(name, default=None):
    v = os.environ.get(name, default)
    if v is None:
        raise Failure(f"environment variable {name} is not set")
    return v


class Console:
    """The browser and the helpers every step uses."""

    def __init__(self):
        self.base = env("BERTH_URL").rstrip("/")
        self.shots = os.environ.get("BERTH_SCREENSHOT_DIR", "")
        if self.shots:
            os.makedirs(self.shots, exist_ok=True)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800",
                  "--disable-gpu", "--force-prefers-reduced-motion"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=opts)
        self.d.set_window_size(1280, 800)
        self.step_no = 0

    # ----- reporting -----

    def step(self, text):
        self.step_no += 1
        print(f"[{self.step_no:02d}] {text}", flush=True)

    def ok(self, text):
        print(f"     ok: {text}", flush=True)

    def shot(self, name):
        if not self.shots:
            return
        # Let charts and fonts settle: wait until nothing is loading.
        self.wait(lambda d: not self.visible_all("[data-test=loading]"), SHORT, "the page to finish loading")
        path = os.path.join(self.shots, name)
        self.d.execute_script("window.scrollTo(0, 0)")
        self.d.save_screenshot(path)
        self.ok(f"screenshot {path}")

    # ----- finding and waiting -----

    def wait(self, cond, timeout, what):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.2,
                                 ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                                 ).until(lambda d: cond(d))
        except TimeoutException:
            raise Failure(f"timed out after {timeout}s waiting for {what} (at {self.d.current_url})"
                          + self.page_errors()) from None

    def css(self, sel):
        return self.d.find_element(By.CSS_SELECTOR, sel)

    def all(self, sel):
        return self.d.find_elements(By.CSS_SELECTOR, sel)

    def visible_all(self, sel):
        return [e for e in self.all(sel) if e.is_displayed()]

    def wait_css(self, sel, timeout=SHORT):
        return self.wait(lambda d: (self.visible_all(sel) or [None])[0], timeout, f"element {sel}")

    def wait_text(self, sel, text, timeout=SHORT):
        def cond(d):
            for e in self.all(sel):
                if text in e.text:
                    return e
            return None
        return self.wait(cond, timeout, f"{sel} to contain {text!r}")

    def click(self, sel, timeout=SHORT):
        def attempt(d):
            el = next((e for e in self.visible_all(sel) if e.is_enabled()), None)
            if el is None:
                return None
            # A live page may redraw between finding and clicking: then find it again.
            self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
            el.click()
            return el
        return self.wait(attempt, timeout, f"enabled {sel} to click")

    def type(self, sel, value):
        def attempt(d):
            el = (self.visible_all(sel) or [None])[0]
            if el is None:
                return None
            el.clear()
            el.send_keys(value)
            return el
        return self.wait(attempt, SHORT, f"{sel} to type into")

    def go(self, path):
        self.d.get(self.base + path)

    def heading(self, text, timeout=SHORT):
        self.wait_text("main h1, h1", text, timeout)
        self.ok(f"heading {text!r}")

    def page_errors(self):
        try:
            errs = [e.text for e in self.visible_all("[data-test=error]")]
        except WebDriverException:
            return ""
        return ("; error boxes on the page: " + " | ".join(errs)) if errs else ""

    def no_error_box(self):
        errs = self.visible_all("[data-test=error]")
        if errs:
            raise Failure("error box on " + self.d.current_url + ": " + " | ".join(e.text for e in errs))

    def confirm(self, expect_text):
        """Accepts the in-page confirmation dialog after checking that it names the action."""
        dlg = self.wait_css("dialog[data-test=confirm-dialog]")
        body = dlg.find_element(By.CSS_SELECTOR, "[data-test=confirm-text]").text
        if expect_text not in body:
            raise Failure(f"the confirmation says {body!r}, expected it to mention {expect_text!r}")
        self.ok(f"confirmation: {body}")
        dlg.find_element(By.CSS_SELECTOR, "[data-test=confirm-ok]").click()
        self.wait(lambda d: not self.all("dialog[data-test=confirm-dialog]"), SHORT, "the dialog to close")

    def sign_in(self, key_id, secret, expect_principal):
        self.go("/console/login")
        self.type("[data-test=login-key-id]", key_id)
        self.type("[data-test=login-secret]", secret)
        self.click("[data-test=login-submit]")
        self.heading("Overview")
        self.wait_text("[data-test=principal]", expect_principal)
        self.ok(f"signed in as {expect_principal}")

    def sign_out(self):
        self.click("[data-test=sign-out]")
        self.wait(lambda d: "/console/login" in d.current_url, SHORT, "the login page after signing out")
        self.go("/console/")
        self.wait(lambda d: "/console/login" in d.current_url, SHORT, "/console/ to go to the login page")
        self.wait_css("[data-test=login-form]")
        self.ok("signed out; /console/ goes to the login page")

    def quit(self):
        try:
            self.d.quit()
        except WebDriverException:
            pass


def http(method, url, body=None, headers=None, auth=None):
    """A request outside the browser: (status, headers, body bytes). Never raises on HTTP errors."""
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=SHORT) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# ---------------------------------------------------------------- the steps

def check_static(c):
    c.step("static files: / redirects to /console/, files carry the CSP, deep links get index.html")
    st, hd, _ = http("GET", c.base + "/")
    if st not in (301, 302, 303, 307, 308) or not hd.get("Location", "").endswith("/console/"):
        raise Failure(f"GET / answered {st} Location={hd.get('Location')!r}, expected a redirect to /console/")
    for path in ("/console/", "/console/app.js", "/console/services/web"):
        st, hd, body = http("GET", c.base + path)
        if st != 200:
            raise Failure(f"GET {path} answered {st}")
        if hd.get("Content-Security-Policy", "") != CSP:
            raise Failure(f"GET {path}: Content-Security-Policy is {hd.get('Content-Security-Policy')!r}")
        if path.endswith("/web") and b'id="app"' not in body:
            raise Failure("GET /console/services/web is not index.html")
    c.ok("redirect, CSP and history routing")


def login(c):
    c.step("sign in with the admin key (from a deep link: the login page brings us back)")
    c.go("/console/images")
    c.wait(lambda d: "/console/login" in d.current_url, SHORT, "the login page")
    c.wait_css("[data-test=login-form]")
    c.shot("login.png")
    c.type("[data-test=login-key-id]", env("BERTH_ADMIN_KEY_ID"))
    c.type("[data-test=login-secret]", "wrong-secret")
    c.click("[data-test=login-submit]")
    c.wait_css("[data-test=error]")
    c.ok("a wrong secret shows the server's sentence: " + c.css("[data-test=error]").text)
    c.type("[data-test=login-secret]", env("BERTH_ADMIN_SECRET"))
    c.click("[data-test=login-submit]")
    c.heading("Images")
    c.wait_text("[data-test=principal]", "user/admin")
    cookies = c.d.get_cookies()
    if not cookies or not all(ck.get("httpOnly") for ck in cookies):
        raise Failure(f"the session cookie is not HttpOnly: {cookies}")
    if c.d.execute_script("return document.cookie") != "":
        raise Failure("JS can read a cookie: " + c.d.execute_script("return document.cookie"))
    c.ok("signed in as user/admin; the session cookie is HttpOnly")


def images(c):
    c.step("Images lists web/app with both tags")
    repo = env("BERTH_APP_IMAGE").split(":")[0]
    tags = [env("BERTH_APP_IMAGE").split(":")[1], env("BERTH_ARM_IMAGE").split(":")[1]]
    c.click("[data-test=nav-images]")
    c.heading("Images")
    c.wait_css(f"[data-test=repo-row][data-name='{repo}']")
    c.click(f"[data-test=repo-row][data-name='{repo}'] a")
    c.heading(repo)
    for t in tags:
        c.wait_text("[data-test=tag]", t)
    pulls = [e.text for e in c.all("[data-test=pull-command]")]
    host = c.base.split("//", 1)[1]
    if not any(p.startswith(f"docker pull {host}/{repo}:") for p in pulls):
        raise Failure(f"no docker pull command for {host}/{repo}: {pulls}")
    c.no_error_box()
    c.ok(f"{repo} has tags {', '.join(tags)}; pull command {pulls[0]!r}")
    c.shot("images.png")


def create_service(c):
    c.step("create service web from the app image, and watch it become running live")
    c.go("/console/services/new")
    c.heading("Create service")
    c.type("[data-test=service-name]", "web")
    c.type("[data-test=service-image]", env("BERTH_APP_IMAGE"))
    c.click("[data-test=create-service]")
    c.wait(lambda d: d.current_url.endswith("/console/services/web"), SHORT, "the service page")
    c.heading("web")
    c.d.execute_script("window.__berthNoReload = 'still here'")
    c.wait_text("[data-test=service-status]", "running", LONG)
    if c.d.execute_script("return window.__berthNoReload") != "still here":
        raise Failure("the page reloaded; the status should arrive live")
    c.wait_css("[data-test=instance]")
    c.wait_text("[data-test=deployment][data-status=SUCCEEDED]", "create")
    c.no_error_box()
    c.ok("status became running without a reload; deployment 1 SUCCEEDED; an instance is listed")


def logs(c):
    c.step("Logs show console-test-hello, and a request's line arrives live")
    c.click("[data-test=logs-link]")
    c.heading("Logs of web")
    c.wait_text("[data-test=log-pane]", "console-test-hello", 30)
    count = lambda: sum(1 for e in c.all("[data-test=log-line]")  # noqa: E731
                        if "console-test-hello" in (e.get_attribute("data-text") or ""))
    before = count()
    st, _, body = http("GET", env("BERTH_ROUTER_URL").rstrip("/") + "/", headers={"Host": "web.localhost"})
    if st != 200:
        raise Failure(f"the router answered {st} for Host web.localhost: {body[:200]!r}")
    c.wait(lambda d: count() > before, 30, "a new console-test-hello line after the request")
    c.ok(f"{before} hello line(s), then {count()} after one request through the router")
    c.click("[data-test=logs-pause]")
    c.wait_text("[data-test=live-state]", "paused")
    c.click("[data-test=logs-pause]")
    c.type("[data-test=logs-filter]", "console-test-hello")
    c.shot("logs.png")


def edit_env(c):
    c.step("set an env variable and a secret from the service page (a second revision)")
    c.go("/console/services/web")
    c.heading("web")
    c.wait_text("[data-test=service-status]", "running")
    n0 = len(c.all("[data-test=deployment]"))
    c.click("[data-test=env-add]")
    c.all("[data-test=env-name]")[-1].send_keys("GREETING")
    c.all("[data-test=env-value]")[-1].send_keys("hello")
    c.click("[data-test=secret-add]")
    c.all("[data-test=env-name]")[-1].send_keys("API_TOKEN")
    c.all("[data-test=env-value]")[-1].send_keys("s3cr3t-console")
    c.click("[data-test=env-save]")
    c.confirm("Change the environment of service web")
    c.wait(lambda d: len(c.all("[data-test=deployment]")) > n0, SHORT, "a new deployment in the timeline")
    c.wait(lambda d: c.all("[data-test=deployment]")[0].get_attribute("data-status") == "SUCCEEDED", LONG,
           "the update's deployment to succeed")
    c.wait_text("[data-test=spec]", "GREETING=hello")
    c.wait_text("[data-test=spec]", "API_TOKEN (set)")
    if "s3cr3t-console" in c.css("[data-test=spec]").text:
        raise Failure("the secret value is shown in the configuration")
    c.ok("revision 2 serves; the secret shows as set, never its value")


def deploy_arm(c):
    c.step("deploy the arm64 image and read the failure reason in the timeline")
    arm = env("BERTH_ARM_IMAGE")
    c.type("[data-test=deploy-image]", arm)
    c.click("[data-test=deploy-button]")
    c.confirm(f"Deploy {arm} to service web")
    item = c.wait(lambda d: next((e for e in c.all("[data-test=deployment]")[:1]
                                  if e.get_attribute("data-status") == "FAILED"), None), LONG,
                  "the arm64 deployment to fail")
    if "linux/arm64" not in item.text:
        raise Failure(f"the failed deployment does not name linux/arm64: {item.text!r}")
    c.ok("FAILED: " + item.find_element(By.CSS_SELECTOR, "[data-test=deployment-reason]").text)
    c.wait_text("[data-test=service-status]", "running")
    c.ok("the previous revision keeps serving")


def rollback(c):
    c.step("roll back, and see running again")
    c.click("[data-test=rollback-button]")
    c.confirm("Roll back service web to revision")
    c.wait(lambda d: (lambda first: first.get_attribute("data-status") == "SUCCEEDED" and "rollback" in first.text)(
        c.all("[data-test=deployment]")[0]), LONG, "the rollback deployment to succeed")
    c.wait_text("[data-test=service-status]", "running")
    c.no_error_box()
    c.ok("rollback SUCCEEDED; web is running")
    c.shot("service.png")


def overview(c):
    c.step("Overview lists web with its status")
    c.click("[data-test=nav-overview]")
    c.heading("Overview")
    row = c.wait_css("[data-test=service-row][data-name=web]")
    c.wait(lambda d: "running" in row.text, SHORT, "web to show running on the overview")
    c.no_error_box()
    c.shot("overview.png")


def iam(c):
    c.step("IAM: create user ops and a key; its secret is shown once")
    c.click("[data-test=nav-iam]")
    c.heading("IAM")
    c.type("[data-test=user-name]", "ops")
    c.click("[data-test=user-create]")
    c.click("[data-test=user-row][data-name=ops] [data-test=user-link]")
    c.heading("User ops")
    c.wait_text("[data-test=empty]", "No access keys")
    c.click("[data-test=key-create]")
    secret = c.wait_css("[data-test=secret-value]").text
    key_id = c.css("[data-test=key-id-value]").text
    if len(secret) != 40 or not key_id.startswith("BK"):
        raise Failure(f"unexpected key {key_id!r} / secret of {len(secret)} characters")
    c.wait_css(f"[data-test=key-row][data-id='{key_id}']")
    c.ok(f"key {key_id} created; its secret is on the page once")
    c.click("[data-test=nav-iam]")
    c.heading("IAM")
    c.click("[data-test=user-row][data-name=ops] [data-test=user-link]")
    c.wait_css(f"[data-test=key-row][data-id='{key_id}']")
    if c.all("[data-test=secret-value]") or secret in c.d.page_source:
        raise Failure("the secret is shown again after navigating away and back")
    c.ok("after navigating away and back, the secret is gone")
    c.click("[data-test=nav-iam]")
    c.heading("IAM")
    c.wait_text("[data-test=policy-validation]", "Valid")
    c.type("[data-test=policy-json]", '{"Version":"2012-10-17","Statement":[{"Effect":"Maybe"}]}')
    c.wait_text("[data-test=policy-validation]", "Effect")
    c.ok("the policy editor flags an invalid Effect as you type")
    c.shot("iam.png")


def simple_pages(c):
    for nav, title, shot in (("dns", "DNS", "dns.png"), ("domains", "Domains", "domains.png"),
                             ("builds", "Builds", "builds.png"), ("audit", "Audit", "audit.png")):
        c.step(f"{title} page")
        c.click(f"[data-test=nav-{nav}]")
        c.heading(title)
        c.wait(lambda d: not c.visible_all("[data-test=loading]"), SHORT, "the page to load")
        c.no_error_box()
        if c.visible_all("[data-test=unavailable]"):
            c.ok("not available here: " + c.visible_all("[data-test=unavailable]")[0].text.replace("\n", " "))
        if nav == "dns" and c.visible_all("[data-test=zone-create]"):
            dns_zone(c)  # takes dns.png on the zone's page
            c.click("[data-test=nav-dns]")
            c.heading("DNS")
            c.wait_css("[data-test=zone-row]")
            continue
        if nav == "domains" and c.visible_all("[data-test=domain-link]") and state.get("zone"):
            c.type("[data-test=domain-service]", "web")
            c.type("[data-test=domain-name]", state["zone"])
            c.click("[data-test=domain-link]")
            c.wait_text(f"[data-test=domain-row][data-name='{state['zone']}'] [data-test=domain-status]", "ACTIVE", 30)
            c.ok(f"{state['zone']} linked to web: ACTIVE")
        if nav == "builds" and c.visible_all("[data-test=project-create]"):
            builds(c)
            c.click("[data-test=nav-builds]")
            c.heading("Builds")
            c.wait_css("[data-test=project-row]")
        if nav == "audit":
            c.wait_text("[data-test=audit]", "service:Deploy")
            c.ok("the audit log lists the deploys made above")
        c.shot(shot)


def builds(c):
    c.type("[data-test=project-name]", "web-build")
    c.type("[data-test=project-repo]", env("BERTH_APP_IMAGE").split(":")[0])
    c.click("[data-test=project-create]")
    secret = c.wait_css("[data-test=secret-once] [data-test=secret-value]").text
    if len(secret) < 32:
        raise Failure(f"the webhook secret shown is {secret!r}")
    c.wait_text("[data-test=project-row][data-name=web-build] [data-test=webhook-url]", "/hooks/github/web-build")
    c.ok("project web-build created; its webhook secret is shown once")
    # Nothing was pushed to its git remote yet: the build fails at SOURCE, and the page shows
    # its log live until the `end` event.
    c.click("[data-test=project-row][data-name=web-build] [data-test=start-build]")
    c.wait(lambda d: "/console/builds/" in d.current_url, SHORT, "the build page")
    c.wait_text("[data-test=live-state]", "ended", 30)
    c.wait_text("[data-test=build-log]", "==> SOURCE")
    status = c.css("[data-test=build-status]").text
    if status not in ("FAILED", "SUCCEEDED"):
        raise Failure(f"the build ended but shows {status}")
    c.ok(f"build log streamed until the end: {status}")


def dns_zone(c):
    c.type("[data-test=zone-name]", "console.test")
    c.click("[data-test=zone-create]")
    c.click("[data-test=zone-row][data-name='console.test'] a")
    c.heading("console.test")
    c.type("[data-test=record-name]", "www")
    c.type("[data-test=record-values]", "127.0.0.2")
    c.click("[data-test=batch-add]")
    c.wait_text("[data-test=batch-validation]", "well-formed")
    c.click("[data-test=batch-preview]")
    c.wait_text("[data-test=batch-diff]", "+ www.console.test.")
    c.click("[data-test=batch-apply]")
    c.wait_css("[data-test=record-row][data-name='www.console.test.'][data-type=A]")
    c.no_error_box()
    c.shot("dns.png")
    c.ok("zone console.test created; a change batch previewed as a diff and applied")
    state["zone"] = "console.test"


def mobile(c):
    c.step("a 390px-wide phone: the nav collapses behind a Menu button")
    c.d.set_window_size(390, 844)
    try:
        c.go("/console/services/web")
        c.heading("web")
        if c.css("#sidenav").is_displayed():
            raise Failure("the side nav is shown on a phone before opening the menu")
        c.click("[data-test=nav-toggle]")
        c.wait(lambda d: c.css("#sidenav").is_displayed(), SHORT, "the nav to open")
        width = c.d.execute_script("return document.documentElement.scrollWidth")
        if width > 400:
            raise Failure(f"the page is {width}px wide on a 390px screen")
        c.ok("nav collapses and opens; no horizontal scrolling")
    finally:
        c.d.set_window_size(1280, 800)


def viewer(c):
    c.step("sign in as viewer: deploy, rollback and delete are disabled with the reason")
    c.sign_in(env("BERTH_VIEWER_KEY_ID"), env("BERTH_VIEWER_SECRET"), "user/viewer")
    c.go("/console/services/web")
    c.heading("web")
    c.wait_text("[data-test=service-status]", "running")
    for test, action in (("deploy-button", "service:Deploy"), ("rollback-button", "service:Rollback"),
                         ("delete-button", "service:DeleteService")):
        btn = c.wait_css(f"[data-test={test}]")
        if btn.is_enabled():
            raise Failure(f"{test} is enabled for the viewer")
        reason = btn.get_attribute("title") or ""
        shown = btn.find_element(By.XPATH, "..").text
        if action not in reason or action not in shown:
            raise Failure(f"{test}: the reason {reason!r} / {shown!r} does not mention {action}")
        c.ok(f"{test} disabled: {reason}")
    c.sign_out()


def one_time_link(c):
    c.step("a one-time sign-in link (as `berth console` prints) signs in once")
    st, _, body = http("POST", c.base + "/api/v1/console/links", body=b"{}",
                       headers={"Content-Type": "application/json"},
                       auth=(env("BERTH_ADMIN_KEY_ID"), env("BERTH_ADMIN_SECRET")))
    if st == 404:
        c.ok("no /api/v1/console/links on this berthd: skipped")
        return
    if st != 201:
        raise Failure(f"POST /api/v1/console/links answered {st}: {body[:200]!r}")
    link = json.loads(body)["url"]
    path = "/console/" + link.split("/console/", 1)[1]
    c.go(path)
    c.wait_css("[data-test=login-link-continue]")
    if "code=" in c.d.current_url:
        raise Failure("the code stays in the address bar")
    c.css("[data-test=login-link-continue]").click()
    c.heading("Overview")
    c.ok("signed in with the link, after a click")
    c.sign_out()
    c.go(path)
    c.wait_css("[data-test=login-link-continue]")
    c.css("[data-test=login-link-continue]").click()
    c.wait_css("[data-test=error]")
    c.ok("the link does not work twice: " + c.css("[data-test=error]").text)


def run():
    c_holder = {}
    code = 1
    try:
        code = main_with(c_holder)
    finally:
        c = c_holder.get("c")
        if c is not None:
            c.quit()
    sys.exit(code)


def main_with(holder):
    try:
        c = Console()
    except WebDriverException as e:
        print(f"console_test: FAILED: could not start Chromium: {e}", file=sys.stderr, flush=True)
        return 1
    except Failure as e:
        print(f"console_test: FAILED: {e}", file=sys.stderr, flush=True)
        return 1
    holder["c"] = c
    steps = (check_static, login, images, create_service, logs, edit_env, deploy_arm, rollback, overview, iam,
             simple_pages, mobile, lambda c: (c.step("sign out"), c.sign_out()), viewer, one_time_link)
    try:
        for s in steps:
            s(c)
    except (Failure, WebDriverException, AssertionError) as e:
        msg = e.msg if isinstance(e, WebDriverException) and getattr(e, "msg", None) else str(e)
        print(f"console_test: FAILED at step {c.step_no}: {msg}", file=sys.stderr, flush=True)
        report_failure(c)
        return 1
    print(f"console_test: all {c.step_no} steps passed", flush=True)
    return 0


def report_failure(c):
    try:
        print(f"  url: {c.d.current_url}", file=sys.stderr)
        if c.shots:
            c.d.save_screenshot(os.path.join(c.shots, "failure.png"))
            print(f"  screenshot: {os.path.join(c.shots, 'failure.png')}", file=sys.stderr)
        for entry in c.d.get_log("browser")[-20:]:
            print(f"  browser: {entry.get('level')} {entry.get('message')}", file=sys.stderr)
    except WebDriverException:
        pass


if __name__ == "__main__":
    run()
