"""The review page's web app (Flask): one HTML page, its script and style, and the JSON the page
asks for. Every decision goes into the folder's store through `record_decisions`.

Requests the page cannot carry out get a message for the person (problems.py), never a stack
trace. Every /api request carries the run_timestamp the page was loaded with: when a run has
replaced the folder since, the answer asks for a reload instead of mixing two runs. Every POST
says which store (its highest decision_id) the page showed: a pair decided meanwhile by someone
else is not decided again over their head.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import pandas as pd
from flask import Flask, Response, jsonify, render_template, request
from jinja2 import ChoiceLoader, FileSystemLoader
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from residentview import templates as shared_templates
from residentview.errors import DataError, ResidentViewError
from residentview.report.sections import BANNER
from residentview.review.apply import record_decisions
from residentview.review.in_force import decisions_in_force
from residentview.review.store import DECISION_WORDS, PAIR_COLUMNS, ordered_pairs, pair_label, read_store
from residentview.review.web import changes, queue, resident
from residentview.review.web.problems import Conflict, NotFound, PageProblem
from residentview.review.web.snapshot import Snapshot, load_snapshot, run_timestamp

HOST = "127.0.0.1"  # this machine only: the page shows personal data and asks for no password
DEFAULT_PORT = 8765
LOCAL_NAMES = ("127.0.0.1", "localhost")
RUN_HEADER = "X-Run-Timestamp"
PAGE_BANNER = BANNER.replace("this report contains", "this page shows")
NOTE_LIMIT = 2000
request_log = logging.getLogger("residentview.review.web.requests")
log = logging.getLogger(__name__)


class PageState:
    """The folder the page serves, the run read from it, and one lock: a read of the store, the
    check against what the page showed and the write happen as one step."""

    def __init__(self, folder: Path, blind: bool):
        self.folder, self.blind = Path(folder), blind
        self.lock = threading.RLock()
        self._snapshot: Optional[Snapshot] = None

    def snapshot(self) -> Snapshot:
        with self.lock:
            if self._snapshot is None or run_timestamp(self.folder) != self._snapshot.run_timestamp:
                self._snapshot = load_snapshot(self.folder)
            return self._snapshot


# -- reading requests -------------------------------------------------------------------------

def _payload() -> dict:
    data = request.get_json(silent=True) if request.is_json else None
    if not isinstance(data, dict):
        raise PageProblem("the page sent a request the server cannot read; reload the page")
    return data


def _text(data: dict, key: str, what: str, required: bool = True) -> Optional[str]:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise PageProblem(f"{what} is missing")
        return None
    if not isinstance(value, (str, int)) or len(str(value)) > NOTE_LIMIT:
        raise PageProblem(f"{what} is not valid")
    return str(value).strip()


def _reviewer(data: dict) -> str:
    name = _text(data, "reviewer", "your name", required=False)
    if not name:
        raise PageProblem("say who you are first: the page asks for your name once and sends it with each decision")
    return name


def _version(data: dict) -> int:
    value = data.get("store_version")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PageProblem("the page did not say which decisions it showed; reload the page")
    return value


def _skipped(text: Optional[str]) -> set[int]:
    return {int(p) for p in (text or "").split(",") if p.strip().isdigit()}


# -- storing decisions ------------------------------------------------------------------------

def _record(state: PageState, snapshot: Snapshot, rows: pd.DataFrame, version: int, origin: str,
            reviewer: str, note: Optional[str] = None) -> tuple[int, list[str]]:
    """Store `rows` unless one of their pairs was decided after the store the page showed.
    Returns how many were stored and the decisions they overrule (A = B, B = C but A ≠ C)."""
    rows = rows.assign(reviewer=reviewer) if "reviewer" not in rows else rows
    if "note" not in rows:
        rows = rows.assign(note=note or "")
    pairs = [changes.pair_of(r) for r in ordered_pairs(rows).itertuples(index=False)]
    with state.lock:
        store = read_store(state.folder)
        changes.decided_since(store, pairs, version)
        records = snapshot.run.records[["unique_id", "source", "record_id"]]
        overruled_before = set(decisions_in_force(store, records).overruled["decision_id"].astype(int))
        try:
            applied = record_decisions(state.folder, rows, origin, reviewer)
        except DataError as exc:
            lines = str(exc).splitlines()
            raise PageProblem("; ".join(lines[1:] or lines)) from None
    overruled = applied.in_force.overruled
    newly = overruled[~overruled["decision_id"].astype(int).isin(overruled_before)]
    return len(applied.imported.rows), [f"{r.decision} {pair_label(r)} (decision {r.decision_id})"
                                        for r in newly.itertuples(index=False)]


def _who(data: dict) -> tuple[str, int, Optional[str]]:
    """The reviewer, the store the page showed (its highest decision_id) and the note of a request
    that decides."""
    return _reviewer(data), _version(data), _text(data, "note", "the note", required=False)


def _decided(state: PageState, snapshot: Snapshot, rows: pd.DataFrame, who: tuple, origin: str, what: str) -> Response:
    """Store the decisions a request makes, and the page's answer: what was recorded, when it takes
    effect, and the earlier decisions it overrules."""
    reviewer, version, note = who
    n, overruled = _record(state, snapshot, rows, version, origin, reviewer, note)
    message = f"Recorded {what}. {resident.TAKES_EFFECT}" if n else f"Nothing new: {what} was already recorded."
    if overruled:
        message += f" It overrules {len(overruled)} earlier decision(s) it contradicts: {'; '.join(overruled)}."
    return jsonify({"recorded": n, "message": message, "store_version": changes.store_version(read_store(state.folder))})


# -- the app ----------------------------------------------------------------------------------

def create_app(outdir, blind: bool = False) -> Flask:
    """The review page for the run in `outdir` (DataError when it holds no run). `blind`: the
    model's score is never sent while deciding, whatever the page asks."""
    state = PageState(outdir, blind)
    state.snapshot()
    app = Flask(__name__)
    # Its own templates first, then the ones it shares with the report (the page shell, the banner).
    app.jinja_loader = ChoiceLoader([app.jinja_loader, FileSystemLoader(shared_templates.FOLDER)])
    app.config.update(MAX_CONTENT_LENGTH=256 * 1024)
    app.json.sort_keys = False
    app.extensions["residentview"] = state

    @app.before_request
    def checks() -> None:
        host = (request.host or "").rsplit(":", 1)[0].strip("[]").lower()
        if host not in LOCAL_NAMES:  # a page elsewhere pointing a name at this machine (DNS rebinding)
            raise PageProblem(f"this page answers only at http://{HOST}")
        seen = request.headers.get(RUN_HEADER)
        if request.path.startswith("/api/") and seen is not None and seen != run_timestamp(state.folder):
            raise Conflict("the output folder was replaced by a new run since this page was loaded; reload the "
                           "page to review the new run (nothing was recorded)", reload=True)

    @app.after_request
    def headers(response: Response) -> Response:
        # Everything the page uses comes from this server; personal data is not kept in caches.
        response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; "
                                                       "frame-ancestors 'none'; form-action 'self'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    def problem(message: str, status: int, reload: bool = False):
        if request.path.startswith("/api/"):
            return jsonify({"error": message, "reload": reload}), status
        page = Markup(f"<!doctype html><meta charset=utf-8><title>residentview review page</title>"
                      f"<p>{escape(message)}</p><p><a href=\"/\">Back to the review page</a></p>")
        return Response(page, status=status, mimetype="text/html")

    @app.errorhandler(PageProblem)
    def page_problem(exc: PageProblem):
        return problem(str(exc), exc.status, exc.reload)

    @app.errorhandler(ResidentViewError)
    def bad_data(exc: ResidentViewError):
        lines = str(exc).splitlines()
        return problem(lines[0] if lines else type(exc).__name__, 400)

    @app.errorhandler(HTTPException)
    def http_problem(exc: HTTPException):
        messages = {404: "no such page", 405: "that request is not accepted here",
                    413: "the request is too large (a note is at most a few thousand letters)"}
        return problem(messages.get(exc.code, exc.name.lower()), exc.code or 400)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        from residentview.cli import _describe_unexpected  # the type and where, never the text (it can quote data)

        log.error("unexpected error answering %s %s: %s", request.method, request.path, _describe_unexpected(exc))
        return problem(f"unexpected error ({_describe_unexpected(exc)}); nothing more was recorded. Reload the page "
                       "and try again; if it happens again, report the message above", 500)

    @app.get("/")
    def page():
        snapshot = state.snapshot()
        run_name = snapshot.run.run.get("name") or snapshot.folder.name
        return render_template("page.html", title=f"Review matches: {run_name}", banner=Markup(PAGE_BANNER),
                               run_timestamp=snapshot.run_timestamp or "", run_name=run_name,
                               folder=str(snapshot.folder), blind_locked=state.blind)

    @app.get("/static/shared.css")  # shared with the report: residentview/templates/shared.css
    def shared_css():
        return Response(shared_templates.shared_css(), mimetype="text/css")

    # -- the queue
    @app.get("/api/queue")
    def next_pair():
        snapshot = state.snapshot()
        store = read_store(state.folder)
        past = changes.history(store)
        skipped = _skipped(request.args.get("skip"))
        blind = state.blind or request.args.get("blind") == "1"
        review_id = queue.next_review_id(snapshot, past, skipped)
        card = queue.pair_card(snapshot, review_id, blind) if review_id is not None else None
        return jsonify({"pair": card, "progress": queue.progress(snapshot, past, skipped),
                        "store_version": changes.store_version(store)})

    @app.post("/api/decide")
    def decide():
        data = _payload()
        who = _who(data)
        decision = _text(data, "decision", "the decision")
        if decision not in DECISION_WORDS:
            raise PageProblem(f"unknown decision '{decision}' (match, non-match or unsure)")
        try:
            review_id = int(data.get("review_id"))
        except (TypeError, ValueError):
            raise PageProblem("the page did not say which pair it decides; reload the page") from None
        snapshot = state.snapshot()
        _, pair = queue.queue_row(snapshot, review_id)
        rows = pd.DataFrame([{**dict(zip(PAIR_COLUMNS, pair)), "decision": decision}])
        blind = state.blind or bool(data.get("blind"))
        return _decided(state, snapshot, rows, who, changes.BLIND_ORIGIN if blind else changes.PAGE_ORIGIN,
                        f"{decision} for {changes.pair_name(pair)}")

    # -- a resident
    @app.post("/api/find")
    def find():
        data = _payload()
        return jsonify(resident.find(state.snapshot(), _text(data, "query", "what to look for", required=False) or "",
                                     bool(data.get("by_name"))))

    @app.get("/api/resident/<resident_id>")
    def show_resident(resident_id: str):
        page = resident.resident_page(state.snapshot(), resident_id)
        page["store_version"] = changes.store_version(read_store(state.folder))
        return jsonify(page)

    @app.post("/api/split")
    def split():
        data = _payload()
        who = _who(data)
        resident_id, record = _text(data, "resident_id", "the resident"), _text(data, "record", "the record")
        snapshot = state.snapshot()
        rows = resident.split_rows(snapshot, resident_id, record)
        return _decided(state, snapshot, rows, who, changes.PAGE_ORIGIN,
                        f"{len(rows)} non-match decision(s) between {record} and the other records of resident "
                        f"{resident_id}")

    @app.post("/api/merge")
    def merge():
        data = _payload()
        who = _who(data)
        resident_id, other = _text(data, "resident_id", "the resident"), _text(data, "other", "the other resident")
        snapshot = state.snapshot()
        rows, other_id = resident.merge_rows(snapshot, resident_id, other)
        row = rows.iloc[0]
        return _decided(state, snapshot, rows, who, changes.PAGE_ORIGIN,
                        f"a match between {row.source_l}:{row.record_id_l} (resident {resident_id}) and "
                        f"{row.source_r}:{row.record_id_r} (resident {other_id})")

    # -- what changed
    @app.get("/api/changes")
    def what_changed():
        store = read_store(state.folder)
        reviewer = (request.args.get("reviewer") or "").strip()
        action = changes.last_undoable(store, reviewer) if reviewer else None
        undoable = None if action is None else {
            "ids": action.ids, "description": action.describe(),
            "decided_at": action.decided_at.isoformat() if pd.notna(action.decided_at) else None}
        return jsonify({"changes": changes.changes_list(store), "n_decisions": int(len(store)), "undoable": undoable,
                        "store_version": changes.store_version(store)})

    @app.post("/api/undo")
    def undo():
        data = _payload()
        reviewer = _reviewer(data)
        shown = data.get("ids")
        snapshot = state.snapshot()
        with state.lock:
            store = read_store(state.folder)
            action = changes.last_undoable(store, reviewer)
            if action is None:
                raise NotFound(f"nothing of yours to undo: {reviewer} has no decision on this page that is not undone yet")
            if shown != action.ids:
                raise Conflict("your decisions changed since this list was shown (another window?); nothing was "
                               "undone — look again at the list, now up to date")
            rows = changes.undo_rows(store, action, reviewer)
            n, _ = _record(state, snapshot, rows, changes.store_version(store), changes.undo_origin(action.ids), reviewer)
        message = (f"Undone {action.describe()}: recorded {n} new decision(s) restoring what was in force before "
                   f"(unsure where there was no decision). The store never deletes a decision. {resident.TAKES_EFFECT}")
        return jsonify({"recorded": n, "message": message, "store_version": changes.store_version(read_store(state.folder))})

    return app


