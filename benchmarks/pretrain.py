"""Pretraining objectives at equal training time: held-out accuracy, then SST-2 after fine-tuning.

    python -m benchmarks.pretrain                                  # 2 x 10 min of pretraining, ~40 min
    python -m benchmarks.pretrain --minutes=60 --segments=4        # issue 17's budget: hours

Corpus: `../shared/data/imdb/train.csv.gz` (25,000 movie reviews, `<br />` removed, one document
each) and `../shared/data/wikitext2/wiki.test.raw` (its articles, split at their " = Title = "
lines), split into sentences at . ! ? and written to a temporary text file (one sentence a line,
a blank line between documents). Never IMDB's test file.

For each objective (`--objectives`, default mlm and electra), one `python -m trainers.run
--task=pretrain --objective=...` run (`--pretrain_flags`: RoBERTa's packed sequences without next
sentence prediction, whole-word masking; `--pretrain_overrides`: no dropout, which a budget of
minutes cannot afford, Geiping & Goldstein 2022), trained in `--segments` parts of
`--minutes / --segments` each (`--train_hours`; each part resumes the last). Both objectives follow
the same learning-rate curve per step: a warmup of `--warmup_steps`, then a cosine decay over
`--schedule_steps` (by default far more steps than the budget reaches, so nearly constant; set it
to the steps the budget reaches to end near zero), gradients clipped at `--clipnorm`. After each
part:
- the run's own held-out evaluation (every 20th document): masked-LM accuracy, and for ELECTRA
  the discriminator's replaced-token accuracy;
- a fine-tuning on SST-2 from its latest checkpoint (`--init_checkpoint`, `--finetune_config`:
  the shipped `bert/sst2_finetune`, BERT's fine-tuning recipe), scored on SST-2 dev (872
  sentences): seed 1 after the earlier parts, seeds 1..`--finetune_seeds` after the last.
Then fine-tunings from scratch (`--scratch_config`: `bert/sst2_local`, tuned for scratch training),
seeds 1..`--finetune_seeds`.

`--refinetune=RESULT` pretrains nothing: it fine-tunes an earlier one-segment result's pretraining
runs again (kept in its `--work_dir`) with this run's fine-tuning flags, and keeps its scratch row:
another fine-tuning recipe measured on the same pretrained weights.

`--scratch_from=RESULT` keeps an earlier result's scratch row (same `--model`) instead of training
it again: scratch has no pretraining, so another pretraining run does not change it, and its
fine-tunings cost half an hour of a session's CPU for bert_mini.

`--levers` adds masked-LM runs with one of the recipe's levers flipped (`LEVERS`: next sentence
prediction on, packing off, whole-word masking off, short sequences first), each trained and
fine-tuned like an objective, so that each lever is measured on and off at equal training time
against the `mlm` run. `--work_dir` keeps the corpus,
the pretraining runs (for more fine-tunings) and the fine-tunings. Writes `benchmarks/results/pretrain/<UTC>.json`,
a figure of both accuracies against pretraining minutes beside it (`<UTC>.png`), and BENCHMARKS.md's
pretrain section, which shows the figure. Needs the real data under ../shared/data; says so and exits
otherwise.
"""

import argparse
import csv
import gzip
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

from benchmarks import accuracy, common

NAME = "pretrain"
OBJECTIVES = ("mlm", "electra")
# One lever of the masked-LM recipe flipped against `--pretrain_flags`: what the run's row is
# called, its extra trainers.run flags (later flags win) and its extra params_override.
LEVERS = {
    "nsp": ("mlm + next sentence prediction", ["--nsp"], ""),
    "no_packing": ("mlm, unpacked (two sentences a sequence, padded)", ["--nopacking"], ""),
    "no_whole_word_masking": ("mlm, WordPieces masked alone", ["--nowhole_word_masking"], ""),
    # BERT's schedule (appendix A.2): the first steps at a quarter of the length (`--short_steps`).
    "short_first": ("mlm, short sequences first", [], "task.short_sequence_fraction={short_fraction}"),
}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
WIKI_TITLE = re.compile(r"^ = [^=].* = $")


def imdb_documents(path, limit=None):
    """The reviews of IMDB's train CSV (columns id, rating, label, review) as lists of sentences."""
    with gzip.open(path, "rt", encoding="utf-8") as file:
        for index, row in enumerate(csv.DictReader(file)):
            if limit is not None and index >= limit:
                return
            yield [sentence for sentence in SENTENCE_END.split(row["review"].replace("<br />", " ")) if sentence.strip()]


