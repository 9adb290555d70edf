"""The corpora the recipes prepare, one module each (the corpus as distributed -> Kaldi data dirs), and what they
share (common.py). The command-line entry points are toolkit/bin/prepare_<corpus>.py."""
