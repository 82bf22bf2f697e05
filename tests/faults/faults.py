#!/usr/bin/python3
"""faults.py - the fault suite: break the worker on purpose, prove nothing is lost.

Each scenario starts the whole system from scratch on loopback -- a fresh
database in a throwaway PostgreSQL cluster, the carrier simulator (time
compressed), a three-broker librdkafka mock cluster (`shiptrack kafka-mock
--control`), a real SMTP server (tests/support/smtp_server.py) and the worker
as separate supervised processes (two pollers, a relay, a notifier) -- registers
shipments from the simulator's plan, injects its faults during a window, and
then waits for the system to converge. The invariants checked at the end:

  events         every journey step the simulator shows is stored exactly once
                 (per status, substatus and city), nothing else is stored
  notifications  every milestone announced on shiptrack.events.v1 has one
                 notification row per channel of its recipient, each settled:
                 sent, suppressed or failed_permanent with a reason (nothing
                 left queued or waiting for a retry)
  duplicates     every email the SMTP server accepted matches one sent row,
                 and no recipient got the same message twice
  outbox         no row left unsent
  logs           no secret, e-mail address or phone number in the worker's logs
  recovery       the system converged within the time limit, every worker
                 process is alive at the end (a killed one is started again, as
                 a process manager would) and exits 0 on SIGTERM

It prints one table row per scenario: events, notifications, duplicates,
losses and the recovery time (end of the fault window -> converged), and exits
non-zero when any invariant fails.

Usage: faults.py --build DIR [--scenario NAME]... [--shipments N] [--speed X]
                 [--markdown FILE] [--keep]
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = os.environ.get("SHIPTRACK_PYTHON", "/usr/bin/python3")
CONVERGE_LIMIT = 150  # seconds after the fault window
FINAL = ("sent", "suppressed", "failed_permanent")
# Secrets the worker is given; none may appear in any log (checked per scenario).
SECRETS = {name: "%s-%s" % (name, os.urandom(9).hex()) for name in (
    "dhl-key", "laposte-key", "track17-key", "oauth-secret", "unsubscribe-secret",
    "db-password", "api-agent-token", "api-ops-token")}
# Worker processes of a scenario and the least-privilege role (sql/roles.sql) each logs in with.
ROLES = {"poller1": "poller", "poller2": "poller", "relay": "relay", "notifier": "notifier",
         "scanner": "scanner", "api": "api"}


def log(msg):
    print("    " + msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, timeout=10):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


class Cluster:
    """The throwaway PostgreSQL cluster (scripts/pg-start faults)."""

    def __init__(self):
        # durable: an immediate restart is a crash, and committed work must survive it
        env = dict(os.environ, SHIPTRACK_PG_DURABLE="1")
        self.url = subprocess.run([os.path.join(ROOT, "scripts", "pg-start"), "faults"],
                                  check=True, capture_output=True, text=True,
                                  env=env).stdout.strip()
        env = {}
        with open(os.path.join(ROOT, ".run", "pg-faults.env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                env[k] = v
        self.dir = env["SHIPTRACK_PG_DIR"]
        bindirs = sorted(d for d in os.listdir("/usr/lib/postgresql"))
        self.pg_ctl = "/usr/lib/postgresql/%s/bin/pg_ctl" % bindirs[-1]

    def restart(self):
        cmd = [self.pg_ctl, "-D", os.path.join(self.dir, "data"), "-m", "immediate", "-w",
               "-l", os.path.join(self.dir, "server.log"), "restart"]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, capture_output=True)

    def stop(self):
        subprocess.run([os.path.join(ROOT, "scripts", "pg-stop"), "faults"],
                       capture_output=True)


class Proc:
    """A child process with its output in a file."""

    def __init__(self, name, argv, env, logdir, stdin=None, pipe_stdout=False):
        self.name = name
        self.log = open(os.path.join(logdir, name + ".log"), "ab")
        self.p = subprocess.Popen(argv, env=env, stdin=stdin, stderr=self.log,
                                  stdout=subprocess.PIPE if pipe_stdout else self.log)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, wait=20):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(wait)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode


class System:
    """Everything one scenario runs against."""

    def __init__(self, args, cluster, name, work):
        self.args, self.cluster, self.name, self.work = args, cluster, name, work
        self.bin = os.path.join(args.build, "shiptrack")
        self.sim_bin = os.path.join(args.build, "shiptrack-carrier-sim")
        self.db = "faults_" + name
        self.psql(["-c", "DROP DATABASE IF EXISTS " + self.db])
        self.psql(["-c", "CREATE DATABASE " + self.db])
        self.url = self.cluster.url.rsplit("/", 1)[0] + "/" + self.db
        self.mail = os.path.join(work, "mail")
        os.makedirs(self.mail)
        self.procs = {}
        self.role_of = {}
        self.smtp = None
        self.smtp_port = free_port()
        self.api_port = free_port()

    # ---- database ----
    def psql(self, extra):
        url = self.cluster.url
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url] + extra,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql: " + r.stderr.strip())
        return r.stdout

    def psql_db(self, extra):
        """psql as the owner on this scenario's database; raises on failure."""
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", self.url] + extra,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql: " + r.stderr.strip())
        return r.stdout

    def api_check(self):
        """What the api answers its agent and ops as the api role: [] when all is well."""
        bad = []
        base = "http://127.0.0.1:%d" % self.api_port
        for path, token, want in (("/readyz", None, 200),
                                  ("/v1/shipments/1", SECRETS["api-agent-token"], 200),
                                  ("/v1/stuck", SECRETS["api-ops-token"], 200),
                                  ("/metrics", SECRETS["api-ops-token"], 200),
                                  ("/agent?q=1", SECRETS["api-ops-token"], 403)):
            req = urllib.request.Request(base + path)
            if token:
                req.add_header("Authorization", "Bearer " + token)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    code = r.status
            except urllib.error.HTTPError as e:
                code = e.code
            except OSError as e:
                code = str(e)
            if code != want:
                bad.append("%s: %s, want %d" % (path, code, want))
        return bad

    def q(self, sql):
        """Rows of sql as lists of strings; [] when the database is away."""
        r = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", self.url, "-c", sql],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return None
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def scalar(self, sql):
        rows = self.q(sql)
        return int(rows[0][0]) if rows else -1

    # ---- services ----
    def env(self, role=None):
        """The worker's environment, logging in as fault_ROLE (the owner when None)."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
        user = "fault_" + role if role else "postgres"
        e.update({
            # the cluster trusts loopback, so the password is only there to be kept out of logs
            "SHIPTRACK_DATABASE_URL": self.url.replace("postgres@", "%s:%s@" %
                                                       (user, SECRETS["db-password"]), 1),
            "SHIPTRACK_KAFKA_BROKERS": self.brokers,
            "SHIPTRACK_LOG_LEVEL": "info",
            "SHIPTRACK_TEMPLATES_DIR": os.path.join(ROOT, "templates"),
            "SHIPTRACK_SMTP_HOST": "127.0.0.1",
            "SHIPTRACK_SMTP_PORT": str(self.smtp_port),
            "SHIPTRACK_SMTP_STARTTLS": "off",
            "SHIPTRACK_SMTP_FROM": "Fault Shop <notify@shop.example>",
            "SHIPTRACK_SMTP_TIMEOUT": "5s",
            "SHIPTRACK_SMS_JSONL_FILE": os.path.join(self.work, "sms.jsonl"),
            "SHIPTRACK_SHOP_NAME": "Fault Shop",
            "SHIPTRACK_PUBLIC_URL": "https://track.shop.example",
            "SHIPTRACK_UNSUBSCRIBE_SECRET": SECRETS["unsubscribe-secret"],
            "SHIPTRACK_QUIET_HOURS_EMAIL": "off",
            "SHIPTRACK_QUIET_HOURS_SMS": "off",
            "SHIPTRACK_NOTIFY_MAX_PER_DAY": "100",
            "SHIPTRACK_NOTIFY_MAX_ATTEMPTS": "50",
            "SHIPTRACK_NOTIFY_RETRY_BASE": "1s",
            "SHIPTRACK_NOTIFY_PASS_INTERVAL": "500ms",
            "SHIPTRACK_NOTIFY_STALE": "15s",
            # a SIGKILLed consumer holds its partitions until its session times out
            "SHIPTRACK_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "SHIPTRACK_POLL_INTERVAL": "1s",
            "SHIPTRACK_POLL_IDLE": "200ms",
            "SHIPTRACK_POLL_RETRY_MAX": "3s",
            "SHIPTRACK_POLL_LEASE": "10s",
            "SHIPTRACK_BREAKER_COOLDOWN": "2s",
            "SHIPTRACK_DB_RETRY_MAX": "2s",
            "SHIPTRACK_HTTP_TIMEOUT": "5s",
            "SHIPTRACK_SCAN_INTERVAL": "2s",
            "SHIPTRACK_API_LISTEN": "127.0.0.1:%d" % self.api_port,
            "SHIPTRACK_API_TOKENS": "agent:%s,ops:%s" % (SECRETS["api-agent-token"],
                                                         SECRETS["api-ops-token"]),
        })
        for c in ("DHL", "UPS", "FEDEX", "USPS", "LAPOSTE", "TRACK17"):
            e["SHIPTRACK_%s_BASE_URL" % c] = self.sim_url
            e["SHIPTRACK_%s_RATE" % c] = "500/s"
            e["SHIPTRACK_%s_DAILY_QUOTA" % c] = "0"
        e.update({"SHIPTRACK_DHL_API_KEY": SECRETS["dhl-key"],
                  "SHIPTRACK_LAPOSTE_API_KEY": SECRETS["laposte-key"],
                  "SHIPTRACK_TRACK17_API_KEY": SECRETS["track17-key"]})
        for c in ("UPS", "FEDEX", "USPS"):
            e["SHIPTRACK_%s_CLIENT_ID" % c] = "f-client"
            e["SHIPTRACK_%s_CLIENT_SECRET" % c] = SECRETS["oauth-secret"]
        return e

    def start_sim(self):
        p = Proc("sim", [self.sim_bin, "--port", "0", "--speed", str(self.args.speed),
                         "--dhl-api-key", SECRETS["dhl-key"],
                         "--laposte-api-key", SECRETS["laposte-key"],
                         "--track17-api-key", SECRETS["track17-key"],
                         "--oauth-client-id", "f-client",
                         "--oauth-client-secret", SECRETS["oauth-secret"]], os.environ, self.work,
                 stdin=subprocess.DEVNULL, pipe_stdout=True)
        line = p.p.stdout.readline().decode()
        if "listening on " not in line:
            raise RuntimeError("simulator did not start: " + line)
        self.sim_url = line.split("listening on ", 1)[1].strip()
        self.procs["sim"] = p

    def start_kafka(self):
        p = Proc("kafka", [self.bin, "kafka-mock", "--brokers", "3", "--control"], os.environ,
                 self.work, stdin=subprocess.PIPE,
                 pipe_stdout=True)
        line = p.p.stdout.readline().decode()
        if "bootstrap servers " not in line:
            raise RuntimeError("kafka-mock did not start: " + line)
        self.brokers = line.split("bootstrap servers ", 1)[1].strip()
        self.procs["kafka"] = p

    def kafka(self, command):
        p = self.procs["kafka"].p
        p.stdin.write((command + "\n").encode())
        p.stdin.flush()
        answer = p.stdout.readline().decode().strip()
        if answer != "ok":
            raise RuntimeError("kafka-mock %s: %s" % (command, answer))

    def start_smtp(self):
        p = Proc("smtp", [PYTHON, os.path.join(ROOT, "tests", "support", "smtp_server.py"),
                          "--dir", self.mail, "--port", str(self.smtp_port)], os.environ,
                 self.work, stdin=subprocess.PIPE,
                 pipe_stdout=True)
        line = p.p.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError("SMTP server did not start: " + line)
        self.smtp = p

    def smtp_mode(self, mode):
        self.smtp.p.stdin.write(("mode %s\n" % mode).encode())
        self.smtp.p.stdin.flush()
        if self.smtp.p.stdout.readline().decode().strip() != "ok":
            raise RuntimeError("SMTP server refused mode " + mode)

    def stop_smtp(self):
        self.smtp.p.stdin.close()
        self.smtp.stop()
        self.smtp = None

    def start_role(self, name, role):
        self.role_of[name] = role
        self.procs[name] = Proc(name, [self.bin, "run", "--roles", role], self.env(ROLES[name]),
                                self.work)

    def setup(self):
        self.start_sim()
        self.start_kafka()
        self.start_smtp()
        env = self.env()
        run([self.bin, "migrate"], env)
        # every worker process logs in with its own least-privilege role
        self.psql_db(["-f", os.path.join(ROOT, "sql", "roles.sql")])
        for r in sorted(set(ROLES.values()) | {"intake"}):
            self.psql_db(["-c", "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE"
                          " rolname = 'fault_%s') THEN CREATE ROLE fault_%s LOGIN IN ROLE"
                          " shiptrack_%s; END IF; END $$" % (r, r, r)])
        plan = os.path.join(self.work, "plan.jsonl")
        with open(plan, "w") as f:
            subprocess.run([self.sim_bin, "plan", "--carrier", "all", "--count",
                            str(self.args.shipments)], stdout=f, check=True)
        run([self.bin, "register", "--batch", plan], self.env("intake"))
        self.plan = [json.loads(line) for line in open(plan)]
        # the notifier first: the mock cluster's first group join takes a moment
        self.start_role("notifier", "notifier")
        time.sleep(3)
        self.start_role("poller1", "poller")
        self.start_role("poller2", "poller")
        self.start_role("relay", "relay")
        self.start_role("scanner", "scanner")
        self.start_role("api", "api")

    def teardown(self):
        codes = {}
        for name in ROLES:
            if name in self.procs:
                codes[name] = self.procs.pop(name).stop()
        if self.smtp is not None:
            self.stop_smtp()
        k = self.procs.pop("kafka", None)
        if k is not None:
            k.p.stdin.close()
            k.stop()
        s = self.procs.pop("sim", None)
        if s is not None:
            s.stop()
        return codes

    # ---- invariants ----
    def check_events(self):
        """(visible steps, stored events, missing + extra)."""
        want = stored = bad = 0
        rows = self.q("SELECT s.carrier, s.tracking_number, e.status, e.substatus, e.city,"
                      " count(*) FROM tracking_events e JOIN shipments s ON s.id = e.shipment_id"
                      " GROUP BY 1, 2, 3, 4, 5")
        if rows is None:
            return 0, 0, -1
        got = {}
        for c, n, st, sub, city, cnt in rows:
            got[(c, n, st, sub, city if c != "laposte" else "")] = int(cnt)
            stored += int(cnt)
        expect = {}
        for ship in self.plan:
            j = http("GET", "%s/_sim/journey?carrier=%s&number=%s" %
                     (self.sim_url, ship["carrier"], ship["tracking_number"]))
            for step in j["steps"]:
                if not step["visible"]:
                    continue
                e = step["expect"]
                key = (ship["carrier"], ship["tracking_number"].upper(), e["status"],
                       e["substatus"], step["city"] if ship["carrier"] != "laposte" else "")
                expect[key] = expect.get(key, 0) + 1
                want += 1
        for key in set(expect) | set(got):
            bad += abs(expect.get(key, 0) - got.get(key, 0))
        return want, stored, bad

    def expected_notifications(self):
        """{(shipment_id, milestone, channel)} from the announced changes."""
        rows = self.q("SELECT o.payload::text, r.email IS NOT NULL, r.phone IS NOT NULL"
                      " FROM outbox o JOIN shipments s ON s.id = (o.payload->>'shipment_id')::bigint"
                      " JOIN recipients r ON r.id = s.recipient_id"
                      " WHERE o.topic = 'shiptrack.events.v1'")
        out = set()
        for payload, has_email, has_phone in rows or []:
            m = json.loads(payload)
            if m.get("type") != "status_changed":
                continue
            ms = milestone(m["from"]["status"], m["to"]["status"], m["to"]["substatus"])
            if ms is None:
                continue
            for ch, has in (("email", has_email), ("sms", has_phone)):
                if has == "t":
                    out.add((int(m["shipment_id"]), ms, ch))
        return out

    def check_notifications(self):
        """(expected rows, settled rows, missing or unsettled, emails, duplicates)."""
        expect = self.expected_notifications()
        rows = self.q("SELECT shipment_id, milestone, channel, status, coalesce(reason, ''),"
                      " coalesce(provider_ref, '') FROM notifications") or []
        have, unsettled, sent_refs = {}, 0, {}
        for sid, ms, ch, st, reason, ref in rows:
            have[(int(sid), ms, ch)] = st
            if st not in FINAL or (st != "sent" and not reason):
                unsettled += 1
            if st == "sent" and ch == "email":
                sent_refs[ref] = sent_refs.get(ref, 0) + 1
        missing = sum(1 for k in expect if k not in have)
        settled = sum(1 for k in expect if have.get(k) in FINAL)
        emails, seen, dups = 0, {}, 0
        for f in sorted(os.listdir(self.mail)):
            if not f.endswith(".eml"):
                continue
            emails += 1
            hdr = parse_headers(os.path.join(self.mail, f))
            key = (hdr.get("to", ""), hdr.get("subject", ""))
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                dups += 1
            elif hdr.get("message-id", "") not in sent_refs:
                dups += 1  # accepted by the server but not recorded as this send
        return len(expect), settled, missing + unsettled, emails, dups

    def leaks(self):
        """Secrets, e-mail addresses and phone numbers found verbatim in the
        worker's logs (the simulator's and the SMTP server's own logs are not
        the worker's): a list of "what in which log"."""
        found = []
        needles = [("secret " + k, v) for k, v in SECRETS.items()]
        for ship in self.plan:
            for k in ("email", "phone"):
                if ship.get(k):
                    needles.append((k, ship[k]))
        for f in sorted(os.listdir(self.work)):
            if not f.endswith(".log") or f.split(".")[0] in ("sim", "smtp", "kafka"):
                continue
            text = open(os.path.join(self.work, f), "rb").read().decode("utf-8", "replace")
            for what, v in needles:
                if v in text:
                    found.append("%s in %s" % (what, f))
        return found

    def converged(self):
        try:
            clock = http("GET", self.sim_url + "/_sim/clock")
        except OSError:
            return False
        if not clock.get("all_complete"):
            return False
        if self.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL") != 0:
            return False
        if self.check_events()[2] != 0:
            return False
        exp, settled, bad, _, _ = self.check_notifications()
        return bad == 0 and settled == exp