# -- serving ----------------------------------------------------------------------------------

class PathOnlyRequestHandler(WSGIRequestHandler):
    """Werkzeug's request log without query strings, client details or request lines: a request
    is logged as its method, path and status (paths hold record and resident ids, never a name
    or a date of birth; searches and decisions travel in request bodies)."""

    def log_request(self, code="-", size="-") -> None:
        path = urlsplit(getattr(self, "path", "") or "").path
        request_log.info("%s %s %s", getattr(self, "command", "-"), path, getattr(code, "value", code))

    def log_error(self, format: str, *args) -> None:  # its arguments can quote the request line
        request_log.warning("a request could not be read")

    def log(self, type: str, message: str, *args) -> None:
        return None


def review_server(outdir, port: int = DEFAULT_PORT, blind: bool = False) -> BaseWSGIServer:
    """A threaded server for the review page of `outdir` on 127.0.0.1:`port` (0: any free port),
    not yet serving. DataError when `outdir` holds no run or the port is taken."""
    app = create_app(outdir, blind=blind)
    if port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError as exc:  # werkzeug would print its own lines and exit 1
                raise DataError(f"cannot listen on {HOST}:{port} ({exc.strerror or exc}); "
                                "choose another port with --port") from None
    return make_server(HOST, port, app, threaded=True, request_handler=PathOnlyRequestHandler)
