"""The test Kafka broker, to stop and restart it in failure tests."""
import os
import subprocess

SCRIPTS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts")


class Kafka:
    def __init__(self, brokers, data_dir):
        self.brokers = brokers
        self.data_dir = data_dir
        self.port = int(brokers.rsplit(":", 1)[1])

    def stop(self):
        subprocess.run([os.path.join(SCRIPTS, "kafka.sh"), "stop", self.data_dir], check=True, timeout=90,
                       stdout=subprocess.DEVNULL)

    def start(self):
        subprocess.run([os.path.join(SCRIPTS, "kafka.sh"), "start", self.data_dir, str(self.port)], check=True,
                       timeout=120, stdout=subprocess.DEVNULL)
