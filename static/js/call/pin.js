// Pinning (the People panel's ⋮ menu, "Pin" / "Unpin"): the pinned person takes the stage of
// this page's own layout and everyone else moves to a strip beside it (below it on a phone).
// It is nobody else's business: nothing is sent to the server, and others' layouts stay as
// they are. One person at a time, as in Meet. tiles.js reads `pinnedPeerId` in its layout();
// the look is .tile-grid-pinned / .tile-pinned in call.css.

export class Pin {
  // announce(text): said to screen readers (the call's live region), as the change is visual.
  constructor(tiles, { announce = () => {} } = {}) {
    this.tiles = tiles;
    this.announce = announce;
  }

  get peerId() {
    return this.tiles.pinnedPeerId;
  }

  isPinned(peerId) {
    return peerId !== null && this.tiles.pinnedPeerId === peerId;
  }

  pin(peerId, name = "") {
    this.tiles.pinnedPeerId = peerId;
    this.tiles.layout();
    if (name) this.announce(`Pinned to your screen: ${name}`);
  }

  unpin(name = "") {
    if (this.tiles.pinnedPeerId === null) return;
    this.tiles.pinnedPeerId = null;
    this.tiles.layout();
    if (name) this.announce(`Unpinned: ${name}`);
  }

  // The pinned person left: the stage goes back to everyone.
  forget(peerId) {
    if (this.isPinned(peerId)) this.unpin();
  }
}
