# Where the corpus of this recipe lives. Sourced by local/data.sh; an environment variable of the same name wins.
#
# IEMOCAP: the IEMOCAP_full_release folder, holding Session1 ... Session5, each with
#     sentences/wav/<dialog>/<turn>.wav  dialog/EmoEvaluation/<dialog>.txt  dialog/transcriptions/<dialog>.txt
# Empty by default: set it here (or export it), or pass --db_root DIR to local/data.sh.
# The recipe never downloads: IEMOCAP is released by USC SAIL on request, https://sail.usc.edu/iemocap/
IEMOCAP=${IEMOCAP:-}
