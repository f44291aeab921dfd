// Local capture: camera and microphone tracks, device lists, the microphone level meter.

// 720p where the camera offers it: the top simulcast layer (static/js/call/media.js).
const CAMERA_CONSTRAINTS = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

export class LocalDevices extends EventTarget {
  constructor() {
    super();
    this.micTrack = null;
    this.cameraTrack = null;
    this.micDeviceId = "";
    this.cameraDeviceId = "";
    this.speakerDeviceId = "";
    this.error = null;
  }

  // Opens camera and microphone; either may be missing (denied or absent) and the call goes on.
  async open() {
    this.error = null;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: this._audioConstraints(),
        video: this._videoConstraints(),
      });
      this.micTrack = stream.getAudioTracks()[0] || null;
      this.cameraTrack = stream.getVideoTracks()[0] || null;
    } catch (error) {
      this.error = error;
      // Try each kind alone: a missing camera must not cost the microphone.
      this.micTrack = await this._tryOne({ audio: this._audioConstraints() }, "audio");
      this.cameraTrack = await this._tryOne({ video: this._videoConstraints() }, "video");
    }
    this._remember();
    this.dispatchEvent(new Event("change"));
  }

  async _tryOne(constraints, kind) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      return (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks())[0] || null;
    } catch {
      return null;
    }
  }

  _audioConstraints() {
    return this.micDeviceId ? { deviceId: { exact: this.micDeviceId } } : true;
  }

  _videoConstraints() {
    return this.cameraDeviceId
      ? { ...CAMERA_CONSTRAINTS, deviceId: { exact: this.cameraDeviceId } }
      : CAMERA_CONSTRAINTS;
  }

  _remember() {
    if (this.micTrack) this.micDeviceId = this.micTrack.getSettings().deviceId || this.micDeviceId;
    if (this.cameraTrack) this.cameraDeviceId = this.cameraTrack.getSettings().deviceId || this.cameraDeviceId;
  }

  async list() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return {
      cameras: devices.filter((d) => d.kind === "videoinput"),
      mics: devices.filter((d) => d.kind === "audioinput"),
      speakers: devices.filter((d) => d.kind === "audiooutput"),
    };
  }

  // Returns the new track (the caller swaps it into the call); the old one is stopped.
  async switchCamera(deviceId) {
    this.cameraDeviceId = deviceId;
    const track = await this._tryOne({ video: this._videoConstraints() }, "video");
    if (track) {
      if (this.cameraTrack) this.cameraTrack.stop();
      this.cameraTrack = track;
      this.dispatchEvent(new Event("change"));
    }
    return track;
  }

  async switchMic(deviceId) {
    this.micDeviceId = deviceId;
    const track = await this._tryOne({ audio: this._audioConstraints() }, "audio");
    if (track) {
      const enabled = this.micTrack ? this.micTrack.enabled : true;
      if (this.micTrack) this.micTrack.stop();
      track.enabled = enabled;
      this.micTrack = track;
      this.dispatchEvent(new Event("change"));
    }
    return track;
  }

  // Camera off releases the device (its light goes off); on opens it again.
  stopCamera() {
    if (this.cameraTrack) this.cameraTrack.stop();
    this.cameraTrack = null;
    this.dispatchEvent(new Event("change"));
  }

  async reopenCamera() {
    return this.switchCamera(this.cameraDeviceId);
  }

  stopAll() {
    if (this.micTrack) this.micTrack.stop();
    if (this.cameraTrack) this.cameraTrack.stop();
    this.micTrack = null;
    this.cameraTrack = null;
  }
}

// Draws the microphone's level into a meter element (CSS width of its bar + aria-valuenow).
export class LevelMeter {
  constructor(meterElement) {
    this.meter = meterElement;
    this.bar = meterElement.querySelector(".level-meter-bar");
    this.context = null;
    this.source = null;
    this.analyser = null;
    this.frame = 0;
  }

  attach(track) {
    this.detach();
    if (!track) return;
    this.context = this.context || new AudioContext();
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 512;
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.source.connect(this.analyser);
    const samples = new Float32Array(this.analyser.fftSize);
    const draw = () => {
      this.analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const sample of samples) sum += sample * sample;
      const rms = Math.sqrt(sum / samples.length);
      // Speech RMS sits around 0.01-0.3: a log scale makes quiet voices visible.
      const level = Math.max(0, Math.min(100, Math.round((Math.log10(rms + 1e-6) + 3) * 40)));
      this.bar.style.width = `${level}%`;
      this.meter.setAttribute("aria-valuenow", String(level));
      this.frame = requestAnimationFrame(draw);
    };
    if (this.context.state === "suspended") this.context.resume().catch(() => {});
    draw();
  }

  detach() {
    cancelAnimationFrame(this.frame);
    if (this.source) this.source.disconnect();
    this.source = null;
    this.analyser = null;
  }

  close() {
    this.detach();
    if (this.context) this.context.close().catch(() => {});
    this.context = null;
  }
}
