# Where the corpora of this recipe live. Sourced by local/data.sh; an environment variable of the same name wins.
#
# SNIPS: Audio SNIPS as SUPERB's slot filling task prepares it (s3prl's preprocess/snips_prepare_data.sh):
#     $SNIPS/all.iob.snips.txt                 `<voice>-snips-<split>-<n> BOS <WORDS> EOS<TAB>O <tags> <intent>`
#     $SNIPS/{train,valid,test}/<voice>-snips-<split>-<n>.wav   16 kHz mono
# Empty by default: set it here (or export it), or pass --db_root DIR to local/data.sh.
# The recipe never downloads. The audio (Amazon Polly voices) and the NLU annotation come from
# https://github.com/aws-samples/aws-lex-noisy-spoken-language-understanding; SUPERB's conversion to the layout
# above is s3prl's preprocess/snips_prepare_data.sh (https://github.com/s3prl/s3prl).
SNIPS=${SNIPS:-}

# LIBRISPEECH: the PAD paper's distillation data (run.sh; local/data.sh --distill_data true): the LibriSpeech folder
# holding the extracted train-clean-100/ and dev-clean/ (https://www.openslr.org/12; usually .../LibriSpeech).
# Only those two subsets are read: a seeded 10 h draw of train-clean-100 and dev-clean (see
# ../../TEMPLATE/slu1/local_librispeech_10h.sh). Empty by default, like the corpus above.
LIBRISPEECH=${LIBRISPEECH:-}
