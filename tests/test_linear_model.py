"""LinearMultitaskRegression: both solvers, orthonormal W before sweeps, checkpoints round-trip (old ones too)."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from cognitive_reserve import read_sweep_csv
from cognitive_reserve.theory import orthonormalize, svd_solution, unit_columns
from datamodules import DigitsTasksDataModule
from lightning_modules import LinearMultitaskRegression
from tests.helpers.configs import DIGITS_SGD, config_args


def fit(model: LinearMultitaskRegression, data: DigitsTasksDataModule, epochs: int, tmp_path) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=epochs, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    return trainer


def test_sgd_solver_is_orthonormalised_before_perturbation(tmp_path):
    data = DigitsTasksDataModule(task_grid=[2, 6], train_examples=120, batch_size=1024)
    model = LinearMultitaskRegression(k=3, solver="sgd", lr=0.05, weight_decay=0.003, normalize_task_vectors=False)
    fit(model, data, epochs=40, tmp_path=tmp_path)
    for t in (2, 6):
        trained = model.models[f"T{t}"]
        swept = model.representation(t)
        assert torch.allclose(swept.w @ swept.w.T, torch.eye(3), atol=1e-5)
        assert torch.allclose(swept.w.T @ swept.gamma, (trained.w.T @ trained.gamma).detach(), atol=1e-5)
        assert not torch.allclose(trained.w @ trained.w.T, torch.eye(3), atol=1e-2)  # training did not keep it


def test_svd_solver_equals_ridge_least_squares_then_svd(tmp_path):
    data = DigitsTasksDataModule(task_grid=[1, 4], train_examples=120)
    model = LinearMultitaskRegression(k=2, solver="svd", ridge=0.5, normalize_task_vectors=False)
    trainer = fit(model, data, epochs=1, tmp_path=tmp_path)
    assert trainer.global_step == 1  # the closed-form solve counts as one optimizer step
    train = data.datasets["train"].tensors
    member = train["member"][:, 1]
    x, task, y = train["x"][member].double(), train["task"][member], train["target"][member].double()
    columns = []
    for i in range(4):
        xi, yi = x[task == i], y[task == i]
        columns.append(torch.linalg.solve(xi.T @ xi + 0.5 * torch.eye(x.shape[1], dtype=x.dtype), xi.T @ yi))
    task_vectors = torch.stack(columns, dim=1)
    assert torch.allclose(model.models["T4"].learned_task_vectors(), task_vectors, atol=1e-5)
    w, gamma = svd_solution(task_vectors, 2)
    swept = model.representation(4)
    assert torch.allclose(swept.w.double().T @ swept.gamma.double(), w.T @ gamma, atol=1e-5)


def test_checkpoint_round_trip_restores_every_model(tmp_path):
    data = DigitsTasksDataModule(task_grid=[1, 3], train_examples=90)
    model = LinearMultitaskRegression(k=2)
    fit(model, data, epochs=1, tmp_path=tmp_path)
    loaded = LinearMultitaskRegression.load_from_checkpoint(next(tmp_path.rglob("*.ckpt")), weights_only=True)
    assert loaded.task_grid == [1, 3]
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def old_checkpoint(path, solver: str, state: dict[str, torch.Tensor]):
    """A checkpoint as ``run.py fit`` wrote it before the solvers became classes: LightningCLI's class path and
    instantiator, every hyperparameter, the state keys ``models.T<t>.*`` and the optimizer's parameter groups."""
    hparams = {
        "_class_path": "lightning_modules.LinearMultitaskRegression", "k": 2, "solver": solver, "ridge": 1.0,
        "lr": 0.05, "weight_decay": 0.0, "init_seed": 0, "task_grid": [2, 3], "input_dim": 5,
        "normalize_task_vectors": True, "target": "task_vector",
        "_instantiator": "lightning.pytorch.cli.instantiate_module",
    }  # fmt: skip
    optimizer = {"state": {}, "param_groups": [{"params": list(range(len([k for k in state if "norms" not in k])))}]}
    torch.save({"state_dict": state, "hyper_parameters": hparams, "optimizer_states": [optimizer], "epoch": 0,
                "global_step": 1, "pytorch-lightning_version": L.__version__}, path)  # fmt: skip
    return path


def test_checkpoints_of_both_solvers_written_before_the_solver_classes_still_load(tmp_path):
    generator = torch.Generator().manual_seed(0)
    svd_state, sgd_state = {}, {}
    for t in (2, 3):
        c, norms = torch.randn(5, t, generator=generator), torch.full((t,), 2.0, dtype=torch.float64)
        svd_state |= {f"models.T{t}.c": c, f"models.T{t}.norms": norms}
        w, gamma = torch.randn(2, 5, generator=generator), torch.randn(2, t, generator=generator)
        sgd_state |= {f"models.T{t}.w": w, f"models.T{t}.gamma": gamma}
    svd, sgd = (
        LinearMultitaskRegression.load_from_checkpoint(old_checkpoint(tmp_path / f"{solver}.ckpt", solver, state))
        for solver, state in (("svd", svd_state), ("sgd", sgd_state))
    )

    for model, state in ((svd, svd_state), (sgd, sgd_state)):
        assert model.state_dict().keys() == state.keys()
        assert all(torch.equal(model.state_dict()[key], value) for key, value in state.items())
    for t in (2, 3):
        c = svd_state[f"models.T{t}.c"].double()
        assert torch.equal(svd.model(t).learned_task_vectors(), c * 2)
        assert all(map(torch.equal, svd.factors(t), svd_solution(c, 2)))
        w, gamma = orthonormalize(sgd_state[f"models.T{t}.w"].double(), sgd_state[f"models.T{t}.gamma"].double())
        assert torch.equal(sgd.task_vectors(t), unit_columns(w.T @ gamma))
        assert all(map(torch.equal, sgd.factors(t), (w, unit_columns(w.T @ gamma, gamma))))
    assert [s.name for s in sgd.robustness_subjects([])] == ["linear_sgd_k2_T2", "linear_sgd_k2_T3"]


@pytest.mark.slow
def test_sgd_config_runs_and_names_its_models(tmp_path):
    from run import main

    main([
        "fit", *config_args(DIGITS_SGD), f"--trainer.default_root_dir={tmp_path}",
        "--trainer.logger=false", "--trainer.max_epochs=10", "--data.init_args.task_grid=[1,6]",
    ])  # fmt: skip
    rows = read_sweep_csv(tmp_path / "robustness" / "sweep_fit_epoch009.csv")
    assert {r.model for r in rows} == {"linear_sgd_k4_T1", "linear_sgd_k4_T6"}
