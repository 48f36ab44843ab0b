"""Stage 6 — report: report.html and review_queue.csv, built from a run's output folder.

(Placeholder: a minimal self-contained page. The full match-quality report replaces this.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from residentview.outputs import staged_output


def write_report(folder: Path, labels: Optional[Path] = None) -> Path:
    folder = Path(folder)
    links = pd.read_parquet(folder / "resident_links.parquet")
    body = (
        "<p><strong>This report contains personal data.</strong></p>"
        f"<p>{len(links)} records, {links['resident_id'].nunique()} residents.</p>"
    )
    path = folder / "report.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>residentview report</title></head><body>{body}</body></html>", encoding="utf-8")
    pd.DataFrame(columns=["decision"]).to_csv(folder / "review_queue.csv", index=False)
    return path


def rebuild_report(outdir: Path, labels: Optional[Path] = None) -> Path:
    """`residentview report OUTDIR`: rebuild the report files in place, atomically."""
    import shutil

    outdir = Path(outdir)
    with staged_output(outdir) as staging:
        for name in ("resident_links.parquet", "residents.parquet", "households.parquet", "id_changes.parquet",
                     "data_quality.parquet", "records.parquet", "pairs.parquet", "model.json", "run.json"):
            if (outdir / name).exists():
                shutil.copy2(outdir / name, staging / name)
        write_report(staging, labels=labels)
        for name in list(staging.iterdir()):
            if name.name not in ("report.html", "review_queue.csv"):
                name.unlink()
    return outdir / "report.html"
