"""Hyper-parameter search: `python -m trainers.tune --model=transformer --search_space=trainers/configs/search/transformer.yaml`.

Each trial is one run of our trainer (`trainers.run.run`: train, evaluate after each epoch, no
export) of the base config, resolved from the same flags as `python -m trainers.run`, with the
trial's values of the search space's fields (`trainers.search_space`). KerasTuner's oracles pick
the values (random search, Bayesian optimisation or Hyperband) and keep the search's state, so
running the same command again resumes the search. `--model_dir` (default runs/tune_<model>) holds:

    keras_tuner/        KerasTuner's project: the oracle's state, and trial_<id>/trial.json per trial
    trials/<id>/        each trial's run: config.yaml, checkpoints, TensorBoard logs, metrics.json
                        (with --seeds_per_trial=N: one run per seed in trials/<id>/seed_<seed>/)
    search.json         what is searched (tuner, search space, base config): another search is refused
    trials.csv, .json   every trial: status, values, objective metric, seconds, why it failed
    best_config.yaml    the best trial's whole config: `python -m trainers.run --config=` repeats it

A trial whose loss diverges, that runs out of memory, or whose values make an invalid config
(hidden_dim not divisible by num_heads) is recorded as FAILED with its reason, and the search
goes on.

A trial of `--seeds_per_trial=N` trains its values N times, with train.seed = the base config's
(or the trial's) seed + 0..N-1, and reports the mean of each metric over them (and the objective's spread, max -
min): on a small dev set one seed's noise can be larger than the difference between two trials
(SST-2's 872 sentences: a standard error of about 1.3 points), and a search of single runs then
keeps its luckiest seed.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before TensorFlow loads: hide its C++ info logs.

import csv  # noqa: E402
import dataclasses  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from trainers import config as config_lib  # noqa: E402
from trainers import run  # noqa: E402  (defines the flags of a run, which a search shares)
from trainers import search_space as search_space_lib  # noqa: E402
from trainers.trainer import TrainingDivergedError  # noqa: E402
from zoo.atomic import write_atomically, write_json_atomically, write_text_atomically  # noqa: E402
from zoo.errors import ConfigError  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("search_space", None, "YAML of the objective and the config fields to search, "
                    "e.g. trainers/configs/search/transformer.yaml.")
flags.DEFINE_integer("max_trials", 10, "Trials in all, those of a resumed search included (hyperband: at most "
                     "this many; its brackets decide).")
flags.DEFINE_integer("seeds_per_trial", 1, "Runs of each trial's values, seeded base seed + 0..N-1; the trial "
                     "reports their mean metrics (and the objective's spread).")
flags.DEFINE_string("tuner", "random", "KerasTuner's oracle: random | bayesian (Gaussian process) | hyperband "
                    "(trains promising values for longer, 1 to train.epochs epochs).")

TUNERS = ("random", "bayesian", "hyperband")
# KerasTuner reads seed 0 as "pick one at random"; a fixed seed makes the same command try the same values.
ORACLE_SEED = 1
# What a trial's values can cause; anything else (a bug) is KerasTuner's to record with its traceback.
TRIAL_FAILURES = (
    TrainingDivergedError,  # The loss became NaN or infinite (a learning rate too high).
    tf.errors.ResourceExhaustedError,  # Out of memory (a model or batch too large).
    ConfigError,  # Values that make no valid model or config (hidden_dim not divisible by num_heads).
)
# Reported by run() but not metrics of the model: they are the same for every trial.
_COUNTS = ("num_examples", "global_step")


def create_oracle(tuner, space, base_config, max_trials) -> kt.Oracle:
    """KerasTuner's oracle named by --tuner, over `space`.

    Trials are seeded, so a failed one would fail again: no retries. A failed trial says
    something about its values, not about the search: no number of failures stops the search.
    """
    if tuner not in TUNERS:
        raise ConfigError(f"--tuner must be one of {', '.join(TUNERS)}, got {tuner!r}")
    if max_trials <= 0:
        raise ConfigError(f"--max_trials must be a positive integer, got {max_trials}")
    common = dict(
        objective=space.objective(),
        hyperparameters=space.hyperparameters(),
        seed=ORACLE_SEED,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=None,
    )
    if tuner == "random":
        return kt.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    if tuner == "bayesian":
        # KerasTuner's default of 3 random points per parameter would spend a small budget on random points only.
        initial_points = max(1, min(3 * len(space.parameters), max_trials // 2))
        return kt.oracles.BayesianOptimizationOracle(max_trials=max_trials, num_initial_points=initial_points, **common)
    if any(parameter.field == "train.epochs" for parameter in space.parameters):
        raise ConfigError("search space: --tuner=hyperband sets train.epochs itself (1 to the base config's "
                          "train.epochs); remove train.epochs from the parameters")
    oracle = kt.oracles.HyperbandOracle(max_epochs=base_config.train.epochs, **common)
    oracle.max_trials = max_trials  # Hyperband sizes its brackets from max_epochs; this caps the trials.
    return oracle


def trial_values(hyperparameter_values) -> dict:
    """A trial's config fields and values: the search space's, and Hyperband's `tuner/epochs` as train.epochs.

    KerasTuner's Hyperband would continue a promising trial's model for more epochs
    (`tuner/trial_id`, `tuner/initial_epoch`); here every trial trains from scratch for
    `tuner/epochs`, with the learning rate schedule of that many epochs, so that its config
    alone repeats it.
    """
    values = {
        # Bayesian optimisation gives numpy scalars; a config (and its YAML) holds Python's.
        name: value.item() if isinstance(value, np.generic) else value
        for name, value in hyperparameter_values.items()
        if not name.startswith("tuner/")
    }
    if "tuner/epochs" in hyperparameter_values:
        values["train.epochs"] = hyperparameter_values["tuner/epochs"]
    return values


class TrainerTuner(kt.engine.base_tuner.BaseTuner):
    """KerasTuner's worker loop, where a trial is one `trainers.run.run` in `model_dir/trials/<trial id>`.

    Args:
        oracle: keras_tuner.Oracle. Picks each trial's values (see `create_oracle`).
        base_config: trainers.config.ExperimentConfig. What every trial runs, before its values.
        model_dir: pathlib.Path. The search's directory; KerasTuner's project is `keras_tuner/` in it,
            reloaded (a resumed search) when it exists.
    """

    def __init__(self, oracle, *, base_config, model_dir, seeds_per_trial=1):
        self.base_config = base_config
        self.model_dir = model_dir
        self.seeds_per_trial = seeds_per_trial
        super().__init__(oracle, directory=str(model_dir), project_name="keras_tuner")

    def run_trial(self, trial):
        """Trains and evaluates the trial's config, once per seed.

        Returns:
            The final eval metrics as {"eval/<name>": value} (their mean over the seeds), the trial's
            wall time as "seconds", and with several seeds the objective metric's max - min as "spread".

        Raises:
            keras_tuner.errors.FailedTrialError: a TRIAL_FAILURES error, in one line (KerasTuner marks
                the trial FAILED and does not retry it).
        """
        started = time.perf_counter()
        trial_dir = self.model_dir / "trials" / trial.trial_id
        values = trial_values(trial.hyperparameters.values)
        first_seed = values.get("train.seed", self.base_config.train.seed)
        seeds = [first_seed + offset for offset in range(self.seeds_per_trial)]
        runs = []
        for seed in seeds:
            try:
                config = search_space_lib.with_values(self.base_config, {**values, "train.seed": seed})
                metrics = run.run(config, mode="train_and_eval", export_dir=None,
                                  model_dir=trial_dir / f"seed_{seed}" if len(seeds) > 1 else trial_dir)
            except TRIAL_FAILURES as error:
                first_line = (str(error).strip().splitlines() or [""])[0]  # TensorFlow's go on with op context.
                raise kt.errors.FailedTrialError(f"{type(error).__name__}: {first_line}") from None
            finally:
                keras.backend.clear_session()  # The next run builds its model in a fresh Keras state.
            runs.append({f"eval/{name}": value for name, value in metrics.items() if name not in _COUNTS})
        reported = {name: float(np.mean([metrics[name] for metrics in runs])) for name in runs[0]}
        if len(runs) > 1:
            objective = [metrics[self.oracle.objective.name] for metrics in runs]
            reported["spread"] = max(objective) - min(objective)
        return {**reported, "seconds": time.perf_counter() - started}


def check_same_search(model_dir, search):
    """Refuses to resume a --model_dir that holds another search: KerasTuner would go on with the old one.

    Args:
        search: {"tuner", "search_space", "base_config"}: what the trials of a search share.
    """
    path = model_dir / "search.json"
    current = json.loads(json.dumps(search))  # Tuples become lists, as in the saved file.
    if not path.is_file():
        model_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomically(path, current)
        return
    saved = json.loads(path.read_text())
    for key, value in current.items():
        if saved.get(key) != value:
            raise ConfigError(f"--model_dir={model_dir} holds a search with another {key.replace('_', ' ')} "
                              f"({path}); use a new --model_dir, or the same flags to resume")


def failure_reason(trial):
    """Why a trial failed: the last line of the traceback that KerasTuner keeps as its message."""
    if trial.status != kt.engine.trial.TrialStatus.FAILED or not trial.message:
        return None
    last_line = trial.message.strip().splitlines()[-1]
    return last_line.removeprefix(f"{kt.errors.FailedTrialError.__module__}.FailedTrialError: ")


def trial_records(oracle) -> list[dict]:
    """Every trial of the search, in the order of their ids (numbers, zero-padded once a resumed search
    passes 10 trials), as trials.json holds them."""
    records = []
    for trial in sorted(oracle.trials.values(), key=lambda trial: int(trial.trial_id)):
        metrics = {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}
        records.append({
            "trial": trial.trial_id,
            "status": trial.status,
            "values": trial_values(trial.hyperparameters.values),
            "metrics": {name: value for name, value in metrics.items() if name not in ("seconds", "spread")},
            "spread": metrics.get("spread"),
            "seconds": metrics.get("seconds"),
            "reason": failure_reason(trial),
        })
    return records


def table(records, space) -> tuple[list[str], list[list]]:
    """The trials as columns (trial, status, each field, the objective metric, seconds, reason) and rows.

    The fields come in the search space's order, then Hyperband's train.epochs.
    """
    searched = [parameter.field for parameter in space.parameters]
    fields = list(dict.fromkeys([*searched, *(field for record in records for field in record["values"])]))
    spread = [f"{space.metric} spread"] if any(record.get("spread") is not None for record in records) else []
    columns = ["trial", "status", *fields, space.metric, *spread, "seconds", "reason"]
    rows = [
        [record["trial"], record["status"], *(record["values"].get(field) for field in fields),
         record["metrics"].get(space.metric), *([record.get("spread")] if spread else []), record["seconds"],
         record["reason"]]
        for record in records
    ]
    return columns, rows


def format_table(columns, rows) -> str:
    """Left-aligned columns; floats to 4 significant digits, None (not measured, no reason) as "-"."""

    def cell(value):
        if value is None:
            return "-"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    cells = [columns, *([cell(value) for value in row] for row in rows)]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in cells)


def best_record(records, space):
    """The completed trial with the best objective metric, or None."""
    completed = [record for record in records if record["status"] == kt.engine.trial.TrialStatus.COMPLETED]
    if not completed:
        return None
    best = max if space.direction == "max" else min
    return best(completed, key=lambda record: record["metrics"][space.metric])


def write_results(model_dir, records, space, base_config, best):
    """trials.csv, trials.json and (when a trial completed) best_config.yaml; returns the table to print."""
    columns, rows = table(records, space)
    csv_text = io.StringIO()
    csv.writer(csv_text).writerows([columns, *([("" if value is None else value) for value in row] for row in rows)])
    write_text_atomically(model_dir / "trials.csv", csv_text.getvalue())
    write_json_atomically(model_dir / "trials.json", records)
    if best is not None:
        config = search_space_lib.with_values(base_config, best["values"])
        header = (f"Best of {len(records)} trials of `python -m trainers.tune` in {model_dir}: trial "
                  f"{best['trial']}, {space.metric}={best['metrics'][space.metric]:.4f}\n{run.package_versions()}")
        write_atomically(model_dir / "best_config.yaml",
                         lambda path: config_lib.save_config(config, path, header=header))
    return format_table(columns, rows)


def main(argv):
    run.start_cli(argv)
    try:
        base_config = run.resolve_config()
        if not FLAGS.search_space:
            raise ConfigError("--search_space is required, e.g. --search_space=trainers/configs/search/transformer.yaml")
        space = search_space_lib.load_search_space(FLAGS.search_space, base_config)
        oracle = create_oracle(FLAGS.tuner, space, base_config, FLAGS.max_trials)
        model_dir = pathlib.Path(FLAGS.model_dir or f"runs/tune_{base_config.model_name}")
        if FLAGS.seeds_per_trial <= 0:
            raise ConfigError(f"--seeds_per_trial must be a positive integer, got {FLAGS.seeds_per_trial}")
        check_same_search(model_dir, {"tuner": FLAGS.tuner, "search_space": dataclasses.asdict(space),
                                      "base_config": base_config.to_dict(), "seeds_per_trial": FLAGS.seeds_per_trial})
        tuner = TrainerTuner(oracle, base_config=base_config, model_dir=model_dir, seeds_per_trial=FLAGS.seeds_per_trial)
        tuner.search()
    except (ConfigError, kt.errors.FatalError) as error:  # FatalError: e.g. a run that does not report the metric.
        print(f"error: {error}", file=sys.stderr)
        sys.exit(run.USAGE_ERROR)
    if not isinstance(tuner.oracle, kt.Oracle):  # A worker of a distributed search: the chief keeps the trials.
        print(f"Tuner {tuner.tuner_id} is done; the chief writes the results")
        return

    records = trial_records(tuner.oracle)
    best = best_record(records, space)
    print(write_results(model_dir, records, space, base_config, best))
    print(f"Trials: {model_dir / 'trials.csv'}, {model_dir / 'trials.json'}")
    if best is None:
        print("error: no trial completed; the reasons are in the table above", file=sys.stderr)
        sys.exit(1)
    several = FLAGS.seeds_per_trial > 1
    print(f"Best trial {best['trial']}: {space.metric}={best['metrics'][space.metric]:.4f}"
          f"{f' (mean of {FLAGS.seeds_per_trial} seeds)' if several else ''}; python -m trainers.run "
          f"--config={model_dir / 'best_config.yaml'} repeats {'its first seed' if several else 'it'}")


if __name__ == "__main__":
    app.run(main, flags_parser=run.parse_flags)
