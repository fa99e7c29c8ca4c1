# Shared helpers of the HTTP/2 abuse runs (bench/h2_abuse/run.sh starts the router and backend).
# Router under test: berth_router_bench started by ./start.sh (plain 47101, TLS 47102).
import os, socket, ssl, struct, subprocess, threading, time

HOST = "127.0.0.1"
PLAIN = int(os.environ.get("PLAIN_PORT", 47101))
TLSP = int(os.environ.get("TLS_PORT", 47102))
HZ = os.sysconf("SC_CLK_TCK")


def router_pid():
    out = os.environ.get("OUT", "bench/out/h2_abuse")
    return int(open(os.environ.get("RPID", out + "/router.pid")).read().strip())


def proc_stats(pid):
    st = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "Threads"):
            st[k] = v.strip()
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    st["ticks"] = int(f[11]) + int(f[12])  # utime + stime
    st["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    st["rss_mb"] = int(st["VmRSS"].split()[0]) / 1024
    return st


def victim(proto="h1", src="127.0.0.2", path="/1k.bin", timeout=10):
    """A normal client: curl from another source address. Returns (code, seconds)."""
    args = ["curl", "-sk", "-o", "/dev/null", "--interface", src, "--max-time", str(timeout),
            "-w", "%{http_code} %{time_total}"]
    if proto == "h2":
        args += ["--http2"]
        url = f"https://{HOST}:{TLSP}{path}"
    elif proto == "h1":
        args += ["--http1.1"]
        url = f"https://{HOST}:{TLSP}{path}"
    else:
        url = f"http://{HOST}:{PLAIN}{path}"
    out = subprocess.run(args + [url], capture_output=True, text=True).stdout.split()
    if len(out) != 2:
        return ("ERR", float(timeout))
    return (out[0], float(out[1]))


class Monitor(threading.Thread):
    """Samples the router's RSS/CPU/fds and a victim's latency (h1, h2, plain) every interval."""

    def __init__(self, interval=1.0, label=""):
        super().__init__(daemon=True)
        self.interval, self.label = interval, label
        self.stop_ev = threading.Event()
        self.samples = []
        self.pid = router_pid()

    def run(self):
        last = proc_stats(self.pid)
        lt = time.time()
        t0 = lt
        while not self.stop_ev.is_set():
            v = [victim(p) for p in ("h1", "h2", "plain")]
            self.stop_ev.wait(max(0, self.interval - (time.time() - lt)))
            try:
                s = proc_stats(self.pid)
            except FileNotFoundError:
                print("ROUTER GONE")
                return
            now = time.time()
            cpu = (s["ticks"] - last["ticks"]) / HZ / (now - lt) * 100
            last, lt = s, now
            rec = (now - t0, s["rss_mb"], cpu, s["fds"], v)
            self.samples.append(rec)
            print(f"[mon {self.label}] t={rec[0]:6.1f}s rss={s['rss_mb']:7.1f}MB cpu={cpu:5.0f}% "
                  f"fds={s['fds']:5d} victim h1={v[0][0]}/{v[0][1]*1000:.0f}ms "
                  f"h2={v[1][0]}/{v[1][1]*1000:.0f}ms plain={v[2][0]}/{v[2][1]*1000:.0f}ms",
                  flush=True)

    def stop(self):
        self.stop_ev.set()
        self.join()
        if not self.samples:
            return
        worst = max(max(x[1] for x in s[4]) for s in self.samples)
        fails = sum(1 for s in self.samples for x in s[4] if x[0] != "200")
        print(f"[mon {self.label}] SUMMARY max_rss={max(s[1] for s in self.samples):.1f}MB "
              f"max_cpu={max(s[2] for s in self.samples):.0f}% max_fds={max(s[3] for s in self.samples)} "
              f"victim_worst={worst*1000:.0f}ms victim_failures={fails}/{3*len(self.samples)}", flush=True)


def tcp(port=TLSP, src="127.0.0.1", timeout=None):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect((HOST, port))
    return s


def tls(alpn=("h2",), src="127.0.0.1", timeout=30):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    s = tcp(TLSP, src, timeout)
    t = ctx.wrap_socket(s, server_hostname="localhost")
    return t


def wait_closed(sock, limit):
    """Reads until EOF/reset; returns seconds until closed, or None if still open at limit."""
    t0 = time.time()
    sock.settimeout(1)
    while time.time() - t0 < limit:
        try:
            d = sock.recv(65536)
            if not d:
                return time.time() - t0
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            return time.time() - t0
    return None


# --- raw HTTP/2 ------------------------------------------------------------------------------
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINUP, CONT = range(10)
END_STREAM, ACK, END_HEADERS = 1, 1, 4


def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload


def settings(**kv):
    ids = {"HEADER_TABLE_SIZE": 1, "ENABLE_PUSH": 2, "MAX_CONCURRENT_STREAMS": 3,
           "INITIAL_WINDOW_SIZE": 4, "MAX_FRAME_SIZE": 5, "MAX_HEADER_LIST_SIZE": 6}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[k], v) for k, v in kv.items()))


def hpack_int(v, prefix_bits, first=0):
    m = (1 << prefix_bits) - 1
    if v < m:
        return bytes([first | v])
    out = [first | m]
    v -= m
    while v >= 128:
        out.append((v & 127) | 128)
        v >>= 7
    out.append(v)
    return bytes(out)


def hpack_lit(name, value, index=False):
    """Literal with a new name; index=True adds it to the dynamic table."""
    name, value = name.encode() if isinstance(name, str) else name, value.encode() if isinstance(value, str) else value
    return (b"\x40" if index else b"\x00") + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def request_block(path="/1k.bin", method="GET", authority="localhost", extra=()):
    b = hpack_lit(":method", method) + hpack_lit(":scheme", "https") + hpack_lit(":path", path) + \
        hpack_lit(":authority", authority)
    for n, v in extra:
        b += hpack_lit(n, v)
    return b


def h2conn(src="127.0.0.1", init_settings=None, timeout=30):
    t = tls(("h2",), src, timeout)
    assert t.selected_alpn_protocol() == "h2", t.selected_alpn_protocol()
    t.sendall(PREFACE + (init_settings if init_settings is not None else settings()))
    return t


class FrameReader:
    def __init__(self, sock):
        self.s, self.buf = sock, b""

    def next(self):
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    f = self.buf[:9 + n]
                    self.buf = self.buf[9 + n:]
                    return f[3], f[4], int.from_bytes(f[5:9], "big") & 0x7FFFFFFF, f[9:]
            d = self.s.recv(65536)
            if not d:
                return None
            self.buf += d
