#!/usr/bin/env bash
# Makes the demo's sample clip: silence, a sentence, silence, a sentence, silence (16 kHz mono),
# plus speech.json with where the speech is, so a test can check the segments the VAD finds.
# Needs espeak-ng and sox (apt-get install -y espeak-ng sox); the outputs are committed.
set -euo pipefail
cd "$(dirname "$0")/../public/samples"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
raw() { sox -R "$1" -r 16000 -c 1 -b 16 -e signed-integer "$2" "${@:3}"; }
quiet() { sox -R -n -r 16000 -c 1 -b 16 -e signed-integer "$1" trim 0 "$2"; }

espeak-ng -v en-us -s 150 -w "$tmp/a.wav" "Edgeship keeps models healthy on the device."
espeak-ng -v en-us -s 140 -p 30 -w "$tmp/b.wav" "It works offline, and updates over the air."
# espeak pads its output with silence: trim it so the labelled intervals are the voice itself.
raw "$tmp/a.wav" "$tmp/a16.wav" silence 1 0.02 1% reverse silence 1 0.02 1% reverse gain -n -3
raw "$tmp/b.wav" "$tmp/b16.wav" silence 1 0.02 1% reverse silence 1 0.02 1% reverse gain -n -3
quiet "$tmp/s1.wav" 1.5
quiet "$tmp/s2.wav" 2.0
quiet "$tmp/s3.wav" 1.5
sox "$tmp/s1.wav" "$tmp/a16.wav" "$tmp/s2.wav" "$tmp/b16.wav" "$tmp/s3.wav" speech.wav

a=$(soxi -D "$tmp/a16.wav"); b=$(soxi -D "$tmp/b16.wav"); total=$(soxi -D speech.wav)
node -e '
const [a, b, total] = process.argv.slice(1).map(Number);
const r = (x) => Math.round(x * 1000) / 1000;
const speech = [{ start: 1.5, end: r(1.5 + a) }, { start: r(3.5 + a), end: r(3.5 + a + b) }];
console.log(JSON.stringify({ sampleRate: 16000, durationSeconds: r(total), speech }, null, 2));
' "$a" "$b" "$total" > speech.json
cat speech.json
