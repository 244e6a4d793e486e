"""benchmarks.pretrain's corpus: IMDB reviews and WikiText articles as documents of sentences."""

import csv
import gzip
import json
import subprocess
import sys

from cli_runs import REPO


def write_corpus(base, path, imdb_limit=None):
    """`benchmarks.pretrain.write_corpus` run from the repository (benchmarks/ is not installed)."""
    script = ("import json, pathlib, sys; from benchmarks import pretrain; "
              "print(json.dumps(pretrain.write_corpus(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), "
              "None if sys.argv[3] == 'None' else int(sys.argv[3]))))")
    done = subprocess.run([sys.executable, "-c", script, str(base), str(path), str(imdb_limit)], cwd=REPO,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_reviews_and_articles_become_documents_of_sentences(tmp_path):
    (tmp_path / "imdb").mkdir()
    (tmp_path / "wikitext2").mkdir()
    with gzip.open(tmp_path / "imdb" / "train.csv.gz", "wt", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "rating", "label", "review"])
        writer.writerow(["pos/0", "9", "1", "Great film!<br /><br />I laughed. Would watch again?"])
        writer.writerow(["neg/1", "2", "0", "Dull."])
    (tmp_path / "wikitext2" / "wiki.test.raw").write_text(
        " = Robert Boulter = \n\n Robert is an actor. He was born in 1970.\n\n = = Career = = \n\n He acted.\n"
        " = Du Fu = \n\n Du Fu was a poet.\n", encoding="utf-8")
    counts = write_corpus(tmp_path, tmp_path / "corpus.txt")
    documents = [block.split("\n") for block in (tmp_path / "corpus.txt").read_text().strip().split("\n\n")]
    assert documents == [
        ["Great film!", "I laughed.", "Would watch again?"],
        ["Dull."],
        ["Robert is an actor.", "He was born in 1970.", "He acted."],  # A section heading stays in its article.
        ["Du Fu was a poet."],
    ]
    assert counts == {"documents": 4, "sentences": 8, "words": 24}
    write_corpus(tmp_path, tmp_path / "first.txt", imdb_limit=1)
    assert (tmp_path / "first.txt").read_text().split("\n\n")[0].split("\n") == documents[0]


def test_the_figure_is_drawn_beside_the_json_and_embedded_in_the_markdown(tmp_path):
    part = {"minutes": 15.0, "global_step": 900, "mlm_accuracy": 0.3, "rtd_accuracy": None, "sst2": {"accuracy": 0.81}}
    document = {"benchmark": "pretrain", "date": "2026-12-02T04:00:00+00:00", "command": "python -m benchmarks.pretrain",
                "machine": {"cpu": "AMD EPYC", "cores": 2, "vector_extensions": [], "memory_gib": 23.0,
                            "load_average_at_start": [0, 0, 0], "gpu": "none"},
                "versions": {}, "settings": {"model": "bert_mini", "sequence_length": 64, "batch_size": 32,
                                             "learning_rate": 1e-3, "warmup_steps": 300, "finetune_epochs": 1,
                                             "vocabulary_size": 16000, "pretrain_overrides": "task.max_predictions=10"},
                "corpus": {"documents": 2, "words": 10}, "scratch": {"accuracy": 0.79},
                "results": {"mlm": [part, dict(part, minutes=30.0, mlm_accuracy=0.4, train_seconds=600.0,
                                                     sst2={"accuracy": 0.81, "seed_accuracies": [0.8, 0.82]})],
                            "electra": [dict(part, rtd_accuracy=0.9)]}}
    script = ("import json, pathlib, sys; from benchmarks import pretrain; document = json.loads(sys.argv[1]); "
              "pretrain.plot(document, pathlib.Path(sys.argv[2])); print(pretrain.markdown(document))")
    figure = tmp_path / "pretrain" / "figure.png"  # In a folder not made yet, as a first result's.
    done = subprocess.run([sys.executable, "-c", script, json.dumps(document), str(figure)], cwd=REPO,
                          capture_output=True, text=True, check=True)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](benchmarks/results/pretrain/20261202T040000Z.png)" in done.stdout
    assert "| mlm | 15 min (900 steps) | 30.0% | - | **81.0%** |" in done.stdout
    # Several fine-tuning seeds: their mean, and each seed beside it.
    # The second part's schedule ended 5 minutes before its budget: 15 + 10 minutes of training.
    assert "| mlm | 25 min (900 steps) | 40.0% | - | **81.0%** (seeds 80.0 / 82.0, range 2.0) |" in done.stdout
    assert "| pretraining run |" in done.stdout and "one lever flipped" not in done.stdout  # No levers here.
    assert "a vocabulary of 16,000 WordPieces, sequence 64" in done.stdout
    assert "`--params_override=task.max_predictions=10`" in done.stdout


