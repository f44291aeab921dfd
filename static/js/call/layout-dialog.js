// "Change layout" (the settings panel's button): a modal <dialog> as Meet's, with the layouts as
// radio buttons and the "Tiles" slider. Choices apply at once (tiles.js setLayout) and are kept in
// this browser (localStorage, layout.js's LAYOUT_STORAGE_KEY); a phone's narrow window shows at
// most PHONE_MAX_TILES whatever was chosen, and its slider stops there.

import {
  LAYOUT_STORAGE_KEY, MAX_TILES, MIN_TILES, PHONE_MAX_TILES, PHONE_MAX_WIDTH, effectiveTileLimit,
  parseLayoutChoice,
} from "./layout.js";

const MODE_NAMES = { auto: "Auto", tiled: "Tiled", spotlight: "Spotlight", sidebar: "Sidebar" };

export class LayoutDialog {
  // announce(text): said to screen readers, as the change is visual.
  constructor({ dialog, tiles, announce = () => {} }) {
    this.dialog = dialog;
    this.tiles = tiles;
    this.announce = announce;
    this.slider = dialog.querySelector("#layout-tiles");
    this.sliderValue = dialog.querySelector("#layout-tiles-value");
    this.opener = null;
    this.choice = parseLayoutChoice(this._read());
    this.tiles.setLayout({ mode: this.choice.mode, tiles: this.choice.tiles });
    for (const radio of this._radios()) {
      radio.addEventListener("change", () => {
        if (!radio.checked) return;
        this._choose({ mode: radio.value });
        this.announce(`Layout: ${MODE_NAMES[radio.value]}`);
      });
    }
    this.slider.addEventListener("input", () => this._choose({ tiles: Number(this.slider.value) }));
    // Escape closes the dialog only (its own cancel), not the settings panel under it, which
    // main.js closes on an Escape that reaches the document.
    dialog.addEventListener("keydown", (event) => {
      if (event.key === "Escape") event.stopPropagation();
    });
    dialog.addEventListener("close", () => {
      if (this.opener && this.opener.isConnected) this.opener.focus();
      this.opener = null;
    });
    // A narrower window may lower the limit (a phone's cap): the slider says what applies.
    window.addEventListener("resize", () => this._render());
  }

  open(opener = null) {
    this.opener = opener;
    this._render();
    if (!this.dialog.open) this.dialog.showModal();
    const checked = this._radios().find((radio) => radio.checked);
    if (checked) checked.focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  _radios() {
    return [...this.dialog.querySelectorAll('input[name="layout-mode"]')];
  }

  _choose(change) {
    this.choice = { ...this.choice, ...change };
    this.tiles.setLayout(this.choice);
    this._render();
    try {
      localStorage.setItem(LAYOUT_STORAGE_KEY, JSON.stringify(this.choice));
    } catch {
      // Storage refused (private mode): it still applies for this visit.
    }
  }

  _read() {
    try {
      return localStorage.getItem(LAYOUT_STORAGE_KEY);
    } catch {
      return null;
    }
  }

  _render() {
    for (const radio of this._radios()) radio.checked = radio.value === this.choice.mode;
    const narrow = window.innerWidth < PHONE_MAX_WIDTH;
    this.slider.max = String(narrow ? PHONE_MAX_TILES : MAX_TILES);
    this.slider.min = String(MIN_TILES);
    const limit = effectiveTileLimit(this.choice.tiles, window.innerWidth);
    this.slider.value = String(limit);
    this.sliderValue.textContent = String(limit);
    this.slider.setAttribute("aria-valuetext", `${limit} tiles`);
  }
}