def wikitext_documents(path):
    """WikiText's articles (a document from one " = Title = " line to the next) as lists of sentences."""
    document = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if WIKI_TITLE.match(line) and document:
            yield document
            document = []
        elif line.strip() and not line.startswith(" ="):
            document += [sentence for sentence in SENTENCE_END.split(line.strip()) if sentence.strip()]
    if document:
        yield document


def write_corpus(base, path, imdb_limit=None) -> dict:
    """Writes the corpus as `trainers.run --train_files` reads it; returns its counts."""
    documents = [*imdb_documents(base / "imdb" / "train.csv.gz", imdb_limit),
                 *wikitext_documents(base / "wikitext2" / "wiki.test.raw")]
    path.write_text("\n\n".join("\n".join(document) for document in documents) + "\n", encoding="utf-8")
    sentences = sum(len(document) for document in documents)
    words = sum(len(sentence.split()) for document in documents for sentence in document)
    return {"documents": len(documents), "sentences": sentences, "words": words}


def run_trainer(model, flags, args, work_dir, budget_seconds=0) -> dict:
    """One `python -m trainers.run --model=model *flags`: its command, wall and training seconds.

    It may take `budget_seconds` of training plus `args.timeout` seconds for the rest (start-up,
    evaluation, export): a 75-minute pretraining part under a flat one-hour limit was killed.
    """
    command = [sys.executable, "-m", "trainers.run", f"--model={model}", *flags]
    if args.data_dir:
        command.append(f"--data_dir={args.data_dir}")
    print("$ " + " ".join(command[1:]).replace(str(work_dir), "$WORK"), flush=True)
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=common.REPOSITORY, capture_output=True, text=True,
                               timeout=budget_seconds + args.timeout,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    row = {"command": " ".join(["python", *command[1:]]).replace(str(work_dir), "$WORK"),
           "wall_seconds": time.perf_counter() - started}
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        return dict(row, error=f"exit code {completed.returncode}: " + "\n".join(output.strip().splitlines()[-15:]))
    trained = re.search(r"Trained to step \d+ in ([\d.]+) s", output)
    return dict(row, train_seconds=float(trained.group(1)) if trained else None)


def lever_override(lever, short_steps, schedule_steps) -> str:
    """The params_override that `lever` (a `LEVERS` key, or None) adds: short_first's share of the
    schedule is `short_steps` of `schedule_steps`."""
    return LEVERS[lever][2].format(short_fraction=short_steps / schedule_steps) if lever else ""


def pretraining_flags(objective, corpus, model_dir, args, hours, lever=None) -> list:
    """The `trainers.run` flags of one part of the pretraining run of `objective`, with `lever` (a
    `LEVERS` key) flipped if given: `hours` of training, resuming the earlier parts."""
    lever_flags = LEVERS[lever][1] if lever else []
    overrides = [args.pretrain_overrides, lever_override(lever, args.short_steps, args.schedule_steps)]
    return [
        "--task=pretrain", f"--objective={objective}", f"--train_files={corpus}", f"--model_dir={model_dir}",
        f"--sequence_length={args.sequence_length}", f"--batch_size={args.batch_size}",
        f"--learning_rate={args.learning_rate}", "--epochs=1", f"--steps_per_epoch={args.schedule_steps}",
        "--steps_per_loop=50", f"--train_hours={hours}",
        f"--params_override=data.vocabulary_size={args.vocabulary_size},"
        f"train.warmup_fraction={args.warmup_steps / args.schedule_steps},train.clipnorm={args.clipnorm}"
        + "".join(f",{override}" for override in overrides if override),
        *args.pretrain_flags.split(), *lever_flags,
    ]


def pretrain_part(objective, corpus, model_dir, args, work_dir, hours, lever=None):
    """One part of the pretraining run of `objective` (`pretraining_flags`); its held-out metrics."""
    flags = pretraining_flags(objective, corpus, model_dir, args, hours, lever)
    row = run_trainer(args.model, flags, args, work_dir, budget_seconds=hours * 3600)
    if "error" in row:
        raise SystemExit(f"pretraining {objective}: FAILED\n{row['error']}")
    metrics = json.loads((model_dir / "metrics.json").read_text())
    # run_train_seconds: the run's training since step 0, earlier parts and calls included (all of
    # it when this call found the run finished); train_seconds: this call's alone.
    return dict(row, run_train_seconds=metrics.get("train_seconds"),
                **{name: metrics.get(name) for name in ("mlm_accuracy", "rtd_accuracy", "nsp_accuracy", "global_step")})


