"""The review page (`residentview review serve`, CONTRACT §5): its JSON and HTML answers, the
requests it refuses with a message (never a stack trace), and a reviewer's session in a real
browser — Debian's chromium driven by Playwright — against the demo's outputs, ending with a
`link` that honours what was decided."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import socket
import threading
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from residentview.cli import main
from residentview.demo import run_demo
from residentview.pipeline import link
from residentview.review.apply import record_decisions
from residentview.review.store import ordered_pairs, read_store
from residentview.review.web import create_app, review_server
from residentview.review.web.app import RUN_HEADER

REVIEWER = "Test Reviewer"
PAIR = ["source_l", "record_id_l", "source_r", "record_id_r"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A demo of about 3,000 records: its extracts and config in data/, its outputs in output/.
    Made once per test session: the first pytest-xdist worker to ask makes it while the other
    waits (two demos at once on a two-core machine took three times as long). Tests decide in
    copies of it."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "review-page-demo"
    with open(f"{shared}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "output" / "run.json").is_file():
            shutil.rmtree(shared, ignore_errors=True)
            run_demo(shared, records=3000, progress=False)
    return shared


@pytest.fixture
def folder(demo, tmp_path) -> Path:
    """A copy of the demo's output folder (and extracts) for one test to decide in."""
    shutil.copytree(demo, tmp_path / "demo")
    return tmp_path / "demo" / "output"


def queue_of(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "review_queue.csv", dtype=str, keep_default_na=False)


def records_of(folder: Path) -> pd.DataFrame:
    links = pd.read_parquet(folder / "resident_links.parquet", columns=["source", "record_id", "resident_id"])
    return links.assign(key=links["source"] + ":" + links["record_id"])


def store_pair(row) -> tuple:
    """A queue row's pair as the store names it (its records in order)."""
    frame = pd.DataFrame([{c: row[c] for c in PAIR}])
    return tuple(ordered_pairs(frame).iloc[0])


def key_pair(left: str, right: str) -> tuple:
    (sl, rl), (sr, rr) = left.split(":", 1), right.split(":", 1)
    return store_pair({"source_l": sl, "record_id_l": rl, "source_r": sr, "record_id_r": rr})


def stored(folder: Path) -> list[tuple]:
    """The store as (pair, decision, reviewer, origin), in the order the decisions were made."""
    store = read_store(folder)
    return [(tuple(r[c] for c in PAIR), r["decision"], r["reviewer"], r["origin"]) for _, r in store.iterrows()]


def residents_apart_from(folder: Path, keys: set[str], sizes=(3, 4)) -> list[str]:
    """Residents of a few records, none of them among `keys`."""
    records = records_of(folder)
    counts = records["resident_id"].value_counts()
    touched = set(records.loc[records["key"].isin(keys), "resident_id"])
    return [r for r in counts.index[counts.isin(sizes)] if r not in touched]


def members(folder: Path, resident_id: str) -> list[str]:
    records = records_of(folder)
    return sorted(records.loc[records["resident_id"] == resident_id, "key"])


