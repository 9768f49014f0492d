"""Fixtures: models trained and scored by the `wharf` CLI at test time, so every expected
value in this suite is what the Rust side answers.

Needs `WHARF_CLI` (the `wharf` binary) and `WHARF_DATA` (crates/wharf-ml/data);
`cargo xtask python` and `cargo xtask test` set both.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPORT = []


def report(line: str) -> None:
    """A measurement shown in pytest's terminal summary (timings are reported, not asserted)."""
    REPORT.append(line)


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("wharf measurements")
        for line in REPORT:
            terminalreporter.write_line(line)


def _need(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        pytest.exit(f"{var} is not set: run the suite with `cargo xtask python`", returncode=2)
    return value


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(_need("WHARF_DATA"))


@pytest.fixture(scope="session")
def cli(tmp_path_factory):
    """Runs the `wharf` CLI in a scratch directory (its registry is `./wharf-registry`)."""
    exe = _need("WHARF_CLI")
    work = tmp_path_factory.mktemp("cli")

    def run(*args, env=None):
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}, **(env or {})}
        out = subprocess.run([exe, *args], cwd=work, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError(f"wharf {' '.join(args)} failed:\n{out.stderr}")
        return out.stdout

    run.work = work
    return run


def _read_jsonl(path: Path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def models(cli, data_dir):
    """Trains `lead` (logistic, categoricals) and `diabetes` (linear, numeric only) with the
    CLI, scores their bundled tables with `wharf predict`, and returns the paths and the
    CLI's outputs."""
    cli("train", "-i", str(data_dir / "lead_scoring.csv"), "-t", "converted", "--id", "lead_id",
        "-n", "lead", "--alias", "champion", "-q")
    cli("train", "-i", str(data_dir / "diabetes.csv"), "-t", "progression", "-a", "linear", "-n", "diabetes", "-q")
    cli("train", "-i", str(data_dir / "lead_scoring.csv"), "-t", "converted", "--id", "lead_id",
        "-a", "random-forest", "--trees", "20", "-n", "lead-forest", "-q")
    out = {}
    for name, csv in [("lead", "lead_scoring.csv"), ("diabetes", "diabetes.csv"), ("lead-forest", "lead_scoring.csv")]:
        target = cli.work / f"{name}.jsonl"
        cli("predict", "-m", name, "-i", str(data_dir / csv), "-o", str(target), "-q")
        out[name] = _read_jsonl(target)
    registry = cli.work / "wharf-registry"
    return {
        "registry": registry,
        "expected": out,
        "file": {n: registry / n / "versions" / "1" / "model.wharf" for n in out},
    }
