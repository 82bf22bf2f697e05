#!/usr/bin/python3
"""tests/deploy/check.py - what can be checked of docker/ without a container engine.

    check.py --source CHECKOUT --bin BUILD_DIR

Checks, each printed as "ok NAME" or "FAIL NAME" with its reasons, then
"N passed, N failed" (exit 1 when any failed):

  compose_parses       docker/compose.yaml passes `docker-compose config` (Debian's
                       docker-compose, or `docker compose`), offline, in a clean
                       environment
  readme_overrides     the compose.override.yaml examples of README's Deployment
                       section are valid overrides of compose.yaml
  compose_shape        the services the deployment promises exist; every role waits
                       for `migrate` to complete; every service_healthy dependency
                       has a health check; third-party images carry a pinned tag
  compose_commands     every role in a `command:` is accepted by `shiptrack run
                       --roles`, the stack runs every role the binary has, every other
                       shiptrack command is one of the binary's, the simulator accepts
                       its options
  entrypoint_roles     docker/entrypoint.sh knows exactly the binary's roles and runs
                       each (ROLE, COMMAND and PROGRAM forms exercised)
  config_keys          every SHIPTRACK_* key in docker/ and README's Deployment
                       section is one `shiptrack config` knows (or its *_FILE form, or
                       a librdkafka property through SHIPTRACK_KAFKA_*)
  secrets_by_file      compose.yaml and the demo env file set secrets only through
                       *_FILE keys
  dockerfile_packages  the Dockerfile's build and runtime stages install exactly
                       `scripts/install-deps --list build` and `--list runtime`
  dockerfile_sources   the build stage copies what CMakeLists.txt reads, and
                       Dockerfile.dockerignore keeps it in the build context
  runtime_libraries    every shared library the built binaries load comes from a
                       package of the runtime group (or libc6)
  healthcheck          docker/healthcheck.sh: healthy while the api answers /healthz,
                       unhealthy when it does not, healthy for a role without HTTP,
                       unhealthy without the process

The roles are run for real against an unreachable database (they start, log
worker.start, and are stopped with SIGTERM); nothing listens beyond loopback.
"""

import argparse
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import yaml

# How long one probed process may take to show what it is before it is killed
# and the check fails: a guard against hangs, not a timing assertion.
PROBE_GUARD_S = 60

# What roles started by the checks run with: an address nothing listens on for
# the database and Kafka (they retry it until stopped), and the settings without
# which a role refuses to start (exit 2).
ROLE_ENV = {
    "SHIPTRACK_DATABASE_URL": "postgresql://127.0.0.1:1/none?connect_timeout=2",
    "SHIPTRACK_KAFKA_BROKERS": "127.0.0.1:1",
    "SHIPTRACK_API_LISTEN": "127.0.0.1:0",
    "SHIPTRACK_API_TOKENS": "ops:deploy-check-token-0001",
    "SHIPTRACK_PUBLIC_URL": "https://track.example",
    "SHIPTRACK_UNSUBSCRIBE_SECRET": "deploy-check-secret",
    "SHIPTRACK_DHL_API_KEY": "deploy-check-key",
}

# Services the deployment promises (the list), besides the roles.
REQUIRED_SERVICES = ["db", "kafka", "kafka-topics", "mailpit", "carrier-sim", "migrate",
                     "demo-shipments", "relay", "intake", "notifier", "scanner", "api"]


