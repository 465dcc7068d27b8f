"""The test Kafka broker, to stop, restart or pause it in failure tests."""
import contextlib
import os
import signal
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


@contextlib.contextmanager
def broker_paused():
    """The suite's test broker (FEED_TEST_KAFKA_DIR) stopped with SIGSTOP for the block."""
    with open(os.path.join(os.environ["FEED_TEST_KAFKA_DIR"], "kafka.pid")) as f:
        pid = int(f.read().strip())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
