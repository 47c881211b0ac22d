#!/usr/bin/env bash
# Makes the short 16 kHz mono 16-bit WAVs the quantize/validate/profile tests run Silero VAD on.
# Needs espeak-ng and sox (apt-get install -y espeak-ng sox). Deterministic: sox -R seeds its noise.
set -euo pipefail
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

to16k() { sox -R "$1" -r 16000 -c 1 -b 16 -e signed-integer "$2" "${@:3}"; }

espeak-ng -v en-us -s 150 -w "$tmp/a.wav" "The quick brown fox jumps over the lazy dog."
espeak-ng -v en-us -s 140 -p 30 -w "$tmp/b.wav" "Shipping models to browsers keeps inference on the device."
to16k "$tmp/a.wav" speech-fox.wav gain -n -3
to16k "$tmp/b.wav" "$tmp/b16.wav" gain -n -6

# One second of digital silence, then a second and a half of quiet pink noise.
sox -R -n -r 16000 -c 1 -b 16 -e signed-integer silence.wav trim 0 1.0
sox -R -n -r 16000 -c 1 -b 16 -e signed-integer noise.wav synth 1.5 pinknoise vol 0.05

# Half a second of silence, speech over noise, half a second of silence: a VAD has to find the middle.
sox -R -n -r 16000 -c 1 -b 16 -e signed-integer "$tmp/pad.wav" trim 0 0.5
sox -R "$tmp/pad.wav" "$tmp/b16.wav" "$tmp/pad.wav" "$tmp/padded.wav"
sox -R -n -r 16000 -c 1 -b 16 -e signed-integer "$tmp/hiss.wav" synth "$(soxi -D "$tmp/padded.wav")" whitenoise vol 0.02
sox -R -m "$tmp/padded.wav" "$tmp/hiss.wav" speech-in-noise.wav

ls -l ./*.wav
du -cb ./*.wav | tail -1
