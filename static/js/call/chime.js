// A short two-note chime made with WebAudio (no sound file), played to hosts and co-hosts when
// someone asks to join. Browsers let a page make sound only after a user gesture: `prepare()`
// is called from one (the "Join now" click), and `play()` stays silent where sound is still
// blocked; the notice and the badge say it all the same.

const MIN_GAP_MS = 1500; // several knocks at once chime once

export class Chime {
  constructor() {
    this.context = null;
    this.played = 0; // how many chimes were actually sounded (read by the browser tests)
    this.lastAt = -Infinity;
  }

  // Call from a user gesture: makes the audio context that later chimes use.
  prepare() {
    if (this.context) {
      if (this.context.state === "suspended") this.context.resume().catch(() => {});
      return;
    }
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!AudioContextClass) return;
    try {
      this.context = new AudioContextClass();
      if (this.context.state === "suspended") this.context.resume().catch(() => {});
    } catch {
      this.context = null;
    }
  }

  // Resolves to whether a chime sounded.
  async play() {
    const context = this.context;
    if (!context) return false;
    const now = performance.now();
    if (now - this.lastAt < MIN_GAP_MS) return false;
    this.lastAt = now;
    try {
      if (context.state === "suspended") await context.resume();
    } catch {
      return false;
    }
    if (context.state !== "running") return false; // autoplay blocked
    const start = context.currentTime + 0.02;
    for (const [frequency, offset] of [[659.25, 0], [880, 0.17]]) {
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = "sine";
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.18, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.35);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(start + offset);
      oscillator.stop(start + offset + 0.4);
    }
    this.played += 1;
    return true;
  }
}
