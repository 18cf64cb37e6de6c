"""What the DDP tests share: their config, and an instrument: each process prints how many evaluation items its
sweep holds."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import yaml

from callbacks.perturbation_sweep import PerturbationSweep
from tests.helpers.configs import DIGITS_MONITORED, merged

TASK_GRID = [1, 6]  # 365 training items: an odd count, so the distributed sampler would repeat one


def ddp_config(tmp_path: Path) -> Path:
    """digits_monitored.yaml (with its base layers), closed-form solver (deterministic), two epochs, a sweep
    after each, a shard probe."""
    config = merged(*DIGITS_MONITORED)
    config["trainer"]["max_epochs"] = 2
    config["model"]["init_args"]["solver"] = "svd"
    config["data"]["init_args"]["task_grid"] = TASK_GRID
    for callback in config["trainer"]["callbacks"]:
        args = callback.setdefault("init_args", {})
        if callback["class_path"].endswith("PerturbationSweep"):
            args["every_n_epochs"] = 1
            args["perturbations"] = {
                "gaussian_noise": {"levels": [0.0, 0.1], "trials": 3},
                "random_deletion": {
                    "levels": [0.2, 0.5],
                    "trials": {"ci_half_width": 0.02, "relative": True, "min": 2, "max": 6},
                },
                "magnitude_pruning": {"levels": [0.5]},
                "neuron_deletion": {"levels": [0.5], "trials": 2},  # a structural perturbation (issue #30)
            }
        if callback["class_path"].endswith(("SpectralMonitor", "WeightNorms")):
            args["every_n_steps"] = 1
    config["trainer"]["callbacks"].append({"class_path": "tests.helpers.ddp_probe.ShardProbe"})
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class ShardProbe(L.Callback):
    """Prints ``shard-probe rank=R items=N`` at train end: the items in this process's sweep cache."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        sweep = next(cb for cb in trainer.callbacks if isinstance(cb, PerturbationSweep))
        items = sum(len(batch["task"]) for batch in sweep._batches[sweep.split])
        print(f"shard-probe rank={trainer.global_rank} items={items}", flush=True)
