"""A run's phases (startup, vocabulary, data, training, ...), timed and printed as they happen.

A user waiting on `python -m trainers.run` should see what it is doing and what each part cost:
a long phase prints a line when it starts and one when it ends, and the run ends with one summary
line, e.g. (`--model=gru --epochs=1 --steps_per_epoch=5` on a 2-core CPU)

    Phases: startup 7.9 s, data 8.8 s, vocabulary 4.0 s, model 1.0 s, training 6.3 s, evaluation 3.6 s, export 6.2 s; total 37.9 s

A phase entered inside another (the vocabulary is learned while the data is prepared, evaluation
runs between training epochs) counts for itself only: the outer phase's seconds leave it out, so
the phases never overlap and add up to at most the total (the rest: writing configs, restoring
checkpoints). Kept free of TensorFlow so that it loads before TensorFlow does.
"""

import contextlib
import dataclasses
import re
import time

_SUMMARY = re.compile(r"^Phases: (?P<phases>.*); total (?P<total>[\d.]+) s$")
_PHASE = re.compile(r"^(?P<name>.+) (?P<seconds>[\d.]+) s$")


@dataclasses.dataclass
class Phase:
    """One entry into a phase; its seconds are known once the phase ends."""

    name: str
    started: float  # time.perf_counter() at entry.
    seconds: float = 0.0  # Its own seconds: wall_seconds less the phases nested in it.
    wall_seconds: float = 0.0  # Entry to exit, nested phases included.
    nested_seconds: float = 0.0
    nested_names: list = dataclasses.field(default_factory=list)


class Phases:
    """The seconds of a run's named phases, in the order each was first entered.

    Args:
        started: float. The run's start on `time.perf_counter()`'s clock (default: now). The total
            counts from it, and so does a phase entered with `since=started`: a process's startup
            starts before the module that times it has imported TensorFlow.

    Example:

        phases = Phases()
        with phases.phase("data", "reading the train and eval splits"):   # Data: reading ... ...
            with phases.phase("vocabulary", "learning 8000 WordPiece tokens"):
                ...                                                         # Vocabulary: done in 12.3 s
            ...                                                             # Data: done in 3.0 s (15.3 s with the vocabulary)
        print(phases.summary())  # Phases: data 3.0 s, vocabulary 12.3 s; total 15.4 s
    """

    def __init__(self, started=None):
        self.started = time.perf_counter() if started is None else started
        self.seconds = {}  # name -> own seconds, summed over its entries.
        self._open = []  # The phases entered and not yet left, innermost last.

    @contextlib.contextmanager
    def phase(self, name, starting=None, *, since=None, report_end=None):
        """Times the body as phase `name`; yields its `Phase`.

        Args:
            name: str. The phase's name in the summary ("vocabulary"); its label in lines is capitalized.
            starting: str or None. What the phase does; printed on entry as "<Label>: <starting> ...".
            since: float or None. The phase's start on `time.perf_counter()`'s clock (default: now).
            report_end: bool or None. Print "<Label>: done in S s" on exit (default: when `starting`
                was printed). A caller that prints its own end line, with the phase's seconds
                (training's "Trained to step ... in S s"), passes False.
        """
        label = name[:1].upper() + name[1:]
        if starting:
            print(f"{label}: {starting} ...", flush=True)
        entered = Phase(name, time.perf_counter() if since is None else since)
        self.seconds.setdefault(name, 0.0)  # The summary's order: first entered, not first left.
        self._open.append(entered)
        try:
            yield entered
        finally:
            self._open.pop()
            entered.wall_seconds = time.perf_counter() - entered.started
            entered.seconds = max(entered.wall_seconds - entered.nested_seconds, 0.0)
            self.seconds[name] += entered.seconds
            if self._open:
                self._open[-1].nested_seconds += entered.wall_seconds
                self._open[-1].nested_names.append(name)
        if report_end if report_end is not None else bool(starting):
            nested = dict.fromkeys(entered.nested_names)  # Ordered, once each.
            with_nested = f" ({entered.wall_seconds:.1f} s with the {', '.join(nested)})" if nested else ""
            print(f"{label}: done in {entered.seconds:.1f} s{with_nested}", flush=True)

    def total_seconds(self) -> float:
        return time.perf_counter() - self.started

    def summary(self) -> str:
        """"Phases: startup 7.9 s, ..., export 6.2 s; total 37.9 s" (read back by `parse_summary`)."""
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items())
        return f"Phases: {phases}; total {self.total_seconds():.1f} s"


def parse_summary(text) -> dict:
    """The last summary line in `text` (a run's stdout) as {phase name: seconds, ..., "total": seconds}.

    Raises:
        ValueError: `text` holds no summary line.
    """
    lines = [found for line in text.splitlines() if (found := _SUMMARY.match(line.strip()))]
    if not lines:
        raise ValueError("no 'Phases: ...; total ... s' line")
    phases = {}
    for entry in filter(None, lines[-1]["phases"].split(", ")):
        found = _PHASE.match(entry)
        phases[found["name"]] = float(found["seconds"])
    return {**phases, "total": float(lines[-1]["total"])}
