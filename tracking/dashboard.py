"""A saved W&B workspace and report for one experiment, in one command (``wandb-workspaces``).

    python -m tracking.dashboard --entity E --project P [--group G] [--experiment linear|gpt2|glue]
                                 [--study] [--perturbations NAME ...] [--dry-run OUT.json]

Sections: robustness curves per stage, perturbation and metric (the panels ``tracking.panels``
feeds: x = ``robustness/<stage>/<perturbation>/level``, a regex over every model's mean and 95% CI
bounds, so all runs of the group overlay), the per-epoch sensitivity (a curve per epoch, AUC against
epoch, the per-epoch table and heatmap image), "Layers" (layer-wise sweeps, ``tracking.group_panels``: a
curve per group, each group's AUC against epoch, the group tables and figures), σ_max of Q/K/V per block
over steps, weight norms, the cross-over table, R(T) (linear) and Table 2 (GLUE report runs); with ``--study``
(the group is a study's, ``python -m studies``) also the study report: the cross-over and clean gap per group,
their figure against the scale axis, the per-group comparisons and R(T) of every point. ``--dry-run`` writes both specs
as the library's own internal models serialise them, without network; without it the workspace and
report are saved to W&B and their URLs printed. What a family's runs log comes from the family itself
(``family = Family(...)`` on its LightningModule, ``lightning_modules.family``); the family is told from the
group name (each family declares the starts of its groups: ``linear-*``, ``digits*``, ``gpt2*``, ...) unless
``--experiment`` names it. Curve panels are made for the perturbations ``--perturbations`` names (default: the
entry-wise ones of the paper; add e.g. ``head_deletion``); their titles and x-axis titles name the level as each
perturbation declares it (``level_label``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws

from cognitive_reserve.perturbations import LEVEL_LABELS, PERTURBATIONS
from lightning_modules import Family, families, family_of_group

#: Series of one curve: the mean and its 95% CI bounds (``tracking.panels.CURVE_STATS`` less ``expected``).
BAND = "(mean|ci_low|ci_high)"
#: The x-axis of the monitors: Lightning's WandbLogger step metric.
STEP = "trainer/global_step"
#: The perturbations with panels unless ``--perturbations`` says otherwise: the entry-wise ones (the paper's).
ENTRYWISE = tuple(name for name, cls in PERTURBATIONS.items() if cls.unit == "entry")


def infer_experiment(group: str | None) -> Family:
    """The family whose runs the group holds: ``linear-digits``, ``digits_...`` → linear; ``gpt2-tiny`` → gpt2."""
    family = family_of_group(group)
    if family is None:
        known = ", ".join(f"{name} ({'*, '.join(f.groups)}*)" for name, f in families().items())
        raise SystemExit(f"error: --group={group}: no model family's groups start so ({known}); pass --experiment")
    return family


def level_label(perturbation: str) -> str:
    """The x-axis title of ``perturbation``'s panels: the level's label it declares (``level_label``)."""
    return LEVEL_LABELS.get(perturbation, perturbation)


def curve_panel(stage: str, perturbation: str, metric: str, epochs: bool = False) -> wr.LinePlot:
    """Metric against damage level, every model (and epoch) of every run: mean and CI bounds."""
    epoch = "/epoch[0-9]+(_step[0-9]+)?" if epochs else ""
    return wr.LinePlot(
        title=f"{stage}: {metric} against {level_label(perturbation)}" + (", per epoch" if epochs else ""),
        x=f"robustness/{stage}/{perturbation}/level",
        metric_regex=f"^robustness/{stage}/[^/]+/{perturbation}/{metric}{epoch}/{BAND}$",
        title_x=level_label(perturbation),
        title_y=metric,
    )


def curve_sections(experiment: Family, perturbations: Sequence[str] = ENTRYWISE) -> list[ws.Section]:
    sections = []
    for stage in experiment.stages:
        if stage == "train":
            continue
        panels = [curve_panel(stage, p, m) for m in experiment.metrics for p in perturbations]
        panels.append(wr.MediaBrowser(title=f"{stage}: sweep figure", media_keys=[f"robustness/{stage}/figure"]))
        sections.append(ws.Section(name=f"Robustness curves ({stage})", panels=panels, is_open=True))
    return sections


def auc_panel(metric: str, per_group: bool = False) -> wr.LinePlot:
    """Each per-epoch sweep's level-averaged ``metric`` against epoch (one line per group with ``per_group``)."""
    groups = "/groups/[^/]+" if per_group else ""
    return wr.LinePlot(
        title=f"AUC of {metric}{' per group' if per_group else ''} against epoch",
        x="epoch",
        metric_regex=f"^robustness/train/[^/]+/[^/]+/{metric}{groups}/auc$",
        title_y=f"level-averaged {metric}",
    )


