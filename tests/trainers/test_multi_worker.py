"""Two MultiWorkerMirroredStrategy workers on 127.0.0.1 train to the same weights; only the chief writes."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent.parent


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_two_workers_agree_and_only_the_chief_writes(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    command = [
        sys.executable, "-m", "trainers.run", "--model=gru", "--strategy=multi_worker", "--epochs=2",
        "--steps_per_epoch=5", "--steps_per_loop=5", f"--model_dir={tmp_path / 'run'}",
        f"--export_dir={tmp_path / 'exports'}", f"--data_dir={tmp_path / 'data'}",
    ]
    # Build the dataset once, so the two workers do not race to prepare it.
    subprocess.run([sys.executable, "-c", f"import zoo.data as d; d.dataset_info('zoo_sentiment', {str(tmp_path / 'data')!r})"],
                   cwd=REPO, check=True, capture_output=True, timeout=120)
    started = time.monotonic()
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        environment = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
        processes.append(subprocess.Popen(command, cwd=REPO, env=environment, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    try:
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            process.kill()
    wall_seconds = time.monotonic() - started
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
        assert "Strategy: CollectiveAllReduceStrategy with 2 replica(s)" in stdout  # MultiWorkerMirrored

    checksums = [next(line for line in stdout.splitlines() if line.startswith("Weights checksum:")) for stdout, _ in outputs]
    assert checksums[0] == checksums[1]
    chief, other = outputs[0][0], outputs[1][0]
    assert "SavedModel:" in chief and "SavedModel:" not in other
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["global_step"] == 10
    assert sorted(path.name for path in (tmp_path / "exports" / "gru").iterdir()) == ["1"]
    print(f"2-worker run: {wall_seconds:.1f} s")
