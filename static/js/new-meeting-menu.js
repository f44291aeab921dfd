// "New meeting" on the home page (templates/rooms/_new_meeting_menu.html), as in Meet.
//
// Without this script the button is a link to the three choices on a page of their own. With
// it, the link becomes a menu button (the WAI-ARIA menu button pattern): a click, Enter or Space
// opens the menu on its first item, ArrowDown too, ArrowUp on its last. In the menu ArrowDown
// and ArrowUp move (wrapping round), Home and End jump, a letter moves to the next item that
// starts with it, Escape closes it and gives the focus back to the button, Tab closes it and
// moves on; a click anywhere else closes it.
//
// And the "Here's the link to your meeting" dialog ("Create a meeting for later"), open in the
// page without a script, becomes modal with the focus on its Copy button.

function enhanceMenu(root) {
  const link = root.querySelector("[data-menu-button]");
  const menu = root.querySelector('[role="menu"]');
  if (!link || !menu) return;
  const items = [...menu.querySelectorAll('[role="menuitem"]')];
  if (!items.length) return;

  const button = document.createElement("button");
  button.type = "button";
  button.id = link.id;
  button.className = link.className;
  button.append(...link.childNodes);
  button.setAttribute("aria-haspopup", "menu");
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", menu.id);
  link.replaceWith(button);

  const isOpen = () => !menu.hidden;

  function focusItem(index) {
    const count = items.length;
    const chosen = ((index % count) + count) % count;
    items.forEach((item, position) => {
      item.tabIndex = position === chosen ? 0 : -1;
    });
    items[chosen].focus();
  }

  function open(index) {
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    // On a short screen (a phone, a page with messages above) the menu may open below the
    // fold: bring all of it into view.
    menu.scrollIntoView({ block: "nearest" });
    focusItem(index);
  }

  function close({ focusButton = false } = {}) {
    if (!isOpen()) return;
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (focusButton) button.focus();
  }

  function label(item) {
    return item.textContent.trim().toLowerCase();
  }

  // Enter and Space reach here as a click (the button's own activation).
  button.addEventListener("click", () => (isOpen() ? close() : open(0)));
  button.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      open(0);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      open(items.length - 1);
    } else if (event.key === "Escape") {
      close();
    }
  });

  menu.addEventListener("keydown", (event) => {
    const current = items.indexOf(document.activeElement);
    if (event.key === "ArrowDown") focusItem(current + 1);
    else if (event.key === "ArrowUp") focusItem(current - 1);
    else if (event.key === "Home") focusItem(0);
    else if (event.key === "End") focusItem(items.length - 1);
    else if (event.key === "Escape") close({ focusButton: true });
    else if (event.key === "Tab") {
      close();
      return; // the focus moves on as usual
    } else if (event.key === " " && document.activeElement instanceof HTMLAnchorElement) {
      document.activeElement.click(); // a menu item is activated by Space too, a link is not
    } else if (event.key.length === 1 && /\S/.test(event.key) && !event.ctrlKey && !event.metaKey && !event.altKey) {
      const letter = event.key.toLowerCase();
      const order = [...items.slice(current + 1), ...items.slice(0, current + 1)];
      const next = order.find((item) => label(item).startsWith(letter));
      if (next) focusItem(items.indexOf(next));
    } else {
      return;
    }
    event.preventDefault();
  });

  document.addEventListener("click", (event) => {
    if (isOpen() && !root.contains(event.target)) close();
  });
  root.addEventListener("focusout", (event) => {
    if (isOpen() && event.relatedTarget && !root.contains(event.relatedTarget)) close();
  });
}

function openLaterDialog(dialog) {
  if (typeof dialog.showModal !== "function") return; // stays in the page, open
  dialog.close();
  dialog.showModal();
  dialog.querySelector("[data-copy-target]")?.focus();
  dialog.addEventListener("close", () => {
    // close() above queues a close event of its own: only a real closing moves the focus.
    if (!dialog.open) document.getElementById("new-meeting-button")?.focus();
  });
}

for (const root of document.querySelectorAll("[data-new-meeting]")) enhanceMenu(root);
const laterDialog = document.querySelector("[data-later-dialog]");
if (laterDialog?.open) openLaterDialog(laterDialog);