def run(argv, env):
    """Run argv; raise with its stderr when it fails."""
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(os.path.basename(a) for a in argv[:2]),
                                                  r.returncode, r.stderr.strip()[-600:]))
    return r.stdout


def parse_headers(path):
    """Lower-cased header names -> values (RFC 2047 words decoded)."""
    import email
    from email.header import decode_header, make_header
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f)
    out = {}
    for k in ("to", "subject", "message-id"):
        v = msg.get(k, "")
        out[k] = str(make_header(decode_header(v))) if v else ""
    return out


def milestone(frm, to, to_sub):
    """The notifier's milestone for a status change (DESIGN.md, Notifications)."""
    if to_sub == "customs_processing":
        return "customs_processing"
    if to == "held" and to_sub.startswith("customs_") and to_sub != "customs_released":
        return "customs_held"
    if to_sub == "customs_released":
        return "customs_released"
    if to == "in_transit" and frm in ("pending", "info_received", "not_found"):
        return "shipped"
    if to in ("out_for_delivery", "attempt_failed", "available_for_pickup", "delivered",
              "exception", "returning"):
        return None if frm == to else to
    return None


# ---- scenarios: each runs its faults during the window, then undoes them ----

def kill_role(system, names, window, every):
    """SIGKILL the named role processes every `every` seconds during the window;
    like a process manager, start each again half a second later."""
    end = time.time() + window
    kills = 0
    while time.time() < end:
        for n in names:
            p = system.procs[n]
            p.p.kill()
            p.p.wait()
            p.log.close()
            kills += 1
        time.sleep(0.5)
        for n in names:
            system.start_role(n, system.role_of[n])
        time.sleep(every)
    return "%d SIGKILLs" % kills