class Ctx:
    """What every check reads: paths, the binaries, parsed inputs."""

    def __init__(self, source, bindir):
        self.source = source
        self.docker = os.path.join(source, "docker")
        self.compose_path = os.path.join(self.docker, "compose.yaml")
        self.shiptrack = os.path.join(bindir, "shiptrack")
        self.sim = os.path.join(bindir, "shiptrack-carrier-sim")
        self.bindir = bindir
        self.scratch = tempfile.gettempdir()
        self.resolved = None  # compose.yaml as docker-compose resolved it
        self._roles = None
        self._config = None

    def env(self, **extra):
        """A clean environment for the binaries: no SHIPTRACK_* of the caller."""
        e = {"PATH": self.bindir + os.pathsep + "/usr/bin:/bin", "HOME": "/tmp",
             "LANG": "C.UTF-8", "SHIPTRACK_LOG_FORMAT": "text"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(extra)
        return e

    def binary_roles(self):
        """The roles the binary lists in `shiptrack help` (the run line)."""
        if self._roles is None:
            out = run([self.shiptrack, "help"], env=self.env())
            m = re.search(r"\(roles: ([a-z, ]+); all\)", out.stdout + out.stderr)
            if m is None:
                raise CheckError("`shiptrack help` has no \"(roles: ...; all)\" in its run line")
            self._roles = [r.strip() for r in m.group(1).split(",")]
        return self._roles

    def binary_commands(self):
        """The subcommands `shiptrack help` lists."""
        out = run([self.shiptrack, "help"], env=self.env())
        text = out.stdout + out.stderr
        cmds = text.split("Commands:", 1)[-1]
        return set(re.findall(r"^  ([a-z][a-z-]*)", cmds, re.M))

    def config(self):
        """{key: type} of every key in `shiptrack config --markdown`, and the
        keys that may be read from a file."""
        if self._config is None:
            out = run([self.shiptrack, "config", "--markdown"], env=self.env())
            if out.returncode != 0:
                raise CheckError("`shiptrack config --markdown` failed: " + out.stderr.strip())
            types, files = {}, set()
            for line in out.stdout.splitlines():
                m = re.match(r"\| `(SHIPTRACK_[A-Z0-9_]+)` \| ([^|]+) \|", line)
                if m is None:
                    continue
                types[m.group(1)] = m.group(2).strip()
                if "`%s_FILE`" % m.group(1) in line:
                    files.add(m.group(1))
            if not types:
                raise CheckError("`shiptrack config --markdown` printed no key")
            self._config = (types, files)
        return self._config


class CheckError(Exception):
    """A check cannot go on; the message says why."""


def run(argv, **kw):
    """subprocess.run with output captured as text and the hang guard."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", PROBE_GUARD_S)
    return subprocess.run(argv, check=False, **kw)


def first_line(text):
    """The first non-empty line of a program's output (the error, not the usage)."""
    return next((line for line in text.splitlines() if line.strip()), "(no output)")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def drain(pipe):
    """Read a child's output to its end in the background, so that the child
    never blocks writing to a pipe nobody reads."""
    t = threading.Thread(target=lambda: pipe.read(), daemon=True)
    t.start()
    return t


def kill_group(proc):
    """SIGKILL proc and whatever it forked (it leads its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_process(proc):
    """SIGTERM proc and wait for it; kill it and its children after
    PROBE_GUARD_S. Returns its exit status, or None when it had to be killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=PROBE_GUARD_S)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        proc.wait()
        return None


def probe_started(argv, env, want, stream="stderr"):
    """Start argv, read its stderr (or stdout) until a line contains `want`
    (then stop it with SIGTERM) or it exits. Returns (started, exit status or
    None when SIGTERM did not stop it, the lines read)."""
    out = subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL
    err = subprocess.STDOUT if stream == "stdout" else subprocess.PIPE
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                            text=True, start_new_session=True)
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    guard = threading.Timer(PROBE_GUARD_S, kill_group, [proc])  # it neither logs nor exits
    guard.start()
    lines, started = [], False
    try:
        for line in pipe:
            lines.append(line)
            if want in line:
                started = True
                break
    finally:
        guard.cancel()
    drainer = drain(pipe)
    rc = stop_process(proc)
    kill_group(proc)  # a child it left behind would hold the pipe open
    drainer.join()
    pipe.close()
    return started, rc, "".join(lines)


def role_accepted(ctx, argv, roles):
    """Run `argv` (a way of starting `shiptrack run --roles roles`) against a
    dead database; [] when it started those roles, else why not."""
    env = ctx.env(**ROLE_ENV)
    started, rc, err = probe_started(argv, env, "worker.start")
    if started and rc is None:
        return ["%s: still running %ds after SIGTERM" % (" ".join(argv), PROBE_GUARD_S)]
    if "is not a role" in err:
        return ["%s: refused: %s" % (" ".join(argv), err.strip().splitlines()[-1])]
    if not started:
        return ["%s: exited %s before starting: %s" % (" ".join(argv), rc, err.strip()[-400:])]
    if "starting roles %s" % roles not in err:
        return ["%s: started something else: %s" % (" ".join(argv), err.strip()[-200:])]
    return []


