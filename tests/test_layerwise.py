"""Layer-wise sweeps on a real Hugging Face GPT-2 and the linear models: each group damaged alone (every
other parameter, and the rest of a cut matrix, untouched bit for bit), weights restored bit for bit, a
one-group grouping equal to the all-targets sweep, per-group magnitude pruning, the CSV column, bad groupings."""

from __future__ import annotations

import dataclasses

import lightning as L
import pytest
import torch

from callbacks import PerturbationSweep
from cognitive_reserve import ConfigError, GaussianNoise, MagnitudePruning, RandomDeletion, SweepCsvWriter, SweepGrid
from cognitive_reserve.groups import check_grouping, run_grouped_sweep, split_targets
from cognitive_reserve.io import read_sweep_csv
from cognitive_reserve.restore import DamagedCopies, ParameterSnapshot
from cognitive_reserve.rows import CSV_COLUMNS, all_targets
from cognitive_reserve.targets import TargetGroup, select_targets, target_parts
from tests.helpers.tiny_gpt2 import CountingSequences, TinyGPT2

GROUPINGS = ["per_block", "per_matrix", r"\.(c_attn|c_proj)\."]
GRIDS = [
    SweepGrid("magnitude_pruning", [0.0, 0.5]),
    SweepGrid("random_deletion", [0.0, 0.3], trials=2),
    SweepGrid("gaussian_noise", [0.1], trials=2),
]


@pytest.fixture(scope="module")
def gpt2() -> TinyGPT2:
    torch.manual_seed(0)
    model = TinyGPT2().eval()
    for param in model.parameters():  # no exact zeros or ties among the targeted weights
        param.data += torch.rand_like(param) * 1e-3
    return model


@pytest.fixture(scope="module")
def batches() -> list[torch.Tensor]:
    return [torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(1))]


def split(gpt2: TinyGPT2, targets: str, rule: str) -> list[TargetGroup]:
    """``split_targets`` of the tiny GPT-2 under its declared layout."""
    return split_targets(gpt2, targets, rule, layout=gpt2.robustness_layout())


def group_mask(module: torch.nn.Module, group: TargetGroup) -> dict[str, torch.Tensor]:
    """Per parameter of ``module``: True at the entries ``group`` damages."""
    masks = {name: torch.zeros_like(p, dtype=torch.bool) for name, p in module.named_parameters()}
    for name in group.names:
        masks[name][group.parts.get(name, ())] = True
    return masks


def test_per_matrix_cuts_c_attn_into_its_q_k_v_column_blocks(gpt2):
    groups = {g.name: g for g in split(gpt2, "attn", "per_matrix")}
    assert list(groups) == [f"h.{i}.attn.{m}" for i in (0, 1) for m in ("c_attn.q", "c_attn.k", "c_attn.v", "c_proj")]
    width = gpt2.model.config.n_embd
    for i, part in enumerate("qkv"):
        q = groups[f"h.1.attn.c_attn.{part}"]
        weight, bias = "model.transformer.h.1.attn.c_attn.weight", "model.transformer.h.1.attn.c_attn.bias"
        assert q.names == (weight, bias)
        # HF GPT-2 splits the Conv1D's outputs (its weight's columns) into query, key, value in this order
        assert q.parts == {
            weight: (slice(None), slice(i * width, (i + 1) * width)),
            bias: (slice(i * width, (i + 1) * width),),
        }
    assert not groups["h.0.attn.c_proj"].parts
    assert [g.name for g in split(gpt2, "attn", "per_block")] == ["h.0", "h.1"]
    assert [g.name for g in split(gpt2, ".*", "per_block")] == ["wte", "wpe", "h.0", "h.1", "ln_f"]
    assert "h.1.mlp.c_fc" in [g.name for g in split(gpt2, ".*", "per_matrix")]
    assert [g.name for g in split(gpt2, "attn", r"\.(c_attn|c_proj)\.")] == ["c_attn", "c_proj"]


