#!/usr/bin/env python3
"""PNG plots from bench/results (run with bench/.venv/bin/python; the scripts
create that venv with matplotlib via `bench/plot.sh`).

  plot.py [--fanout DIR] [--idle DIR] [--out docs/img]

Without DIRs it takes the newest bench/results/*-fanout and *-idle_memory.
  fanout-latency.png  e2e latency (p50, p99) vs publish rate at the sweep's
                      subscriber count, feed-api and nginx + nchan
  fanout-delivered.png deliveries/s vs publish rate, same runs
  idle-rss.png        server RSS vs idle SSE connections
"""
import argparse
import glob
import json
import os
import statistics
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
COLORS = {"ours": "tab:blue", "nchan": "tab:orange"}
NAMES = {"ours": "feed-api", "nchan": "nginx + nchan"}


def newest(kind):
    dirs = sorted(glob.glob(os.path.join(HERE, "results", f"*-{kind}")))
    return dirs[-1] if dirs else None


def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def plot_fanout(d, out):
    recs = [r for r in load(os.path.join(d, "runs.jsonl")) if r["label"].startswith("sweep:")]
    if not recs:
        return
    subs = recs[0]["label"].split(":")[1]
    series = defaultdict(lambda: defaultdict(list))
    for r in recs:
        rate = float(r["label"].split(":")[2])
        b = r.get("bot") or {}
        e2e = b.get("e2e_latency_ms") or {}
        dl = b.get("delivery") or {}
        dur = b.get("duration_s") or 0
        series[r["server"]][rate].append((e2e.get("p50"), e2e.get("p99"),
                                          (dl.get("received") or 0) / dur if dur else None))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for server, pts in series.items():
        rates = sorted(pts)
        p50 = [statistics.median(x[0] for x in pts[r] if x[0] is not None) for r in rates]
        p99 = [statistics.median(x[1] for x in pts[r] if x[1] is not None) for r in rates]
        ax.plot(rates, p99, "o-", color=COLORS.get(server), label=f"{NAMES.get(server, server)} p99")
        ax.plot(rates, p50, "s--", color=COLORS.get(server), alpha=0.6, label=f"{NAMES.get(server, server)} p50")
    ax.axhline(1000, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log"); ax.set_yscale("log")
    ax.set_xlabel("publish rate, messages/s"); ax.set_ylabel("end-to-end latency, ms")
    ax.set_title(f"Post -> SSE delivery latency, {int(subs):,} subscribers")
    ax.grid(True, which="both", alpha=0.3); ax.legend()
    fig.tight_layout(); fig.savefig(os.path.join(out, "fanout-latency.png"), dpi=110); plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for server, pts in series.items():
        rates = sorted(pts)
        dps = [statistics.median(x[2] for x in pts[r] if x[2] is not None) for r in rates]
        ax.plot(rates, dps, "o-", color=COLORS.get(server), label=NAMES.get(server, server))
    ax.plot(sorted({r for s in series.values() for r in s}),
            [r * int(subs) for r in sorted({r for s in series.values() for r in s})], ":", color="grey", label="offered")
    ax.set_xscale("log"); ax.set_yscale("log")
    ax.set_xlabel("publish rate, messages/s"); ax.set_ylabel("SSE deliveries/s")
    ax.set_title(f"Deliveries per second, {int(subs):,} subscribers")
    ax.grid(True, which="both", alpha=0.3); ax.legend()
    fig.tight_layout(); fig.savefig(os.path.join(out, "fanout-delivered.png"), dpi=110); plt.close(fig)


def plot_idle(d, out):
    rows = load(os.path.join(d, "samples.jsonl"))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for server in ("ours", "nchan"):
        rs = [r for r in rows if r["server"] == server]
        if not rs:
            continue
        conns = sorted({r["connections"] for r in rs})
        rss = [statistics.median(r["rss_kib"] for r in rs if r["connections"] == c) / 1024 for c in conns]
        ax.plot(conns, rss, "o-", color=COLORS[server], label=NAMES[server] + (" (worker)" if server == "nchan" else ""))
    ax.set_xlabel("idle SSE connections"); ax.set_ylabel("RSS, MiB")
    ax.set_title("Server RSS vs idle SSE connections")
    ax.grid(True, alpha=0.3); ax.legend()
    fig.tight_layout(); fig.savefig(os.path.join(out, "idle-rss.png"), dpi=110); plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fanout")
    ap.add_argument("--idle")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "docs", "img"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    f = a.fanout or newest("fanout")
    i = a.idle or newest("idle_memory")
    if f:
        plot_fanout(f, a.out)
        print(f"fan-out plots from {f}")
    if i:
        plot_idle(i, a.out)
        print(f"idle RSS plot from {i}")


if __name__ == "__main__":
    main()
