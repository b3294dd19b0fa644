"""The benchmark page writer (experiments/bench/pages.py): data files and the README.md generated from them."""

from __future__ import annotations

import csv
import json
import re
import sys

from experiments.bench import pages

SUMMARY = {"device": "cpu (2 threads)", "retrain_vs_bare": 0.917, "images_per_s": {"bare": 812.4, "retrain": 745.1}, "batch": 64}
ROWS = [
    {"mode": "bare", "images_per_s": 812.4, "vs_bare": 1.0},
    {"mode": "retrain", "images_per_s": 745.1, "vs_bare": 0.917, "note": "a | pipe"},
]


def page(tmp_path, **kwargs):
    return pages.write_page("demo", summary=SUMMARY, title="Demo bench", root=tmp_path, **kwargs)


def test_write_page_writes_the_data_and_a_readme_generated_from_it(tmp_path):
    folder = page(tmp_path, rows=ROWS, notes="What the modes mean.")
    assert folder == tmp_path / "demo"
    data = json.loads((folder / "results.json").read_text())
    assert data["summary"] == SUMMARY and data["rows"] == ROWS and data["title"] == "Demo bench"
    readme = (folder / "README.md").read_text()
    assert readme.startswith("# Demo bench\n") and "What the modes mean." in readme
    prov = data["provenance"]
    assert re.fullmatch(r"[0-9a-f]{4,40}(\+dirty)?|unknown", prov["commit"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", prov["date"])
    assert prov["machine"]["cores"] > 0 and prov["machine"]["ram_gib"] > 0 and prov["machine"]["torch"]
    for text in (prov["command"], prov["commit"], prov["date"], prov["machine"]["cpu"], prov["machine"]["torch"]):
        assert text in readme
    assert "| images_per_s.bare | 812.4 |" in readme  # nested summary keys flattened
    for row in ROWS:  # every row is a line of the results table, its values in column order
        cells = [str(row.get(k, "")).replace("|", "\\|") for k in ("mode", "images_per_s", "vs_bare", "note")]
        assert "| " + " | ".join(cells) + " |" in readme.splitlines()


def test_csv_round_trip(tmp_path):
    folder = page(tmp_path, rows=ROWS)
    with (folder / "results.csv").open(newline="") as f:
        read = list(csv.DictReader(f))
    assert [list(r) for r in read] == [["mode", "images_per_s", "vs_bare", "note"]] * 2
    assert read == [{k: str(row.get(k, "")) for k in read[0]} for row in ROWS]


def test_no_rows_writes_no_csv_and_no_results_table(tmp_path):
    page(tmp_path, rows=ROWS)
    for rows in (None, []):  # a rewrite without rows also drops the earlier run's CSV
        folder = page(tmp_path, rows=rows)
        assert not (folder / "results.csv").exists()
        readme = (folder / "README.md").read_text()
        assert "## Results" not in readme and "## Headline" in readme and "results.csv" not in readme
        assert json.loads((folder / "results.json").read_text())["rows"] == []


def test_the_readme_is_regenerated_from_results_json_alone(tmp_path):
    folder = page(tmp_path, rows=ROWS)
    data = json.loads((folder / "results.json").read_text())
    data["summary"]["retrain_vs_bare"] = 0.123
    (folder / "results.json").write_text(json.dumps(data))
    pages.render_page(folder)
    readme = (folder / "README.md").read_text()
    assert "| retrain_vs_bare | 0.123 |" in readme and "0.917 |\n" not in readme.split("## Results")[0]


def test_provenance_names_the_script_relative_to_the_repo():
    prov = pages.provenance([str(pages.REPO / "experiments" / "bench" / "throughput.py"), "--steps", "3"])
    assert prov.command == "python experiments/bench/throughput.py --steps 3"
    assert pages.provenance(None).command.startswith("python ") and sys.argv[0]
