// The WAV reader lives with the publish pipeline (calibration audio); tests import it from here too.
export { readWav, type Wav } from '../src/publish/wav.ts';
