"""A TCP proxy on 127.0.0.1 in front of a real server that can be frozen.

Frozen, it keeps its connections open and accepts new ones, but passes no
byte either way: to a client the server hangs, as a paused VM or a stopped
process does (the kernel still answers, nothing else)."""
import select
import socket
import threading
import time


class FreezableProxy:
    def __init__(self, target_port):
        self.target_port = target_port
        self.frozen = threading.Event()
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def freeze(self):
        self.frozen.set()

    def thaw(self):
        self.frozen.clear()

    def close(self):
        self.stopping.set()
        self.listener.close()
        for t in self.threads:
            t.join(timeout=5)

    def _accept(self):
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            t = threading.Thread(target=self._pump, args=(client, server), daemon=True)
            self.threads.append(t)
            t.start()

    def _pump(self, a, b):
        with a, b:
            while not self.stopping.is_set():
                if self.frozen.is_set():
                    time.sleep(0.005)
                    continue
                readable, _, _ = select.select([a, b], [], [], 0.02)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