def assert_message(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and 'File "' not in body
    message = response.get_json()["error"]
    for word in words:
        assert word in message, message
    return message


# -- the page and its JSON --------------------------------------------------------------------

def test_the_page_carries_the_banner_and_loads_only_its_own_script_and_style(folder):
    client = create_app(folder).test_client()
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "OFFICIAL-SENSITIVE" in html and "this page shows personal data" in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and not [s for s in sources if not (s.startswith("/static/") or s.startswith("data:") or s == "/")]
    for source in (s for s in sources if s.startswith("/static/")):
        served = client.get(source)
        assert served.status_code == 200 and len(served.data) > 300, source
    # The page shell, banner and shared styles are the report's own templates.
    assert "/static/shared.css" in sources and ".banner" in client.get("/static/shared.css").get_data(as_text=True)
    assert "http://" not in client.get("/static/review.js").get_data(as_text=True).replace("http://127.0.0.1", "")


def test_the_queue_shows_the_first_pair_side_by_side_with_its_evidence(folder):
    queue = queue_of(folder)
    answer = create_app(folder).test_client().get("/api/queue").get_json()
    pair, first = answer["pair"], queue.iloc[0]
    assert pair["review_id"] == 1
    assert (pair["left"]["key"], pair["right"]["key"]) == (f"{first.source_l}:{first.record_id_l}",
                                                             f"{first.source_r}:{first.record_id_r}")
    states = {f["field"]: f["state"] for f in pair["fields"]}
    assert set(states.values()) <= {"agree", "partly", "differ", "missing"}
    for field in pair["fields"]:
        if field["left"] is None or field["right"] is None:
            assert field["state"] == "missing"
        elif field["left"] == field["right"]:
            assert field["state"] == "agree"
    assert pair["match_probability"] == pytest.approx(float(first.match_probability))
    bars = pair["waterfall"]["bars"]
    assert bars[0]["name"] == "prior"
    assert sum(b["weight"] for b in bars) == pytest.approx(float(first.match_weight), abs=0.01)
    assert answer["progress"] == {"total": len(queue), "decided": 0, "skipped": 0, "left": len(queue)}


def test_blind_review_sends_nothing_of_the_models_view(folder):
    for client, path in ((create_app(folder, blind=True).test_client(), "/api/queue"),
                         (create_app(folder).test_client(), "/api/queue?blind=1")):
        pair = client.get(path).get_json()["pair"]
        assert pair["blind"] is True
        assert not {"match_probability", "match_weight", "waterfall", "same_resident"} & set(pair)
        assert pair["left"]["resident_id"] is None and pair["right"]["resident_id"] is None


def test_a_decision_goes_into_the_store_and_the_queue_moves_on(folder):
    client = create_app(folder).test_client()
    first = queue_of(folder).iloc[0]
    answer = client.post("/api/decide", json={"review_id": 1, "decision": "match", "note": "same flat, same man",
                                              "reviewer": "Ann", "store_version": 0})
    assert answer.status_code == 200 and answer.get_json()["recorded"] == 1
    assert "next `residentview link`" in answer.get_json()["message"]
    store = read_store(folder)
    assert len(store) == 1
    row = store.iloc[0]
    assert tuple(row[c] for c in PAIR) == store_pair(first)
    assert (row.decision, row.reviewer, row.note, row.origin) == ("match", "Ann", "same flat, same man", "review page")
    assert row.match_probability == pytest.approx(float(first.match_probability))
    following = client.get("/api/queue").get_json()
    assert following["pair"]["review_id"] == 2 and following["progress"]["decided"] == 1
    assert client.get("/api/queue?skip=2").get_json()["pair"]["review_id"] == 3


def test_a_pair_decided_meanwhile_by_another_reviewer_is_not_decided_again(folder):
    ann, bob = create_app(folder).test_client(), create_app(folder).test_client()
    shown = bob.get("/api/queue").get_json()
    assert ann.post("/api/decide", json={"review_id": 1, "decision": "match", "reviewer": "Ann",
                                         "store_version": 0}).status_code == 200
    refused = bob.post("/api/decide", json={"review_id": shown["pair"]["review_id"], "decision": "non-match",
                                            "reviewer": "Bob", "store_version": shown["store_version"]})
    assert_message(refused, 409, "decided meanwhile by Ann", "nothing was recorded")
    assert [d for _, d, _, _ in stored(folder)] == ["match"]


@pytest.mark.parametrize("method, path, body, status, words", [
    ("get", "/api/resident/RNOSUCHONE", None, 404, ["no resident 'RNOSUCHONE'"]),
    ("post", "/api/find", {"query": "council_tax:NOSUCH"}, 404, ["no record council_tax:NOSUCH", "Search by name"]),
    ("post", "/api/find", {"query": "nowhere:1"}, 404, ["no source 'nowhere'"]),
    ("post", "/api/decide", {"review_id": 999999, "decision": "match", "reviewer": "Ann", "store_version": 0}, 404,
     ["no pair 999999"]),
    ("post", "/api/decide", {"review_id": 1, "decision": "maybe", "reviewer": "Ann", "store_version": 0}, 400,
     ["unknown decision 'maybe'"]),
    ("post", "/api/decide", {"review_id": 1, "decision": "match", "store_version": 0}, 400, ["say who you are"]),
    ("post", "/api/decide", {"review_id": 1, "decision": "match", "reviewer": "Ann"}, 400, ["reload"]),
    ("post", "/api/split", {"resident_id": "RNOSUCHONE", "record": "council_tax:X", "reviewer": "Ann",
                            "store_version": 0}, 404, ["no resident"]),
    ("post", "/api/merge", {"resident_id": "RNOSUCHONE", "other": "x", "reviewer": "Ann", "store_version": 0}, 404,
     ["no resident"]),
    ("post", "/api/undo", {"reviewer": "Ann", "ids": [1]}, 404, ["nothing of yours to undo"]),
])
def test_unknown_ids_and_bad_requests_get_a_message_and_change_nothing(folder, method, path, body, status, words):
    client = create_app(folder).test_client()
    response = client.get(path) if method == "get" else client.post(path, json=body)
    assert_message(response, status, *words)
    assert not len(read_store(folder))


def test_requests_the_page_cannot_read_get_a_message_too(folder):
    client = create_app(folder).test_client()
    assert_message(client.post("/api/decide", data="review_id=1", content_type="text/plain"), 400, "reload the page")
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "no such page" in missing.get_data(as_text=True)
    assert_message(client.get("/api/queue", headers={"Host": "rebound.example"}), 400, "only at http://127.0.0.1")


def test_split_and_merge_are_recorded_as_decisions_and_undone_latest_first(folder):
    client = create_app(folder).test_client()
    resident_id, other_resident = residents_apart_from(folder, set())[:2]
    keys, theirs = members(folder, resident_id), members(folder, other_resident)
    who = {"reviewer": "Ann", "store_version": 0}

    split = client.post("/api/split", json={**who, "resident_id": resident_id, "record": keys[0]})
    assert split.status_code == 200 and "next `residentview link`" in split.get_json()["message"]
    version = split.get_json()["store_version"]
    merge = client.post("/api/merge", json={**who, "store_version": version, "resident_id": resident_id,
                                            "other": other_resident})
    assert merge.status_code == 200
    split_pairs = {key_pair(keys[0], k) for k in keys[1:]}
    after = stored(folder)
    assert {p for p, d, _, _ in after[:-1]} == split_pairs and {d for _, d, _, _ in after[:-1]} == {"non-match"}
    merged, word, _, origin = after[-1]
    assert word == "match" and origin == "review page"
    assert {f"{merged[0]}:{merged[1]}", f"{merged[2]}:{merged[3]}"} & set(keys)
    assert {f"{merged[0]}:{merged[1]}", f"{merged[2]}:{merged[3]}"} & set(theirs)
    shown = client.get("/api/resident/" + resident_id).get_json()
    assert {d["status"] for d in shown["decisions"]} == {"made after this run: takes effect at the next `residentview link`"}

    for expected in ([merged], sorted(split_pairs)):
        changes = client.get("/api/changes?reviewer=Ann").get_json()
        undone = client.post("/api/undo", json={"reviewer": "Ann", "ids": changes["undoable"]["ids"]})
        assert undone.status_code == 200 and "never deletes" in undone.get_json()["message"]
        rows = stored(folder)[-len(expected):]
        assert sorted(p for p, _, _, _ in rows) == sorted(expected)
        assert {d for _, d, _, _ in rows} == {"unsure"}  # nothing was in force before on these pairs
        assert all(o.startswith("review page: undo of decision") for _, _, _, o in rows)
    assert_message(client.post("/api/undo", json={"reviewer": "Ann", "ids": []}), 404, "nothing of yours to undo")
    listed = client.get("/api/changes?reviewer=Ann").get_json()["changes"]
    assert [c["undone"] for c in listed] == [False] * len(keys) + [True] * len(keys)


def split_after_an_earlier_decision(folder: Path) -> tuple[list[str], list[int]]:
    """A file decides a match between two records of a resident; Ann then splits the first of
    them out on the page. Returns the resident's records and the ids of Ann's decisions."""
    resident_id = residents_apart_from(folder, set())[0]
    keys = members(folder, resident_id)
    earlier = pd.DataFrame([{**dict(zip(PAIR, key_pair(keys[0], keys[1]))), "decision": "match"}])
    record_decisions(folder, earlier, origin="review apply earlier.csv", reviewer="Imported")
    client = create_app(folder).test_client()
    version = client.get("/api/resident/" + resident_id).get_json()["store_version"]
    assert client.post("/api/split", json={"reviewer": "Ann", "store_version": version, "resident_id": resident_id,
                                           "record": keys[0]}).status_code == 200
    return keys, client.get("/api/changes?reviewer=Ann").get_json()["undoable"]["ids"]


def test_undo_restores_the_decision_in_force_before(folder):
    keys, ids = split_after_an_earlier_decision(folder)
    assert create_app(folder).test_client().post("/api/undo", json={"reviewer": "Ann", "ids": ids}).status_code == 200
    restored = {p: d for p, d, _, _ in stored(folder)[-len(ids):]}
    assert restored.pop(key_pair(keys[0], keys[1])) == "match"  # what the earlier file had decided
    assert set(restored.values()) == {"unsure"}  # no decision before on the others


def test_undo_never_overrules_a_decision_made_after(folder):
    keys, ids = split_after_an_earlier_decision(folder)
    later = pd.DataFrame([{**dict(zip(PAIR, key_pair(keys[0], keys[-1]))), "decision": "non-match", "note": "seen"}])
    record_decisions(folder, later, origin="review apply later.csv", reviewer="Bob")
    before = stored(folder)
    refused = create_app(folder).test_client().post("/api/undo", json={"reviewer": "Ann", "ids": ids})
    assert_message(refused, 409, "decided again since", "Bob", "nothing was undone")
    assert stored(folder) == before


def test_an_undone_queue_decision_puts_the_pair_back_in_the_queue(folder):
    client = create_app(folder).test_client()
    client.post("/api/decide", json={"review_id": 1, "decision": "unsure", "reviewer": "Ann", "store_version": 0})
    assert client.get("/api/queue").get_json()["pair"]["review_id"] == 2
    ids = client.get("/api/changes?reviewer=Ann").get_json()["undoable"]["ids"]
    client.post("/api/undo", json={"reviewer": "Ann", "ids": ids})
    assert client.get("/api/queue").get_json()["pair"]["review_id"] == 1
    assert client.get("/api/changes?reviewer=Bob").get_json()["undoable"] is None  # one's own decisions only


def test_a_run_replacing_the_folder_asks_the_page_to_reload(folder):
    client = create_app(folder).test_client()
    loaded = client.get("/").get_data(as_text=True)
    stamp = re.search(r'data-run="([^"]+)"', loaded).group(1)
    run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    run["run_timestamp"] = "2099-01-01T00:00:00+00:00"
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    for response in (client.get("/api/queue", headers={RUN_HEADER: stamp}),
                     client.post("/api/decide", headers={RUN_HEADER: stamp}, json={
                         "review_id": 1, "decision": "match", "reviewer": "Ann", "store_version": 0})):
        assert_message(response, 409, "replaced by a new run", "reload")
        assert response.get_json()["reload"] is True
    assert not len(read_store(folder))
    reloaded = client.get("/").get_data(as_text=True)
    assert 'data-run="2099-01-01T00:00:00+00:00"' in reloaded
    assert client.get("/api/queue", headers={RUN_HEADER: "2099-01-01T00:00:00+00:00"}).status_code == 200


def test_an_unexpected_error_is_a_message_without_data_or_stack_trace(folder, monkeypatch, caplog):
    import residentview.review.web.queue as queue

    def broken(*args, **kwargs):
        raise KeyError("MOHAMMED ALI 1970-01-01")

    monkeypatch.setattr(queue, "pair_card", broken)
    response = create_app(folder).test_client().get("/api/queue")
    message = assert_message(response, 500, "unexpected error", "KeyError")
    assert "MOHAMMED" not in response.get_data(as_text=True) and "MOHAMMED" not in caplog.text
    assert "Reload" in message


def test_search_by_name_only_behind_its_switch(folder):
    names = pd.read_parquet(folder / "records.parquet", columns=["source", "record_id", "first_name", "last_name"])
    named = names.dropna().iloc[0]
    resident_id = records_of(folder).set_index("key").loc[f"{named.source}:{named.record_id}", "resident_id"]
    client = create_app(folder).test_client()
    query = f"{named.first_name} {named.last_name}"
    assert_message(client.post("/api/find", json={"query": query}), 404, "Search by name")
    found = client.post("/api/find", json={"query": query.lower(), "by_name": True}).get_json()["matches"]
    assert resident_id in {m["resident_id"] for m in found}
    assert client.post("/api/find", json={"query": f"{named.source}:{named.record_id}"}).get_json()["resident_id"] == resident_id
    assert client.post("/api/find", json={"query": resident_id}).get_json()["resident_id"] == resident_id


def test_the_server_listens_on_127_0_0_1_only_and_logs_paths_only(folder, caplog):
    server = review_server(folder, port=0)
    assert server.socket.getsockname()[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    names = pd.read_parquet(folder / "records.parquet", columns=["last_name", "date_of_birth"]).dropna().iloc[0]
    base = f"http://127.0.0.1:{server.port}"
    try:
        with caplog.at_level(logging.INFO, logger="residentview.review.web.requests"):
            urllib.request.urlopen(f"{base}/api/queue?skip=1&name={names.last_name}").read()
            body = json.dumps({"query": names.last_name, "by_name": True}).encode()
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/find", data=body,
                                                          headers={"Content-Type": "application/json"})).read()
    finally:
        server.shutdown()
        server.server_close()
    lines = [r.getMessage() for r in caplog.records if r.name == "residentview.review.web.requests"]
    assert lines == ["GET /api/queue 200", "POST /api/find 200"]
    dob = pd.Timestamp(names.date_of_birth).strftime("%Y-%m-%d")
    assert names.last_name not in caplog.text and dob not in caplog.text