def fine_tune(args, work_dir, run_name, init_checkpoint, seed):
    """SST-2 dev accuracy of a fine-tuning from `init_checkpoint` (`--finetune_config`'s recipe) or
    from scratch (None: `--scratch_config`'s)."""
    config = args.finetune_config if init_checkpoint is not None else args.scratch_config
    overrides = f"train.seed={seed}"
    if init_checkpoint is not None and args.finetune_overrides:
        overrides += f",{args.finetune_overrides}"
    flags = [f"--config={config}", f"--model_dir={work_dir / run_name}", f"--export_dir={work_dir / 'exports'}",
             f"--params_override={overrides}"]
    if init_checkpoint is not None:
        flags.append(f"--init_checkpoint={init_checkpoint}")
    if args.finetune_epochs:
        flags.append(f"--epochs={args.finetune_epochs}")
    if args.finetune_steps:
        flags.append(f"--steps_per_epoch={args.finetune_steps}")
    row = run_trainer(args.model, flags, args, work_dir)
    if "error" in row:
        raise SystemExit(f"fine-tuning {run_name}: FAILED\n{row['error']}")
    return dict(row, accuracy=json.loads((work_dir / run_name / "metrics.json").read_text())["accuracy"])


def fine_tune_seeds(args, work_dir, run_name, init_checkpoint, seeds):
    """`fine_tune` with seeds 1..`seeds`: their mean accuracy, each seed's beside it."""
    runs = [fine_tune(args, work_dir, f"{run_name}_seed{seed}", init_checkpoint, seed) for seed in range(1, seeds + 1)]
    accuracies = [run["accuracy"] for run in runs]
    return dict(runs[-1], accuracy=sum(accuracies) / len(accuracies), seed_accuracies=accuracies)


def trained_minutes(parts) -> list[float]:
    """Minutes of training up to the end of each part: the run's own count since step 0 where its
    metrics keep one (a part that found the run already trained counts it all), else the sum of
    the calls' counts the trainer printed (a run whose schedule ends before its budget trains
    less), else the part's budget."""
    totals, total, budget_so_far = [], 0.0, 0.0
    for part in parts:
        if part.get("run_train_seconds"):
            total = part["run_train_seconds"] / 60
        else:
            total += part["train_seconds"] / 60 if part.get("train_seconds") else part["minutes"] - budget_so_far
        budget_so_far = part["minutes"]
        totals.append(total)
    return totals


def plot(document, path):
    """Draws held-out masked-LM accuracy (left) and SST-2 dev accuracy after fine-tuning (right)
    against pretraining minutes, a line per objective, from scratch as the 0-minute point; a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # No screen: draw to a file.
    from matplotlib import pyplot

    figure, (mlm_axes, sst2_axes) = pyplot.subplots(1, 2, figsize=(10, 4))
    for objective, parts in document["results"].items():
        minutes = trained_minutes(parts)
        mlm_axes.plot(minutes, [part["mlm_accuracy"] * 100 for part in parts], marker="o", label=objective)
        sst2_axes.plot([0, *minutes], [document["scratch"]["accuracy"] * 100,
                                       *(part["sst2"]["accuracy"] * 100 for part in parts)], marker="o", label=objective)
    mlm_axes.set(title="Held-out masked-LM accuracy", xlabel="pretraining minutes", ylabel="%")
    sst2_axes.set(title="SST-2 dev after fine-tuning", xlabel="pretraining minutes (0: from scratch)", ylabel="%")
    for axes in (mlm_axes, sst2_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    machine = document["machine"]
    figure.suptitle(f"{document['settings']['model']} on {machine['cpu']}, {machine['cores']} cores", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)  # A first result's folder does not exist yet.
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def figure_path(document) -> pathlib.Path:
    """Where `plot` draws a result's figure: beside its JSON."""
    return common.result_path(document).with_suffix(".png")


def lever_setting(lever, settings) -> str:
    """What `lever` adds to the masked-LM run's command: its flags, or its params_override."""
    return " ".join(LEVERS[lever][1]) or lever_override(lever, settings["short_steps"], settings["schedule_steps"])


def levers_note(settings) -> str:
    """What the lever rows flipped, for the markdown's settings paragraph ("" without levers)."""
    levers = [lever for lever in settings.get("levers", "").split(",") if lever]
    if not levers:
        return ""
    flipped = "; ".join(f"{LEVERS[lever][0]}: `{lever_setting(lever, settings)}`" for lever in levers)
    if "short_first" in levers:
        flipped += (f", i.e. its first {settings['short_steps']:,} steps at {settings['sequence_length'] // 4} "
                    f"tokens")
    return f"; the rows after the objectives are masked-LM runs with one lever flipped ({flipped})"


