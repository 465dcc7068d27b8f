"""Faults under load on the replicated cluster: three feed-api instances, a
3-broker Kafka, PostgreSQL with a synchronous standby under Patroni.

Each test injects one fault while feed-bot posts to all three instances and
subscribers on all three verify delivery; among the 202'd messages nothing
may be lost, duplicated or delivered out of order. These are the short
versions; bench/faults.sh runs the same faults longer and writes the table
in docs/RELIABILITY.md.
"""
import os
import random

import pytest

import cluster
import faults
import netns

pytestmark = pytest.mark.cluster

BUILD_DIR = os.environ.get("FEED_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))

SHORT = faults.Load(rate=100, duration=30, subscribers=6, fault_at=5, hold=8)


@pytest.fixture(scope="module")
def replicated():
    why = cluster.skip_reason()
    if why:
        pytest.skip(why)
    base = cluster.scratch_dir("faults")
    cluster_dir = os.path.join(base, "cluster")
    try:
        settings = cluster.start(cluster_dir, cluster.free_port_base())
        yield cluster_dir, settings, base
    finally:
        cluster.stop(cluster_dir)
        cluster.remove_scratch_dir(base)


def run(replicated, name, load=SHORT, namespace=None):
    cluster_dir, settings, base = replicated
    row = faults.run_fault(name, cluster_dir, os.path.abspath(BUILD_DIR), os.path.join(base, name), settings, load,
                           netns=namespace)
    print(row.table_line())
    assert row.accepted > load.rate * load.duration / 2, row.summary
    assert (row.lost, row.duplicated, row.out_of_order) == (0, 0, 0), row.summary
    # Every instance streamed again before the bot stopped waiting.
    assert row.recovery_s < load.duration + 60, row.summary
    return row


def test_killing_the_partition_leader_loses_nothing(replicated):
    run(replicated, "kill-partition-leader")


def test_killing_the_active_controller_loses_nothing(replicated):
    run(replicated, "kill-active-controller")


def test_a_frozen_broker_loses_nothing(replicated):
    run(replicated, "pause-broker", faults.Load(rate=100, duration=35, subscribers=6, fault_at=5, hold=15))


def test_a_database_failover_loses_nothing_and_needs_no_restart(replicated):
    row = run(replicated, "kill-database-primary")
    assert row.notes["ready_after"] == [200, 200, 200], row.notes


def test_killing_an_instance_moves_its_subscribers_and_loses_nothing(replicated):
    row = run(replicated, "kill-instance")
    assert row.summary["subscribers"]["reconnects"] >= 1, row.summary


def test_an_instance_cut_off_answers_503_quickly_and_duplicates_nothing(replicated):
    why = netns.available()
    if why:
        pytest.skip(why)
    _, settings, _ = replicated
    namespace = faults.make_namespace(settings, name=f"fc{random.randrange(10**6)}")
    try:
        row = run(replicated, "cut-instance", namespace=namespace)
    finally:
        namespace.delete()
    statuses = [status for status, _ in row.notes["cut_probes"]]
    assert statuses and all(s == 503 for s in statuses), row.notes
    assert max(seconds for _, seconds in row.notes["cut_probes"]) < 5, row.notes