def test_serve_on_a_folder_that_is_not_a_run_is_one_line_exit_2(tmp_path, folder):
    result = CliRunner().invoke(main, ["review", "serve", str(tmp_path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "not a residentview output folder" in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = CliRunner().invoke(main, ["review", "serve", str(folder), "--port", str(taken.getsockname()[1])])
    assert busy.exit_code == 2 and len(busy.stderr.strip().splitlines()) == 1 and "--port" in busy.stderr


# -- in a real browser ------------------------------------------------------------------------

def chromium() -> str:
    path = shutil.which("chromium")
    assert path, ("the review page's browser tests need Debian's chromium; `make test` installs it "
                  "(apt-get install -y chromium)")
    return path


def test_a_reviewers_session_in_a_browser_is_stored_exactly_and_honoured_by_the_next_link(folder):
    from playwright.sync_api import sync_playwright

    queue = queue_of(folder).head(5)
    # Against the model where it can be: a match where the run kept two records apart, a
    # non-match where it joined them; then unsure, skip, and the model contradicted again.
    against = ["n" if r.resident_id_l == r.resident_id_r else "m" for r in queue.itertuples()]
    keys = [against[0], against[1], "u", "s", against[4]]
    queued = set(queue["source_l"] + ":" + queue["record_id_l"]) | set(queue["source_r"] + ":" + queue["record_id_r"])
    first, second = residents_apart_from(folder, queued)[:2]
    first_keys, second_keys = members(folder, first), members(folder, second)

    server = review_server(folder, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    errors: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), headless=True)
            page = browser.new_page()
            page.set_default_timeout(10_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda dialog: dialog.accept())  # "Split ... out of resident ...?"
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.fill("#who-name", REVIEWER)
            page.press("#who-name", "Enter")
            for review_id, key in enumerate(keys, start=1):
                page.wait_for_selector(f'#pair[data-review-id="{review_id}"]')
                page.keyboard.press(key)
            page.wait_for_selector('#pair[data-review-id="6"]')
            assert page.get_attribute("#progress", "data-decided") == "4"

            def split(resident_id: str, record: str) -> None:
                page.click("nav [data-tab=resident]")
                page.fill("#query", resident_id)
                page.press("#query", "Enter")
                page.wait_for_selector(f'#resident[data-resident-id="{resident_id}"] .record')
                page.click(f'#resident .record[data-key="{record}"] button.split')
                page.wait_for_selector("#resident td:has-text('takes effect at the next')")

            split(first, first_keys[0])
            page.click("nav [data-tab=changes]")
            page.click("#undo-button")
            page.wait_for_selector("#changes tr.undone")
            assert "never deletes" in page.inner_text("#message")
            split(second, second_keys[-1])
            banner = page.inner_text(".banner")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    assert not errors and "OFFICIAL-SENSITIVE" in banner

    words = {"m": "match", "n": "non-match", "u": "unsure"}
    asked = [(store_pair(row), words[key]) for row, key in zip(queue.to_dict("records"), keys) if key != "s"]
    split_away = [key_pair(first_keys[0], k) for k in first_keys[1:]]
    split_stays = [key_pair(second_keys[-1], k) for k in second_keys[:-1]]
    made = stored(folder)
    asked_rows, made = made[:len(asked)], made[len(asked):]
    assert asked_rows == [(p, d, REVIEWER, "review page") for p, d in asked]
    undo_origin = "review page: undo of decisions " + ", ".join(
        str(i) for i in range(len(asked) + 1, len(asked) + len(split_away) + 1))
    segments = [(split_away, "non-match", "review page"), (split_away, "unsure", undo_origin),
                (split_stays, "non-match", "review page")]
    for pairs, decision, origin in segments:
        taken, made = made[:len(pairs)], made[len(pairs):]
        assert sorted(taken) == sorted((p, decision, REVIEWER, origin) for p in pairs)
    assert made == []  # and nothing else

    result = link(folder.parent / "data" / "later" / "council.yaml", previous=folder, progress=False)
    result.write(folder)
    resident_of = records_of(folder).set_index("key")["resident_id"]

    def together(pair: tuple) -> bool:
        return resident_of[f"{pair[0]}:{pair[1]}"] == resident_of[f"{pair[2]}:{pair[3]}"]

    assert all(together(p) for p, d in asked if d == "match")
    assert not any(together(p) for p, d in asked if d == "non-match")
    assert not any(together(p) for p in split_stays)
    assert {"match", "non-match"} <= {d for _, d in asked}
