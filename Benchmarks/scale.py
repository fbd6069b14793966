#!/usr/bin/env python3
"""100 000 users through the cluster on one machine, with one node alone as the reference.

    python3 Benchmarks/scale.py [OUTDIR]

Builds release binaries, then for each layout (everyone in #general; everyone spread over
ROOMS rooms) runs:
  * the cluster: one Redis, NODES nodes, USERS users logged in through one `chat-bench crowd`
    process per node (each node's users from their own loopback addresses); then a `/wall`
    from an operator and one line in the sender's room, timed until the last member has it;
    a node joining (snapshot size, time to load and catch up, its memory: every member is a
    remote one there); a node killed with its users (time until the others released them);
  * the reference: one node without Redis, REFERENCE_USERS users, the same logins and lines.
An observer node with no users of its own runs next to the NODES: its CPU and memory are
the cost of applying everyone else's entries and holding everyone else as remote members.
First, the single stream's ceiling: XADDs per second into one Redis (redis-benchmark).
Environment: USERS (100000), NODES (6), ROOMS (1000), REFERENCE_USERS (10000),
CLUSTER_THREADS (1: event loop threads per node), LOGIN_CONCURRENCY (64 per process),
NODE_TIMEOUT (6: CLUSTER_NODE_TIMEOUT_SECONDS), LAYOUTS ("general rooms"), SETTLE (25: seconds
after the logins' memory figures, 2 s after the last login, before they are taken again once
the servers have given back what the logins freed), SERVER_BIN (another chat-server binary,
e.g. the build before a change, to compare the two in runs one after the other).
Needs redis-server (Debian: apt-get install redis-server). Everything it starts, it stops;
all traffic stays on loopback. Prints a summary; writes summary.json and the logs to OUTDIR.
"""
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USERS = int(os.environ.get("USERS", 100_000))
NODES = int(os.environ.get("NODES", 6))
ROOMS = int(os.environ.get("ROOMS", 1000))
REFERENCE_USERS = int(os.environ.get("REFERENCE_USERS", 10_000))
THREADS = os.environ.get("CLUSTER_THREADS", "1")
CONCURRENCY = os.environ.get("LOGIN_CONCURRENCY", "64")
NODE_TIMEOUT = int(os.environ.get("NODE_TIMEOUT", 6))
LAYOUTS = os.environ.get("LAYOUTS", "general rooms").split()
SETTLE = int(os.environ.get("SETTLE", 25))
SERVER = os.environ.get("SERVER_BIN") or os.path.join(ROOT, ".build/release/chat-server")
BENCH = os.path.join(ROOT, ".build/release/chat-bench")
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def now():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, process, timeout=30):
    deadline = now() + timeout
    while now() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args[0]} exited ({process.returncode}) before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid):
    return int(open(f"/proc/{pid}/statm").read().split()[1]) * PAGE


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


class Run:
    """Everything one layout starts, so that it can all be stopped."""

    def __init__(self, out, label):
        self.out, self.label = out, label
        self.processes = []
        self.work = tempfile.mkdtemp(prefix=f"chat-scale-{label}-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.run_id = f"{label}{os.getpid()}"

    def spawn(self, arguments, log, env=None, **kwargs):
        process = subprocess.Popen(arguments, env=env, stdout=kwargs.pop("stdout", open(log, "ab")),
                                   stderr=subprocess.STDOUT if "stdin" not in kwargs else open(log + ".err", "ab"),
                                   **kwargs)
        self.processes.append(process)
        return process

    def redis(self):
        port = free_port()
        process = self.spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes",
                              "--save", "", "--dir", self.work], f"{self.out}/{self.label}-redis.log")
        wait_port(port, process)
        return port, process

    def node(self, name, redis_port=None):
        mail = f"{self.work}/mail-{name}"
        os.makedirs(mail, exist_ok=True)
        env = dict(os.environ)
        for line in open(os.path.join(ROOT, "Benchmarks/bench-server.env")):
            if "=" in line and not line.startswith("#"):
                key, value = line.strip().split("=", 1)
                env[key] = value
        port, metrics = free_port(), free_port()
        env.update(TCP_PORT=str(port), METRICS_PORT=str(metrics), MAIL_DIR=mail, LOG_LEVEL="notice",
                   MAX_CONNECTIONS="20000", ADMIN_EMAILS=f"b0.{self.run_id}@bench.test")
        if redis_port:
            env.update(CLUSTER_REDIS_URL=f"redis://127.0.0.1:{redis_port}", NODE_ID=name, EVENT_LOOP_THREADS=THREADS,
                       CLUSTER_NODE_TIMEOUT_SECONDS=str(NODE_TIMEOUT))
        log = f"{self.out}/{self.label}-{name}.log"
        started = now()
        process = self.spawn([SERVER], log, env=env)
        wait_port(port, process)
        return {"name": name, "port": port, "metrics": metrics, "mail": mail, "process": process, "log": log,
                "started": started}

    def crowd(self, node, clients, first, rooms):
        arguments = [BENCH, "crowd", "--port", str(node["port"]), "--mail-dir", node["mail"], "--clients",
                     str(clients), "--first-index", str(first), "--run-id", self.run_id, "--rooms", str(rooms),
                     "--login-concurrency", CONCURRENCY]
        return self.spawn(arguments, f"{self.out}/{self.label}-crowd-{node['name']}.log", stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, bufsize=1)

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.work, ignore_errors=True)