def sc_baseline(s, window):
    time.sleep(window)
    return "none"


def sc_kill_pollers(s, window):
    return kill_role(s, ["poller1", "poller2"], window, 2.5)


def sc_kill_notifier(s, window):
    return kill_role(s, ["notifier"], window, 2.0)


def sc_kill_relay(s, window):
    return kill_role(s, ["relay"], window, 2.0)


def sc_pg_restart(s, window):
    n = 0
    end = time.time() + window
    while time.time() < end:
        time.sleep(window / 3)
        s.cluster.restart()
        n += 1
    return "%d immediate restarts" % n


def sc_kafka_down(s, window):
    for b in (1, 2, 3):
        s.kafka("down %d" % b)
    time.sleep(window / 2)
    for b in (1, 2, 3):
        s.kafka("up %d" % b)
    # then request errors: Produce timed out, Fetch and OffsetCommit on a moved leader
    s.kafka("errors 0 10 7")
    s.kafka("errors 1 10 6")
    s.kafka("errors 8 5 16")
    time.sleep(window / 2)
    return "3 brokers down %.0fs, then 25 request errors" % (window / 2)


def sc_smtp_down(s, window):
    s.stop_smtp()
    time.sleep(window)
    s.start_smtp()
    return "server stopped %.0fs" % window


