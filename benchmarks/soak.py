"""A soak: mixed traffic against ``spyglass serve`` (127.0.0.1 only) while it is killed, then the checks.

For --minutes, threads search and ask, upload notes, index new server folders, delete planted
notes (each with a canary phrase of its own), switch the model to a copy of ``builtin:shapes``
and roll back, and take backups over HTTP. Every --kill-every seconds or so (jittered) the
server is killed with SIGKILL and started again. At the end, with the server restarted cleanly:

- every upload the server accepted is indexed or reported failed (its job, read back);
- the model switch and the rollback (asked once its switch was done) both finished, and the
  collection searches with its first model again;
- the catalog passes ``PRAGMA integrity_check``;
- the vector index matches the catalog (opened as a user would);
- no byte of a deleted canary survives under the data directory (each was quoted in a stored
  conversation turn before its delete, when the answer found it);
- the last backup restores (``spyglass restore`` into a new folder, then ``status``).

Prints requests, errors by status, p50/p99 per kind and the server's RSS over time.

    python benchmarks/soak.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
from cli import SPYGLASS, cpu_name

from spyglass.encoders.clip import shapes
from spyglass.encoders.clip.builtin import ensure_shapes_model
from spyglass.settings import EncoderSettings


class Server:
    """``spyglass serve`` on a free loopback port, restartable; RSS sampled while it runs."""

    def __init__(self, env: dict) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url, self.env, self.process, self.kills = f"http://127.0.0.1:{self.port}", env, None, 0
        self.rss: list[tuple[float, float]] = []

    def start(self) -> None:
        command = [str(SPYGLASS), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("spyglass serve did not start")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1
        self.start()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=120)

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        self.rss.append((time.monotonic(), kb / 1024))


class Traffic:
    """What the threads did: latencies and outcomes per kind, and what the checks need to know."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.accepted_jobs: list[str] = []
        self.canaries: list[str] = []  # phrases of notes deleted
        self.quoted = 0  # of those, quoted in a stored conversation turn before the delete
        self.backups: list[str] = []
        self.model_jobs: list[tuple[str, str]] = []  # (switch or rollback, job id), accepted

    def accepted(self, kind: str, response: httpx.Response | None) -> bool:
        """Whether a model job was accepted (202); it is then checked at the end."""
        if response is None or response.status_code != 202:
            return False
        self.model_jobs.append((kind, response.json()["job_id"]))
        return True

    def call(self, kind: str, method: str, url: str, **kwargs) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = httpx.request(method, url, timeout=120, **kwargs)
            outcome = str(response.status_code)
        except httpx.HTTPError as exc:
            response, outcome = None, type(exc).__name__  # the server was being killed
        with self.lock:
            self.outcomes[(kind, outcome)] += 1
            if response is not None and response.status_code < 300:
                self.latency[kind].append(time.monotonic() - started)
        return response


def readers(server: Server, traffic: Traffic, stop: float, seed: int) -> None:
    rng = random.Random(seed)
    words = ["red circle", "blue square", "green triangle", "garden notes", "the archive ledger"]
    while time.monotonic() < stop:
        text = rng.choice(words)
        if rng.random() < 0.8:
            answered = traffic.call("search", "POST", f"{server.url}/v1/search", json={"text": text, "k": 10})
        else:
            answered = traffic.call(
                "ask", "POST", f"{server.url}/v1/ask", json={"question": f"what about {text}?"}
            )
        if answered is None:  # the server is restarting: try again shortly, not in a tight loop
            time.sleep(0.5)


def converse(server: Server, traffic: Traffic, question: str, phrase: str) -> bool:
    """Ask ``question`` as a stored conversation's turn; whether its answer quoted ``phrase`` (the
    turn must then forget it when the note is deleted)."""
    started = traffic.call("conversation", "POST", f"{server.url}/v1/conversations")
    if started is None or started.status_code != 201:
        return False
    body = {"question": question, "conversation_id": started.json()["conversation_id"]}
    answered = traffic.call("ask", "POST", f"{server.url}/v1/ask", json=body)
    return answered is not None and answered.status_code == 200 and phrase in answered.text


