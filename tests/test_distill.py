"""End to end: `--task=distill` makes a student mimic its teacher, from a run's model_dir or a SavedModel."""

import json

import numpy as np

from cli_runs import run_trainer


def test_distilled_student_agrees_with_its_teacher_more_than_one_trained_on_labels(data_dir, tmp_path):
    # A deliberately weak teacher (2 epochs, about 77% accurate): its mistakes are what a student
    # trained on the labels alone does not copy.
    teacher = run_trainer("--model=transformer", "--epochs=2", f"--model_dir={tmp_path / 'teacher'}",
                          f"--export_dir={tmp_path / 'exports'}", f"--data_dir={data_dir}")
    assert teacher.returncode == 0, teacher.stderr[-3000:]
    teacher_accuracy = json.loads((tmp_path / "teacher" / "metrics.json").read_text())["accuracy"]

    def student(name, teacher_path, alpha):
        result = run_trainer("--model=gru", "--task=distill", f"--teacher={teacher_path}", f"--alpha={alpha}",
                             "--temperature=2", "--epochs=2", f"--model_dir={tmp_path / name}",
                             f"--export_dir={tmp_path / 'exports'}", f"--data_dir={data_dir}")
        assert result.returncode == 0, result.stderr[-3000:]
        return result, json.loads((tmp_path / name / "metrics.json").read_text())

    # From the teacher's model_dir: exported once into the student's model_dir, then read as served.
    distilled_run, distilled = student("distilled", tmp_path / "teacher", alpha=0.9)
    assert (tmp_path / "distilled" / "teacher" / "transformer" / "1" / "saved_model.pb").is_file()
    targets = sorted((tmp_path / "distilled" / "teacher_targets").glob("*.npy"))
    assert len(targets) == 2  # train and test splits, computed once before training.
    assert {np.load(path).shape for path in targets} == {(4000, 2), (1000, 2)}
    assert "teacher_agreement" in distilled_run.stdout  # In the progress bar and the eval lines.

    # alpha=0: the same student and steps on the labels alone (the teacher is only scored against).
    _, labels_only = student("labels_only", tmp_path / "exports" / "transformer", alpha=0.0)

    assert 0.6 < teacher_accuracy < 0.9
    assert distilled["teacher_agreement"] > labels_only["teacher_agreement"] + 0.05, (distilled, labels_only)
    assert (tmp_path / "exports" / "gru" / "2" / "saved_model.pb").is_file()  # Students export as usual.