# --- the checks --------------------------------------------------------------


def compose_tool():
    """argv prefix of a compose implementation that works offline, or None."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and run(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    return None


def check_compose_parses(ctx):
    tool = compose_tool()
    if tool is None:
        return ["neither docker-compose nor `docker compose` is installed: run "
                "scripts/install-deps (Debian package docker-compose)"]
    # A clean environment: STACK_* of the caller must not change what is checked.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}
    base = tool + ["--project-directory", ctx.docker, "-f", ctx.compose_path]
    out = run(base + ["config", "-q"], env=env, cwd=ctx.docker)
    if out.returncode != 0:
        return ["%s config -q: exit %d: %s" % (" ".join(tool), out.returncode,
                                                (out.stderr + out.stdout).strip())]
    out = run(base + ["config"], env=env, cwd=ctx.docker)
    if out.returncode != 0:
        return ["%s config: exit %d: %s" % (" ".join(tool), out.returncode, out.stderr.strip())]
    ctx.resolved = yaml.safe_load(out.stdout)
    return []


def check_readme_overrides(ctx):
    """Every ```yaml block of README's Deployment section is a valid override of
    compose.yaml (as `compose -f compose.yaml -f BLOCK config` reads it)."""
    tool = compose_tool()
    if tool is None:
        return ["no docker-compose (see compose_parses)"]
    blocks = re.findall(r"^```yaml\n(.*?)^```", deployment_section(ctx), re.M | re.S)
    if not blocks:
        return ["README's Deployment section has no ```yaml override example"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}
    fails = []
    for n, block in enumerate(blocks, 1):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=ctx.scratch) as f:
            f.write(block)
            f.flush()
            out = run(tool + ["--project-directory", ctx.docker, "-f", ctx.compose_path,
                              "-f", f.name, "config", "-q"], env=env, cwd=ctx.docker)
        if out.returncode != 0:
            fails.append("yaml block %d: %s" % (n, (out.stderr + out.stdout).strip()))
    return fails


def need_resolved(ctx):
    if ctx.resolved is None:
        raise CheckError("compose.yaml did not parse (see compose_parses)")
    return ctx.resolved["services"]


def shiptrack_image(ctx, svc):
    """True when the service runs our image (built from docker/Dockerfile)."""
    build = svc.get("build") or {}
    dockerfile = build.get("dockerfile", "") if isinstance(build, dict) else ""
    return dockerfile.endswith("docker/Dockerfile")


def command_of(svc):
    cmd = svc.get("command")
    if isinstance(cmd, str):
        return cmd.split()
    return list(cmd or [])


def roles_of(ctx, cmd):
    """The role list a shiptrack-image command runs, or None."""
    if cmd and cmd[0] == "run":
        for i, a in enumerate(cmd):
            if a == "--roles" and i + 1 < len(cmd):
                return cmd[i + 1]
            if a.startswith("--roles="):
                return a.split("=", 1)[1]
        return ""  # SHIPTRACK_ROLES or the default
    if cmd and re.fullmatch(r"[a-z]+(,[a-z]+)*", cmd[0]) and \
            all(r in ctx.binary_roles() + ["all"] for r in cmd[0].split(",")):
        return cmd[0]
    return None


def check_compose_shape(ctx):
    services = need_resolved(ctx)
    fails = []
    for name in REQUIRED_SERVICES:
        if name not in services:
            fails.append("no service %s" % name)
    pollers = [n for n, s in services.items()
               if roles_of(ctx, command_of(s)) and "poller" in roles_of(ctx, command_of(s))]
    if len(pollers) < 2:
        fails.append("two poller services expected, found %s" % pollers)
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        if shiptrack_image(ctx, svc) and roles_of(ctx, command_of(svc)) is not None:
            cond = (deps.get("migrate") or {}).get("condition")
            if cond != "service_completed_successfully":
                fails.append("%s: depends_on migrate must be service_completed_successfully "
                             "(is %s)" % (name, cond))
        for dep, spec in deps.items():
            target = services.get(dep)
            if target is None:
                fails.append("%s: depends on unknown service %s" % (name, dep))
                continue
            if spec.get("condition") == "service_healthy" and "healthcheck" not in target \
                    and not shiptrack_image(ctx, target):
                fails.append("%s: waits for %s to be healthy, which has no healthcheck"
                             % (name, dep))
        image = svc.get("image", "")
        if not shiptrack_image(ctx, svc):
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
            if tag in ("", "latest"):
                fails.append("%s: image %s has no pinned tag" % (name, image))
    return fails


