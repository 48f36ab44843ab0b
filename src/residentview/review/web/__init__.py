"""The review page (`residentview review serve OUTDIR`): a small local web app, on 127.0.0.1 only,
for the people who check matches. Its script and style ship in the package (static/): the page
works with no network.

    app.py        the Flask app: the page, its JSON, errors as messages, path-only request log
    snapshot.py   the run the page shows, read again when a run replaces the folder
    queue.py      the next undecided pair of review_queue.csv, side by side, with its waterfall
    resident.py   finding a resident; its records, households, addresses and edges; split, merge
    changes.py    the decisions as the page's actions; undo as new decisions, never a deletion
    plain.py      field names, dates and evidence in plain language
    problems.py   the requests the page cannot carry out, as messages
"""

from residentview.review.web.app import DEFAULT_PORT, HOST, create_app, review_server

__all__ = ["DEFAULT_PORT", "HOST", "create_app", "review_server"]
