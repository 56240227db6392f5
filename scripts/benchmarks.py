#!/usr/bin/env python3
"""Runs the workspace's benchmarks and writes BENCHMARKS.md from their output.

    scripts/benchmarks.py            # full criterion runs (about 10 minutes on 2 cores)
    scripts/benchmarks.py --quick    # 1 s warm-up, 3 s measurement per benchmark
    scripts/benchmarks.py --peers-only [--quick]   # only benches/peers (issue 11's baseline):
                                     # writes benches/peers/{RESULTS.md,chart.svg}, not BENCHMARKS.md

Every number in BENCHMARKS.md comes from this one command, on the machine it ran on:

- criterion results: target/criterion/<group>/<function>/new/{estimates,benchmark}.json,
  cleared first so only this run's benchmarks appear;
- end-to-end events/s, bytes/event on the wire and heap bytes per queued event: the
  `E2E {json}` lines printed by `cargo bench -p raceway-rt-tokio --bench e2e`.
"""
import datetime
import json
import math
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"
OUT = ROOT / "BENCHMARKS.md"

# (package, bench) in run order; the comparison first.
CRITERION_BENCHES = [
    ("raceway-rt-tokio", "compare"),
    ("raceway-proto", "encode"),
    ("raceway-proto", "queue"),
    ("raceway-proto", "proto"),
    ("raceway-proto", "analysis"),
    ("raceway-rt-tokio", "record"),
    ("raceway-blocking", "record"),
    ("raceway-rt-async-std", "record"),
]


def sh(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, check=True, text=True, **kw)