def answer(crowd, timeout=600):
    """The crowd's next JSON line (its human summary lines are skipped)."""
    deadline = now() + timeout
    while now() < deadline:
        line = crowd.stdout.readline()
        if not line:
            raise RuntimeError(f"a crowd process ended: see its log ({crowd.returncode})")
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("a crowd process did not answer")


def ask(crowds, command):
    for crowd in crowds:
        crowd.stdin.write(command + "\n")
        crowd.stdin.flush()
    return [answer(crowd, timeout=60) for crowd in crowds]


def log_in(run, nodes, users, rooms, pids):
    """Logs `users` in, spread over `nodes`; returns the crowds and the login figures."""
    cpu_before = [cpu_seconds(pid) for pid in pids]
    share, extra = divmod(users, len(nodes))
    started = now()
    crowds, first = [], 0
    for index, node in enumerate(nodes):
        count = share + (1 if index < extra else 0)
        crowds.append(run.crowd(node, count, first, rooms))
        first += count
    reports = [answer(crowd) for crowd in crowds]
    seconds = now() - started
    cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before)]
    return crowds, {
        "users": users, "seconds": round(seconds, 2), "logins_per_second": round(users / seconds),
        "p50_ms_worst_process": round(max(r["login_p50_ms"] for r in reports), 1),
        "p99_ms_worst_process": round(max(r["login_p99_ms"] for r in reports), 1),
        "cpu_us_per_login": [round(c * 1e6 / users, 1) for c in cpu],
        "bench_cpu_us_per_login": round(sum(r["login_bench_cpu_seconds"] for r in reports) * 1e6 / users, 1),
    }


def quit(crowds):
    for crowd in crowds:
        if crowd.poll() is None:
            crowd.stdin.write("quit\n")
            crowd.stdin.flush()


def time_line(crowds, command, expected, timeout=30):
    """Sends `command` from the first crowd's client 0 or 1, watching for its text; returns the
    seconds until the last of `expected` members had it, and how many did."""
    marker = f"scale-{int(now() * 1e6)}"
    ask(crowds, f"watch {marker}")
    client, text = command
    sent = ask(crowds[:1], f"send {client} {text.format(marker=marker)}")[0]["sent_ns"]
    deadline = now() + timeout
    while now() < deadline:
        reports = ask(crowds, "report")
        seen = sum(r["seen"] for r in reports)
        if seen >= expected:
            break
        time.sleep(0.2)
    last = max(r["last_ns"] for r in reports)
    return {"seen": seen, "expected": expected, "seconds_until_the_last": round((last - sent) / 1e9, 3)}


def log_entries(redis_port):
    """Entries ever added to the hub log."""
    info = subprocess.run(["redis-cli", "-p", str(redis_port), "XINFO", "STREAM", "{chat}:log"],
                          capture_output=True, text=True).stdout.split("\n")
    return int(info[info.index("entries-added") + 1]) if "entries-added" in info else 0


