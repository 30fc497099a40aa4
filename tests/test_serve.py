"""``dynmask serve`` (issue 40): the endpoints give what the commands give, concurrent requests are batched
together, and every bad request gets a 4xx with one line (never a 5xx or a hang); a full queue is a 503
with Retry-After; shutting down answers the accepted requests first."""

import asyncio
import json
import threading

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from dynmask.cli import main  # noqa: E402
from dynmask.cli.serve import cores, processes_and_threads  # noqa: E402
from dynmask.serve import MicroBatcher, QueueFull, create_app  # noqa: E402


def _client(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _with_lifespan(app, body):
    async with app.router.lifespan_context(app):
        async with _client(app) as client:
            return await body(client)


def test_predict_answers_what_dynmask_predict_prints(classifier_run, capsys):
    texts = ["the movie was ??? fun", "???", "a dull and boring plot with actors", ""]
    capsys.readouterr()
    assert main(["predict", "--model", str(classifier_run), *sum((["--text", t] for t in texts), [])]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    app = create_app(classifier_run)

    async def body(client):
        r = await client.post("/predict", json={"texts": texts})
        assert r.status_code == 200
        return r.json()["predictions"]

    assert asyncio.run(_with_lifespan(app, body)) == printed


def test_concurrent_requests_are_batched_together(classifier_run):
    app = create_app(classifier_run, max_batch=64, wait_ms=50)

    async def body(client):
        replies = await asyncio.gather(
            *(client.post("/predict", json={"texts": [f"film {i} was good"]}) for i in range(40))
        )
        assert all(r.status_code == 200 for r in replies)
        assert [r.json()["predictions"][0]["text"] for r in replies] == [f"film {i} was good" for i in range(40)]
        return (await client.get("/health")).json()["texts"]

    stats = asyncio.run(_with_lifespan(app, body))
    assert stats["largest_batch"] > 1 and stats["batches"] < 40


@pytest.mark.parametrize(
    "payload, status, needle",
    [
        (b"{not json", 422, "json"),
        (json.dumps({"texts": []}).encode(), 422, "at least 1"),
        (json.dumps({"texts": [1, 2]}).encode(), 422, "string"),
        (json.dumps({"text": ["a"]}).encode(), 422, "texts"),
        (json.dumps({"texts": ["a b"], "confidences": [[0.5]]}).encode(), 422, "confidence"),
        (json.dumps({"texts": ["a", "b"], "confidences": [None]}).encode(), 422, "one per text"),
        (json.dumps({"texts": ["x" * 3000]}).encode(), 413, "over 2000 bytes"),
    ],
)
def test_bad_requests_get_a_4xx_with_one_line(classifier_run, payload, status, needle):
    app = create_app(classifier_run, max_body=2000)

    async def body(client):
        return await client.post("/predict", content=payload, headers={"content-type": "application/json"})

    r = asyncio.run(_with_lifespan(app, body))
    assert r.status_code == status, r.text
    assert needle in r.text.lower()


def test_a_body_sent_without_a_length_is_counted_as_it_arrives(classifier_run):
    """Chunked bodies (no Content-Length) are read up to the limit: 413 past it, parsed as usual below it."""
    app = create_app(classifier_run, max_body=2000)
    small = json.dumps({"texts": ["a fine film"]}).encode()
    large = json.dumps({"texts": ["x" * 3000]}).encode()

    async def chunks(data):  # an iterator body: httpx sends it chunked, without a length
        for i in range(0, len(data), 500):
            yield data[i : i + 500]

    async def body(client):
        return [await client.post("/predict", content=chunks(d), headers={"content-type": "application/json"})
                for d in (small, large)]  # fmt: skip

    ok, refused = asyncio.run(_with_lifespan(app, body))
    assert ok.status_code == 200 and ok.json()["predictions"][0]["text"] == "a fine film"
    assert refused.status_code == 413 and "over 2000 bytes" in refused.text


def test_a_text_longer_than_the_model_is_cut_as_predict_cuts_it(classifier_run):
    app = create_app(classifier_run)
    long = " ".join(["good"] * 5000)

    async def body(client):
        return (await client.post("/predict", json={"texts": [long]})).json()["predictions"][0]

    row = asyncio.run(_with_lifespan(app, body))
    assert row["label"] in ("neg", "pos") and row["observed_tokens"] <= 16


def test_a_full_queue_is_a_503_with_retry_after_and_shutdown_answers_accepted_requests():
    release = threading.Event()

    def slow(items):
        release.wait(5)
        return [i * 2 for i in items]

    async def scenario():
        batcher = MicroBatcher(slow, max_batch=4, wait_ms=0, max_queue=3)
        accepted = asyncio.ensure_future(batcher.submit([1, 2, 3]))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull):
            await batcher.submit([4])
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull, match="shutting down"):
            await batcher.submit([5])
        release.set()
        await closing
        return await accepted

    assert asyncio.run(scenario()) == [2, 4, 6]


