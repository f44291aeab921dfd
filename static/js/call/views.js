// How this page shows each remote video, told to the SFU ("setConsumerView", docs/protocol.md)
// so that it forwards the simulcast layer the video's size needs and nothing for a video that
// is not on screen (scrolled away, in a hidden tab). Sizes are in device pixels; 0 x 0 means
// "not shown". Reports are debounced and sent only when the size changes by more than a step,
// so a window being resized does not become a stream of requests. The person's own cap (the
// "Receive resolution" setting: data saver, standard definition) lowers every reported height.

const REPORT_DELAY_MS = 250;
// A change smaller than this fraction of the last reported height is not worth a report.
const HEIGHT_STEP = 0.15;

export class ViewReporter {
  // send(consumerId, width, height) -> Promise
  constructor(send) {
    this._send = send;
    this._watched = new Map(); // consumerId -> {element, visible, reported, timer}
    this.maxHeight = 0; // 0: no cap
    this._byElement = new Map(); // element -> consumerId
    this._resize = new ResizeObserver((entries) => {
      for (const entry of entries) this._changed(this._byElement.get(entry.target));
    });
    this._intersection = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const consumerId = this._byElement.get(entry.target);
        const view = this._watched.get(consumerId);
        if (!view) continue;
        view.visible = entry.isIntersecting;
        this._changed(consumerId);
      }
    });
    this._onVisibility = () => {
      for (const consumerId of this._watched.keys()) this._changed(consumerId);
    };
    document.addEventListener("visibilitychange", this._onVisibility);
  }

  watch(consumerId, element) {
    if (!element) return;
    const existing = this._watched.get(consumerId);
    if (existing && existing.element === element) return;
    if (existing) this.unwatch(consumerId);
    // Until the first intersection report, assume shown: the SFU then starts with a layer.
    this._watched.set(consumerId, { element, visible: true, reported: null, timer: null });
    this._byElement.set(element, consumerId);
    this._resize.observe(element);
    this._intersection.observe(element);
    this._changed(consumerId);
  }

  // Cap every reported height (device pixels; 0: none) and report again where that changes.
  setMaxHeight(maxHeight) {
    this.maxHeight = maxHeight > 0 ? maxHeight : 0;
    for (const consumerId of this._watched.keys()) this._changed(consumerId);
  }

  unwatch(consumerId) {
    const view = this._watched.get(consumerId);
    if (!view) return;
    clearTimeout(view.timer);
    this._resize.unobserve(view.element);
    this._intersection.unobserve(view.element);
    this._byElement.delete(view.element);
    this._watched.delete(consumerId);
  }

  clear() {
    for (const consumerId of [...this._watched.keys()]) this.unwatch(consumerId);
  }

  close() {
    this.clear();
    this._resize.disconnect();
    this._intersection.disconnect();
    document.removeEventListener("visibilitychange", this._onVisibility);
  }

  // The size the video takes on screen now, in device pixels; {0, 0} when not shown.
  _size(view) {
    const element = view.element;
    if (document.visibilityState === "hidden" || !view.visible || !element.isConnected) {
      return { width: 0, height: 0 };
    }
    const ratio = window.devicePixelRatio || 1;
    let width = Math.round(element.clientWidth * ratio);
    let height = Math.round(element.clientHeight * ratio);
    if (!width || !height) return { width: 0, height: 0 };
    if (this.maxHeight && height > this.maxHeight) {
      width = Math.max(1, Math.round((width * this.maxHeight) / height));
      height = this.maxHeight;
    }
    return { width, height };
  }

  _changed(consumerId) {
    const view = this._watched.get(consumerId);
    if (!view) return;
    clearTimeout(view.timer);
    view.timer = setTimeout(() => this._report(consumerId), REPORT_DELAY_MS);
  }

  _report(consumerId) {
    const view = this._watched.get(consumerId);
    if (!view) return;
    const size = this._size(view);
    const last = view.reported;
    if (last) {
      const shownChanged = (last.height === 0) !== (size.height === 0);
      const step = Math.abs(size.height - last.height) > last.height * HEIGHT_STEP;
      if (!shownChanged && !step) return;
    }
    view.reported = size;
    this._send(consumerId, size.width, size.height).catch((error) => {
      // The consumer may have closed meanwhile: nothing to correct.
      console.debug("setConsumerView failed", error);
    });
  }
}