def sensitivity_section(experiment: Family, perturbations: Sequence[str] = ENTRYWISE) -> ws.Section:
    """Per-epoch sweeps: a curve per epoch, AUC against epoch, the epoch × level table and heatmap."""
    panels: list[Any] = [curve_panel("train", p, m, epochs=True) for m in experiment.metrics for p in perturbations]
    panels += [auc_panel(metric) for metric in experiment.metrics]
    panels += [
        wr.WeavePanelSummaryTable(table_name="robustness/train/per_epoch/table"),
        wr.MediaBrowser(
            title="change from the undamaged model, training × level (figure)",
            media_keys=["robustness/train/per_epoch/heatmap"],
        ),
    ]
    return ws.Section(name="Sensitivity over training", panels=panels, is_open=True)


def group_curve_panel(stage: str, perturbation: str, metric: str) -> wr.LinePlot:
    """Metric against damage level with one group damaged at a time: every group of every run (mean and CI)."""
    return wr.LinePlot(
        title=f"{stage}: {metric} against {level_label(perturbation)}, one group damaged at a time",
        x=f"robustness/{stage}/{perturbation}/level",
        metric_regex=f"^robustness/{stage}/[^/]+/{perturbation}/{metric}/groups/[^/]+/{BAND}$",
        title_x=level_label(perturbation),
        title_y=metric,
    )


def layers_section(experiment: Family, perturbations: Sequence[str] = ENTRYWISE) -> ws.Section:
    """Layer-wise sweeps: per-group curves, each group's AUC over epochs, the group tables and figures."""
    sweeps = [stage for stage in experiment.stages if stage != "train"]
    panels: list[Any] = [group_curve_panel(s, p, m) for s in sweeps for m in experiment.metrics for p in perturbations]
    panels += [auc_panel(metric, per_group=True) for metric in experiment.metrics]
    panels += [wr.WeavePanelSummaryTable(table_name=f"robustness/{stage}/groups/table") for stage in sweeps]
    panels += [
        wr.WeavePanelSummaryTable(table_name="robustness/train/per_epoch/groups/table"),
        wr.MediaBrowser(
            title="group × level and group × epoch (figures)",
            media_keys=[f"robustness/{stage}/groups/figure" for stage in experiment.stages]
            + ["robustness/train/per_epoch/groups/figure"],
        ),
    ]
    return ws.Section(name="Layers", panels=panels)


def monitor_sections(experiment: Family) -> list[ws.Section]:
    """σ_max per matrix over steps (Q, K, V separately where fused weights are split), weight norms."""
    parts = ("q", "k", "v") if experiment.fused_attention else ()
    spectral = [
        wr.LinePlot(
            title=f"σ_max of {part.upper()} per block", x=STEP, metric_regex=rf"^spectral/.*\.{part}/sigma_max$"
        )
        for part in parts
    ]
    rest = r"^spectral/.*(?<!\.[qkv])/sigma_max$" if parts else r"^spectral/.*/sigma_max$"
    spectral.append(wr.LinePlot(title="σ_max of the other matrices", x=STEP, metric_regex=rest))
    norms = [
        wr.LinePlot(title="Σ w² per layer", x=STEP, metric_regex=r"^weight_norms/(?!total/).*/sum_sq$"),
        wr.LinePlot(title="Σ w², total", x=STEP, y=["weight_norms/total/sum_sq"]),
    ]
    return [
        ws.Section(name="Spectral norms (σ_max over steps)", panels=spectral, is_open=True),
        ws.Section(name="Weight norms", panels=norms),
    ]


def table_sections(experiment: Family, perturbations: Sequence[str] = ENTRYWISE) -> list[ws.Section]:
    """The cross-over table, R(T) and Table 2, where the experiment has them."""
    crossover = [wr.WeavePanelSummaryTable(table_name=f"robustness/{stage}/crossover") for stage in experiment.stages]
    sections = [ws.Section(name="Cross-over", panels=[p for p in crossover if "train" not in p.table_name])]
    if experiment.slope:
        slope = wr.MediaBrowser(title="R(T) against T", media_keys=["theory/robustness_slope"])
        sections.append(ws.Section(name="Robustness slope R(T)", panels=[slope], is_open=True))
    if experiment.glue_tables:
        tables = [wr.WeavePanelSummaryTable(table_name=f"glue/{p}/table") for p in perturbations]
        tables.append(wr.MediaBrowser(title="GLUE figure", media_keys=["glue/figure"]))
        sections.append(ws.Section(name="Table 2 (GLUE)", panels=tables, is_open=True))
    return sections


