// What is unread, at a glance: the hidden tab's title counts unread
// messages in rooms at level `all` plus unread mentions ("(3) Chat ·
// Lobby"); the phone's "Rooms" button shows the mentions waiting in the
// other rooms (or a dot for unread ones), said in words to a screen reader.

export class Glance {
  /**
   * @param {object} options
   * @param {import('./rooms.js').Rooms} options.rooms
   * @param {() => string} options.title the page's title without a count
   * @param {HTMLElement} options.badge the button's badge
   * @param {HTMLElement} options.words the button's words for a screen reader
   */
  constructor({ rooms, title, badge, words }) {
    this.rooms = rooms;
    this.title = title;
    this.badge = badge;
    this.words = words;
  }

  /** Everything again, with `current` the open room. */
  update(current) {
    this.updateTitle();
    let mentions = 0;
    let unread = false;
    for (const id of this.rooms.order()) {
      if (id === current) continue;
      const room = this.rooms.get(id);
      mentions += room.mentions;
      unread ||= room.unread > 0;
    }
    this.badge.hidden = !unread && mentions === 0;
    this.badge.textContent = mentions > 0 ? String(mentions) : '•';
    if (mentions > 0) this.words.textContent = `, ${mentions} ${mentions === 1 ? 'mention' : 'mentions'}`;
    else this.words.textContent = unread ? ', unread messages' : '';
  }

  /** While the tab is hidden, its title counts; a visible tab's does not. */
  updateTitle() {
    const count = document.hidden ? this.rooms.titleCount() : 0;
    document.title = count ? `(${count}) ${this.title()}` : this.title();
  }
}