def test_without_a_wait_window_the_requests_already_queued_still_run_as_one_batch():
    sizes, release = [], threading.Event()

    def fn(items):
        sizes.append(len(items))
        release.wait(5)  # the first batch holds the worker while the others queue up
        return list(items)

    async def scenario():
        batcher = MicroBatcher(fn, max_batch=64, wait_ms=0)
        first = asyncio.ensure_future(batcher.submit([0]))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit([i])) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        release.set()
        answers = [await first] + [await r for r in rest]
        await batcher.close()
        return answers

    assert asyncio.run(scenario()) == [[i] for i in range(6)]
    assert sizes == [1, 5]  # the five queued while the first ran: one batch, not five


def test_the_http_answer_to_a_full_queue(classifier_run):
    app = create_app(classifier_run, max_queue=2)

    async def body(client):
        return await client.post("/predict", json={"texts": ["a", "b", "c"]})

    r = asyncio.run(_with_lifespan(app, body))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"


# ------------------------------------------------------------------------------------------------ series
@pytest.fixture(scope="module")
def series_runs(tmp_path_factory):
    from conftest import small_impute_args

    folder = tmp_path_factory.mktemp("serve-series")
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"date": [str(d.date()) for d in pd.date_range("2020-01-01", periods=n, freq="D")]})
    for j, name in enumerate(("a", "b")):
        v = 10 + 3 * np.sin(np.arange(n) / 3 + j) + rng.normal(0, 0.2, n)
        frame[name] = np.where(rng.random(n) < 0.2, np.nan, np.round(v, 3))
    data = folder / "d.csv"
    frame.to_csv(data, index=False)
    assert main(small_impute_args(data, folder / "imp", epochs=1)) == 0
    forecast = ["train", "forecast", "--data", str(data), "--output", str(folder / "fc"), "--horizon", "3",
                "--epochs", "1", "--d-model", "16", "--heads", "2", "--layers", "1", "--no-progress"]  # fmt: skip
    assert main(forecast) == 0
    return folder, frame


def _rows(frame):
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def test_impute_and_forecast_endpoints_match_the_commands(series_runs, tmp_path):
    folder, frame = series_runs
    part = frame.iloc[:60]
    rows = _rows(part)
    rows[3]["a"] = float("nan")  # NaN and inf read as missing, as the CSV readers do
    rows[4]["b"] = float("inf")
    part.iloc[:, :].to_csv(tmp_path / "in.csv", index=False)

    async def impute(client):
        r = await client.post(
            "/impute", content=json.dumps({"rows": rows}), headers={"content-type": "application/json"}
        )
        assert r.status_code == 200, r.text
        return r.json()["rows"]

    served = asyncio.run(_with_lifespan(create_app(folder / "imp"), impute))
    assert (
        main(
            [
                "impute",
                "--model",
                str(folder / "imp"),
                "--input",
                str(tmp_path / "in.csv"),
                "--output",
                str(tmp_path / "o.csv"),
            ]
        )
        == 0
    )
    filled = pd.read_csv(tmp_path / "o.csv")
    for t, (row, got) in enumerate(zip(rows, served)):
        for name in ("a", "b"):
            if row[name] is not None and np.isfinite(row[name]):
                assert got[name] == row[name]  # observed values returned as sent
            elif t not in (3, 4):
                assert got[name] == pytest.approx(filled[name][t], rel=1e-6)  # the CSV writes 7 digits
            assert np.isfinite(got[name])

    async def forecast(client):
        r = await client.post("/forecast", json={"rows": _rows(part), "interval": True})
        assert r.status_code == 200, r.text
        return r.json()["rows"]

    ahead = asyncio.run(_with_lifespan(create_app(folder / "fc"), forecast))
    assert [r["date"] for r in ahead] == [
        str(d.date()) for d in pd.date_range(part["date"].iloc[-1], periods=4, freq="D")[1:]
    ]
    assert all(r["a_lo"] <= r["a"] <= r["a_hi"] for r in ahead)


def test_series_endpoints_refuse_bad_rows(series_runs):
    folder, frame = series_runs
    app = create_app(folder / "imp")

    async def body(client):
        out = []
        payloads = [
            {"rows": []},
            {"rows": [{"date": "x", "a": "high", "b": 1}]},
            {"rows": [{"date": "x", "zz": 1}]},
            {"rows": [{"date": "x", "a": 1, "b": 2}, {"date": "y", "a": 1}]},
        ]
        for payload in payloads:
            out.append(await client.post("/impute", json=payload))
        out.append(
            await client.post("/forecast", json={"rows": _rows(frame.iloc[:5])})
        )  # an imputer serves no forecast
        return out

    replies = asyncio.run(_with_lifespan(app, body))
    assert [r.status_code for r in replies] == [422] * 5
    assert "number or null" in replies[1].text and "zz" in replies[2].text and "same variables" in replies[3].text