def check_compose_commands(ctx):
    services = need_resolved(ctx)
    fails, used = [], set()
    commands = ctx.binary_commands()
    for name, svc in sorted(services.items()):
        if not shiptrack_image(ctx, svc):
            continue
        cmd = command_of(svc)
        roles = roles_of(ctx, cmd)
        if roles:
            used.update(roles.split(","))
            argv = [ctx.shiptrack] + (cmd if cmd[0] == "run" else ["run", "--roles", roles])
            fails += ["%s: %s" % (name, f) for f in role_accepted(ctx, argv, roles)]
        elif roles == "":
            fails.append("%s: `run` without --roles: name the roles it runs" % name)
        elif cmd and cmd[0] == "shiptrack-carrier-sim":
            fails += ["%s: %s" % (name, f) for f in sim_accepts(ctx, cmd[1:])]
        elif cmd and cmd[0] == "sh":
            script = " ".join(cmd[2:])
            for sub in re.findall(r"(?<![\w-])shiptrack ([a-z-]+)", script):
                if sub not in commands:
                    fails.append("%s: `shiptrack %s` is not a shiptrack command" % (name, sub))
            for args in re.findall(r"shiptrack-carrier-sim (plan[^|;&<>]*)", script):
                out = run([ctx.sim] + args.split(), env=ctx.env())
                if out.returncode != 0 or not out.stdout.strip():
                    fails.append("%s: `shiptrack-carrier-sim %s` failed: %s"
                                 % (name, args.strip(), first_line(out.stderr)))
        elif cmd and cmd[0] not in commands:
            fails.append("%s: `%s` is not a shiptrack command" % (name, cmd[0]))
    missing = [r for r in ctx.binary_roles() if r not in used]
    if missing:
        fails.append("no service runs the role(s) %s" % ", ".join(missing))
    return fails


def sim_accepts(ctx, args):
    """Start the simulator with the compose options, on loopback and a free port."""
    args = list(args)
    for opt, value in (("--listen", "127.0.0.1"), ("--port", "0")):
        if opt in args:
            args[args.index(opt) + 1] = value
    started, rc, err = probe_started([ctx.sim] + args, ctx.env(), "listening on", "stdout")
    if not started:
        return ["shiptrack-carrier-sim %s: exit %s: %s" % (" ".join(args), rc, first_line(err))]
    if rc is None:
        return ["shiptrack-carrier-sim: still running %ds after SIGTERM" % PROBE_GUARD_S]
    return []


def entrypoint_roles(ctx):
    text = read(os.path.join(ctx.docker, "entrypoint.sh"))
    m = re.search(r'^ROLES="([a-z ]+)"', text, re.M)
    if m is None:
        raise CheckError("docker/entrypoint.sh has no ROLES=\"...\" line")
    return m.group(1).split()


def check_entrypoint_roles(ctx):
    fails = []
    listed, known = entrypoint_roles(ctx), ctx.binary_roles()
    if sorted(listed) != sorted(known):
        fails.append("entrypoint ROLES %s, binary roles %s" % (listed, known))
    entry = os.path.join(ctx.docker, "entrypoint.sh")
    for role in listed:
        fails += role_accepted(ctx, ["sh", entry, role], role)
    fails += role_accepted(ctx, ["sh", entry, "poller,scanner"], "poller,scanner")
    out = run(["sh", entry, "version"], env=ctx.env())  # the COMMAND form
    if out.returncode != 0 or "shiptrack" not in out.stdout + out.stderr:
        fails.append("entrypoint.sh version: exit %d: %s" % (out.returncode, out.stderr.strip()))
    out = run(["sh", entry, "shiptrack-carrier-sim", "--help"], env=ctx.env())  # PROGRAM form
    if out.returncode != 0 or "usage: shiptrack-carrier-sim" not in out.stdout:
        fails.append("entrypoint.sh shiptrack-carrier-sim --help: exit %d" % out.returncode)
    out = run(["sh", entry, "poller,nosuchrole"], env=ctx.env())
    if out.returncode != 2:
        fails.append("entrypoint.sh poller,nosuchrole: exit %d, expected 2 (unknown command)"
                     % out.returncode)
    return fails


