"""A throwaway PostgreSQL server for tests: Debian's server binaries (`apt-get install postgresql`,
which .ci/run does), a new cluster in a temporary directory, trust authentication on loopback TCP.
As root, the cluster runs as the `postgres` user the package creates (PostgreSQL refuses root)."""
import glob, os, pwd, shutil, socket, subprocess, tempfile, time


def _bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise AssertionError("PostgreSQL's server binaries are not installed (apt-get install postgresql); .ci/run installs them")
    return os.path.dirname(found[-1])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self):
        self.bindir = _bindir()
        self.dir = tempfile.mkdtemp(prefix="verity-pg-")
        self.port = _free_port()
        self.as_user = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.dir, "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.data = data
        self._run("pg_ctl", "-D", data, "-l", os.path.join(self.dir, "server.log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=50", "start")
        self.database = "postgres"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool, *args):
        p = subprocess.run(self.as_user + [os.path.join(self.bindir, tool), *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"{tool} {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
        return p.stdout

    def psql(self, sql, database=None):
        """Runs SQL with psql (in the last database made, by default); returns its unaligned,
        tuples-only output."""
        return subprocess.run(self.as_user + [os.path.join(self.bindir, "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", "postgres", "-d", database or self.database, "-At", "-c", sql],
                              capture_output=True, text=True, timeout=60, check=True).stdout.strip()

    def create_database(self, name):
        self.psql(f"CREATE DATABASE {name}")
        self.database = name
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self):
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
