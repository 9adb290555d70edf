# Where the corpora of this recipe live. Sourced by local/data.sh; an environment variable of the same name wins.
#
# SLURP: a clone of https://github.com/pswietojanski/slurp with its audio extracted beside the text, i.e.
#     $SLURP/dataset/slurp/train.jsonl devel.jsonl test.jsonl train_synthetic.jsonl metadata.json
#     $SLURP/audio/slurp_real/*.flac  $SLURP/audio/slurp_synth/*.flac
# Empty by default: set it here (or export it), or pass --db_root DIR to local/data.sh.
# The recipe never downloads: the text is in the repository; the audio (slurp_real.tar.gz, slurp_synth.tar.gz) is
# on https://zenodo.org/record/4274930 (the repository's scripts/download_audio.sh fetches it into audio/).
SLURP=${SLURP:-}

# LIBRISPEECH: the PAD paper's distillation data (run.sh; local/data.sh --distill_data true): the LibriSpeech folder
# holding the extracted train-clean-100/ and dev-clean/ (https://www.openslr.org/12; usually .../LibriSpeech).
# Only those two subsets are read: a seeded 10 h draw of train-clean-100 and dev-clean (see
# ../../TEMPLATE/slu1/local_librispeech_10h.sh). Empty by default, like the corpus above.
LIBRISPEECH=${LIBRISPEECH:-}