def sc_smtp_4xx(s, window):
    s.smtp_mode("tempfail")
    time.sleep(window)
    s.smtp_mode("ok")
    return "451 for %.0fs" % window


def sc_smtp_5xx(s, window):
    s.smtp_mode("reject")
    time.sleep(window / 2)
    s.smtp_mode("ok")
    time.sleep(window / 2)
    return "550 for %.0fs" % (window / 2)


def sc_carrier_faults(s, window):
    http("POST", s.sim_url + "/_sim/faults?error_rate=0.15&rate_429=0.15&malformed_rate=0.1"
         "&reset_rate=0.1&oversized_rate=0.05&latency_ms=150")
    time.sleep(window)
    http("POST", s.sim_url + "/_sim/faults?error_rate=0&rate_429=0&malformed_rate=0"
         "&reset_rate=0&oversized_rate=0&latency_ms=0")
    return "5xx, 429, malformed, resets, oversized, latency"


SCENARIOS = [
    ("baseline", sc_baseline),
    ("kill_pollers", sc_kill_pollers),
    ("kill_notifier", sc_kill_notifier),
    ("kill_relay", sc_kill_relay),
    ("pg_restart", sc_pg_restart),
    ("kafka_down", sc_kafka_down),
    ("smtp_down", sc_smtp_down),
    ("smtp_4xx", sc_smtp_4xx),
    ("smtp_5xx", sc_smtp_5xx),
    ("carrier_faults", sc_carrier_faults),
]