def scratch_recipe(settings) -> dict:
    """How the scratch row of a result with these `settings` was trained: its config and epochs
    (results from before `--scratch_config` existed trained scratch with bert/sst2_local and
    `--finetune_epochs`)."""
    return {"scratch_config": settings.get("scratch_config", "bert/sst2_local"),
            "scratch_epochs": settings.get("scratch_epochs", settings.get("finetune_epochs"))}


def finetuning_note(settings) -> str:
    """The fine-tuning recipes of a result's `settings` (results before `--finetune_config` fine-tuned
    every row with bert/sst2_local), and the earlier result whose pretraining runs they reused."""
    def recipe(config, epochs, overrides=None):
        return (f"`--config={config}" + (f" --epochs={epochs}" if epochs else "")
                + (f" --params_override={overrides}" if overrides else "") + "`")

    pretrained = recipe(settings.get("finetune_config", "bert/sst2_local"), settings.get("finetune_epochs"),
                        settings.get("finetune_overrides"))
    scratch_by = scratch_recipe(settings)
    scratch = recipe(scratch_by["scratch_config"], scratch_by["scratch_epochs"])
    note = pretrained if pretrained == scratch else f"{pretrained} from the pretraining runs, {scratch} from scratch"
    if settings.get("refinetune"):
        note += (f" (the pretraining runs and the scratch row of `{pathlib.PurePath(settings['refinetune']).name}`, "
                 "the pretraining runs fine-tuned again)")
    elif settings.get("scratch_from"):
        note += f" (the scratch row kept from `{pathlib.PurePath(settings['scratch_from']).name}`)"
    return note


