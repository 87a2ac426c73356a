"""benchmarks/compare_agents.py: a tiny budget run of RAM and PPO on the synthetic data."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest
import torch

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "compare_agents.py"


@pytest.fixture
def compare_agents():
    spec = importlib.util.spec_from_file_location("compare_agents", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def table_rows(output: str) -> list[list[str]]:
    lines = [line for line in output.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_tiny_budget_table_and_json(compare_agents, tmp_path, capsys):
    path = tmp_path / "rows.json"
    argv = ["--agents", "ram", "ppo", "--budget", "1", "--n-envs", "4", "--eval-envs", "32"]
    argv += ["--device", "cpu", "--threads", "1", "--seed", "3", "--json", str(path)]
    assert compare_agents.main(argv) == 0
    header, separator, *rows = table_rows(capsys.readouterr().out)
    assert header == list(compare_agents.COLUMNS.values())
    assert len(separator) == len(header)
    assert [row[0] for row in rows] == ["ram", "ppo"]

    saved = json.loads(path.read_text())
    assert saved["settings"]["agents"] == ["ram", "ppo"] and saved["settings"]["budget"] == 1
    assert len(saved["rows"]) == len(rows)
    record_keys = list(compare_agents.COLUMNS)
    for cells, record in zip(rows, saved["rows"], strict=True):
        assert cells == [compare_agents.FORMATS[key].format(record[key]) for key in record_keys]
        assert record["env_steps"] > 0 and record["train_seconds"] > 0
        assert record["steps_per_second"] > 0
        for key in ("test_error", "test_error_sampled"):
            assert 0.0 <= record[key] <= 100.0
    ram, ppo = saved["rows"]
    assert ram["test_images"] == 128  # the synthetic test split, every image once
    assert ram["env_steps"] == ram["episodes"] * 6 and ram["episodes"] % 128 == 0
    assert ppo["env_steps"] % 4 == 0
