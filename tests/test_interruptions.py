"""Interrupted sweeps lose nothing: resume from the CSV, restore on SIGINT/SIGTERM, survive SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from cognitive_reserve import ConfigError, SweepCsvWriter, SweepGrid, SweepSubject, read_sweep_csv, run_sweep
from cognitive_reserve.interrupts import SweepInterrupted, defer_stops
from tests.helpers.cli import ROOT

GRIDS = [SweepGrid("gaussian_noise", [0.0, 0.1, 0.3], trials=6), SweepGrid("random_deletion", [0.2, 0.6], trials=6)]


def toy_subject(calls: list | None = None, on_call=None) -> SweepSubject:
    torch.manual_seed(0)
    net = nn.Linear(16, 4)
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(1))

    def evaluate() -> dict[str, float]:
        if calls is not None:
            calls.append(1)
        if on_call is not None:
            on_call(len(calls or []))
        return {"mse": float(net(x).pow(2).mean()), "abs": float(net(x).abs().mean())}

    return SweepSubject("toy", net, evaluate, targets="weight")


def test_resume_reuses_finished_trials_and_gives_the_uninterrupted_table():
    full = run_sweep(toy_subject(), GRIDS, seed=3)
    calls: list = []
    resumed = run_sweep(toy_subject(calls), GRIDS, seed=3, completed=full[:14])  # 7 trials × 2 metrics
    assert resumed == full
    assert len(calls) == len(full) // 2 - 7


def test_resume_refuses_rows_from_a_different_sweep():
    other = run_sweep(toy_subject(), GRIDS, seed=4)
    with pytest.raises(ConfigError, match=r"^resume="):
        run_sweep(toy_subject(), GRIDS, seed=3, completed=other[:4])


@pytest.fixture
def sigint_interrupts():
    """SIGINT raises KeyboardInterrupt, whatever disposition the test process inherited (``nohup`` ignores it)."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


def test_sigint_mid_sweep_restores_weights_and_keeps_finished_rows(tmp_path, sigint_interrupts):
    calls: list = []

    def interrupt(count: int) -> None:
        if count == 5:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here

    subject = toy_subject(calls, interrupt)
    before = subject.module.weight.clone()
    with SweepCsvWriter(tmp_path / "s.csv") as writer, pytest.raises(KeyboardInterrupt):
        run_sweep(subject, GRIDS, seed=0, on_trial=writer.write)
    assert torch.equal(subject.module.weight, before)
    assert len(read_sweep_csv(tmp_path / "s.csv")) == 2 * 4  # trials 1-4 finished and are on disk
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers put back


def test_a_deferred_sigterm_is_left_to_the_previous_handler_and_the_sweep_stops_where_it_says(tmp_path):
    """``defer_stops``: SIGTERM mid-trial runs the previous handler only (the trial finishes with its weights as
    drawn); the sweep stops at the next trial boundary, where the caller raises, with its weights restored."""
    recorded: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: recorded.append(number))
    calls: list = []
    drawn: list[torch.Tensor] = []

    def signal_in_third(count: int) -> None:
        drawn.append(subject.module.weight.clone())
        if count == 3:
            os.kill(os.getpid(), signal.SIGTERM)
            drawn.append(subject.module.weight.clone())  # after the handler ran

    def stop_where_asked(rows: list) -> None:
        if recorded:
            raise RuntimeError("stopped at a trial boundary")

    subject = toy_subject(calls, signal_in_third)
    before = subject.module.weight.clone()
    defer_stops(True)
    try:
        with pytest.raises(RuntimeError, match="trial boundary"):
            run_sweep(subject, GRIDS, seed=0, on_trial=stop_where_asked)
    finally:
        defer_stops(False)
        signal.signal(signal.SIGTERM, previous)
    assert recorded == [signal.SIGTERM] and len(calls) == 3
    assert torch.equal(drawn[-1], drawn[-2]) and not torch.equal(drawn[-1], before)  # the trial went on as drawn
    assert torch.equal(subject.module.weight, before)


def test_an_ignored_sigint_stays_ignored_during_a_sweep(tmp_path):
    inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        seen = []
        subject = toy_subject(on_call=lambda count: seen.append(signal.getsignal(signal.SIGINT)))
        run_sweep(subject, GRIDS[:1], seed=0)
        assert seen and all(disposition is signal.SIG_IGN for disposition in seen)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, inherited)


WORKER = textwrap.dedent(
    """
    import os, signal, sys, time, torch
    from torch import nn
    sys.path.insert(0, {root!r})
    from cognitive_reserve import SweepCsvWriter, SweepGrid, SweepSubject, read_sweep_csv, run_sweep
    from cognitive_reserve.interrupts import SweepInterrupted

    path, mode = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    net = nn.Linear(16, 4)
    before = net.weight.clone()
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(1))
    def evaluate():
        time.sleep(0.05 if mode != "resume" else 0)
        return {{"mse": float(net(x).pow(2).mean())}}
    if mode == "handler":  # like Lightning's SIGTERM handler: records the signal, does not exit
        signal.signal(signal.SIGTERM, lambda signum, frame: print("previous handler ran", flush=True))
    grids = [SweepGrid("gaussian_noise", [0.0, 0.1, 0.3], trials=15), SweepGrid("random_deletion", [0.5], trials=15)]
    completed = read_sweep_csv(path) if mode == "resume" and os.path.exists(path) else []
    try:
        with SweepCsvWriter(path) as writer:
            run_sweep(SweepSubject("toy", net, evaluate, targets="weight"), grids, seed=0,
                      on_trial=writer.write, completed=completed)
    except SweepInterrupted:
        print("restored" if torch.equal(net.weight, before) else "NOT RESTORED", flush=True)
        sys.exit(3)
    """
).format(root=str(ROOT))


def start_worker(script: Path, csv_path: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script), str(csv_path), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_rows(path: Path, count: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) > count:
            return
        time.sleep(0.05)
    raise AssertionError("worker produced no rows")


@pytest.mark.slow
@pytest.mark.parametrize(("kill", "mode"), [(signal.SIGTERM, "default"), (signal.SIGKILL, "default")])
def test_killed_sweep_process_resumes_to_the_uninterrupted_table(tmp_path, kill, mode):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    reference, interrupted = tmp_path / "reference.csv", tmp_path / "interrupted.csv"
    assert start_worker(script, reference, "resume").wait(timeout=120) == 0  # uninterrupted run
    worker = start_worker(script, interrupted, mode)
    wait_for_rows(interrupted, 10)
    worker.send_signal(kill)
    assert worker.wait(timeout=60) == -kill
    kept = read_sweep_csv(interrupted)
    assert 10 <= len(kept) < len(read_sweep_csv(reference))
    assert start_worker(script, interrupted, "resume").wait(timeout=120) == 0
    assert read_sweep_csv(interrupted) == read_sweep_csv(reference)


@pytest.mark.slow
def test_sigterm_with_a_framework_handler_restores_then_stops_the_sweep(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    worker = start_worker(script, tmp_path / "s.csv", "handler")
    wait_for_rows(tmp_path / "s.csv", 5)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 3, err[-2000:]
    assert out.splitlines() == ["previous handler ran", "restored"]


def test_sweep_interrupted_is_a_keyboard_interrupt():
    assert issubclass(SweepInterrupted, KeyboardInterrupt)
    assert "SIGTERM" in str(SweepInterrupted(signal.SIGTERM))
