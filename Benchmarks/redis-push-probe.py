#!/usr/bin/env python3
# Redis's CPU per appended line for two ways of reading the hub log's stream, with two
# readers and one writer at RATE lines a second (two cluster nodes at run a's pace), the two
# taking turns round by round on one redis-server this script starts and stops (BENCHMARKS.md,
# "Entries pushed instead of read: what Redis would save"):
#   pull: XADD; each reader XREAD BLOCK from its last id, then one XREAD without BLOCK for
#         what came with it (as RedisLog reads on main), then blocks again;
#   push: a Redis function XADDs and PUBLISHes the entry; each reader is a subscriber.
# Only Redis's CPU is meaningful here: the readers are Python, not nodes.
#
#   Benchmarks/redis-push-probe.py [RATE (100)] [SECONDS (15)] [ROUNDS (4)]
# Needs redis-server (Redis 7); all traffic is on 127.0.0.1.
import os, shutil, socket, subprocess, sys, tempfile, threading, time

def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

def parse(buf, i=0):
    """Returns (value, next index) or None when incomplete."""
    if i >= len(buf): return None
    t = buf[i:i+1]; j = buf.find(b"\r\n", i)
    if j < 0: return None
    line = buf[i+1:j]
    if t in (b"+", b"-", b":"): return (line, j + 2)
    if t == b"$":
        n = int(line)
        if n < 0: return (None, j + 2)
        if len(buf) < j + 2 + n + 2: return None
        return (buf[j+2:j+2+n], j + 2 + n + 2)
    if t in (b"*", b">"):
        n = int(line)
        if n < 0: return (None, j + 2)
        items = []; k = j + 2
        for _ in range(n):
            r = parse(buf, k)
            if r is None: return None
            items.append(r[0]); k = r[1]
        return (items, k)
    raise ValueError(buf[i:i+20])

class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port)); self.buf = b""
    def send(self, data): self.s.sendall(data)
    def reply(self):
        while True:
            r = parse(self.buf)
            if r is not None:
                self.buf = self.buf[r[1]:]; return r[0]
            data = self.s.recv(65536)
            if not data: raise EOFError
            self.buf += data
    def call(self, *args): self.send(enc(*args)); return self.reply()

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

def run(mode, port, pid, rate, seconds):
    key = f"s-{mode}-{time.time_ns()}"
    stop = threading.Event(); got = [0, 0]
    def pull_reader(n):
        c = Conn(port); last = "$"
        c.call("XADD", key, "*", "d", "start")  # so "$" is not needed later
        last = "0-0"
        while not stop.is_set():
            r = c.call("XREAD", "BLOCK", 500, "STREAMS", key, last)
            if r is None: continue
            entries = r[0][1]; last = entries[-1][0].decode(); got[n] += len(entries)
            r = c.call("XREAD", "STREAMS", key, last)
            if r is not None:
                entries = r[0][1]; last = entries[-1][0].decode(); got[n] += len(entries)
    def push_reader(n):
        c = Conn(port); c.call("SUBSCRIBE", "chan-" + key)
        c.s.settimeout(0.5)
        while not stop.is_set():
            try: m = c.reply()
            except socket.timeout: continue
            got[n] += 1
    readers = [threading.Thread(target=pull_reader if mode == "pull" else push_reader, args=(n,)) for n in range(2)]
    for t in readers: t.start()
    time.sleep(0.5)
    w = Conn(port); body = "x" * 100
    start_cpu = cpu(pid); start = time.time(); sent = 0
    while time.time() - start < seconds:
        if mode == "pull": w.call("XADD", key, "*", "d", body)
        else: w.call("FCALL", "chat_append", 1, key, body)
        sent += 1
        next_at = start + sent / rate
        delay = next_at - time.time()
        if delay > 0: time.sleep(delay)
    time.sleep(0.2)
    used = cpu(pid) - start_cpu
    stop.set()
    for t in readers: t.join()
    w.call("DEL", key)
    return sent, used, got

def start_redis(folder):
    probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes",
                              "--save", "", "--dir", folder], stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            return redis, port, Conn(port)
        except OSError:
            time.sleep(0.05)
    redis.kill(); raise SystemExit("redis-server did not start")

def main(c, port, pid, rate, seconds, rounds):
    lib = ("#!lua name=chatbench\nredis.register_function('chat_append', function(keys, args) "
           "local id = redis.call('XADD', keys[1], '*', 'd', args[1]) "
           "redis.call('PUBLISH', 'chan-' .. keys[1], id .. ' ' .. args[1]) return id end)")
    c.call("FUNCTION", "LOAD", "REPLACE", lib)
    # What Redis spends with nothing to do (its timers, the append-only file's once-a-second
    # sync), to set beside the figures per line.
    before = cpu(pid); time.sleep(seconds)
    print(f"idle: Redis CPU {(cpu(pid) - before) * 1000:.0f} ms in {seconds:.0f} s", flush=True)
    for r in range(rounds):
        for mode in (["pull", "push"] if r % 2 == 0 else ["push", "pull"]):
            sent, used, got = run(mode, port, pid, rate, seconds)
            print(f"round {r+1} {mode}: {sent} lines, Redis CPU {used*1000:.0f} ms, {used/sent*1e6:.0f} us per line, readers got {got}", flush=True)


if __name__ == "__main__":
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 100
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 15
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    folder = tempfile.mkdtemp(prefix="redis-push-probe-")
    redis, port, c = start_redis(folder)
    pid = redis.pid
    try:
        main(c, port, pid, rate, seconds, rounds)
    finally:
        redis.terminate(); redis.wait(timeout=10); shutil.rmtree(folder, ignore_errors=True)

