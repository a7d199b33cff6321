// Local media: devices, capture with graceful fallbacks, and the simulcast
// layers tracks are published with (codecs: negotiation.js).

// Camera simulcast, lowest first as docs/protocol.md asks. At 1280x720 the
// layers are 320x180, 640x360 and 1280x720; the bitrates cap each layer
// near what a 720p conference camera needs.
export const CAMERA_ENCODINGS = [
  { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'h', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

// Screen shares are one layer: text must stay sharp, and there is usually
// only one share in a room.
export const SCREEN_ENCODINGS = [{ maxBitrate: 2_500_000, maxFramerate: 15 }];

// listDevices fills the camera and microphone pickers, keeping the choice.
export async function listDevices(cameraSelect, micSelect) {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select, label] of [['videoinput', cameraSelect, 'Camera'], ['audioinput', micSelect, 'Microphone']]) {
    const current = select.value;
    select.replaceChildren();
    for (const d of devices.filter((x) => x.kind === kind && x.deviceId)) {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${label} ${select.length + 1}`;
      select.append(o);
    }
    select.disabled = select.length === 0;
    if (current && [...select.options].some((o) => o.value === current)) select.value = current;
  }
}

// capture asks for camera and microphone, then microphone only, then
// nothing (receive-only). It returns the stream and, when something was
// refused, a sentence for the user.
export async function capture(cameraId, micId) {
  const video = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
  if (cameraId) video.deviceId = { exact: cameraId };
  const audio = { echoCancellation: true, noiseSuppression: true };
  if (micId) audio.deviceId = { exact: micId };
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return { stream: new MediaStream(), notice: 'This page cannot use a camera or microphone here (it needs https): joining to watch and listen only.' };
  }
  let camError;
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ video, audio }), notice: '' };
  } catch (e) {
    camError = e;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio });
    return { stream, notice: `${describe(camError, 'Camera')} Joining with audio only.` };
  } catch (e) {
    return { stream: new MediaStream(), notice: `${describe(e, 'Camera and microphone')} Joining to watch and listen only.` };
  }
}

function describe(err, what) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return `${what}: permission denied.`;
    case 'NotFoundError':
    case 'OverconstrainedError':
      return `${what}: no device found.`;
    case 'NotReadableError':
      return `${what}: the device is in use by another application.`;
    default:
      return `${what} unavailable.`;
  }
}
