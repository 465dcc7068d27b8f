"""The helper scripts' own logic, without the services they start."""
import base64
import os
import re
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KAFKA_SH = os.path.join(ROOT, "scripts", "kafka.sh")

# One id in 64 of plain random base64 starts with '-', so among this many the
# old generator shows one with certainty (1 - (63/64)**5000 ~ 1 - 1e-34).
COUNT = 5000


def kafka_sh(*args):
    return subprocess.run(["bash", KAFKA_SH, *args], capture_output=True, text=True, timeout=60)


def test_kafka_cluster_ids_are_kafka_uuids_that_no_tool_reads_as_an_option():
    r = kafka_sh("cluster-id", str(COUNT))
    assert r.returncode == 0, r.stderr
    ids = r.stdout.splitlines()
    assert len(ids) == COUNT
    for cid in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid), cid
        assert not cid.startswith("-"), cid
        raw = base64.urlsafe_b64decode(cid + "==")
        assert len(raw) == 16, cid
        # Canonical: the unused low bits of the last character are zero, as
        # Kafka's Uuid.toString writes them.
        assert base64.urlsafe_b64encode(raw).decode().rstrip("=") == cid
    assert len(set(ids)) == COUNT
    # Random, not merely valid: every other first character turns up (each
    # is missing from 5000 draws with probability ~1e-35).
    assert {cid[0] for cid in ids} == set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def test_kafka_cluster_id_prints_one_by_default():
    r = kafka_sh("cluster-id")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}\n", r.stdout)


def test_kafka_cluster_id_rejects_a_bad_count():
    for bad in ("0", "-3", "x"):
        r = kafka_sh("cluster-id", bad)
        assert r.returncode != 0 and r.stdout == "", bad
        assert "COUNT" in r.stderr
