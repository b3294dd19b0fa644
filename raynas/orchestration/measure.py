"""After retraining: every finalist timed on its target(s) on their nodes, its result rows, its
deployment exports and its MLflow child run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import ray
from torch import nn

from raynas.api import Finalist
from raynas.checkpoints import load_state_dict
from raynas.config import ExperimentConfig, TargetConfig
from raynas.evaluation.compare import ResultRow
from raynas.execution.tasks import measure_latencies, on_target
from raynas.execution.trials import WEIGHTS_FILE
from raynas.export import deployment_path, export_network
from raynas.hardware.models import LatencyModels
from raynas.hardware.targets import get_target
from raynas.space.catalog import build_network, image_shape
from raynas.space.reference import width_multiplier
from raynas.tracking.mlflow_tracker import ExperimentTracker
from raynas.tracking.sync import record_finalist, weights_path

Measured = dict[tuple[str, str], tuple[float, float]]  # (finalist key, target) -> (ms in the table's unit, wall-clock ms)


@dataclass
class Measurement:
    """Times, rows and exports of a run's retrained finalists."""

    cfg: ExperimentConfig
    run_dir: Path
    latency: LatencyModels
    tracker: ExperimentTracker
    num_classes: int
    shipped: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)  # (key, target) -> the file timed, which ships

    def target(self, name: str) -> TargetConfig:
        return next(t for t in self.cfg.targets if t.name == name)

    def targets_of(self, finalist: Finalist) -> list[str]:
        """The search's own target, or every target for a hand-designed reference."""
        return [finalist.target] if finalist.target else [t.name for t in self.cfg.targets]

    def measure(self, finalists: list[Finalist], retrained: dict) -> Measured:
        """Latency of every retrained finalist on its target(s), in the table's unit and in wall-clock ms:
        one task per target times all of that target's networks in interleaved rounds, so methods are
        compared under the same machine state."""
        nets: dict[str, dict] = {t.name: {} for t in self.cfg.targets}
        for f in finalists:
            state = {k: v.numpy() for k, v in self.keep_weights(f, retrained[f.key]).items()}
            for target in self.targets_of(f):
                nets[target][f.key] = (f.arch.to_dict(), state)
        tasks = {
            target: on_target(measure_latencies, target).remote(
                mine, target, self.num_classes, profile=self.cfg.profile, yardstick_ms=self.latency.table(target).yardstick_ms
            )
            for target, mine in nets.items()
            if not self.target(target).estimated  # unreachable hardware: its rows carry the estimate only
        }  # every target's task started before any is awaited: targets on separate nodes time at once
        out = {}
        for target, task in tasks.items():
            times = ray.get(task)
            out |= {(key, target): (ms, ms * times.wall_per_unit) for key, ms in times.items()}
            self.shipped |= {(key, target): file for key, file in times.files.items()}
        return out

    def keep_weights(self, finalist: Finalist, result) -> dict:
        """The retrained weights, copied from Tune's checkpoint into the run directory (downloaded when Tune storage is remote)."""
        weights = weights_path(self.run_dir, finalist.key)
        weights.parent.mkdir(exist_ok=True)
        with result.checkpoint.as_directory() as local:
            shutil.copyfile(Path(local) / WEIGHTS_FILE, weights)
        return load_state_dict(weights)

    def rows(self, finalist: Finalist, retrained: dict, measured: Measured) -> list[ResultRow]:
        """The finalist's result rows (one per target it was measured on), its exports, and its MLflow child run."""
        net = build_network(finalist.arch, self.num_classes)
        net.load_state_dict(load_state_dict(weights_path(self.run_dir, finalist.key)))
        rows = []
        for target in self.targets_of(finalist):
            predicted = self.latency.predict(target, finalist.arch)
            if predicted is None and (finalist.key, target) not in measured:
                continue  # a scaled reference on an estimated target: no table covers it
            rows.append(self.row(finalist, retrained.metrics, target=target, predicted=predicted, measured=measured))
            self.export(net, rows[-1])
        if rows:  # none: a scaled reference where every target is estimated
            record_finalist(self.tracker, self.run_dir, [r.to_dict() for r in rows], arch=finalist.arch, strategy=self.cfg.strategy)
        return rows

    def row(self, finalist: Finalist, metrics: dict, *, target: str, predicted: float | None, measured: Measured) -> ResultRow:
        arch = finalist.arch
        unit_ms, wall_ms = measured.get((finalist.key, target), (None, None))
        return ResultRow(
            key=finalist.key,
            target=target,
            budget_ms=finalist.budget_ms,
            method=finalist.method,
            seed=finalist.seed,
            arch=arch.to_string(),
            space=arch.space,
            arch_id=arch.arch_id,
            width_mult=width_multiplier(arch.space),
            predicted_ms=_rounded(predicted),
            measured_ms=_rounded(unit_ms),
            measured_wall_ms=_rounded(wall_ms),
            estimated=self.target(target).estimated,
            val_acc=round(metrics["val_acc"], 4),
            test_acc=round(metrics["test_acc"], 4),
            constrained=finalist.constrained,
            argmax_ms=_rounded(finalist.argmax_ms),
            search_seconds=round(finalist.search_seconds, 2),
            evaluations=None if finalist.evaluations is None else int(finalist.evaluations),
            retrain_seconds=round(metrics["retrain_seconds"], 2),
        )

    def export(self, net: nn.Module, row: ResultRow) -> None:
        """The network as its target runs it with its recipe (raynas/export.py); a NAS finalist's also as
        the any-batch program its MLflow Model serves."""
        estimated = self.target(row.target).estimated
        target = None if estimated else get_target(row.target)
        batch = self.latency.table(row.target, row.space).batch_size if estimated else target.batch_size
        channels, side = image_shape(row.space)
        facts = {
            k: getattr(row, k) for k in ("key", "method", "arch", "space", "budget_ms", "predicted_ms", "measured_ms", "measured_wall_ms")
        }
        facts |= {"test_acc": row.test_acc, "estimated": row.estimated}
        shape = (batch, channels, side, side)
        folder = deployment_path(self.run_dir, row.key, row.target)
        shipped = self.shipped.get((row.key, row.target))
        export_network(net, shape, folder, target=target, facts=facts, serving=row.method == self.cfg.strategy, shipped=shipped)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