@pytest.mark.parametrize("rule", GROUPINGS)
@pytest.mark.parametrize("perturbation", [GaussianNoise(0.5), RandomDeletion(0.5), MagnitudePruning(0.5)])
def test_damaging_a_group_changes_exactly_its_entries_and_restores_bit_for_bit(gpt2, rule, perturbation):
    before = {name: p.detach().clone() for name, p in gpt2.named_parameters()}
    for group in split(gpt2, "attn", rule):
        masks = group_mask(gpt2, group)
        snapshot = ParameterSnapshot(select_targets(gpt2, group), target_parts(group))
        snapshot.perturb(perturbation, seed=3)
        damaged = {name: p.detach().clone() for name, p in gpt2.named_parameters()}
        snapshot.restore()
        for name, value in damaged.items():
            assert torch.equal(value[~masks[name]], before[name][~masks[name]]), (group.name, name)
        changed = sum(int((damaged[n][m] != before[n][m]).sum()) for n, m in masks.items())
        assert changed >= 0.3 * sum(int(m.sum()) for m in masks.values()), group.name
        copies = DamagedCopies(select_targets(gpt2, group), 2, target_parts(group))
        copies.damage(1, perturbation, seed=3)
        for name, stack in zip(group.names, copies.first(2), strict=True):
            assert torch.equal(stack[1], damaged[name]), (group.name, name)  # the stacked copy, bit for bit
        for name, value in gpt2.named_parameters():
            assert torch.equal(value, before[name]), name


@pytest.mark.parametrize("scope", ["per_tensor", "global"])
def test_magnitude_pruning_prunes_the_stated_fraction_within_each_group(gpt2, scope):
    for group in split(gpt2, "attn", "per_matrix"):
        snapshot = ParameterSnapshot(select_targets(gpt2, group), target_parts(group))
        snapshot.perturb(MagnitudePruning(0.3, scope=scope), seed=0)
        blocks, originals = snapshot.tensors, snapshot.originals
        pruned = [live == 0 for live in blocks]
        if scope == "per_tensor":  # Q's weight block and Q's bias block each lose 30 % of their entries
            assert [int(p.sum()) for p in pruned] == [round(0.3 * p.numel()) for p in pruned]
        else:
            assert sum(int(p.sum()) for p in pruned) == round(0.3 * sum(p.numel() for p in pruned))
            cut = max(float(o[p].abs().max()) for o, p in zip(originals, pruned, strict=True) if p.any())
            kept = min(float(o[~p].abs().min()) for o, p in zip(originals, pruned, strict=True) if (~p).any())
            assert cut <= kept  # the smallest magnitudes of the group, ranked together
        snapshot.restore()


def test_one_group_holding_every_target_reproduces_the_all_targets_rows(gpt2, batches):
    subject = gpt2.robustness_subjects(batches)[0]
    rows = run_grouped_sweep(subject, GRIDS, 0, r"^model\.(transformer)\.")
    reference, grouped = all_targets(rows), [r for r in rows if r.group == "transformer"]
    assert len(grouped) == len(reference) > 0
    assert [dataclasses.replace(r, group="") for r in grouped] == reference


