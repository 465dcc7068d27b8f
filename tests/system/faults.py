"""Faults under load on the local replicated cluster (scripts/cluster.sh).

One run: three feed-api instances share the cluster (fresh topics, consumer
group and database per run), feed-bot posts to all three with
--verify and subscribers spread over the instances, and one fault is
injected and healed while it runs. The bot's summary says, among the 202'd
messages, how many were lost, duplicated or out of order; the run adds the
longest stretch in which no post got a 202 and the time until every
instance streamed again.

Used by tests/system/test_cluster_faults.py (short runs) and by
bench/faults.sh (longer soaks): `python3 tests/system/faults.py --help`.
"""
import argparse
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import requests

sys.path.insert(0, os.path.dirname(__file__))

import cluster  # noqa: E402
from services.feed_api import FeedApi, wait_until  # noqa: E402
from services.postgres import Postgres  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPTS = os.path.join(ROOT, "scripts")


@dataclasses.dataclass
class Load:
    rate: float = 200          # posts per second over all instances
    duration: float = 40       # seconds of posting
    subscribers: int = 6       # spread over the instances
    fault_at: float = 8        # seconds after posting starts
    hold: float = 10           # seconds the fault lasts before it is healed


@dataclasses.dataclass
class Row:
    fault: str
    load: str
    accepted: int
    lost: int
    duplicated: int
    out_of_order: int
    unknown_outcome: int
    longest_unavailable_s: float           # no instance gave a 202
    worst_instance_unavailable_s: float    # one instance gave no 202
    subscriber_gap_s: float                # longest a subscriber was disconnected
    recovery_s: float                      # slowest delivery: until every instance had every message
    summary: dict = dataclasses.field(repr=False, default_factory=dict)
    notes: dict = dataclasses.field(default_factory=dict)  # what the fault itself observed

    def table_line(self):
        return (f"| {self.fault} | {self.load} | {self.accepted} | {self.lost} | {self.duplicated} | "
                f"{self.out_of_order} | {self.longest_unavailable_s:.1f} s / {self.worst_instance_unavailable_s:.1f} s | "
                f"{self.subscriber_gap_s:.1f} s | {self.recovery_s:.1f} s |")


class Run:
    """The instances, the bot and the handles a fault needs."""

    def __init__(self, cluster_dir, build_dir, work_dir, settings, netns=None):
        self.cluster_dir = cluster_dir
        self.build_dir = build_dir
        self.work_dir = work_dir
        self.brokers = settings.brokers
        self.tag = uuid.uuid4().hex[:10]
        self.pg = Postgres(settings.database_url)
        self.database_url = self.pg.create_database(f"f_{self.tag}")
        self.topic = f"events-{self.tag}"
        self.netns = netns
        self.instances = []

    def api_args(self):
        return ["--log-level", "info", "--kafka-brokers", self.brokers, "--database-url", self.database_url,
                "--kafka-events-topic", self.topic, "--kafka-processed-topic", f"processed-{self.tag}",
                "--kafka-group", f"group-{self.tag}", "--kafka-partitions", "6"]

    def start_instances(self, count=3):
        for i in range(count):
            data = os.path.join(self.work_dir, f"api-{i + 1}")
            api = FeedApi(os.path.join(self.build_dir, "feed-api"), data, args=self.api_args())
            if self.netns and i == count - 1:
                api = self.netns.wrap(api)
            self.instances.append(api.start(timeout=90))
        for api in self.instances:
            wait_until(lambda: ready(api), 90, interval=0.2, what=f"{api.base} ready")

    def stop(self):
        for api in self.instances:
            if api.alive():
                api.stop(timeout=30)

    # --- what faults need ---
    def pids(self):
        return cluster.pids(self.cluster_dir)

    def leader_broker(self):
        """The kafka-N leading most partitions of this run's events topic."""
        out = subprocess.run([os.path.join(SCRIPTS, "kafka.sh"), "topics", "--bootstrap-server", self.brokers,
                              "--describe", "--topic", self.topic], capture_output=True, text=True, timeout=60,
                             check=True).stdout
        leaders = [int(m) for m in re.findall(r"Leader:\s*(-?\d+)", out)]
        if not leaders:
            raise AssertionError(f"no partition leaders in: {out}")
        node = max(set(leaders), key=leaders.count)
        return f"kafka-{node}"