def markdown(document) -> str:
    settings, corpus = document["settings"], document["corpus"]
    rows = [["none (from scratch)", "-", "-", "-", common.accuracy_cell(document["scratch"])]]
    for objective, parts in document["results"].items():
        for part, minutes in zip(parts, trained_minutes(parts)):
            rtd = part.get("rtd_accuracy")
            rows.append([
                objective, f"{minutes:.0f} min ({part['global_step']:,} steps)",
                f"{part['mlm_accuracy'] * 100:.1f}%", "-" if rtd is None else f"{rtd * 100:.1f}%",
                common.accuracy_cell(part["sst2"]),
            ])
    table = common.markdown_table(
        ["pretraining run", "training time", "held-out MLM accuracy", "replaced-token accuracy",
         "SST-2 dev after fine-tuning"], rows)
    return (
        f"{common.environment_line(document)}\n\n"
        f"Model `{settings['model']}`; corpus: {corpus['documents']:,} documents ({corpus['words']:,} words) of IMDB "
        f"train reviews and WikiText-2's test articles; a vocabulary of {settings.get('vocabulary_size', 8000):,} "
        f"WordPieces, sequence {settings['sequence_length']}, batch "
        f"{settings['batch_size']}, peak learning rate {settings['learning_rate']}, warmup {settings['warmup_steps']} steps, "
        f"gradients clipped at global norm {settings.get('clipnorm')}; `{settings.get('pretrain_flags', '')}`"
        + (f" `--params_override={settings['pretrain_overrides']}`" if settings.get("pretrain_overrides") else "")
        + f"{levers_note(settings)}. "
        f"Fine-tuning: {finetuning_note(settings)}, SST-2 dev (872 sentences), seeds 1-{settings.get('finetune_seeds', 1)} "
        f"from scratch and after the last part, seed 1 after the others.\n\n{table}\n\n"
        f"![Held-out MLM accuracy and SST-2 dev against pretraining minutes]"
        f"({figure_path(document).relative_to(common.REPOSITORY)})\n"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", default=",".join(OBJECTIVES), help="comma-separated: mlm, electra")
    parser.add_argument("--levers", default="",
                        help=f"comma-separated masked-LM runs with one lever flipped: {', '.join(LEVERS)}")
    parser.add_argument("--short_steps", type=int, default=4500,
                        help="short_first: steps at a quarter of --sequence_length before full-length ones")
    parser.add_argument("--model", default="bert", help="a BERT size (bert: BERT-Tiny)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training minutes of each objective")
    parser.add_argument("--segments", type=int, default=1, help="parts of the training time, each then fine-tuned")
    parser.add_argument("--work_dir", default=None,
                        help="keep the corpus, pretraining runs and fine-tunings here (default: a temporary folder)")
    parser.add_argument("--imdb_reviews", type=int, default=None, help="fewer IMDB reviews (a quick check)")
    parser.add_argument("--pretrain_flags", default="--packing --nsp=false --whole_word_masking",
                        help="more trainers.run flags of both objectives' pretraining (RoBERTa's packing by default)")
    parser.add_argument("--sequence_length", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=5e-4, help="peak (ELECTRA-Small's)")
    parser.add_argument("--clipnorm", type=float, default=1.0, help="gradient clipping by global norm, as BERT's")
    parser.add_argument("--vocabulary_size", type=int, default=8000)
    parser.add_argument("--warmup_steps", type=int, default=300)
    parser.add_argument("--schedule_steps", type=int, default=100_000, help="steps the cosine decay spans")
    parser.add_argument("--pretrain_overrides", default="model.dropout=0.0",
                        help="more params_override of the pretraining (dropout off: Geiping & Goldstein 2022)")
    parser.add_argument("--finetune_config", default="bert/sst2_finetune",
                        help="the recipe of fine-tunings from a pretraining run (a shipped config or a path)")
    parser.add_argument("--scratch_config", default="bert/sst2_local", help="the recipe of fine-tunings from scratch")
    parser.add_argument("--finetune_epochs", type=int, default=None, help="instead of the recipes' own epochs")
    parser.add_argument("--finetune_overrides", default="",
                        help="more --params_override for the fine-tunings from pretraining, e.g. train.learning_rate=2e-4")
    parser.add_argument("--finetune_seeds", type=int, default=1,
                        help="fine-tunings (seeds 1..N) from scratch and from the final checkpoint")
    parser.add_argument("--finetune_steps", type=int, default=None, help="fewer steps an epoch (a quick check)")
    parser.add_argument("--refinetune", default=None, metavar="JSON",
                        help="pretrain nothing: fine-tune this earlier result's pretraining runs again")
    parser.add_argument("--scratch_from", default=None, metavar="JSON",
                        help="keep this earlier result's scratch row (same --model) instead of training it again")
    common.add_trainer_run_flags(parser)
    return parser


def parse_args(argv):
    return build_parser().parse_args(argv)


def run_folders(work_dir, name, finetuning) -> tuple[pathlib.Path, str]:
    """Where result row `name` (an objective, or a lever's row title) pretrains under `work_dir`, and
    the name of its `finetuning` fine-tunings there: one spelling for a run and for `--refinetune`."""
    levers = {title: lever for lever, (title, _, _) in LEVERS.items()}
    key = levers.get(name, name)
    return work_dir / f"pretrain_{key}", f"finetune_{key}_{finetuning}"


def recipe_name(finetune_config, finetune_epochs=None, finetune_overrides="") -> str:
    """The name of a fine-tuning recipe, as `--refinetune` names its fine-tunings' folders: the
    config's, with `--finetune_epochs` and `--finetune_overrides` beside it, since another epoch
    count or value is another recipe whose runs must never find an earlier recipe's finished run and
    resume it."""
    name = pathlib.PurePath(finetune_config).stem + (f"_{finetune_epochs}epochs" if finetune_epochs else "")
    return name + "".join(f"_{override.replace('=', '-')}" for override in finetune_overrides.split(",") if override)


def refinetuned_result(args, parser) -> dict:
    """The earlier result `--refinetune` names; a usage error unless it can be fine-tuned again."""
    earlier = common.load_result(NAME, args.refinetune)
    if earlier["settings"]["segments"] != 1 or not earlier["settings"].get("work_dir"):
        parser.error(f"--refinetune: {args.refinetune} must be a result of one segment with a --work_dir "
                     "(the pretraining runs it fine-tunes)")
    return earlier


def refinetune(args, earlier) -> dict:
    """The document of `--refinetune`: the `earlier` result's pretraining rows, its pretraining runs
    fine-tuned again with this run's fine-tuning flags, its scratch row as it was (scratch has no
    pretrained weights for another recipe to use better; its settings say how it was trained)."""
    before = earlier["settings"]
    finetuning_flags = ("finetune_config", "finetune_epochs", "finetune_overrides", "finetune_seeds", "finetune_steps",
                        "refinetune")
    settings = dict(before, **scratch_recipe(before), **{flag: getattr(args, flag) for flag in finetuning_flags})
    run = argparse.Namespace(**dict(vars(args), model=settings["model"]))
    work_dir, recipe = pathlib.Path(before["work_dir"]), recipe_name(args.finetune_config, args.finetune_epochs, args.finetune_overrides)
    results = {}
    for name, parts in earlier["results"].items():
        pretraining, finetuning = run_folders(work_dir, name, recipe)
        sst2 = fine_tune_seeds(run, work_dir, finetuning, pretraining, args.finetune_seeds)
        print(f"{name}: SST-2 dev {common.accuracy_cell(sst2)}", flush=True)
        results[name] = [dict(parts[0], sst2=sst2)]
    return common.new_document(NAME, settings=settings, corpus=earlier["corpus"], scratch=earlier["scratch"],
                               results=results)


def scratch_from_result(args, parser) -> tuple[dict, dict]:
    """The scratch row of the earlier result `--scratch_from` names, and the settings that trained
    it; a usage error, before any training, unless it trained the same `--model`."""
    earlier = common.load_result(NAME, args.scratch_from)
    if earlier["settings"]["model"] != args.model:
        parser.error(f"--scratch_from: {args.scratch_from} fine-tuned --model={earlier['settings']['model']} from "
                     f"scratch, not --model={args.model}")
    return earlier["scratch"], scratch_recipe(earlier["settings"])


def pretrain_and_fine_tune(args, parser, base, kept_scratch=None) -> dict:
    """The document of a whole run: each objective's (and lever's) pretraining, part by part, each
    part fine-tuned; then scratch, unless `kept_scratch` (`scratch_from_result`) gives its row."""
    objectives = common.selected_models(parser, args.objectives, OBJECTIVES)
    levers = common.selected_models(parser, args.levers, LEVERS) if args.levers else []
    with tempfile.TemporaryDirectory() as temporary_dir:
        work_dir = pathlib.Path(args.work_dir or temporary_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        corpus = work_dir / "corpus.txt"
        counts = write_corpus(base, corpus, args.imdb_reviews)
        print(f"Corpus: {counts['documents']:,} documents, {counts['sentences']:,} sentences, {counts['words']:,} words")
        results = {}
        runs = [(objective, objective, None) for objective in objectives] + [
            (LEVERS[lever][0], "mlm", lever) for lever in levers]
        for name, objective, lever in runs:
            parts = []
            for segment in range(1, args.segments + 1):
                model_dir, finetuning = run_folders(work_dir, name, segment)
                part = pretrain_part(objective, corpus, model_dir, args, work_dir, args.minutes / args.segments / 60,
                                     lever)
                part["minutes"] = args.minutes * segment / args.segments
                seeds = args.finetune_seeds if segment == args.segments else 1
                part["sst2"] = fine_tune_seeds(args, work_dir, finetuning, model_dir, seeds)
                print(f"{name} after {part['minutes']:.0f} min: MLM {part['mlm_accuracy']:.3f}, "
                      f"RTD {part.get('rtd_accuracy')}, SST-2 dev {common.accuracy_cell(part['sst2'])}", flush=True)
                parts.append(part)
            results[name] = parts
        settings = vars(args)
        if kept_scratch:
            scratch, trained_by = kept_scratch
            settings = dict(settings, **trained_by)
        else:
            scratch = fine_tune_seeds(args, work_dir, "scratch", None, args.finetune_seeds)
        print(f"From scratch: SST-2 dev {common.accuracy_cell(scratch)}", flush=True)
    return common.new_document(NAME, settings=settings, corpus=counts, scratch=scratch, results=results)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.markdown_from:
        document = common.load_result(NAME, args.markdown_from)
        plot(document, figure_path(document))
        return common.markdown_from(NAME, markdown, args.markdown_from)
    if args.refinetune and args.scratch_from:
        parser.error("--scratch_from: --refinetune keeps its own result's scratch row; pass one of the two")
    earlier = refinetuned_result(args, parser) if args.refinetune else None
    kept_scratch = scratch_from_result(args, parser) if args.scratch_from else None
    present, base = accuracy.shared_data_present("sst2_local")
    if not present or not (base / "imdb").is_dir():
        print(f"No real SST-2 and IMDB under {base} (set ZOO_SHARED_DATA): nothing to measure.")
        return
    document = refinetune(args, earlier) if earlier else pretrain_and_fine_tune(args, parser, base, kept_scratch)
    common.publish(document, markdown, write_markdown=not args.no_markdown)  # The JSON first: hours of results.
    plot(document, figure_path(document))


if __name__ == "__main__":
    main()
