#!/usr/bin/env bash
# Create a new ASR recipe folder that shares this template's pipeline:
#     egs/TEMPLATE/asr1/setup.sh egs/<corpus>/asr1
# then write <recipe>/local/data.sh (the only corpus-specific script) and adjust run.sh.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "Usage: $0 egs/<corpus>/asr1" >&2
    exit 1
fi
target=$1
template=$(cd "$(dirname "$0")" && pwd)
if [ -e "$target" ]; then
    echo "error: $target already exists; choose a new folder" >&2
    exit 1
fi
mkdir -p "$target/local" "$target/conf"
rel=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$template" "$target")
for f in asr.sh path.sh utils; do ln -s "$rel/$f" "$target/$f"; done
cp "$template/cmd.sh" "$target/cmd.sh"  # a copy: clusters differ per recipe
cat > "$target/run.sh" <<'RUN'
#!/usr/bin/env bash
# Recipe entry point: corpus options, then the shared pipeline. Any asr.sh option can be added on the command line.
set -euo pipefail
cd "$(dirname "$0")"
./asr.sh \
    --train_set train \
    --valid_set dev \
    --test_sets "test" \
    "$@"
RUN
cat > "$target/local/data.sh" <<'DATA'
#!/usr/bin/env bash
# Corpus-specific data preparation: write Kaldi data dirs data/train, data/dev, data/test
# (wav.scp, text, utt2spk, spk2utt; sorted by utterance id; utterance ids start with the speaker id).
# Check each with: python -m toolkit.bin.validate_data_dir --data data/<set>
set -euo pipefail
nj=1
. ./path.sh
. utils/parse_options.sh
echo "error: $(pwd)/local/data.sh is a template; write the data preparation for this corpus" >&2
exit 1
DATA
chmod +x "$target/run.sh" "$target/local/data.sh"
echo "created $target: now write $target/local/data.sh"