def redis_ceiling(out):
    """XADDs per second one Redis takes from four pipelining clients, entries of the size a
    login's are: the single stream's ceiling, without readers."""
    run = Run(out, "redis-ceiling")
    try:
        port, _ = run.redis()
        payload = "x" * 120
        text = subprocess.run(["redis-benchmark", "-p", str(port), "-n", "400000", "-c", "4", "-P", "16", "-q",
                               "XADD", "{chat}:log", "MAXLEN", "~", "100000", "*", "c", payload],
                              capture_output=True, text=True).stdout
        match = re.findall(r"([\d.]+) requests per second", text)
        return {"xadd_per_second": round(float(match[-1])) if match else None}
    finally:
        run.stop()


def node_memory(node, baseline):
    return rss_bytes(node["process"].pid) - baseline


def cluster(out, layout):
    rooms = ROOMS if layout == "rooms" else 1
    run = Run(out, f"cluster-{layout}")
    result = {"layout": layout, "rooms": rooms, "nodes": NODES, "users": USERS}
    try:
        redis_port, redis = run.redis()
        nodes = [run.node(f"node{n}", redis_port) for n in range(1, NODES + 1)]
        # The observer has no users: what it spends and holds is the cost of the others'.
        observer = run.node("observer", redis_port)
        time.sleep(1)
        empty = [rss_bytes(node["process"].pid) for node in nodes + [observer]]
        pids = [node["process"].pid for node in nodes] + [redis.pid, observer["process"].pid]
        idle_before, idle_start = log_entries(redis_port), now()
        time.sleep(3)
        heartbeats_per_second = (log_entries(redis_port) - idle_before) / (now() - idle_start)
        entries_before, login_start = log_entries(redis_port), now()
        crowds, result["login"] = log_in(run, nodes, USERS, rooms, pids)
        entries = log_entries(redis_port) - entries_before - heartbeats_per_second * (now() - login_start)
        cpu = result["login"].pop("cpu_us_per_login")
        result["login"]["cpu_us_per_login"] = {"nodes": cpu[:NODES], "redis": cpu[NODES], "observer": cpu[NODES + 1]}
        result["log"] = {
            "entries_per_login": round(entries / USERS, 2),
            "heartbeat_entries_per_second": round(heartbeats_per_second, 1),
            "redis_cpu_us_per_entry": round(cpu[NODES] * USERS / entries, 2),
            "observer_cpu_us_per_entry": round(cpu[NODES + 1] * USERS / entries, 2),
        }
        time.sleep(2)
        result["rss_bytes_per_user_per_node"] = [
            round(node_memory(node, base) / USERS) for node, base in zip(nodes, empty)]
        result["rss_bytes_per_remote_member_observer"] = round(node_memory(observer, empty[-1]) / USERS)
        result["redis_rss_bytes"] = rss_bytes(redis.pid)
        # Again once the nodes have given back what the logins freed (their memory reclaimer
        # looks every 10 s), as the idle benchmark measures a connection.
        time.sleep(SETTLE)
        result["settled_after_seconds"] = SETTLE + 2
        result["rss_bytes_per_user_per_node_settled"] = [
            round(node_memory(node, base) / USERS) for node, base in zip(nodes, empty)]
        result["rss_bytes_per_remote_member_observer_settled"] = round(node_memory(observer, empty[-1]) / USERS)
        connected = sum(r["connected"] for r in ask(crowds, "report"))
        result["wall"] = time_line(crowds, (0, "/wall {marker}"), connected)
        in_room = connected if rooms == 1 else len(range(1, USERS, rooms))
        result["line"] = time_line(crowds, (1, "{marker} a line to the room"), in_room)

        # A node joins: everyone is a remote member there.
        snapshot = subprocess.run(["redis-cli", "-p", str(redis_port), "STRLEN", "{chat}:snapshot"],
                                  capture_output=True, text=True).stdout.strip()
        joiner = run.node("joiner", redis_port)
        joined = None
        for _ in range(1200):
            text = open(joiner["log"]).read()
            match = re.search(r"entries_replayed=(\d+).*snapshot=(\S+).*users_online=(\d+).*Joined the cluster", text)
            if match:
                joined = now()
                break
            time.sleep(0.05)
        time.sleep(2)
        result["join"] = {
            "snapshot_bytes": int(snapshot or 0),
            "seconds_to_load_and_catch_up": round(joined - joiner["started"], 2) if joined else None,
            "entries_replayed": int(match.group(1)) if match else None,
            "users_online": int(match.group(3)) if match else None,
            "rss_bytes": rss_bytes(joiner["process"].pid),
            "rss_bytes_per_remote_member": round((rss_bytes(joiner["process"].pid) - min(empty)) / USERS),
        }

        # A node killed with its users: the others release them.
        victim, survivors = nodes[-1], nodes[:-1] + [joiner, observer]
        before = {n["name"]: metric(n["metrics"], "chat_users_online") for n in survivors}
        local = sum(r["connected"] for r in ask(crowds[-1:], "report"))
        cpu_before = [cpu_seconds(n["process"].pid) for n in survivors] + [cpu_seconds(redis.pid)]
        killed = now()
        victim["process"].kill()
        released = {}
        while len(released) < len(survivors) and now() - killed < NODE_TIMEOUT + 30:
            for n in survivors:
                if n["name"] not in released:
                    online = metric(n["metrics"], "chat_users_online")
                    if online is not None and online <= before[n["name"]] - local:
                        released[n["name"]] = now() - killed
            time.sleep(0.05)
        time.sleep(1)
        cpu = [cpu_seconds(n["process"].pid) - c for n, c in zip(survivors, cpu_before[:-1])]
        departures = ask(crowds[:-1], "report")
        result["kill"] = {
            "users_on_the_killed_node": local,
            "seconds_until_released_per_node": {k: round(v, 2) for k, v in released.items()},
            "target_seconds": NODE_TIMEOUT + 2,
            "cpu_seconds_per_node_from_kill_to_one_second_after": [round(c, 2) for c in cpu],
            "departures_heard": sum(r["departures"] for r in departures),
            "seconds_until_last_departure_heard": round(
                max(r["last_departure_ns"] for r in departures) / 1e9 - killed, 2)
            if any(r["departures"] for r in departures) else None,
        }
        quit(crowds)
        return result
    finally:
        run.stop()


