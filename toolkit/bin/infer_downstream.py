"""Run a trained downstream head (toolkit.bin.train_downstream) on a data dir and write its predictions.

    python -m toolkit.bin.infer_downstream --model exp/pad_slocal_ic --data data/ic_test \\
        --out exp/pad_slocal_ic/eval/ic_test/hyp.utt2intent [--upstream DIR] [--threads N] [--device cpu|cuda|auto]

--model is the training run folder (its head.pt) or a head.pt file. The upstream is the one the head was trained on
(recorded in head.pt) unless --upstream names another with the same layers and dims (e.g. the run moved). The output
is a table in the format of the task's labels: `uttid label` for ic/er (utt2intent / utt2emotion), `uttid tagged
transcript` for sf (text.slots), sorted like the data dir; toolkit.bin.score_slu scores it. It is written atomically.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from toolkit.device import add_device_option


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="training run folder (with head.pt) or a head.pt file")
    parser.add_argument("--data", required=True, help="data dir to predict (wav.scp)")
    parser.add_argument("--out", required=True, help="output table, e.g. .../eval/test/hyp.utt2intent")
    parser.add_argument("--upstream", default=None, help="override the upstream recorded in head.pt")
    parser.add_argument("--max-batch-seconds", type=float, default=200.0, help="padded audio per batch")
    add_device_option(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    args = parser.parse_args(argv)
    # Imported only now: --help must answer at once, not after torch (and transformers) load.
    import torch

    from toolkit.audio import AudioError
    from toolkit.device import device_option
    from toolkit.fileio import TableError, atomic_write
    from toolkit.hardware import choose_precision
    from toolkit.models.downstream_task import load_task, read_task
    from toolkit.models.reference_upstreams import load_upstream
    from toolkit.train.downstream import DownstreamBatchConfig, HiddenStates, open_labelled, predict_set

    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    device = device_option(parser, args.device)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    head_file = Path(args.model)
    if head_file.is_dir():
        head_file = head_file / "head.pt"
    try:
        began = time.time()
        state = read_task(head_file)
        upstream = load_upstream(args.upstream or state["upstream"], device=device)
        task, state = load_task(head_file, upstream.num_layers, upstream.dim, state)
        task.head.to(device)
        # The upstream's precision is this host's choice (auto), or fp32 where the head was trained in fp32.
        trained = state.get("config", {}).get("precision", "fp32")
        choice = choose_precision("fp32" if trained == "fp32" else "auto", device, ("fp32", "bf16"))
        print(choice.describe(), file=sys.stderr)
        precision = choice.precision
        subset = open_labelled(Path(args.data), None)
        features = HiddenStates(upstream, precision, cache=False)
        batching = DownstreamBatchConfig(max_batch_seconds=args.max_batch_seconds, max_utts=None)
        longest = max(subset.seconds.values())
        if longest > batching.max_batch_seconds:
            batching.max_batch_seconds = longest  # one long utterance alone still fits
        hyps = predict_set(task, features, subset, subset.utts, batching, Path(args.data).name, progress=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(args.out) as f:
            f.writelines(f"{u} {hyps[u]}\n" if hyps[u] else f"{u}\n" for u in subset.utts)
    except (AudioError, TableError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)
    print(f"{len(subset.utts)} predictions ({task.kind}) in {time.time() - began:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
