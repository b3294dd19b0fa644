"""The printed results table shows, per NAS result, whether the budget window picked it and where the argmax was."""

from raynas.cli import format_table


def _row(method, constrained, argmax):
    return {
        "target": "cpu-1t",
        "budget_ms": 2.0,
        "method": method,
        "seed": 0,
        "space": "mnist-small",
        "arch": "k3e3|skip|k3e3|skip|k3e3|skip",
        "predicted_ms": 1.9,
        "measured_ms": 1.95,
        "test_acc": 0.95,
        "width_mult": 1.0,
        "constrained": constrained,
        "argmax_ms": argmax,
    }


def test_constrained_column_says_where_the_search_argmax_was():
    table = format_table(
        {
            "results": [_row("proxyless", True, 2.82), _row("random-ws", None, None), _row("proxyless", False, 1.9)],
            "run_dir": "r",
            "mlflow_uri": "u",
        }
    )
    header = table.splitlines()[0]
    assert "constrained" in header and "meas/pred" in header
    assert "yes (argmax 1.41 B)" in table and " no " in table and " - " in table