def deployment_section(ctx):
    """README's Deployment section (up to the next level-2 heading)."""
    text = read(os.path.join(ctx.source, "README.md"))
    m = re.search(r"^## Deployment\n(.*?)(?=^## )", text, re.M | re.S)
    if m is None:
        raise CheckError("README.md has no \"## Deployment\" section")
    return m.group(1)


def rdkafka_properties():
    """librdkafka's property names from its CONFIGURATION.md (Debian ships it),
    or None when it is not installed."""
    for pkg in ("librdkafka-dev", "librdkafka1"):
        path = "/usr/share/doc/%s/CONFIGURATION.md.gz" % pkg
        if os.path.exists(path):
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return set(re.findall(r"^([a-z][a-z0-9.]+)\s+\|", f.read(), re.M))
    return None


def key_problem(key, types, files, rdprops):
    """None when key is a key shiptrack reads, else why not."""
    if key in types:
        return None
    if key.endswith("_FILE") and key[:-5] in types:
        return None if key[:-5] in files else "%s cannot be read from a file" % key[:-5]
    if key.startswith("SHIPTRACK_KAFKA_"):
        name = key[len("SHIPTRACK_KAFKA_"):]
        if name.endswith("_FILE"):
            name = name[:-5]
        prop = name.lower().replace("_", ".")
        if rdprops is None or prop in rdprops:
            return None
        return "%s: librdkafka has no property %s" % (key, prop)
    return "%s is not a configuration key (see `shiptrack config`)" % key


def check_config_keys(ctx):
    types, files = ctx.config()
    rdprops = rdkafka_properties()
    found = {}  # key -> where
    for name, svc in (need_resolved(ctx)).items():
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
        for k in env:
            if k.startswith("SHIPTRACK_"):
                found.setdefault(k, "compose service %s" % name)
    texts = {"README.md (Deployment)": deployment_section(ctx)}
    for fname in sorted(os.listdir(ctx.docker)):
        path = os.path.join(ctx.docker, fname)
        if os.path.isfile(path):
            texts["docker/" + fname] = read(path)
    for where, text in texts.items():
        for k in re.findall(r"\bSHIPTRACK_[A-Z0-9_]*[A-Z0-9]\b", text):
            found.setdefault(k, where)
    # Build options (the Dockerfile's cmake line) are not run-time keys.
    options = set(re.findall(r"^option\((SHIPTRACK_[A-Z0-9_]+)",
                             read(os.path.join(ctx.source, "CMakeLists.txt")), re.M))
    fails = []
    for k, where in sorted(found.items()):
        if k in options and where == "docker/Dockerfile":
            continue
        problem = key_problem(k, types, files, rdprops)
        if problem:
            fails.append("%s: %s" % (where, problem))
    return fails


def parse_env_file(path):
    keys = {}
    for line in read(path).splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            keys[k.strip()] = v
    return keys


