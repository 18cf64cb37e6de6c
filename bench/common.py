"""Shared pieces of the benchmarks: thread setup, the models they sweep, timing and memory accounting.

Every script is run from the repository root (``python bench/<name>.py``), prints its figures one
per line as ``name: value`` and measures each ratio within one run (numerator and denominator
interleaved, best of a few repeats), because the machine it runs on is shared and noisy.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import yaml  # noqa: E402

from tests.helpers.configs import gpt2_configs, merged  # noqa: E402
from tracking.offline import OFFLINE_ENV  # noqa: E402

os.environ.update(OFFLINE_ENV)

#: Model settings of the tiny GPT-2 configs (the benchmarks use the same model, data and grid).
TINY_CONFIG = merged(*gpt2_configs("tiny_bilingual"))
DIGITS_CONFIG = yaml.safe_load((ROOT / "configs/linear/digits.yaml").read_text())
#: The full GPT-2 config: its test-time sweep is the paper's grid (9 deletion + 11 noise levels × 20, 7 pruning).
PAPER_GPT2_CONFIG = merged(*gpt2_configs("bilingual"))


def setup(threads: int) -> None:
    """Fix torch's intra-op threads and print the figure lines' context."""
    torch.set_num_threads(threads)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"threads: {torch.get_num_threads()}")
    print(f"cpu_cores: {os.cpu_count()}")
    print(f"gpu: {device}")
    print(f"torch: {torch.__version__}")


def figure(name: str, value: float | str, fmt: str = ".3f") -> None:
    """Print one figure line ``name: value``."""
    print(f"{name}: {value if isinstance(value, str) else format(value, fmt)}", flush=True)


def config_sweep(config: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """The ``init_args`` of the ``index``-th PerturbationSweep callback of a parsed config."""
    sweeps = [c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("PerturbationSweep")]
    return sweeps[index]["init_args"]


def config_grid(config: dict[str, Any], index: int = 0) -> dict[str, dict[str, Any]]:
    """The ``perturbations`` of the ``index``-th PerturbationSweep callback of a parsed config."""
    return config_sweep(config, index)["perturbations"]


# ---- the models --------------------------------------------------------------------------------------------


@dataclass
class Bench:
    """A sweepable LightningModule, its evaluation batches, how to build them again from scratch, and
    its datamodule."""

    module: Any
    batches: list[Any]
    rebuild_batches: Callable[[], list[Any]]
    datamodule: Any = None


def tiny_gpt2(
    workdir: Path,
    gpt2_config: dict[str, Any] | None = None,
    max_blocks: int | None = None,
    device: str = "cpu",
    init_from: str | None = None,
    test_kilobytes: int | None = None,
) -> Bench:
    """The tiny bilingual GPT-2 of ``configs/gpt2/tiny_bilingual.yaml`` (random weights, its own BPE) on
    the test split of the sample corpus (``python -m datamodules.sample_corpus``), ``max_blocks`` blocks.
    ``init_from``: a ``GPT2LanguageModel`` checkpoint (a trained model, with its tokenizer) instead.
    ``test_kilobytes``: a longer test split of that many KB per language (the same generator and seed)."""
    import lightning_modules.gpt2_lm as gpt2_lm
    from datamodules.corpus import LanguageCorpus, TextSource
    from datamodules.sample_corpus import paragraphs, write_corpus
    from datamodules.text import TextCorpusDataModule

    model_args = TINY_CONFIG["model"]["init_args"]
    data_args = TINY_CONFIG["data"]["init_args"]
    paths = write_corpus(workdir / "corpus", 40)
    if test_kilobytes is not None:
        for language in data_args["corpora"]:
            text = "\n\n".join(paragraphs(language, test_kilobytes * 1024, seed=2)) + "\n"
            paths[f"{language}.test"].write_text(text, "utf-8")
    corpora = {
        language: LanguageCorpus(**{s: TextSource(file=str(paths[f"{language}.{s}"])) for s in corpus})
        for language, corpus in data_args["corpora"].items()
    }
    settings = {k: data_args[k] for k in ("train_tokens", "block_size", "batch_size", "eval_batch_size")}
    settings["tokenizer_train_bytes"] = data_args["tokenizer_train_bytes"]
    config = {**model_args["gpt2_config"], **(gpt2_config or {})}
    torch.manual_seed(0)
    if init_from is None:
        model = gpt2_lm.GPT2LanguageModel(gpt2_config=config, tokenizer="train", name="gpt2-tiny", targets="attn")
    else:
        model = gpt2_lm.GPT2LanguageModel(init_from=init_from, name="gpt2-tiny", targets="attn")
    datamodule = TextCorpusDataModule(corpora, **settings)
    tokenizer = model.lm_tokenizer(datamodule)
    datamodule.use_tokenizer(tokenizer)
    model.languages = datamodule.languages
    model.robustness_num_tasks = len(model.languages)
    model.to(device).eval()

    def build() -> list[Any]:
        fresh = TextCorpusDataModule(corpora, **settings)  # re-reads and re-tokenizes the text
        fresh.use_tokenizer(tokenizer)
        batches = list(fresh.test_dataloader())
        if max_blocks is not None:
            batches = _first_items(batches, max_blocks)
        return [{k: v.to(device) for k, v in b.items()} for b in batches]

    return Bench(model, build(), build, datamodule)


def digits_linear(task_grid: list[int] | None = None, device: str = "cpu") -> Bench:
    """The linear multitask family of ``configs/linear/digits.yaml``, trained (svd solver), on its test split."""
    import lightning as L

    from datamodules.digits import DigitsTasksDataModule
    from lightning_modules.linear import LinearMultitaskRegression

    data_args = dict(DIGITS_CONFIG["data"]["init_args"])
    if task_grid is not None:
        data_args["task_grid"] = task_grid
    model = LinearMultitaskRegression(**DIGITS_CONFIG["model"]["init_args"])
    with tempfile.TemporaryDirectory() as root:
        trainer = L.Trainer(
            max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
        )  # fmt: skip
        trainer.fit(model, DigitsTasksDataModule(**data_args))
    model.to(device).eval()

    def build() -> list[Any]:
        datamodule = DigitsTasksDataModule(**data_args)  # reloads, standardizes and splits the data
        datamodule.setup("test")
        return [{k: v.to(device) for k, v in b.items()} for b in datamodule.test_dataloader()]

    return Bench(model, build(), build)


def _first_items(batches: list[dict[str, torch.Tensor]], count: int) -> list[dict[str, torch.Tensor]]:
    kept, left = [], count
    for batch in batches:
        if left <= 0:
            break
        kept.append({k: v[:left] for k, v in batch.items()})
        left -= len(next(iter(batch.values())))
    return kept


# ---- timing ------------------------------------------------------------------------------------------------


@dataclass
class Times:
    """Best wall-clock and best process-CPU seconds of a measured callable.

    With one torch thread, CPU time is what the wall time would be on an idle machine: it leaves out
    the time other tenants of a shared machine hold the cores.
    """

    wall: float
    cpu: float


def repeated_times(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[Times]]:
    """Each callable run ``repeats`` times, interleaved with the others (repeat ``i`` of every callable runs in
    the same round, so their ``i``-th times pair up; every other round in reverse order, so that no callable
    always runs right after the same one); both clocks of every run."""
    runs: dict[str, list[Times]] = {name: [] for name in functions}
    for round_ in range(repeats):
        for name, function in list(functions.items())[:: -1 if round_ % 2 else 1]:
            _sync()
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            _sync()
            runs[name].append(Times(time.perf_counter() - wall, time.process_time() - cpu))
    return runs


def best_times(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, Times]:
    """Each callable run ``repeats`` times, interleaved with the others; the minimum of each clock."""
    runs = repeated_times(functions, repeats)
    return {name: Times(min(t.wall for t in times), min(t.cpu for t in times)) for name, times in runs.items()}


def timed(function: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    """``function``, appending the seconds of every call to ``spent`` (to wrap a method in place)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    return wrapper


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# ---- memory ------------------------------------------------------------------------------------------------


def peak_allocated(fn: Callable[[], object], device: str = "cpu") -> int:
    """Peak bytes held by tensors allocated while ``fn`` runs, above what was allocated when it started.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: torch's profiler reports every allocation and free
    of the CPU allocator with the running total of the bytes it allocated while profiling; the peak of
    that total, relative to its value before the first event, is the same quantity.
    """
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - start
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    nodes = [
        node
        for node in _walk(prof.profiler.kineto_results.experimental_event_tree())
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu"
    ]
    if not nodes:
        return 0
    events = [node.extra_fields for node in sorted(nodes, key=lambda node: node.start_time_ns)]
    start = events[0].total_allocated - events[0].alloc_size
    return max(max(e.total_allocated for e in events) - start, 0)


def _walk(nodes: list[Any]) -> Iterator[Any]:
    for node in nodes:
        yield node
        yield from _walk(node.children)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the profiler's C++ start/stop lines (file descriptor 2)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
