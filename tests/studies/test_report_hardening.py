"""Hostile run folders: nothing outside the folder leaks into a report, wrong types get a note, HTML is escaped."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
from pathlib import Path

import pytest

from etude.cli import main
from etude.errors import BadInputError
from etude.studies import Claim, Result, collect_results, write_report
from etude.studies.html import write_html
from etude.studies.report import artifact_file
from etude.studies.server import check_port, make_server, serve

SECRET = b"TOP-SECRET-OUTSIDE-THE-RUN-FOLDER"


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A run folder whose one study names artifacts outside it, and links out of it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n" + SECRET)
    (outside / "secret.txt").write_bytes(SECRET)
    run = tmp_path / "run"
    study = run / "lola"
    study.mkdir(parents=True)
    (study / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"inside")
    (study / "leak.wav").symlink_to(outside / "secret.txt")
    (study / "leak.png").symlink_to(outside / "secret.png")
    (study / "passwd_link.txt").symlink_to(outside / "secret.txt")
    (study / "inner_link.png").symlink_to(study / "ok.png")  # a link that stays inside is fine
    (study / "sub").mkdir()
    (run / "escape").symlink_to(outside, target_is_directory=True)  # a study folder that is a link out
    names = [
        "ok.png",
        "../../outside/secret.png",
        str(outside / "secret.png"),
        "leak.wav",
        "leak.png",
        "inner_link.png",
        "sub",
        "..\\..\\outside\\secret.png",
        "",
    ]
    Result(
        "lola",
        "smoke",
        3,
        claims=[Claim("c", "<script>alert(1)</script>", "<b>p</b>", "crit", "1", "holds")],
        artifacts=names,
    ).write(study)
    return run


def test_report_embeds_only_files_inside_the_run_folder(hostile: Path) -> None:
    md = write_report(hostile).read_bytes()
    page = write_html(hostile).read_bytes()
    for text in (md, page):
        assert SECRET not in text
        assert base64.b64encode(b"\x89PNG\r\n\x1a\n" + SECRET) not in text
        assert base64.b64encode(SECRET) not in text
    assert base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"inside").decode().encode() in page  # ok.png and the inner link
    assert page.count(base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"inside")) == 2
    lines = md.decode().splitlines()
    assert "- ../../outside/secret.png (refused: outside the run folder)" in lines
    assert f"- {hostile.parent / 'outside' / 'secret.png'} (refused: outside the run folder)" in lines
    assert "- leak.wav (refused: a link that leaves the run folder)" in lines
    assert "- sub (refused: not a regular file)" in lines
    entries = {name: note for name, _, note in collect_results(hostile)}
    assert entries["escape"] == "refused: a link that leaves the run folder"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../x", "refused: outside the run folder"),
        ("/etc/passwd", "refused: outside the run folder"),
        ("C:\\x.png", "refused: outside the run folder"),
        ("a/../../x", "refused: outside the run folder"),
        ("nope.png", "missing"),
        ("", "refused: not a file name"),
        ("a\x00b", "refused: not a file name"),
    ],
)
def test_artifact_file_refuses_names_that_leave(tmp_path: Path, name: str, why: str) -> None:
    (tmp_path / "s").mkdir()
    assert artifact_file(tmp_path, "s", name) == (None, why)


def test_report_html_and_md_escape_injected_markup(hostile: Path) -> None:
    md = write_report(hostile).read_text()
    page = write_html(hostile).read_text()
    assert "<script>alert(1)</script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "<b>p</b>" not in md
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize(
    ("field", "value", "note"),
    [
        ("wall_time_s", None, "wall_time_s is null"),
        ("wall_time_s", "slow", "wall_time_s is a string"),
        ("metrics", [1, 2], "metrics is a list"),
        ("artifacts", [1, 2.5], "2 artifact name(s) are not strings"),
        ("artifacts", 7, "artifacts is an integer"),
        ("seed", "zero", "seed is a string"),
        ("claims", {"a": 1}, "claims is an object"),
        ("status", "exploded", "status is a string"),
        ("settings", json.loads("[" * 200 + "]" * 200), "settings is a list"),
    ],
)
def test_wrong_typed_fields_render_with_a_note(tmp_path: Path, field: str, value, note: str) -> None:
    data = Result("typed", "smoke", 0, claims=[Claim("c", "s", "p", "k", "1", "holds")]).to_dict()
    data[field] = value
    (tmp_path / "typed").mkdir()
    (tmp_path / "typed" / "result.json").write_text(json.dumps(data))
    md = write_report(tmp_path).read_text()
    page = write_html(tmp_path).read_text()
    assert note in md and note in page
    with pytest.raises(BadInputError, match=field if field != "artifacts" or value == 7 else "artifact"):
        Result.from_dict(data)  # strict everywhere else (the runner's resume)


def test_deeply_nested_json_is_a_note(tmp_path: Path) -> None:
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "result.json").write_text('{"metrics": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (tmp_path / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "unreadable result.json (RecursionError)" in write_report(tmp_path).read_text()
    page = write_html(tmp_path).read_text()
    assert "unreadable result.json (RecursionError)" in page and "run.json is unreadable" in page


def test_summary_counts_verdicts_with_their_seeds(tmp_path: Path) -> None:
    claims = [
        Claim("a", "s", "p", "k", "1", "holds"),
        Claim("b", "s", "p", "k", "1", "holds"),
        Claim("c", "s", "p", "k", "1", "fails"),
    ]
    Result("alpha", "smoke", 7, claims=claims).write(tmp_path / "alpha")
    Result("beta", "smoke", 2, claims=claims[:1], status="crashed", error="boom").write(tmp_path / "beta")
    lines = write_report(tmp_path).read_text().splitlines()
    start = lines.index("## Summary")
    assert lines[start + 2] == "| study | holds | fails | inconclusive | not-run |"
    assert "| alpha | 2 (seed 7) | 1 (seed 7) | 0 | 0 |" in lines[start:]
    assert "| beta | 0 | 0 | 0 | 1 (seed 2) |" in lines[start:]  # a crashed study's claims did not run
    page = write_html(tmp_path).read_text()
    assert '<table id="summary">' in page and "<td>2 (seed 7)</td>" in page


# The server.


def _get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host if ":" in host and not host.startswith("[") else f"{host}:{port}")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_server_serves_only_files_inside_the_folder_to_the_loopback(hostile: Path) -> None:
    write_html(hostile)
    server = serve(hostile, port=0, block=False)
    port = server.server_address[1]
    try:
        status, body = _get(port, "/report.html")
        assert status == 200 and b"etude reproduction report" in body
        assert _get(port, "/lola/ok.png") == (200, b"\x89PNG\r\n\x1a\n" + b"inside")
        assert _get(port, "/lola/inner_link.png")[0] == 200
        for path in (
            "/lola/passwd_link.txt",
            "/lola/leak.wav",
            "/escape/secret.txt",
            "/../outside/secret.txt",
            "/lola/%2e%2e/%2e%2e/outside/secret.txt",
            "/lola/",
            "/lola",
            "/lola/sub",
            "/nothing",
        ):
            status, body = _get(port, path)
            assert status == 404, path
            assert SECRET not in body and b"Directory listing" not in body
        assert _get(port, "/")[0] == 302
        for host in ("evil.example", "127.0.0.1.evil.example", "localhost.evil"):
            status, body = _get(port, "/report.html", host=host)
            assert status == 403 and b"etude reproduction report" not in body
        assert _get(port, "/report.html", host="localhost")[0] == 200
        assert _get(port, "/report.html", host="[::1]")[0] == 200
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("port", [-1, 65536, 10**9, True, "80"])
def test_bad_ports_are_refused(tmp_path: Path, port) -> None:
    with pytest.raises(BadInputError, match="--port"):
        check_port(port)
    with pytest.raises(BadInputError):
        make_server(tmp_path, port)


@pytest.mark.parametrize("port", ["-1", "65536", "99999999999"])
def test_cli_refuses_bad_ports_in_one_line(tmp_path: Path, capsys, port: str) -> None:
    assert main(["report", str(tmp_path), "--serve", "--port", port]) == 2
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and "--port" in err and out == ""


def test_cli_prints_the_port_actually_bound(tmp_path: Path, capsys, monkeypatch) -> None:
    from etude.studies import server as server_module

    """--port 0 binds a free port: the line printed names the port the server holds, which answers there."""
    import urllib.request

    bound: list[int] = []
    fetched: list[bytes] = []
    real_serve = server_module.serve

    def once(run_dir, port=8000, block=True, server=None):
        bound.append(server.server_address[1])
        printed = int(capsys.readouterr().out.splitlines()[-1].split("127.0.0.1:")[1].split("/")[0])
        import threading

        server.timeout = 10  # handle_request gives up when nothing comes to the bound port
        thread = threading.Thread(target=server.handle_request)  # answer one request, at the printed port
        thread.start()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{printed}/report.html", timeout=10) as answer:
                fetched.append(answer.read())
        finally:
            thread.join()
        server.server_close()
        print(f"printed {printed}")
        raise KeyboardInterrupt

    assert real_serve is not once
    monkeypatch.setattr(server_module, "serve", once)
    assert main(["report", str(tmp_path), "--serve", "--port", "0"]) == 0
    printed = int(capsys.readouterr().out.split("printed ")[1])
    assert bound and printed == bound[0] != 0
    assert fetched and fetched[0] == (tmp_path / "report.html").read_bytes()


def test_report_folder_with_unwritable_report_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "report.md").mkdir()
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "report.md" in err and os.sep in err


def test_concurrent_result_writes_never_collide(tmp_path: Path) -> None:
    """Two writers, 300 writes of result.json: each used to share `result.json.tmp` and fail 16-22 times."""
    import threading

    errors: list[BaseException] = []

    def writer(k: int) -> None:
        for i in range(150):
            try:
                Result(f"w{k}", "smoke", i, metrics={"i": i}).write(tmp_path)
            except Exception as exc:  # noqa: BLE001 - any failure is the defect under test
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["study"] in ("w0", "w1") and data["metrics"]["i"] == data["seed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # no temporary file left


def test_result_json_never_holds_nan(tmp_path: Path) -> None:
    Result("n", "smoke", 0, metrics={"a": float("nan"), "b": [float("inf")]}).write(tmp_path)
    text = (tmp_path / "result.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"result.json holds {c}"))
    assert data["metrics"] == {"a": "nan", "b": ["inf"]}


def test_runs_over_several_seeds_are_summarised_per_study(tmp_path: Path) -> None:
    """`reproduce --seeds` writes study/seed-k folders: one summary row per study with every seed behind it."""
    for seed, verdict in ((0, "holds"), (1, "holds"), (2, "fails")):
        claim = Claim("c", "s", "p", "k", "1", verdict)
        Result("lola", "smoke", seed, claims=[claim], artifacts=["a.png"]).write(tmp_path / "lola" / f"seed-{seed}")
        (tmp_path / "lola" / f"seed-{seed}" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([seed]))
    (tmp_path / "lola" / "seed-9").symlink_to(tmp_path.parent, target_is_directory=True)
    entries = {name: note for name, _, note in collect_results(tmp_path)}
    assert list(entries)[:3] == ["lola/seed-0", "lola/seed-1", "lola/seed-2"]
    assert entries["lola/seed-9"] == "refused: a link that leaves the run folder"
    lines = write_report(tmp_path).read_text().splitlines()
    assert "| lola | 2 (seeds 0, 1) | 1 (seed 2) | 0 | 0 |" in lines
    assert "![a.png](./lola/seed-1/a.png)" in lines
    page = write_html(tmp_path).read_text()
    assert page.count(base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes([1])).decode()) == 1


def test_a_study_folder_named_like_a_script_url_stays_a_relative_link(tmp_path: Path) -> None:
    """A folder 'javascript:alert(document.domain)' used to become href="javascript:alert(...)/notes.txt"."""
    from etude.studies.html import write_html

    name = "javascript:alert(document.domain)"
    study = tmp_path / name
    study.mkdir()
    (study / "notes.txt").write_text("x")
    Result(name, "smoke", 0, artifacts=["notes.txt"]).write(study)
    page = write_html(tmp_path).read_text()
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs == ["./javascript%3Aalert%28document.domain%29/notes.txt"], hrefs
    text = write_report(tmp_path).read_text()
    assert "](./javascript%3Aalert%28document.domain%29/notes.txt)" in text
    assert "](javascript:" not in text


def test_each_artifact_is_embedded_once_and_the_total_is_capped(tmp_path: Path, monkeypatch) -> None:
    """One image listed 40 times made a 1.1 GB report; many distinct images beyond the cap become links."""
    from etude.studies import html as html_module

    study = tmp_path / "big"
    study.mkdir()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 4000
    for i in range(5):
        (study / f"p{i}.png").write_bytes(png)
    Result("big", "smoke", 0, artifacts=["p0.png"] * 40 + [f"p{i}.png" for i in range(5)]).write(study)
    monkeypatch.setattr(html_module, "EMBED_TOTAL_BYTES", 3 * len(png))  # room for three of the five
    page = html_module.write_html(tmp_path).read_text()
    assert page.count("data:image/png;base64,") == 3  # p0, p1, p2 once each
    assert page.count('href="./big/p3.png"') == 1 and page.count('href="./big/p4.png"') == 1
    assert "embedding budget is spent" in page
    assert len(page) < 10 * len(png)
    assert write_report(tmp_path).read_text().count("](./big/p0.png)") == 1
