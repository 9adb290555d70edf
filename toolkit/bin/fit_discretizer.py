"""Fit a speech discretizer (e.g. MFCC k-means) on training data dirs and save it.

    python -m toolkit.bin.fit_discretizer --config conf/discretizer/mfcc_kmeans.yaml --data dump/raw/train \\
        [--data more] --out exp/discretizer/mfcc_kmeans [--set num_units=200 --set kmeans.n_init=5]

The config is YAML: `type:` names the discretizer, the other keys are its options (unknown keys are an error);
`--set key=value` overrides one (dotted keys reach nested sections). Without --config, `--type` with the defaults.
The output folder receives the learnt state and the fully resolved config.yaml.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="YAML with `type` and the discretizer's options")
    parser.add_argument("--type", default=None, help="discretizer type when the config has none (mfcc_kmeans)")
    parser.add_argument("--data", action="extend", nargs="+", required=True, help="training data dir(s)")
    parser.add_argument("--out", required=True, help="output folder, e.g. exp/discretizer/mfcc_kmeans")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's choice); 1 is much faster on a machine whose cores are busy",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    # Imported only now: --help must answer at once, not after torch (and transformers) load.
    import torch

    from toolkit.audio import AudioError
    from toolkit.config import ConfigError, apply_overrides, load_yaml
    from toolkit.discretizers.registry import fit_discretizer
    from toolkit.fileio import TableError

    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        values = load_yaml(args.config) if args.config else {}
        kind = values.pop("type", None)
        if args.type and kind and args.type != kind:
            raise ConfigError(f"--type {args.type} contradicts `type: {kind}` in {args.config}")
        kind = args.type or kind
        if not kind:
            raise ConfigError("no discretizer type: give --type or put `type:` in the --config file")
        values = apply_overrides(values, args.set)
        fit_discretizer(kind, args.data, args.out, values, progress=not args.no_progress)
    except (ConfigError, AudioError, TableError, FileNotFoundError, KeyError, ValueError) as e:
        # KeyError's str() adds quotes; its message is the first argument.
        print(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)  # main() is also called in-process (tests, scripts)
    print(f"discretizer {kind} fitted on {', '.join(args.data)}; saved in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
