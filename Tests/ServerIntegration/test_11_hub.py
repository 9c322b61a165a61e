"""`verity pull` against a test hub (hub_server.py) that speaks the Hugging Face hub's API and headers
on loopback, and the cache it shares with Python's huggingface_hub and transformers, both ways.

The repos are built here, in a temporary folder: a GGUF repo whose default quant (Q4_K_M) is the
provisioned SmolLM2 (the other quants are small stand-ins with their own bytes), the same model
split into three shards with gguf-py's writer, a tiny random Llama saved by transformers as a
sharded safetensors checkpoint with a tokenizer, a gated repo, a 6 MB file for interrupted and
corrupted downloads, and a repo with nothing loadable. Each test has its own cache (HF_HUB_CACHE)
and HF_HOME, so no token or cache of the machine leaks in.

For other suites: `hub_repos` (session) builds the repos and `hub` (session) serves them;
`start_hub(root)` serves any folder of repos ROOT/{org}/{name}/ and returns a HubFixture with its
URL (for HF_ENDPOINT), control() and log()."""
import hashlib, json, os, shutil, subprocess, sys, threading, time
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

import hub_server
from support import MODEL_ID, free_port, verity_binary

SMOL = Path(os.environ.get("VERITY_CACHE_DIR", Path.home() / ".cache/verity")) / "models" / f"{MODEL_ID}.gguf"
GATED_TOKEN = "hf_test_gated_token_0123456789"
GGUF_REPO = "test-org/smol-gguf"
SPLIT_REPO = "test-org/smol-split"
ST_REPO = "test-org/tiny-llama"
GATED_REPO = "test-org/gated-gguf"
BIG_REPO = "test-org/big"
BIG_FILE = "big-Q4_K_M.gguf"
EMPTY_REPO = "test-org/readme-only"


# ---------------------------------------------------------------------------------------------
# The test hub


class HubFixture:
    """A running hub_server over `root`: `url` for HF_ENDPOINT; `control(**knobs)` posts to /_control;
    `log()` is every request it saw; `stop()`."""

    def __init__(self, root, gated=None):
        self.root = Path(root)
        self.url, self.hub, self._stop = hub_server.serve(root, port=0, gated=gated)

    def control(self, **knobs):
        req = Request(self.url + "/_control", data=json.dumps(knobs).encode(), method="POST",
                      headers={"Content-Type": "application/json"})
        with urlopen(req, timeout=10) as r:
            assert r.status == 200

    def log(self):
        with urlopen(self.url + "/_log", timeout=10) as r:
            return [e for e in json.load(r) if e["path"] != "/_log"]

    def clear_log(self):
        with self.hub.lock:
            self.hub.log.clear()

    def commit(self, repo):
        return hub_server.Hub.commit(self.hub.files(repo))

    def stop(self):
        self._stop()


