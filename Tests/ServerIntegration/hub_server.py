"""A test Hugging Face hub: serves a directory of repos, ROOT/{org}/{name}/..., under the hub's URL
layout and headers, for `verity pull` and Python's huggingface_hub alike (point HF_ENDPOINT at it).
It is a fixture; the clients it serves are the real ones.

    python3 hub_server.py ROOT [--port P] [--cdn-port Q] [--gated org/name=TOKEN ...]

What it speaks (as huggingface.co does; see huggingface_hub file_download.py, hf_api.py, utils/_http.py):
- GET /api/models/{org}/{name}/revision/{rev}[?blobs=true]: {"id", "sha", "siblings": [{"rfilename",
  "blobId", "size", "lfs": {"sha256", "size", "pointerSize"}}], ...}. The commit (`sha`) is a stable
  fake: sha1 over the repo's paths and contents. Revisions: "main", or the commit itself.
- GET /api/models/{org}/{name}/tree/{rev}?recursive=...: the file list huggingface_hub's
  snapshot_download reads ({"type": "file", "oid", "size", "path", "lfs": {"oid", "size", "pointerSize"}}).
- HEAD/GET /{org}/{name}/resolve/{rev}/{path}: small files are served directly with ETag = the
  quoted git blob id; LFS files (*.gguf, *.safetensors, *.bin, *.model, or >= 1 MiB) answer 302 to
  a CDN on another port (another origin, so clients must drop the token), with X-Linked-Etag = the
  quoted sha256, X-Linked-Size, and ETag = the git id of the LFS pointer. Every answer carries
  X-Repo-Commit. Range → 206 with Content-Range.
- Errors with the hub's X-Error-Code / X-Error-Message: 404 RepoNotFound, RevisionNotFound,
  EntryNotFound; 401 GatedRepo for a gated repo without its token (`Authorization: Bearer TOKEN`).

Test knobs (JSON to POST /_control, on the hub port): {"gated": {"org/name": "TOKEN"}},
{"drop": {"file": "org/name/path", "after": N}} (the next content GET of that file sends N bytes,
then closes the connection; once), {"corrupt": {"file": "org/name/path", "offset": K}} (byte K is
flipped in every content response until reset), {"ignore_range": true}, {"api_size": {"file": "org/name/path", "size": N}} (the revision
API understates a file's size), {"rename": {"old/name":
"org/name"}} (relative 307 redirects from the old name, as the hub does for renamed repos),
{"reset": true} (no knobs, empty log). GET /_log: every request seen so far ({"port", "method",
"path", "range", "authorization"}).
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin", ".model", ".pt", ".pth")
LFS_MIN_SIZE = 1 << 20
CHUNK = 64 * 1024


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256, size):
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


class RepoFile:
    def __init__(self, path, full):
        self.path, self.full = path, full
        self.size = full.stat().st_size
        self.lfs = path.lower().endswith(LFS_SUFFIXES) or self.size >= LFS_MIN_SIZE
        h = hashlib.sha256()
        g = hashlib.sha1(b"blob %d\0" % self.size)
        with open(full, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                g.update(chunk)
        self.sha256 = h.hexdigest()
        self.git_id = g.hexdigest()
        self.pointer = lfs_pointer(self.sha256, self.size)
        self.pointer_id = git_blob_id(self.pointer)

    @property
    def etag(self):
        return self.sha256 if self.lfs else self.git_id


class Hub:
    """The repos under root, the knobs, and the request log; shared by both ports' handlers."""

    def __init__(self, root, gated=None):
        self.root = Path(root)
        self.lock = threading.Lock()
        self.hash_cache = {}
        self.log = []
        self.reset()
        self.gated = dict(gated or {})
        self.cdn_base = None

    def reset(self):
        self.gated = {}
        self.drop = {}
        self.corrupt = {}
        self.ignore_range = False
        self.rename = {}
        self.api_size = {}
        self.log = []

    def files(self, repo):
        base = self.root / repo
        if not base.is_dir():
            return None
        out = {}
        for full in sorted(base.rglob("*")):
            rel = full.relative_to(base).as_posix()
            if full.is_dir() or any(part.startswith(".") for part in rel.split("/")):
                continue
            st = full.stat()
            key = (str(full), st.st_size, st.st_mtime_ns)
            with self.lock:
                cached = self.hash_cache.get(key)
            if cached is None:
                cached = RepoFile(rel, full)
                with self.lock:
                    self.hash_cache[key] = cached
            out[rel] = cached
        return out

    @staticmethod
    def commit(files):
        h = hashlib.sha1()
        for path, f in sorted(files.items()):
            h.update(f"{path}\0{f.sha256}\n".encode())
        return h.hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: Hub = None
    port_name = "hub"

    def log_message(self, *args):
        pass

    # --- plumbing

    def record(self):
        with self.hub.lock:
            self.hub.log.append({"port": self.port_name, "method": self.command, "path": self.path,
                                 "range": self.headers.get("Range"), "authorization": self.headers.get("Authorization")})

    def send(self, status, body=b"", headers=None, content_type="application/json"):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message, headers=None):
        h = {"X-Error-Message": message}
        if code:
            h["X-Error-Code"] = code
        h.update(headers or {})
        self.send(status, json.dumps({"error": message}).encode(), h)

    def json(self, obj, headers=None):
        self.send(200, json.dumps(obj).encode(), headers)

    def do_HEAD(self):
        self.dispatch()

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.record()
        if self.port_name == "hub" and urllib.parse.urlsplit(self.path).path == "/_control":
            length = int(self.headers.get("Content-Length") or 0)
            self.control(json.loads(self.rfile.read(length) or b"{}"))
            return self.json({"ok": True})
        self.error(404, None, "not found")

    def control(self, body):
        hub = self.hub
        with hub.lock:
            if body.get("reset"):
                hub.reset()
            hub.gated.update(body.get("gated", {}))
            hub.rename.update(body.get("rename", {}))
            if "drop" in body:
                hub.drop[body["drop"]["file"]] = int(body["drop"]["after"])
            if "corrupt" in body:
                hub.corrupt[body["corrupt"]["file"]] = int(body["corrupt"]["offset"])
            if "api_size" in body:
                hub.api_size[body["api_size"]["file"]] = int(body["api_size"]["size"])
            if "ignore_range" in body:
                hub.ignore_range = bool(body["ignore_range"])

    def dispatch(self):
        self.record()
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        query = urllib.parse.parse_qs(url.query)
        try:
            if self.port_name == "cdn":
                return self.cdn(parts, query)
            if url.path == "/_log":
                with self.hub.lock:
                    return self.json(list(self.hub.log))
            if len(parts) >= 5 and parts[0] == "api" and parts[1] == "models" and parts[4] in ("revision", "tree"):
                return self.api(parts[2] + "/" + parts[3], parts[4], parts[5] if len(parts) > 5 else "main", url)
            if len(parts) >= 5 and parts[2] == "resolve":
                return self.resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]), url)
            self.error(404, None, "not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- the hub's checks, in its order: rename, repo, access, revision

    def repo_state(self, repo, revision, url):
        """(files, commit) for a request the caller may make, or None after answering with an error."""
        renamed = self.hub.rename.get(repo)
        if renamed is not None:
            target = url.path.replace("/" + repo + "/", "/" + renamed + "/", 1)
            self.send(307, b"", {"Location": target + (("?" + url.query) if url.query else "")})
            return None
        files = self.hub.files(repo)
        if files is None:
            self.error(404, "RepoNotFound", "Repository not found")
            return None
        token = self.hub.gated.get(repo)
        if token is not None:
            auth = self.headers.get("Authorization")
            if auth != f"Bearer {token}":
                message = ("Invalid credentials in Authorization header" if auth else
                           f"Access to model {repo} is restricted. You must have access to it and be authenticated to access it. Please log in.")
                self.error(401, "GatedRepo", message)
                return None
        commit = Hub.commit(files)
        if revision not in ("main", commit):
            self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return files, commit

    def api(self, repo, kind, revision, url):
        state = self.repo_state(repo, revision, url)
        if state is None:
            return
        files, commit = state
        if kind == "tree":
            entries, dirs = [], set()
            for path, f in files.items():
                for i in range(1, path.count("/") + 1):
                    dirs.add("/".join(path.split("/")[:i]))
                e = {"type": "file", "oid": f.pointer_id if f.lfs else f.git_id, "size": f.size, "path": path}
                if f.lfs:
                    e["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
                entries.append(e)
            entries += [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d} for d in sorted(dirs)]
            return self.json(entries)
        blobs = "blobs" in urllib.parse.parse_qs(url.query)
        siblings = []
        for path, f in files.items():
            s = {"rfilename": path}
            if blobs:
                size = self.hub.api_size.get(f"{repo}/{path}", f.size)
                s["blobId"] = f.pointer_id if f.lfs else f.git_id
                s["size"] = size
                if f.lfs:
                    s["lfs"] = {"sha256": f.sha256, "size": size, "pointerSize": len(f.pointer)}
            siblings.append(s)
        org = repo.split("/")[0]
        self.json({"_id": hashlib.sha1(repo.encode()).hexdigest()[:24], "id": repo, "modelId": repo, "author": org,
                   "sha": commit, "private": False, "gated": repo in self.hub.gated and "manual" or False,
                   "disabled": False, "downloads": 0, "likes": 0, "tags": [], "library_name": None,
                   "createdAt": "2025-01-01T00:00:00.000Z", "lastModified": "2025-01-01T00:00:00.000Z",
                   "siblings": siblings})

    def resolve(self, repo, revision, path, url):
        state = self.repo_state(repo, revision, url)
        if state is None:
            return
        files, commit = state
        f = files.get(path)
        if f is None:
            return self.error(404, "EntryNotFound", f"{path} does not exist on \"{revision}\"", {"X-Repo-Commit": commit})
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if f.lfs:
            headers.update({"ETag": f'"{f.pointer_id}"', "X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size),
                            "Location": f"{self.hub.cdn_base}/cdn/{f.sha256}?repo={urllib.parse.quote(repo)}&path={urllib.parse.quote(path)}"})
            return self.send(302, b"", headers)
        headers["ETag"] = f'"{f.git_id}"'
        self.content(repo, f, headers)

    def cdn(self, parts, query):
        if len(parts) != 2 or parts[0] != "cdn" or "repo" not in query or "path" not in query:
            return self.error(404, None, "no such object")
        repo, path = query["repo"][0], query["path"][0]
        files = self.hub.files(repo) or {}
        f = files.get(path)
        if f is None or f.sha256 != parts[1]:
            return self.error(404, None, "no such object")
        self.content(repo, f, {"ETag": f'"{hashlib.md5(f.sha256.encode()).hexdigest()}"', "Accept-Ranges": "bytes"})

    # --- bytes, with Range and the drop / corrupt knobs

    def content(self, repo, f, headers):
        key = f"{repo}/{f.path}"
        start, status = 0, 200
        rng = self.headers.get("Range")
        with self.hub.lock:
            ignore_range = self.hub.ignore_range
            corrupt = self.hub.corrupt.get(key)
            drop = None if self.command == "HEAD" else self.hub.drop.pop(key, None)
        if rng and not ignore_range:
            spec = rng.strip()
            if not spec.startswith("bytes=") or "," in spec:
                return self.error(416, None, "bad range", {"Content-Range": f"bytes */{f.size}"})
            first, _, last = spec[6:].partition("-")
            start = int(first)
            if start >= f.size:
                return self.error(416, None, "range not satisfiable", {"Content-Range": f"bytes */{f.size}"})
            if last:
                return self.error(416, None, "only open-ended ranges are served", {"Content-Range": f"bytes */{f.size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{f.size - 1}/{f.size}"
        length = f.size - start
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = 0
        with open(f.full, "rb") as fh:
            fh.seek(start)
            pos = start
            while True:
                chunk = fh.read(CHUNK)
                if not chunk:
                    break
                if corrupt is not None and pos <= corrupt < pos + len(chunk):
                    b = bytearray(chunk)
                    b[corrupt - pos] ^= 0xFF
                    chunk = bytes(b)
                if drop is not None and sent + len(chunk) >= drop:
                    self.wfile.write(chunk[: drop - sent])
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
                pos += len(chunk)


def serve(root, port=0, cdn_port=0, host="127.0.0.1", gated=None):
    """Starts the hub (and its CDN) in background threads; returns (hub_url, hub, stop)."""
    hub = Hub(root, gated)
    hub_handler = type("HubHandler", (Handler,), {"hub": hub, "port_name": "hub"})
    cdn_handler = type("CdnHandler", (Handler,), {"hub": hub, "port_name": "cdn"})
    hub_server = ThreadingHTTPServer((host, port), hub_handler)
    cdn_server = ThreadingHTTPServer((host, cdn_port), cdn_handler)
    hub_server.daemon_threads = cdn_server.daemon_threads = True
    hub.cdn_base = f"http://{host}:{cdn_server.server_address[1]}"
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (hub_server, cdn_server)]
    for t in threads:
        t.start()

    def stop():
        for s in (hub_server, cdn_server):
            s.shutdown()
            s.server_close()

    return f"http://{host}:{hub_server.server_address[1]}", hub, stop


def main():
    parser = argparse.ArgumentParser(description="A test Hugging Face hub over a directory of repos ROOT/{org}/{name}/.")
    parser.add_argument("root")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--cdn-port", type=int, default=0)
    parser.add_argument("--gated", action="append", default=[], metavar="ORG/NAME=TOKEN")
    args = parser.parse_args()
    gated = dict(g.split("=", 1) for g in args.gated)
    url, _, stop = serve(args.root, args.port, args.cdn_port, args.host, gated)
    print(f"serving {args.root} at {url} (HF_ENDPOINT={url})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        stop()


if __name__ == "__main__":
    sys.exit(main())
