"""feed-bot against feed-api: every accepted message reaches every subscriber once."""
import json
import subprocess

from conftest import binary


def test_bot_verifies_delivery_to_fifty_subscribers(api):
    out = subprocess.run([binary("feed-bot"), "--api", api.base, "--subscribers", "50", "--verify", "--rate", "100",
                          "--duration", "3", "--users", "5", "--verify-timeout", "20"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    text = json.dumps(report)
    assert "missing" in text and "duplicated" in text

    def find(d, key):
        if isinstance(d, dict):
            for k, v in d.items():
                if k == key:
                    return v
                found = find(v, key)
                if found is not None:
                    return found
        return None

    assert find(report, "missing") == 0
    assert find(report, "duplicated") == 0