def writers(server: Server, traffic: Traffic, stop: float, root: Path, tuned: Path, minutes: float) -> None:
    rng, n = random.Random(7), 0
    switched = rolled = False
    started = time.monotonic()
    while time.monotonic() < stop:
        n += 1
        note = f"Upload {n}: notes about the garden, the shed and row {n} of beans.\n"
        done = traffic.call(
            "upload", "POST", f"{server.url}/v1/documents", files={"files": (f"up-{n}.txt", note)}
        )
        if done is not None and done.status_code == 202:
            traffic.accepted_jobs.append(done.json()["job_id"])
        if n % 3 == 0:  # a planted note, indexed, found by its phrase and deleted
            phrase = f"canary{n:04d}{''.join(rng.choice('qxzvjk') for _ in range(6))}"
            planted = root / "planted" / f"secret-{n}.txt"
            planted.write_text(f"The code word for the archive is {phrase}.\n")
            job = traffic.call(
                "index", "POST", f"{server.url}/v1/sources", json={"path": str(planted.parent)}
            )
            if job is not None and job.status_code == 202:
                wait(server, traffic, job.json()["job_id"], time.monotonic() + 60)
            found = traffic.call("search", "POST", f"{server.url}/v1/search", json={"text": phrase, "k": 1})
            hits = found.json()["results"] if found is not None and found.status_code == 200 else []
            if hits and hits[0]["path"].endswith(planted.name):
                quoted = converse(server, traffic, "What is the code word for the archive?", phrase)
                url = f"{server.url}/v1/documents/{hits[0]['document_id']}"
                deleted = traffic.call("delete", "DELETE", url)
                if deleted is not None and deleted.status_code == 200:
                    planted.unlink()  # the source goes too, or the next index of the folder brings it back
                    traffic.canaries.append(phrase)
                    traffic.quoted += quoted
        if n % 5 == 0:  # a new server folder of pictures
            folder = root / "pictures" / f"batch-{n}"
            folder.mkdir(parents=True)
            for k, sample in enumerate(shapes.generate(6, seed=n)):
                sample.image.save(folder / f"{sample.colour}-{sample.shape}-{k:02d}.png")
            traffic.call("index", "POST", f"{server.url}/v1/sources", json={"path": str(folder)})
        elapsed = (time.monotonic() - started) / 60
        if not switched and elapsed > minutes / 3:
            asked = traffic.call("switch", "POST", f"{server.url}/v1/models", json={"spec": str(tuned)})
            switched = traffic.accepted("switch", asked)
        if switched and not rolled and elapsed > 2 * minutes / 3:
            # after the switch's job: a rollback queued behind an unfinished switch has nothing to return to
            if wait(server, traffic, traffic.model_jobs[-1][1], time.monotonic() + 120) == "done":
                asked = traffic.call("rollback", "POST", f"{server.url}/v1/models/rollback")
                rolled = traffic.accepted("rollback", asked)
        if n % 8 == 0:
            name = f"backup-{n}"
            made = traffic.call("backup", "POST", f"{server.url}/v1/backup", json={"name": name})
            if made is not None and made.status_code == 200:
                traffic.backups.append(name)
        time.sleep(rng.uniform(0.5, 2))


def wait(server: Server, traffic: Traffic, job_id: str, deadline: float) -> str | None:
    """The job's final state, or None if it has none by ``deadline`` (the server may be restarting)."""
    while time.monotonic() < deadline:
        response = traffic.call("job", "GET", f"{server.url}/v1/jobs/{job_id}")
        if (
            response is not None
            and response.status_code == 200
            and response.json()["state"] in ("done", "failed", "cancelled")
        ):
            return response.json()["state"]
        time.sleep(0.5)
    return None


def killer(server: Server, stop: float, every: float) -> None:
    rng = random.Random(3)
    while (wake := time.monotonic() + rng.uniform(0.5 * every, 1.5 * every)) < stop:
        while time.monotonic() < wake:
            server.sample()
            time.sleep(1)
        server.kill()


def leftovers(data_dir: Path, phrases: list[str]) -> list[str]:
    needles = [phrase.encode() for phrase in phrases]
    return [
        f"{path.relative_to(data_dir)}: {needle.decode()}"
        for path in data_dir.rglob("*")
        if path.is_file()
        for needle in needles
        if needle in path.read_bytes()
    ]


