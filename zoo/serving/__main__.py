"""python -m zoo.serving: ask a served or local model, check an export's ops, write a serving bundle.

    python -m zoo.serving --server=http://localhost:8501 --model_name=bert --text="I love this movie!"
    python -m zoo.serving --grpc=localhost:8500 --model_name=bert --text="I love this movie!"
    python -m zoo.serving --saved_model=exports/bert --text="I love this movie!"
    python -m zoo.serving check exports/bert [--tf_serving=2.19]
    python -m zoo.serving bundle exports [--tf_serving=2.19] [--local_config]

The clients print one line per text: the class id and the probabilities. A mistake (unreachable
server, unknown model, bad input, a release that cannot load the model) is one line on stderr
and exit code 2. `check` without --tf_serving exits 1 when no release in the table loads the model.
"""

import argparse
import pathlib
import sys

from zoo.serving import ServingError, latest_version_dir, predict_grpc, predict_local, predict_rest

USAGE_ERROR = 2
COMMANDS = ("check", "bundle")


def _predict(argv):
    parser = argparse.ArgumentParser(prog="python -m zoo.serving", description=__doc__.splitlines()[0],
                                     epilog=f"Commands: {', '.join(COMMANDS)} (python -m zoo.serving check --help)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--server", help="TF Serving REST address, e.g. http://localhost:8501 (http:// if no scheme)")
    target.add_argument("--grpc", help="TF Serving gRPC address, e.g. localhost:8500")
    target.add_argument("--saved_model", help="a SavedModel version directory or model base directory")
    parser.add_argument("--model_name", help="with --server or --grpc: the served model's name")
    parser.add_argument("--text", action="append", required=True, help="a text to classify (repeatable)")
    args = parser.parse_args(argv)
    if (args.server or args.grpc) and not args.model_name:
        parser.error(f"{'--server' if args.server else '--grpc'} needs --model_name")
    if args.server:
        predictions = predict_rest(args.server, args.model_name, args.text)
    elif args.grpc:
        predictions = predict_grpc(args.grpc, args.model_name, args.text)
    else:
        predictions = predict_local(args.saved_model, args.text)
    for text, prediction in zip(args.text, predictions):
        probabilities = ", ".join(f"{p:.4f}" for p in prediction["probabilities"])
        print(f"{text!r}: class {prediction['class_id']} (probabilities {probabilities})")


def _command(argv):
    from zoo.serving import bundle, compatibility

    parser = argparse.ArgumentParser(prog="python -m zoo.serving")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="list the ops beyond core TensorFlow and the TF Serving releases that "
                                              "load them")
    check.add_argument("export", help="a SavedModel version directory or model base directory (its latest version)")
    write = commands.add_parser("bundle", help="write models.config (/models paths), batching.config, "
                                               "monitoring.config and docker-compose.yml into EXPORT_DIR")
    write.add_argument("export_dir", help="the --export_dir of trainers.run: <export_dir>/<model>/<version>/")
    write.add_argument("--local_config", action="store_true",
                       help=f"also write {bundle.LOCAL_MODELS_CONFIG} with this machine's absolute paths")
    for command in (check, write):
        command.add_argument("--tf_serving", metavar="X.Y", help="a TF Serving release (X.Y or X.Y.Z) that must "
                                                                 "load the model(s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            version_dir = latest_version_dir(args.export)
            reports = compatibility.op_inventory(version_dir)
            print("\n".join(compatibility.format_report(version_dir, reports)))
            if args.tf_serving:
                release = compatibility.check_release(reports, args.tf_serving, model=str(version_dir))
                print(f"TF Serving {args.tf_serving}: loads it ({release})")
            elif not compatibility.loading_releases(reports):
                return 1
        else:
            if not pathlib.Path(args.export_dir).is_dir() or not bundle.exported_models(args.export_dir):
                raise ServingError(f"{args.export_dir} holds no exported model (<model>/<version>/saved_model.pb)")
            written = bundle.write_bundle(args.export_dir, tf_serving=args.tf_serving, local_config=args.local_config)
            release = written.pop("release")
            print(f"Serving bundle for TF Serving {release}: " + ", ".join(str(path) for path in written.values()))
            print(f"Start it: cd {args.export_dir} && docker compose up")
    except compatibility.IncompatibleError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] in COMMANDS:
            return _command(argv)
        _predict(argv)
    except ServingError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
