#!/usr/bin/env python3
"""Summaries of the bench/ raw results (JSON lines written by lib.sh run_bot
and the other scripts). Standard library only.

  report.py fanout-line RUNS.jsonl   one line about the last record
  report.py passed RUNS.jsonl        exit 0 when the last record passed
  report.py fanout RUNS.jsonl        fan-out tables (markdown) + summary.json
"""
import json
import os
import statistics
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=1):
    if x is None:
        return "-"
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.{nd}f}"


def cpu_cell(rs):
    """Median CPU % per process over runs, e.g. "feed-api 84, kafka 39"."""
    return ", ".join(f"{n} {med([r['cpu_pct'].get(n) for r in rs]):.0f}" for n in rs[0]["cpu_pct"])


def load_cell(rs):
    return fmt(med([r["loadavg_before"] for r in rs]), 2)


def ratio(a, b, nd=2):
    if a is None or b in (None, 0):
        return "-"
    return f"{a / b:.{nd}f}"


def bot_fields(rec):
    b = rec.get("bot") or {}
    posts = b.get("posts", {})
    dl = b.get("delivery", {})
    e2e = b.get("e2e_latency_ms", {})
    pl = b.get("post_latency_ms", {})
    subs = b.get("subscribers", {})
    dur = b.get("duration_s") or 0
    received = dl.get("received")
    return {
        "scheduled": posts.get("scheduled"),
        "accepted": posts.get("accepted_2xx"),
        "errors": sum(posts.get(k, 0) or 0 for k in
                      ("rejected_4xx", "failed_5xx", "other_status", "transport_errors",
                       "dropped_by_client", "cancelled")),
        "missing": dl.get("missing"),
        "duplicated": dl.get("duplicated"),
        "out_of_order": dl.get("out_of_order"),
        "received": received,
        "deliveries_per_s": (received / dur) if received and dur else None,
        "e2e_p50": e2e.get("p50"), "e2e_p99": e2e.get("p99"), "e2e_max": e2e.get("max"),
        "post_p50": pl.get("p50"), "post_p99": pl.get("p99"),
        "subs_failed": subs.get("failed"), "subs_connected": subs.get("connected"),
        "achieved_rate": b.get("achieved_rate"), "accepted_rate": b.get("accepted_rate"),
    }


def passed(rec):
    """No loss and p99 under 1 s: every scheduled post accepted (nothing
    dropped, cancelled or failed), nothing missing or duplicated at any
    subscriber, and both the end-to-end p99 (request written -> event read)
    and the post p99 (measured from the due time, so client-side queueing
    behind a slow server counts) under 1 s."""
    f = bot_fields(rec)
    if not rec.get("bot"):
        return False
    return (f["accepted"] == f["scheduled"] and f["errors"] == 0 and f["missing"] == 0
            and f["duplicated"] == 0 and (f["subs_failed"] or 0) == 0
            and f["e2e_p99"] is not None and f["e2e_p99"] < 1000.0
            and f["post_p99"] is not None and f["post_p99"] < 1000.0)


def cmd_line(path):
    r = load(path)[-1]
    f = bot_fields(r)
    print(f"  {r['label']:<24} {r['server']:<5} rc={r['rc']} deliv/s={fmt(f['deliveries_per_s'], 0)} "
          f"e2e p50={fmt(f['e2e_p50'], 2)} p99={fmt(f['e2e_p99'], 2)} ms missing={f['missing']} "
          f"dup={f['duplicated']} ooo={f['out_of_order']} errors={f['errors']} "
          f"cpu server={fmt(r['server_cpu_pct'], 0)}% bot={fmt(r['bot_cpu_pct'], 0)}% "
          f"load={r['loadavg_before']} {'PASS' if passed(r) else 'FAIL'}", file=sys.stderr)