def check(server: Server, traffic: Traffic, root: Path, env: dict) -> dict[str, bool]:
    data_dir = root / "data"
    states = Counter(wait(server, traffic, job, time.monotonic() + 600) for job in traffic.accepted_jobs)
    print(f"uploads accepted: {len(traffic.accepted_jobs)}, their jobs: {dict(states)}")
    models = [(kind, wait(server, traffic, job, time.monotonic() + 600)) for kind, job in traffic.model_jobs]
    print(f"model jobs: {models}")
    server.stop()
    catalog = sqlite3.connect(data_dir / "catalog.sqlite3")
    integrity = catalog.execute("PRAGMA integrity_check").fetchone()[0]
    catalog.close()
    status = json.loads(
        subprocess.run(
            [str(SPYGLASS), "status", "--json"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )
    from spyglass import Engine, Settings

    with Engine(Settings(data_dir=data_dir, model="builtin:shapes", text={"model": ""})) as engine:
        store = engine.store.status()
        index_matches = store["indexed_vectors"] == store["vectors_by_model"].get(store["model_id"], 0)
    left = leftovers(data_dir, traffic.canaries)
    restored = False
    if traffic.backups:
        target = root / "restored"
        done = subprocess.run(
            [str(SPYGLASS), "restore", str(root / "backups" / traffic.backups[-1])],
            env={**env, "SPYGLASS_DATA_DIR": str(target)},
            capture_output=True,
            text=True,
        )
        again = subprocess.run(
            [str(SPYGLASS), "status", "--json"],
            env={**env, "SPYGLASS_DATA_DIR": str(target)},
            capture_output=True,
            text=True,
        )
        restored = (
            done.returncode == 0 and again.returncode == 0 and json.loads(again.stdout)["documents"] > 0
        )
    print(
        f"catalog: {status['documents']} documents, {status['items']} items; index: {store['indexed_vectors']} vectors"
    )
    print(
        f"deleted canaries: {len(traffic.canaries)} ({traffic.quoted} quoted in a stored conversation "
        f"turn first), bytes left: {left[:5]}"
    )
    return {
        "every accepted upload indexed or failed": None not in states,
        "integrity_check ok": integrity == "ok",
        "the switch and the rollback both finished": [state for _, state in models] == ["done", "done"],
        "the rollback returned to the first model": (status["models"]["active"] or {}).get("spec")
        == "builtin:shapes",
        "index matches the catalog": index_matches,
        "no deleted canary survives": not left,
        f"the last backup ({traffic.backups[-1] if traffic.backups else 'none'}) restores": restored,
    }


def report(server: Server, traffic: Traffic, minutes: float) -> None:
    print(f"{cpu_name()}, {os.cpu_count()} CPUs; {minutes} minutes, {server.kills} SIGKILLs")
    print("| kind | requests | outcomes | p50 ms | p99 ms |\n|---|---|---|---|---|")
    for kind in sorted({kind for kind, _ in traffic.outcomes}):
        outcomes = {outcome: n for (k, outcome), n in traffic.outcomes.items() if k == kind}
        times = sorted(traffic.latency[kind]) or [0.0]
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        print(
            f"| {kind} | {sum(outcomes.values())} | {outcomes} | {statistics.median(times) * 1000:.0f} | {p99 * 1000:.0f} |"
        )
    if server.rss:
        start = server.rss[0][0]
        per_minute: dict[int, float] = defaultdict(float)
        for at, mb in server.rss:
            per_minute[int((at - start) // 60)] = max(per_minute[int((at - start) // 60)], mb)
        print(
            "serve RSS, highest per minute (MB):",
            {minute: round(mb) for minute, mb in sorted(per_minute.items())},
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--kill-every", type=float, default=90, help="seconds between SIGKILLs, on average")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spyglass-soak-") as scratch:
        root = Path(scratch)
        for folder in ("planted", "pictures", "backups"):
            (root / folder).mkdir()
        tuned = root / "tuned-copy"  # a second model: builtin:shapes' weights as a local model folder
        shutil.copytree(ensure_shapes_model(EncoderSettings().models_dir), tuned)
        env = {
            **os.environ,
            "SPYGLASS_DATA_DIR": str(root / "data"),
            "SPYGLASS_MODEL": "builtin:shapes",
            "SPYGLASS_TEXT__MODEL": "",
            "SPYGLASS_ALLOWED_ROOTS": json.dumps([str(root / "planted"), str(root / "pictures")]),
            "SPYGLASS_API__BACKUP_ROOT": str(root / "backups"),
            "SPYGLASS_CONFIG": os.devnull,
        }
        server, traffic = Server(env), Traffic()
        server.start()
        stop = time.monotonic() + 60 * args.minutes
        threads = [threading.Thread(target=readers, args=(server, traffic, stop, seed)) for seed in range(2)]
        threads.append(
            threading.Thread(target=writers, args=(server, traffic, stop, root, tuned, args.minutes))
        )
        threads.append(threading.Thread(target=killer, args=(server, stop, args.kill_every)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report(server, traffic, args.minutes)
        verdicts = check(server, traffic, root, env)
        for name, passed in verdicts.items():
            print(f"{'PASS' if passed else 'FAIL'}  {name}")
        raise SystemExit(0 if all(verdicts.values()) else 1)


if __name__ == "__main__":
    main()