def reference(out, layout):
    rooms = max(1, ROOMS * REFERENCE_USERS // USERS) if layout == "rooms" else 1
    run = Run(out, f"alone-{layout}")
    result = {"layout": layout, "rooms": rooms, "nodes": 1, "users": REFERENCE_USERS}
    try:
        node = run.node("alone")
        time.sleep(1)
        empty = rss_bytes(node["process"].pid)
        crowds, result["login"] = log_in(run, [node], REFERENCE_USERS, rooms, [node["process"].pid])
        time.sleep(2)
        result["rss_bytes_per_user"] = round(node_memory(node, empty) / REFERENCE_USERS)
        time.sleep(SETTLE)
        result["rss_bytes_per_user_settled"] = round(node_memory(node, empty) / REFERENCE_USERS)
        connected = sum(r["connected"] for r in ask(crowds, "report"))
        result["wall"] = time_line(crowds, (0, "/wall {marker}"), connected)
        in_room = connected if rooms == 1 else len(range(1, REFERENCE_USERS, rooms))
        result["line"] = time_line(crowds, (1, "{marker} a line to the room"), in_room)
        quit(crowds)
        return result
    finally:
        run.stop()


def main():
    if not shutil.which("redis-server"):
        sys.exit("scale.py needs redis-server (Debian: apt-get install redis-server)")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if USERS // NODES + 100 > hard:
        sys.exit(f"{USERS // NODES} users per node do not fit in {hard} descriptors: give more NODES")
    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="chat-scale-")
    os.makedirs(out, exist_ok=True)
    for product in ("chat-server", "chat-bench"):
        subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    results = [{"redis_ceiling": redis_ceiling(out)}]
    print(json.dumps(results[0]), flush=True)
    for layout in LAYOUTS:
        for measure in (reference, cluster):
            result = measure(out, layout)
            print(json.dumps(result), flush=True)
            results.append(result)
    json.dump(results, open(f"{out}/summary.json", "w"), indent=2)
    print(f"results in {out}")


if __name__ == "__main__":
    main()