def study_section(experiment: Family) -> ws.Section:
    """What ``python -m studies report`` logs: the report table (cross-over level and clean gap per group),
    the figure of both against the scale axis per metric, and R(T) of every point (linear studies)."""
    panels: list[Any] = [
        wr.WeavePanelSummaryTable(table_name="study/report/table"),
        wr.MediaBrowser(
            title="cross-over and clean gap against scale",
            media_keys=[f"study/scale/{metric}" for metric in experiment.metrics],
        ),
    ]
    if experiment.slope:
        panels += [
            wr.MediaBrowser(title="R(T) of every point", media_keys=["study/slopes"]),
            wr.WeavePanelSummaryTable(table_name="study/slopes/table"),
        ]
    return ws.Section(name="Study report", panels=panels, is_open=True)


def build_workspace(
    entity: str,
    project: str,
    group: str | None,
    experiment: Family,
    study: bool = False,
    perturbations: Sequence[str] = ENTRYWISE,
) -> ws.Workspace:
    """The saved view: every section above (the study report's first with ``study``; curves of
    ``perturbations``), runs of ``group`` (all runs without one)."""
    sections = [
        *([study_section(experiment)] if study else []),
        *curve_sections(experiment, perturbations),
        sensitivity_section(experiment, perturbations),
        layers_section(experiment, perturbations),
        *monitor_sections(experiment),
        *table_sections(experiment, perturbations),
    ]
    filters = [ws.Metric("Group") == group] if group else []
    return ws.Workspace(
        entity=entity,
        project=project,
        name=f"robustness: {group or project}",
        sections=sections,
        runset_settings=ws.RunsetSettings(filters=filters),
    )


def build_report(entity: str, project: str, group: str | None, workspace: ws.Workspace) -> wr.Report:
    """A report with the workspace's sections as panel grids over the same runs.

    Its run sets name no project: they take the report's, so the report is built (and checked)
    without network; ``wandb-workspaces`` looks a named project up on the server.
    """
    query = f'Group = "{group}"' if group else ""
    blocks: list[Any] = [wr.H1(workspace.name), wr.P(f"Runs of group {group or '(all)'} in {entity}/{project}.")]
    for section in workspace.sections:
        blocks += [wr.H2(section.name), wr.PanelGrid(runsets=[wr.Runset(filters=query)], panels=list(section.panels))]
    return wr.Report(project=project, entity=entity, title=workspace.name, blocks=blocks)


def specs(workspace: ws.Workspace, report: wr.Report) -> dict[str, Any]:
    """Both specs as the library's internal models serialise them (what ``save`` sends)."""
    return {
        "workspace": workspace._to_model().model_dump(mode="json", by_alias=True, exclude_none=True),
        "report": report._to_model().model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tracking.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--entity", required=True, help="W&B entity (user or team)")
    parser.add_argument("--project", required=True, help="W&B project, e.g. cognitive-reserve")
    parser.add_argument("--group", help="only the runs of this W&B group (one experiment), e.g. gpt2-tiny")
    parser.add_argument("--experiment", choices=list(families()), help="the model family; default: told from --group")
    parser.add_argument("--study", action="store_true", help="the group is a study's: show its report first")
    parser.add_argument(
        "--perturbations",
        nargs="+",
        choices=list(PERTURBATIONS),
        default=list(ENTRYWISE),
        metavar="NAME",
        help=f"curve panels of these perturbations (default: {' '.join(ENTRYWISE)}; any of {', '.join(PERTURBATIONS)})",
    )
    parser.add_argument("--dry-run", metavar="OUT.json", type=Path, help="write the specs here; no network")
    args = parser.parse_args(argv)
    experiment = families()[args.experiment] if args.experiment else infer_experiment(args.group)
    workspace = build_workspace(args.entity, args.project, args.group, experiment, args.study, args.perturbations)
    report = build_report(args.entity, args.project, args.group, workspace)
    if args.dry_run:
        args.dry_run.parent.mkdir(parents=True, exist_ok=True)
        args.dry_run.write_text(json.dumps(specs(workspace, report), indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"wrote the workspace and report specs to {args.dry_run} ({len(workspace.sections)} sections)")
        return
    workspace.save()
    report.save()
    print(f"workspace: {workspace.url}\nreport:    {report.url}", file=sys.stdout)


if __name__ == "__main__":
    main()
