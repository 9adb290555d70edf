# Where the corpus of this recipe lives. Sourced by local/data.sh; an environment variable of the same name wins.
#
# SLURP: a clone of https://github.com/pswietojanski/slurp with its audio extracted beside the text, i.e.
#     $SLURP/dataset/slurp/train.jsonl devel.jsonl test.jsonl train_synthetic.jsonl metadata.json
#     $SLURP/audio/slurp_real/*.flac  $SLURP/audio/slurp_synth/*.flac
# Empty by default: set it here (or export it), or pass --db_root DIR to local/data.sh.
# The recipe never downloads: the text is in the repository; the audio (slurp_real.tar.gz, slurp_synth.tar.gz) is
# on https://zenodo.org/record/4274930 (the repository's scripts/download_audio.sh fetches it into audio/).
SLURP=${SLURP:-}
