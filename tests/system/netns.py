"""One feed-api instance in a network namespace (scripts/netns.sh), so that a
fault can cut it off from Kafka and PostgreSQL while clients still reach it."""
import os
import subprocess

SCRIPT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "netns.sh"))


def available():
    """Why a namespace cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            return f"{tool} is not installed (scripts/install-deps.sh installs it)"
    return None


class Namespace:
    def __init__(self, name, backend_ports, http_port):
        self.name = name
        self.http_port = http_port
        subprocess.run([SCRIPT, "delete", name], capture_output=True, timeout=60)
        subprocess.run([SCRIPT, "create", name, "--backend-ports", ",".join(map(str, backend_ports)),
                        "--http-port", str(http_port)], check=True, capture_output=True, timeout=60)

    def wrap(self, api):
        """The same FeedApi, started inside the namespace on its HTTP port."""
        api.port = self.http_port
        api.log_path = os.path.join(api.data_dir, f"feed-api-{api.port}.log")
        api.prefix = [SCRIPT, "exec", self.name, "--"]
        return api

    def cut(self):
        subprocess.run([SCRIPT, "cut", self.name], check=True, capture_output=True, timeout=30)

    def heal(self):
        subprocess.run([SCRIPT, "heal", self.name], check=True, capture_output=True, timeout=30)

    def delete(self):
        subprocess.run([SCRIPT, "delete", self.name], capture_output=True, timeout=60)
