# Where the corpora of this recipe live. Sourced by local/data.sh; an environment variable of the same name wins.
#
# IEMOCAP: the IEMOCAP_full_release folder, holding Session1 ... Session5, each with
#     sentences/wav/<dialog>/<turn>.wav  dialog/EmoEvaluation/<dialog>.txt  dialog/transcriptions/<dialog>.txt
# Empty by default: set it here (or export it), or pass --db_root DIR to local/data.sh.
# The recipe never downloads: IEMOCAP is released by USC SAIL on request, https://sail.usc.edu/iemocap/
IEMOCAP=${IEMOCAP:-}

# LIBRISPEECH: the PAD paper's distillation data (run.sh; local/data.sh --distill_data true): the LibriSpeech folder
# holding the extracted train-clean-100/ and dev-clean/ (https://www.openslr.org/12; usually .../LibriSpeech).
# Only those two subsets are read: a seeded 10 h draw of train-clean-100 and dev-clean (see
# ../../TEMPLATE/slu1/local_librispeech_10h.sh). Empty by default, like the corpus above.
LIBRISPEECH=${LIBRISPEECH:-}