def ready(api):
    try:
        return requests.get(api.url("/api/ready"), timeout=2).status_code == 200
    except requests.RequestException:
        return False


def signal_member(run, name, sig):
    pid = run.pids()[name]
    os.kill(int(pid), sig)
    return pid


# --- the faults: each injects, waits `hold`, heals; returns when healed ---

def kill_partition_leader(run, load):
    name = run.leader_broker()
    signal_member(run, name, signal.SIGKILL)
    time.sleep(load.hold)
    cluster.start_node(run.cluster_dir, name)


def kill_active_controller(run, load):
    name = cluster.controller(run.cluster_dir)
    signal_member(run, name, signal.SIGKILL)
    time.sleep(load.hold)
    cluster.start_node(run.cluster_dir, name)


def pause_broker(run, load):
    name = run.leader_broker()
    signal_member(run, name, signal.SIGSTOP)
    try:
        time.sleep(load.hold)
    finally:
        signal_member(run, name, signal.SIGCONT)


def ready_statuses(run):
    out = []
    for api in run.instances:
        try:
            out.append(requests.get(api.url("/api/ready"), timeout=5).status_code)
        except requests.RequestException:
            out.append(None)
    return out


def kill_database_primary(run, load):
    old = cluster.primary(run.cluster_dir)
    t0 = time.monotonic()
    signal_member(run, old, signal.SIGKILL)
    seen = set()

    def promoted():
        seen.update(s for s in ready_statuses(run) if s)
        return cluster.primary(run.cluster_dir) not in (None, "-", old)

    wait_until(promoted, 60, interval=0.3, what="the standby to be promoted")
    promoted_s = time.monotonic() - t0
    time.sleep(load.hold)
    # Without a restart: the same processes answer ready again.
    wait_until(lambda: ready_statuses(run) == [200] * len(run.instances), 60, interval=0.5,
               what="every instance ready after the failover")
    return {"promoted_after_s": round(promoted_s, 1), "ready_seen_during": sorted(seen),
            "ready_after": ready_statuses(run)}


def kill_instance(run, load):
    victim = run.instances[0]
    victim.kill()
    time.sleep(load.hold)
    victim.start(timeout=90)


def cut_instance(run, load):
    """The last instance loses its brokers and database; clients still reach
    it. Its posts must fail fast (503), not hang."""
    if not run.netns:
        raise RuntimeError("cut_instance needs the run's last instance in a network namespace")
    victim = run.instances[-1]
    probes = []
    run.netns.cut()
    try:
        end = time.monotonic() + load.hold
        time.sleep(min(2.0, load.hold / 2))  # let in-flight work fail first
        while time.monotonic() < end:
            t = time.monotonic()
            r = requests.post(victim.url("/api/messages"), json={"user_id": "probe", "content": "cut off?"},
                              timeout=30)
            probes.append((r.status_code, round(time.monotonic() - t, 3)))
            time.sleep(1)
    finally:
        run.netns.heal()
    return {"cut_probes": probes}


FAULTS = {
    "kill-partition-leader": kill_partition_leader,
    "kill-active-controller": kill_active_controller,
    "pause-broker": pause_broker,
    "kill-database-primary": kill_database_primary,
    "kill-instance": kill_instance,
    "cut-instance": cut_instance,
}


def run_bot(run, load, log_path):
    urls = ",".join(api.base for api in run.instances)
    cmd = [os.path.join(run.build_dir, "feed-bot"), "--api", urls, "--rate", str(load.rate),
           "--duration", str(load.duration), "--subscribers", str(load.subscribers), "--verify",
           "--verify-timeout", "90", "--max-retries", "100", "--request-timeout", "15", "--users", "50",
           "--concurrency", "12", "--progress", "1"]
    log = open(log_path, "wb")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log), log


def bot_started_posting(log_path):
    try:
        with open(log_path, "rb") as f:
            return b"2xx" in f.read()
    except FileNotFoundError:
        return False


