"""The test PostgreSQL: per-test databases, SQL through psql, stop/start."""
import os
import subprocess
import urllib.parse

SCRIPTS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts")


class Postgres:
    def __init__(self, url, data_dir=None):
        self.url = url
        self.data_dir = data_dir

    def url_for(self, database):
        u = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + database, u.query, u.fragment))

    def sql(self, statement, database=None):
        out = subprocess.run(["psql", self.url_for(database) if database else self.url, "-v", "ON_ERROR_STOP=1",
                              "-qAt", "-c", statement], check=True, capture_output=True, text=True, timeout=30)
        return out.stdout.strip()

    def create_database(self, name):
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def stop(self):
        subprocess.run([os.path.join(SCRIPTS, "postgres.sh"), "stop", self.data_dir], check=True, timeout=60,
                       stdout=subprocess.DEVNULL)

    def start(self):
        port = urllib.parse.urlsplit(self.url).port
        subprocess.run([os.path.join(SCRIPTS, "postgres.sh"), "start", self.data_dir, str(port)], check=True,
                       timeout=60, stdout=subprocess.DEVNULL)
