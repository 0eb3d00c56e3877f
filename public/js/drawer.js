// On a phone the room list is a drawer: the "Rooms" button in the room's
// head opens it over the conversation (aria-expanded says so), the rest of
// the page goes inert while it is open, and Escape, its Close button, a tap
// beside it or choosing a room close it. From tablet width up the list is a
// column beside the conversation and this does nothing.

export class Drawer {
  /**
   * @param {object} options
   * @param {HTMLElement} options.chat the element whose class says the drawer is open
   * @param {HTMLElement} options.panel the room list
   * @param {HTMLButtonElement} options.toggle opens it
   * @param {HTMLButtonElement} options.close closes it
   * @param {HTMLElement} options.scrim the shade beside it
   * @param {HTMLElement[]} options.outside what goes inert while it is open
   * @param {() => HTMLElement | null} options.focusInside what to focus when it opens
   */
  constructor({ chat, panel, toggle, close, scrim, outside, focusInside }) {
    this.chat = chat;
    this.panel = panel;
    this.toggle = toggle;
    this.scrim = scrim;
    this.outside = outside;
    this.focusInside = focusInside;
    this.narrow = window.matchMedia('(max-width: 759.98px)');
    toggle.addEventListener('click', () => (this.isOpen() ? this.close(true) : this.open()));
    close.addEventListener('click', () => this.close(true));
    scrim.addEventListener('click', () => this.close(true));
    panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.isOpen()) {
        e.preventDefault();
        this.close(true);
      }
    });
    this.narrow.addEventListener('change', () => {
      if (!this.narrow.matches) this.close(false);
    });
  }

  isOpen() {
    return this.chat.classList.contains('drawer-open');
  }

  open() {
    if (!this.narrow.matches) return;
    this.chat.classList.add('drawer-open');
    this.toggle.setAttribute('aria-expanded', 'true');
    this.scrim.hidden = false;
    for (const element of this.outside) element.inert = true;
    (this.focusInside() || this.panel).focus();
  }

  /** Closes it; `refocus`: focus goes back to the button that opened it. Says whether it was open. */
  close(refocus) {
    if (!this.isOpen()) return false;
    this.chat.classList.remove('drawer-open');
    this.toggle.setAttribute('aria-expanded', 'false');
    this.scrim.hidden = true;
    for (const element of this.outside) element.inert = false;
    if (refocus) this.toggle.focus();
    return true;
  }
}