def out(cmd):
    try:
        return subprocess.run(cmd, cwd=ROOT, check=True, text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine():
    model = "?"
    for line in out(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "cpus (nproc)": out(["nproc"]),
        "cpu model": model,
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "rustc": out(["rustc", "--version"]),
        "commit": out(["git", "rev-parse", "--short", "HEAD"]) + ("+dirty" if out(["git", "status", "--porcelain", "--untracked-files=no"]) else ""),
        "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
    }


def read_criterion(root=CRITERION):
    results = {}
    for bj in root.glob("**/new/benchmark.json"):
        est = bj.parent / "estimates.json"
        if not est.exists():
            continue
        b = json.loads(bj.read_text())
        e = json.loads(est.read_text())
        results[b["full_id"]] = {
            "group": b["group_id"],
            "function": b.get("function_id"),
            "value": b.get("value_str"),
            "throughput": b.get("throughput"),
            "mean": e["mean"]["point_estimate"],
            "lo": e["mean"]["confidence_interval"]["lower_bound"],
            "hi": e["mean"]["confidence_interval"]["upper_bound"],
            "median": e["median"]["point_estimate"],
        }
    return results


def ns(v):
    if v >= 1e9:
        return f"{v / 1e9:.3f} s"
    if v >= 1e6:
        return f"{v / 1e6:.3f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.3f} µs"
    return f"{v:.1f} ns"


def rate(r):
    t = r["throughput"] or {}
    secs = r["mean"] / 1e9
    if "Elements" in t:
        return f"{t['Elements'] / secs:,.0f} elem/s"
    if "Bytes" in t:
        return f"{t['Bytes'] / secs / 1048576:,.1f} MiB/s"
    return ""


# -- issue 11's baseline: benches/peers (a crate outside the workspace) -------------------
PEERS = ROOT / "benches" / "peers"
PEERS_OUT = PEERS / "RESULTS.md"
PEERS_CHART = PEERS / "chart.svg"
PEER_CLIENTS = ["raceway-rt-tokio", "raceway-blocking", "raceway-0.1", "tracing", "otel"]
PEER_COLORS = {"raceway-rt-tokio": "#1f77b4", "raceway-blocking": "#2ca02c", "raceway-0.1": "#d62728",
               "tracing": "#9467bd", "otel": "#ff7f0e"}


def run_peers(extra, env):
    """Runs benches/peers (hot_path under criterion, e2e_real and memory printing JSON lines)."""
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    crit = target / "criterion"
    for old in crit.glob("hot_path_*"):
        shutil.rmtree(old)
    env = dict(env, CARGO_TARGET_DIR=str(target))
    manifest = ["--manifest-path", str(PEERS / "Cargo.toml")]
    lines = {}
    for bench, args in [("hot_path", extra), ("e2e_real", []), ("memory", [])]:
        print(f"==> cargo bench --manifest-path benches/peers/Cargo.toml --bench {bench}", flush=True)
        o = sh(["cargo", "bench", *manifest, "--bench", bench, *args], env=env, capture_output=True).stdout
        sys.stdout.write(o)
        for tag, js in re.findall(r"^(PEERS_\w+) (\{.*\})$", o, re.M):
            lines.setdefault(tag, []).append(json.loads(js))
    res = {k: v for k, v in read_criterion(crit).items() if v["group"].startswith("hot_path_")}
    return {"res": res, "cpu": lines.get("PEERS_THREAD_CPU", []), "e2e": lines.get("PEERS_E2E", []),
            "mem": lines.get("PEERS_MEM", [])}


def peers_section(p):
    res = p["res"]
    med = lambda k: res[k]["median"] if k in res else None
    fmt = lambda v: ns(v) if v is not None else "not run"
    lines = []
    w = lines.append
    w("## Issue 11: the hot path beside raceway 0.1, tracing and OpenTelemetry (same run)")
    w("")
    w("`benches/peers` (a crate of its own, outside the workspace). Medians of criterion's estimates;")
    w("ratio = median / raceway 0.1's median in the same group. Every contender exports: this SDK to a")
    w("local collector answering 200 (no pacing, flushed between timed chunks, none dropped: checked),")
    w("raceway 0.1 to the same collector, `tracing` into a capturing Layer, OpenTelemetry through a")
    w("batch span processor into a no-op exporter. Chart: `benches/peers/chart.svg`.")
    w("")
    w("### Per event, one thread, in a request flow (goal: ≤ 80 ns caller cost)")
    w("")
    w("| contender | median | ratio vs raceway 0.1 |")
    w("|---|---|---|")
    base = med("hot_path_record/raceway-0.1")
    for c in PEER_CLIENTS:
        v = med(f"hot_path_record/{c}")
        w(f"| {c} | {fmt(v)} | {v / base:.2f} |" if v and base else f"| {c} | {fmt(v)} | |")
    w("")
    w("### Per event vs vector clock size (goal: flat)")
    w("")
    w("| contender | 1 | 16 | 128 | 128 / 1 |")
    w("|---|---|---|---|---|")
    for c in ["raceway-rt-tokio", "raceway-blocking", "raceway-0.1"]:
        vs = [med(f"hot_path_clock/{c}/{n}") for n in (1, 16, 128)]
        r = f"{vs[2] / vs[0]:.2f}" if vs[0] and vs[2] else ""
        w(f"| {c} | " + " | ".join(fmt(v) for v in vs) + f" | {r} |")
    w("")
    w("### Per event per thread vs threads recording at once (goal: ≤ 1.5x at 4 threads)")
    w("")
    w("Wall time per event per thread (criterion), and in brackets the thread-CPU time per event")
    w("of the same runs. On this machine's 2 cores, 4 threads share 2 cores: wall time per thread")
    w("includes waiting for a core (about 2x by itself); thread CPU does not.")
    w("")
    cpu = {(r["client"], int(r["threads"])): r["cpu_ns_per_event"] for r in p["cpu"]}
    w("| contender | 1 thread | 2 threads | 4 threads | 4 / 1 (wall) | 4 / 1 (CPU) |")
    w("|---|---|---|---|---|---|")
    for c in PEER_CLIENTS:
        vs = [med(f"hot_path_threads/{c}/{t}") for t in (1, 2, 4)]
        cs = [cpu.get((c, t)) for t in (1, 2, 4)]
        cells = [f"{fmt(v)} ({ns(x) if x else '?'})" for v, x in zip(vs, cs)]
        rw = f"{vs[2] / vs[0]:.2f}" if vs[0] and vs[2] else ""
        rc = f"{cs[2] / cs[0]:.2f}" if cs[0] and cs[2] else ""
        w(f"| {c} | " + " | ".join(cells) + f" | {rw} | {rc} |")
    w("")
    w("### Outside any flow, and disabled (goal: ≤ 5 ns outside a flow)")
    w("")
    w("| case | median |")
    w("|---|---|")
    for k in sorted(k for k in res if res[k]["group"] == "hot_path_noflow"):
        w(f"| {res[k]['function']} | {fmt(med(k))} |")
    w("")
    w("### End to end to the real Raceway server (goal: ≤ 500 ns process CPU per delivered event)")
    w("")
    w("`benches/peers/benches/e2e_real.rs`: N events in one flow, default pacing, flush, then")
    w("`wait_for_captured(N)`; this process's CPU (all threads; the server is another process) from")
    w("the first record to the flush's return, less the idle rate measured before; \"to captured\"")
    w("also counts the polling of the server while waiting. The exporter, sender and other-threads")
    w("columns split the CPU to the flush by thread (`/proc/self/task/*/schedstat`; the caller is")
    w("among the other threads). Each client's first round also pays its start-up (first")
    w("connection, the queue's first blocks).")
    w("")
    w("| client | events | captured | caller wall ns/event | caller CPU ns/event | process CPU ns/event (to flush, less idle) | exporter thread | sender thread | other threads | process CPU ns/event (to captured) |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    split = lambda v: "–" if v is None else f"{v:.0f}"
    for r in p["e2e"]:
        w(f"| {r['client']} | {r['events']:,} | {r['captured']:,} | {r['caller_wall_ns_per_event']:.0f} | "
          f"{r['caller_cpu_ns_per_event']:.0f} | {r['process_cpu_ns_per_event_to_flush_less_idle']:.0f} | "
          f"{split(r.get('exporter_cpu_ns_per_event'))} | {split(r.get('sender_cpu_ns_per_event'))} | "
          f"{split(r.get('other_threads_cpu_ns_per_event'))} | "
          f"{r['process_cpu_ns_per_event_to_captured']:.0f} |")
    w("")
    w("### Heap bytes per queued event (goal: ≤ 128 bytes)")
    w("")
    w("`benches/peers/benches/memory.rs`: a counting global allocator, live bytes after recording")
    w("divided by the events held (nothing can leave: refused collector, or a processor holding all).")
    w("")
    w("| contender | events held | bytes per queued event | what holds them |")
    w("|---|---|---|---|")
    for r in p["mem"]:
        w(f"| {r['client']} | {r['held']:,} | {r['bytes_per_queued_event']:.0f} | {r['note']} |")
    w("")
    return lines


def write_chart(p, path):
    """Two panels, ns per event (median) vs threads and vs clock size, as plain SVG."""
    res = p["res"]
    med = lambda k: res[k]["median"] if k in res else None
    W, H, L, R, T, B = 460, 340, 60, 20, 40, 50
    panels = [
        ("ns per event per thread vs threads", [1, 2, 4], "threads",
         {c: [med(f"hot_path_threads/{c}/{x}") for x in (1, 2, 4)] for c in PEER_CLIENTS}),
        ("ns per event vs vector clock components", [1, 16, 128], "clock components",
         {c: ([med(f"hot_path_clock/{c}/{x}") for x in (1, 16, 128)] if c.startswith("raceway")
              else [med(f"hot_path_record/{c}")] * 3) for c in PEER_CLIENTS}),
    ]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 30}" '
           'font-family="sans-serif" font-size="11">', f'<rect width="{2 * W}" height="{H + 30}" fill="white"/>']
    for pi, (title, xs, xlabel, series) in enumerate(panels):
        ox = pi * W
        vals = [v for s in series.values() for v in s if v]
        # Log scale: raceway 0.1's microseconds and the SDK's nanoseconds on one axis.
        steps = [m * 10 ** e for e in range(0, 9) for m in (1, 2, 5)]
        lo = max((t for t in steps if t <= min(vals)), default=1) if vals else 1
        hi = min((t for t in steps if t >= max(vals)), default=10 ** 9) if vals else 10
        px = lambda i: ox + L + (W - L - R) * (i / (len(xs) - 1))
        py = lambda v: T + (H - T - B) * (1 - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))
        out.append(f'<text x="{ox + W / 2}" y="20" text-anchor="middle" font-size="13">{title}</text>')
        out.append(f'<line x1="{ox + L}" y1="{H - B}" x2="{ox + W - R}" y2="{H - B}" stroke="black"/>')
        out.append(f'<line x1="{ox + L}" y1="{T}" x2="{ox + L}" y2="{H - B}" stroke="black"/>')
        for v in (t for t in steps if lo <= t <= hi):
            out.append(f'<line x1="{ox + L - 4}" y1="{py(v):.1f}" x2="{ox + W - R}" y2="{py(v):.1f}" stroke="#ddd"/>')
            label = f"{v / 1000:g} µs" if v >= 1000 else f"{v:g} ns"
            out.append(f'<text x="{ox + L - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{label}</text>')
        for i, x in enumerate(xs):
            out.append(f'<text x="{px(i):.1f}" y="{H - B + 16}" text-anchor="middle">{x}</text>')
        out.append(f'<text x="{ox + W / 2}" y="{H - B + 34}" text-anchor="middle">{xlabel} (time per event, median, log scale)</text>')
        for c, ys in series.items():
            pts = [(px(i), py(y)) for i, y in enumerate(ys) if y]
            if not pts:
                continue
            dash = ' stroke-dasharray="5,4"' if pi == 1 and not c.startswith("raceway") else ""
            out.append(f'<polyline fill="none" stroke="{PEER_COLORS[c]}" stroke-width="2"{dash} points="'
                       + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
            for a, b in pts:
                out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{PEER_COLORS[c]}"/>')
    for i, c in enumerate(PEER_CLIENTS):
        x = 20 + i * 170
        out.append(f'<rect x="{x}" y="{H + 8}" width="14" height="10" fill="{PEER_COLORS[c]}"/>')
        label = c + (" (no clock: dashed)" if c in ("tracing", "otel") else "")
        out.append(f'<text x="{x + 18}" y="{H + 17}">{label}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path}")


def peers_only(extra, env):
    """`--peers-only`: runs benches/peers alone; writes its chart and RESULTS.md (not BENCHMARKS.md)."""
    p = run_peers(extra, env)
    write_chart(p, PEERS_CHART)
    lines = ["# benches/peers results", "", "Generated by `scripts/benchmarks.py --peers-only`.", "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine().items()]
    lines += [""] + peers_section(p)
    PEERS_OUT.write_text("\n".join(lines))
    print(f"wrote {PEERS_OUT}")


def main():
    quick = "--quick" in sys.argv[1:]
    extra = ["--", "--warm-up-time", "1", "--measurement-time", "3"] if quick else []
    if "--peers-only" in sys.argv[1:]:
        return peers_only(extra, dict(os.environ, CARGO_TERM_COLOR="never"))
    if CRITERION.exists():
        shutil.rmtree(CRITERION)
    info = machine()
    env = dict(os.environ, CARGO_TERM_COLOR="never")
    for pkg, bench in CRITERION_BENCHES:
        print(f"==> cargo bench -p {pkg} --bench {bench}", flush=True)
        sh(["cargo", "bench", "-p", pkg, "--bench", bench, *extra], env=env)
    print("==> cargo bench -p raceway-rt-tokio --bench e2e", flush=True)
    e2e_out = sh(["cargo", "bench", "-p", "raceway-rt-tokio", "--bench", "e2e"], env=env, capture_output=True).stdout
    sys.stdout.write(e2e_out)
    e2e = [json.loads(m.group(1)) for m in re.finditer(r"^E2E (\{.*\})$", e2e_out, re.M)]
    peers = run_peers(extra, env)
    write_chart(peers, PEERS_CHART)
    res = read_criterion()

    lines = []
    w = lines.append
    w("# Benchmarks")
    w("")
    w("Generated by `scripts/benchmarks.py`" + (" --quick" if quick else "") + " from this run's criterion output")
    w("(`target/criterion/*/*/new/estimates.json`, mean with its 95 % confidence interval) and the")
    w("`E2E` lines of `cargo bench -p raceway-rt-tokio --bench e2e`. Reproduce every number with")
    w("`scripts/benchmarks.py` (add `--quick` for shorter criterion runs). Do not edit by hand.")
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("|---|---|")
    for k, v in info.items():
        w(f"| {k} | {v} |")
    w("")

    w("## Per-event record cost against the published `raceway` 0.1 (same run)")
    w("")
    w("`track_state_change` inside a flow, export mode, every call taking the enqueue path")
    w("(`raceway-rt-tokio/benches/compare.rs`). Ratio = this client's mean / raceway 0.1's mean")
    w("(below 1: cheaper).")
    w("")
    base = res.get("record_per_event/raceway-0.1")
    w("| client | mean per event | 95 % CI | ratio vs raceway 0.1 |")
    w("|---|---|---|---|")
    for client in ["raceway-rt-tokio", "raceway-blocking", "raceway-rt-async-std", "raceway-0.1"]:
        r = res.get(f"record_per_event/{client}")
        if not r:
            w(f"| {client} | not run | | |")
            continue
        ratio = f"{r['mean'] / base['mean']:.2f}" if base else "?"
        w(f"| {client} | {ns(r['mean'])} | {ns(r['lo'])} – {ns(r['hi'])} | {ratio} |")
    w("")

    w("## Encoder throughput")
    w("")
    w("`BatchEncoder` over 1000 realistic `StateChange` events (`raceway-proto/benches/encode.rs`),")
    w("against `serde_json::to_writer` of the same events as a baseline.")
    w("")
    w("| benchmark | mean per iteration | throughput |")
    w("|---|---|---|")
    for k in sorted(k for k in res if res[k]["group"] == "encode"):
        r = res[k]
        w(f"| {k} | {ns(r['mean'])} | {rate(r)} |")
    w("")

    w("## Queue designs")
    w("")
    w("`raceway-proto/benches/queue.rs`: ns per push of a 96-byte item (a record), 1 and 4 threads pushing at")
    w("once, drained between chunks (never full). `pipe` is what the clients use.")
    w("")
    w("| design | 1 thread | 4 threads |")
    w("|---|---|---|")
    for d in ["pipe", "mpsc_list", "sync_channel"]:
        a, b = res.get(f"queue_push/{d}/1"), res.get(f"queue_push/{d}/4")
        w(f"| {d} | {ns(a['mean']) if a else 'not run'} | {ns(b['mean']) if b else 'not run'} |")
    w("")

    w("## End to end, wire size, memory per queued event")
    w("")
    w("`raceway-rt-tokio/benches/e2e.rs`: events recorded in one flow and sent to a real local")
    w("collector (raceway-testkit, same process, decoding every event on the same cores),")
    w("from the first record to the end of the final flush, producer paced on the queue so")
    w("nothing is dropped (checked); bytes per event = request body bytes received / events;")
    w("heap per queued event = live heap bytes (counting allocator) / events held while the")
    w("collector is down, queue capacity 100,000.")
    w("")
    w("| client | events | events/s end to end | POSTs | body bytes/event | heap bytes/queued event |")
    w("|---|---|---|---|---|---|")
    for r in e2e:
        w(f"| {r['client']} | {r['events']:,} | {r['events_per_sec']:,.0f} | {r['posts']} | "
          f"{r['bytes_per_event']:.1f} | {r['bytes_per_queued_event']:,.0f} |")
    w("")

    w("## Every criterion benchmark of this run")
    w("")
    w("| benchmark | mean | 95 % CI | median | throughput |")
    w("|---|---|---|---|---|")
    for k in sorted(res):
        r = res[k]
        w(f"| {k} | {ns(r['mean'])} | {ns(r['lo'])} – {ns(r['hi'])} | {ns(r['median'])} | {rate(r)} |")
    w("")
    lines += peers_section(peers)
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