def cmd_fanout(path):
    recs = load(path)
    out = {"fixed": [], "sweep": [], "saturation": {}}
    print("## Fan-out at fixed publish rates (medians over runs)\n")
    print("| subscribers x msg/s | server | runs | deliveries/s | e2e p50 ms | e2e p99 ms | missing / dup / out-of-order | server CPU % | bot CPU % | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    groups = defaultdict(list)
    order = []
    for r in recs:
        if r["label"].startswith("fixed:"):
            _, subs, rate, _run = r["label"].split(":")
            key = (int(subs), float(rate))
            if key not in order:
                order.append(key)
            groups[(key, r["server"])].append(r)
    for key in order:
        row = {}
        for server in ("ours", "ours-normal", "ours-t2", "ours-kafka", "nchan"):
            rs = groups.get((key, server), [])
            if not rs:
                continue
            fs = [bot_fields(r) for r in rs]
            m = {
                "runs": len(rs),
                "deliveries_per_s": med([f["deliveries_per_s"] for f in fs]),
                "e2e_p50": med([f["e2e_p50"] for f in fs]),
                "e2e_p99": med([f["e2e_p99"] for f in fs]),
                "missing": sum(f["missing"] or 0 for f in fs),
                "duplicated": sum(f["duplicated"] or 0 for f in fs),
                "out_of_order": sum(f["out_of_order"] or 0 for f in fs),
                "server_cpu_pct": med([r["server_cpu_pct"] for r in rs]),
                "bot_cpu_pct": med([r["bot_cpu_pct"] for r in rs]),
                "loadavg": med([r["loadavg_before"] for r in rs]),
                "passed": sum(1 for r in rs if passed(r)),
            }
            row[server] = m
            print(f"| {key[0]:,} x {key[1]:g} | {server} | {m['runs']} | {fmt(m['deliveries_per_s'], 0)} | "
                  f"{fmt(m['e2e_p50'], 2)} | {fmt(m['e2e_p99'], 2)} | {m['missing']} / {m['duplicated']} / "
                  f"{m['out_of_order'] if server.startswith('ours') else 'n/a'} | {fmt(m['server_cpu_pct'], 0)} | "
                  f"{fmt(m['bot_cpu_pct'], 0)} | {fmt(m['loadavg'], 2)} |")
        if "ours" in row and "nchan" in row:
            print(f"| {key[0]:,} x {key[1]:g} | **ours/nchan** | | "
                  f"{ratio(row['ours']['deliveries_per_s'], row['nchan']['deliveries_per_s'])} | "
                  f"{ratio(row['ours']['e2e_p50'], row['nchan']['e2e_p50'])} | "
                  f"{ratio(row['ours']['e2e_p99'], row['nchan']['e2e_p99'])} | | "
                  f"{ratio(row['ours']['server_cpu_pct'], row['nchan']['server_cpu_pct'])} | | |")
        out["fixed"].append({"subscribers": key[0], "rate": key[1], **row})

    sweep = defaultdict(list)  # (server, pass) -> [(rate, rec)]
    rates = set()
    for r in recs:
        if r["label"].startswith("sweep:"):
            _, subs, rate, p = r["label"].split(":")
            sweep[(r["server"], p)].append((float(rate), r))
            rates.add(float(rate))
            out["saturation"]["subscribers"] = int(subs)
    if sweep:
        subs = out["saturation"]["subscribers"]
        print(f"\n## Saturation sweep at {subs:,} subscribers (medians over passes that ran the step)\n")
        print("| msg/s | server | runs (passed) | deliveries/s | e2e p50 ms | e2e p99 ms | missing | server CPU % | bot CPU % | load avg |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for rate in sorted(rates):
            for server in ("ours", "ours-kafka", "nchan"):
                rs = [rec for (s, p), lst in sweep.items() if s == server for (rt, rec) in lst if rt == rate]
                if not rs:
                    continue
                fs = [bot_fields(r) for r in rs]
                m = {
                    "rate": rate, "server": server, "runs": len(rs), "passed": sum(1 for r in rs if passed(r)),
                    "deliveries_per_s": med([f["deliveries_per_s"] for f in fs]),
                    "e2e_p50": med([f["e2e_p50"] for f in fs]), "e2e_p99": med([f["e2e_p99"] for f in fs]),
                    "missing": sum(f["missing"] or 0 for f in fs),
                    "server_cpu_pct": med([r["server_cpu_pct"] for r in rs]),
                    "bot_cpu_pct": med([r["bot_cpu_pct"] for r in rs]),
                    "loadavg": med([r["loadavg_before"] for r in rs]),
                }
                out["sweep"].append(m)
                print(f"| {rate:g} | {server} | {m['runs']} ({m['passed']}) | {fmt(m['deliveries_per_s'], 0)} | "
                      f"{fmt(m['e2e_p50'], 2)} | {fmt(m['e2e_p99'], 2)} | {m['missing']} | "
                      f"{fmt(m['server_cpu_pct'], 0)} | {fmt(m['bot_cpu_pct'], 0)} | {fmt(m['loadavg'], 2)} |")
        print(f"\n## Saturation point at {subs:,} subscribers (highest passing rate before the first failure; median over passes)\n")
        print("| server | passes | saturation msg/s (per pass) | median msg/s | deliveries/s at it | e2e p99 ms at it | last step tried | server CPU % at it |")
        print("|---|---|---|---|---|---|---|---|")
        sat = {}
        for server in ("ours", "ours-kafka", "nchan"):
            if not any(s == server for (s, _) in sweep):
                continue
            per_pass = []
            for (s, p), lst in sorted(sweep.items()):
                if s != server:
                    continue
                best = None
                for rate, rec in sorted(lst, key=lambda x: x[0]):
                    if passed(rec):
                        best = (rate, rec)
                    else:
                        break
                per_pass.append((best, max(x[0] for x in lst)))
            rates_ok = [b[0] if b else 0.0 for b, _ in per_pass]
            m_rate = med(rates_ok)
            at = [b[1] for b, _ in per_pass if b and b[0] == m_rate] or [b[1] for b, _ in per_pass if b]
            fs = [bot_fields(r) for r in at]
            sat[server] = {
                "per_pass": rates_ok, "median_rate": m_rate,
                "deliveries_per_s": med([f["deliveries_per_s"] for f in fs]),
                "e2e_p99": med([f["e2e_p99"] for f in fs]),
                "server_cpu_pct": med([r["server_cpu_pct"] for r in at]),
                "last_tried": [lt for _, lt in per_pass],
            }
            print(f"| {server} | {len(per_pass)} | {', '.join(f'{x:g}' for x in rates_ok)} | {fmt(m_rate, 0)} | "
                  f"{fmt(sat[server]['deliveries_per_s'], 0)} | {fmt(sat[server]['e2e_p99'], 2)} | "
                  f"{', '.join(f'{x:g}' for x in sat[server]['last_tried'])} | {fmt(sat[server]['server_cpu_pct'], 0)} |")
        best = {}
        for server in ("ours", "ours-kafka", "nchan"):
            xs = [bot_fields(rec)["deliveries_per_s"] for (s_, p), lst in sweep.items() if s_ == server
                  for (_, rec) in lst]
            xs = [x for x in xs if x is not None]
            best[server] = max(xs) if xs else None
            if server in sat:
                sat[server]["highest_any_step"] = best[server]
        if "ours" in sat and "nchan" in sat:
            print(f"\nours/nchan deliveries/s at saturation: "
                  f"{ratio(sat['ours']['deliveries_per_s'], sat['nchan']['deliveries_per_s'])}")
            # The sweep's steps are coarse: nchan's saturation point can
            # understate what it delivers. Also compare against the most
            # nchan delivered in any step of this run, passing or not.
            print(f"highest deliveries/s in any step: ours {fmt(best['ours'], 0)}, nchan {fmt(best['nchan'], 0)}; "
                  f"ours at saturation / nchan's highest: {ratio(sat['ours']['deliveries_per_s'], best['nchan'])}")
        out["saturation"].update(sat)
    with open(os.path.join(os.path.dirname(path), "summary.json"), "w") as f:
        json.dump(out, f, indent=1)


def load_fields(rec):
    """Throughput and latency of one run_load record (wrk or feed-bot)."""
    if "wrk" in rec:
        w = rec["wrk"]
        errors = w["non_2xx_3xx"] + w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"]
        return {"ok_per_s": (w["requests"] - errors) / w["duration_s"], "p50": w["lat_ms"]["p50"],
                "p99": w["lat_ms"]["p99"], "p99_9": w["lat_ms"]["p99_9"], "errors": errors}
    if "bot" in rec:
        b = rec["bot"]
        f = bot_fields(rec)
        return {"ok_per_s": b.get("accepted_rate"), "p50": f["post_p50"], "p99": f["post_p99"],
                "p99_9": b.get("post_latency_ms", {}).get("p99_9"), "errors": f["errors"]}
    return {"ok_per_s": None, "p50": None, "p99": None, "p99_9": None, "errors": None}


def cmd_ingest_line(path):
    r = load(path)[-1]
    f = load_fields(r)
    cpu = " ".join(f"{k}={v:.0f}%" for k, v in r["cpu_pct"].items())
    print(f"  {r['mode']:<8} {r['label']:<14} rc={r['rc']} 2xx/s={fmt(f['ok_per_s'], 0)} p50={fmt(f['p50'], 2)} "
          f"p99={fmt(f['p99'], 2)} ms errors={f['errors']} cpu {cpu} loadgen={fmt(r['loadgen_cpu_pct'], 0)}% "
          f"load={r['loadavg_before']}", file=sys.stderr)


def cmd_ingest(path):
    recs = load(path)
    groups = defaultdict(list)
    order = []
    for r in recs:
        kind, param, _ = r["label"].split(":")
        key = (r["mode"], kind, param)
        if key not in order:
            order.append(key)
        groups[key].append(r)
    print("## Ingest: POST /api/messages (202 = durable), medians over runs\n")
    print("| mode | load | runs | 2xx/s | p50 ms | p99 ms | p99.9 ms | errors | CPU % per process | load generator CPU % | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    out = []
    for key in order:
        rs = groups[key]
        fs = [load_fields(r) for r in rs]
        names = list(rs[0]["cpu_pct"].keys())
        cpu = {n: med([r["cpu_pct"].get(n) for r in rs]) for n in names}
        m = {"mode": key[0], "load": key[1], "param": key[2], "runs": len(rs),
             "ok_per_s": med([f["ok_per_s"] for f in fs]), "p50": med([f["p50"] for f in fs]),
             "p99": med([f["p99"] for f in fs]), "p99_9": med([f["p99_9"] for f in fs]),
             "errors": sum(f["errors"] or 0 for f in fs), "cpu_pct": cpu,
             "loadgen_cpu_pct": med([r["loadgen_cpu_pct"] for r in rs]),
             "loadavg": med([r["loadavg_before"] for r in rs])}
        out.append(m)
        load_desc = f"wrk -t2 -c{key[2]}" if key[1] == "wrk" else f"feed-bot {key[2]} msg/s open loop"
        print(f"| {key[0]} | {load_desc} | {m['runs']} | {fmt(m['ok_per_s'], 0)} | {fmt(m['p50'], 2)} | "
              f"{fmt(m['p99'], 2)} | {fmt(m['p99_9'], 2)} | {m['errors']} | "
              f"{', '.join(f'{n} {v:.0f}' for n, v in cpu.items())} | {fmt(m['loadgen_cpu_pct'], 0)} | {fmt(m['loadavg'], 2)} |")
    with open(os.path.join(os.path.dirname(path), "summary.json"), "w") as f:
        json.dump(out, f, indent=1)


def cmd_limits(path):
    recs = load(path)
    env = next((r for r in recs if r["label"] == "envelope"), {})
    pp = [r for r in recs if r["label"].startswith("perf-producer:") and "records_per_s" in r]
    ours = [r for r in recs if r["label"].startswith("wrk-kafka:")]
    cp = [r for r in recs if r["label"].startswith("copy:")]
    pk = [r for r in recs if r["label"].startswith("persist:kafka:")]
    pq = [r for r in recs if r["label"].startswith("persist:queue:")]
    out = {}
    print(f"## Physical limits (medians over runs; record size {env.get('bytes')} B = our envelope for "
          f"{env.get('content_size')}-byte content)\n")
    print("| measurement | runs | per second | p50 / p99 ms | CPU % | load avg |")
    print("|---|---|---|---|---|---|")
    if pp:
        v = med([r["records_per_s"] for r in pp])
        out["kafka_perf_producer"] = v
        print(f"| Kafka ProducerPerformance, acks=all, idempotent, 3 partitions | {len(pp)} | {fmt(v, 0)} records | "
              f"{fmt(med([r['p50_ms'] for r in pp]), 0)} / {fmt(med([r['p99_ms'] for r in pp]), 0)} | "
              f"broker {fmt(med([r['broker_cpu_pct_over_tool_wall'] for r in pp]), 0)} | "
              f"{load_cell(pp)} |")
    if ours:
        fs = [load_fields(r) for r in ours]
        v = med([f["ok_per_s"] for f in fs])
        out["ours_kafka_ingest"] = v
        print(f"| feed-api durable ingest, Kafka + PostgreSQL mode (wrk -t2 -c256) | {len(ours)} | {fmt(v, 0)} 202s | "
              f"{fmt(med([f['p50'] for f in fs]), 2)} / {fmt(med([f['p99'] for f in fs]), 2)} | "
              f"{cpu_cell(ours)} | {load_cell(ours)} |")
    if cp:
        v = med([r["rows_per_s"] for r in cp])
        out["pg_copy"] = v
        print(f"| PostgreSQL COPY of {cp[0]['rows']:,} rows, same schema and indexes | {len(cp)} | {fmt(v, 0)} rows | - | "
              f"postgres {fmt(med([r['cpu_pct']['postgres'] for r in cp]), 0)} | {load_cell(cp)} |")
    for name, rs, desc in (("ours_persist_kafka", pk, "Kafka + PostgreSQL"), ("ours_persist_queue", pq, "in-process queue + PostgreSQL")):
        if not rs:
            continue
        v = med([r["stored_per_s"] for r in rs])
        out[name] = v
        print(f"| feed-api worker stores {rs[0]['n']:,} posted messages, {desc} (post start -> last seq visible) | {len(rs)} | "
              f"{fmt(v, 0)} rows (posting alone: {fmt(med([r['posted_per_s'] for r in rs]), 0)}/s) | - | "
              f"{cpu_cell(rs)} | {load_cell(rs)} |")
    for prefix, key, desc in (
            ("drain:", "ours_worker_drain",
             "feed-api worker alone drains {n:,} queued messages from Kafka into an empty database (first row -> last row; "),
            ("drain-before:", "before_worker_drain", "the same drain by FEED_API_BEFORE (")):
        dr = [r for r in recs if r["label"].startswith(prefix)]
        if not dr:
            continue
        v = med([r["stored_per_s_after_first"] for r in dr])
        out[key] = v
        print(f"| {desc.format(n=dr[0]['n'])}from process start: {fmt(med([r['stored_per_s'] for r in dr]), 0)}/s) | "
              f"{len(dr)} | {fmt(v, 0)} rows | - | {cpu_cell(dr)} | {load_cell(dr)} |")
    print()
    if "before_worker_drain" in out and "ours_worker_drain" in out:
        print(f"- worker drain, this build / FEED_API_BEFORE: {ratio(out['ours_worker_drain'], out['before_worker_drain'])}")
    if "kafka_perf_producer" in out and "ours_kafka_ingest" in out:
        print(f"- durable ingest / Kafka producer tool: {ratio(out['ours_kafka_ingest'], out['kafka_perf_producer'])} (target >= 0.5)")
    for k in ("ours_worker_drain", "ours_persist_kafka", "ours_persist_queue"):
        if k in out and "pg_copy" in out:
            print(f"- worker persistence ({k}) / COPY: {ratio(out[k], out['pg_copy'])} (target >= 0.5)")
    with open(os.path.join(os.path.dirname(path), "summary.json"), "w") as f:
        json.dump(out, f, indent=1)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "fanout-line":
        cmd_line(path)
    elif cmd == "passed":
        sys.exit(0 if passed(load(path)[-1]) else 1)
    elif cmd == "ingest-line":
        cmd_ingest_line(path)
    elif cmd == "ingest":
        cmd_ingest(path)
    elif cmd == "limits":
        cmd_limits(path)
    elif cmd == "fanout":
        cmd_fanout(path)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