def run_scenario(args, cluster, name, fn, root):
    work = os.path.join(root, name)
    os.makedirs(work)
    s = System(args, cluster, name, work)
    row = {"scenario": name}
    try:
        s.setup()
        time.sleep(args.lead)
        row["faults"] = fn(s, args.window)
        t0 = time.time()
        ok = False
        while time.time() - t0 < CONVERGE_LIMIT:
            if s.converged():
                ok = True
                break
            time.sleep(1)
        row["recovery_s"] = round(time.time() - t0, 1) if ok else None
        want, stored, ev_bad = s.check_events()
        exp, settled, n_bad, emails, dups = s.check_notifications()
        unsent = s.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        dead = [n for n in ROLES if not s.procs[n].alive()]
        row["api"] = s.api_check()
        row.update(events=stored, events_expected=want, notifications=settled,
                   notifications_expected=exp, emails=emails, duplicates=dups,
                   losses=ev_bad + n_bad + max(unsent, 0), dead=dead)
        row["leaks"] = s.leaks()
        row["sent"] = s.scalar("SELECT count(*) FROM notifications WHERE status = 'sent'")
        row["failed"] = s.scalar("SELECT count(*) FROM notifications"
                                 " WHERE status = 'failed_permanent'")
    except Exception as e:  # a scenario that cannot run is a failure, with its reason
        row["error"] = str(e)
    finally:
        codes = s.teardown()
    bad_exit = {k: v for k, v in codes.items() if v != 0}
    if bad_exit:
        row["exit"] = bad_exit
    row["ok"] = ("error" not in row and row.get("recovery_s") is not None and
                 row["losses"] == 0 and row["duplicates"] == 0 and not row["dead"] and
                 not row["leaks"] and not row["api"] and not bad_exit)
    if not row["ok"] and not args.keep:
        for f in sorted(os.listdir(work)):
            if f.endswith(".log"):
                tail = open(os.path.join(work, f), "rb").read()[-1500:].decode("utf-8", "replace")
                print("---- %s (tail)\n%s" % (f, tail))
    return row