def check_secrets_by_file(ctx):
    types, _ = ctx.config()
    secrets = {k for k, t in types.items() if t == "secret"}
    fails = []
    raw = yaml.safe_load(read(ctx.compose_path))
    for name, svc in raw["services"].items():
        env = svc.get("environment") or {}
        for k in env:
            if k in secrets:
                fails.append("compose.yaml service %s sets the secret %s inline: use %s_FILE"
                             % (name, k, k))
        for ef in svc.get("env_file") or []:
            path = os.path.join(ctx.docker, re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", ef))
            for k in parse_env_file(path):
                if k in secrets:
                    fails.append("%s sets the secret %s inline: use %s_FILE"
                                 % (os.path.relpath(path, ctx.source), k, k))
    return fails


def dockerfile_stages(text):
    """{stage name: [packages its apt-get install lines name]}."""
    text = re.sub(r"\\\n", " ", text)
    stages, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            current = m.group(1) or "stage%d" % len(stages)
            stages[current] = []
            continue
        if current is None or not re.match(r"RUN\b", line):
            continue
        for cmd in re.split(r"&&|;|\|\|", line[3:]):
            words = cmd.split()
            while words and "=" in words[0]:  # VAR=value prefixes
                words.pop(0)
            if words[:2] == ["apt-get", "install"]:
                stages[current] += [w for w in words[2:] if not w.startswith("-")]
    return stages


def install_deps_group(ctx, group):
    out = run([os.path.join(ctx.source, "scripts", "install-deps"), "--list", group])
    if out.returncode != 0:
        raise CheckError("scripts/install-deps --list %s: exit %d: %s"
                         % (group, out.returncode, out.stderr.strip()))
    return out.stdout.split()


def check_dockerfile_packages(ctx):
    stages = dockerfile_stages(read(os.path.join(ctx.docker, "Dockerfile")))
    fails = []
    for group in ("build", "runtime"):
        if group not in stages:
            fails.append("Dockerfile has no stage named %s (FROM ... AS %s)" % (group, group))
            continue
        listed = install_deps_group(ctx, group)
        want, got = set(listed), set(stages[group])
        if len(stages[group]) != len(got):
            fails.append("stage %s installs a package twice" % group)
        if len(listed) != len(want):
            fails.append("`install-deps --list %s` names a package twice" % group)
        if want - got:
            fails.append("stage %s lacks %s (in `install-deps --list %s`)"
                         % (group, " ".join(sorted(want - got)), group))
        if got - want:
            fails.append("stage %s installs %s, not in `install-deps --list %s`"
                         % (group, " ".join(sorted(got - want)), group))
    extra = [s for s in stages if s not in ("build", "runtime") and stages[s]]
    if extra:
        fails.append("stages %s install packages no group lists" % extra)
    return fails


def check_dockerfile_sources(ctx):
    """The build stage copies every top-level path CMakeLists.txt reads (but
    tests/, fuzz/ and bench/, off in the image), and the build context keeps them."""
    cmake = re.sub(r"#.*", "", read(os.path.join(ctx.source, "CMakeLists.txt")))
    needed = set(re.findall(r"(?:\$\{CMAKE_SOURCE_DIR\}/|[\s(])([a-z][a-z0-9_-]*)/", cmake))
    needed -= {"tests", "fuzz", "bench"}
    if "-DSHIPTRACK_BENCH=OFF" not in read(os.path.join(ctx.docker, "Dockerfile")):
        return ["the Dockerfile builds without -DSHIPTRACK_BENCH=OFF, so it needs bench/"]
    needed.add("CMakeLists.txt")
    text = re.sub(r"\\\n", " ", read(os.path.join(ctx.docker, "Dockerfile")))
    copied = set()
    for m in re.finditer(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+?)\s+\S+\s*$", text, re.M):
        copied.update(p.rstrip("/") for p in m.group(1).split())
    ignore = read(os.path.join(ctx.docker, "Dockerfile.dockerignore"))
    kept = {line[1:].rstrip("/") for line in ignore.splitlines() if line.startswith("!")}
    fails = []
    for path in sorted(needed):
        if not os.path.exists(os.path.join(ctx.source, path)):
            continue  # a build output named like a directory
        if path not in copied:
            fails.append("CMakeLists.txt reads %s/, which the Dockerfile does not COPY" % path)
        if path not in kept:
            fails.append("Dockerfile.dockerignore leaves %s out of the build context" % path)
    for path in sorted(copied):
        if path not in kept:
            fails.append("the Dockerfile copies %s, which Dockerfile.dockerignore leaves out" % path)
    return fails


def check_runtime_libraries(ctx):
    if not shutil.which("dpkg"):
        raise CheckError("dpkg is missing: this check needs Debian")
    allowed = set(install_deps_group(ctx, "runtime")) | {"libc6"}
    fails = []
    for binary in (ctx.shiptrack, ctx.sim):
        out = run(["objdump", "-p", binary])
        if out.returncode != 0:
            raise CheckError("objdump -p %s: %s" % (binary, out.stderr.strip()))
        for soname in re.findall(r"^\s+NEEDED\s+(\S+)", out.stdout, re.M):
            if soname.startswith(("libasan", "libubsan")):
                continue  # sanitizer builds only; the image is built without
            owners = run(["dpkg", "-S", "*/" + soname])
            pkgs = set()  # lines: "pkg[:arch][, pkg[:arch]]...: path"
            for line in owners.stdout.splitlines():
                for p in line.split(": ", 1)[0].split(","):
                    pkgs.add(p.strip().split(":")[0])
            if not pkgs & allowed:
                fails.append("%s needs %s (from %s), not in `install-deps --list runtime`"
                             % (os.path.basename(binary), soname,
                                ", ".join(sorted(pkgs)) or "no package"))
    return fails


def check_healthcheck(ctx):
    script = os.path.join(ctx.docker, "healthcheck.sh")
    fails = []

    def health(pid, listen):
        out = run(["sh", script], env=ctx.env(HEALTHCHECK_PID=str(pid),
                                              SHIPTRACK_API_LISTEN=listen))
        return out.returncode, out.stdout.strip()

    def start(roles, env):
        """A role process (against a dead database); its stderr is read by wait_for."""
        proc = subprocess.Popen([ctx.shiptrack, "run", "--roles", roles], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        return proc

    def stop(proc):
        drainer = drain(proc.stderr)
        if stop_process(proc) is None:
            fails.append("%s: still running %ds after SIGTERM" % (proc.args, PROBE_GUARD_S))
        kill_group(proc)
        drainer.join()
        proc.stderr.close()

    def wait_for(proc, pattern):
        guard = threading.Timer(PROBE_GUARD_S, kill_group, [proc])
        guard.start()
        try:
            for line in proc.stderr:
                m = re.search(pattern, line)
                if m:
                    return m
        finally:
            guard.cancel()
        return None

    env = ctx.env(**ROLE_ENV)
    api = start("api", env)
    try:
        m = wait_for(api, r"api\.start .*\(port (\d+)\)")
        if m is None:
            return ["the api role did not start"]
        port = m.group(1)
        rc, msg = health(api.pid, "0.0.0.0:" + port)
        if rc != 0:
            fails.append("api serving on %s: exit %d (%s), expected healthy" % (port, rc, msg))
        # The same process, asked on a port where nothing serves /healthz.
        rc, msg = health(api.pid, "127.0.0.1:1")
        if rc != 1:
            fails.append("api asked on a dead port: exit %d (%s), expected unhealthy" % (rc, msg))
    finally:
        stop(api)
    rc, msg = health(api.pid, "127.0.0.1:" + port)
    if rc != 1:
        fails.append("after the api stopped: exit %d (%s), expected unhealthy" % (rc, msg))
    poller = start("poller", env)
    try:
        if wait_for(poller, r"worker\.start") is None:
            return fails + ["the poller role did not start"]
        rc, msg = health(poller.pid, "127.0.0.1:1")
        if rc != 0 or "alive" not in msg:
            fails.append("poller: exit %d (%s), expected healthy (alive)" % (rc, msg))
    finally:
        stop(poller)
    return fails


CHECKS = [
    ("compose_parses", check_compose_parses),
    ("readme_overrides", check_readme_overrides),
    ("compose_shape", check_compose_shape),
    ("compose_commands", check_compose_commands),
    ("entrypoint_roles", check_entrypoint_roles),
    ("config_keys", check_config_keys),
    ("secrets_by_file", check_secrets_by_file),
    ("dockerfile_packages", check_dockerfile_packages),
    ("dockerfile_sources", check_dockerfile_sources),
    ("runtime_libraries", check_runtime_libraries),
    ("healthcheck", check_healthcheck),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--source", required=True, help="the checkout")
    ap.add_argument("--bin", required=True, help="build directory with shiptrack and the simulator")
    ap.add_argument("only", nargs="*", help="run only these checks")
    args = ap.parse_args()
    ctx = Ctx(os.path.abspath(args.source), os.path.abspath(args.bin))
    passed = failed = 0
    for name, fn in CHECKS:
        if args.only and name not in args.only and name != "compose_parses":
            continue
        start = time.monotonic()
        try:
            fails = fn(ctx)
        except (CheckError, OSError, subprocess.SubprocessError, yaml.YAMLError) as e:
            fails = [str(e)]
        if fails:
            failed += 1
            print("FAIL %s (%.1fs)" % (name, time.monotonic() - start))
            for f in fails:
                print("    " + f)
        else:
            passed += 1
            print("ok   %s (%.1fs)" % (name, time.monotonic() - start))
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