def test_groups_follow_the_reference_in_the_csv_and_stacked_scoring_gives_the_same_rows(gpt2, batches, tmp_path):
    subject = gpt2.robustness_subjects(batches)[0]
    path = tmp_path / "sweep.csv"
    with SweepCsvWriter(path) as writer:
        rows = run_grouped_sweep(subject, GRIDS, 0, "per_block", on_trial=writer.write)
    assert list(dict.fromkeys(r.group for r in rows)) == ["", "h.0", "h.1"]
    assert sorted(read_sweep_csv(path), key=repr) == sorted(rows, key=repr)  # level-0 rows reused, written once
    in_place = run_grouped_sweep(subject, GRIDS, 0, "per_matrix")  # Q/K/V column blocks: copies cut alike
    stacked = run_grouped_sweep(subject, GRIDS, 0, "per_matrix", trial_batch=3)
    assert [(r.group, r.level, r.trial, r.seed) for r in stacked] == [
        (r.group, r.level, r.trial, r.seed) for r in in_place
    ]
    assert [r.value for r in stacked] == pytest.approx([r.value for r in in_place], rel=1e-5)
    resumed = run_grouped_sweep(subject, GRIDS, 0, "per_block", completed=rows[: len(rows) // 2])
    assert resumed == rows


def test_an_old_csv_without_the_group_column_reads_as_all_targets(tmp_path):
    path = tmp_path / "old.csv"
    old_columns = [c for c in CSV_COLUMNS if c != "group"]
    path.write_text(",".join(old_columns) + "\nm,,gaussian_noise,0.1,0,7,loss,1.5,,test,0\n")
    (row,) = read_sweep_csv(path)
    assert (row.group, row.value, row.epoch) == ("", 1.5, 0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (r"h\.\d+", "a regular expression needs a capture group"),
        ("(", "not a valid regular expression"),
        (3, "give per_block or per_matrix or a regular expression"),
        ("", "give per_block or per_matrix or a regular expression"),
    ],
)
def test_a_bad_grouping_is_refused_in_one_line(value, reason):
    with pytest.raises(ConfigError) as caught:
        PerturbationSweep({"gaussian_noise": {"levels": [0.1]}}, groups=value)
    assert str(caught.value).startswith(f"PerturbationSweep.groups={value!r}: {reason}")
    assert "\n" not in str(caught.value)
    assert check_grouping("groups", r"h\.(\d+)") == r"h\.(\d+)"


def test_a_sweep_of_another_grouping_is_not_resumed_from_the_csv(tmp_path):
    def fit(groups: str | None) -> list:
        sweep = PerturbationSweep({"magnitude_pruning": {"levels": [0.0, 0.5]}}, groups=groups, progress=False)
        trainer = L.Trainer(
            max_epochs=1, limit_train_batches=1, limit_val_batches=0, default_root_dir=tmp_path, logger=False,
            callbacks=[sweep], enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        )  # fmt: skip
        torch.manual_seed(0)
        trainer.fit(TinyGPT2(), datamodule=CountingSequences())
        return read_sweep_csv(tmp_path / "robustness" / "sweep_fit_epoch000.csv")

    assert {r.group for r in fit("per_block")} == {"", "h.0", "h.1"}
    with pytest.warns(UserWarning, match="came from another sweep"):
        assert {r.group for r in fit(None)} == {""}
    assert (tmp_path / "robustness" / "sweep_fit_epoch000.csv.stale-1").exists()
    assert (
        len({r.group for r in fit(None)}) == 1
        and not (tmp_path / "robustness" / "sweep_fit_epoch000.csv.stale-2").exists()
    )


def test_a_grouping_that_matches_no_target_is_refused_before_training(tmp_path):
    sweep = PerturbationSweep({"gaussian_noise": {"levels": [0.1]}}, groups=r"(mlp)", progress=False)
    trainer = L.Trainer(
        max_epochs=1, default_root_dir=tmp_path, logger=False, callbacks=[sweep], enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"^PerturbationSweep.groups='\(mlp\)': matches none of the targeted"):
        trainer.fit(TinyGPT2(), datamodule=CountingSequences())
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.fixture(scope="module")
def linear_subject():
    """The T = 3 model of the digits family (svd solver), trained, and its test batches."""
    from datamodules import DigitsTasksDataModule
    from lightning_modules import LinearMultitaskRegression

    model, data = LinearMultitaskRegression(k=2), DigitsTasksDataModule(task_grid=[3], train_examples=300)
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, data)
    data.setup("test")
    (subject,) = model.robustness_subjects(list(data.test_dataloader()))
    return subject


@pytest.fixture
def w_and_gamma(linear_subject):
    """The linear subject with both factors targeted (in place, as ``PerturbationSweep.targets`` sets them:
    the subject's own scoring reads its targets)."""
    linear_subject.targets = r"^(w|gamma)$"
    yield linear_subject
    linear_subject.targets = "^w$"


def test_linear_models_split_w_from_gamma_with_stacked_copies_of_either(w_and_gamma):
    subject = w_and_gamma
    assert [g.name for g in split_targets(subject.module, subject.targets, "per_matrix")] == ["w", "gamma"]
    grids = [SweepGrid("gaussian_noise", [0.0, 0.2], trials=3), SweepGrid("magnitude_pruning", [0.5])]
    rows = run_grouped_sweep(subject, grids, 0, "per_matrix")
    stacked = run_grouped_sweep(subject, grids, 0, "per_matrix", trial_batch=4)
    assert [(r.group, r.level, r.trial) for r in stacked] == [(r.group, r.level, r.trial) for r in rows]
    assert [r.value for r in stacked] == pytest.approx([r.value for r in rows], rel=1e-6)
    noisy = {g: [r.value for r in rows if r.group == g and r.level == 0.2] for g in ("", "w", "gamma")}
    assert noisy["w"] != noisy["gamma"] and all(len(v) == 3 for v in noisy.values())
    assert all(r.expected is None for r in rows)  # the closed forms damage W alone


def test_a_group_of_every_target_keeps_the_closed_form(linear_subject):
    grids = [SweepGrid("gaussian_noise", [0.0, 0.2], trials=3)]
    rows = run_grouped_sweep(linear_subject, grids, 0, r"^(w)$")
    reference, grouped = all_targets(rows), [r for r in rows if r.group == "w"]
    assert all(r.expected is not None for r in reference)
    assert [dataclasses.replace(r, group="") for r in grouped] == reference


# ---- inside a real Trainer, read back from the offline W&B run ----------------------------------------


