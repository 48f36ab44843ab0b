"""Reviewers' decisions (CONTRACT §5): the store in the output folder, importing decision files,
which decisions are in force for a run, and explaining a resident.

    store.py      decisions.parquet: every decision ever made, none deleted
    importing.py  a decisions CSV (a filled-in review_queue.csv) -> store rows, or one line per bad row
    in_force.py   the latest decision per pair, contradictions overruled -> must-link / cannot-link pairs
    apply.py      `review apply`, and the queue a run imports before replacing it
    measured.py   the model's precision and recall measured on the decided pairs
    explain.py    `residentview explain`: why a resident's records are together or apart
    web/          `residentview review serve`: the review page (Flask, 127.0.0.1 only)
"""