def test_the_server_on_an_onnx_export_answers_what_predict_prints_with_it(classifier_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    onnx = tmp_path / "m.onnx"
    assert main(["export", "--model", str(classifier_run), "--output", str(onnx)]) == 0
    texts = ["the movie was ??? fun", "a dull and boring plot with actors"]
    capsys.readouterr()
    assert main(["predict", "--model", str(onnx), *sum((["--text", t] for t in texts), [])]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    async def body(client):
        return (await client.post("/predict", json={"texts": texts})).json()["predictions"]

    served = asyncio.run(_with_lifespan(create_app(onnx), body))
    assert served == printed
    eager = asyncio.run(_with_lifespan(create_app(classifier_run), body))
    assert [r["label"] for r in eager] == [r["label"] for r in served]  # PyTorch and ONNX agree


def test_impute_endpoint_keeps_fills_inside_the_datas_bounds(series_runs):
    """As ``dynmask impute`` by default: a variable capped in training is never filled above its cap."""
    from dynmask.serve.models import ServedModel

    folder, frame = series_runs
    served = ServedModel(folder / "imp")
    cap = 9.0  # below most values: unclipped fills would exceed it
    served.imputer.train_capped = np.array([True, False])
    served.imputer.train_max = np.array([cap, np.inf])
    rows = _rows(frame.iloc[:60])
    holes = [t for t, row in enumerate(rows) if row["a"] is None]
    out = served.impute(rows, "date")
    assert holes and all(out[t]["a"] <= cap for t in holes)
    assert all(out[t]["a"] == rows[t]["a"] for t in range(60) if t not in holes)  # observed cells as sent


def test_worker_processes_share_the_port_and_answer_what_predict_prints(classifier_run, capsys):
    """``serve --workers 2``: two processes, each with its model, answer on one port (a new connection may
    reach either); their answers are the ones ``dynmask predict`` prints; SIGTERM stops them cleanly."""
    import socket
    import subprocess
    import sys
    import time

    texts = ["the movie was ??? fun", "a dull and boring plot with actors"]
    assert main(["predict", "--model", str(classifier_run), *sum((["--text", t] for t in texts), [])]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = ["serve", "--model", str(classifier_run), "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynmask", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        pids, deadline = set(), time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline and proc.poll() is None:  # a new connection each
            try:
                pids.add(httpx.get(f"{url}/health", headers={"connection": "close"}, timeout=5).json()["pid"])
            except httpx.HTTPError:
                time.sleep(0.2)
        assert len(pids) == 2 and proc.pid not in pids, pids
        assert httpx.get(f"{url}/health").json()["model_threads"] == processes_and_threads(2, None)[1]
        answers = [httpx.post(f"{url}/predict", json={"texts": texts}, headers={"connection": "close"}).json()
                   for _ in range(4)]  # fmt: skip
        assert all(a["predictions"] == printed for a in answers)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "in 2 processes" in out


def test_serve_runs_a_process_per_core_and_shares_the_cores_out():
    """``serve``'s default: one worker process per available core, the cores shared out as model threads
    (at least one each); what is given is kept."""
    assert processes_and_threads(None, None, available=2) == (2, 1)
    assert processes_and_threads(None, None, available=16) == (16, 1)
    assert processes_and_threads(1, None, available=16) == (1, 16)
    assert processes_and_threads(4, None, available=16) == (4, 4)
    assert processes_and_threads(3, None, available=2) == (3, 1)
    assert processes_and_threads(1, 2, available=16) == (1, 2)
    assert processes_and_threads(None, 3, available=2) == (2, 3)


def test_the_cores_counted_are_the_ones_this_process_may_use(monkeypatch):
    """``serve`` counts the cores its affinity and a container's quota allow (joblib); a soft limit set in
    the environment counts too, and shapes the default plan."""
    pytest.importorskip("joblib")
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "1")
    assert cores() == 1 and processes_and_threads(None, None) == (1, 1)


def test_onnx_exports_of_series_runs_serve_the_runs_answers(series_runs, tmp_path):
    """An exported imputer and forecaster, loaded once for the server (the runner that names the task is
    the one that runs), fill and forecast as their runs do."""
    pytest.importorskip("onnxruntime")
    from dynmask.serve.models import ServedModel

    folder, frame = series_runs
    rows = _rows(frame.iloc[:60])
    for run in ("imp", "fc"):
        assert main(["export", "--model", str(folder / run), "--output", str(tmp_path / f"{run}.onnx")]) == 0
    eager, exported = ServedModel(folder / "imp"), ServedModel(tmp_path / "imp.onnx", threads=1)
    a, b = eager.impute(rows, None), exported.impute(rows, None)
    assert [r["date"] for r in a] == [r["date"] for r in b]
    assert np.allclose([[r["a"], r["b"]] for r in a], [[r["a"], r["b"]] for r in b], atol=1e-4)
    eager, exported = ServedModel(folder / "fc"), ServedModel(tmp_path / "fc.onnx", threads=1)
    a, b = eager.forecast(rows, None, False), exported.forecast(rows, None, False)
    assert [r["date"] for r in a] == [r["date"] for r in b] and len(a) == 3
    keys = [k for k in a[0] if k != "date"]
    assert np.allclose([[r[k] for k in keys] for r in a], [[r[k] for k in keys] for r in b], atol=1e-4)
