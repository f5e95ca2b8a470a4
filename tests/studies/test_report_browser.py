"""report.html in headless Chromium: every study listed, images load, the filter works, audio plays.

Needs Debian's chromium and chromium-driver (`make test` installs them where it can, as root)
and the selenium package (a test extra); skipped with the reason otherwise. The screenshot is
kept in $ETUDE_TEST_ARTIFACTS (default ./test-artifacts) as an artifact of the test run.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import struct
import wave
from pathlib import Path

import pytest

from etude.studies import Claim, Result, write_report
from etude.studies.html import write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    frames = b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * t / rate))) for t in range(int(seconds * rate)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buffer.getvalue()


def _png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [1, 0, 1])
    fig.savefig(path)
    plt.close(fig)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder with a good study (plot + WAV), a crashed one, one unfinished and one of an old schema."""
    good = tmp_path / "good"
    good.mkdir()
    _png(good / "curve.png")
    (good / "sample.wav").write_bytes(_wav())
    claims = [Claim("a", "first claim", "paper 1", "rule", "0.9", "holds"),
              Claim("b", "second claim", "paper 2", "rule", "0.1", "fails"),
              Claim("c", "third claim", "paper 3", "rule", "?", "inconclusive")]
    Result("good", "smoke", 0, claims=claims, artifacts=["curve.png", "sample.wav"],
           metrics={"table": "title line\n\n| x | y |\n|---|---|\n| 1 | 2 |"}).write(good)
    Result("broken", "smoke", 0, claims=[Claim("d", "never ran", "p", "r")], status="crashed",
           error="RuntimeError: boom").write(tmp_path / "broken")
    (tmp_path / "unfinished").mkdir()
    old = Result("old", "smoke", 0, claims=[Claim("e", "old claim", "p", "r", "1", "holds")]).to_dict()
    old["schema_version"] = 0
    (tmp_path / "old").mkdir()
    import json

    (tmp_path / "old" / "result.json").write_text(json.dumps(old))
    return tmp_path


def test_html_is_self_contained_and_notes_broken_folders(run_dir: Path) -> None:
    write_report(run_dir)
    page = write_html(run_dir).read_text()
    assert "src=\"data:image/png;base64," in page and "src=\"data:audio/wav;base64," in page
    assert "http://" not in page and "https://" not in page  # nothing fetched at view time
    for text in ("the study crashed: RuntimeError: boom", "no result.json", "schema version 0", "<td>2</td>"):
        assert text in page


def test_midi_artifacts_show_the_previews_written_beside_them(tmp_path: Path, monkeypatch) -> None:
    from etude.audio import render as render_module
    from etude.music import Performance
    from etude.music.previews import write_midi_previews

    monkeypatch.setattr(render_module, "fluidsynth_available", lambda: False)  # no renderer: only the piano roll
    study = tmp_path / "music"
    (study / "samples").mkdir(parents=True)
    Performance.from_arrays([60, 64, 67], [80, 80, 80], [0.0, 0.5, 1.0], [0.5, 1.0, 1.5]).to_midi(study / "samples" / "tune.mid")
    assert write_midi_previews(study / "samples" / "tune.mid") == [study / "samples" / "tune.preview.png"]
    assert (study / "samples" / "tune.preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (study / "bare.mid").write_bytes((study / "samples" / "tune.mid").read_bytes())  # no previews beside it
    Result("music", "smoke", 0, artifacts=["samples/tune.mid", "bare.mid"]).write(study)
    page = write_html(tmp_path).read_text()
    assert 'alt="samples/tune.mid piano roll" src="data:image/png;base64,' in page
    assert "bare.mid</a> (MIDI; the study wrote no preview of it)" in page
    assert page.count("data:audio/midi;base64,") == 2  # both MIDI files can be downloaded


def test_midi_artifacts_play_as_rendered_audio_when_fluidsynth_is_present(tmp_path: Path) -> None:
    from etude.audio import fluidsynth_available, read_wav, render_midi
    from etude.music import Performance
    from etude.music.previews import write_midi_previews

    if not fluidsynth_available():
        pytest.skip("needs fluidsynth and a GM soundfont (apt-get install fluidsynth timgm6mb-soundfont)")
    study = tmp_path / "music"
    study.mkdir()
    Performance.from_arrays([60, 64], [90, 90], [0.0, 0.5], [0.5, 1.0]).to_midi(study / "tune.mid")
    written = write_midi_previews(study / "tune.mid")
    assert written == [study / "tune.preview.png", study / "tune.preview.wav"]
    audio, rate = read_wav(study / "tune.preview.wav")
    assert rate == 16000 and abs(len(audio) - len(render_midi(study / "tune.mid"))) == 0
    Result("music", "smoke", 0, artifacts=["tune.mid"]).write(study)
    page = write_html(tmp_path).read_text()
    assert '<audio controls preload="auto" src="data:audio/wav;base64,' in page and "piano roll" in page


def test_the_report_layer_imports_no_domain_package() -> None:
    import subprocess
    import sys

    code = ("import sys, etude.studies, etude.studies.html, etude.studies.server, etude.studies.report; "
            "print(sorted(m for m in sys.modules if m.startswith('etude.') and m.split('.')[1] not in "
            "('studies', 'errors', 'runtime', 'validation')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_serve_answers_on_localhost(run_dir: Path) -> None:
    import urllib.request

    from etude.studies.html import serve

    write_html(run_dir)
    server = serve(run_dir, port=0, block=False)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/report.html"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and b"etude reproduction report" in response.read()
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("headless browser test needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver, as root)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs the selenium package (pip install 'etude[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1200,1600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


def test_report_in_headless_chromium(run_dir: Path, browser) -> None:
    write_report(run_dir)
    page = write_html(run_dir)
    browser.get(page.as_uri())
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#claims tbody tr')).map(r => [r.dataset.study, r.dataset.verdict])")
    assert {study for study, _ in rows} == {"good", "broken", "unfinished", "old"}
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert images and all(complete and width > 0 for complete, width in images), images

    browser.execute_script("var s = document.getElementById('verdict-filter'); s.value = 'fails';"
                           "s.dispatchEvent(new Event('change'));")
    visible = browser.execute_script(
        "return Array.from(document.querySelectorAll('#claims tbody tr'))"
        ".filter(r => r.offsetParent !== null).map(r => r.dataset.verdict)")
    assert visible == ["fails"]
    browser.execute_script("var s = document.getElementById('verdict-filter'); s.value = 'all';"
                           "s.dispatchEvent(new Event('change'));")

    played = browser.execute_async_script(
        "var done = arguments[arguments.length - 1]; var a = document.querySelector('audio');"
        "a.muted = true; a.play().then(function(){ setTimeout(function(){"
        " done([a.paused, a.currentTime, a.duration]); }, 300); }).catch(function(e){ done(String(e)); });")
    assert isinstance(played, list), played
    paused, position, duration = played
    assert not paused and position > 0 and duration == pytest.approx(1.0, abs=0.01)

    artifacts = Path(os.environ.get("ETUDE_TEST_ARTIFACTS", "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "report_screenshot.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000