@pytest.fixture(scope="module")
def layerwise_run(tmp_path_factory):
    """Two epochs of the tiny GPT-2 with a per-epoch layer-wise pruning sweep (per matrix) and a layer-wise
    noise sweep at the end of training (per block), logged to an offline W&B run."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    root = tmp_path_factory.mktemp("layerwise_run")
    per_epoch = PerturbationSweep(
        {"magnitude_pruning": {"levels": [0.0, 0.5]}}, every_n_epochs=1, at_train_end=False, at_test=False,
        groups="per_matrix", progress=False,
    )  # fmt: skip
    at_end = PerturbationSweep(
        {"gaussian_noise": {"levels": [0.0, 0.2], "trials": 2}}, at_test=False, groups="per_block", progress=False
    )
    trainer = L.Trainer(
        max_epochs=2, limit_train_batches=2, default_root_dir=root, callbacks=[per_epoch, at_end],
        logger=WandbLogger(save_dir=str(root), project="layerwise-test", offline=True),
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    torch.manual_seed(0)
    trainer.fit(TinyGPT2(), datamodule=CountingSequences())
    wandb.finish()
    return root


def read_table(run_file, logged, key: str) -> list[list]:
    """The rows of the W&B table logged last under ``key`` (a chart's table: ``<chart key>_table``)."""
    import json

    (path,) = logged.series(f"{key}/path")[-1:]
    return json.loads((run_file.parent / "files" / path).read_text())["data"]


@pytest.mark.slow  # a Trainer with a W&B service
def test_group_level_heatmap_is_read_back_from_the_offline_run(layerwise_run):
    from tests.helpers.wandb_offline import find_runs, read_run_until
    from tracking.panels import GRID_PRESET

    (run_file,) = find_runs(layerwise_run)
    key = "robustness/fit/groups/heatmaps/tiny-gpt2/gaussian_noise/meanmetric"
    logged = read_run_until(run_file, lambda r: bool(r.series(f"{key}_table/path")))
    panel = logged.config[f"_wandb/visualize/{key}"]
    assert panel["panel_type"] == "Vega2" and panel["panel_config"]["panelDefId"] == GRID_PRESET
    rows = read_sweep_csv(layerwise_run / "robustness" / "sweep_fit_epoch001.csv")
    clean = next(r.value for r in rows if r.level == 0.0 and not r.group)
    expected = []
    for group in ("h.0", "h.1"):
        for level in (0.0, 0.2):
            values = [r.value for r in rows if r.group == group and r.level == level]
            expected.append([group, f"{level:g}", pytest.approx(sum(values) / len(values) - clean, abs=1e-6)])
    assert read_table(run_file, logged, f"{key}_table") == expected
    curve = logged.curve(
        "robustness/fit/tiny-gpt2/gaussian_noise/meanmetric/groups/h_1/mean", "robustness/fit/gaussian_noise/level"
    )
    assert curve == {0.0: pytest.approx(clean), 0.2: pytest.approx(expected[3][2].expected + clean)}
    summaries = (layerwise_run / "robustness" / "sweep_fit_epoch001_groups_summary.csv").read_text()
    assert summaries.splitlines()[0].startswith("epoch,group,model,")
    assert (layerwise_run / "robustness" / "sweep_fit_epoch001_groups.png").stat().st_size > 0


@pytest.mark.slow  # a Trainer with a W&B service
def test_group_epoch_map_is_read_back_from_the_offline_run(layerwise_run):
    from tests.helpers.wandb_offline import find_runs, read_run_until

    (run_file,) = find_runs(layerwise_run)
    key = "robustness/train/per_epoch/groups/heatmaps/tiny-gpt2/magnitude_pruning/meanmetric/level0.5"
    logged = read_run_until(run_file, lambda r: len(r.series(f"{key}_table/path")) == 2)
    assert f"_wandb/visualize/{key}" in logged.config
    table = read_table(run_file, logged, f"{key}_table")
    expected = []
    for epoch in (0, 1):
        rows = read_sweep_csv(layerwise_run / "robustness" / f"sweep_train_epoch{epoch:03d}.csv")
        clean = next(r.value for r in rows if r.level == 0.0 and not r.group)
        groups = list(dict.fromkeys(r.group for r in rows if r.group))
        assert len(groups) == 8  # q, k, v, c_proj in each of 2 blocks
        for group in groups:
            (pruned,) = [r.value for r in rows if r.group == group and r.level == 0.5]
            expected.append([group, f"epoch {epoch:03d}", pytest.approx(pruned - clean, abs=1e-6)])
    assert sorted(table, key=lambda row: (row[1], row[0])) == sorted(expected, key=lambda row: (row[1], row[0]))
    history = (layerwise_run / "robustness" / "sensitivity_train_groups.csv").read_text().splitlines()
    assert (
        history[0]
        == "epoch,step,group,model,num_tasks,perturbation,level,metric,n,n_nonfinite,mean,std,ci_low,ci_high,expected,"
        "method,flag,n_tied"
    )
    assert len(history) == 1 + 2 * 9 * 2  # header + 2 epochs × (all targets + 8 groups) × 2 levels
    assert (layerwise_run / "robustness" / "sensitivity_train_groups.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("base", "overlay", "test_groups"),
    [("tiny_bilingual", "tiny_layers", "per_matrix"), ("bilingual", "layers", "per_block")],
)
def test_the_layer_wise_overlays_give_every_sweep_a_grouping(base, overlay, test_groups, capsys):
    import yaml

    from run import main
    from tests.helpers.configs import config_args, gpt2_configs

    configs = config_args(gpt2_configs(base, overlay))
    with pytest.raises(SystemExit, match="0"):
        main(["fit", *configs, "--trainer.default_root_dir=/elsewhere", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    callbacks = printed["trainer"]["callbacks"]
    sweeps = [c["init_args"] for c in callbacks if c["class_path"].endswith("PerturbationSweep")]
    assert [(s["at_test"], s["every_n_epochs"], s["groups"]) for s in sweeps] == [
        (True, 0, test_groups), (False, 1, "per_matrix")
    ]  # fmt: skip
    (checkpoint,) = [c["init_args"] for c in callbacks if c["class_path"].endswith("ModelCheckpoint")]
    assert checkpoint["dirpath"] == "/elsewhere/checkpoints"  # the overlay follows the run directory
    assert printed["model"]["init_args"]["name"] == f"gpt2-{base.replace('tiny_', 'tiny-')}"


def test_the_layers_command_compares_groups_and_refuses_plain_sweeps_in_one_line(gpt2, batches, tmp_path, capsys):
    import csv
    import shutil

    from run_reports.layers import main

    subject = gpt2.robustness_subjects(batches)[0]
    grids = [SweepGrid("random_deletion", [0.0, 0.3], trials=3)]
    trained = {name: value.clone() for name, value in gpt2.state_dict().items()}
    paths = []
    for name, shift in (("a0", 0.0), ("a1", 1e-3), ("b0", 2e-3), ("b1", 1e-3)):
        with torch.no_grad():
            gpt2.model.transformer.h[0].attn.c_proj.weight += shift  # another "training seed"
        with SweepCsvWriter(tmp_path / f"{name}.csv") as writer:
            run_grouped_sweep(subject, grids, 0, "per_block", on_trial=writer.write)
        paths.append(str(tmp_path / f"{name}.csv"))
    gpt2.load_state_dict(trained)
    copies = [shutil.copy(path, tmp_path / f"copy{i}.csv") for i, path in enumerate(paths[:2])]
    main([*paths[:2], "--b", *map(str, copies), "--out", str(tmp_path / "same")])
    same = list(csv.DictReader((tmp_path / "same" / "layers.csv").open()))
    assert {row["group"] for row in same} == {"", "h.0", "h.1"}
    assert all(float(row["damage_difference"]) == 0 for row in same)  # the same tables on both sides
    main([paths[0], paths[1], "--b", paths[2], paths[3], "--out", str(tmp_path / "out"), "--level", "0.3"])
    printed = capsys.readouterr().out
    assert printed.startswith("random_deletion 0.3 / meanmetric: B − A (damage) excludes 0 for ")
    rows = list(csv.DictReader((tmp_path / "out" / "layers.csv").open()))
    for row in rows:
        assert float(row["difference"]) == pytest.approx(float(row["mean_b"]) - float(row["mean_a"]))
        assert (row["n_seeds_a"], row["n_seeds_b"]) == ("2", "2")
        assert row["method"] == "Welch t over 2 + 2 training seeds, shared trials"  # every sweep drew the same masks
    assert all(float(row["damage_difference"]) == 0 for row in rows if row["level"] == "0.0")
    assert (tmp_path / "out" / "layers_meanmetric.png").stat().st_size > 0
    plain = tmp_path / "plain.csv"
    with SweepCsvWriter(plain) as writer:
        writer.write(all_targets(read_sweep_csv(paths[0])))
    with pytest.raises(SystemExit, match="2"):
        main([str(plain), "--b", str(shutil.copy(plain, tmp_path / "plain_b.csv")), "--out", str(tmp_path / "bad")])
    assert capsys.readouterr().err.strip().startswith("error: tables='A/B': hold no layer-wise sweep")
