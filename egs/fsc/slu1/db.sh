# Where the corpora of this recipe live. Sourced by local/data.sh; an environment variable of the same name wins.
#
# FSC: the Fluent Speech Commands folder as its archive unpacks, fluent_speech_commands_dataset/, holding
#     $FSC/data/train_data.csv valid_data.csv test_data.csv
#     $FSC/wavs/speakers/<speakerId>/<uuid>.wav
# Empty by default: set it here (or export it), or pass --db_root DIR to local/data.sh.
# The recipe never downloads: the corpus is distributed by Fluent.ai after accepting its license,
# https://fluent.ai/fluent-speech-commands-a-dataset-for-spoken-language-understanding-research/
FSC=${FSC:-}

# LIBRISPEECH: the PAD paper's distillation data (run.sh; local/data.sh --distill_data true): the LibriSpeech folder
# holding the extracted train-clean-100/ and dev-clean/ (https://www.openslr.org/12; usually .../LibriSpeech).
# Only those two subsets are read: a seeded 10 h draw of train-clean-100 and dev-clean (see
# ../../TEMPLATE/slu1/local_librispeech_10h.sh). Empty by default, like the corpus above.
LIBRISPEECH=${LIBRISPEECH:-}
