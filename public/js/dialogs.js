// The page's dialogs are native <dialog>s opened as modals: the rest of the
// page is inert, Escape closes them, and focus goes back to where it was
// (or to the room's heading, if that is gone). Their words go in a status
// line (role="status") or an alert (role="alert") inside them.

/** Opens `dialog` as a modal, focusing `focus` (or its first field or button). */
export function openDialog(dialog, focus) {
  const from = document.activeElement;
  if (!dialog.open) dialog.showModal();
  (focus || dialog.querySelector('input:not([type=hidden]), select, button:not([data-close])'))?.focus();
  dialog.addEventListener('close', () => {
    const back = from && from.isConnected && from !== document.body ? from : document.getElementById('room-title');
    back?.focus();
  }, { once: true });
}

/** Every [data-close] button closes its dialog. */
export function closeButtons(root) {
  for (const button of root.querySelectorAll('dialog [data-close]')) {
    button.addEventListener('click', () => button.closest('dialog').close());
  }
}

/**
 * Shows `words` in `element`. An alert is hidden when it has none; a status
 * line stays (empty) in place, or a screen reader would miss what comes.
 */
export function say(element, words) {
  element.textContent = words || '';
  if (element.getAttribute('role') !== 'status') element.hidden = !words;
}