def test_a_part_that_found_its_run_finished_counts_the_runs_own_training_time():
    # The run trained 92.5 minutes in an earlier call; the benchmark's call trained 2 seconds.
    finished = [{"minutes": 100.0, "train_seconds": 2.0, "run_train_seconds": 5550.0}]
    # Two parts of one run: each part's minutes are the run's since step 0 at its end.
    parts = [{"minutes": 30.0, "train_seconds": 1500.0, "run_train_seconds": 1500.0},
             {"minutes": 60.0, "train_seconds": 1200.0, "run_train_seconds": 2700.0}]
    script = ("import json, sys; from benchmarks import pretrain; "
              "print(json.dumps([pretrain.trained_minutes(parts) for parts in json.loads(sys.argv[1])]))")
    done = subprocess.run([sys.executable, "-c", script, json.dumps([finished, parts])], cwd=REPO,
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [[92.5], [25.0, 45.0]]


def test_a_lever_run_is_the_masked_lm_command_with_one_setting_flipped(tmp_path):
    """The lever's flag comes after the recipe's (absl: the last one wins); short_first's share of
    the schedule is `--short_steps` of `--schedule_steps`; the markdown names what each row flipped."""
    script = (
        "import json, pathlib, sys; from benchmarks import pretrain\n"
        "args = pretrain.parse_args(['--levers=nsp,short_first', '--short_steps=500', '--schedule_steps=10000'])\n"
        "flags = {lever: pretrain.pretraining_flags('mlm', 'corpus.txt', pathlib.Path('run'), args, 0.5, lever)\n"
        "         for lever in (None, 'nsp', 'short_first')}\n"
        "print(json.dumps(dict(flags=flags, note=pretrain.levers_note(vars(args)))))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    recipe, nsp, short_first = (result["flags"][lever] for lever in ("null", "nsp", "short_first"))
    assert recipe[-3:] == ["--packing", "--nsp=false", "--whole_word_masking"]
    assert nsp == [*recipe, "--nsp"]
    overrides = [flag for flag in short_first if flag.startswith("--params_override=")]
    assert overrides[0].endswith(",model.dropout=0.0,task.short_sequence_fraction=0.05")
    assert "task.short_sequence_fraction" not in " ".join(recipe)
    assert "mlm + next sentence prediction: `--nsp`" in result["note"]
    assert "its first 500 steps at 32 tokens" in result["note"]


def test_refinetune_finds_each_rows_pretraining_run_where_the_run_wrote_it():
    """A result row is titled by its objective or its lever's title; both lead back to the one folder
    its pretraining wrote, and fine-tunings of another recipe go beside the earlier ones."""
    script = ("import json, pathlib; from benchmarks import pretrain; "
              "rows = ['mlm', 'electra', pretrain.LEVERS['nsp'][0]]; "
              "print(json.dumps([[str(path), name] for path, name in "
              "(pretrain.run_folders(pathlib.Path('work'), row, 'sst2_finetune') for row in rows)]))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [["work/pretrain_mlm", "finetune_mlm_sst2_finetune"],
                                       ["work/pretrain_electra", "finetune_electra_sst2_finetune"],
                                       ["work/pretrain_nsp", "finetune_nsp_sst2_finetune"]]


def test_refinetune_names_each_recipe_apart():
    """`--finetune_epochs` and `--finetune_overrides` make another recipe: its fine-tunings must not
    resume the shipped recipe's."""
    script = ("import json; from benchmarks import pretrain; print(json.dumps(["
              "pretrain.recipe_name('bert/sst2_finetune'), pretrain.recipe_name('bert/sst2_finetune', 4), "
              "pretrain.recipe_name('bert/sst2_finetune', None, 'train.learning_rate=2e-4,model.dropout=0.0')]))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["sst2_finetune", "sst2_finetune_4epochs",
                                       "sst2_finetune_train.learning_rate-2e-4_model.dropout-0.0"]


def test_refinetune_needs_one_segment_and_its_work_dir(tmp_path):
    """Earlier segments' checkpoints are overwritten by later ones: only a one-segment result's
    pretraining runs can be fine-tuned again; anything else is a usage error before any training."""
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"benchmark": "pretrain", "settings": {"segments": 2, "work_dir": str(tmp_path)},
                                   "results": {}}))
    done = subprocess.run([sys.executable, "-m", "benchmarks.pretrain", f"--refinetune={earlier}"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "--refinetune" in done.stderr and "one segment" in done.stderr and "Traceback" not in done.stderr


def test_the_settings_paragraph_names_each_rows_fine_tuning_recipe():
    """A refinetuned result fine-tunes its pretraining runs with the new recipe and keeps its scratch
    row; results from before `--finetune_config` fine-tuned every row with bert/sst2_local."""
    script = ("import json, sys; from benchmarks import pretrain; "
              "print(json.dumps([pretrain.finetuning_note(settings) for settings in json.loads(sys.argv[1])]))")
    refinetuned = {"finetune_config": "bert/sst2_finetune", "finetune_epochs": None, "scratch_config": "bert/sst2_local",
                   "scratch_epochs": 1, "refinetune": "benchmarks/results/pretrain/20261204T221128Z.json"}
    overridden = dict(refinetuned, finetune_epochs=4, finetune_overrides="train.learning_rate=2e-4")
    done = subprocess.run([sys.executable, "-c", script, json.dumps([{"finetune_epochs": 1}, refinetuned, overridden])],
                          cwd=REPO, capture_output=True, text=True, check=True)
    before, after, overridden_note = json.loads(done.stdout)
    assert overridden_note.startswith("`--config=bert/sst2_finetune --epochs=4 --params_override=train.learning_rate=2e-4` "
                                      "from the pretraining runs")
    assert before == "`--config=bert/sst2_local --epochs=1`"
    assert after.startswith("`--config=bert/sst2_finetune` from the pretraining runs, "
                            "`--config=bert/sst2_local --epochs=1` from scratch")
    assert "`20261204T221128Z.json`" in after


def test_scratch_from_keeps_an_earlier_scratch_row_of_the_same_model_only(tmp_path):
    """Another model's scratch row is no baseline: a usage error before any training. The settings
    paragraph names the result the kept row came from and the recipe that trained it."""
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"benchmark": "pretrain", "settings": {"model": "bert_mini", "segments": 1},
                                   "scratch": {"accuracy": 0.81}, "results": {}}))
    done = subprocess.run([sys.executable, "-m", "benchmarks.pretrain", "--model=bert", f"--scratch_from={earlier}"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert "--scratch_from" in done.stderr and "--model=bert_mini" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "benchmarks.pretrain", f"--refinetune={earlier}",
                           f"--scratch_from={earlier}"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "pass one of the two" in done.stderr  # --refinetune keeps its own row.
    script = ("import json, sys; from benchmarks import pretrain; "
              "args = pretrain.parse_args(['--model=bert_mini', '--scratch_from=' + sys.argv[1]]); "
              "scratch, trained_by = pretrain.scratch_from_result(args, None); "
              "print(json.dumps([scratch, pretrain.finetuning_note(dict(vars(args), **trained_by))]))")
    done = subprocess.run([sys.executable, "-c", script, str(earlier)], cwd=REPO, capture_output=True, text=True,
                          check=True)
    scratch, note = json.loads(done.stdout)
    assert scratch == {"accuracy": 0.81}
    assert note == ("`--config=bert/sst2_finetune` from the pretraining runs, `--config=bert/sst2_local` from scratch "
                    "(the scratch row kept from `earlier.json`)")
