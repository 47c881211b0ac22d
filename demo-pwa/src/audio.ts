/** Audio in, 16 kHz mono Float32Array out: what Silero VAD expects. */
export const VAD_SAMPLE_RATE = 16_000;

export async function decodeToMono16k(bytes: ArrayBuffer): Promise<Float32Array> {
  const decoded = await new AudioContext().decodeAudioData(bytes);
  const frames = Math.ceil(decoded.duration * VAD_SAMPLE_RATE);
  // An OfflineAudioContext at 16 kHz resamples and downmixes in one render.
  const offline = new OfflineAudioContext(1, frames, VAD_SAMPLE_RATE);
  const source = offline.createBufferSource();
  source.buffer = decoded;
  source.connect(offline.destination);
  source.start();
  return (await offline.startRendering()).getChannelData(0);
}

/** Records from the microphone for a few seconds, where the browser allows it. */
export async function recordMicrophone(seconds: number): Promise<ArrayBuffer> {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const recorder = new MediaRecorder(stream);
  const parts: Blob[] = [];
  recorder.ondataavailable = (event) => parts.push(event.data);
  const stopped = new Promise((resolve) => {
    recorder.onstop = resolve;
  });
  recorder.start();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  recorder.stop();
  await stopped;
  for (const track of stream.getTracks()) track.stop();
  return new Blob(parts).arrayBuffer();
}
