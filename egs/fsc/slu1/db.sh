# Where the corpus of this recipe lives. Sourced by local/data.sh; an environment variable of the same name wins.
#
# FSC: the Fluent Speech Commands folder as its archive unpacks, fluent_speech_commands_dataset/, holding
#     $FSC/data/train_data.csv valid_data.csv test_data.csv
#     $FSC/wavs/speakers/<speakerId>/<uuid>.wav
# Empty by default: set it here (or export it), or pass --db_root DIR to local/data.sh.
# The recipe never downloads: the corpus is distributed by Fluent.ai after accepting its license,
# https://fluent.ai/fluent-speech-commands-a-dataset-for-spoken-language-understanding-research/
FSC=${FSC:-}
