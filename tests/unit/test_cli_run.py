"""`raynas run` on a config whose target is estimated from a published table: the budgets come
before the data is needed, and a missing dataset stops the run with the field to fix."""

from raynas.cli import main
from raynas.config import expand_path
from tests.conftest import ROOT, shared_data


def test_pixel1_config_prints_its_budgets_then_names_the_missing_imagenet(monkeypatch, capsys, tmp_path):
    table = shared_data("latency-tables/pixel1_mobile_trim.yaml")
    monkeypatch.setenv("RAYNAS_DATA", str(table.parents[1]))
    code = main(["run", "--config", str(ROOT / "experiments/configs/proxyless-mobile-pixel1.yaml"), "--set", f"run_root={tmp_path}"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "pixel1: external estimate" in out and "spans 29.61-191.03 ms; budgets 78.04, 126.46 ms" in out
    assert "config field data.root" in err and "/data/imagenet" in err
    assert not any(tmp_path.iterdir())  # stopped before creating a run directory


def test_path_fields_expand_variables_with_defaults(monkeypatch):
    monkeypatch.delenv("RAYNAS_NOPE", raising=False)
    monkeypatch.setenv("RAYNAS_YES", "/data")
    assert expand_path("${RAYNAS_YES:-x}/t.yaml") == "/data/t.yaml"
    assert expand_path("${RAYNAS_NOPE:-../shared/data}/t.yaml") == "../shared/data/t.yaml"
    assert expand_path("${RAYNAS_NOPE}/t.yaml") == "${RAYNAS_NOPE}/t.yaml"


def test_nb201_config_reaches_the_dataset_check_through_the_cli(monkeypatch, capsys, tmp_path):
    table = shared_data("nb201-hw") / "nb201_hw.csv"
    monkeypatch.setenv("RAYNAS_DATA", str(table.parents[1]))
    config = str(ROOT / "experiments/configs/nb201-evolution.yaml")
    code = main(["run", "--config", config, "--set", f"run_root={tmp_path}", "--set", f"data.root={tmp_path / 'absent'}"])
    _, err = capsys.readouterr()
    assert code == 2 and "config field data.root" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())
