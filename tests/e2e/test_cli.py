"""The CLI as a user runs it: the installed console script in a subprocess, and --json parsed back."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import write_shapes

from spyglass import __version__


def run(*args: str, data_dir, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("spyglass")  # the script installed beside this interpreter
    assert exe.is_file(), "the spyglass console script is not installed"
    env = {**os.environ, "SPYGLASS_DATA_DIR": str(data_dir), "COLUMNS": "400", **(env or {})}  # no wrapping
    result = subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_help_lists_every_command(tmp_path):
    from typer.main import get_command

    from spyglass.cli import app

    commands = sorted(get_command(app).commands)
    assert len(commands) > 10 and {"index", "search", "ask", "serve", "eval"} <= set(commands)
    listed = {
        line.split()[1]
        for line in run("--help", data_dir=tmp_path).stdout.splitlines()
        if line.startswith("│ ")
    }
    assert set(commands) <= listed, set(commands) - listed


def test_version(tmp_path):
    assert run("version", data_dir=tmp_path).stdout.strip() == f"spyglass {__version__}"


def test_models_reports_presence(data_dir, shapes_encoder):
    rows = json.loads(run("models", "--json", data_dir=data_dir).stdout)
    by_spec = {row["spec"]: row for row in rows}
    assert by_spec["open_clip:ViT-B-32/laion2b_s34b_b79k"]["present"] is False  # nothing downloadable here
    assert by_spec["builtin:shapes"]["present"] is True  # trained by the shapes_encoder fixture
    assert "builtin-shapes" in by_spec["builtin:shapes"]["where"]  # the per-user model cache


def test_models_with_local_model_dir(tiny_open_clip_dir, tmp_path):
    rows = json.loads(run("--model", str(tiny_open_clip_dir), "models", "--json", data_dir=tmp_path).stdout)
    assert rows[0]["backend"] == "open_clip" and rows[0]["present"] is True


def test_encode_finds_the_matching_shape(data_dir, shapes_encoder, tmp_path):
    from spyglass.encoders.clip import shapes

    samples = shapes.generate(6, seed=5)
    red_circle, green_square = samples[0], samples[5]
    assert (red_circle.label, green_square.label) == ("a red circle", "a green square")
    red_circle.image.save(tmp_path / "one.png")
    green_square.image.save(tmp_path / "two.png")
    result = run(
        "--model",
        "builtin:shapes",
        "encode",
        "--json",
        "-t",
        "a red circle",
        "-t",
        "a green square",
        "-i",
        str(tmp_path / "one.png"),
        "-i",
        str(tmp_path / "two.png"),
        data_dir=data_dir,
    )
    payload = json.loads(result.stdout)
    similarity = payload["similarity"]
    assert payload["model_id"] == shapes_encoder.model_id and payload["dim"] == 64
    assert similarity[0][0] > similarity[0][1] and similarity[1][1] > similarity[1][0]


def test_encode_rejects_a_non_image_cleanly(data_dir, shapes_encoder, formats_dir):
    result = run(
        "--model",
        "builtin:shapes",
        "encode",
        "-i",
        str(formats_dir / "not-an-image.txt"),
        data_dir=data_dir,
        check=False,
    )
    assert result.returncode == 1
    assert "not a recognised image format" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("spec", ["bogus-model", "open_clip:ViT-B-32/no-such-tag"])
def test_bad_model_spec_is_one_line(spec, tmp_path):
    result = run("--model", spec, "encode", "-t", "x", data_dir=tmp_path, check=False)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1


def test_index_and_status_json(data_dir, shapes_encoder, formats_dir, tmp_path):
    env_dir = tmp_path / "data"
    report = json.loads(
        run(
            "--model",
            "builtin:shapes",
            "index",
            str(formats_dir),
            "--only",
            "image",
            "--json",
            data_dir=env_dir,
        ).stdout
    )
    assert report["added"] == 22 and report["items"] == 22 and len(report["errors"]) == 1
    status = json.loads(run("--model", "builtin:shapes", "status", "--json", data_dir=env_dir).stdout)
    assert status["documents"] == 23 and status["indexed_vectors"] == 22 and status["errors"] == 1
    assert status["errors_list"][0]["path"].endswith("not-an-image.txt")
    human = run("--model", "builtin:shapes", "status", data_dir=env_dir).stdout
    assert "22 vectors" in human and "not-an-image.txt" in human


def test_index_rejects_bad_arguments(tmp_path):
    missing = run("index", str(tmp_path / "nope"), data_dir=tmp_path, check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    kind = run("index", str(tmp_path), "--only", "sound", data_dir=tmp_path, check=False)
    assert kind.returncode == 2 and "unknown kind 'sound'" in kind.stderr


def test_index_takes_several_paths_and_checks_them_all_first(shapes_encoder, formats_dir, tmp_path):
    shapes = write_shapes(tmp_path / "shapes", 4, seed=5)
    typo = run(
        "--model",
        "builtin:shapes",
        "index",
        str(shapes),
        str(tmp_path / "nope"),
        data_dir=tmp_path / "d",
        check=False,
    )
    assert typo.returncode == 2 and "nope does not exist" in typo.stderr
    assert not (tmp_path / "d" / "catalog.sqlite3").exists()  # refused before anything was indexed
    reports = run(
        "--model",
        "builtin:shapes",
        "index",
        str(shapes),
        str(formats_dir / "bee.jpg"),
        "--json",
        data_dir=tmp_path / "d",
    ).stdout.splitlines()
    assert [json.loads(line)["added"] for line in reports] == [4, 1]
    human = run(
        "--model",
        "builtin:shapes",
        "index",
        str(shapes),
        str(formats_dir / "bee.jpg"),
        data_dir=tmp_path / "d",
    )
    assert str(shapes) in human.stdout and "bee.jpg" in human.stdout and human.stdout.count("0 added") == 2


def test_milvus_lite_prints_no_traceback_of_its_own(shapes_encoder, tmp_path):
    pytest.importorskip("milvus_lite")
    folder = write_shapes(tmp_path / "shapes", 3, seed=6)
    env = {"SPYGLASS_INDEX": "milvus"}
    indexed = run("--model", "builtin:shapes", "index", str(folder), data_dir=tmp_path / "d", env=env)
    assert "3 added" in indexed.stdout
    assert "Traceback" not in indexed.stdout + indexed.stderr
    assert "Method not implemented" not in indexed.stderr


def test_a_filter_whose_matches_are_all_below_the_floor_says_so(shapes_encoder, tmp_path):
    folder = write_shapes(tmp_path / "shapes", 24, seed=12)
    run("--model", "builtin:shapes", "index", str(folder), data_dir=tmp_path / "d")
    circle = next(folder.glob("red-circle-*.png"))
    run("--model", "builtin:shapes", "tag", str(circle), "red circle", data_dir=tmp_path / "d")
    search = ["--model", "builtin:shapes", "search", "a blue square", "-f", "tag=red circle"]
    floored = run(*search, data_dir=tmp_path / "d").stdout
    assert "1 match below the relevance floor" in floored and "--all" in floored
    shown = run(*search, "--all", data_dir=tmp_path / "d").stdout
    assert circle.name in shown


def test_index_watch_picks_up_new_files(data_dir, shapes_encoder, tmp_path):
    from spyglass.encoders.clip import shapes

    env_dir = tmp_path / "data"
    folder = tmp_path / "watched"
    folder.mkdir()
    samples = shapes.generate(2, seed=8)
    samples[0].image.save(folder / "first.png")
    exe = Path(sys.executable).with_name("spyglass")
    env = {**os.environ, "SPYGLASS_DATA_DIR": str(env_dir), "SPYGLASS_MODEL": "builtin:shapes"}
    process = subprocess.Popen(
        [str(exe), "index", str(folder), "--watch", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        first = json.loads(lines.get(timeout=120))
        assert first["added"] == 1
        samples[1].image.save(folder / "second.png")
        second = json.loads(lines.get(timeout=60))
        assert second["added"] == 1 and second["unchanged"] == 1
        (folder / "first.png").unlink()
        third = json.loads(lines.get(timeout=60))
        assert third["deleted"] == 1
    finally:
        process.kill()
        process.wait()


def test_demo_runs_offline_with_the_builtin_model(data_dir, shapes_encoder, tmp_path):
    env_dir = tmp_path / "data"
    result = run("demo", data_dir=env_dir)
    out = result.stdout
    assert out.count("\n") > 10
    assert out.startswith(
        "Pretrained weights for open_clip:ViT-B-32/laion2b_s34b_b79k are not on this machine"
    )
    red = out.split('search "a red circle"')[1].split("search")[0]
    assert "red-circle" in red and "blue" not in red
    by_image = out.split("search by image")[1]
    assert by_image.splitlines()[1].strip().startswith("1. green-circle-04.png")
    second = run("demo", data_dir=env_dir).stdout  # incremental: the second run re-indexes nothing
    assert "0 added" in second and "50 unchanged" in second


def test_serve_refuses_a_public_bind_without_keys(tmp_path):
    result = run("--model", "builtin:shapes", "serve", "--host", "0.0.0.0", data_dir=tmp_path, check=False)
    assert result.returncode == 2 and "refusing to listen on 0.0.0.0 without API keys" in result.stderr


def test_search_json_and_human(data_dir, shapes_encoder, tmp_path):

    env_dir = tmp_path / "data"
    empty = run("--model", "builtin:shapes", "search", "a red circle", data_dir=env_dir).stdout
    assert "The index is empty" in empty and "spyglass index PATH" in empty  # not "no good match"
    folder = write_shapes(tmp_path / "pics", 24, seed=12)
    run("--model", "builtin:shapes", "index", str(folder), data_dir=env_dir)
    payload = json.loads(
        run(
            "--model", "builtin:shapes", "search", "a red circle", "-k", "1", "--json", data_dir=env_dir
        ).stdout
    )
    top = payload["results"][0]
    assert top["path"].startswith(str(folder / "red-circle")) and top["thumbnail_url"].endswith("/thumbnail")
    by_image = json.loads(
        run(
            "--model",
            "builtin:shapes",
            "search",
            "--image",
            top["path"],
            "-k",
            "2",
            "-f",
            "kind=photo",
            "--json",
            data_dir=env_dir,
        ).stdout
    )
    assert by_image["results"][0]["path"] == top["path"]
    human = run("--model", "builtin:shapes", "search", "a blue square", "-k", "2", data_dir=env_dir).stdout
    assert human.startswith("  1. [image]") and "blue-square" in human
    assert (
        run(
            "--model",
            "builtin:shapes",
            "tag",
            str(folder / "red-circle-00.png"),
            "favourite",
            data_dir=env_dir,
        ).stdout.strip()
        == "tagged 1 file(s): favourite"
    )
    tagged = json.loads(
        run(
            "--model",
            "builtin:shapes",
            "search",
            "a red circle",
            "-f",
            "tag=favourite",
            "--json",
            data_dir=env_dir,
        ).stdout
    )
    assert [Path(r["path"]).name for r in tagged["results"]] == ["red-circle-00.png"]
    untagged = run(
        "--model", "builtin:shapes", "tag", str(tmp_path / "nowhere"), "x", data_dir=env_dir, check=False
    )
    assert untagged.returncode == 2 and "nothing indexed" in untagged.stderr
    nothing = run("--model", "builtin:shapes", "search", "zorblax quimfet", data_dir=env_dir).stdout
    assert "No good match" in nothing
    bad = run("--model", "builtin:shapes", "search", "x", "-f", "nokeyvalue", data_dir=env_dir, check=False)
    assert bad.returncode == 2 and "not key=value" in bad.stderr


@pytest.mark.parametrize("command", [["--help"], ["models", "--json"], ["status", "--json"]])
def test_first_run_commands_need_no_weights_and_no_torch(command, tmp_path):
    """A new user's first commands answer at once: no model is loaded and torch is never imported."""
    probe = (
        "import sys\n"
        "from spyglass.cli import main\n"
        f"sys.argv = ['spyglass', *{command!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "SPYGLASS_DATA_DIR": str(tmp_path / "data"), "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("TORCH False")
    if command[0] == "status":
        info = json.loads(result.stdout.rsplit("TORCH", 1)[0])
        assert info["model_id"] == "open_clip:ViT-B-32/laion2b_s34b_b79k" and info["items"] == 0