def run_fault(name, cluster_dir, build_dir, work_dir, settings, load, netns=None):
    run = Run(cluster_dir, build_dir, work_dir, settings, netns=netns)
    os.makedirs(work_dir, exist_ok=True)
    try:
        run.start_instances()
        bot_log = os.path.join(work_dir, f"bot-{name}.log")
        bot, log = run_bot(run, load, bot_log)
        try:
            wait_until(lambda: bot_started_posting(bot_log) or bot.poll() is not None, 120, interval=0.2,
                       what="feed-bot to start posting")
            time.sleep(load.fault_at)
            notes = FAULTS[name](run, load) or {}
            out, _ = bot.communicate(timeout=load.duration + 300)
        finally:
            if bot.poll() is None:
                bot.kill()
                bot.wait()
            log.close()
        lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
        if not lines:
            raise AssertionError(f"feed-bot printed no summary (exit {bot.returncode}); see {bot_log}")
        summary = json.loads(lines[-1])
        row = row_from(name, load, summary)
        row.notes = notes
        return row
    finally:
        run.stop()


def row_from(name, load, s):
    return Row(
        fault=name,
        load=f"{load.rate:g}/s x {load.duration:g} s, {load.subscribers} subs",
        accepted=s["accepted"],
        lost=s["lost"],
        duplicated=s["duplicated"] + s["duplicated_content"],
        out_of_order=s["out_of_order"],
        unknown_outcome=s["unknown_outcome"],
        longest_unavailable_s=s["longest_unavailable_s"],
        worst_instance_unavailable_s=max((i["longest_unavailable_s"] for i in s["instances"]), default=0.0),
        subscriber_gap_s=s["longest_subscriber_gap_s"],
        recovery_s=s["e2e_latency_ms"]["max"] / 1000,
        summary=s,
    )


TABLE_HEAD = ("| fault | load | accepted (202) | lost | duplicated | out of order | longest 503 window: "
              "all instances / worst one | longest subscriber gap | slowest delivery |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def backend_ports(settings):
    """The broker and database ports a feed-api connects to."""
    brokers = [int(hp.rsplit(":", 1)[1]) for hp in settings.brokers.split(",")]
    hosts = settings.database_url.split("@", 1)[1].split("/", 1)[0]
    return brokers + [int(hp.rsplit(":", 1)[1]) for hp in hosts.split(",")]


def make_namespace(settings, name="feedcut"):
    import netns
    from services.feed_api import free_port
    why = netns.available()
    if why:
        raise RuntimeError(f"cut-instance: {why}")
    return netns.Namespace(name, backend_ports(settings), free_port())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("faults", nargs="*", default=list(FAULTS), help=f"any of {', '.join(FAULTS)} (default: all)")
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    p.add_argument("--work-dir", required=True, help="cluster state, logs and the results")
    p.add_argument("--port-base", type=int, default=int(os.environ.get("CLUSTER_PORT_BASE", "29000")))
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--duration", type=float, default=120)
    p.add_argument("--subscribers", type=int, default=30)
    p.add_argument("--fault-at", type=float, default=20)
    p.add_argument("--hold", type=float, default=30)
    a = p.parse_args()
    unknown = [f for f in a.faults if f not in FAULTS]
    if unknown:
        p.error(f"unknown faults: {', '.join(unknown)}")
    load = Load(a.rate, a.duration, a.subscribers, a.fault_at, a.hold)
    cluster_dir = os.path.join(a.work_dir, "cluster")
    settings = cluster.start(cluster_dir, a.port_base)
    netns = None
    rows = []
    print(TABLE_HEAD, flush=True)
    try:
        if "cut-instance" in a.faults:
            netns = make_namespace(settings)
        for f in a.faults:
            print(f"faults: {f} ...", file=sys.stderr, flush=True)
            row = run_fault(f, cluster_dir, a.build_dir, os.path.join(a.work_dir, f), settings, load,
                            netns=netns if f == "cut-instance" else None)
            rows.append(row)
            print(row.table_line(), flush=True)
    finally:
        if netns:
            netns.delete()
        cluster.stop(cluster_dir)
    with open(os.path.join(a.work_dir, "faults.json"), "w") as f:
        json.dump([dataclasses.asdict(r) for r in rows], f, indent=1)
    return 0 if all(r.lost == 0 and r.duplicated == 0 and r.out_of_order == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