def start_hub(root, gated=None):
    """Serves the repos under `root` (ROOT/{org}/{name}/...) on a free loopback port."""
    return HubFixture(root, gated)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fake_gguf(path, label, size=64 * 1024):
    """A stand-in quant: GGUF magic, its label, and bytes of its own (the client never parses it)."""
    seed = hashlib.sha256(label.encode()).digest()
    body = b"".join(hashlib.sha256(seed + i.to_bytes(4, "little")).digest() for i in range(size // 32))
    path.write_bytes(b"GGUF" + label.encode().ljust(28, b"\0") + body)


def split_gguf(source, out_dir, stem, shards=3):
    """`source` split like llama.cpp's gguf-split (split.no / split.count / split.tensors.count, names
    STEM-0000i-of-0000N.gguf) with gguf-py's writer; returns the shard paths."""
    import gguf
    reader = gguf.GGUFReader(source)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    per_shard = (len(reader.tensors) + shards - 1) // shards
    writer = gguf.GGUFWriter(out_dir / f"{stem}.gguf", arch, split_max_tensors=per_shard)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    for t in reader.tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in reader.tensors:
        writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
    writer.close()
    return sorted(out_dir.glob(f"{stem}-*-of-*.gguf"))


def tiny_llama(out_dir):
    """A tiny random LlamaForCausalLM saved by transformers (sharded safetensors + index, config,
    generation config) with a byte-level BPE tokenizer and a chat template."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, GenerationConfig
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["The quick brown fox jumps over the lazy dog. " * 20, "Hello, world! 12345 café"], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    fast.chat_template = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    fast.save_pretrained(out_dir)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=0, eos_token_id=1, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=0, eos_token_id=1, do_sample=True, temperature=0.7)
    model.save_pretrained(out_dir, max_shard_size="150KB")


@pytest.fixture(scope="session")
def hub_repos(tmp_path_factory):
    """ROOT/{org}/{name}/ for the repos this suite uses (see the module's docstring)."""
    if not SMOL.is_file():
        pytest.fail(f"{SMOL} is missing: run scripts/fetch-models")
    root = tmp_path_factory.mktemp("hub-root")
    gg = root / GGUF_REPO
    gg.mkdir(parents=True)
    os.link(SMOL, gg / "smol-Q4_K_M.gguf") if SMOL.stat().st_dev == gg.stat().st_dev else shutil.copy(SMOL, gg / "smol-Q4_K_M.gguf")
    for quant in ("Q8_0", "Q2_K", "IQ4_XS"):
        fake_gguf(gg / f"smol-{quant}.gguf", quant)
    fake_gguf(gg / "mmproj-smol-Q4_K_M.gguf", "mmproj")
    (gg / "README.md").write_text("# smol\n")
    (gg / "config.json").write_text('{"note": "a GGUF repo with a stray config"}\n')

    split = root / SPLIT_REPO
    split.mkdir(parents=True)
    shards = split_gguf(SMOL, split, "smol-Q4_1", shards=3)
    assert [s.name for s in shards] == [f"smol-Q4_1-0000{i}-of-00003.gguf" for i in (1, 2, 3)], shards

    st = root / ST_REPO
    st.mkdir(parents=True)
    tiny_llama(st)
    (st / "README.md").write_text("# tiny\n")
    assert (st / "model.safetensors.index.json").is_file(), sorted(p.name for p in st.iterdir())

    gated = root / GATED_REPO
    gated.mkdir(parents=True)
    fake_gguf(gated / "gated-Q4_K_M.gguf", "gated")

    big = root / BIG_REPO
    big.mkdir(parents=True)
    fake_gguf(big / BIG_FILE, "big", size=6 * 1024 * 1024)
    (big / "config.json").write_text('{"small": "file"}\n')

    empty = root / EMPTY_REPO
    empty.mkdir(parents=True)
    (empty / "README.md").write_text("nothing here\n")
    (empty / "pytorch_model.bin").write_bytes(b"\0" * 100)
    return root


@pytest.fixture(scope="session")
def hub(hub_repos):
    """The test hub over `hub_repos`, gated repo included; knobs and log reset before each use."""
    h = start_hub(hub_repos, gated={GATED_REPO: GATED_TOKEN})
    yield h
    h.stop()


@pytest.fixture
def fresh_hub(hub):
    hub.control(reset=True, gated={GATED_REPO: GATED_TOKEN})
    return hub


@pytest.fixture
def home(tmp_path):
    """An empty HF_HOME and HF_HUB_CACHE for one test."""
    (tmp_path / "hf").mkdir()
    return tmp_path / "hf"


def hf_env(hub, home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))}
    env.update(HF_ENDPOINT=hub.url if hub else "http://127.0.0.1:9", HF_HOME=str(home), HF_HUB_CACHE=str(home / "hub"),
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_XET="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def pull(hub, home, *args, check=True, timeout=180, **env):
    p = subprocess.run([str(verity_binary()), "pull", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       env=hf_env(hub, home, **env))
    if check:
        assert p.returncode == 0, f"verity pull {' '.join(map(str, args))} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def python(hub, home, code, timeout=300, **env):
    """Runs `code` in a fresh Python with the hub's environment (huggingface_hub reads it at import);
    returns its last stdout line parsed as JSON."""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=hf_env(hub, home, **env))
    assert p.returncode == 0, f"python exited {p.returncode}:\n{p.stdout}\n{p.stderr[-4000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def repo_dir(home, repo):
    return home / "hub" / ("models--" + repo.replace("/", "--"))


def content_requests(hub):
    """GETs that moved file bytes (resolve or CDN), not HEADs or API calls."""
    return [e for e in hub.log() if e["method"] == "GET" and ("/resolve/" in e["path"] or e["port"] == "cdn")]


# ---------------------------------------------------------------------------------------------
# Picking files


def test_pull_by_tag_lands_in_the_hf_cache_layout(fresh_hub, home, hub_repos):
    p = pull(fresh_hub, home, f"{GGUF_REPO}:q8_0")
    commit = fresh_hub.commit(GGUF_REPO)
    folder = repo_dir(home, GGUF_REPO)
    path = Path(p.stdout.strip())
    assert path == folder / "snapshots" / commit / "smol-Q8_0.gguf", p.stdout
    assert path.read_bytes() == (hub_repos / GGUF_REPO / "smol-Q8_0.gguf").read_bytes()
    sha = sha256_file(path)
    # A relative symlink into blobs/, named by the LFS sha256; refs/main holds the commit, no newline.
    assert os.readlink(path) == f"../../blobs/{sha}"
    assert (folder / "blobs" / sha).is_file() and not (folder / "blobs" / sha).is_symlink()
    assert (folder / "refs" / "main").read_text() == commit
    assert sorted(p.name for p in (folder / "blobs").iterdir()) == [sha], "only the tagged file is downloaded"
    assert (home / "hub" / ".locks" / f"models--{GGUF_REPO.replace('/', '--')}" / f"{sha}.lock").exists()
    assert "smol-Q8_0.gguf" in p.stderr, "a line per downloaded file on stderr when it is not a terminal"


def test_no_tag_defaults_to_q4_k_m_and_never_mmproj(fresh_hub, home):
    p = pull(fresh_hub, home, GGUF_REPO)
    path = Path(p.stdout.strip())
    assert path.name == "smol-Q4_K_M.gguf"
    assert sha256_file(path) == sha256_file(SMOL)
    snapshot = path.parent
    assert sorted(os.listdir(snapshot)) == ["smol-Q4_K_M.gguf"]


def test_a_tag_that_matches_nothing_lists_the_files(fresh_hub, home):
    p = pull(fresh_hub, home, f"{GGUF_REPO}:Q5_K_M", check=False)
    assert p.returncode != 0 and p.stdout == ""
    assert "Q5_K_M" in p.stderr
    for name in ("smol-Q4_K_M.gguf", "smol-Q8_0.gguf", "smol-Q2_K.gguf", "smol-IQ4_XS.gguf"):
        assert name in p.stderr, p.stderr
    assert "mmproj" not in p.stderr
    assert not (repo_dir(home, GGUF_REPO) / "blobs").exists() or not os.listdir(repo_dir(home, GGUF_REPO) / "blobs")


def test_a_file_tag_picks_that_file(fresh_hub, home):
    p = pull(fresh_hub, home, f"hf.co/{GGUF_REPO}:smol-Q2_K.gguf")
    assert Path(p.stdout.strip()).name == "smol-Q2_K.gguf"


def test_sharded_gguf_downloads_every_shard_in_order(fresh_hub, home, hub_repos):
    p = pull(fresh_hub, home, f"{SPLIT_REPO}:Q4_1", "--max-parallel", "2")
    first = Path(p.stdout.strip())
    assert first.name == "smol-Q4_1-00001-of-00003.gguf"
    for i in (1, 2, 3):
        name = f"smol-Q4_1-0000{i}-of-00003.gguf"
        assert sha256_file(first.parent / name) == sha256_file(hub_repos / SPLIT_REPO / name)
    # The shards carry llama.cpp's split metadata, so a loader sees them as one model.
    import gguf
    reader = gguf.GGUFReader(first)
    assert reader.fields["split.count"].contents() == 3 and reader.fields["split.no"].contents() == 0


def test_safetensors_repo_downloads_config_tokenizer_and_every_shard(fresh_hub, home, hub_repos):
    p = pull(fresh_hub, home, ST_REPO)
    snapshot = Path(p.stdout.strip())
    assert snapshot == repo_dir(home, ST_REPO) / "snapshots" / fresh_hub.commit(ST_REPO)
    source = hub_repos / ST_REPO
    index = json.loads((source / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2, "the fixture must be sharded"
    expected = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                "model.safetensors.index.json", *shards}
    expected |= {n for n in ("special_tokens_map.json", "chat_template.jinja") if (source / n).exists()}
    assert set(os.listdir(snapshot)) == expected, "README and other files are not fetched"
    for name in expected:
        assert (snapshot / name).read_bytes() == (source / name).read_bytes(), name
        assert os.readlink(snapshot / name).startswith("../../blobs/")
    # Small files are named by their git blob id (40 hex), LFS files by their sha256 (64 hex).
    config_blob = os.readlink(snapshot / "config.json").rsplit("/", 1)[1]
    data = (source / "config.json").read_bytes()
    assert config_blob == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    assert os.readlink(snapshot / shards[0]).rsplit("/", 1)[1] == sha256_file(source / shards[0])


def test_a_repo_with_nothing_loadable_lists_its_files(fresh_hub, home):
    p = pull(fresh_hub, home, EMPTY_REPO, check=False)
    assert p.returncode != 0
    assert "README.md" in p.stderr and "pytorch_model.bin" in p.stderr and "safetensors" in p.stderr


# ---------------------------------------------------------------------------------------------
# Errors a user can act on


def test_repo_not_found(fresh_hub, home):
    p = pull(fresh_hub, home, "test-org/no-such-model", check=False)
    assert p.returncode != 0
    assert "test-org/no-such-model" in p.stderr and "not found" in p.stderr and "Repository not found" in p.stderr


def test_revision_not_found(fresh_hub, home):
    p = pull(fresh_hub, home, GGUF_REPO, "--revision", "v9-nope", check=False)
    assert p.returncode != 0
    assert "revision not found" in p.stderr and "v9-nope" in p.stderr and "Invalid rev id" in p.stderr


def test_invalid_references_are_refused_before_any_request(fresh_hub, home):
    for spec in ("../x", "a/b/c", "org/na me", f"{GGUF_REPO}:../../etc/passwd"):
        p = pull(fresh_hub, home, spec, check=False)
        assert p.returncode != 0 and "Error" in p.stderr, (spec, p.stderr)
    assert fresh_hub.log() == []


def test_gated_repo_needs_a_token_from_the_environment_or_the_token_file(fresh_hub, home):
    p = pull(fresh_hub, home, GATED_REPO, check=False)
    assert p.returncode != 0
    assert f"Access to model {GATED_REPO} is restricted" in p.stderr, "the hub's own message"
    assert "HF_TOKEN" in p.stderr and "huggingface-cli login" in p.stderr

    wrong = pull(fresh_hub, home, GATED_REPO, check=False, HF_TOKEN="hf_wrong")
    assert wrong.returncode != 0 and "Invalid credentials" in wrong.stderr and "HF_TOKEN" in wrong.stderr

    fresh_hub.clear_log()
    ok = pull(fresh_hub, home, GATED_REPO, HF_TOKEN=GATED_TOKEN)
    assert Path(ok.stdout.strip()).name == "gated-Q4_K_M.gguf"
    log = fresh_hub.log()
    assert all(e["authorization"] == f"Bearer {GATED_TOKEN}" for e in log if e["port"] == "hub")
    cdn = [e for e in log if e["port"] == "cdn"]
    assert cdn and all(e["authorization"] is None for e in cdn), "the token never goes to the CDN's origin"

    # The file `huggingface-cli login` writes: $HF_HOME/token, or HF_TOKEN_PATH.
    other = home.parent / "hf2"
    other.mkdir()
    (other / "token").write_text(GATED_TOKEN + "\n")
    assert pull(fresh_hub, other, GATED_REPO).returncode == 0
    (home.parent / "elsewhere").write_text(GATED_TOKEN)
    third = home.parent / "hf3"
    third.mkdir()
    assert pull(fresh_hub, third, GATED_REPO, HF_TOKEN_PATH=home.parent / "elsewhere").returncode == 0


def test_offline_with_nothing_cached_is_a_clear_error(home):
    p = pull(None, home, GGUF_REPO, check=False, HF_HUB_OFFLINE="1")
    assert p.returncode != 0
    assert f"HF_HUB_OFFLINE is set and {GGUF_REPO}@main is not in the cache at" in p.stderr
    assert str(home / "hub") in p.stderr


def test_unreachable_hub_falls_back_to_the_cache(fresh_hub, home):
    closed = f"http://127.0.0.1:{free_port()}"
    p = pull(fresh_hub, home, GGUF_REPO, check=False, HF_ENDPOINT=closed)
    assert p.returncode != 0 and "cannot reach" in p.stderr and "not in the cache" in p.stderr
    path = pull(fresh_hub, home, f"{GGUF_REPO}:Q8_0").stdout.strip()
    again = pull(fresh_hub, home, f"{GGUF_REPO}:Q8_0", HF_ENDPOINT=closed)
    assert again.stdout.strip() == path
    assert "using the cached snapshot" in again.stderr


# ---------------------------------------------------------------------------------------------
# Downloads a user can trust


def big_sha(hub_repos):
    return sha256_file(hub_repos / BIG_REPO / BIG_FILE)


def test_interrupted_download_resumes_with_range_and_verifies(fresh_hub, home, hub_repos):
    fresh_hub.control(drop={"file": f"{BIG_REPO}/{BIG_FILE}", "after": 2_000_000})
    p = pull(fresh_hub, home, f"{BIG_REPO}:Q4_K_M")
    path = Path(p.stdout.strip())
    assert sha256_file(path) == big_sha(hub_repos)
    gets = [e for e in content_requests(fresh_hub) if BIG_FILE in e["path"] or e["port"] == "cdn"]
    assert len(gets) == 2, gets
    assert gets[0]["range"] is None
    start = int(gets[1]["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 2_000_000, gets[1]
    assert "retrying" in p.stderr
    assert not list((repo_dir(home, BIG_REPO) / "blobs").glob("*.incomplete"))


def test_an_incomplete_blob_from_an_earlier_run_is_resumed(fresh_hub, home, hub_repos):
    sha = big_sha(hub_repos)
    blobs = repo_dir(home, BIG_REPO) / "blobs"
    blobs.mkdir(parents=True)
    data = (hub_repos / BIG_REPO / BIG_FILE).read_bytes()
    (blobs / f"{sha}.incomplete").write_bytes(data[:1_500_000])
    p = pull(fresh_hub, home, f"{BIG_REPO}:Q4_K_M")
    assert sha256_file(p.stdout.strip()) == sha
    ranges = [e["range"] for e in content_requests(fresh_hub)]
    assert ranges == ["bytes=1500000-"], ranges
    assert sorted(os.listdir(blobs)) == [sha]


def test_a_server_that_ignores_range_restarts_the_file(fresh_hub, home, hub_repos):
    sha = big_sha(hub_repos)
    blobs = repo_dir(home, BIG_REPO) / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{sha}.incomplete").write_bytes(b"x" * 1_000_000)  # a wrong prefix: only a full restart fixes it
    fresh_hub.control(ignore_range=True)
    p = pull(fresh_hub, home, f"{BIG_REPO}:Q4_K_M")
    assert sha256_file(p.stdout.strip()) == sha


def test_a_corrupted_byte_is_caught_and_never_enters_blobs(fresh_hub, home, hub_repos):
    fresh_hub.control(corrupt={"file": f"{BIG_REPO}/{BIG_FILE}", "offset": 4_321_000})
    p = pull(fresh_hub, home, f"{BIG_REPO}:Q4_K_M", check=False)
    assert p.returncode != 0
    data = bytearray((hub_repos / BIG_REPO / BIG_FILE).read_bytes())
    data[4_321_000] ^= 0xFF
    got = hashlib.sha256(data).hexdigest()
    assert BIG_FILE in p.stderr and big_sha(hub_repos) in p.stderr and got in p.stderr, p.stderr
    blobs = repo_dir(home, BIG_REPO) / "blobs"
    assert not blobs.exists() or os.listdir(blobs) == [], os.listdir(blobs)
    assert not (repo_dir(home, BIG_REPO) / "snapshots").exists() or not any((repo_dir(home, BIG_REPO) / "snapshots").rglob(BIG_FILE))

    # A small (non-LFS) file is checked against its git blob id.
    fresh_hub.control(reset=True, corrupt={"file": f"{ST_REPO}/config.json", "offset": 3})
    small = pull(fresh_hub, home, ST_REPO, check=False)
    assert small.returncode != 0 and "config.json" in small.stderr and "git blob id" in small.stderr
    assert not (repo_dir(home, ST_REPO) / "snapshots").exists() or not any((repo_dir(home, ST_REPO) / "snapshots").rglob("*.safetensors"))

    fresh_hub.control(reset=True)
    assert sha256_file(pull(fresh_hub, home, f"{BIG_REPO}:Q4_K_M").stdout.strip()) == big_sha(hub_repos)


def test_a_python_download_holding_the_lock_is_waited_for(fresh_hub, home, hub_repos):
    """huggingface_hub locks .locks/models--ORG--NAME/<etag>.lock with flock; Verity takes the same lock."""
    import fcntl
    sha = big_sha(hub_repos)
    lock = home / "hub" / ".locks" / f"models--{BIG_REPO.replace('/', '--')}" / f"{sha}.lock"
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o664)
    fcntl.flock(fd, fcntl.LOCK_EX)
    proc = subprocess.Popen([str(verity_binary()), "pull", f"{BIG_REPO}:Q4_K_M"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=hf_env(fresh_hub, home))
    try:
        time.sleep(3.5)
        assert proc.poll() is None, "verity must wait for the lock"
        assert not (repo_dir(home, BIG_REPO) / "blobs" / f"{sha}.incomplete").exists()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "waiting for another download" in err
    assert sha256_file(out.strip()) == sha


def _in_small_filesystem(hub, home, size, *args):
    """`verity pull ARGS` with HF_HUB_CACHE on a tmpfs of `size` (a private mount namespace via
    unshare; skipped where the kernel does not allow one)."""
    cache = home / "hub"
    cache.mkdir(exist_ok=True)
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size={size} tmpfs "$1"', "sh", str(cache)],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs in a user namespace here: {probe.stderr.strip()}")
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", size, str(cache), str(verity_binary()), "pull", *args],
                          capture_output=True, text=True, timeout=120, env=hf_env(hub, home))


def test_disk_full_is_reported_before_and_during_the_download(fresh_hub, home):
    p = _in_small_filesystem(fresh_hub, home, "4m", f"{BIG_REPO}:Q4_K_M")
    assert p.returncode != 0
    assert "not enough disk space" in p.stderr and "6.3 MB to download" in p.stderr and "free" in p.stderr, p.stderr
    assert content_requests(fresh_hub) == [], "nothing is downloaded when it cannot fit"
    # When the listing understates the size, the write itself hits ENOSPC.
    fresh_hub.control(api_size={"file": f"{BIG_REPO}/{BIG_FILE}", "size": 1000})
    p = _in_small_filesystem(fresh_hub, home, "4m", f"{BIG_REPO}:Q4_K_M")
    assert p.returncode != 0
    assert "disk full while writing" in p.stderr and ".incomplete" in p.stderr, p.stderr


def test_json_progress_parses(fresh_hub, home):
    p = pull(fresh_hub, home, ST_REPO, "--json")
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[0]["commit"] == fresh_hub.commit(ST_REPO)
    files = [e for e in events if e["event"] == "file"]
    assert {"config.json", "tokenizer.json", "model.safetensors.index.json"} <= {e["path"] for e in files}
    assert all(e["bytes"] == e["total"] and e["bytes"] > 0 for e in files)
    done = events[-1]
    assert done["event"] == "done" and done["repo"] == ST_REPO and done["commit"] == fresh_hub.commit(ST_REPO)
    assert Path(done["directory"]).is_dir()
    assert "{" not in p.stderr, "JSON goes to stdout only"


def test_a_renamed_repo_is_followed_through_a_relative_redirect(fresh_hub, home):
    fresh_hub.control(rename={"test-org/old-name": GGUF_REPO})
    p = pull(fresh_hub, home, "test-org/old-name:Q8_0")
    assert Path(p.stdout.strip()).name == "smol-Q8_0.gguf"
    assert repo_dir(home, "test-org/old-name").is_dir()
    assert any(e["path"].startswith("/api/models/test-org/old-name/") for e in fresh_hub.log())


def test_a_commit_revision_writes_no_ref(fresh_hub, home):
    commit = fresh_hub.commit(GGUF_REPO)
    p = pull(fresh_hub, home, f"{GGUF_REPO}:Q8_0", "--revision", commit)
    assert f"/snapshots/{commit}/" in p.stdout
    assert not (repo_dir(home, GGUF_REPO) / "refs").exists()
    offline = pull(None, home, f"{GGUF_REPO}:Q8_0", "--revision", commit, HF_HUB_OFFLINE="1")
    assert offline.stdout == p.stdout


# ---------------------------------------------------------------------------------------------
# The cache, both ways, with the real huggingface_hub and transformers


def test_python_downloads_are_used_by_verity_without_network(fresh_hub, home):
    got = python(fresh_hub, home, f"""
import json
from huggingface_hub import hf_hub_download, snapshot_download
a = hf_hub_download("{GGUF_REPO}", "smol-Q8_0.gguf")
b = snapshot_download("{ST_REPO}")
print(json.dumps([a, b]))
""")
    gguf_path, snapshot = got
    closed = f"http://127.0.0.1:{free_port()}"
    p = pull(fresh_hub, home, f"{GGUF_REPO}:Q8_0", HF_HUB_OFFLINE="1", HF_ENDPOINT=closed)
    assert p.stdout.strip() == gguf_path
    s = pull(fresh_hub, home, ST_REPO, HF_HUB_OFFLINE="1", HF_ENDPOINT=closed)
    assert s.stdout.strip() == snapshot
    # Online, nothing is downloaded again.
    fresh_hub.clear_log()
    pull(fresh_hub, home, ST_REPO)
    pull(fresh_hub, home, f"{GGUF_REPO}:Q8_0")
    assert content_requests(fresh_hub) == []


def test_verity_downloads_are_found_by_huggingface_hub_and_transformers(fresh_hub, home):
    gguf_path = pull(fresh_hub, home, f"{GGUF_REPO}:Q8_0").stdout.strip()
    snapshot = pull(fresh_hub, home, ST_REPO).stdout.strip()
    got = python(fresh_hub, home, f"""
import json
from huggingface_hub import try_to_load_from_cache, snapshot_download, hf_hub_download
from transformers import AutoConfig, AutoTokenizer, AutoModelForCausalLM
print(json.dumps({{
    "cached": try_to_load_from_cache("{GGUF_REPO}", "smol-Q8_0.gguf"),
    "config": try_to_load_from_cache("{ST_REPO}", "config.json"),
    "snapshot": snapshot_download("{ST_REPO}", local_files_only=True),
    "file": hf_hub_download("{ST_REPO}", "tokenizer.json", local_files_only=True),
    "model_type": AutoConfig.from_pretrained("{ST_REPO}").model_type,
    "tokens": AutoTokenizer.from_pretrained("{ST_REPO}")("Hello, world!")["input_ids"],
    "params": sum(p.numel() for p in AutoModelForCausalLM.from_pretrained("{ST_REPO}").parameters()),
}}))
""", HF_HUB_OFFLINE="1", HF_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    assert got["cached"] == gguf_path
    assert got["config"] == snapshot + "/config.json"
    assert got["snapshot"] == snapshot
    assert got["file"] == snapshot + "/tokenizer.json"
    assert got["model_type"] == "llama"
    assert got["tokens"]
    assert got["params"] > 50_000
    # And online, huggingface_hub downloads nothing Verity already has.
    fresh_hub.clear_log()
    python(fresh_hub, home, f"""
from huggingface_hub import hf_hub_download
print('"%s"' % hf_hub_download("{GGUF_REPO}", "smol-Q8_0.gguf"))
""")
    assert content_requests(fresh_hub) == []
