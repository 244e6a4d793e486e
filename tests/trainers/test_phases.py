"""A run's phases: timed apart from the phases nested in them, printed, and summed in one line."""

import time

import pytest

from trainers.phases import Phases, parse_summary


def test_a_nested_phase_counts_for_itself_only_and_the_lines_say_so(capsys):
    phases = Phases()
    with phases.phase("data", "reading the splits") as data:
        time.sleep(0.05)
        with phases.phase("vocabulary", "learning 8000 WordPiece tokens from 10 texts") as vocabulary:
            time.sleep(0.1)
    with phases.phase("training") as training:
        time.sleep(0.02)

    assert list(phases.seconds) == ["data", "vocabulary", "training"]  # First entered first.
    assert vocabulary.seconds == pytest.approx(0.1, abs=0.05)
    assert data.wall_seconds == pytest.approx(data.seconds + vocabulary.wall_seconds)
    assert data.seconds == pytest.approx(0.05, abs=0.04)
    assert training.seconds == training.wall_seconds
    assert capsys.readouterr().out.splitlines() == [
        "Data: reading the splits ...",
        "Vocabulary: learning 8000 WordPiece tokens from 10 texts ...",
        f"Vocabulary: done in {vocabulary.seconds:.1f} s",
        f"Data: done in {data.seconds:.1f} s ({data.wall_seconds:.1f} s with the vocabulary)",
    ]  # Training is silent: its caller prints "Trained to step ...".


def test_repeated_phases_add_up_and_the_summary_reads_back():
    phases = Phases(started=time.perf_counter() - 1.0)  # A process that started a second ago.
    with phases.phase("startup", since=phases.started, report_end=False) as startup:
        pass
    for _ in range(2):
        with phases.phase("evaluation"):
            time.sleep(0.01)
    summary = parse_summary("Epoch 1/1\n" + phases.summary() + "\n")

    assert startup.seconds >= 1.0
    assert list(summary) == ["startup", "evaluation", "total"]
    assert summary["evaluation"] == pytest.approx(round(phases.seconds["evaluation"], 1))
    phase_seconds = [seconds for name, seconds in summary.items() if name != "total"]
    assert sum(phase_seconds) <= summary["total"] + 0.05 * len(phase_seconds)  # Each rounded to 0.1 s.


def test_a_phase_that_raises_is_still_timed_and_the_error_goes_on():
    phases = Phases()
    with pytest.raises(ValueError), phases.phase("data") as data:
        raise ValueError("no such file")
    with phases.phase("export"):
        pass
    assert list(phases.seconds) == ["data", "export"] and data.wall_seconds > 0
    assert data.nested_names == []  # The failed phase was left: the next one is not inside it.


def test_text_without_a_summary_line_is_an_error():
    with pytest.raises(ValueError, match="no 'Phases: "):
        parse_summary("Trained to step 5 in 1.0 s\n")