def table(rows):
    head = ("scenario", "faults injected", "events", "notifications", "emails", "duplicates",
            "losses", "recovery", "result")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append("| %s | %s | | | | | | | ERROR: %s |" %
                         (r["scenario"], r.get("faults", ""), r["error"]))
            continue
        lines.append("| %s | %s | %d/%d | %d/%d settled (%d sent, %d failed) | %d | %d | %d | %s"
                     " | %s |" % (
                         r["scenario"], r["faults"], r["events"], r["events_expected"],
                         r["notifications"], r["notifications_expected"], r["sent"],
                         r["failed"], r["emails"], r["duplicates"], r["losses"],
                         "%.1f s" % r["recovery_s"] if r["recovery_s"] is not None
                         else "not within %d s" % CONVERGE_LIMIT,
                         "ok" if r["ok"] else "FAILED" + (
                             " (dead: %s)" % ",".join(r["dead"]) if r["dead"] else "") + (
                             " (exit: %s)" % r["exit"] if r.get("exit") else "") + (
                             " (in logs: %s)" % "; ".join(r["leaks"]) if r["leaks"] else "") + (
                             " (api: %s)" % "; ".join(r["api"]) if r["api"] else "")))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="build directory with shiptrack")
    ap.add_argument("--scenario", action="append", help="run only these (repeatable)")
    ap.add_argument("--shipments", type=int, default=12)
    ap.add_argument("--speed", type=int, default=40000, help="simulated seconds per second")
    ap.add_argument("--lead", type=float, default=3.0, help="seconds of calm before faults")
    ap.add_argument("--window", type=float, default=12.0, help="seconds of faults")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--keep", action="store_true", help="keep logs and data in the temp dir")
    args = ap.parse_args()
    names = [n for n, _ in SCENARIOS]
    for n in args.scenario or []:
        if n not in names:
            ap.error("unknown scenario %s (known: %s)" % (n, ", ".join(names)))
    todo = [(n, f) for n, f in SCENARIOS if not args.scenario or n in args.scenario]

    root = tempfile.mkdtemp(prefix="shiptrack-faults.")
    cluster = Cluster()
    rows = []
    try:
        for name, fn in todo:
            print("==> scenario %s" % name, flush=True)
            t = time.time()
            row = run_scenario(args, cluster, name, fn, root)
            log("%s in %.0f s: %s" % ("ok" if row["ok"] else "FAILED", time.time() - t,
                                     json.dumps(row)))
            rows.append(row)
    finally:
        cluster.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", root])
        else:
            print("logs kept in " + root)
    out = table(rows)
    print()
    print(out)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(out + "\n")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
