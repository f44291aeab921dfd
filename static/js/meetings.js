// Copy buttons: <button data-copy-target="ID" data-copied-label="Copied"> copies the value of
// the input with that id. Falls back to selecting the text where the Clipboard API is missing
// (plain http origins other than localhost).

function flash(button, label) {
  const original = button.textContent;
  button.textContent = label;
  setTimeout(() => { button.textContent = original; }, 1500);
}

async function copyFrom(button) {
  const target = document.getElementById(button.dataset.copyTarget);
  if (!target) return;
  const text = target.value ?? target.textContent;
  try {
    await navigator.clipboard.writeText(text);
    flash(button, button.dataset.copiedLabel || "Copied");
  } catch {
    target.select?.();
    flash(button, "Press Ctrl+C");
  }
}

for (const button of document.querySelectorAll("[data-copy-target]")) {
  button.addEventListener("click", () => copyFrom(button));
}
