# Where the corpora of this recipe live. Sourced by local/data.sh; an environment variable of the same name wins.
#
# LIBRISPEECH: the folder that holds the extracted subsets, as the openslr.org/12 archives unpack them:
#     $LIBRISPEECH/train-clean-100/ train-clean-360/ train-other-500/ dev-clean/ dev-other/ test-clean/ test-other/
#     $LIBRISPEECH/SPEAKERS.TXT     (optional: spk2gender)
# (each archive, e.g. train-clean-100.tar.gz, unpacks to LibriSpeech/<subset>/, so this is usually .../LibriSpeech).
# The recipe never downloads: fetch the archives from https://www.openslr.org/12 and extract them yourself.
LIBRISPEECH=${LIBRISPEECH:-/path/to/LibriSpeech}
